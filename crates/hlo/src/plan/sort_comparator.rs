//! Recognising sort comparators that order by one key, so `sort` compares natively.
//!
//! A comparator `less(a0, b0, a1, b1, ...)` is recognised when its root is
//! `compare(g(a_k), g(b_k))` for one operand `k`, any direction and comparison type, with
//! `g` the same on both sides and either the identity or the canonicalisation JAX writes
//! before a float comparison, `select(x != x, C_nan, select(x == C_0, C_z, x))` (all NaNs
//! one NaN, -0 as +0), with its constants read from the region. Such a comparator's answer
//! depends only on the two elements of operand `k`, through a key computed once per
//! element ([`SortKey`]); the kernel then runs the same stable merge sort with a native
//! comparison — the same order as interpreting the region, comparison for comparison,
//! even where the comparator is not a strict weak order (plain `LT` with NaNs).
//! `jnp.sort`, `jnp.argsort` (values with an iota), `sort` with `descending=True`, and
//! torch-xla's `sort` lower this way. XLA's own total-order comparator (the float's bits
//! as a signed integer, flipped below zero: what its `TopK` custom-call carries) is
//! recognised too. Any other comparator runs through the interpreter.

use super::{CompPlan, Op, Step};
use crate::kernels::{KeyFn, SortKey};
use crate::tensor::Elem;
use statetensor_core::DType;
use std::collections::HashMap;

/// The single-key order `plan` (a sort comparator over operands of `dtypes`) implements,
/// if it is one.
pub(super) fn recognise(plan: &CompPlan, dtypes: &[DType]) -> Option<SortKey> {
    let producers: HashMap<usize, &Step> = plan.steps.iter().map(|s| (s.out, s)).collect();
    let root = producers.get(&plan.root)?;
    let Op::Compare(direction, total_order) = root.op else {
        return None;
    };
    let [a, b] = root.operands[..] else {
        return None;
    };
    let (pa, fa) = key_fn(plan, &producers, a)?;
    let (pb, fb) = key_fn(plan, &producers, b)?;
    if pa % 2 != 0 || pb != pa + 1 || !fa.same(&fb) {
        return None;
    }
    let operand = pa / 2;
    let float = dtypes.get(operand)?.is_float();
    let fits = match fa {
        KeyFn::Identity => true,
        KeyFn::Canonical { .. } => float,
        // the bits of a signed integer type of the float's width
        KeyFn::SignedBits { .. } => float && !total_order,
    };
    if !fits {
        return None;
    }
    Some(SortKey {
        operand,
        direction,
        total_order: total_order && float,
        key: fa,
    })
}

/// `select(b < below, xor(flip, b), b)` with `b = bitcast(x)`: XLA's total-order key.
fn signed_bits(
    plan: &CompPlan,
    producers: &HashMap<usize, &Step>,
    slot: usize,
) -> Option<(usize, KeyFn)> {
    let op = |s: usize| producers.get(&s).map(|st| (&st.op, &st.operands[..]));
    let (Op::Select, &[is_below, flipped, b]) = op(slot)? else {
        return None;
    };
    let bitcast = producers.get(&b)?;
    let (Op::BitcastConvert, &[x]) = (&bitcast.op, &bitcast.operands[..]) else {
        return None;
    };
    let bits = bitcast.ty.as_array()?.dtype;
    let p = param_of(plan, x)?;
    let (Op::Compare(crate::kernels::CompareDirection::Lt, false), &[b2, below]) = op(is_below)?
    else {
        return None;
    };
    let flip = match op(flipped)? {
        (Op::Binary(crate::kernels::BinaryOp::Xor), &[m, b3]) if b3 == b => m,
        (Op::Binary(crate::kernels::BinaryOp::Xor), &[b3, m]) if b3 == b => m,
        _ => return None,
    };
    if b2 != b {
        return None;
    }
    let int = |s: usize| match &producers.get(&s)?.op {
        Op::Constant(t) if t.len() == 1 && t.dtype() == bits => {
            crate::with_tensor!(&**t, a => a.iter().next().map(|x| x.to_i128()))
        }
        _ => None,
    };
    Some((
        p,
        KeyFn::SignedBits {
            bits,
            below: int(below)?,
            flip: int(flip)?,
        },
    ))
}

fn param_of(plan: &CompPlan, slot: usize) -> Option<usize> {
    plan.params.iter().position(|&p| p == Some(slot))
}

fn scalar_constant(producers: &HashMap<usize, &Step>, slot: usize) -> Option<f64> {
    match &producers.get(&slot)?.op {
        Op::Constant(t) if t.len() == 1 => t.to_f64_vec().first().copied(),
        _ => None,
    }
}

/// `slot` as (parameter, key function), if it is a parameter or its canonicalisation.
fn key_fn(
    plan: &CompPlan,
    producers: &HashMap<usize, &Step>,
    slot: usize,
) -> Option<(usize, KeyFn)> {
    if let Some(p) = param_of(plan, slot) {
        return Some((p, KeyFn::Identity));
    }
    let op = |s: usize| producers.get(&s).map(|st| (&st.op, &st.operands[..]));
    if let Some(found) = signed_bits(plan, producers, slot) {
        return Some(found);
    }
    // select(x != x, nan, inner)
    let (Op::Select, &[is_nan, nan, inner]) = op(slot)? else {
        return None;
    };
    let (Op::Compare(crate::kernels::CompareDirection::Ne, false), &[x, x2]) = op(is_nan)? else {
        return None;
    };
    let p = param_of(plan, x).filter(|_| x == x2)?;
    let nan = scalar_constant(producers, nan)?;
    // inner = select(x == zero_match, zero, x)
    let (Op::Select, &[is_zero, zero, rest]) = op(inner)? else {
        return None;
    };
    let (Op::Compare(crate::kernels::CompareDirection::Eq, false), &[x3, zero_match]) =
        op(is_zero)?
    else {
        return None;
    };
    if x3 != x || rest != x {
        return None;
    }
    Some((
        p,
        KeyFn::Canonical {
            nan,
            zero_match: scalar_constant(producers, zero_match)?,
            zero: scalar_constant(producers, zero)?,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{compile, Op};
    use crate::kernels::{CompareDirection, KeyFn};

    fn sort_key(comparator_body: &str) -> Option<crate::kernels::SortKey> {
        let text = format!(
            "HloModule s\nless {{\n{comparator_body}\n}}\nENTRY e {{\n  x = f32[5] parameter(0)\n  i = s32[5] iota(), iota_dimension=0\n  ROOT s = (f32[5], s32[5]) sort(x, i), dimensions={{0}}, to_apply=less\n}}\n"
        );
        let module = crate::parse::parse_module(&text, "s.hlo").unwrap();
        let plans = compile(&module).unwrap();
        let entry = plans[module.entry].as_ref().unwrap();
        entry.steps.iter().find_map(|s| match &s.op {
            Op::Sort { key, .. } => Some(*key),
            _ => None,
        })?
    }

    /// JAX 0.10's comparator for `jnp.argsort` of f32 values, as it prints it.
    const JAX_ARGSORT: &str = "  sort.6 = s32[] parameter(2)
  sort.7 = s32[] parameter(3)
  sort.4 = f32[] parameter(0)
  ne.2 = pred[] compare(sort.4, sort.4), direction=NE
  constant.2 = f32[] constant(nan)
  constant.3 = f32[] constant(0)
  eq.2 = pred[] compare(sort.4, constant.3), direction=EQ
  select_n.4 = f32[] select(eq.2, constant.3, sort.4)
  select_n.5 = f32[] select(ne.2, constant.2, select_n.4)
  sort.5 = f32[] parameter(1)
  ne.3 = pred[] compare(sort.5, sort.5), direction=NE
  eq.3 = pred[] compare(sort.5, constant.3), direction=EQ
  select_n.6 = f32[] select(eq.3, constant.3, sort.5)
  select_n.7 = f32[] select(ne.3, constant.2, select_n.6)
  ROOT lt_to.1 = pred[] compare(select_n.5, select_n.7), direction=LT, type=TOTALORDER";

    #[test]
    fn jax_argsort_comparator_is_recognised() {
        let key = sort_key(JAX_ARGSORT).expect("recognised");
        assert_eq!(key.operand, 0);
        assert_eq!(key.direction, CompareDirection::Lt);
        assert!(key.total_order);
        assert!(matches!(key.key, KeyFn::Canonical { zero, .. } if zero == 0.0));
    }

    #[test]
    fn plain_comparisons_are_recognised_on_any_operand() {
        let key = sort_key(
            "  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  c = s32[] parameter(2)\n  d = s32[] parameter(3)\n  ROOT r = pred[] compare(c, d), direction=GT",
        )
        .expect("recognised");
        assert_eq!((key.operand, key.direction), (1, CompareDirection::Gt));
        assert!(!key.total_order);
    }

    #[test]
    fn other_comparators_stay_interpreted() {
        // the operands swapped (b before a), one element compared with itself, and a root
        // that is not a comparison
        for body in [
            "  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  c = s32[] parameter(2)\n  d = s32[] parameter(3)\n  ROOT r = pred[] compare(b, a), direction=LT",
            "  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  c = s32[] parameter(2)\n  d = s32[] parameter(3)\n  ROOT r = pred[] compare(a, a), direction=LT",
            &(JAX_ARGSORT.replace("ROOT lt_to.1 = pred[]", "lt_to.1 = pred[]")
                + "\n  ROOT w = pred[] and(lt_to.1, lt_to.1)"),
        ] {
            assert!(sort_key(body).is_none(), "{body}");
        }
    }
}
