//! `convolution` with XLA's full semantics, computed as im2col onto matrix products.
//!
//! The input is laid out channels-last (`[batch, spatial.., feature]`) once, so that one
//! window position of one output point is a contiguous run of input features: a block of
//! output points becomes a matrix whose row is, window position by window position, those
//! runs (zeros where the window reads padding or a hole of the input dilation). The kernel,
//! laid out `[spatial.., in-feature, out-feature]`, is already the matching matrix: no copy.
//! One product per block and group gives the block's outputs for every output feature of
//! the group. Blocks are sized to stay in cache and run on the pool's threads when the
//! work is large enough; how each sum is formed depends only on the shapes.
//!
//! Groups: with `feature_group_count` G the input features split into G runs and the output
//! features into G groups, group g reading run g; with `batch_group_count` B the input batch
//! splits into B parts and the output features into B groups, group g reading part g (the
//! output batch is the part's size). Floats compute in f32 (f64 when an operand or the
//! result is f64; bf16 and f16 expand exactly and round once at the end, as XLA:CPU does);
//! integers accumulate in 64 bits with wrap-around, which gives the output type's bits
//! exactly for every integer output up to 64 bits.

use super::elementwise::convert;
use super::Window;
use crate::tensor::{Elem, Tensor};
use ndarray::{ArrayD, ArrayView2, ArrayViewMut2, CowArray, IxDyn};
use rayon::slice::ParallelSliceMut;
use statetensor_core::DType;

/// Which axis of each operand and of the result is batch, feature and each spatial
/// dimension (`dim_labels=b01f_01io->b01f`), the window, and the group counts.
#[derive(Clone, Debug)]
pub struct ConvDims {
    /// Input batch axis.
    pub lhs_batch: usize,
    /// Input feature axis.
    pub lhs_feature: usize,
    /// Input spatial axes, in spatial order.
    pub lhs_spatial: Vec<usize>,
    /// Kernel input-feature axis.
    pub rhs_in: usize,
    /// Kernel output-feature axis.
    pub rhs_out: usize,
    /// Kernel spatial axes.
    pub rhs_spatial: Vec<usize>,
    /// Result batch axis.
    pub out_batch: usize,
    /// Result feature axis.
    pub out_feature: usize,
    /// Result spatial axes.
    pub out_spatial: Vec<usize>,
    /// Window per spatial dimension (its size is the kernel's spatial size; its reversal
    /// says along which dimensions the kernel is reversed).
    pub window: Window,
    /// `feature_group_count`.
    pub feature_groups: usize,
    /// `batch_group_count`.
    pub batch_groups: usize,
}

/// Output points per block, chosen so that a block's im2col rows stay within about 1 MiB.
const BLOCK_ELEMENTS: usize = 1 << 18;

/// Work (multiply-adds) from which blocks run on the pool's threads.
const PAR_WORK: usize = 1 << 20;

/// The element types the product runs in.
trait ConvElem: Elem + Send + Sync {
    /// `out = a @ w` (`out` starts at zero).
    fn product(a: ArrayView2<Self>, w: ArrayView2<Self>, out: ArrayViewMut2<Self>);
    /// `acc + x * w` (wrapping for integers).
    fn mul_add(acc: Self, x: Self, w: Self) -> Self;
}

macro_rules! float_conv_elem {
    ($t:ty) => {
        impl ConvElem for $t {
            fn product(a: ArrayView2<Self>, w: ArrayView2<Self>, mut out: ArrayViewMut2<Self>) {
                ndarray::linalg::general_mat_mul(1.0, &a, &w, 0.0, &mut out);
            }
            fn mul_add(acc: Self, x: Self, w: Self) -> Self {
                acc + x * w
            }
        }
    };
}
float_conv_elem!(f32);
float_conv_elem!(f64);

impl ConvElem for i64 {
    fn product(a: ArrayView2<Self>, w: ArrayView2<Self>, mut out: ArrayViewMut2<Self>) {
        for (arow, mut orow) in a.rows().into_iter().zip(out.rows_mut()) {
            for (&x, wrow) in arow.iter().zip(w.rows()) {
                if x == 0 {
                    continue;
                }
                for (o, &y) in orow.iter_mut().zip(wrow) {
                    *o = o.wrapping_add(x.wrapping_mul(y));
                }
            }
        }
    }
    fn mul_add(acc: Self, x: Self, w: Self) -> Self {
        acc.wrapping_add(x.wrapping_mul(w))
    }
}

/// Input features per group up to which a grouped convolution is computed directly, output
/// row by output row, instead of as one small matrix product per group: a depthwise
/// convolution's products are `[rows, taps] x [taps, a few]`, where a product's set-up
/// costs more than its arithmetic.
const DIRECT_GROUP_FEATURES: usize = 4;

/// A block whose window positions fall in the input fewer than one time in this many (a
/// window far larger than its input, almost all padding, as XLA's swap-conv-operands test
/// writes) is computed directly over the positions inside, instead of multiplying the
/// padding's zeros in an im2col product.
const SPARSE_WINDOW: usize = 8;

/// The input offset of a window position that reads padding or a hole of the input
/// dilation. Offsets are sums of per-dimension parts added with saturation, so one such
/// part makes the sum at least this: no branch per dimension.
const PAD: usize = 1 << (usize::BITS - 2);

/// Appends to `out` the input offsets of one output row's window positions, in row-major
/// window order: `base` (the row's batch offset) plus, per spatial dimension, one part of
/// `parts[d]` (the row's parts for each window position along d: index times stride, or
/// [`PAD`]). `scratch` is reused between rows.
fn row_offsets(
    base: usize,
    parts: &[&[usize]],
    out: &mut Vec<usize>,
    scratch: &mut [Vec<usize>; 2],
) {
    let Some((last, outer)) = parts.split_last() else {
        out.push(base);
        return;
    };
    let [cur, next] = scratch;
    cur.clear();
    cur.push(base);
    for dim in outer {
        next.clear();
        for &o in cur.iter() {
            next.extend(dim.iter().map(|&p| o.saturating_add(p)));
        }
        std::mem::swap(cur, next);
    }
    for &o in cur.iter() {
        out.extend(last.iter().map(|&p| o.saturating_add(p)));
    }
}

/// Refills `im2col` with runs of `features` elements, one per offset, from `x` shifted by
/// `shift`: zeros where an offset is [`PAD`], and one copy for each stretch of offsets that
/// are consecutive in `x` (a window row over a channels-last input is one stretch).
fn gather_runs<T: Copy + Default>(
    im2col: &mut Vec<T>,
    x: &[T],
    offsets: &[usize],
    shift: usize,
    features: usize,
) {
    im2col.clear();
    let mut t = 0;
    while t < offsets.len() {
        let o = offsets[t];
        if o >= PAD {
            im2col.resize(im2col.len() + features, T::default());
            t += 1;
            continue;
        }
        let mut end = t + 1;
        while end < offsets.len() && offsets[end] == o + (end - t) * features {
            end += 1;
        }
        let src = o + shift;
        im2col.extend_from_slice(&x[src..src + (end - t) * features]);
        t = end;
    }
}

/// Adds one output row of a (grouped) convolution (`feature_groups` groups, one or more,
/// `in_features` input and `group_out` output features each) over the window positions at
/// `offsets` ([`PAD`]: padding, skipped) of the channels-last input `x`; `kernel` is
/// `[taps * in, out]` row-major.
fn direct_grouped_row<T: ConvElem>(
    out_row: &mut [T],
    x: &[T],
    offsets: &[usize],
    kernel: &[T],
    in_features: usize,
    group_out: usize,
) {
    let out_features = out_row.len();
    for (t, &o) in offsets.iter().enumerate() {
        if o >= PAD {
            continue;
        }
        for i in 0..in_features {
            let w_row = &kernel[(t * in_features + i) * out_features..][..out_features];
            let xs = x[o + i..].iter().step_by(in_features);
            for ((outs, ws), &xv) in out_row
                .chunks_exact_mut(group_out)
                .zip(w_row.chunks_exact(group_out))
                .zip(xs)
            {
                for (acc, &w) in outs.iter_mut().zip(ws) {
                    *acc = T::mul_add(*acc, xv, w);
                }
            }
        }
    }
}

/// `convolution(lhs, rhs)`; the result has `out_dtype` and dims `out` (checked by the
/// planner against the operands, dimension numbers and window).
pub fn convolution(
    lhs: &Tensor,
    rhs: &Tensor,
    c: &ConvDims,
    out_dtype: DType,
    out: &[usize],
) -> Tensor {
    let float = lhs.dtype().is_float() || rhs.dtype().is_float() || out_dtype.is_float();
    let result = if [lhs.dtype(), rhs.dtype(), out_dtype].contains(&DType::F64) {
        conv_in::<f64>(lhs, rhs, c, DType::F64, out)
    } else if float {
        conv_in::<f32>(lhs, rhs, c, DType::F32, out)
    } else {
        conv_in::<i64>(lhs, rhs, c, DType::S64, out)
    };
    if result.dtype() == out_dtype {
        result
    } else {
        convert(&result, out_dtype)
    }
}

fn conv_in<T: ConvElem>(
    lhs: &Tensor,
    rhs: &Tensor,
    c: &ConvDims,
    compute: DType,
    out: &[usize],
) -> Tensor {
    let n = c.lhs_spatial.len();
    let (ld, rd) = (lhs.dims(), rhs.dims());
    // channels-last input [B, S.., C] and kernel [K.., I, O], row-major
    let mut lorder = vec![c.lhs_batch];
    lorder.extend(&c.lhs_spatial);
    lorder.push(c.lhs_feature);
    let mut rorder = c.rhs_spatial.clone();
    rorder.extend([c.rhs_in, c.rhs_out]);
    let (x, kernel) = (
        standard::<T>(lhs, &lorder, compute),
        standard::<T>(rhs, &rorder, compute),
    );
    let x = x.as_slice().expect("standard layout");
    let (batch, channels) = (ld[c.lhs_batch], ld[c.lhs_feature]);
    let (in_features, out_features) = (rd[c.rhs_in], rd[c.rhs_out]);
    let spatial_in: Vec<usize> = c.lhs_spatial.iter().map(|&a| ld[a]).collect();
    let spatial_out: Vec<usize> = c.out_spatial.iter().map(|&a| out[a]).collect();
    let window: Vec<usize> = c.window.size.clone();
    let groups = c.feature_groups * c.batch_groups;
    let group_out = out_features / groups.max(1);
    let out_batch = batch / c.batch_groups;
    let points: usize = spatial_out.iter().product();
    let rows = out_batch * points;
    let taps_per_row: usize = window.iter().product();
    let cols = taps_per_row * in_features;
    let mut result = vec![T::default(); rows * out_features];
    if rows == 0 || out_features == 0 {
        return finish::<T>(result, c, out_batch, &spatial_out, out_features, out);
    }
    // element strides of the channels-last input
    let mut shape = vec![batch];
    shape.extend(&spatial_in);
    shape.push(channels);
    let mut in_stride = vec![1usize; n + 2];
    for k in (0..=n).rev() {
        in_stride[k] = in_stride[k + 1] * shape[k + 1];
    }
    // per spatial dimension, for each (output position, window position): the input
    // offset's part along it, or PAD where the window reads padding or a dilation hole
    let parts: Vec<Vec<usize>> = (0..n)
        .map(|d| {
            c.window
                .taps(d, spatial_in[d], spatial_out[d])
                .into_iter()
                .map(|i| i.map_or(PAD, |i| i * in_stride[d + 1]))
                .collect()
        })
        .collect();
    let w = ArrayView2::from_shape((cols, out_features), kernel.as_slice().expect("standard"))
        .expect("kernel matrix");
    let block_rows = (BLOCK_ELEMENTS / cols.max(1)).clamp(1, rows);
    // a grouped convolution with few input features per group runs directly
    let direct =
        c.feature_groups > 1 && c.batch_groups == 1 && in_features <= DIRECT_GROUP_FEATURES;
    let run_block = |(block, out_block): (usize, &mut [T])| {
        let first = block * block_rows;
        let count = out_block.len() / out_features;
        // per row and window position, the input offset of its feature run (without the
        // group's batch and channel), or PAD where the window reads padding: the same for
        // every group
        let mut offsets: Vec<usize> = Vec::with_capacity(count * taps_per_row);
        let mut scratch = [Vec::new(), Vec::new()];
        let mut row_parts: Vec<&[usize]> = Vec::with_capacity(n);
        for r in 0..count {
            let row = first + r;
            let (b, mut point) = (row / points, row % points);
            row_parts.clear();
            for d in (0..n).rev() {
                let pos = point % spatial_out[d];
                point /= spatial_out[d];
                row_parts.push(&parts[d][pos * window[d]..(pos + 1) * window[d]]);
            }
            row_parts.reverse();
            // (a convolution without spatial dimensions has one window position)
            row_offsets(b * in_stride[0], &row_parts, &mut offsets, &mut scratch);
        }
        let inside = offsets.iter().filter(|&&o| o < PAD).count();
        if direct || (c.batch_groups == 1 && inside * SPARSE_WINDOW < offsets.len()) {
            let kernel = kernel.as_slice().expect("standard layout");
            for (r, out_row) in out_block.chunks_exact_mut(out_features).enumerate() {
                let row_offsets = &offsets[r * taps_per_row..(r + 1) * taps_per_row];
                direct_grouped_row(out_row, x, row_offsets, kernel, in_features, group_out);
            }
            return;
        }
        let mut im2col = Vec::with_capacity(count * cols);
        for g in 0..groups {
            let shift = if c.feature_groups > 1 {
                g * in_features
            } else {
                g * out_batch * in_stride[0]
            };
            gather_runs(&mut im2col, x, &offsets, shift, in_features);
            let cols_of_group = ndarray::s![.., g * group_out..(g + 1) * group_out];
            let mut out_view = ArrayViewMut2::from_shape((count, out_features), &mut *out_block)
                .expect("output block");
            T::product(
                ArrayView2::from_shape((count, cols), &im2col[..]).expect("im2col block"),
                w.slice(cols_of_group),
                out_view.slice_mut(cols_of_group),
            );
        }
    };
    let work = rows * cols * group_out;
    let chunk = block_rows * out_features;
    if work >= PAR_WORK && rows > block_rows && crate::pool::helpers_ready() {
        use rayon::iter::{IndexedParallelIterator, ParallelIterator};
        result.par_chunks_mut(chunk).enumerate().for_each(run_block);
    } else {
        result.chunks_mut(chunk).enumerate().for_each(run_block);
    }
    finish::<T>(result, c, out_batch, &spatial_out, out_features, out)
}

/// `t` in the compute type with its axes in `order`, row-major: borrowed when it already is
/// (flax's NHWC input and HWIO kernel), else one copy.
fn standard<'a, T: ConvElem>(
    t: &'a Tensor,
    order: &[usize],
    compute: DType,
) -> CowArray<'a, T, IxDyn> {
    if let Some(a) = T::array_of(t) {
        let v = a.view().permuted_axes(IxDyn(order));
        if v.is_standard_layout() {
            return CowArray::from(v);
        }
        return CowArray::from(v.as_standard_layout().into_owned());
    }
    let a = T::into_array(convert(t, compute))
        .expect("converted to the compute type")
        .permuted_axes(IxDyn(order));
    CowArray::from(a.as_standard_layout().into_owned())
}

/// The `[batch, spatial.., feature]` result laid out as the output's dimension labels say.
fn finish<T: ConvElem>(
    result: Vec<T>,
    c: &ConvDims,
    out_batch: usize,
    spatial_out: &[usize],
    out_features: usize,
    out: &[usize],
) -> Tensor {
    let mut natural = vec![out_batch];
    natural.extend(spatial_out);
    natural.push(out_features);
    let a = ArrayD::from_shape_vec(IxDyn(&natural), result).expect("convolution result size");
    // result axis j is natural axis perm[j]
    let mut perm = vec![0usize; out.len()];
    perm[c.out_batch] = 0;
    perm[c.out_feature] = spatial_out.len() + 1;
    for (d, &axis) in c.out_spatial.iter().enumerate() {
        perm[axis] = d + 1;
    }
    let a = a.permuted_axes(IxDyn(&perm));
    if a.is_standard_layout() {
        // the labels put the result in [batch, spatial.., feature] order (flax's b01f)
        return T::into_tensor(a);
    }
    T::into_tensor(a.as_standard_layout().into_owned())
}
