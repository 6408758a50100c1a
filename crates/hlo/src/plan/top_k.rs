//! Top-k: the `topk` op (what `jax.lax.top_k` lowers to) and the `TopK` custom-call (what
//! XLA's top-k rewriter and torch-xla's `topk` emit, with a comparator region).
//!
//! Both give, along the last axis, the `k` first elements of the stable sort by their
//! order, values and their `s32` indices. `topk` orders by IEEE totalOrder (+NaN largest,
//! -NaN smallest, -0 below +0), largest first unless `largest=false`, ties by the lower
//! index — as XLA:CPU computes it. The custom-call's comparator must be one the planner
//! recognises as a strict order on one key (`type=TOTALORDER` on floats, or integers;
//! `LT` or `GT`): then the first `k` are selected without sorting the rest. A comparator
//! that is not a strict order has no well-defined top k without XLA's exact sort, and is
//! refused by name.

use super::{Op, Planner};
use crate::ir::{ArrayType, Instr, Type};
use crate::kernels::{CompareDirection, KeyFn, SortKey};
use statetensor_core::{DType, Result};

impl<'a> Planner<'a> {
    /// `topk(x), k=K, largest=true|false`.
    pub(super) fn top_k_op(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        let x = self.top_k_operand(instr, ots)?;
        let k = self.usize_attr(instr, "k")?;
        let largest = match instr.attr("largest").map(|a| a.value.trim()) {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return self.err(instr, format!("largest={other}: expected true or false"))
            }
        };
        let key = SortKey {
            operand: 0,
            direction: if largest {
                CompareDirection::Gt
            } else {
                CompareDirection::Lt
            },
            total_order: x.dtype.is_float(),
            key: KeyFn::Identity,
            then: None,
        };
        self.top_k_result(instr, x, k, key)
    }

    /// `custom-call(x), custom_call_target="TopK", to_apply=comparator`; `k` from the
    /// declared result. Without a comparator it takes the largest.
    pub(super) fn top_k_custom_call(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        let x = self.top_k_operand(instr, ots)?;
        let k = match &instr.ty {
            Type::Tuple(parts) => parts
                .first()
                .and_then(Type::as_array)
                .and_then(|a| a.dims.last().copied()),
            _ => None,
        };
        let Some(k) = k else {
            return self.err(
                instr,
                format!(
                    "TopK declares {}: expected a tuple (values, s32 indices)",
                    instr.ty
                ),
            );
        };
        let comp = if instr.attr("to_apply").is_some() {
            self.comp_attr(instr, "to_apply")?
        } else if instr.attr("called_computations").is_some() {
            self.comp_attr(instr, "called_computations")?
        } else {
            // no comparator: the k largest, descending, as the `topk` op with largest=true
            // (what XLA:CPU computes for a bare TopK custom-call)
            let key = SortKey {
                operand: 0,
                direction: CompareDirection::Gt,
                total_order: x.dtype.is_float(),
                key: KeyFn::Identity,
                then: None,
            };
            return self.top_k_result(instr, x, k, key);
        };
        let plan = self.plan_of(comp);
        let strict = |key: &SortKey| {
            (key.total_order || !x.dtype.is_float() || matches!(key.key, KeyFn::SignedBits { .. }))
                && matches!(key.direction, CompareDirection::Lt | CompareDirection::Gt)
                && key.then.is_none()
        };
        match super::sort_comparator::recognise(plan, &[x.dtype]).filter(strict) {
            Some(key) => self.top_k_result(instr, x, k, key),
            None => self.err(
                instr,
                format!(
                    "TopK comparator '{}' is not a strict order on its values (statetensor runs TopK with a TOTALORDER float or an integer LT/GT comparison)",
                    plan.name
                ),
            ),
        }
    }

    fn top_k_operand<'t>(&self, instr: &Instr, ots: &[&'t Type]) -> Result<&'t ArrayType> {
        let [t] = ots else {
            return self.err(instr, format!("top-k takes 1 operand, found {}", ots.len()));
        };
        let x = self.array(instr, t, "the top-k operand")?;
        if x.dims.is_empty() || x.dtype == DType::Pred {
            return self.err(
                instr,
                format!("top-k of {x}: expected numbers of rank 1 or more"),
            );
        }
        Ok(x)
    }

    fn top_k_result(
        &self,
        instr: &Instr,
        x: &ArrayType,
        k: usize,
        key: SortKey,
    ) -> Result<(Op, Type)> {
        let n = *x.dims.last().expect("rank checked");
        if k > n {
            return self.err(
                instr,
                format!("top-k k={k} exceeds the last dimension of {x}"),
            );
        }
        let mut dims = x.dims.clone();
        *dims.last_mut().expect("rank checked") = k;
        let ty = Type::Tuple(vec![
            Type::Array(ArrayType {
                dtype: x.dtype,
                dims: dims.clone(),
            }),
            Type::Array(ArrayType {
                dtype: DType::S32,
                dims,
            }),
        ]);
        Ok((Op::TopK { k, key }, ty))
    }
}
