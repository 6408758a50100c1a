//! `convolution` against a direct evaluation of XLA's definition, over random dimension
//! labels, windows (strides, negative and asymmetric padding, input and kernel dilation,
//! kernel reversal) and groupings; and its refusals. The JAX fixtures (conv_*) pin the
//! semantics to XLA's; this checks every combination the fixtures cannot enumerate.

use proptest::prelude::*;
use statetensor_core::{DType, ErrorKind};
use statetensor_hlo::{Program, Tensor};
use std::sync::Arc;

/// One convolution: logical sizes, where each axis sits, the window, the groups.
#[derive(Clone, Debug)]
struct Case {
    spatial: Vec<usize>,
    kernel: Vec<usize>,
    stride: Vec<usize>,
    pad: Vec<(i64, i64)>,
    lhs_dilate: Vec<usize>,
    rhs_dilate: Vec<usize>,
    reversal: Vec<bool>,
    batch: usize,
    in_per_group: usize,
    out_per_group: usize,
    feature_groups: usize,
    batch_groups: usize,
    /// Axis order of input, kernel and result: a permutation of 0..n+2 where 0 and 1 are
    /// the non-spatial axes (b/f, i/o) and 2.. the spatial ones.
    orders: [Vec<usize>; 3],
}

impl Case {
    fn n(&self) -> usize {
        self.spatial.len()
    }

    fn output_spatial(&self) -> Vec<usize> {
        (0..self.n())
            .map(|d| {
                let dil = (self.spatial[d] as i64 - 1) * self.lhs_dilate[d] as i64 + 1;
                let padded = dil + self.pad[d].0 + self.pad[d].1;
                let span = (self.kernel[d] as i64 - 1) * self.rhs_dilate[d] as i64 + 1;
                if padded < span {
                    0
                } else {
                    ((padded - span) / self.stride[d] as i64 + 1) as usize
                }
            })
            .collect()
    }

    fn groups(&self) -> usize {
        self.feature_groups * self.batch_groups
    }

    /// Logical (canonical) dims: input [B, C, S..], kernel [O, I, K..], result [B', O, P..].
    fn logical(&self) -> [Vec<usize>; 3] {
        let o = self.out_per_group * self.groups();
        let mut lhs = vec![self.batch, self.in_per_group * self.feature_groups];
        lhs.extend(&self.spatial);
        let mut rhs = vec![o, self.in_per_group];
        rhs.extend(&self.kernel);
        let mut out = vec![self.batch / self.batch_groups, o];
        out.extend(self.output_spatial());
        [lhs, rhs, out]
    }

    fn labels(&self, which: usize) -> String {
        let names = if which == 1 { ['o', 'i'] } else { ['b', 'f'] };
        self.orders[which]
            .iter()
            .map(|&a| {
                if a < 2 {
                    names[a]
                } else {
                    (b'0' + (a - 2) as u8) as char
                }
            })
            .collect()
    }

    fn hlo(&self, dtype: &str) -> String {
        let shape = |which: usize| {
            let logical = &self.logical()[which];
            let dims: Vec<String> = self.orders[which]
                .iter()
                .map(|&a| logical[a].to_string())
                .collect();
            format!("{dtype}[{}]", dims.join(","))
        };
        let by = |v: Vec<String>| v.join("x");
        let mut window = format!(
            "size={} stride={} pad={} lhs_dilate={} rhs_dilate={}",
            by(self.kernel.iter().map(|x| x.to_string()).collect()),
            by(self.stride.iter().map(|x| x.to_string()).collect()),
            by(self.pad.iter().map(|(l, h)| format!("{l}_{h}")).collect()),
            by(self.lhs_dilate.iter().map(|x| x.to_string()).collect()),
            by(self.rhs_dilate.iter().map(|x| x.to_string()).collect()),
        );
        if self.reversal.iter().any(|&r| r) {
            window += &format!(
                " rhs_reversal={}",
                by(self
                    .reversal
                    .iter()
                    .map(|&r| (r as u8).to_string())
                    .collect())
            );
        }
        // without spatial dimensions there is no window to write
        let window = if self.n() == 0 {
            String::new()
        } else {
            format!("window={{{window}}}, ")
        };
        format!(
            "HloModule c\nENTRY e {{\n  x = {} parameter(0)\n  w = {} parameter(1)\n  ROOT y = {} convolution(x, w), {window}dim_labels={}_{}->{}, feature_group_count={}, batch_group_count={}\n}}\n",
            shape(0),
            shape(1),
            shape(2),
            self.labels(0),
            self.labels(1),
            self.labels(2),
            self.feature_groups,
            self.batch_groups
        )
    }
}

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for k in (0..dims.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * dims[k + 1];
    }
    s
}

/// Offset of a logical index in a buffer laid out in `order`.
fn offset(logical_index: &[usize], order: &[usize], logical_dims: &[usize]) -> usize {
    let dims: Vec<usize> = order.iter().map(|&a| logical_dims[a]).collect();
    let st = strides(&dims);
    order
        .iter()
        .zip(st)
        .map(|(&a, s)| logical_index[a] * s)
        .sum()
}

/// Every index of `dims`, row-major.
fn indices(dims: &[usize]) -> Vec<Vec<usize>> {
    let mut all = vec![vec![]];
    for &d in dims {
        all = all
            .into_iter()
            .flat_map(|p| {
                (0..d).map(move |i| {
                    let mut q = p.clone();
                    q.push(i);
                    q
                })
            })
            .collect();
    }
    all
}

/// XLA's definition, term by term: the result in its own axis order.
fn reference(c: &Case, x: &[i64], w: &[i64]) -> Vec<i64> {
    let [ld, rd, od] = c.logical();
    let n = c.n();
    let out_per_group = c.out_per_group;
    let out_batch = c.batch / c.batch_groups;
    let out_dims: Vec<usize> = c.orders[2].iter().map(|&a| od[a]).collect();
    let mut out = vec![0i64; out_dims.iter().product()];
    for idx in indices(&od) {
        let (b, o) = (idx[0], idx[1]);
        let q = o / out_per_group;
        let (channel0, lhs_b) = if c.feature_groups > 1 {
            (q * c.in_per_group, b)
        } else {
            (0, q * out_batch + b)
        };
        let mut acc = 0i64;
        for i in 0..c.in_per_group {
            'taps: for k in indices(&c.kernel) {
                let mut at = vec![lhs_b, channel0 + i];
                for d in 0..n {
                    let kk = if c.reversal[d] {
                        c.kernel[d] - 1 - k[d]
                    } else {
                        k[d]
                    };
                    let pos = (idx[2 + d] * c.stride[d]) as i64 + (kk * c.rhs_dilate[d]) as i64
                        - c.pad[d].0;
                    let dil = c.lhs_dilate[d] as i64;
                    if pos < 0 || pos % dil != 0 || pos / dil >= c.spatial[d] as i64 {
                        continue 'taps;
                    }
                    at.push((pos / dil) as usize);
                }
                let mut kat = vec![o, i];
                kat.extend(&k);
                acc += x[offset(&at, &c.orders[0], &ld)] * w[offset(&kat, &c.orders[1], &rd)];
            }
        }
        out[offset(&idx, &c.orders[2], &od)] = acc;
    }
    out
}

fn permutation(seed: &[u32], len: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..len).collect();
    for (i, &s) in seed.iter().enumerate().take(len.saturating_sub(1)) {
        let j = i + s as usize % (len - i);
        p.swap(i, j);
    }
    p
}

fn case() -> impl Strategy<Value = Case> {
    (0usize..=3).prop_flat_map(|n| {
        (
            (
                prop::collection::vec(1usize..=6, n),
                prop::collection::vec(1usize..=3, n),
                prop::collection::vec(1usize..=3, n),
                // up to 6: windows that read mostly padding take the direct path
                prop::collection::vec((-2i64..=6, -2i64..=6), n),
                prop::collection::vec(1usize..=3, n),
                prop::collection::vec(1usize..=2, n),
                prop::collection::vec(any::<bool>(), n),
            ),
            // in_per_group up to 7: grouped convolutions with more than
            // DIRECT_GROUP_FEATURES inputs per group take the im2col path with a group shift
            (1usize..=3, 1usize..=7, 1usize..=3, 0usize..3, 1usize..=3),
            prop::collection::vec(any::<u32>(), 3 * (n + 2)),
        )
            .prop_map(
                move |(
                    (spatial, kernel, stride, pad, lhs_dilate, rhs_dilate, reversal),
                    (batch, in_per_group, out_per_group, grouping, groups),
                    seeds,
                )| {
                    let (feature_groups, batch_groups) = match grouping {
                        0 => (1, 1),
                        1 => (groups, 1),
                        _ => (1, groups),
                    };
                    let orders = [0, 1, 2].map(|k| permutation(&seeds[k * (n + 2)..], n + 2));
                    Case {
                        spatial,
                        kernel,
                        stride,
                        pad,
                        lhs_dilate,
                        rhs_dilate,
                        reversal,
                        batch: batch * batch_groups,
                        in_per_group,
                        out_per_group,
                        feature_groups,
                        batch_groups,
                        orders,
                    }
                },
            )
    })
}

fn tensor(dtype: DType, dims: &[usize], values: &[i64]) -> Arc<Tensor> {
    let bytes: Vec<u8> = match dtype {
        DType::S32 => values
            .iter()
            .flat_map(|&v| (v as i32).to_le_bytes())
            .collect(),
        DType::F32 => values
            .iter()
            .flat_map(|&v| (v as f32).to_le_bytes())
            .collect(),
        _ => unreachable!(),
    };
    Arc::new(Tensor::from_le_bytes(dtype, dims, &bytes).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::cases(96)))]

    /// Integer and f32 convolutions (small integer values, so f32 sums are exact) equal the
    /// definition evaluated term by term, whatever the axis orders, window and groups.
    #[test]
    fn convolution_is_xlas_definition(c in case(), seed in any::<u64>()) {
        let [ld, rd, _] = c.logical();
        let mut state = seed | 1;
        let mut values = |len: usize| -> Vec<i64> {
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state % 9) as i64 - 4
                })
                .collect()
        };
        let x = values(ld.iter().product());
        let w = values(rd.iter().product());
        let want = reference(&c, &x, &w);
        let physical = |which: usize, logical: &[usize]| -> Vec<usize> {
            c.orders[which].iter().map(|&a| logical[a]).collect()
        };
        for (dtype, name) in [(DType::S32, "s32"), (DType::F32, "f32")] {
            let text = c.hlo(name);
            let prog = Program::parse(&text, "c.hlo").map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            let out = prog
                .execute(vec![tensor(dtype, &physical(0, &ld), &x), tensor(dtype, &physical(1, &rd), &w)])
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            let got: Vec<i64> = out[0].to_f64_vec().iter().map(|&v| v as i64).collect();
            prop_assert_eq!(&got, &want, "{}", text);
        }
    }
}

/// Convolutions that do not fit their operands are refused with what does not fit.
#[test]
fn inconsistent_convolutions_are_refused() {
    let conv = |x: &str, w: &str, y: &str, attrs: &str| {
        format!("HloModule c\nENTRY e {{\n  x = {x} parameter(0)\n  w = {w} parameter(1)\n  ROOT y = {y} convolution(x, w), {attrs}\n}}\n")
    };
    let cases = [
        (
            conv("f32[1,4,4,3]", "f32[2,2,4,5]", "f32[1,3,3,5]", "window={size=2x2}, dim_labels=b01f_01io->b01f"),
            "the input has 3 features but the kernel takes 4",
        ),
        (
            conv("f32[1,4,4,3]", "f32[2,2,3,5]", "f32[1,4,4,5]", "window={size=2x2}, dim_labels=b01f_01io->b01f"),
            "operands and window give [1, 3, 3, 5]",
        ),
        (
            conv("f32[1,4,4,3]", "f32[2,2,3,5]", "f32[1,3,3,5]", "window={size=3x2}, dim_labels=b01f_01io->b01f"),
            "window's size 3 in spatial dimension 0 is not the kernel's 2",
        ),
        (
            conv("f32[1,4,4,3]", "f32[2,2,3,5]", "f32[1,3,3,5]", "window={size=2x2}, dim_labels=b01f_01io->b0f"),
            "dim_labels=b01f_01io->b0f",
        ),
        (
            conv("f32[1,4,4,4]", "f32[2,2,2,6]", "f32[1,3,3,6]", "window={size=2x2}, dim_labels=b01f_01io->b01f, feature_group_count=2, batch_group_count=2"),
            "both above 1",
        ),
        (
            conv("f32[1,4,4,3]", "f32[2,2,3,5]", "f32[1,3,3,5]", "dim_labels=b01f_01io->b01f"),
            "needs attribute 'window'",
        ),
        (
            conv("f32[1,4,4,3]", "s32[2,2,3,5]", "f32[1,3,3,5]", "window={size=2x2}, dim_labels=b01f_01io->b01f"),
            "the input is f32 but the kernel s32",
        ),
    ];
    for (text, want) in cases {
        let e = Program::parse(&text, "c.hlo").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidModel, "{e}");
        assert!(e.to_string().contains(want), "{e}\nwanted: {want}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::cases(64)))]

    /// A reduce-window with a one-op region (run natively, the untouched trailing
    /// dimensions as contiguous runs) equals the same window with a region the engine must
    /// interpret, bit for bit: the same fold from init, window positions in row-major
    /// order, positions in the padding skipped.
    #[test]
    fn native_reduce_window_is_the_interpreted_one(c in case(), op in 0usize..3, seed in any::<u64>()) {
        let n = c.n();
        // input [S.., C]: the window over the spatial dims, the trailing one untouched
        let mut dims = c.spatial.clone();
        dims.push(c.in_per_group);
        let (name, init) = [("add", "0"), ("maximum", "-inf"), ("minimum", "inf")][op];
        let window = |k: usize| -> String {
            let mut v: Vec<String> = (0..n).map(|d| match k {
                0 => c.kernel[d].to_string(),
                1 => c.stride[d].to_string(),
                2 => format!("{}_{}", c.pad[d].0, c.pad[d].1),
                3 => c.lhs_dilate[d].to_string(),
                _ => c.rhs_dilate[d].to_string(),
            }).collect();
            v.push(if k == 2 { "0_0".into() } else { "1".into() });
            v.join("x")
        };
        let mut out: Vec<usize> = (0..n).map(|d| {
            let dil = (c.spatial[d] as i64 - 1) * c.lhs_dilate[d] as i64 + 1;
            let padded = dil + c.pad[d].0 + c.pad[d].1;
            let span = (c.kernel[d] as i64 - 1) * c.rhs_dilate[d] as i64 + 1;
            if padded < span { 0 } else { ((padded - span) / c.stride[d] as i64 + 1) as usize }
        }).collect();
        out.push(c.in_per_group);
        let shape = |d: &[usize]| d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
        let module = |region: &str| format!(
            "HloModule r\nreg {{\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n{region}\n}}\nENTRY e {{\n  x = f32[{}] parameter(0)\n  i = f32[] constant({init})\n  ROOT y = f32[{}] reduce-window(x, i), window={{size={} stride={} pad={} lhs_dilate={} rhs_dilate={}}}, to_apply=reg\n}}\n",
            shape(&dims), shape(&out), window(0), window(1), window(2), window(3), window(4));
        let native = module(&format!("  ROOT s = f32[] {name}(a, b)"));
        let interpreted = module(&format!("  c = f32[] copy(a)\n  ROOT s = f32[] {name}(c, b)"));
        let mut state = seed | 1;
        let x: Vec<f32> = (0..dims.iter().product::<usize>()).map(|_| {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            (state % 2001) as f32 / 97.0 - 10.0
        }).collect();
        let arg = Arc::new(Tensor::from_le_bytes(DType::F32, &dims, &x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap());
        let run = |text: &str| -> Result<Vec<u64>, TestCaseError> {
            let prog = Program::parse(text, "r.hlo").map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            let out = prog.execute(vec![arg.clone()]).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            Ok(out[0].to_f64_vec().iter().map(|v| v.to_bits()).collect())
        };
        prop_assert_eq!(run(&native)?, run(&interpreted)?, "{}", native);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::cases(48)))]

    /// A sum over the leading axes (BatchNorm's batch statistics), computed column-wise
    /// without moving the axes last, is bit for bit the sum of the same runs moved last:
    /// the same pairwise order, across block (512) and lane (8) boundaries.
    #[test]
    fn leading_axis_sums_are_the_trailing_ones(r1 in 1usize..40, r2 in 1usize..40, k in 8usize..24, seed in any::<u64>()) {
        let text = format!(
            "HloModule s\nadd {{\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}}\nENTRY e {{\n  x = f32[{r1},{r2},{k}] parameter(0)\n  z = f32[] constant(0.25)\n  lead = f32[{k}] reduce(x, z), dimensions={{0,1}}, to_apply=add\n  t = f32[{k},{r1},{r2}] transpose(x), dimensions={{2,0,1}}\n  trail = f32[{k}] reduce(t, z), dimensions={{1,2}}, to_apply=add\n  ROOT out = (f32[{k}], f32[{k}]) tuple(lead, trail)\n}}\n");
        let mut state = seed | 1;
        let x: Vec<f32> = (0..r1 * r2 * k).map(|_| {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            ((state % 20001) as f32 - 10000.0) * [1e-3f32, 1.0, 1e4][(state >> 40) as usize % 3]
        }).collect();
        let arg = Arc::new(Tensor::from_le_bytes(DType::F32, &[r1, r2, k], &x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap());
        let prog = Program::parse(&text, "s.hlo").map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let out = prog.execute(vec![arg]).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let bits = |t: &Tensor| t.to_f64_vec().iter().map(|v| (*v as f32).to_bits()).collect::<Vec<u32>>();
        prop_assert_eq!(bits(&out[0]), bits(&out[1]));
    }
}
