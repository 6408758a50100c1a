//! `select-and-scatter`, `map`, variadic `scatter`, `reduce-precision` and
//! `rng-bit-generator` beyond their XLA fixtures (select_and_scatter*, map_general,
//! scatter_variadic, reduce_precision, rng_*): the native selection against the interpreted
//! one over random windows, and the refusals of modules that do not fit.

use proptest::prelude::*;
use statetensor_core::{DType, ErrorKind};
use statetensor_hlo::{Program, Tensor};
use std::sync::Arc;

fn shape(d: &[usize]) -> String {
    d.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn window_output(n: usize, size: usize, stride: usize, pad: (i64, i64)) -> usize {
    let padded = n as i64 + pad.0 + pad.1;
    if padded < size as i64 {
        0
    } else {
        ((padded - size as i64) / stride as i64 + 1) as usize
    }
}

fn f32_tensor(dims: &[usize], values: &[f32]) -> Arc<Tensor> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Arc::new(Tensor::from_le_bytes(DType::F32, dims, &bytes).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::cases(64)))]

    /// select-and-scatter with a select the planner recognises (one GE or LE comparison of
    /// its parameters, run natively) equals the same select written so it must be
    /// interpreted (`not` of the opposite strict comparison, the same on numbers), bit for
    /// bit, over random shapes, windows, strides and padding, with ties among the values
    /// (small integers) so which element of a window wins matters.
    #[test]
    fn native_selection_is_the_interpreted_one(
        dims in prop::collection::vec(1usize..7, 1..4),
        seed in any::<u64>(),
        ge in any::<bool>(),
        scatter in 0usize..3,
    ) {
        let rank = dims.len();
        let mut state = seed | 1;
        let mut next = |m: u64| { state ^= state << 13; state ^= state >> 7; state ^= state << 17; state % m };
        let size: Vec<usize> = (0..rank).map(|d| 1 + next(dims[d] as u64 + 1) as usize).collect();
        let stride: Vec<usize> = (0..rank).map(|_| 1 + next(3) as usize).collect();
        let pad: Vec<(i64, i64)> = (0..rank).map(|_| (next(3) as i64, next(3) as i64)).collect();
        let src: Vec<usize> = (0..rank).map(|d| window_output(dims[d], size[d], stride[d], pad[d])).collect();
        let (keep, other) = if ge { ("GE", "LT") } else { ("LE", "GT") };
        let (op, init) = [("add", "0"), ("maximum", "-inf"), ("multiply", "1")][scatter];
        let join = |f: &dyn Fn(usize) -> String| (0..rank).map(f).collect::<Vec<_>>().join("x");
        let module = |select: &str| format!(
            "HloModule s\nsel {{\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n{select}\n}}\nsc {{\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT r = f32[] {op}(a, b)\n}}\nENTRY e {{\n  x = f32[{}] parameter(0)\n  g = f32[{}] parameter(1)\n  i = f32[] constant({init})\n  ROOT y = f32[{}] select-and-scatter(x, g, i), window={{size={} stride={} pad={}}}, select=sel, scatter=sc\n}}\n",
            shape(&dims), shape(&src), shape(&dims),
            join(&|d| size[d].to_string()), join(&|d| stride[d].to_string()),
            join(&|d| format!("{}_{}", pad[d].0, pad[d].1)));
        let native = module(&format!("  ROOT r = pred[] compare(a, b), direction={keep}"));
        let interpreted = module(&format!("  c = pred[] compare(a, b), direction={other}\n  ROOT r = pred[] not(c)"));
        let x: Vec<f32> = (0..dims.iter().product::<usize>()).map(|_| next(5) as f32 - 2.0).collect();
        let g: Vec<f32> = (0..src.iter().product::<usize>()).map(|_| next(1000) as f32 / 64.0 - 7.0).collect();
        let args = vec![f32_tensor(&dims, &x), f32_tensor(&src, &g)];
        let run = |text: &str| -> Result<Vec<u32>, TestCaseError> {
            let prog = Program::parse(text, "s.hlo").map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            let out = prog.execute(args.clone()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            Ok(out[0].to_f64_vec().iter().map(|&v| (v as f32).to_bits()).collect())
        };
        prop_assert_eq!(run(&native)?, run(&interpreted)?, "{}", native);
    }
}

/// What does not fit is refused, naming it.
#[test]
fn inconsistent_region_ops_are_refused() {
    let module =
        |regions: &str, body: &str| format!("HloModule m\n{regions}\nENTRY e {{\n{body}\n}}\n");
    let ge = "ge {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT r = pred[] compare(a, b), direction=GE\n}\nadd {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT r = f32[] add(a, b)\n}";
    let pair = "keep {\n  a = f32[] parameter(0)\n  i = s32[] parameter(1)\n  b = f32[] parameter(2)\n  j = s32[] parameter(3)\n  ROOT r = (f32[], s32[]) tuple(b, j)\n}";
    let cases = [
        (
            module(ge, "  x = f32[4,4] parameter(0)\n  g = f32[3,3] parameter(1)\n  i = f32[] constant(0)\n  ROOT y = f32[4,4] select-and-scatter(x, g, i), window={size=2x2 stride=2x2}, select=ge, scatter=add"),
            "must have the window's output dims over f32[4,4]: [2, 2]",
        ),
        (
            module(ge, "  x = f32[4,4] parameter(0)\n  g = f32[2,2] parameter(1)\n  i = f32[] constant(0)\n  ROOT y = f32[4,4] select-and-scatter(x, g, i), window={size=2x2 stride=2x2}, select=add, scatter=add"),
            "select computation 'add' must map (f32[], f32[]) to pred[]",
        ),
        (
            module(ge, "  x = f32[4] parameter(0)\n  ROOT m = f32[4] map(x), dimensions={0}, to_apply=add"),
            "map computation 'add' must take (f32[]) and return a scalar",
        ),
        (
            module(ge, "  x = f32[4,2] parameter(0)\n  y = f32[4,2] parameter(1)\n  ROOT m = f32[4,2] map(x, y), dimensions=one, to_apply=add"),
            "expected a list like",
        ),
        (
            module(ge, "  x = f32[4] parameter(0)\n  y = f32[5] parameter(1)\n  ROOT m = f32[4] map(x, y), dimensions={0}, to_apply=add"),
            "map operands must share their dims",
        ),
        (
            module(pair, "  v = f32[5] parameter(0)\n  i = s32[5] parameter(1)\n  at = s32[2,1] parameter(2)\n  u = f32[2] parameter(3)\n  ROOT s = (f32[5], s32[5]) scatter(v, i, at, u), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=keep"),
            "an odd count of 3 or more), found 4",
        ),
        (
            module(pair, "  v = f32[5] parameter(0)\n  i = s32[4] parameter(1)\n  at = s32[2,1] parameter(2)\n  u = f32[2] parameter(3)\n  w = s32[2] parameter(4)\n  ROOT s = (f32[5], s32[4]) scatter(v, i, at, u, w), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=keep"),
            "scatter operand 1 s32[4] or update 1 s32[2] differs in dims",
        ),
        (
            module(ge, "  v = f32[5] parameter(0)\n  i = s32[5] parameter(1)\n  at = s32[2,1] parameter(2)\n  u = f32[2] parameter(3)\n  w = s32[2] parameter(4)\n  ROOT s = (f32[5], s32[5]) scatter(v, i, at, u, w), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=add"),
            "scatter region 'add' must map (f32[], s32[], f32[], s32[]) to (f32[], s32[])",
        ),
        (
            module("", "  s = u64[3] parameter(0)\n  ROOT r = (u64[3], u32[4]) rng-bit-generator(s), algorithm=rng_three_fry"),
            "rng_three_fry takes a u64[2] state, found u64[3]",
        ),
        (
            module("", "  s = u64[2] parameter(0)\n  ROOT r = (u64[2], s32[4]) rng-bit-generator(s), algorithm=rng_philox"),
            "XLA writes the bits as unsigned integers",
        ),
        (
            module("", "  s = u64[2] parameter(0)\n  ROOT r = (u64[2], u32[4]) rng-bit-generator(s), algorithm=rng_mersenne"),
            "algorithm=rng_mersenne: expected rng_default, rng_philox or rng_three_fry",
        ),
        (
            module("", "  x = s32[4] parameter(0)\n  ROOT r = s32[4] reduce-precision(x), exponent_bits=5, mantissa_bits=2"),
            "reduce-precision takes f16, bf16, f32 or f64, found s32[4]",
        ),
        (
            module("", "  x = f32[4] parameter(0)\n  ROOT r = f32[4] reduce-precision(x), exponent_bits=0, mantissa_bits=2"),
            "expected at least 1 exponent bit",
        ),
    ];
    for (text, want) in cases {
        let e = Program::parse(&text, "m.hlo").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidModel, "{e}\n{text}");
        assert!(e.to_string().contains(want), "{e}\nwanted: {want}\n{text}");
    }
}

/// The bits of `rng-bit-generator` for the cases the JAX fixtures leave out: the notes'
/// table of XLA:CPU outputs for a u64[2] state of {1, 2} (ThreeFry's split dimension with
/// an odd size, Philox's narrow types), and a ThreeFry counter that wraps.
#[test]
fn random_bits_are_xlas() {
    let run = |alg: &str, out: &str, state: [u64; 2]| -> (Vec<u64>, Vec<u64>) {
        let text = format!("HloModule r\nENTRY e {{\n  s = u64[2] parameter(0)\n  ROOT r = (u64[2], {out}) rng-bit-generator(s), algorithm={alg}\n}}\n");
        let prog = Program::parse(&text, "r.hlo").unwrap();
        let bytes: Vec<u8> = state.iter().flat_map(|v| v.to_le_bytes()).collect();
        let s = Arc::new(Tensor::from_le_bytes(DType::U64, &[2], &bytes).unwrap());
        let out = prog.execute(vec![s]).unwrap();
        let ints = |t: &Tensor| -> Vec<u64> {
            let b = t.to_le_bytes();
            let w = t.dtype().size_bytes();
            b.chunks(w)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a[..w].copy_from_slice(c);
                    u64::from_le_bytes(a)
                })
                .collect()
        };
        (ints(&out[0]), ints(&out[1]))
    };
    assert_eq!(
        run("rng_three_fry", "u32[3,3]", [1, 2]),
        (
            vec![1, 8],
            vec![
                0x0296e954, 0xed3492d3, 0x63b40bd3, 0x802fd53b, 0xdf435003, 0xfcc0f261, 0x7dbb1d60,
                0x9718c0ad, 0xaafe5a17
            ]
        )
    );
    assert_eq!(
        run("rng_three_fry", "u16[3]", [1, 2]),
        (vec![1, 4], vec![0xe954, 0xd53b, 0x92d3])
    );
    assert_eq!(
        run("rng_philox", "u8[5]", [1, 2]),
        (vec![1, 4], vec![0x49, 0xe8, 0xd7, 0xd9, 0xfe])
    );
    assert_eq!(
        run("rng_default", "u64[]", [1, 2]),
        (vec![1, 3], vec![0xa9b8bbe87d34a749])
    );
    // the carry out of a two-word Philox counter is dropped: {1, 2^64-1} -> {1, 1}
    assert_eq!(
        run("rng_philox", "u32[8]", [1, u64::MAX]),
        (
            vec![1, 1],
            vec![
                0x586e44b1, 0x26dab12a, 0xd8b888d9, 0xd93830cc, 0xe73404cf, 0x8cedc5d3, 0x3f071736,
                0x0a0afddd
            ]
        )
    );
    // a zero-element output leaves the state as it was
    assert_eq!(
        run("rng_three_fry", "u32[0,3]", [1, 2]),
        (vec![1, 2], vec![])
    );
}

/// FP8 arithmetic rounds through f16, as XLA:CPU computes FP8 operations in f16: the sum
/// 4.748046875 is 4.75 in f16 (a tie, to even), then 5 in f8e4m3fn (a tie, to even); rounded
/// directly it would be 4.5.
#[test]
fn fp8_results_round_through_f16() {
    let text = "HloModule m\nadd {\n  a = f8e4m3fn[] parameter(0)\n  b = f8e4m3fn[] parameter(1)\n  ROOT s = f8e4m3fn[] add(a, b)\n}\nENTRY e {\n  x = f8e4m3fn[3] constant({4.5, 0.25, -0.001953125})\n  z = f8e4m3fn[] constant(0)\n  ROOT r = f8e4m3fn[] reduce(x, z), dimensions={0}, to_apply=add\n}\n";
    let out = Program::parse(text, "m.hlo")
        .unwrap()
        .execute(vec![])
        .unwrap();
    assert_eq!(out[0].to_f64_vec(), [5.0]);
}
