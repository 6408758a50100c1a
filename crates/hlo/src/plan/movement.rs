//! Data movement: reshape and bitcast, broadcast, transpose, copies, slices, dynamic slices
//! and updates, concatenate, pad, reverse.

use super::attrs::{is_permutation, padded_size, parse_padding, parse_slice};
use super::{operand_checks, Op, Planner};
use crate::ir::{ArrayType, Instr, Type};
use statetensor_core::Result;
use std::collections::BTreeSet;

impl<'a> Planner<'a> {
    /// Plans a data-movement op.
    pub(super) fn movement_op(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        operand_checks!(self, instr, ots => opc, want, arr, declared, same_dims);
        Ok(match opc {
            "bitcast" if arr(0)?.dtype != declared()?.dtype => {
                // XLA's layout-level bitcast may also reinterpret the element type
                want(1)?;
                let (a, d) = (arr(0)?, declared()?);
                if a.element_count() * a.dtype.bits() as usize
                    != d.element_count() * d.dtype.bits() as usize
                {
                    return self.err(
                        instr,
                        format!("bitcast from {a} to {d} changes the byte size"),
                    );
                }
                (Op::BitcastConvert, instr.ty.clone())
            }
            "reshape" | "bitcast" => {
                want(1)?;
                let (a, d) = (arr(0)?, declared()?);
                if a.dtype != d.dtype || a.element_count() != d.element_count() {
                    return self.err(
                        instr,
                        format!("{opc} from {a} to {d} changes the element type or count"),
                    );
                }
                if opc == "bitcast" {
                    let from = self.comp.instrs[instr.operands[0]].layout.as_deref();
                    if let Some(op) = relayout(a, from, d, instr.layout.as_deref()) {
                        return Ok((op, instr.ty.clone()));
                    }
                }
                (Op::Reshape, instr.ty.clone())
            }
            "broadcast" => {
                want(1)?;
                let (a, d) = (arr(0)?, declared()?);
                // XLA's parser lets a scalar's broadcast leave out `dimensions={}`
                let dims = if a.dims.is_empty() {
                    self.opt_usize_list(instr, "dimensions")?
                } else {
                    self.usize_list(instr, "dimensions")?
                };
                let mut seen = BTreeSet::new();
                if dims.len() != a.dims.len()
                    || a.dtype != d.dtype
                    || dims.iter().enumerate().any(|(i, &t)| {
                        t >= d.dims.len()
                            || !seen.insert(t)
                            || (a.dims[i] != d.dims[t] && a.dims[i] != 1)
                    })
                {
                    return self.err(
                        instr,
                        format!("broadcast of {a} to {d} with dimensions={dims:?} is inconsistent"),
                    );
                }
                (Op::Broadcast(dims), instr.ty.clone())
            }
            "transpose" => {
                want(1)?;
                let a = arr(0)?;
                let perm = self.usize_list(instr, "dimensions")?;
                if !is_permutation(&perm, a.dims.len()) {
                    return self.err(
                        instr,
                        format!(
                            "transpose dimensions={perm:?} is not a permutation of {} axes",
                            a.dims.len()
                        ),
                    );
                }
                let dims = perm.iter().map(|&p| a.dims[p]).collect();
                (
                    Op::Transpose(perm),
                    Type::Array(ArrayType {
                        dtype: a.dtype,
                        dims,
                    }),
                )
            }
            "copy" | "opt-barrier" | "optimization-barrier" => {
                want(1)?;
                (
                    if opc == "copy" {
                        Op::Copy
                    } else {
                        Op::Identity
                    },
                    ots[0].clone(),
                )
            }
            "slice" => {
                want(1)?;
                let a = arr(0)?;
                let spec = self.attr(instr, "slice")?;
                let Some(parts) = parse_slice(&spec.value) else {
                    return self.err(
                        instr,
                        format!(
                            "slice={}: expected {{[start:limit:stride], ...}}",
                            spec.value
                        ),
                    );
                };
                if parts.len() != a.dims.len() {
                    return self.err(instr, format!("slice has {} ranges for {a}", parts.len()));
                }
                let mut dims = Vec::new();
                for (k, &(s, l, st)) in parts.iter().enumerate() {
                    if s > l || l > a.dims[k] || st == 0 {
                        return self.err(
                            instr,
                            format!(
                                "slice range [{s}:{l}:{st}] is invalid for dimension {k} of {a}"
                            ),
                        );
                    }
                    dims.push((l - s).div_ceil(st));
                }
                let op = Op::Slice {
                    start: parts.iter().map(|p| p.0).collect(),
                    limit: parts.iter().map(|p| p.1).collect(),
                    stride: parts.iter().map(|p| p.2).collect(),
                };
                (
                    op,
                    Type::Array(ArrayType {
                        dtype: a.dtype,
                        dims,
                    }),
                )
            }
            "dynamic-slice" => {
                let a = arr(0)?;
                self.check_start_indices(instr, ots, 1, a)?;
                let sizes = self.usize_list(instr, "dynamic_slice_sizes")?;
                if sizes.len() != a.dims.len() || sizes.iter().zip(&a.dims).any(|(s, d)| s > d) {
                    return self.err(
                        instr,
                        format!("dynamic_slice_sizes={sizes:?} does not fit {a}"),
                    );
                }
                (
                    Op::DynamicSlice(sizes.clone()),
                    Type::Array(ArrayType {
                        dtype: a.dtype,
                        dims: sizes,
                    }),
                )
            }
            "dynamic-update-slice" => {
                let a = arr(0)?;
                self.check_start_indices(instr, ots, 2, a)?;
                let u = arr(1)?;
                if u.dtype != a.dtype
                    || u.dims.len() != a.dims.len()
                    || u.dims.iter().zip(&a.dims).any(|(x, y)| x > y)
                {
                    return self.err(instr, format!("update {u} does not fit operand {a}"));
                }
                (Op::DynamicUpdateSlice, Type::Array(a.clone()))
            }
            "concatenate" => {
                if ots.is_empty() {
                    return self.err(instr, "concatenate needs at least one operand");
                }
                let dims = self.usize_list(instr, "dimensions")?;
                let a = arr(0)?;
                let Some(&d) = dims
                    .first()
                    .filter(|&&d| dims.len() == 1 && d < a.dims.len())
                else {
                    return self.err(
                        instr,
                        format!("concatenate dimensions={dims:?} is not one axis of {a}"),
                    );
                };
                let mut out = a.dims.clone();
                for k in 1..ots.len() {
                    let b = arr(k)?;
                    let ok = b.dtype == a.dtype
                        && b.dims.len() == a.dims.len()
                        && b.dims
                            .iter()
                            .zip(&a.dims)
                            .enumerate()
                            .all(|(i, (x, y))| i == d || x == y);
                    if !ok {
                        return self.err(instr, format!("concatenate operand {k} {b} does not match {a} outside dimension {d}"));
                    }
                    out[d] += b.dims[d];
                }
                (
                    Op::Concatenate(d),
                    Type::Array(ArrayType {
                        dtype: a.dtype,
                        dims: out,
                    }),
                )
            }
            "pad" => {
                want(2)?;
                let (a, v) = (arr(0)?, arr(1)?);
                if v.dtype != a.dtype || !v.dims.is_empty() {
                    return self.err(
                        instr,
                        format!("pad value must be a {} scalar, found {v}", a.dtype),
                    );
                }
                let spec = self.attr(instr, "padding")?;
                let Some(cfg) = parse_padding(&spec.value) else {
                    return self.err(
                        instr,
                        format!(
                            "padding={}: expected lo_hi[_interior] per dimension, joined by 'x'",
                            spec.value
                        ),
                    );
                };
                if cfg.len() != a.dims.len() {
                    return self.err(instr, format!("padding has {} entries for {a}", cfg.len()));
                }
                let mut dims = Vec::new();
                for (k, &(lo, hi, int)) in cfg.iter().enumerate() {
                    let Some(size) = padded_size(a.dims[k], lo, hi, int) else {
                        return self.err(
                            instr,
                            format!("padding {lo}_{hi}_{int} is invalid for dimension {k} of {a}"),
                        );
                    };
                    dims.push(size);
                }
                let op = Op::Pad {
                    lo: cfg.iter().map(|c| c.0).collect(),
                    interior: cfg.iter().map(|c| c.2 as usize).collect(),
                };
                (
                    op,
                    Type::Array(ArrayType {
                        dtype: a.dtype,
                        dims,
                    }),
                )
            }
            "reverse" => {
                want(1)?;
                let a = arr(0)?;
                let dims = self.usize_list(instr, "dimensions")?;
                if dims.iter().any(|&d| d >= a.dims.len()) {
                    return self.err(
                        instr,
                        format!("reverse dimensions={dims:?} out of range for {a}"),
                    );
                }
                (Op::Reverse(dims), Type::Array(a.clone()))
            }
            _ => return self.misrouted(instr, "movement"),
        })
    }

    /// The start indices of a dynamic slice or update of `a`, from operand `from` on: one
    /// integer scalar per dimension, or XLA's legacy form, one integer vector of them.
    fn check_start_indices(
        &self,
        instr: &Instr,
        ots: &[&Type],
        from: usize,
        a: &ArrayType,
    ) -> Result<()> {
        if let [Type::Array(v)] = &ots[from.min(ots.len())..] {
            if v.dims.len() == 1 && v.dims[0] == a.dims.len() && v.dtype.is_int() {
                return Ok(());
            }
        }
        if ots.len() != from + a.dims.len() {
            return self.err(
                instr,
                format!(
                    "{} of {a} takes {} start index operands (one per dimension), found {}",
                    instr.opcode,
                    a.dims.len(),
                    ots.len().saturating_sub(from)
                ),
            );
        }
        self.check_scalar_ints(instr, ots, from)
    }

    pub(super) fn check_scalar_ints(
        &self,
        instr: &Instr,
        ots: &[&Type],
        from: usize,
    ) -> Result<()> {
        for (k, t) in ots.iter().enumerate().skip(from) {
            match t {
                Type::Array(a) if a.dims.is_empty() && a.dtype.is_int() => {}
                _ => {
                    return self.err(
                        instr,
                        format!(
                            "{} start index operand {k} must be an integer scalar, found {t}",
                            instr.opcode
                        ),
                    )
                }
            }
        }
        Ok(())
    }
}

/// A `bitcast` between layouts (XLA's optimised modules write them: the bytes of the
/// operand, in its layout's order, read in the result's layout's order) as an op on
/// row-major buffers: the operand in its physical order, reshaped to the result's physical
/// dims, then put back in logical order. None when both layouts are row-major (a reshape).
fn relayout(
    a: &ArrayType,
    from: Option<&[usize]>,
    d: &ArrayType,
    to: Option<&[usize]>,
) -> Option<Op> {
    // major-to-minor order of each; row-major is 0, 1, ..
    let major_to_minor = |layout: Option<&[usize]>, rank: usize| -> Vec<usize> {
        match layout {
            Some(m2m) if m2m.len() == rank => m2m.iter().rev().copied().collect(),
            _ => (0..rank).collect(),
        }
    };
    let physical = major_to_minor(from, a.dims.len());
    let result = major_to_minor(to, d.dims.len());
    let row_major = |o: &[usize]| o.iter().enumerate().all(|(i, &x)| i == x);
    if row_major(&physical) && row_major(&result) {
        return None;
    }
    let dims = result.iter().map(|&k| d.dims[k]).collect();
    // the result's logical axis result[k] is physical axis k
    let mut logical = vec![0; result.len()];
    for (k, &axis) in result.iter().enumerate() {
        logical[axis] = k;
    }
    Some(Op::Relayout {
        physical,
        dims,
        logical,
    })
}
