//! Elementwise ops and values: unary and binary ops, constants, iota, compare, select,
//! clamp, converts, reduce-precision, random bits, partition and replica ids.

use super::{ctx, operand_checks, scalar, Op, Planner};
use crate::ir::{ArrayType, Instr, Literal, Type};
use crate::kernels::{BinaryOp, CompareDirection, RngAlgorithm, UnaryOp};
use crate::literal::parse_literal;
use crate::tensor::Tensor;
use statetensor_core::{DType, Error, Result};
use std::sync::Arc;

impl<'a> Planner<'a> {
    /// Plans a unary or binary elementwise op.
    pub(super) fn elementwise_op(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        operand_checks!(self, instr, ots => opc, want, arr, declared, same_dims);
        if let Some(u) = UnaryOp::from_opcode(opc) {
            want(1)?;
            let a = arr(0)?;
            let Some(d) = u.result_dtype(a.dtype) else {
                return self.err(instr, format!("{opc} does not accept {}", a.dtype));
            };
            return Ok((
                Op::Unary(u),
                Type::Array(ArrayType {
                    dtype: d,
                    dims: a.dims.clone(),
                }),
            ));
        }
        if let Some(b) = BinaryOp::from_opcode(opc) {
            want(2)?;
            let (x, y) = (arr(0)?, arr(1)?);
            if x != y {
                return self.err(
                    instr,
                    format!("{opc} operands must have one type, found {x} and {y}"),
                );
            }
            if !b.accepts(x.dtype) {
                return self.err(instr, format!("{opc} does not accept {}", x.dtype));
            }
            return Ok((Op::Binary(b), Type::Array(x.clone())));
        }
        self.misrouted(instr, "elementwise")
    }

    /// Plans a constant, iota, compare, select, clamp, convert or id.
    pub(super) fn value_op(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        operand_checks!(self, instr, ots => opc, want, arr, declared, same_dims);
        Ok(match opc {
            "constant" => {
                let d = declared()?;
                let t = match &instr.literal {
                    Some(Literal::Value(t)) if t.dtype() == d.dtype && t.dims() == d.dims => {
                        t.clone()
                    }
                    Some(Literal::Value(t)) => {
                        return self.err(
                            instr,
                            format!(
                                "literal of type {}{:?} for a constant of type {d}",
                                t.dtype(),
                                t.dims()
                            ),
                        )
                    }
                    Some(Literal::Text(text)) => Arc::new(
                        parse_literal(text, d)
                            .map_err(|m| Error::invalid_model(ctx(self.comp, instr), m))?,
                    ),
                    None => Arc::new(
                        parse_literal("", d)
                            .map_err(|m| Error::invalid_model(ctx(self.comp, instr), m))?,
                    ),
                };
                (Op::Constant(t), instr.ty.clone())
            }
            "iota" => {
                want(0)?;
                let d = declared()?;
                let dim = self.usize_attr(instr, "iota_dimension")?;
                if dim >= d.dims.len() {
                    return self.err(
                        instr,
                        format!("iota_dimension {dim} is out of range for {d}"),
                    );
                }
                (Op::Iota(dim), instr.ty.clone())
            }
            "compare" => {
                want(2)?;
                let (x, y) = (arr(0)?, arr(1)?);
                if x != y {
                    return self.err(
                        instr,
                        format!("compare operands must have one type, found {x} and {y}"),
                    );
                }
                let dir_attr = self.attr(instr, "direction")?;
                let Some(dir) = CompareDirection::parse(dir_attr.value.trim()) else {
                    return self.err(
                        instr,
                        format!(
                            "direction={}: expected EQ, NE, LT, LE, GT or GE",
                            dir_attr.value
                        ),
                    );
                };
                let total = instr
                    .attr("type")
                    .is_some_and(|a| a.value.trim() == "TOTALORDER");
                (
                    Op::Compare(dir, total),
                    Type::Array(ArrayType {
                        dtype: DType::Pred,
                        dims: x.dims.clone(),
                    }),
                )
            }
            "select" => {
                want(3)?;
                let (p, t, f) = (arr(0)?, arr(1)?, arr(2)?);
                if p.dtype != DType::Pred || (!p.dims.is_empty() && p.dims != t.dims) {
                    return self.err(instr, format!("select predicate must be pred with the branches' dims (or scalar), found {p}"));
                }
                if t != f {
                    return self.err(
                        instr,
                        format!("select branches must have one type, found {t} and {f}"),
                    );
                }
                (Op::Select, Type::Array(t.clone()))
            }
            "clamp" => {
                want(3)?;
                let (lo, x, hi) = (arr(0)?, arr(1)?, arr(2)?);
                for b in [lo, hi] {
                    if b.dtype != x.dtype || (!b.dims.is_empty() && b.dims != x.dims) {
                        return self.err(
                            instr,
                            format!("clamp bounds must be {} scalars or {x}, found {b}", x.dtype),
                        );
                    }
                }
                (Op::Clamp, Type::Array(x.clone()))
            }
            "convert" => {
                want(1)?;
                let (a, d) = (arr(0)?, declared()?);
                same_dims(a, d, "operand and result")?;
                (Op::Convert(d.dtype), instr.ty.clone())
            }
            "bitcast-convert" => {
                want(1)?;
                let (a, d) = (arr(0)?, declared()?);
                if a.element_count() * a.dtype.bits() as usize
                    != d.element_count() * d.dtype.bits() as usize
                {
                    return self.err(
                        instr,
                        format!("bitcast-convert from {a} to {d} changes the byte size"),
                    );
                }
                (Op::BitcastConvert, instr.ty.clone())
            }
            "reduce-precision" => {
                want(1)?;
                let a = arr(0)?;
                if !matches!(a.dtype, DType::F16 | DType::BF16 | DType::F32 | DType::F64) {
                    return self.err(
                        instr,
                        format!("reduce-precision takes f16, bf16, f32 or f64, found {a}"),
                    );
                }
                let exponent_bits = self.usize_attr(instr, "exponent_bits")?;
                let mantissa_bits = self.usize_attr(instr, "mantissa_bits")?;
                if !(1..=64).contains(&exponent_bits) || mantissa_bits > 64 {
                    return self.err(
                        instr,
                        format!("reduce-precision exponent_bits={exponent_bits} mantissa_bits={mantissa_bits}: expected at least 1 exponent bit"),
                    );
                }
                (
                    Op::ReducePrecision {
                        exponent_bits: exponent_bits as u32,
                        mantissa_bits: mantissa_bits as u32,
                    },
                    Type::Array(a.clone()),
                )
            }
            "rng-bit-generator" => {
                want(1)?;
                let state = arr(0)?;
                let spec = self.attr(instr, "algorithm")?.value.trim().to_string();
                let algorithm = match spec.as_str() {
                    "rng_three_fry" => RngAlgorithm::ThreeFry,
                    // rng_default is Philox on XLA:CPU and XLA:GPU
                    "rng_philox" | "rng_default" => RngAlgorithm::Philox,
                    other => {
                        return self.err(
                            instr,
                            format!(
                            "algorithm={other}: expected rng_default, rng_philox or rng_three_fry"
                        ),
                        )
                    }
                };
                let words_ok = match algorithm {
                    RngAlgorithm::ThreeFry => state.dims == [2],
                    RngAlgorithm::Philox => state.dims == [2] || state.dims == [3],
                };
                if state.dtype != DType::U64 || !words_ok {
                    let want = match algorithm {
                        RngAlgorithm::ThreeFry => "u64[2]",
                        RngAlgorithm::Philox => "u64[2] or u64[3]",
                    };
                    return self.err(instr, format!("{spec} takes a {want} state, found {state}"));
                }
                let bits = match &instr.ty {
                    Type::Tuple(parts)
                        if parts.len() == 2 && parts[0] == Type::Array(state.clone()) =>
                    {
                        parts[1].as_array()
                    }
                    _ => None,
                };
                let Some(bits) = bits.filter(|b| {
                    matches!(b.dtype, DType::U8 | DType::U16 | DType::U32 | DType::U64)
                }) else {
                    return self.err(
                        instr,
                        format!(
                            "rng-bit-generator declares {}: expected ({state}, u8/u16/u32/u64 array) — XLA writes the bits as unsigned integers",
                            instr.ty
                        ),
                    );
                };
                let _ = bits;
                (Op::RngBitGenerator(algorithm), instr.ty.clone())
            }
            "get-dimension-size" => {
                // every dimension is static here: the size is a constant
                want(1)?;
                let a = arr(0)?;
                let size = match self.usize_list(instr, "dimensions")?[..] {
                    [d] if d < a.dims.len() => a.dims[d],
                    _ => {
                        return self
                            .err(instr, format!("dimensions= must name one dimension of {a}"))
                    }
                };
                let Ok(size) = i32::try_from(size) else {
                    return self.err(instr, format!("dimension size {size} does not fit s32"));
                };
                let value = Tensor::from_le_bytes(DType::S32, &[], &size.to_le_bytes())?;
                (Op::Constant(Arc::new(value)), scalar(DType::S32))
            }
            _ => return self.misrouted(instr, "value"),
        })
    }
}
