//! Reductions: `reduce` with a recognised binary reducer as slice loops, any other reducer
//! evaluated on scalars, and `reduce-window`.

use super::elementwise::BinaryFn;
use super::layout::*;
use super::movement::broadcast_scalar;
use super::op_kinds::BinaryOp;
use crate::map_tensor;
use crate::tensor::{Elem, Tensor, BF16, F16, F8E4M3FN, F8E5M2};
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use statetensor_core::Result;

/// Moves `reduced` axes last and returns the array in standard layout (borrowed when it
/// already is, as for a reduction over the trailing axes) with the length of each reduced
/// run.
pub(crate) fn reduced_last<'a, T: Elem>(
    a: &'a ArrayD<T>,
    reduced: &[usize],
) -> (ndarray::CowArray<'a, T, IxDyn>, usize) {
    let kept: Vec<usize> = (0..a.ndim()).filter(|k| !reduced.contains(k)).collect();
    let order: Vec<usize> = kept.iter().chain(reduced).copied().collect();
    let run: usize = reduced.iter().map(|&k| a.shape()[k]).product();
    let v = a.view().permuted_axes(IxDyn(&order));
    let p = if v.is_standard_layout() {
        ndarray::CowArray::from(v)
    } else {
        ndarray::CowArray::from(v.as_standard_layout().into_owned())
    };
    (p, run)
}

fn reduce_typed<T: BinaryFn>(
    a: &ArrayD<T>,
    init: T,
    reduced: &[usize],
    op: BinaryOp,
    out: &[usize],
) -> ArrayD<T> {
    let f = T::binary_fn(op);
    reduce_runs(a, init, reduced, out, |run: &[T]| {
        run.iter().fold(init, |acc, &x| f(acc, x))
    })
}

/// Applies `fold` to every run of reduced elements (in parallel for large inputs).
fn reduce_runs<T: Elem>(
    a: &ArrayD<T>,
    init: T,
    reduced: &[usize],
    out: &[usize],
    fold: impl Fn(&[T]) -> T + Sync,
) -> ArrayD<T> {
    let (p, run) = reduced_last(a, reduced);
    let s = p.as_slice().expect("standard layout");
    let count: usize = out.iter().product();
    let v: Vec<T> = if run == 0 {
        vec![init; count]
    } else if count > 1 && super::elementwise::splits(s.len()) {
        s.par_chunks(run).map(&fold).collect()
    } else {
        s.chunks(run).map(&fold).collect()
    };
    ArrayD::from_shape_vec(IxDyn(out), v).expect("reduce output size")
}

/// Elements a sum adds with eight interleaved accumulators before results are combined
/// pairwise: each accumulator sees at most `PAIRWISE_BLOCK / 8` elements.
const PAIRWISE_BLOCK: usize = 512;

/// Float sum, maximum or minimum of a run. Maximum and minimum keep eight interleaved
/// partial results so the loop vectorises (a single running value is one long dependency
/// chain) and propagate NaN as XLA does. Sums are pairwise: blocks of
/// [`PAIRWISE_BLOCK`] elements summed in eight lanes, block sums added as a balanced tree,
/// so the rounding error grows like log n rather than n (XLA:CPU's sums are exact where
/// ours are, e.g. 654,704,640 f32 ones, which a running f32 sum leaves at 2^27). `init` is
/// applied once, to the combined result.
macro_rules! float_reduce {
    ($t:ty) => {
        |run: &[$t], init: $t, op: BinaryOp| -> $t {
            let combine: fn($t, $t) -> $t = match op {
                BinaryOp::Add => |x, y| x + y,
                BinaryOp::Maximum => |x: $t, y: $t| {
                    if x.is_nan() || y.is_nan() {
                        <$t>::NAN
                    } else {
                        x.max(y)
                    }
                },
                _ => |x: $t, y: $t| {
                    if x.is_nan() || y.is_nan() {
                        <$t>::NAN
                    } else {
                        x.min(y)
                    }
                },
            };
            fn lanes(run: &[$t], op: BinaryOp, combine: fn($t, $t) -> $t, empty: $t) -> $t {
                let mut chunks = run.chunks_exact(8);
                let Some(first) = chunks.next() else {
                    return run.iter().fold(empty, |acc, &x| combine(acc, x));
                };
                let mut acc: [$t; 8] = first.try_into().expect("chunk of eight");
                // compare-and-pick forms of NaN-propagating max/min, which vectorise: a NaN
                // element is picked (`x != x`), a NaN partial result is never replaced
                #[allow(clippy::eq_op)]
                match op {
                    BinaryOp::Add => chunks
                        .by_ref()
                        .for_each(|c| (0..8).for_each(|i| acc[i] += c[i])),
                    BinaryOp::Maximum => chunks.by_ref().for_each(|c| {
                        (0..8).for_each(|i| {
                            let pick = c[i] > acc[i] || c[i] != c[i];
                            acc[i] = if pick { c[i] } else { acc[i] };
                        })
                    }),
                    _ => chunks.by_ref().for_each(|c| {
                        (0..8).for_each(|i| {
                            let pick = c[i] < acc[i] || c[i] != c[i];
                            acc[i] = if pick { c[i] } else { acc[i] };
                        })
                    }),
                }
                let mut total = combine(
                    combine(combine(acc[0], acc[4]), combine(acc[1], acc[5])),
                    combine(combine(acc[2], acc[6]), combine(acc[3], acc[7])),
                );
                for &x in chunks.remainder() {
                    total = combine(total, x);
                }
                total
            }
            fn pairwise(run: &[$t], combine: fn($t, $t) -> $t) -> $t {
                if run.len() <= PAIRWISE_BLOCK {
                    // -0.0 is the additive identity: it keeps the sign of an all-zero sum
                    return lanes(run, BinaryOp::Add, combine, -0.0);
                }
                // split at a multiple of the block, so blocks stay whole
                let half = run.len().div_ceil(2 * PAIRWISE_BLOCK) * PAIRWISE_BLOCK;
                combine(
                    pairwise(&run[..half], combine),
                    pairwise(&run[half..], combine),
                )
            }
            let total = match op {
                BinaryOp::Add => pairwise(run, combine),
                _ if run.is_empty() => return init,
                _ => lanes(run, op, combine, run[0]),
            };
            combine(init, total)
        }
    };
}

/// An f32 sum over the leading axes (`reduced` = 0, 1, .., r-1: a batch statistic such as
/// BatchNorm's mean) without moving them last: every column of the `[rows, cols]` input is
/// summed in exactly the order [`float_reduce`] sums a run — blocks of [`PAIRWISE_BLOCK`]
/// rows in eight lanes, lanes combined as a tree, blocks pairwise — with the arithmetic
/// done a row at a time across all columns, so the result is bit for bit the same.
fn sum_leading_f32(
    a: &ArrayD<f32>,
    init: f32,
    reduced: &[usize],
    out: &[usize],
) -> Option<ArrayD<f32>> {
    let r = reduced.len();
    if r == 0 || !reduced.iter().enumerate().all(|(i, &k)| i == k) || r == a.ndim() {
        return None;
    }
    let rows: usize = a.shape()[..r].iter().product();
    let cols: usize = a.shape()[r..].iter().product();
    if rows == 0 || cols < 8 {
        return None;
    }
    let a = a.as_standard_layout();
    let x = a.as_slice().expect("standard layout");
    // init first, as `float_reduce` combines it (which NaN comes out of two depends on it)
    let total: Vec<f32> = pairwise_columns(x, rows, cols)
        .into_iter()
        .map(|t| init + t)
        .collect();
    Some(ArrayD::from_shape_vec(IxDyn(out), total).expect("reduce output size"))
}

/// [`float_reduce`]'s pairwise sum, for every column of a `[rows, cols]` matrix at once.
fn pairwise_columns(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    if rows <= PAIRWISE_BLOCK {
        return lanes_columns(x, rows, cols);
    }
    let half = rows.div_ceil(2 * PAIRWISE_BLOCK) * PAIRWISE_BLOCK;
    let mut first = pairwise_columns(&x[..half * cols], half, cols);
    let second = pairwise_columns(&x[half * cols..], rows - half, cols);
    first.iter_mut().zip(&second).for_each(|(a, &b)| *a += b);
    first
}

/// [`float_reduce`]'s eight-lane sum of up to a block of rows, for every column at once.
fn lanes_columns(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let row = |r: usize| &x[r * cols..(r + 1) * cols];
    if rows < 8 {
        // -0.0 is the additive identity: it keeps the sign of an all-zero sum
        let mut total = vec![-0.0f32; cols];
        for r in 0..rows {
            total.iter_mut().zip(row(r)).for_each(|(t, &v)| *t += v);
        }
        return total;
    }
    let mut acc = x[..8 * cols].to_vec();
    let full = rows / 8;
    for chunk in 1..full {
        for lane in 0..8 {
            acc[lane * cols..(lane + 1) * cols]
                .iter_mut()
                .zip(row(chunk * 8 + lane))
                .for_each(|(a, &v)| *a += v);
        }
    }
    let lane = |l: usize, j: usize| acc[l * cols + j];
    let mut total: Vec<f32> = (0..cols)
        .map(|j| {
            ((lane(0, j) + lane(4, j)) + (lane(1, j) + lane(5, j)))
                + ((lane(2, j) + lane(6, j)) + (lane(3, j) + lane(7, j)))
        })
        .collect();
    for r in full * 8..rows {
        total.iter_mut().zip(row(r)).for_each(|(t, &v)| *t += v);
    }
    total
}

/// An f32 sum, maximum or minimum (what f16/bf16 ones are computed in too).
fn reduce_f32(
    a: &ArrayD<f32>,
    init: f32,
    reduced: &[usize],
    op: BinaryOp,
    out: &[usize],
) -> ArrayD<f32> {
    if op == BinaryOp::Add {
        if let Some(r) = sum_leading_f32(a, init, reduced, out) {
            return r;
        }
    }
    let f = float_reduce!(f32);
    reduce_runs(a, init, reduced, out, |r| f(r, init, op))
}

/// `reduce(t, init), dimensions=reduced` with a recognised binary reducer. Sums, maxima
/// and minima of f16/bf16 are computed in f32 and rounded once, at the end — what
/// NeuronCores' engines do — so 4,096 bf16 ones sum to 4,096, not 256. XLA:CPU gets close
/// another way: it rewrites a long reduction into a tree of windows of 32 and rounds every
/// add to bf16/f16, so its sums can differ from these by a few ulps (a bf16 sum of 256 and
/// 63 ones: XLA:CPU 288, statetensor 320, the exact 319 rounded); both agree wherever the
/// partial sums are exact.
pub fn reduce_binary(
    t: &Tensor,
    init: &Tensor,
    reduced: &[usize],
    op: BinaryOp,
    out: &[usize],
) -> Tensor {
    if matches!(op, BinaryOp::Add | BinaryOp::Maximum | BinaryOp::Minimum) {
        let first = |i: &ArrayD<f32>| i.first().copied().unwrap_or_default();
        match (t, init) {
            (Tensor::F32(a), Tensor::F32(i)) => {
                return Tensor::F32(reduce_f32(a, first(i), reduced, op, out));
            }
            (Tensor::F64(a), Tensor::F64(i)) => {
                let (f, i) = (float_reduce!(f64), i.first().copied().unwrap_or_default());
                return Tensor::F64(reduce_runs(a, i, reduced, out, |r| f(r, i, op)));
            }
            _ => {}
        }
        // f16, bf16 and FP8 through the f32 path, rounded once at the end
        macro_rules! narrow {
            ($($v:ident: $round:path),*) => {
                match (t, init) {
                    $((Tensor::$v(a), Tensor::$v(i)) => {
                        let (a, i) = (a.mapv($v::to_f32), first(&i.mapv($v::to_f32)));
                        return Tensor::$v(reduce_f32(&a, i, reduced, op, out).mapv($round));
                    })*
                    _ => {}
                }
            };
        }
        narrow!(
            BF16: BF16::from_f32,
            F16: F16::from_f32,
            F8E4M3FN: F8E4M3FN::from_f32_via_f16,
            F8E5M2: F8E5M2::from_f32_via_f16
        );
    }
    macro_rules! r {
        ($($v:ident),*) => {
            match (t, init) {
                $((Tensor::$v(a), Tensor::$v(i)) => Tensor::$v(reduce_typed(a, i.first().copied().unwrap_or_default(), reduced, op, out)),)*
                _ => unreachable!("reduce operands are type-checked"),
            }
        };
    }
    crate::every_variant!(r)
}

/// Variadic `reduce` with any reducer computation, evaluated on scalars: `f(accs ++ elems)`.
pub fn reduce_general(
    inputs: &[&Tensor],
    inits: &[&Tensor],
    reduced: &[usize],
    out: &[usize],
    f: &mut dyn FnMut(Vec<Tensor>) -> Result<Vec<Tensor>>,
) -> Result<Vec<Tensor>> {
    let perm: Vec<Tensor> = inputs
        .iter()
        .map(|t| map_tensor!(*t, a => reduced_last(a, reduced).0.into_owned()))
        .collect();
    let run: usize = reduced.iter().map(|&k| inputs[0].dims()[k]).product();
    let count: usize = out.iter().product();
    let mut results: Vec<Tensor> = inits.iter().map(|i| broadcast_scalar(i, out)).collect();
    for o in 0..count {
        let mut acc: Vec<Tensor> = inits.iter().map(|t| (*t).clone()).collect();
        for r in 0..run {
            let mut args = acc;
            args.extend(perm.iter().map(|p| element(p, o * run + r)));
            acc = f(args)?;
        }
        for (res, a) in results.iter_mut().zip(&acc) {
            set_element(res, o, a);
        }
    }
    Ok(results)
}

/// Window configuration of reduce-window.
#[derive(Clone, Debug, Default)]
pub struct Window {
    /// Window size per dim.
    pub size: Vec<usize>,
    /// Stride per dim.
    pub stride: Vec<usize>,
    /// Low padding per dim.
    pub pad_lo: Vec<i64>,
    /// High padding per dim.
    pub pad_hi: Vec<i64>,
    /// Base (input) dilation per dim.
    pub base_dilation: Vec<usize>,
    /// Window dilation per dim.
    pub window_dilation: Vec<usize>,
    /// Whether the window is reversed along each dim (`rhs_reversal`; only a convolution's
    /// kernel is, the reductions over a window ignore it as XLA does).
    pub reversal: Vec<bool>,
}

impl Window {
    /// The number of window positions along dimension `d` over an input of `input`
    /// elements: the input dilated by `base_dilation`, padded, then a window of `size`
    /// taps `window_dilation` apart stepped by `stride` (0 when the window does not fit).
    /// The output extent of reduce-window and of a convolution's spatial dimensions; None
    /// when an extent overflows (a window no real input has, refused where it is planned).
    pub(crate) fn output_len(&self, d: usize, input: usize) -> Option<usize> {
        let int = |v: usize| i64::try_from(v).ok();
        let dilated = if input == 0 {
            0
        } else {
            (int(input)? - 1)
                .checked_mul(int(self.base_dilation[d])?)?
                .checked_add(1)?
        };
        let padded = dilated
            .checked_add(self.pad_lo[d])?
            .checked_add(self.pad_hi[d])?;
        let span = (int(self.size[d])? - 1)
            .checked_mul(int(self.window_dilation[d])?)?
            .checked_add(1)?;
        if padded < span {
            Some(0)
        } else {
            usize::try_from((padded - span) / int(self.stride[d])? + 1).ok()
        }
    }

    /// For dimension `d` of an input of `input` elements and an output of `output`: the
    /// input index each (output position, window position) reads, row by row of `output`
    /// (`size[d]` entries each), or None where it reads padding or a hole of the input
    /// dilation. A reversed window (a convolution's `rhs_reversal`) meets window element
    /// k at position `size - 1 - k`.
    pub(crate) fn taps(&self, d: usize, input: usize, output: usize) -> Vec<Option<usize>> {
        let k = self.size[d];
        let base = self.base_dilation[d] as i64;
        let dilated_input = if input == 0 {
            0
        } else {
            (input as i64 - 1) * base + 1
        };
        let mut taps = Vec::with_capacity(output * k);
        for p in 0..output {
            for kk in 0..k {
                let at = if self.reversal[d] { k - 1 - kk } else { kk };
                let pos = (p * self.stride[d]) as i64 + (at * self.window_dilation[d]) as i64
                    - self.pad_lo[d];
                let hit = pos >= 0 && pos < dilated_input && pos % base == 0;
                taps.push(hit.then(|| (pos / base) as usize));
            }
        }
        taps
    }

    /// The flat input offset of every position of the window at output index `oidx`, in
    /// row-major order over the window (None in the padding or a hole of the input
    /// dilation), into `offsets`; `taps` are [`Window::taps`] per dimension, `istr` the
    /// input's strides.
    pub(crate) fn offsets(
        &self,
        taps: &[Vec<Option<usize>>],
        oidx: &[usize],
        istr: &[usize],
        offsets: &mut Vec<Option<usize>>,
    ) {
        offsets.clear();
        if self.size.contains(&0) {
            return;
        }
        let rank = oidx.len();
        let mut widx = vec![0usize; rank];
        loop {
            let mut off = Some(0usize);
            for d in 0..rank {
                off = match (off, taps[d][oidx[d] * self.size[d] + widx[d]]) {
                    (Some(o), Some(i)) => Some(o + i * istr[d]),
                    _ => None,
                };
            }
            offsets.push(off);
            if !next_index(&mut widx, &self.size) {
                break;
            }
        }
    }

    /// Whether dimension `d` is untouched by the window: size 1, stride 1, no padding, no
    /// dilation (each output element reads the input element at its own index).
    fn is_trivial(&self, d: usize) -> bool {
        self.size[d] == 1
            && self.stride[d] == 1
            && self.pad_lo[d] == 0
            && self.pad_hi[d] == 0
            && self.base_dilation[d] == 1
    }
}

/// A reduce-window with a one-op reducer, natively: the trailing dimensions the window
/// leaves untouched (the features of a pooling) form contiguous runs that are combined
/// whole, window position by window position; the others step through per-dimension tap
/// tables. The fold is the interpreted one: from `init`, window positions in row-major
/// order, positions in the padding or a dilation hole skipped.
fn reduce_window_native<T: Elem>(
    a: &[T],
    init: T,
    idims: &[usize],
    w: &Window,
    out: &[usize],
    run: impl Fn(&mut [T], &[T]),
) -> Vec<T> {
    let rank = idims.len();
    let mut outer = rank;
    while outer > 0 && w.is_trivial(outer - 1) {
        outer -= 1;
    }
    let inner: usize = idims[outer..].iter().product();
    let istr = strides(idims);
    let taps: Vec<Vec<Option<usize>>> = (0..outer).map(|d| w.taps(d, idims[d], out[d])).collect();
    let count: usize = out.iter().product();
    let mut res = vec![init; count];
    if count == 0 || inner == 0 {
        return res;
    }
    // XLA visits only the window positions inside the (dilated) input: `init` counts once,
    // not once per position in the padding
    let combine = |acc: &mut [T], src: Option<&[T]>| {
        if let Some(s) = src {
            run(acc, s)
        }
    };
    let wsize = &w.size[..outer];
    let mut oidx = vec![0usize; outer];
    let mut widx = vec![0usize; outer];
    for run in res.chunks_mut(inner) {
        widx.iter_mut().for_each(|x| *x = 0);
        loop {
            let mut off = Some(0usize);
            for d in 0..outer {
                off = match (off, taps[d][oidx[d] * wsize[d] + widx[d]]) {
                    (Some(o), Some(i)) => Some(o + i * istr[d]),
                    _ => None,
                };
            }
            combine(run, off.map(|o| &a[o..o + inner]));
            if !next_index(&mut widx, wsize) {
                break;
            }
        }
        next_index(&mut oidx, &out[..outer]);
    }
    res
}

/// [`reduce_window_native`] on an array, combining runs with `run`.
fn native_typed<T: Elem>(
    a: &ArrayD<T>,
    init: &ArrayD<T>,
    w: &Window,
    out: &[usize],
    run: impl Fn(&mut [T], &[T]),
) -> ArrayD<T> {
    let iv = init.first().copied().unwrap_or_default();
    let a = a.as_standard_layout();
    let s = a.as_slice().expect("standard layout");
    let r = reduce_window_native(s, iv, a.shape(), w, out, run);
    ArrayD::from_shape_vec(IxDyn(out), r).expect("reduce-window size")
}

/// Combines element by element with the reducer's scalar function (any element type).
fn elementwise_combiner<T: BinaryFn>(op: BinaryOp) -> impl Fn(&mut [T], &[T]) {
    let f = T::binary_fn(op);
    move |acc: &mut [T], src: &[T]| acc.iter_mut().zip(src).for_each(|(x, &y)| *x = f(*x, y))
}

/// Combines a run of inputs into a run of accumulators.
type RunCombiner = dyn Fn(&mut [f32], &[f32]);

/// How an f32 window combines a run of inputs into its accumulators: add, maximum and
/// minimum (pooling) as loops the compiler vectorises, the same operations as the
/// elementwise kernels'.
fn combiner(op: BinaryOp) -> Box<RunCombiner> {
    match op {
        BinaryOp::Add => Box::new(|acc: &mut [f32], src: &[f32]| {
            acc.iter_mut().zip(src).for_each(|(x, &y)| *x += y)
        }),
        _ => Box::new(elementwise_combiner::<f32>(op)),
    }
}

/// `reduce-window(t, init)`: each window folds its elements from `init`, skipping positions
/// in the padding and in the holes of the input dilation, as XLA does (`init` counts once;
/// a window of padding alone gives `init`).
pub fn reduce_window(
    t: &Tensor,
    init: &Tensor,
    w: &Window,
    out: &[usize],
    op: Option<BinaryOp>,
    f: &mut dyn FnMut(Vec<Tensor>) -> Result<Vec<Tensor>>,
) -> Result<Tensor> {
    if out.iter().product::<usize>() == 0 {
        return Ok(broadcast_scalar(init, out));
    }
    if let Some(op) = op {
        macro_rules! rw {
            ($($n:ident: $round:path),*; $($v:ident),*) => {
                match (t, init) {
                    (Tensor::F32(a), Tensor::F32(i)) => {
                        Tensor::F32(native_typed(a, i, w, out, combiner(op)))
                    }
                    // f16, bf16 and FP8 windows accumulate in f32 and round once, as
                    // reductions do
                    $((Tensor::$n(a), Tensor::$n(i)) => {
                        let (a, i) = (a.mapv($n::to_f32), i.mapv($n::to_f32));
                        Tensor::$n(native_typed(&a, &i, w, out, combiner(op)).mapv($round))
                    })*
                    $((Tensor::$v(a), Tensor::$v(i)) => {
                        Tensor::$v(native_typed(a, i, w, out, elementwise_combiner(op)))
                    })*
                    _ => unreachable!("reduce-window operands are type-checked"),
                }
            };
        }
        return Ok(rw!(
            BF16: BF16::from_f32,
            F16: F16::from_f32,
            F8E4M3FN: F8E4M3FN::from_f32_via_f16,
            F8E5M2: F8E5M2::from_f32_via_f16;
            Pred, S4, U4, S8, S16, S32, S64, U8, U16, U32, U64, F64
        ));
    }
    Ok(reduce_window_general(&[t], &[init], w, out, f)?.remove(0))
}

/// Variadic `reduce-window(inputs.., inits..)` with any region, interpreted: every window
/// folds `f(accumulators.., elements..)` from the inits over its positions in row-major
/// order, positions in the padding (or a hole of the input dilation) skipped, as XLA skips
/// them. The inputs share their dims.
pub fn reduce_window_general(
    inputs: &[&Tensor],
    inits: &[&Tensor],
    w: &Window,
    out: &[usize],
    f: &mut dyn FnMut(Vec<Tensor>) -> Result<Vec<Tensor>>,
) -> Result<Vec<Tensor>> {
    let idims = inputs[0].dims().to_vec();
    let istr = strides(&idims);
    let rank = idims.len();
    let mut results: Vec<Tensor> = inits.iter().map(|i| broadcast_scalar(i, out)).collect();
    if out.iter().product::<usize>() == 0 {
        return Ok(results);
    }
    let inputs: Vec<_> = inputs.iter().map(|t| standard_tensor(t)).collect();
    let taps: Vec<Vec<Option<usize>>> = (0..rank).map(|d| w.taps(d, idims[d], out[d])).collect();
    let mut oidx = vec![0usize; rank];
    let mut o = 0;
    let mut offsets: Vec<Option<usize>> = Vec::with_capacity(w.size.iter().product());
    loop {
        w.offsets(&taps, &oidx, &istr, &mut offsets);
        let mut acc: Vec<Tensor> = inits.iter().map(|t| (*t).clone()).collect();
        for &k in offsets.iter().flatten() {
            let mut args = acc;
            args.extend(inputs.iter().map(|t| element(t, k)));
            acc = f(args)?;
        }
        for (res, a) in results.iter_mut().zip(&acc) {
            set_element(res, o, a);
        }
        o += 1;
        if !next_index(&mut oidx, out) {
            break;
        }
    }
    Ok(results)
}
