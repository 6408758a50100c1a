//! Structured ops: gather, scatter, dot, reduce, reduce-window, sort, and recognising the
//! reducer computations real HLO uses.

use super::{operand_checks, scalar, Op, Planner, Reducer};
use crate::ir::{ArrayType, Instr, Type};
use crate::kernels::{BinaryOp, DotDims, IndexDims};
use statetensor_core::{DType, Result};
use std::collections::BTreeSet;

impl<'a> Planner<'a> {
    /// Recognises `ROOT op(p0, p1)` and `ROOT p1` reducers.
    pub(super) fn reducer(&self, c: usize) -> Reducer {
        let comp = &self.module.computations[c];
        let root = &comp.instrs[comp.root];
        if comp.params.len() != 2 {
            return Reducer::General;
        }
        if root.parameter_number == Some(1) {
            return Reducer::Replace;
        }
        let (p0, p1) = (comp.params[0], comp.params[1]);
        if let Some(op) = BinaryOp::from_opcode(&root.opcode) {
            let commutative = matches!(
                op,
                BinaryOp::Add
                    | BinaryOp::Multiply
                    | BinaryOp::Maximum
                    | BinaryOp::Minimum
                    | BinaryOp::And
                    | BinaryOp::Or
                    | BinaryOp::Xor
            );
            if root.operands == [p0, p1] || (commutative && root.operands == [p1, p0]) {
                return Reducer::Binary(op);
            }
        }
        Reducer::General
    }

    pub(super) fn index_dims(&self, instr: &Instr, names: [&str; 6]) -> Result<IndexDims> {
        Ok(IndexDims {
            window_dims: self.usize_list(instr, names[0])?,
            collapsed: self.opt_usize_list(instr, names[1])?,
            index_map: self.usize_list(instr, names[2])?,
            index_vector_dim: self.usize_attr(instr, "index_vector_dim")?,
            operand_batching: self.opt_usize_list(instr, names[4])?,
            indices_batching: self.opt_usize_list(instr, names[5])?,
        })
    }

    /// Checks the index-space attributes against operand and indices; returns the indices'
    /// batch dims (all but index_vector_dim).
    pub(super) fn check_index_dims(
        &self,
        instr: &Instr,
        d: &IndexDims,
        operand: &ArrayType,
        indices: &ArrayType,
    ) -> Result<Vec<usize>> {
        let rank = operand.dims.len();
        if !indices.dtype.is_int() {
            return self.err(instr, format!("indices must be integers, found {indices}"));
        }
        if d.index_vector_dim > indices.dims.len() {
            return self.err(
                instr,
                format!(
                    "index_vector_dim={} is out of range for {indices}",
                    d.index_vector_dim
                ),
            );
        }
        let vec_len = indices.dims.get(d.index_vector_dim).copied().unwrap_or(1);
        if d.index_map.len() != vec_len {
            return self.err(
                instr,
                format!(
                    "index map has {} entries but index vectors have {vec_len}",
                    d.index_map.len()
                ),
            );
        }
        let all_in_range = d
            .index_map
            .iter()
            .chain(&d.collapsed)
            .chain(&d.operand_batching)
            .all(|&k| k < rank);
        let mut seen = BTreeSet::new();
        let distinct = d
            .collapsed
            .iter()
            .chain(&d.operand_batching)
            .all(|&k| seen.insert(k));
        if !all_in_range || !distinct || d.operand_batching.len() != d.indices_batching.len() {
            return self.err(
                instr,
                format!("index dimension numbers do not fit operand {operand}"),
            );
        }
        let batch: Vec<usize> = (0..indices.dims.len())
            .filter(|&k| k != d.index_vector_dim)
            .map(|k| indices.dims[k])
            .collect();
        for (&od, &id) in d.operand_batching.iter().zip(&d.indices_batching) {
            if id >= indices.dims.len()
                || id == d.index_vector_dim
                || indices.dims[id] != operand.dims[od]
            {
                return self.err(
                    instr,
                    format!("batching dims {od} (operand) and {id} (indices) do not match"),
                );
            }
        }
        Ok(batch)
    }

    pub(super) fn gather(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        if ots.len() != 2 {
            return self.err(
                instr,
                format!("gather takes 2 operands, found {}", ots.len()),
            );
        }
        let operand = self.array(instr, ots[0], "gather operand")?;
        let indices = self.array(instr, ots[1], "gather indices")?;
        let d = self.index_dims(
            instr,
            [
                "offset_dims",
                "collapsed_slice_dims",
                "start_index_map",
                "",
                "operand_batching_dims",
                "start_indices_batching_dims",
            ],
        )?;
        let batch = self.check_index_dims(instr, &d, operand, indices)?;
        let sizes = self.usize_list(instr, "slice_sizes")?;
        if sizes.len() != operand.dims.len() || sizes.iter().zip(&operand.dims).any(|(s, o)| s > o)
        {
            return self.err(
                instr,
                format!("slice_sizes={sizes:?} does not fit {operand}"),
            );
        }
        if d.collapsed
            .iter()
            .chain(&d.operand_batching)
            .any(|&k| sizes[k] != 1)
        {
            return self.err(instr, "collapsed and batching dims must have slice size 1");
        }
        let offset_sizes: Vec<usize> = (0..operand.dims.len())
            .filter(|k| !d.collapsed.contains(k) && !d.operand_batching.contains(k))
            .map(|k| sizes[k])
            .collect();
        let out_rank = batch.len() + offset_sizes.len();
        if d.window_dims.len() != offset_sizes.len()
            || d.window_dims.iter().any(|&k| k >= out_rank)
            || d.window_dims.windows(2).any(|w| w[0] >= w[1])
        {
            return self.err(
                instr,
                format!(
                    "offset_dims={:?} does not fit {} offset dims in a rank-{out_rank} result",
                    d.window_dims,
                    offset_sizes.len()
                ),
            );
        }
        let mut dims = Vec::with_capacity(out_rank);
        let (mut bi, mut oi) = (0, 0);
        for k in 0..out_rank {
            if d.window_dims.contains(&k) {
                dims.push(offset_sizes[oi]);
                oi += 1;
            } else {
                dims.push(batch[bi]);
                bi += 1;
            }
        }
        Ok((
            Op::Gather {
                dims: d,
                slice_sizes: sizes,
            },
            Type::Array(ArrayType {
                dtype: operand.dtype,
                dims,
            }),
        ))
    }

    /// `scatter(operands.., indices, updates..)`: one operand and update, or several (a
    /// variadic scatter, whose combiner maps all of their elements at once).
    pub(super) fn scatter(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        if ots.len() < 3 || ots.len() % 2 == 0 {
            return self.err(
                instr,
                format!(
                    "scatter takes N operands, the indices and N updates (an odd count of 3 or more), found {}",
                    ots.len()
                ),
            );
        }
        let n = (ots.len() - 1) / 2;
        let operands = (0..n)
            .map(|k| self.array(instr, ots[k], &format!("scatter operand {k}")))
            .collect::<Result<Vec<_>>>()?;
        let indices = self.array(instr, ots[n], "scatter indices")?;
        let updates = (0..n)
            .map(|k| self.array(instr, ots[n + 1 + k], &format!("scatter update {k}")))
            .collect::<Result<Vec<_>>>()?;
        let (operand, update) = (operands[0], updates[0]);
        for k in 1..n {
            if operands[k].dims != operand.dims || updates[k].dims != update.dims {
                return self.err(
                    instr,
                    format!(
                        "scatter operand {k} {} or update {k} {} differs in dims from operand 0 {operand} or update 0 {update}",
                        operands[k], updates[k]
                    ),
                );
            }
        }
        for k in 0..n {
            if updates[k].dtype != operands[k].dtype {
                return self.err(
                    instr,
                    format!(
                        "scatter update {k} {} and operand {k} {} differ in type",
                        updates[k], operands[k]
                    ),
                );
            }
        }
        let d = self.index_dims(
            instr,
            [
                "update_window_dims",
                "inserted_window_dims",
                "scatter_dims_to_operand_dims",
                "",
                "input_batching_dims",
                "scatter_indices_batching_dims",
            ],
        )?;
        let batch = self.check_index_dims(instr, &d, operand, indices)?;
        let window_operand: Vec<usize> = (0..operand.dims.len())
            .filter(|k| !d.collapsed.contains(k) && !d.operand_batching.contains(k))
            .collect();
        let scatter_dims: Vec<usize> = (0..update.dims.len())
            .filter(|k| !d.window_dims.contains(k))
            .collect();
        let ok = d.window_dims.len() == window_operand.len()
            && d.window_dims.iter().all(|&k| k < update.dims.len())
            && d.window_dims
                .iter()
                .zip(&window_operand)
                .all(|(&u, &o)| update.dims[u] <= operand.dims[o])
            && scatter_dims.len() == batch.len()
            && scatter_dims
                .iter()
                .zip(&batch)
                .all(|(&u, &b)| update.dims[u] == b);
        if !ok {
            return self.err(
                instr,
                format!(
                    "scatter updates {update} do not fit operand {operand} and indices {indices}"
                ),
            );
        }
        let dtypes: Vec<DType> = operands.iter().map(|o| o.dtype).collect();
        let comp = self.combining_region(instr, &dtypes)?;
        let ty = if n == 1 {
            Type::Array(operand.clone())
        } else {
            Type::Tuple(operands.iter().map(|&o| Type::Array(o.clone())).collect())
        };
        Ok((
            Op::Scatter {
                dims: d,
                comp,
                reducer: if n == 1 {
                    self.reducer(comp)
                } else {
                    Reducer::General
                },
            },
            ty,
        ))
    }

    pub(super) fn dot(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        if ots.len() != 2 {
            return self.err(instr, format!("dot takes 2 operands, found {}", ots.len()));
        }
        let l = self.array(instr, ots[0], "dot lhs")?;
        let r = self.array(instr, ots[1], "dot rhs")?;
        let d = DotDims::new(
            self.opt_usize_list(instr, "lhs_batch_dims")?,
            self.opt_usize_list(instr, "rhs_batch_dims")?,
            self.opt_usize_list(instr, "lhs_contracting_dims")?,
            self.opt_usize_list(instr, "rhs_contracting_dims")?,
            l.dims.len(),
            r.dims.len(),
        );
        let pairs_ok = |a: &[usize], b: &[usize]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(&x, &y)| x < l.dims.len() && y < r.dims.len() && l.dims[x] == r.dims[y])
        };
        let mut seen_l = BTreeSet::new();
        let mut seen_r = BTreeSet::new();
        let distinct = d
            .lhs_batch
            .iter()
            .chain(&d.lhs_contract)
            .all(|&k| seen_l.insert(k))
            && d.rhs_batch
                .iter()
                .chain(&d.rhs_contract)
                .all(|&k| seen_r.insert(k));
        if !pairs_ok(&d.lhs_batch, &d.rhs_batch)
            || !pairs_ok(&d.lhs_contract, &d.rhs_contract)
            || !distinct
        {
            return self.err(
                instr,
                format!("dot dimension numbers do not fit {l} and {r}"),
            );
        }
        let out_dtype = self.array(instr, &instr.ty, "dot result")?.dtype;
        if (l.dtype == DType::Pred) != (r.dtype == DType::Pred) {
            return self.err(instr, format!("dot of {l} and {r} mixes pred with numbers"));
        }
        let mut dims: Vec<usize> = d.lhs_batch.iter().map(|&k| l.dims[k]).collect();
        dims.extend(d.lhs_free.iter().map(|&k| l.dims[k]));
        dims.extend(d.rhs_free.iter().map(|&k| r.dims[k]));
        Ok((
            Op::Dot(d),
            Type::Array(ArrayType {
                dtype: out_dtype,
                dims,
            }),
        ))
    }

    pub(super) fn reduce(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        if ots.is_empty() || ots.len() % 2 != 0 {
            return self.err(
                instr,
                format!(
                    "reduce takes N inputs and N init values, found {} operands",
                    ots.len()
                ),
            );
        }
        let n = ots.len() / 2;
        let a = self.array(instr, ots[0], "reduce input")?;
        let dims = self.usize_list(instr, "dimensions")?;
        let mut seen = BTreeSet::new();
        if dims.iter().any(|&k| k >= a.dims.len() || !seen.insert(k)) {
            return self.err(
                instr,
                format!("reduce dimensions={dims:?} out of range for {a}"),
            );
        }
        let out_dims: Vec<usize> = (0..a.dims.len())
            .filter(|k| !dims.contains(k))
            .map(|k| a.dims[k])
            .collect();
        let mut outs = Vec::new();
        let mut dtypes = Vec::new();
        for k in 0..n {
            let x = self.array(instr, ots[k], "reduce input")?;
            let i = self.array(instr, ots[n + k], "reduce init")?;
            if x.dims != a.dims || !i.dims.is_empty() || i.dtype != x.dtype {
                return self.err(
                    instr,
                    format!("reduce input {k} {x} and init {i} do not fit"),
                );
            }
            outs.push(Type::Array(ArrayType {
                dtype: x.dtype,
                dims: out_dims.clone(),
            }));
            dtypes.push(x.dtype);
        }
        let comp = self.combining_region(instr, &dtypes)?;
        let reducer = match n {
            1 => self.reducer(comp),
            2 => {
                let integer_index = dtypes[1].is_signed_int() || dtypes[1].is_unsigned_int();
                super::select_reducer::select_table(
                    self.module,
                    &self.module.computations[comp],
                    integer_index,
                )
                .map_or(Reducer::General, Reducer::Select)
            }
            _ => Reducer::General,
        };
        let reducer = if reducer == Reducer::Replace {
            Reducer::General
        } else {
            reducer
        };
        let ty = if n == 1 {
            outs.remove(0)
        } else {
            Type::Tuple(outs)
        };
        Ok((
            Op::Reduce {
                dims,
                comp,
                reducer,
            },
            ty,
        ))
    }

    /// `reduce-window(inputs.., inits..)`: one input and init, or several (a variadic
    /// window, whose region maps all of their elements at once, as XLA:CPU writes for
    /// select-and-scatter).
    pub(super) fn reduce_window(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        if ots.len() < 2 || ots.len() % 2 != 0 {
            return self.err(
                instr,
                format!(
                    "reduce-window takes N inputs and N inits (an even count of 2 or more), found {}",
                    ots.len()
                ),
            );
        }
        let n = ots.len() / 2;
        let inputs = (0..n)
            .map(|k| self.array(instr, ots[k], &format!("reduce-window input {k}")))
            .collect::<Result<Vec<_>>>()?;
        let a = inputs[0];
        for k in 0..n {
            let i = self.array(instr, ots[n + k], &format!("reduce-window init {k}"))?;
            if inputs[k].dims != a.dims {
                return self.err(
                    instr,
                    format!(
                        "reduce-window input {k} {} differs in dims from input 0 {a}",
                        inputs[k]
                    ),
                );
            }
            if !i.dims.is_empty() || i.dtype != inputs[k].dtype {
                return self.err(
                    instr,
                    format!(
                        "reduce-window init {k} must be a {} scalar, found {i}",
                        inputs[k].dtype
                    ),
                );
            }
        }
        let Some(w) = self.window_attr(instr, a.dims.len())? else {
            return self.err(instr, "reduce-window needs attribute 'window'");
        };
        let Some(dims) = (0..a.dims.len())
            .map(|k| w.output_len(k, a.dims[k]))
            .collect::<Option<Vec<usize>>>()
        else {
            return self.err(instr, format!("the window's extent over {a} overflows"));
        };
        let dtypes: Vec<DType> = inputs.iter().map(|x| x.dtype).collect();
        let comp = self.combining_region(instr, &dtypes)?;
        let reducer = match self.reducer(comp) {
            _ if n > 1 => Reducer::General,
            Reducer::Replace => Reducer::General,
            r => r,
        };
        let array = |x: &ArrayType| {
            Type::Array(ArrayType {
                dtype: x.dtype,
                dims: dims.clone(),
            })
        };
        let ty = if n == 1 {
            array(a)
        } else {
            Type::Tuple(inputs.iter().map(|x| array(x)).collect())
        };
        Ok((
            Op::ReduceWindow {
                window: w,
                comp,
                reducer,
            },
            ty,
        ))
    }

    /// Plans a sort.
    pub(super) fn sort(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        operand_checks!(self, instr, ots => opc, want, arr, declared, same_dims);
        Ok({
            if ots.is_empty() {
                return self.err(instr, "sort needs at least one operand");
            }
            let a = arr(0)?;
            for k in 1..ots.len() {
                same_dims(a, arr(k)?, "sort operand")?;
            }
            let dims = self.usize_list(instr, "dimensions")?;
            let Some(&dim) = dims
                .first()
                .filter(|&&d| dims.len() == 1 && d < a.dims.len())
            else {
                return self.err(
                    instr,
                    format!("sort dimensions={dims:?} is not one axis of {a}"),
                );
            };
            let comp = self.comp_attr(instr, "to_apply")?;
            let p = self.plan_of(comp);
            let scalars: Vec<Type> = ots
                .iter()
                .flat_map(|t| {
                    let d = t.as_array().map(|a| a.dtype).unwrap_or(DType::Pred);
                    [scalar(d), scalar(d)]
                })
                .collect();
            if p.param_types != scalars || p.root_ty != scalar(DType::Pred) {
                return self.err(
                    instr,
                    format!(
                        "sort comparator '{}' must take {} scalars and return pred[]",
                        p.name,
                        scalars.len()
                    ),
                );
            }
            let ty = if ots.len() == 1 {
                ots[0].clone()
            } else {
                Type::Tuple(ots.iter().map(|t| (*t).clone()).collect())
            };
            let dtypes: Vec<DType> = ots
                .iter()
                .map(|t| t.as_array().map_or(DType::Pred, |a| a.dtype))
                .collect();
            let key = super::sort_comparator::recognise(p, &dtypes);
            (Op::Sort { dim, comp, key }, ty)
        })
    }
}
