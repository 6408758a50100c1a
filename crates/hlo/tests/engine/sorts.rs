//! `sort` with a comparator the planner recognises as ordering by one key (run natively)
//! gives exactly what interpreting the same comparator gives: the comparator is written
//! twice, once as frontends write it and once with its root wrapped in `and(c, c)` (the
//! same answer, which the planner does not recognise). Random rows with NaNs of both
//! signs, both zeros, infinities and ties; every comparison type and direction; values
//! carried along with an iota (argsort); both axes.

use proptest::prelude::*;
use statetensor_core::DType;
use statetensor_hlo::{Program, Tensor};
use std::sync::Arc;

/// JAX's comparator for a float sort: NaNs made one NaN, -0 made +0, then `TOTALORDER`.
fn jax_key(p: usize, ty: &str) -> String {
    format!(
        "  a{p} = {ty}[] parameter({p})\n  ne{p} = pred[] compare(a{p}, a{p}), direction=NE\n  cn{p} = {ty}[] constant(nan)\n  cz{p} = {ty}[] constant(0)\n  eq{p} = pred[] compare(a{p}, cz{p}), direction=EQ\n  s{p} = {ty}[] select(eq{p}, cz{p}, a{p})\n  k{p} = {ty}[] select(ne{p}, cn{p}, s{p})\n"
    )
}

fn comparator(ty: &str, carried: &[&str], dir: &str, total: bool, jax: bool, wrap: bool) -> String {
    let mut body = String::new();
    let (ka, kb) = if jax {
        body += &jax_key(0, ty);
        body += &jax_key(1, ty);
        ("k0", "k1")
    } else {
        body += &format!("  a0 = {ty}[] parameter(0)\n  a1 = {ty}[] parameter(1)\n");
        ("a0", "a1")
    };
    for (i, c) in carried.iter().enumerate() {
        body += &format!(
            "  c{} = {c}[] parameter({})\n  d{} = {c}[] parameter({})\n",
            i,
            2 + 2 * i,
            i,
            3 + 2 * i
        );
    }
    let ty_attr = if total { ", type=TOTALORDER" } else { "" };
    let cmp = format!("compare({ka}, {kb}), direction={dir}{ty_attr}");
    if wrap {
        body += &format!("  r = pred[] {cmp}\n  ROOT w = pred[] and(r, r)\n");
    } else {
        body += &format!("  ROOT r = pred[] {cmp}\n");
    }
    format!("less {{\n{body}}}\n")
}

fn module(
    ty: &str,
    dims: [usize; 2],
    dim: usize,
    dir: &str,
    total: bool,
    jax: bool,
    wrap: bool,
) -> String {
    let shape = format!("{},{}", dims[0], dims[1]);
    format!(
        "HloModule s\n{}\nENTRY e {{\n  x = {ty}[{shape}] parameter(0)\n  i = s32[{shape}] iota(), iota_dimension={dim}\n  ROOT s = ({ty}[{shape}], s32[{shape}]) sort(x, i), dimensions={{{dim}}}, is_stable=true, to_apply=less\n}}\n",
        comparator(ty, &["s32"], dir, total, jax, wrap)
    )
}

fn special(k: u32) -> f32 {
    match k {
        0 => f32::NAN,
        1 => -f32::NAN,
        2 => 0.0,
        3 => -0.0,
        4 => f32::INFINITY,
        5 => f32::NEG_INFINITY,
        6 => 1.0,
        _ => -1.0,
    }
}

fn run(text: &str, x: Arc<Tensor>) -> Vec<Vec<u8>> {
    Program::parse(text, "s.hlo")
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .execute(vec![x])
        .unwrap()
        .iter()
        .map(|t| t.to_le_bytes())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::cases(96), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn recognised_comparators_sort_as_the_interpreted_region(
        rows in 1usize..4, cols in 1usize..40, dim in 0usize..2,
        dir in prop::sample::select(vec!["LT", "GT", "LE", "GE"]),
        total in any::<bool>(), jax in any::<bool>(), int in any::<bool>(),
        raw in prop::collection::vec((0u32..12, -3i32..4), 160),
    ) {
        let dims = [rows, cols];
        let n = rows * cols;
        let (ty, x) = if int {
            let v: Vec<u8> = raw[..n].iter().flat_map(|&(_, i)| i.to_le_bytes()).collect();
            ("s32", Tensor::from_le_bytes(DType::S32, &dims, &v).unwrap())
        } else {
            let v: Vec<u8> = raw[..n]
                .iter()
                .flat_map(|&(k, i)| (if k < 8 { special(k) } else { i as f32 }).to_le_bytes())
                .collect();
            ("f32", Tensor::from_le_bytes(DType::F32, &dims, &v).unwrap())
        };
        let x = Arc::new(x);
        let jax = jax && !int;
        let native = module(ty, dims, dim, dir, total, jax, false);
        let interpreted = module(ty, dims, dim, dir, total, jax, true);
        prop_assert_eq!(run(&native, x.clone()), run(&interpreted, x), "{}", native);
    }
}

/// A `TopK` custom-call without a comparator takes the k largest, descending, with their
/// indices (what XLA:CPU computes for it; XLA's SPMD partitioner test writes one).
#[test]
fn top_k_custom_call_without_a_comparator_takes_the_largest() {
    let text = "HloModule t\nENTRY e {\n  p = f32[2,6] parameter(0)\n  ROOT t = (f32[2,2], s32[2,2]) custom-call(p), custom_call_target=\"TopK\"\n}\n";
    let x: Vec<u8> = [3f32, 1., 4., 1., 5., 9., 2., 6., 5., 3., 5., 8.]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let x = Arc::new(Tensor::from_le_bytes(DType::F32, &[2, 6], &x).unwrap());
    let out = Program::parse(text, "t.hlo")
        .unwrap()
        .execute(vec![x])
        .unwrap();
    assert_eq!(out[0].to_f64_vec(), [9., 5., 8., 6.]);
    assert_eq!(out[1].to_f64_vec(), [5., 4., 5., 1.]);
}

/// XLA's TopK decomposition comparator (spmd_partitioner_test): the float's total-order
/// bits compared GT, and where neither element is greater, the indices compared LT.
fn two_key_module(n: usize, wrap: bool) -> String {
    let root = if wrap {
        "  r = pred[] select(tie, by_index, gt_ab)\n  ROOT w = pred[] and(r, r)"
    } else {
        "  ROOT r = pred[] select(tie, by_index, gt_ab)"
    };
    format!(
        "HloModule s
less {{
  a = f32[] parameter(0)
  ba = s32[] bitcast-convert(a)
  zero = s32[] constant(0)
  na = pred[] compare(ba, zero), direction=LT
  maxi = u32[] constant(2147483647)
  ua = u32[] bitcast-convert(a)
  fa = u32[] subtract(maxi, ua)
  sa = s32[] bitcast-convert(fa)
  ka = s32[] select(na, sa, ba)
  b = f32[] parameter(1)
  bb = s32[] bitcast-convert(b)
  nb = pred[] compare(bb, zero), direction=LT
  ub = u32[] bitcast-convert(b)
  fb = u32[] subtract(maxi, ub)
  sb = s32[] bitcast-convert(fb)
  kb = s32[] select(nb, sb, bb)
  gt_ab = pred[] compare(ka, kb), direction=GT
  gt_ba = pred[] compare(kb, ka), direction=GT
  tie = pred[] compare(gt_ab, gt_ba), direction=EQ
  i = s32[] parameter(2)
  j = s32[] parameter(3)
  by_index = pred[] compare(i, j), direction=LT
{root}
}}
ENTRY e {{
  x = f32[2,{n}] parameter(0)
  k = s32[2,{n}] parameter(1)
  ROOT s = (f32[2,{n}], s32[2,{n}]) sort(x, k), dimensions={{1}}, to_apply=less
}}
"
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::cases(48), failure_persistence: None, ..ProptestConfig::default() })]

    /// The recognised two-key comparator sorts exactly as the interpreted region, with
    /// ties, NaNs, signed zeros and indices in any order (not only an iota).
    #[test]
    fn a_key_with_an_index_tie_break_sorts_as_the_interpreted_region(
        cols in 1usize..30,
        raw in prop::collection::vec((0u32..12, -3i32..4, -5i32..5), 60),
    ) {
        let dims = [2, cols];
        let n = 2 * cols;
        let x: Vec<u8> = raw[..n].iter()
            .flat_map(|&(k, i, _)| (if k < 8 { special(k) } else { i as f32 }).to_le_bytes())
            .collect();
        let idx: Vec<u8> = raw[..n].iter().flat_map(|&(_, _, j)| j.to_le_bytes()).collect();
        let x = Arc::new(Tensor::from_le_bytes(DType::F32, &dims, &x).unwrap());
        let k = Arc::new(Tensor::from_le_bytes(DType::S32, &dims, &idx).unwrap());
        let go = |text: &str| -> Vec<Vec<u8>> {
            Program::parse(text, "s.hlo").unwrap().execute(vec![x.clone(), k.clone()]).unwrap()
                .iter().map(|t| t.to_le_bytes()).collect()
        };
        prop_assert_eq!(go(&two_key_module(cols, false)), go(&two_key_module(cols, true)));
    }
}
