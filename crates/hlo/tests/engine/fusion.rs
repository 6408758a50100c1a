//! Fused elementwise chains compute, bit for bit, what the same instructions compute one by
//! one. Each case is a random DAG of elementwise instructions (unary, binary, compare,
//! select, clamp, converts between f32, bf16, f16 and pred, broadcasts of a scalar, of a
//! value along the leading axis and of one along the trailing axes) over
//! values full of NaNs (with payloads, signalling ones included), infinities, signed zeros
//! and subnormals, on shapes that cross the kernel's block boundaries. The same module with
//! every instruction also an output of a tuple root runs unfused (no value has all its
//! readers inside a chain), and its last output must equal the fused module's result: bit
//! for bit, except that a NaN may come out as another NaN (see `is_nan`).

use proptest::prelude::*;
use statetensor_core::DType;
use statetensor_hlo::{Program, Tensor};
use std::sync::Arc;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 16
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

const FLOATS: [DType; 3] = [DType::F32, DType::BF16, DType::F16];

fn name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        _ => "pred",
    }
}

/// Element bits: half of them "nice" values, the rest any bit pattern (NaNs with payloads,
/// infinities, subnormals, huge and tiny values).
fn element(rng: &mut Lcg, d: DType) -> Vec<u8> {
    let nice = [
        0.0f32,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -2.5,
        3.0,
        1e-3,
        100.0,
        f32::INFINITY,
    ];
    let f = if rng.below(2) == 0 {
        f32::from_bits(rng.next() as u32)
    } else {
        *rng.pick(&nice) * if rng.below(2) == 0 { 1.0 } else { -1.0 }
    };
    match d {
        DType::F32 => f.to_bits().to_le_bytes().to_vec(),
        DType::BF16 => ((f.to_bits() >> 16) as u16).to_le_bytes().to_vec(),
        DType::F16 => {
            let bits = if rng.below(2) == 0 {
                rng.next() as u16
            } else {
                statetensor_hlo::F16::from_f32(f).0
            };
            bits.to_le_bytes().to_vec()
        }
        _ => vec![(rng.below(2)) as u8],
    }
}

fn tensor(rng: &mut Lcg, d: DType, dims: &[usize]) -> Arc<Tensor> {
    let n: usize = dims.iter().product();
    let bytes: Vec<u8> = (0..n).flat_map(|_| element(rng, d)).collect();
    Arc::new(Tensor::from_le_bytes(d, dims, &bytes).unwrap())
}

/// A random chain: (module text without its root line, name and type of every value,
/// parameters).
struct Case {
    body: Vec<String>,
    values: Vec<(String, DType)>,
    params: Vec<Arc<Tensor>>,
}

fn case(seed: u64, dims: &[usize], len: usize) -> Case {
    let mut rng = Lcg(seed);
    let shape = |d: DType| {
        format!(
            "{}[{}]",
            name(d),
            dims.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    let mut body = Vec::new();
    let mut values: Vec<(String, DType)> = Vec::new();
    let mut params = Vec::new();
    // full-size parameters of every float type and a predicate, and scalars
    for (p, d) in FLOATS.iter().chain(&[DType::Pred]).enumerate() {
        body.push(format!("p{p} = {} parameter({p})", shape(*d)));
        values.push((format!("p{p}"), *d));
        params.push(tensor(&mut rng, *d, dims));
    }
    for (k, d) in FLOATS.iter().chain(&[DType::Pred]).enumerate() {
        let p = k + 4;
        body.push(format!("s{p} = {}[] parameter({p})", name(*d)));
        params.push(tensor(&mut rng, *d, &[]));
    }
    // per float type, a value along the leading axis and one along the trailing axes, to
    // broadcast (a per-row statistic, a bias)
    let dims_of = |d: &[usize]| {
        d.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let (lead, trail) = (&dims[..1], &dims[1..]);
    for (k, d) in FLOATS.iter().enumerate() {
        for (j, part) in [lead, trail].iter().enumerate() {
            let p = 8 + 2 * k + j;
            body.push(format!(
                "b{p} = {}[{}] parameter({p})",
                name(*d),
                dims_of(part)
            ));
            params.push(tensor(&mut rng, *d, part));
        }
    }
    let along = |d: DType, trailing: bool| {
        let k = FLOATS.iter().position(|&x| x == d).unwrap_or(0);
        let p = 8 + 2 * k + trailing as usize;
        let axes: Vec<usize> = if trailing {
            (1..dims.len()).collect()
        } else {
            vec![0]
        };
        (format!("b{p}"), dims_of(&axes))
    };
    let scalar = |d: DType| format!("s{}", 4 + FLOATS.iter().position(|&x| x == d).unwrap_or(3));
    let unary = [
        "abs",
        "negate",
        "sign",
        "exponential",
        "exponential-minus-one",
        "log",
        "log-plus-one",
        "sqrt",
        "rsqrt",
        "cbrt",
        "tanh",
        "logistic",
        "sine",
        "cosine",
        "floor",
        "ceil",
        "round-nearest-even",
        "round-nearest-afz",
        "is-finite",
    ];
    let binary = [
        "add",
        "subtract",
        "multiply",
        "divide",
        "remainder",
        "power",
        "maximum",
        "minimum",
        "atan2",
    ];
    let dirs = ["EQ", "NE", "LT", "LE", "GT", "GE"];
    for v in 0..len {
        let of = |rng: &mut Lcg, values: &[(String, DType)], d: DType| -> String {
            let c: Vec<&String> = values.iter().filter(|x| x.1 == d).map(|x| &x.0).collect();
            // later values more often, so chains grow long
            let i = c.len() - 1 - rng.below(c.len()).min(rng.below(c.len()));
            c[i].clone()
        };
        let d = *rng.pick(&FLOATS);
        let out = format!("v{v}");
        let (line, ty) = match rng.below(9) {
            0 | 1 => {
                let op = *rng.pick(&unary);
                let ty = if op == "is-finite" { DType::Pred } else { d };
                (format!("{op}({})", of(&mut rng, &values, d)), ty)
            }
            2 | 3 => {
                let op = *rng.pick(&binary);
                let (a, b) = (of(&mut rng, &values, d), of(&mut rng, &values, d));
                (format!("{op}({a}, {b})"), d)
            }
            4 => {
                // a total-order compare tells NaNs apart, so it reads parameters only: the
                // NaN an operation returns is not fixed (see `is_nan`)
                let total = if rng.below(2) == 0 {
                    ", type=TOTALORDER"
                } else {
                    ""
                };
                let from = if total.is_empty() {
                    &values[..]
                } else {
                    &values[..4]
                };
                let (a, b) = (of(&mut rng, from, d), of(&mut rng, from, d));
                (
                    format!("compare({a}, {b}), direction={}{total}", rng.pick(&dirs)),
                    DType::Pred,
                )
            }
            5 => {
                let p = if rng.below(4) == 0 {
                    scalar(DType::Pred)
                } else {
                    of(&mut rng, &values, DType::Pred)
                };
                let (a, b) = (of(&mut rng, &values, d), of(&mut rng, &values, d));
                (format!("select({p}, {a}, {b})"), d)
            }
            6 => {
                let bound = |rng: &mut Lcg| {
                    if rng.below(2) == 0 {
                        scalar(d)
                    } else {
                        of(rng, &values, d)
                    }
                };
                let lo = bound(&mut rng);
                let x = of(&mut rng, &values, d);
                let hi = bound(&mut rng);
                (format!("clamp({lo}, {x}, {hi})"), d)
            }
            7 => {
                let from = *rng.pick(&[DType::F32, DType::BF16, DType::F16, DType::Pred]);
                let to = *rng.pick(&[DType::F32, DType::BF16, DType::F16, DType::Pred]);
                (format!("convert({})", of(&mut rng, &values, from)), to)
            }
            _ => {
                let pick_pred = rng.below(5) == 0;
                let (d, op) = if pick_pred {
                    let op = *rng.pick(&["and", "or", "xor", "not"]);
                    (DType::Pred, op)
                } else {
                    (d, "broadcast")
                };
                let line = match op {
                    "broadcast" => match rng.below(3) {
                        0 => format!("broadcast({}), dimensions={{}}", scalar(d)),
                        k => {
                            let (v, axes) = along(d, k == 2);
                            format!("broadcast({v}), dimensions={{{axes}}}")
                        }
                    },
                    "not" => format!("not({})", of(&mut rng, &values, d)),
                    _ => format!(
                        "{op}({}, {})",
                        of(&mut rng, &values, d),
                        of(&mut rng, &values, d)
                    ),
                };
                (line, d)
            }
        };
        body.push(format!("{out} = {} {line}", shape(ty)));
        values.push((out, ty));
    }
    Case {
        body,
        values,
        params,
    }
}

/// Whether little-endian `bits` of type `d` are a NaN. Which NaN an operation on two NaNs
/// returns (sign, payload) is left open by IEEE 754 and XLA, and differs with how the
/// compiler orders a commutative instruction's operands; every other value must match
/// bit for bit.
fn is_nan(d: DType, bits: &[u8]) -> bool {
    match d {
        DType::F32 => f32::from_le_bytes(bits.try_into().unwrap()).is_nan(),
        DType::BF16 => {
            let b = u16::from_le_bytes(bits.try_into().unwrap());
            b & 0x7f80 == 0x7f80 && b & 0x7f != 0
        }
        DType::F16 => {
            let b = u16::from_le_bytes(bits.try_into().unwrap());
            b & 0x7c00 == 0x7c00 && b & 0x3ff != 0
        }
        _ => false,
    }
}

fn module(c: &Case, root: &str) -> String {
    format!(
        "HloModule fusion\nENTRY e {{\n  {}\n  {root}\n}}\n",
        c.body.join("\n  ")
    )
}

fn run(text: &str, params: &[Arc<Tensor>]) -> Vec<Arc<Tensor>> {
    Program::parse(text, "fusion.hlo")
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .execute(params.to_vec())
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::cases(64), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fused_chains_match_instruction_by_instruction(
        seed in any::<u64>(),
        dims in prop_oneof![
            (1usize..1400).prop_map(|n| vec![n]),
            (2usize..40, 2usize..40).prop_map(|(a, b)| vec![a, b]),
        ],
        len in 2usize..14,
    ) {
        let c = case(seed, &dims, len);
        let (last, last_ty) = c.values.last().unwrap().clone();
        let fused = module(&c, &format!("ROOT r = {}[{}] copy({last})", name(last_ty),
            dims.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")));
        let all: Vec<String> = c.values[4..].iter().map(|v| v.0.clone()).collect();
        let types: Vec<String> = c.values[4..].iter().map(|v| format!("{}[{}]", name(v.1),
            dims.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","))).collect();
        let unfused = module(&c, &format!("ROOT r = ({}) tuple({})", types.join(", "), all.join(", ")));
        let got = run(&fused, &c.params);
        let want = run(&unfused, &c.params);
        let want = want.last().unwrap();
        prop_assert_eq!(got[0].dtype(), want.dtype());
        let (g, w) = (got[0].to_le_bytes(), want.to_le_bytes());
        let width = match want.dtype() {
            DType::F32 => 4,
            DType::BF16 | DType::F16 => 2,
            _ => 1,
        };
        for (k, (a, b)) in g.chunks(width).zip(w.chunks(width)).enumerate() {
            let both_nan = is_nan(want.dtype(), a) && is_nan(want.dtype(), b);
            prop_assert!(a == b || both_nan, "element {}: {:?} vs {:?}\n{}", k, a, b, fused);
        }
    }
}

/// A `broadcast` that keeps its operand's shape (JAX writes `f32[1,1,1,8] broadcast(x),
/// dimensions={0,1,2,3}` in flax's BatchNorm) whose operand is itself fusable: the
/// broadcast reads a chain input, so its operand stays outside its chain (this crashed the
/// process with "broadcasts read their source directly").
#[test]
fn a_shape_keeping_broadcast_of_a_fusable_value() {
    let text = "HloModule m\nENTRY e {\n  v = f32[1,1,1,8] parameter(0)\n  x = f32[2,3,3,8] parameter(1)\n  e = f32[] constant(0.5)\n  eb = f32[1,1,1,8] broadcast(e), dimensions={}\n  s = f32[1,1,1,8] add(v, eb)\n  r = f32[1,1,1,8] rsqrt(s)\n  b = f32[1,1,1,8] broadcast(r), dimensions={0,1,2,3}\n  m = f32[1,1,1,8] multiply(b, b)\n  rs = f32[8] reshape(m)\n  full = f32[2,3,3,8] broadcast(rs), dimensions={3}\n  ROOT y = f32[2,3,3,8] multiply(x, full)\n}\n";
    let v: Vec<f32> = (0..8).map(|i| i as f32 + 0.5).collect();
    let x: Vec<f32> = (0..144).map(|i| (i % 7) as f32 - 3.0).collect();
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let out = run(
        text,
        &[
            Arc::new(Tensor::from_le_bytes(DType::F32, &[1, 1, 1, 8], &bytes(&v)).unwrap()),
            Arc::new(Tensor::from_le_bytes(DType::F32, &[2, 3, 3, 8], &bytes(&x)).unwrap()),
        ],
    );
    let got = out[0].to_f64_vec();
    for (i, g) in got.iter().enumerate() {
        let r = 1.0 / (v[i % 8] + 0.5).sqrt();
        let want = x[i] * (r * r);
        assert!(
            (*g as f32 - want).abs() <= 1e-6 * want.abs().max(1.0),
            "{i}: {g} vs {want}"
        );
    }
}
