//! Recognising sort comparators that order by one key (or one key and a tie-break), so
//! `sort` compares natively.
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
//! recognised too, as is the comparator XLA's TopK decomposition writes: that key, and on a
//! tie (neither element before the other) a second comparison, of the indices. Any other
//! comparator runs through the interpreter.

use super::{CompPlan, Op, Step};
use crate::kernels::{KeyFn, SortKey};
use crate::tensor::Elem;
use statetensor_core::DType;
use std::collections::HashMap;

/// The order `plan` (a sort comparator over operands of `dtypes`) implements, if it is one
/// key's comparison, or one key's with a second deciding ties:
/// `select(compare(p, q) EQ, second, p)` with `p = compare(k(a), k(b))` and `q` the same
/// comparison of `k(b), k(a)` (XLA's TopK decomposition: by value, then by index).
pub(super) fn recognise(plan: &CompPlan, dtypes: &[DType]) -> Option<SortKey> {
    let producers: HashMap<usize, &Step> = plan.steps.iter().map(|s| (s.out, s)).collect();
    if let Some(key) = compare_key(plan, &producers, dtypes, plan.root) {
        return Some(key);
    }
    let root = producers.get(&plan.root)?;
    let (Op::Select, &[tie, second, first]) = (&root.op, &root.operands[..]) else {
        return None;
    };
    let tie = producers.get(&tie)?;
    let (Op::Compare(crate::kernels::CompareDirection::Eq, false), &[p, q]) =
        (&tie.op, &tie.operands[..])
    else {
        return None;
    };
    let swapped = |x: usize, y: usize| {
        let (sx, sy) = (producers.get(&x)?, producers.get(&y)?);
        let same_cmp = matches!((&sx.op, &sy.op), (Op::Compare(d1, t1), Op::Compare(d2, t2)) if d1 == d2 && t1 == t2);
        (same_cmp
            && sx.operands.len() == 2
            && sx.operands[0] == sy.operands[1]
            && sx.operands[1] == sy.operands[0])
            .then_some(())
    };
    if p != first {
        return None;
    }
    swapped(p, q)?;
    let mut key = compare_key(plan, &producers, dtypes, first)?;
    let second = compare_key(plan, &producers, dtypes, second)?;
    key.then = Some(crate::kernels::TieBreak {
        operand: second.operand,
        direction: second.direction,
        total_order: second.total_order,
        key: second.key,
    });
    Some(key)
}

/// The key of the comparison computed at `slot`: `compare(g(a_k), g(b_k))`.
fn compare_key(
    plan: &CompPlan,
    producers: &HashMap<usize, &Step>,
    dtypes: &[DType],
    slot: usize,
) -> Option<SortKey> {
    let step = producers.get(&slot)?;
    let Op::Compare(direction, total_order) = step.op else {
        return None;
    };
    let [a, b] = step.operands[..] else {
        return None;
    };
    let (pa, fa) = key_fn(plan, producers, a)?;
    let (pb, fb) = key_fn(plan, producers, b)?;
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
        then: None,
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
        // bitcast(C - bitcast_unsigned(x)), which for the negative floats it is selected
        // for (bits 0x8000_0000 + v) is C - 0x8000_0000 - v = C ^ bits when C = 0x7fff_ffff
        (Op::BitcastConvert, &[sub]) => match op(sub)? {
            (Op::Binary(crate::kernels::BinaryOp::Subtract), &[m, ux]) => match op(ux)? {
                (Op::BitcastConvert, &[x2]) if x2 == x => m,
                _ => return None,
            },
            _ => return None,
        },
        _ => return None,
    };
    if b2 != b {
        return None;
    }
    let int = |s: usize| match &producers.get(&s)?.op {
        Op::Constant(t)
            if t.len() == 1 && t.dtype().bits() == bits.bits() && t.dtype().is_int() =>
        {
            crate::with_tensor!(&**t, a => a.iter().next().map(|x| x.to_i128()))
        }
        _ => None,
    };
    let (below, flip) = (int(below)?, int(flip)?);
    let subtracted = matches!(op(flipped)?.0, Op::BitcastConvert);
    if subtracted && (flip != (1 << (bits.bits() - 1)) - 1 || below != 0) {
        // the subtraction equals the xor only for C = 0x7f..f, selected below zero
        return None;
    }
    Some((p, KeyFn::SignedBits { bits, below, flip }))
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

    /// XLA's TopK decomposition: total-order bits compared GT, ties broken by index LT.
    #[test]
    fn a_key_with_a_tie_break_is_recognised() {
        let body = "  a = f32[] parameter(0)
  ba = s32[] bitcast-convert(a)
  zero = s32[] constant(0)
  na = pred[] compare(ba, zero), direction=LT
  maxi = s32[] constant(2147483647)
  fa = s32[] xor(maxi, ba)
  ka = s32[] select(na, fa, ba)
  b = f32[] parameter(1)
  bb = s32[] bitcast-convert(b)
  nb = pred[] compare(bb, zero), direction=LT
  fb = s32[] xor(maxi, bb)
  kb = s32[] select(nb, fb, bb)
  gt_ab = pred[] compare(ka, kb), direction=GT
  gt_ba = pred[] compare(kb, ka), direction=GT
  tie = pred[] compare(gt_ab, gt_ba), direction=EQ
  i = s32[] parameter(2)
  j = s32[] parameter(3)
  by_index = pred[] compare(i, j), direction=LT
  ROOT r = pred[] select(tie, by_index, gt_ab)";
        let key = sort_key(body).expect("recognised");
        assert_eq!((key.operand, key.direction), (0, CompareDirection::Gt));
        let then = key.then.expect("a tie-break");
        assert_eq!((then.operand, then.direction), (1, CompareDirection::Lt));
        assert!(matches!(
            key.key,
            KeyFn::SignedBits {
                flip: 0x7fff_ffff,
                below: 0,
                ..
            }
        ));
        // XLA's spmd partitioner writes the flip as an unsigned subtraction
        let sub = body
            .replace("fa = s32[] xor(maxi, ba)", "ua = u32[] bitcast-convert(a)\n  mu = u32[] constant(2147483647)\n  da = u32[] subtract(mu, ua)\n  fa = s32[] bitcast-convert(da)")
            .replace("fb = s32[] xor(maxi, bb)", "ub = u32[] bitcast-convert(b)\n  mv = u32[] constant(2147483647)\n  db = u32[] subtract(mv, ub)\n  fb = s32[] bitcast-convert(db)");
        let key = sort_key(&sub).expect("recognised");
        assert!(
            matches!(
                key.key,
                KeyFn::SignedBits {
                    flip: 0x7fff_ffff,
                    ..
                }
            ) && key.then.is_some()
        );
        // the tie test must compare the same comparison with its operands swapped
        assert!(sort_key(&body.replace(
            "compare(kb, ka), direction=GT",
            "compare(ka, kb), direction=GT"
        ))
        .is_none());
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
