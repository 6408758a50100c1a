//! Float matrix products for `dot`: no operand copies where strides allow, a bandwidth-bound
//! GEMV for the matrix-vector products that dominate single-token decoding (split across
//! threads by blocks of whole rows, so each thread streams contiguous memory),
//! matrixmultiply's blocked GEMM for the rest, and rayon across batches.

use ndarray::parallel::prelude::*;
use ndarray::{
    ArrayD, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, CowArray, Ix3, IxDyn,
    LinalgScalar,
};
use rayon::slice::{ParallelSlice, ParallelSliceMut};

/// Work (multiply-adds) below which a product stays on one thread. With the pool's other
/// threads kept ready during a step (see [`crate::pool`]), splitting pays from about
/// a 256x256 matrix-vector product (chosen with the decoder benchmarks; see the README).
pub(crate) const PAR_WORK: usize = 1 << 16;

/// A large matrix-vector product is split into this many blocks of rows (fewer when the
/// blocks would be shorter than [`GEMV_MIN_ROWS`]).
const GEMV_ROW_BLOCKS: usize = 8;

/// Column length from which a matrix-vector product over contiguous columns computes four
/// columns per pass ([`dot_slices4`]) instead of one ([`dot_slices`]): against one column
/// per pass, 1.07x the bandwidth at 1,024x32,768 and 1.21x at 4,096x4,096, 0.80x at
/// 512x8,192 (a harness alternating the kernels in one process, on the development
/// machine). How each sum is formed depends only on the shape.
const DOT4_MIN_LEN: usize = 1024;

/// Row length (elements) from which a matrix-vector product over contiguous rows reads eight
/// rows per pass ([`accumulate_rows_with`]); shorter rows are read one at a time. The matrices
/// of a decoder step do not fit the cache, and eight short rows per pass read memory in an
/// order the prefetchers follow badly: one row per pass against eight, over 16 MiB of
/// distinct matrices (a harness alternating the two in one process, AMD EPYC, 2 vCPUs),
/// 1.6–1.8x the bandwidth at 1,024x64 (attention over a cache), 1.2–1.7x at 512x512,
/// 1.4–1.5x at 2,048x512, but 0.6x at 512x1,024 and 512x2,048. Either way the same bits.
const MULTI_ROW_MIN_LEN: usize = 1024;

/// Rows below which a block of a matrix-vector product is not worth a task of its own.
const GEMV_MIN_ROWS: usize = 64;

/// A `[batch, rows, cols]` view of `a` with its axes permuted to `order`, whose three
/// groups have `groups` axes each. No copy when every group has at most one axis (strided
/// views are fine for the kernels); otherwise a row-major copy.
pub(crate) fn view3<'a, T: Clone>(
    a: &'a ArrayD<T>,
    order: &[usize],
    groups: [usize; 3],
    dims: (usize, usize, usize),
) -> CowArray<'a, T, Ix3> {
    let v = a.view().permuted_axes(IxDyn(order));
    if groups.iter().all(|&g| g <= 1) {
        let mut v = v;
        for (pos, &g) in groups.iter().enumerate() {
            if g == 0 {
                v.insert_axis_inplace(Axis(pos));
            }
        }
        if let Ok(v3) = v.into_dimensionality::<Ix3>() {
            return CowArray::from(v3);
        }
        unreachable!("three groups of at most one axis make a rank-3 view");
    }
    let owned = v.as_standard_layout().into_owned();
    let (data, _) = owned.into_raw_vec_and_offset();
    CowArray::from(ndarray::Array3::from_shape_vec(dims, data).expect("dot operand element count"))
}

/// `out = l @ r` per batch; `l` is `[b, m, k]`, `r` is `[b, k, n]`; returns `[b, m, n]` row-major.
pub(crate) fn batched_matmul<T: LinalgScalar + Send + Sync>(
    l: &CowArray<'_, T, Ix3>,
    r: &CowArray<'_, T, Ix3>,
) -> Vec<T> {
    let (b, m, k) = l.dim();
    let n = r.dim().2;
    let mut out = ndarray::Array3::<T>::zeros((b, m, n));
    if b > 1 && b * m * n * k >= PAR_WORK && crate::pool::helpers_ready() {
        out.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(|(i, o)| {
                matmul_into(l.index_axis(Axis(0), i), r.index_axis(Axis(0), i), o, false);
            });
    } else {
        for (i, o) in out.axis_iter_mut(Axis(0)).enumerate() {
            matmul_into(l.index_axis(Axis(0), i), r.index_axis(Axis(0), i), o, true);
        }
    }
    out.into_raw_vec_and_offset().0
}

fn matmul_into<T: LinalgScalar + Send + Sync>(
    x: ArrayView2<T>,
    w: ArrayView2<T>,
    mut out: ArrayViewMut2<T>,
    par: bool,
) {
    if x.nrows() == 1 {
        gemv(x.row(0), w, out.row_mut(0), par);
    } else if w.ncols() == 1 {
        // out[:, 0] = x @ w[:, 0]  ==  w[:, 0] as a vector times x^T
        gemv(w.column(0), x.t(), out.column_mut(0), par);
    } else {
        ndarray::linalg::general_mat_mul(T::one(), &x, &w, T::zero(), &mut out);
    }
}

/// `out = v @ w` for a vector `v` (len k) and matrix `w` (k x n); `out` starts at zero.
/// `par`: the caller is not itself one of several threads, so this product may split.
/// How the sum is formed depends only on the shape; whether its blocks run on several
/// threads also on whether a helper is ready, which never changes the result.
fn gemv<T: LinalgScalar + Send + Sync>(
    v: ArrayView1<T>,
    w: ArrayView2<T>,
    mut out: ArrayViewMut1<T>,
    par: bool,
) {
    let (k, n) = w.dim();
    if k == 0 {
        return; // an empty sum: `out` is already zero
    }
    let big = k * n >= PAR_WORK;
    let par = par && big && crate::pool::helpers_ready();
    if w.strides()[1] == 1 && out.as_slice().is_some() {
        // rows contiguous: out += v[kk] * w[kk, :], streaming w once
        let out = out.as_slice_mut().expect("checked contiguous");
        if !big || k < 2 * GEMV_MIN_ROWS {
            accumulate_rows(&v, &w, 0..k, out);
            return;
        }
        // Split by rows, not columns: each task streams whole rows, a contiguous region of
        // `w`, which the hardware prefetchers follow (a column split reads a short piece of
        // every row and ran at half the bandwidth). The blocks depend only on `k`, never on
        // the thread count, and their partial sums are added in block order, so the result
        // is the same on every machine.
        let rows_per_block = k.div_ceil(GEMV_ROW_BLOCKS).max(GEMV_MIN_ROWS);
        let blocks = k.div_ceil(rows_per_block);
        let mut partial = vec![T::zero(); (blocks - 1) * n];
        let mut accs: Vec<&mut [T]> = Vec::with_capacity(blocks);
        accs.push(&mut *out);
        accs.extend(partial.chunks_mut(n));
        let block = |(b, acc): (usize, &mut [T])| {
            let rows = b * rows_per_block..((b + 1) * rows_per_block).min(k);
            accumulate_rows(&v, &w, rows, acc);
        };
        if par {
            accs.into_par_iter().enumerate().for_each(block);
        } else {
            accs.into_iter().enumerate().for_each(block);
        }
        for p in partial.chunks(n) {
            for (o, &x) in out.iter_mut().zip(p) {
                *o = *o + x;
            }
        }
    } else if w.strides()[0] == 1 && v.as_slice().is_some() {
        // columns contiguous: out[j] = dot(v, w[:, j])
        let vs = v.as_slice().expect("checked contiguous");
        let wt = w.t();
        if let (Some(cols), Some(out)) = (wt.as_slice(), out.as_slice_mut()) {
            // the whole of `w` is one slice, column after column: no view per column
            let body = |(cols, out): (&[T], &mut [T])| {
                if k < DOT4_MIN_LEN {
                    for (o, c) in out.iter_mut().zip(cols.chunks_exact(k)) {
                        *o = dot_slices(vs, c);
                    }
                    return;
                }
                // four columns per pass: each loaded piece of `v` serves four dots, and four
                // rows stream at once
                let mut quads = out.chunks_exact_mut(4);
                let mut col_quads = cols.chunks_exact(4 * k);
                for (o, c) in (&mut quads).zip(&mut col_quads) {
                    let (c01, c23) = c.split_at(2 * k);
                    let (c0, c1) = c01.split_at(k);
                    let (c2, c3) = c23.split_at(k);
                    o.copy_from_slice(&dot_slices4(vs, [c0, c1, c2, c3]));
                }
                let rest = col_quads.remainder();
                for (o, c) in quads.into_remainder().iter_mut().zip(rest.chunks_exact(k)) {
                    *o = dot_slices(vs, c);
                }
            };
            let per_task = n.div_ceil(GEMV_ROW_BLOCKS).max(1);
            if par {
                cols.par_chunks(per_task * k)
                    .zip(out.par_chunks_mut(per_task))
                    .for_each(body);
            } else {
                body((cols, out));
            }
        } else {
            let col =
                |j: usize| dot_slices(vs, w.column(j).to_slice().expect("column is contiguous"));
            out.iter_mut().enumerate().for_each(|(j, o)| *o = col(j));
        }
    } else {
        let mut o2 = out.insert_axis(Axis(0));
        ndarray::linalg::general_mat_mul(T::one(), &v.insert_axis(Axis(0)), &w, T::zero(), &mut o2);
    }
}

/// `out += v[rows] @ w[rows, :]` for a `w` with contiguous rows, accumulated in row order.
fn accumulate_rows<T: LinalgScalar>(
    v: &ArrayView1<T>,
    w: &ArrayView2<T>,
    rows: std::ops::Range<usize>,
    out: &mut [T],
) {
    match w.as_slice() {
        // one slice for the whole matrix: no view per row (rows of a few dozen elements,
        // as in attention over a cache, spent most of their time building views)
        Some(ws) => {
            let n = w.ncols();
            accumulate_rows_with(v, |kk| &ws[kk * n..(kk + 1) * n], rows, out);
        }
        None => accumulate_rows_with(
            v,
            |kk| w.row(kk).to_slice().expect("row is contiguous"),
            rows,
            out,
        ),
    }
}

fn accumulate_rows_with<'w, T: LinalgScalar>(
    v: &ArrayView1<T>,
    row: impl Fn(usize) -> &'w [T],
    rows: std::ops::Range<usize>,
    out: &mut [T],
) {
    // rows an attention head wide: `out` in registers (64 f32 fill eight AVX registers;
    // 64 wider elements would spill)
    match (out.len(), std::mem::size_of::<T>()) {
        (64, 4) => return accumulate_rows_in_registers::<T, 64>(v, row, rows, out),
        (32, 4 | 8) => return accumulate_rows_in_registers::<T, 32>(v, row, rows, out),
        _ => {}
    }
    // Long rows: eight rows per pass, an eighth of the loads and stores of `out`. Short
    // rows: one row per pass, so the matrix is read in address order. Either way each
    // element of `out` is accumulated row by row, in order: the same bits.
    let mut kk = rows.start;
    let eight_per_pass = out.len() >= MULTI_ROW_MIN_LEN;
    while eight_per_pass && kk + 8 <= rows.end {
        // every row cut to out's length, so the compiler drops the bounds checks and
        // vectorises across columns
        let len = out.len();
        let r: [&[T]; 8] = std::array::from_fn(|i| &row(kk + i)[..len]);
        let x: [T; 8] = std::array::from_fn(|i| v[kk + i]);
        for (j, o) in out.iter_mut().enumerate() {
            let mut acc = *o;
            for i in 0..8 {
                acc = acc + x[i] * r[i][j];
            }
            *o = acc;
        }
        kk += 8;
    }
    for kk in kk..rows.end {
        let (r, x) = (row(kk), v[kk]);
        for (o, &wv) in out.iter_mut().zip(r) {
            *o = *o + x * wv;
        }
    }
}

/// [`accumulate_rows_with`] for rows of exactly `N` elements (an attention head's width):
/// `out` is held in registers while every row streams past once, in address order, instead
/// of being loaded and stored for each row. Each element is still accumulated row by row,
/// in order, from `out`'s value: the same bits. Against one row per pass, 1,024 rows of 64
/// f32 ran at 1.9–2.0x the bandwidth (a harness alternating the two over 16 MiB of
/// distinct matrices, AMD EPYC, built for the host CPU).
fn accumulate_rows_in_registers<'w, T: LinalgScalar, const N: usize>(
    v: &ArrayView1<T>,
    row: impl Fn(usize) -> &'w [T],
    rows: std::ops::Range<usize>,
    out: &mut [T],
) {
    let out: &mut [T; N] = out.try_into().expect("the caller matched the length");
    let mut acc = *out;
    for kk in rows {
        let (r, x): (&[T; N], T) = (row(kk)[..N].try_into().expect("rows are N long"), v[kk]);
        for i in 0..N {
            acc[i] = acc[i] + x * r[i];
        }
    }
    *out = acc;
}

/// Dot product with sixteen independent accumulators over chunks of sixteen, folded as a
/// balanced tree, then the tail in order. Sixteen chains of additions keep a row streaming
/// at the memory's pace (eight left it waiting on the additions' latency: 11.5 vs 13.0
/// GiB/s for a 512x8,192 product, alternating in one process).
fn dot_slices<T: LinalgScalar>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] = acc[i] + x[i] * y[i];
        }
    }
    let mut width = 16;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] = acc[i] + acc[i + width];
        }
    }
    let mut s = acc[0];
    for (x, y) in ra.iter().zip(rb) {
        s = s + *x * *y;
    }
    s
}

/// Four dot products of `a` with `b[0..4]` (each as long as `a`), each with eight
/// independent accumulators over chunks of eight, folded pairwise, then the tail in order.
/// Computing four at once loads each chunk of `a` once for four rows and keeps 32 chains of
/// additions in flight.
#[inline(always)]
fn dot_slices4<T: LinalgScalar>(a: &[T], b: [&[T]; 4]) -> [T; 4] {
    let n = a.len();
    let chunks = n / 8;
    let mut acc0 = [T::zero(); 8];
    let mut acc1 = [T::zero(); 8];
    let mut acc2 = [T::zero(); 8];
    let mut acc3 = [T::zero(); 8];
    let rows = b[0]
        .chunks_exact(8)
        .zip(b[1].chunks_exact(8))
        .zip(b[2].chunks_exact(8).zip(b[3].chunks_exact(8)));
    for (x, ((y0, y1), (y2, y3))) in a.chunks_exact(8).zip(rows) {
        for i in 0..8 {
            acc0[i] = acc0[i] + x[i] * y0[i];
            acc1[i] = acc1[i] + x[i] * y1[i];
            acc2[i] = acc2[i] + x[i] * y2[i];
            acc3[i] = acc3[i] + x[i] * y3[i];
        }
    }
    let acc = [acc0, acc1, acc2, acc3];
    std::array::from_fn(|r| {
        let acc = &acc[r];
        let mut s =
            ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for i in chunks * 8..n {
            s = s + a[i] * b[r][i];
        }
        s
    })
}
