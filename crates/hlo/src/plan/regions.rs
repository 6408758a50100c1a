//! Ops that apply a region per element or per window: `map` and `select-and-scatter`.

use super::attrs::{parse_window, scalar};
use super::{Op, Planner, Reducer};
use crate::ir::{ArrayType, Instr, Type};
use statetensor_core::{DType, Result};

impl<'a> Planner<'a> {
    /// `map(x0, x1, ..), dimensions={0,..,r-1}, to_apply=f`: `f` over the operands'
    /// elements at each index (the operands share their dims). A map always maps every
    /// dimension: XLA's parser reads `dimensions` only as a list and builds the map without
    /// it (`dimensions={}` on a rank-2 map is accepted and maps both), and so does this.
    pub(super) fn map_op(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        if ots.is_empty() {
            return self.err(instr, "map takes at least one operand");
        }
        let xs = ots
            .iter()
            .enumerate()
            .map(|(k, t)| self.array(instr, t, &format!("map operand {k}")))
            .collect::<Result<Vec<_>>>()?;
        let dims = &xs[0].dims;
        if let Some(x) = xs.iter().find(|x| &x.dims != dims) {
            return self.err(
                instr,
                format!(
                    "map operands must share their dims, found {} and {x}",
                    xs[0]
                ),
            );
        }
        if instr.attr("dimensions").is_some() {
            self.usize_list(instr, "dimensions")?;
        }
        let comp = self.comp_attr(instr, "to_apply")?;
        let p = self.plan_of(comp);
        let params: Vec<Type> = xs.iter().map(|x| scalar(x.dtype)).collect();
        let Type::Array(ArrayType {
            dtype,
            dims: root_dims,
        }) = &p.root_ty
        else {
            return self.err(
                instr,
                format!(
                    "map computation '{}' must return a scalar, found {}",
                    p.name, p.root_ty
                ),
            );
        };
        if p.param_types != params || !root_dims.is_empty() {
            let list: Vec<String> = params.iter().map(|t| t.to_string()).collect();
            return self.err(
                instr,
                format!(
                    "map computation '{}' must take ({}) and return a scalar",
                    p.name,
                    list.join(", ")
                ),
            );
        }
        let op = match (self.reducer(comp), xs.len()) {
            (Reducer::Binary(b), 2) => Op::Binary(b),
            _ => Op::Map(comp),
        };
        let ty = Type::Array(ArrayType {
            dtype: *dtype,
            dims: dims.clone(),
        });
        Ok((op, ty))
    }

    /// `select-and-scatter(operand, source, init), window=.., select=s, scatter=t`.
    pub(super) fn select_and_scatter(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        if ots.len() != 3 {
            return self.err(
                instr,
                format!(
                    "select-and-scatter takes 3 operands (operand, source, init), found {}",
                    ots.len()
                ),
            );
        }
        let operand = self.array(instr, ots[0], "select-and-scatter operand")?;
        let source = self.array(instr, ots[1], "select-and-scatter source")?;
        let init = self.array(instr, ots[2], "select-and-scatter init")?;
        if source.dtype != operand.dtype || init.dtype != operand.dtype || !init.dims.is_empty() {
            return self.err(
                instr,
                format!(
                    "select-and-scatter source {source} and init {init} must be {} (init a scalar)",
                    operand.dtype
                ),
            );
        }
        let rank = operand.dims.len();
        let window = match self.window_attr(instr, rank)? {
            Some(w) => w,
            // no window: every dimension's window is one element
            None => parse_window("{}", rank).expect("an empty window parses"),
        };
        let Some(expected) = (0..rank)
            .map(|d| window.output_len(d, operand.dims[d]))
            .collect::<Option<Vec<usize>>>()
        else {
            return self.err(
                instr,
                format!("the window's extent over {operand} overflows"),
            );
        };
        if source.dims != expected {
            return self.err(
                instr,
                format!(
                    "select-and-scatter source {source} must have the window's output dims over {operand}: {expected:?}"
                ),
            );
        }
        let s = scalar(operand.dtype);
        let select = self.comp_attr(instr, "select")?;
        let sp = self.plan_of(select);
        if sp.param_types != [s.clone(), s.clone()] || sp.root_ty != scalar(DType::Pred) {
            return self.err(
                instr,
                format!(
                    "select computation '{}' must map ({s}, {s}) to pred[]",
                    sp.name
                ),
            );
        }
        let scatter = self.comp_attr(instr, "scatter")?;
        let tp = self.plan_of(scatter);
        if tp.param_types != [s.clone(), s.clone()] || tp.root_ty != s {
            return self.err(
                instr,
                format!(
                    "scatter computation '{}' must map ({s}, {s}) to {s}",
                    tp.name
                ),
            );
        }
        let key =
            super::sort_comparator::recognise(sp, &[operand.dtype]).filter(|k| k.then.is_none());
        Ok((
            Op::SelectAndScatter {
                window,
                select,
                key,
                scatter,
                reducer: self.reducer(scatter),
            },
            Type::Array(operand.clone()),
        ))
    }
}
