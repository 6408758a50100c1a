//! Ops against plain reference implementations on random shapes and values.

use proptest::prelude::*;
use statetensor_core::DType;
use statetensor_hlo::{Program, Tensor, BF16};
use std::sync::Arc;

fn shape_str(d: &[usize]) -> String {
    d.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn f32s(dims: &[usize], v: &[f32]) -> Arc<Tensor> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Arc::new(Tensor::from_le_bytes(DType::F32, dims, &bytes).unwrap())
}

fn i32s(dims: &[usize], v: &[i32]) -> Arc<Tensor> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Arc::new(Tensor::from_le_bytes(DType::S32, dims, &bytes).unwrap())
}

fn run(text: &str, args: Vec<Arc<Tensor>>) -> Vec<Arc<Tensor>> {
    Program::parse(text, "prop.hlo")
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .execute(args)
        .unwrap()
}

fn strides(d: &[usize]) -> Vec<usize> {
    let mut s = vec![1; d.len()];
    for i in (0..d.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * d[i + 1];
    }
    s
}

fn unflatten(mut k: usize, d: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; d.len()];
    for i in (0..d.len()).rev() {
        idx[i] = k % d[i];
        k /= d[i];
    }
    idx
}

fn dims_strategy(max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..5, 1..=max_rank)
}

fn vals(n: usize) -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(-8.0f32..8.0, n)
}

/// XLA's integer division and remainder, from first principles.
fn xla_div(a: i32, b: i32) -> i32 {
    if b == 0 {
        -1
    } else if a == i32::MIN && b == -1 {
        i32::MIN
    } else {
        a / b
    }
}

fn xla_rem(a: i32, b: i32) -> i32 {
    if b == 0 {
        a
    } else if a == i32::MIN && b == -1 {
        0
    } else {
        a % b
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::cases(48), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn transpose_matches_index_mapping((d, v, perm) in dims_strategy(4).prop_flat_map(|d| {
        let n = d.iter().product();
        let r = d.len();
        (Just(d), vals(n), Just((0..r).collect::<Vec<_>>()).prop_shuffle())
    })) {
        let out: Vec<usize> = perm.iter().map(|&p| d[p]).collect();
        let text = format!("HloModule t\nENTRY e {{\n  p = f32[{}] parameter(0)\n  ROOT t = f32[{}] transpose(p), dimensions={{{}}}\n}}\n",
            shape_str(&d), shape_str(&out), shape_str(&perm));
        let got = run(&text, vec![f32s(&d, &v)])[0].to_f64_vec();
        let ist = strides(&d);
        for (k, g) in got.iter().enumerate() {
            let oi = unflatten(k, &out);
            let src: usize = perm.iter().enumerate().map(|(i, &p)| oi[i] * ist[p]).sum();
            prop_assert_eq!(*g, v[src] as f64);
        }
    }

    #[test]
    fn reduce_sum_matches_loops((d, v, mask) in dims_strategy(3).prop_flat_map(|d| {
        let n = d.iter().product();
        let r = d.len();
        (Just(d), vals(n), proptest::collection::vec(any::<bool>(), r))
    })) {
        let red: Vec<usize> = (0..d.len()).filter(|&i| mask[i]).collect();
        let kept: Vec<usize> = (0..d.len()).filter(|&i| !mask[i]).collect();
        let od: Vec<usize> = kept.iter().map(|&i| d[i]).collect();
        let text = format!("HloModule r\nadd {{\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT c = f32[] add(a, b)\n}}\nENTRY e {{\n  p = f32[{}] parameter(0)\n  z = f32[] constant(0)\n  ROOT r = f32[{}] reduce(p, z), dimensions={{{}}}, to_apply=add\n}}\n",
            shape_str(&d), shape_str(&od), shape_str(&red));
        let got = run(&text, vec![f32s(&d, &v)])[0].to_f64_vec();
        let mut want = vec![0f64; od.iter().product()];
        let ost = strides(&od);
        for (k, x) in v.iter().enumerate() {
            let idx = unflatten(k, &d);
            let o: usize = kept.iter().enumerate().map(|(j, &i)| idx[i] * ost[j]).sum();
            want[o] += *x as f64;
        }
        for (g, w) in got.iter().zip(&want) {
            prop_assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "got {g} want {w}");
        }
    }

    #[test]
    fn batched_dot_matches_naive(b in 1usize..4, m in 1usize..6, k in 1usize..7, n in 1usize..6, seed in any::<u64>()) {
        let mut s = seed;
        let mut rnd = || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0 };
        let l: Vec<f32> = (0..b * k * m).map(|_| rnd()).collect(); // lhs laid out [k, b, m]
        let r: Vec<f32> = (0..b * n * k).map(|_| rnd()).collect(); // rhs laid out [b, n, k]
        let text = format!("HloModule d\nENTRY e {{\n  l = f32[{k},{b},{m}] parameter(0)\n  r = f32[{b},{n},{k}] parameter(1)\n  ROOT d = f32[{b},{m},{n}] dot(l, r), lhs_batch_dims={{1}}, rhs_batch_dims={{0}}, lhs_contracting_dims={{0}}, rhs_contracting_dims={{2}}\n}}\n");
        let got = run(&text, vec![f32s(&[k, b, m], &l), f32s(&[b, n, k], &r)])[0].to_f64_vec();
        for bi in 0..b { for mi in 0..m { for ni in 0..n {
            let mut acc = 0f64;
            for ki in 0..k { acc += l[(ki * b + bi) * m + mi] as f64 * r[(bi * n + ni) * k + ki] as f64; }
            let g = got[(bi * m + mi) * n + ni];
            prop_assert!((g - acc).abs() <= 1e-4 * (1.0 + acc.abs()), "got {g} want {acc}");
        }}}
    }

    #[test]
    fn integer_arithmetic_follows_xla(a in proptest::collection::vec(any::<i32>(), 8), mut b in proptest::collection::vec(any::<i32>(), 8), sh in proptest::collection::vec(0i32..40, 8)) {
        b[0] = 0; b[1] = -1;
        let text = "HloModule i\nENTRY e {\n  a = s32[8] parameter(0)\n  b = s32[8] parameter(1)\n  s = s32[8] parameter(2)\n  d = s32[8] divide(a, b)\n  r = s32[8] remainder(a, b)\n  m = s32[8] multiply(a, b)\n  l = s32[8] shift-left(a, s)\n  ra = s32[8] shift-right-arithmetic(a, s)\n  rl = s32[8] shift-right-logical(a, s)\n  ROOT t = (s32[8], s32[8], s32[8], s32[8], s32[8], s32[8]) tuple(d, r, m, l, ra, rl)\n}\n";
        let out = run(text, vec![i32s(&[8], &a), i32s(&[8], &b), i32s(&[8], &sh)]);
        let col = |k: usize| out[k].to_f64_vec().into_iter().map(|x| x as i32).collect::<Vec<_>>();
        for i in 0..8 {
            prop_assert_eq!(col(0)[i], xla_div(a[i], b[i]));
            prop_assert_eq!(col(1)[i], xla_rem(a[i], b[i]));
            prop_assert_eq!(col(2)[i], a[i].wrapping_mul(b[i]));
            let s = sh[i] as u32;
            prop_assert_eq!(col(3)[i], if s >= 32 { 0 } else { a[i] << s });
            prop_assert_eq!(col(4)[i], if s >= 32 { a[i] >> 31 } else { a[i] >> s });
            prop_assert_eq!(col(5)[i], if s >= 32 { 0 } else { ((a[i] as u32) >> s) as i32 });
        }
    }

    #[test]
    fn dynamic_slice_and_update_clamp_like_xla(rows in 1usize..9, cols in 1usize..9, sr in 1usize..9, sc in 1usize..9, i in -12i32..12, j in -12i32..12) {
        let (sr, sc) = (sr.min(rows), sc.min(cols));
        let v: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
        let text = format!("HloModule s\nENTRY e {{\n  p = f32[{rows},{cols}] parameter(0)\n  i = s32[] parameter(1)\n  j = s32[] parameter(2)\n  u = f32[{sr},{sc}] parameter(3)\n  ds = f32[{sr},{sc}] dynamic-slice(p, i, j), dynamic_slice_sizes={{{sr},{sc}}}\n  du = f32[{rows},{cols}] dynamic-update-slice(p, u, i, j)\n  ROOT t = (f32[{sr},{sc}], f32[{rows},{cols}]) tuple(ds, du)\n}}\n");
        let upd = vec![-1f32; sr * sc];
        let out = run(&text, vec![f32s(&[rows, cols], &v), i32s(&[], &[i]), i32s(&[], &[j]), f32s(&[sr, sc], &upd)]);
        let r0 = i.clamp(0, (rows - sr) as i32) as usize;
        let c0 = j.clamp(0, (cols - sc) as i32) as usize;
        let ds = out[0].to_f64_vec();
        let du = out[1].to_f64_vec();
        for a in 0..sr { for b in 0..sc { prop_assert_eq!(ds[a * sc + b], ((r0 + a) * cols + c0 + b) as f64); } }
        for a in 0..rows { for b in 0..cols {
            let inside = a >= r0 && a < r0 + sr && b >= c0 && b < c0 + sc;
            prop_assert_eq!(du[a * cols + b], if inside { -1.0 } else { (a * cols + b) as f64 });
        }}
    }

    #[test]
    fn slice_pad_reverse_concat_match_index_math(n in 1usize..10, start in 0usize..10, stride in 1usize..4, lo in -3i64..4, hi in -3i64..4, interior in 0usize..3) {
        let start = start.min(n - 1);
        let v: Vec<f32> = (0..n).map(|x| x as f32 + 1.0).collect();
        let sl: Vec<f32> = (start..n).step_by(stride).map(|k| v[k]).collect();
        let mut padded: Vec<f32> = Vec::new();
        let full = (n + (n - 1) * interior) as i64;
        let total = lo + hi + full;
        prop_assume!(total >= 0);
        for p in 0..total {
            let q = p - lo;
            padded.push(if q >= 0 && q < full && q as usize % (interior + 1) == 0 { v[q as usize / (interior + 1)] } else { 0.0 });
        }
        let rev: Vec<f32> = v.iter().rev().copied().collect();
        let cat: Vec<f32> = v.iter().chain(&rev).copied().collect();
        let text = format!("HloModule s\nENTRY e {{\n  p = f32[{n}] parameter(0)\n  z = f32[] constant(0)\n  s = f32[{}] slice(p), slice={{[{start}:{n}:{stride}]}}\n  q = f32[{total}] pad(p, z), padding={lo}_{hi}_{interior}\n  r = f32[{n}] reverse(p), dimensions={{0}}\n  c = f32[{}] concatenate(p, r), dimensions={{0}}\n  ROOT t = (f32[{}], f32[{total}], f32[{n}], f32[{}]) tuple(s, q, r, c)\n}}\n", sl.len(), 2 * n, sl.len(), 2 * n);
        let out = run(&text, vec![f32s(&[n], &v)]);
        let as64 = |x: &[f32]| x.iter().map(|&y| y as f64).collect::<Vec<_>>();
        prop_assert_eq!(out[0].to_f64_vec(), as64(&sl));
        prop_assert_eq!(out[1].to_f64_vec(), as64(&padded));
        prop_assert_eq!(out[2].to_f64_vec(), as64(&rev));
        prop_assert_eq!(out[3].to_f64_vec(), as64(&cat));
    }

    #[test]
    fn convert_rounds_and_saturates(v in proptest::collection::vec(prop_oneof![any::<f32>(), -3.0e9f32..3.0e9, -70000.0f32..70000.0], 8)) {
        let text = "HloModule c\nENTRY e {\n  p = f32[8] parameter(0)\n  a = s32[8] convert(p)\n  b = bf16[8] convert(p)\n  c = u8[8] convert(p)\n  ROOT t = (s32[8], bf16[8], u8[8]) tuple(a, b, c)\n}\n";
        let out = run(text, vec![f32s(&[8], &v)]);
        let bf = out[1].to_le_bytes();
        for (i, x) in v.iter().enumerate() {
            prop_assert_eq!(out[0].to_f64_vec()[i], (*x as i32) as f64);
            prop_assert_eq!(out[2].to_f64_vec()[i], (*x as u8) as f64);
            // bf16: round to nearest even on the f32 bit pattern
            let bits = x.to_bits();
            let want = if x.is_nan() { None } else { Some((bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16) as u16) };
            let got = u16::from_le_bytes([bf[2 * i], bf[2 * i + 1]]);
            match want {
                Some(w) => prop_assert_eq!(got, w),
                None => prop_assert!(BF16(got).to_f32().is_nan()),
            }
        }
    }

    #[test]
    fn sort_matches_std(v in proptest::collection::vec(-100i32..100, 1..40)) {
        let n = v.len();
        let text = format!("HloModule s\nlt {{\n  a = s32[] parameter(0)\n  b = s32[] parameter(1)\n  ROOT c = pred[] compare(a, b), direction=LT\n}}\nENTRY e {{\n  p = s32[{n}] parameter(0)\n  ROOT s = s32[{n}] sort(p), dimensions={{0}}, is_stable=true, to_apply=lt\n}}\n");
        let got = run(&text, vec![i32s(&[n], &v)])[0].to_f64_vec();
        let mut want = v.clone();
        want.sort();
        prop_assert_eq!(got, want.iter().map(|&x| x as f64).collect::<Vec<_>>());
    }

    #[test]
    fn gather_rows_matches_indexing(rows in 1usize..8, cols in 1usize..5, idx in proptest::collection::vec(-3i32..10, 1..6)) {
        let v: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
        let k = idx.len();
        let text = format!("HloModule g\nENTRY e {{\n  p = f32[{rows},{cols}] parameter(0)\n  i = s32[{k},1] parameter(1)\n  ROOT g = f32[{k},{cols}] gather(p, i), offset_dims={{1}}, collapsed_slice_dims={{0}}, start_index_map={{0}}, index_vector_dim=1, slice_sizes={{1,{cols}}}\n}}\n");
        let got = run(&text, vec![f32s(&[rows, cols], &v), i32s(&[k, 1], &idx)])[0].to_f64_vec();
        for (a, &r) in idx.iter().enumerate() {
            let r = r.clamp(0, rows as i32 - 1) as usize;
            for c in 0..cols { prop_assert_eq!(got[a * cols + c], (r * cols + c) as f64); }
        }
    }
}

#[test]
fn integer_power_follows_xla() {
    let text = "HloModule p\nENTRY e {\n  a = s32[8] parameter(0)\n  b = s32[8] parameter(1)\n  ROOT p = s32[8] power(a, b)\n}\n";
    let a = [2, -3, 1, -1, 0, 5, 2, -1];
    let b = [10, 3, -2, -3, 0, 2, -1, 4];
    let got = run(text, vec![i32s(&[8], &a), i32s(&[8], &b)])[0].to_f64_vec();
    assert_eq!(got, vec![1024.0, -27.0, 1.0, -1.0, 1.0, 25.0, 0.0, 1.0]);
}
