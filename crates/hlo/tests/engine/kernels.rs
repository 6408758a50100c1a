//! The threaded and vectorised kernel paths, which the JAX fixtures are too small to reach:
//! matrix-vector products split by rows or by columns, batched attention-shaped products,
//! eight-lane float reductions and the slice loop of large elementwise ops — each against a
//! plain reference computed in f64 (or exactly, where the result must be exact).

use statetensor_core::DType;
use statetensor_hlo::{Program, Tensor};
use std::sync::Arc;

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

fn tensor(dims: &[usize], v: &[f32]) -> Arc<Tensor> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Arc::new(Tensor::from_le_bytes(DType::F32, dims, &bytes).unwrap())
}

fn run(text: &str, args: Vec<Arc<Tensor>>) -> Vec<f64> {
    Program::parse(text, "kernels.hlo")
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .execute(args)
        .unwrap()[0]
        .to_f64_vec()
}

/// `got` matches sums of products `want` within f32 rounding of `scale` (the sum of the
/// terms' magnitudes).
fn assert_sums(got: &[f64], want: &[(f64, f64)], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: element count");
    for (i, (g, (w, scale))) in got.iter().zip(want).enumerate() {
        let tol = 1e-5 * scale + 1e-6;
        assert!(
            (g - w).abs() <= tol,
            "{what}: element {i} is {g}, expected {w} (tolerance {tol})"
        );
    }
}

/// `y[j] = sum_i v[i] w[i, j]` with `w` row-major `[k, n]`: the row-split threaded path
/// for large products (k·n ≥ 2^20), with `k` not a multiple of the block or of eight.
#[test]
fn large_vector_matrix_products_split_by_rows_match_the_reference() {
    for (k, n) in [(1100, 1000), (1024, 1024), (4099, 300)] {
        let (v, w) = (values(k, 1), values(k * n, 2));
        let text = format!(
            "HloModule g\nENTRY e {{\n  v = f32[{k}] parameter(0)\n  w = f32[{k},{n}] parameter(1)\n  ROOT d = f32[{n}] dot(v, w), lhs_contracting_dims={{0}}, rhs_contracting_dims={{0}}\n}}\n"
        );
        let got = run(&text, vec![tensor(&[k], &v), tensor(&[k, n], &w)]);
        let want: Vec<(f64, f64)> = (0..n)
            .map(|j| {
                (0..k).fold((0.0, 0.0), |(s, a), i| {
                    let t = v[i] as f64 * w[i * n + j] as f64;
                    (s + t, a + t.abs())
                })
            })
            .collect();
        assert_sums(&got, &want, &format!("[{k}] x [{k},{n}]"));
        // the blocks depend on the shape only: the same inputs give the same bits
        let again = run(&text, vec![tensor(&[k], &v), tensor(&[k, n], &w)]);
        assert_eq!(got, again, "[{k}] x [{k},{n}] is deterministic");
    }
}

/// `y[j] = sum_i v[i] w[j, i]`: `w`'s columns (of the contraction) are contiguous, the
/// threaded dot-per-column path.
#[test]
fn large_products_with_contiguous_columns_match_the_reference() {
    let (k, n) = (1000, 1100);
    let (v, w) = (values(k, 3), values(k * n, 4));
    let text = format!(
        "HloModule g\nENTRY e {{\n  v = f32[{k}] parameter(0)\n  w = f32[{n},{k}] parameter(1)\n  ROOT d = f32[{n}] dot(v, w), lhs_contracting_dims={{0}}, rhs_contracting_dims={{1}}\n}}\n"
    );
    let got = run(&text, vec![tensor(&[k], &v), tensor(&[n, k], &w)]);
    let want: Vec<(f64, f64)> = (0..n)
        .map(|j| {
            (0..k).fold((0.0, 0.0), |(s, a), i| {
                let t = v[i] as f64 * w[j * k + i] as f64;
                (s + t, a + t.abs())
            })
        })
        .collect();
    assert_sums(&got, &want, "[k] x [n,k]^T");
}

/// Attention over a cache: scores `q · K^T` (contiguous columns) and the weighted sum
/// `p · V` (contiguous rows), batched over heads, with a cache length that is not a multiple
/// of eight.
#[test]
fn batched_attention_products_match_the_reference() {
    let (h, s, d) = (16, 1100, 64);
    let (q, cache, p) = (values(h * d, 5), values(h * s * d, 6), values(h * s, 7));
    let scores = format!(
        "HloModule a\nENTRY e {{\n  q = f32[{h},{d}] parameter(0)\n  c = f32[{h},{s},{d}] parameter(1)\n  ROOT d = f32[{h},{s}] dot(q, c), lhs_batch_dims={{0}}, lhs_contracting_dims={{1}}, rhs_batch_dims={{0}}, rhs_contracting_dims={{2}}\n}}\n"
    );
    let got = run(
        &scores,
        vec![tensor(&[h, d], &q), tensor(&[h, s, d], &cache)],
    );
    let want: Vec<(f64, f64)> = (0..h * s)
        .map(|hs| {
            let (hh, ss) = (hs / s, hs % s);
            (0..d).fold((0.0, 0.0), |(acc, a), i| {
                let t = q[hh * d + i] as f64 * cache[(hh * s + ss) * d + i] as f64;
                (acc + t, a + t.abs())
            })
        })
        .collect();
    assert_sums(&got, &want, "scores");
    let weighted = format!(
        "HloModule a\nENTRY e {{\n  p = f32[{h},{s}] parameter(0)\n  c = f32[{h},{s},{d}] parameter(1)\n  ROOT d = f32[{h},{d}] dot(p, c), lhs_batch_dims={{0}}, lhs_contracting_dims={{1}}, rhs_batch_dims={{0}}, rhs_contracting_dims={{1}}\n}}\n"
    );
    let got = run(
        &weighted,
        vec![tensor(&[h, s], &p), tensor(&[h, s, d], &cache)],
    );
    let want: Vec<(f64, f64)> = (0..h * d)
        .map(|hd| {
            let (hh, dd) = (hd / d, hd % d);
            (0..s).fold((0.0, 0.0), |(acc, a), i| {
                let t = p[hh * s + i] as f64 * cache[(hh * s + i) * d + dd] as f64;
                (acc + t, a + t.abs())
            })
        })
        .collect();
    assert_sums(&got, &want, "weighted sum");
}

fn reduce_text(op: &str, init: &str, rows: usize, run_len: usize) -> String {
    format!(
        "HloModule r\nf {{\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT c = f32[] {op}(a, b)\n}}\nENTRY e {{\n  p = f32[{rows},{run_len}] parameter(0)\n  z = f32[] constant({init})\n  ROOT r = f32[{rows}] reduce(p, z), dimensions={{1}}, to_apply=f\n}}\n"
    )
}

/// Sum, maximum and minimum over runs shorter than, equal to and longer than the eight
/// lanes, and over an input large enough to be reduced in parallel; maximum and minimum
/// are exact and propagate NaN wherever it sits in the run; `init` counts once.
#[test]
fn lane_reductions_match_sequential_folds() {
    for (rows, run_len) in [
        (3, 1),
        (3, 7),
        (3, 8),
        (5, 9),
        (4, 64),
        (2, 1003),
        (300, 1000),
    ] {
        let mut v = values(rows * run_len, run_len as u64);
        if run_len > 1 {
            // a NaN early in row 1 and last in row 2, past the lanes
            v[run_len + 1] = f32::NAN;
            if rows > 2 {
                v[3 * run_len - 1] = f32::NAN;
            }
        }
        let arg = || vec![tensor(&[rows, run_len], &v)];
        let row = |r: usize| &v[r * run_len..(r + 1) * run_len];
        let max = run(&reduce_text("maximum", "-inf", rows, run_len), arg());
        let min = run(&reduce_text("minimum", "inf", rows, run_len), arg());
        let sum = run(&reduce_text("add", "0.5", rows, run_len), arg());
        for r in 0..rows {
            let has_nan = row(r).iter().any(|x| x.is_nan());
            let what = format!("row {r} of [{rows},{run_len}]");
            if has_nan {
                assert!(max[r].is_nan() && min[r].is_nan(), "{what}: NaN propagates");
                assert!(sum[r].is_nan(), "{what}: NaN propagates through the sum");
                continue;
            }
            let want_max = row(r).iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
            let want_min = row(r).iter().fold(f32::INFINITY, |a, &x| a.min(x));
            assert_eq!(max[r], want_max as f64, "{what}: maximum");
            assert_eq!(min[r], want_min as f64, "{what}: minimum");
            let want_sum = row(r).iter().map(|&x| x as f64).sum::<f64>() + 0.5;
            let scale = row(r).iter().map(|&x| (x as f64).abs()).sum::<f64>() + 0.5;
            assert_sums(
                &sum[r..r + 1],
                &[(want_sum, scale)],
                &format!("{what}: sum"),
            );
        }
    }
}

/// Elementwise arithmetic on arrays long enough for the threaded slice loop gives exactly
/// the f32 results of a plain loop.
#[test]
fn large_elementwise_arithmetic_is_exact() {
    let n = 300_001;
    let (a, b) = (values(n, 8), values(n, 9));
    for (op, f) in [
        ("add", (|x, y| x + y) as fn(f32, f32) -> f32),
        ("subtract", |x, y| x - y),
        ("multiply", |x, y| x * y),
        ("divide", |x, y| x / y),
        ("maximum", |x: f32, y: f32| x.max(y)),
    ] {
        let text = format!(
            "HloModule b\nENTRY e {{\n  a = f32[{n}] parameter(0)\n  b = f32[{n}] parameter(1)\n  ROOT c = f32[{n}] {op}(a, b)\n}}\n"
        );
        let got = run(&text, vec![tensor(&[n], &a), tensor(&[n], &b)]);
        for i in 0..n {
            let want = f(a[i], b[i]) as f64;
            assert_eq!(got[i], want, "{op} element {i}");
        }
    }
}

/// `broadcast` writes rows by copy, fill or stride: operand axes kept in order, moved
/// (dimensions out of order), broadcast along leading, middle and trailing axes.
#[test]
fn broadcast_places_every_operand_axis_where_its_dimension_says() {
    let (a, b) = (2usize, 3usize);
    let v = values(a * b, 10);
    // output dims and, for each operand axis, the output axis it lands on
    for (out, dims) in [
        (vec![4, 2, 3], [1, 2]),
        (vec![2, 3, 5], [0, 1]),
        (vec![2, 4, 3], [0, 2]),
        (vec![3, 4, 2], [2, 0]),
        (vec![3, 2], [1, 0]),
    ] {
        let text = format!(
            "HloModule b\nENTRY e {{\n  p = f32[{a},{b}] parameter(0)\n  ROOT r = f32[{}] broadcast(p), dimensions={{{},{}}}\n}}\n",
            out.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","),
            dims[0],
            dims[1]
        );
        let got = run(&text, vec![tensor(&[a, b], &v)]);
        let total: usize = out.iter().product();
        assert_eq!(got.len(), total);
        for (flat, g) in got.iter().enumerate() {
            // unflatten the output index, then read the operand at its mapped axes
            let mut idx = vec![0; out.len()];
            let mut rest = flat;
            for d in (0..out.len()).rev() {
                idx[d] = rest % out[d];
                rest /= out[d];
            }
            let want = v[idx[dims[0]] * b + idx[dims[1]]] as f64;
            assert_eq!(*g, want, "out {out:?} dims {dims:?} at {idx:?}");
        }
    }
}

/// `iota` counts along its dimension whatever the rank, for integer and float types.
#[test]
fn iota_counts_along_its_dimension() {
    for (ty, dim) in [("s32", 0), ("s64", 1), ("f32", 2)] {
        let text = format!(
            "HloModule i\nENTRY e {{\n  ROOT r = {ty}[2,3,4] iota(), iota_dimension={dim}\n}}\n"
        );
        let got = run(&text, vec![]);
        for (flat, g) in got.iter().enumerate() {
            let idx = [flat / 12, flat / 4 % 3, flat % 4];
            assert_eq!(*g, idx[dim] as f64, "{ty} iota dim {dim} at {idx:?}");
        }
    }
}

/// A shape with no elements holds nothing, however long its other dimensions: every op
/// producing one runs without allocating by a dimension (`f32[1000000000000,0] iota()` once
/// tried to allocate 4 TB and aborted the process).
#[test]
fn zero_element_shapes_allocate_nothing_whatever_their_other_dimensions() {
    let big = 1_000_000_000_000u64;
    for body in [
        format!("ROOT r = f32[{big},0] iota(), iota_dimension=0"),
        format!("ROOT r = s32[0,{big}] iota(), iota_dimension=1"),
        format!("c = f32[] constant(1)\n  ROOT r = f32[{big},0] broadcast(c), dimensions={{}}"),
        format!("c = f32[] constant(1)\n  b = f32[0,{big}] broadcast(c), dimensions={{}}\n  ROOT r = f32[{big},0] transpose(b), dimensions={{1,0}}"),
        format!("c = f32[] constant(1)\n  b = f32[{big},0] broadcast(c), dimensions={{}}\n  ROOT r = f32[{big},0] reverse(b), dimensions={{0}}"),
        format!("c = f32[] constant(1)\n  b = f32[{big},0] broadcast(c), dimensions={{}}\n  ROOT r = f32[{big},0] exponential(b)"),
        format!("c = f32[] constant(1)\n  b = f32[{big},0] broadcast(c), dimensions={{}}\n  ROOT r = f32[0] reduce(b, c), dimensions={{0}}, to_apply=add"),
    ] {
        let text = format!(
            "HloModule z\nadd {{\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}}\nENTRY e {{\n  {body}\n}}\n"
        );
        let prog = Program::parse(&text, "zero.hlo").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let out = prog.execute(vec![]).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert!(out[0].is_empty(), "{body}");
    }
}

/// Steps of a threaded program from several threads at once (each step starts helpers on
/// the pool's other threads, and a kernel splits only when one is ready, which here varies
/// from step to step) all finish, with the same results as alone: whether a kernel splits
/// never changes a bit of its result.
#[test]
fn concurrent_threaded_steps_finish_with_the_same_results() {
    let (k, n) = (1024, 512);
    let (v, w) = (values(k, 11), values(k * n, 12));
    let text = format!(
        "HloModule g\nENTRY e {{\n  v = f32[{k}] parameter(0)\n  w = f32[{k},{n}] parameter(1)\n  d = f32[{n}] dot(v, w), lhs_contracting_dims={{0}}, rhs_contracting_dims={{0}}\n  ROOT t = f32[{n}] tanh(d)\n}}\n"
    );
    let prog = Arc::new(Program::parse(&text, "concurrent.hlo").unwrap());
    let (v, w) = (tensor(&[k], &v), tensor(&[k, n], &w));
    let alone = prog.execute(vec![v.clone(), w.clone()]).unwrap()[0].to_f64_vec();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (prog, v, w) = (prog.clone(), v.clone(), w.clone());
            std::thread::spawn(move || {
                (0..20)
                    .map(|_| prog.execute(vec![v.clone(), w.clone()]).unwrap()[0].to_f64_vec())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for got in t.join().expect("a step thread panicked") {
            assert_eq!(got, alone);
        }
    }
}

fn sum_module(ty: &str, n: usize) -> String {
    format!(
        "HloModule m\nadd {{\n  a = {ty}[] parameter(0)\n  b = {ty}[] parameter(1)\n  ROOT c = {ty}[] add(a, b)\n}}\nENTRY e {{\n  x = {ty}[{n}] parameter(0)\n  z = {ty}[] constant(0)\n  ROOT r = {ty}[] reduce(x, z), dimensions={{0}}, to_apply=add\n}}\n"
    )
}

/// f16 and bf16 sums accumulate in f32 and round once, as XLA:CPU's do: 4,096 bf16 ones
/// sum to 4,096 (a bf16 running sum stops at 256), and an f16 sum of 2^20 small values is
/// the f16 nearest the exact sum.
#[test]
fn half_precision_sums_accumulate_in_f32() {
    for (ty, dtype) in [("bf16", DType::BF16), ("f16", DType::F16)] {
        let ones = Tensor::from_f64s(dtype, &[4096], &[1.0; 4096]).unwrap();
        let got = run(&sum_module(ty, 4096), vec![Arc::new(ones)]);
        assert_eq!(got, vec![4096.0], "{ty}");
    }
    let n = 1 << 20;
    let v: Vec<f64> = values(n, 7)
        .iter()
        .map(|x| ((x + 1.0) * 0.0009) as f64)
        .collect();
    let x = Tensor::from_f64s(DType::F16, &[n], &v).unwrap();
    let exact: f64 = x.to_f64_vec().iter().sum();
    let want = Tensor::from_f64s(DType::F16, &[], &[exact])
        .unwrap()
        .to_f64_vec()[0];
    let got = run(&sum_module("f16", n), vec![Arc::new(x)]);
    assert_eq!(got, vec![want], "f16 sum of {n} values; exact {exact}");
}

/// f32 sums are pairwise: 10^7 values in [0, 2) sum to within a few ulps of the exact sum
/// (a running sum in eight lanes is off by hundreds).
#[test]
fn f32_sums_stay_within_a_few_ulps() {
    let n = 10_000_000;
    let v: Vec<f32> = values(n, 11).iter().map(|x| x + 1.0).collect();
    let exact: f64 = v.iter().map(|&x| x as f64).sum();
    let got = run(&sum_module("f32", n), vec![tensor(&[n], &v)])[0];
    let ulp = (exact as f32).abs() * f32::EPSILON;
    assert!(
        (got - exact).abs() <= 4.0 * ulp as f64,
        "sum of {n}: got {got}, exact {exact}, {} ulps off",
        (got - exact).abs() / ulp as f64
    );
}

/// (value, index) reducers run natively give exactly what the same region interpreted
/// gives — argmax and argmin in both tie-breaking forms, over rows and columns, with ties,
/// signed zeros and NaNs. The interpreted twin carries a no-op `add` of zero on one index,
/// which keeps the planner from recognising it.
#[test]
fn argmax_and_argmin_match_their_interpreted_regions() {
    let region = |name: &str, cmp: &str, tie: &str| {
        format!(
            "{name} {{
  a = f32[] parameter(0)
  c = f32[] parameter(2)
  gt = pred[] compare(a, c), direction={cmp}
  ne = pred[] compare(a, a), direction=NE
  or1 = pred[] or(gt, ne)
  sv = f32[] select(or1, a, c)
  eq = pred[] compare(a, c), direction=EQ
  b = s32[] parameter(1)
  d = s32[] parameter(3)
  lt = pred[] compare(b, d), direction={tie}
  and1 = pred[] and(eq, lt)
  or2 = pred[] or(or1, and1)
  si = s32[] select(or2, b, d)
  ROOT t = (f32[], s32[]) tuple(sv, si)
}}
"
        )
    };
    let mut v = values(64 * 257, 5);
    for (k, x) in v.iter_mut().enumerate() {
        match k % 97 {
            0 => *x = f32::NAN,
            1 => *x = 0.0,
            2 => *x = -0.0,
            3..=9 => *x = 0.5, // ties
            _ => {}
        }
    }
    for (cmp, tie) in [("GT", "LT"), ("LT", "LT"), ("GT", "GT"), ("LT", "GT")] {
        for dim in [0usize, 1] {
            let out = if dim == 1 { 64 } else { 257 };
            let native = region("r", cmp, tie);
            let twin = region("r", cmp, tie).replace(
                "si = s32[] select(or2, b, d)",
                "zero = s32[] constant(0)\n  bz = s32[] add(b, zero)\n  si = s32[] select(or2, bz, d)",
            );
            let module = |r: &str| {
                format!("HloModule m\n{r}ENTRY e {{\n  x = f32[64,257] parameter(0)\n  i = s32[64,257] iota(), iota_dimension={dim}\n  ninf = f32[] constant(-inf)\n  z = s32[] constant(0)\n  ROOT r = (f32[{out}], s32[{out}]) reduce(x, i, ninf, z), dimensions={{{dim}}}, to_apply=r\n}}\n")
            };
            let exec = |text: &str| {
                Program::parse(text, "argmax.hlo")
                    .unwrap()
                    .execute(vec![tensor(&[64, 257], &v)])
                    .unwrap()
                    .iter()
                    .map(|t| t.to_le_bytes())
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                exec(&module(&native)),
                exec(&module(&twin)),
                "compare {cmp}, tie {tie}, dim {dim}"
            );
        }
    }
}

/// A matrix-vector product over contiguous rows (`v @ W`) below the threaded size adds each
/// output's terms row by row, in order, whatever the row width: every width the kernel
/// treats apart (32 and 64 held in registers, short rows one per pass, long rows eight per
/// pass) and the widths beside them give the bits of that plain f32 loop.
#[test]
fn row_gemv_adds_rows_in_order_at_every_width() {
    for n in [1, 8, 31, 32, 33, 63, 64, 65, 100, 512, 1023, 1024, 1025] {
        for k in [1, 7, 8, 9, 17, 60] {
            let (v, w) = (values(k, n as u64), values(k * n, 7 * k as u64 + 1));
            let text = format!(
                "HloModule g\nENTRY e {{\n  v = f32[{k}] parameter(0)\n  w = f32[{k},{n}] parameter(1)\n  ROOT d = f32[{n}] dot(v, w), lhs_contracting_dims={{0}}, rhs_contracting_dims={{0}}\n}}\n"
            );
            let got = run(&text, vec![tensor(&[k], &v), tensor(&[k, n], &w)]);
            for (j, g) in got.iter().enumerate() {
                let want = (0..k).fold(0f32, |acc, kk| acc + v[kk] * w[kk * n + j]);
                assert_eq!(
                    (*g as f32).to_bits(),
                    want.to_bits(),
                    "{k}x{n}, output {j}: {g} vs {want}"
                );
            }
        }
    }
}

/// Above the threaded size a row GEMV sums blocks of rows (each from zero, rows in order)
/// and adds the blocks in order, split across threads or not: the register-held widths
/// (32, 64) and a width beside them give that block-ordered f32 loop's bits.
#[test]
fn blocked_row_gemv_adds_blocks_in_order() {
    for (k, n) in [(4096, 32), (2048, 64), (2048, 65)] {
        let (v, w) = (values(k, 3 + n as u64), values(k * n, 11 * k as u64));
        let text = format!(
            "HloModule g\nENTRY e {{\n  v = f32[{k}] parameter(0)\n  w = f32[{k},{n}] parameter(1)\n  ROOT d = f32[{n}] dot(v, w), lhs_contracting_dims={{0}}, rhs_contracting_dims={{0}}\n}}\n"
        );
        let got = run(&text, vec![tensor(&[k], &v), tensor(&[k, n], &w)]);
        // the kernel's blocks: an eighth of the rows each, at least 64
        let per_block = k.div_ceil(8).max(64);
        for (j, g) in got.iter().enumerate() {
            let block = |b: usize| {
                (b * per_block..((b + 1) * per_block).min(k))
                    .fold(0f32, |acc, kk| acc + v[kk] * w[kk * n + j])
            };
            let want = (1..k.div_ceil(per_block)).fold(block(0), |acc, b| acc + block(b));
            assert_eq!(
                (*g as f32).to_bits(),
                want.to_bits(),
                "{k}x{n}, output {j}: {g} vs {want}"
            );
        }
    }
}
