//! Criterion benchmarks of the HLO engine.
//!
//! - `hlo/decoder_step/{small,medium,large}`: one token through a transformer decoder layer
//!   (benches/models/decoder_*.hlo, written by tools/gen_fixtures.py) with its KV cache
//!   carried in place between iterations, as a device keeps it; `hlo/decoder_step/lm`: one
//!   token of greedy decoding with a two-layer language model (decoder_lm.hlo: vocabulary
//!   8,192, the tied embedding read through a transpose, the argmax on the device, the
//!   token, caches and position carried as state).
//! - `hlo/row_update/{1MiB,512MiB}`: a step that writes one row into a state of that size;
//!   with the state updated in place both cost about the same.
//! - `hlo/argmax/{native,interpreted}/{1024,32768}`: greedy decoding's argmax over f32
//!   logits, JAX's (value, index) region run by the native table kernel, and the same
//!   region with a no-op the planner does not recognise, run by the interpreter.
//! - `hlo/argsort/{native,interpreted}/<rows>x<cols>`: `jnp.argsort` along rows (JAX's
//!   comparator: NaNs and zeros canonicalised, `TOTALORDER`), the comparator recognised and
//!   compared natively, and the same comparator with its root wrapped in `and(r, r)`, run
//!   by the interpreter (at the smaller size only: the larger takes a minute that way).
//! - `hlo/gemv/{rows,cols}/<k>x<n>`: the matrix-vector products of single-token decoding,
//!   in bytes of matrix streamed per second: `x @ W` with `W` `[k, n]` (the layers' weights,
//!   read row after row) and `h @ Eᵀ` with `E` `[n, k]` (the tied embedding, one dot per
//!   row). Matrices larger than the last-level cache, so the figure is the memory bandwidth
//!   the kernel reaches.
//! - `hlo/fusion/{gelu,rmsnorm}/{fused,unfused}`: a tanh GELU over 1M f32 values and an
//!   RMSNorm's scaling of 256x4,096 values, as one fused pass, and the same instructions
//!   each materialised (every one also an output of the module, so none fuses).

// criterion's macros generate undocumented items
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use statetensor_core::DType;
use statetensor_hlo::{Program, Tensor};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A deterministic pseudo-random f32 tensor in [-0.5, 0.5).
fn random(dtype: DType, dims: &[usize], seed: u64) -> Arc<Tensor> {
    let n: usize = dims.iter().product();
    let mut t = Tensor::zeros(dtype, dims);
    if dtype == DType::F32 {
        let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let bytes: Vec<u8> = (0..n)
            .flat_map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5).to_le_bytes()
            })
            .collect();
        t.write_bytes(0, &bytes).expect("sizes match");
    }
    Arc::new(t)
}

fn decoder_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("hlo/decoder_step");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for size in ["small", "medium", "large", "lm"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("models/decoder_{size}.hlo"));
        let text = std::fs::read_to_string(&path).expect("benchmark model");
        let prog = Program::parse(&text, &path.display().to_string()).expect("model loads");
        let aliases: Vec<(usize, usize)> = prog
            .header_aliases()
            .pairs()
            .map(|p| (p.param, p.output))
            .collect();
        let mut args: Vec<Arc<Tensor>> = prog
            .params()
            .iter()
            .enumerate()
            .map(|(i, p)| random(p.dtype, p.shape.dims(), i as u64))
            .collect();
        // start the position at 0 and the caches at zero
        for &(p, _) in &aliases {
            args[p] = Arc::new(Tensor::zeros(
                prog.params()[p].dtype,
                prog.params()[p].shape.dims(),
            ));
        }
        // the caches are the rank-3 states ([heads, length, head dim]); the position is the
        // last state (the LM's first state is its token, which the step picks itself)
        let cache_len = aliases
            .iter()
            .map(|&(p, _)| prog.params()[p].shape.dims())
            .find(|d| d.len() == 3)
            .expect("a KV cache state")[1];
        let position = aliases.last().expect("states").0;
        let placeholder = Arc::new(Tensor::zeros(DType::S32, &[]));
        g.bench_function(BenchmarkId::from_parameter(size), |b| {
            let mut step = 0usize;
            b.iter(|| {
                if step == cache_len {
                    // wrap the position before the cache is full
                    args[position] = Arc::new(Tensor::zeros(DType::S32, &[]));
                    step = 0;
                }
                // move the state in (donate it) so it is updated in place; share the weights
                let call: Vec<Arc<Tensor>> = (0..args.len())
                    .map(|i| {
                        if aliases.iter().any(|&(p, _)| p == i) {
                            std::mem::replace(&mut args[i], placeholder.clone())
                        } else {
                            args[i].clone()
                        }
                    })
                    .collect();
                let outs = prog.execute(call).expect("step runs");
                for &(p, o) in &aliases {
                    args[p] = outs[o].clone();
                }
                step += 1;
            })
        });
    }
    g.finish();
}

fn row_update_model(rows: usize, cols: usize) -> String {
    format!(
        "HloModule row_update, input_output_alias={{ {{1}}: (1, {{}}, may-alias), {{2}}: (2, {{}}, may-alias) }}\n\
         ENTRY e {{\n  x = f32[{cols}] parameter(0)\n  s = f32[{rows},{cols}] parameter(1)\n  i = s32[] parameter(2)\n\
         \x20 z = s32[] constant(0)\n  row = f32[1,{cols}] reshape(x)\n  u = f32[{rows},{cols}] dynamic-update-slice(s, row, i, z)\n\
         \x20 one = s32[] constant(1)\n  n = s32[] add(i, one)\n  y = f32[{cols}] negate(x)\n\
         \x20 ROOT t = (f32[{cols}], f32[{rows},{cols}], s32[]) tuple(y, u, n)\n}}\n"
    )
}

fn row_update(c: &mut Criterion) {
    let mut g = c.benchmark_group("hlo/row_update");
    g.sample_size(50);
    let cols = 256;
    for (label, rows) in [("1MiB", 1024usize), ("512MiB", 512 * 1024)] {
        let prog =
            Program::parse(&row_update_model(rows, cols), "row_update.hlo").expect("model loads");
        let x = random(DType::F32, &[cols], 1);
        let mut state = Some(Arc::new(Tensor::zeros(DType::F32, &[rows, cols])));
        let mut pos = Arc::new(Tensor::zeros(DType::S32, &[]));
        g.throughput(Throughput::Bytes((cols * 4) as u64));
        g.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| {
                let s = state.take().expect("state is carried");
                let outs = prog
                    .execute(vec![x.clone(), s, pos.clone()])
                    .expect("step runs");
                state = Some(outs[1].clone());
                pos = outs[2].clone();
            })
        });
    }
    g.finish();
}

/// JAX's argmax over `n` logits; `interpreted` adds a no-op `add` of zero to one index so
/// the planner leaves the region to the interpreter.
fn argmax_model(n: usize, interpreted: bool) -> String {
    let index = if interpreted {
        "zero = s32[] constant(0)\n  bz = s32[] add(b, zero)\n  si = s32[] select(or2, bz, d)"
    } else {
        "si = s32[] select(or2, b, d)"
    };
    format!(
        "HloModule argmax\nr {{\n  a = f32[] parameter(0)\n  c = f32[] parameter(2)\n  gt = pred[] compare(a, c), direction=GT\n  ne = pred[] compare(a, a), direction=NE\n  or1 = pred[] or(gt, ne)\n  sv = f32[] select(or1, a, c)\n  eq = pred[] compare(a, c), direction=EQ\n  b = s32[] parameter(1)\n  d = s32[] parameter(3)\n  lt = pred[] compare(b, d), direction=LT\n  and1 = pred[] and(eq, lt)\n  or2 = pred[] or(or1, and1)\n  {index}\n  ROOT t = (f32[], s32[]) tuple(sv, si)\n}}\nENTRY e {{\n  x = f32[{n}] parameter(0)\n  i = s32[{n}] iota(), iota_dimension=0\n  ninf = f32[] constant(-inf)\n  z = s32[] constant(0)\n  r = (f32[], s32[]) reduce(x, i, ninf, z), dimensions={{0}}, to_apply=r\n  ROOT k = s32[] get-tuple-element(r), index=1\n}}\n"
    )
}

fn argmax(c: &mut Criterion) {
    let mut g = c.benchmark_group("hlo/argmax");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for (way, interpreted) in [("native", false), ("interpreted", true)] {
        for n in [1024usize, 32768] {
            let prog =
                Program::parse(&argmax_model(n, interpreted), "argmax.hlo").expect("model loads");
            let x = random(DType::F32, &[n], 3);
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(BenchmarkId::new(way, n), |b| {
                b.iter(|| prog.execute(vec![x.clone()]).expect("step runs"))
            });
        }
    }
    g.finish();
}

/// `jnp.argsort` of `[rows, cols]` f32 values along the rows, with JAX's comparator;
/// `interpreted` wraps its root in `and(r, r)` so the planner leaves it to the interpreter.
fn argsort_model(rows: usize, cols: usize, interpreted: bool) -> String {
    let root = if interpreted {
        "r = pred[] compare(k0, k1), direction=LT, type=TOTALORDER\n  ROOT w = pred[] and(r, r)"
    } else {
        "ROOT r = pred[] compare(k0, k1), direction=LT, type=TOTALORDER"
    };
    let canon = |p: usize| {
        format!("a{p} = f32[] parameter({p})\n  ne{p} = pred[] compare(a{p}, a{p}), direction=NE\n  eq{p} = pred[] compare(a{p}, z), direction=EQ\n  s{p} = f32[] select(eq{p}, z, a{p})\n  k{p} = f32[] select(ne{p}, nan, s{p})")
    };
    format!(
        "HloModule argsort\nless {{\n  nan = f32[] constant(nan)\n  z = f32[] constant(0)\n  {}\n  {}\n  i = s32[] parameter(2)\n  j = s32[] parameter(3)\n  {root}\n}}\nENTRY e {{\n  x = f32[{rows},{cols}] parameter(0)\n  i = s32[{rows},{cols}] iota(), iota_dimension=1\n  s = (f32[{rows},{cols}], s32[{rows},{cols}]) sort(x, i), dimensions={{1}}, is_stable=true, to_apply=less\n  ROOT k = s32[{rows},{cols}] get-tuple-element(s), index=1\n}}\n",
        canon(0),
        canon(1)
    )
}

fn argsort(c: &mut Criterion) {
    let mut g = c.benchmark_group("hlo/argsort");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for (way, interpreted, sizes) in [
        ("native", false, &[(8usize, 1024usize), (64, 8732)][..]),
        ("interpreted", true, &[(8, 1024)][..]),
    ] {
        for &(rows, cols) in sizes {
            let prog = Program::parse(&argsort_model(rows, cols, interpreted), "argsort.hlo")
                .expect("model loads");
            let x = random(DType::F32, &[rows, cols], 4);
            g.throughput(Throughput::Elements((rows * cols) as u64));
            g.bench_function(BenchmarkId::new(way, format!("{rows}x{cols}")), |b| {
                b.iter(|| prog.execute(vec![x.clone()]).expect("step runs"))
            });
        }
    }
    g.finish();
}

/// `f32[k] · W`: `W` is `[k, n]` contracted on its rows (`rows`) or `[n, k]` contracted on
/// its columns (`cols`).
fn gemv_model(k: usize, n: usize, rows: bool) -> String {
    let (w, contract) = if rows {
        (format!("f32[{k},{n}]"), 0)
    } else {
        (format!("f32[{n},{k}]"), 1)
    };
    format!(
        "HloModule gemv\nENTRY e {{\n  x = f32[{k}] parameter(0)\n  w = {w} parameter(1)\n  ROOT y = f32[{n}] dot(x, w), lhs_contracting_dims={{0}}, rhs_contracting_dims={{{contract}}}\n}}\n"
    )
}

fn gemv(c: &mut Criterion) {
    let mut g = c.benchmark_group("hlo/gemv");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for (way, rows, shapes) in [
        (
            "rows",
            true,
            &[(512usize, 2048usize), (2048, 512), (1024, 4096)][..],
        ),
        ("cols", false, &[(512, 8192), (1024, 32768)][..]),
    ] {
        for &(k, n) in shapes {
            let prog = Program::parse(&gemv_model(k, n, rows), "gemv.hlo").expect("model loads");
            let wdims = if rows { [k, n] } else { [n, k] };
            let (x, w) = (random(DType::F32, &[k], 5), random(DType::F32, &wdims, 6));
            g.throughput(Throughput::Bytes((k * n * 4) as u64));
            g.bench_function(BenchmarkId::new(way, format!("{k}x{n}")), |b| {
                b.iter(|| prog.execute(vec![x.clone(), w.clone()]).expect("step runs"))
            });
        }
    }
    g.finish();
}

/// The body of a tanh GELU over `x` (`f32[n]`), ending in `y`, and every value's name.
const GELU: &str = "half = f32[] constant(0.5)
  one = f32[] constant(1)
  k = f32[] constant(0.044715)
  c = f32[] constant(0.797884583)
  x2 = f32[N] multiply(x, x)
  x3 = f32[N] multiply(x2, x)
  kb = f32[N] broadcast(k), dimensions={}
  kx3 = f32[N] multiply(kb, x3)
  s = f32[N] add(x, kx3)
  cb = f32[N] broadcast(c), dimensions={}
  cs = f32[N] multiply(cb, s)
  t = f32[N] tanh(cs)
  ob = f32[N] broadcast(one), dimensions={}
  u = f32[N] add(ob, t)
  hb = f32[N] broadcast(half), dimensions={}
  hx = f32[N] multiply(hb, x)
  y = f32[N] multiply(hx, u)";

/// An RMSNorm's scaling of `x` (`f32[R,C]`) by the per-row mean square `ms` (`f32[R]`) and
/// the weight `w` (`f32[C]`), ending in `y`.
const RMSNORM: &str = "eps = f32[] constant(1e-6)
  epsb = f32[R] broadcast(eps), dimensions={}
  v = f32[R] add(ms, epsb)
  r = f32[R] rsqrt(v)
  rb = f32[R,C] broadcast(r), dimensions={0}
  wb = f32[R,C] broadcast(w), dimensions={1}
  xr = f32[R,C] multiply(x, rb)
  y = f32[R,C] multiply(xr, wb)";

/// A module running `body` on `params`, returning `y` alone (`fused`) or every value of
/// the same shape as `y` as well (so none fuses).
fn chain_model(params: &str, body: &str, ty: &str, fused: bool) -> String {
    let root = if fused {
        format!("ROOT out = {ty} copy(y)")
    } else {
        let names: Vec<&str> = body
            .lines()
            .filter(|l| l.contains(&format!("= {ty} ")))
            .map(|l| l.trim().split(' ').next().expect("a named value"))
            .collect();
        let types = vec![ty; names.len()].join(", ");
        format!("ROOT out = ({types}) tuple({})", names.join(", "))
    };
    format!("HloModule chain\nENTRY e {{\n  {params}\n  {body}\n  {root}\n}}\n")
}

fn fusion(c: &mut Criterion) {
    let mut g = c.benchmark_group("hlo/fusion");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    let n = 1 << 20;
    let (rows, cols) = (256usize, 4096usize);
    let cases = [
        (
            "gelu",
            "x = f32[N] parameter(0)".replace('N', &n.to_string()),
            GELU.replace('N', &n.to_string()),
            format!("f32[{n}]"),
            vec![random(DType::F32, &[n], 7)],
        ),
        (
            "rmsnorm",
            format!("x = f32[{rows},{cols}] parameter(0)\n  ms = f32[{rows}] parameter(1)\n  w = f32[{cols}] parameter(2)"),
            RMSNORM.replace('R', &rows.to_string()).replace('C', &cols.to_string()),
            format!("f32[{rows},{cols}]"),
            vec![
                random(DType::F32, &[rows, cols], 8),
                random(DType::F32, &[rows], 9),
                random(DType::F32, &[cols], 10),
            ],
        ),
    ];
    for (name, params, body, ty, args) in &cases {
        for (way, fused) in [("fused", true), ("unfused", false)] {
            let prog = Program::parse(&chain_model(params, body, ty, fused), "chain.hlo")
                .expect("model loads");
            g.throughput(Throughput::Elements(args[0].len() as u64));
            g.bench_function(BenchmarkId::new(*name, way), |b| {
                b.iter(|| prog.execute(args.clone()).expect("step runs"))
            });
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    decoder_step,
    row_update,
    argmax,
    argsort,
    gemv,
    fusion
);
criterion_main!(benches);
