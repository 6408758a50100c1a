//! Data-movement and structured kernels: reshape, transpose, broadcast, slices, pad,
//! concatenate, reverse, iota, gather, scatter, dot, reduce, reduce-window, sort.
//!
//! Kernels assume the planner has type-checked their operands and attributes; they index
//! only within the shapes the planner validated.

use crate::elementwise::{BinaryFn, BinaryOp};
use crate::gemm;
use crate::tensor::{Elem, Tensor};
use crate::{make_tensor, map_tensor, with_tensor};
use ndarray::{ArrayD, Axis, IxDyn, Slice};
use rayon::prelude::*;
use statetensor_core::{DType, Result};

/// Row-major strides of `dims`.
pub(crate) fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Advances a row-major multi-index; false when it wraps around.
pub(crate) fn next_index(idx: &mut [usize], dims: &[usize]) -> bool {
    for d in (0..idx.len()).rev() {
        idx[d] += 1;
        if idx[d] < dims[d] {
            return true;
        }
        idx[d] = 0;
    }
    false
}

fn std_owned<T: Elem>(a: ArrayD<T>) -> ArrayD<T> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

/// Same elements, new dims (element count already checked).
pub fn reshape(t: Tensor, dims: &[usize]) -> Tensor {
    map_tensor!(t, a => {
        let a = std_owned(a);
        let (v, _) = a.into_raw_vec_and_offset();
        ArrayD::from_shape_vec(IxDyn(dims), v).expect("reshape element count is checked by the planner")
    })
}

/// `transpose(t), dimensions=perm`.
pub fn transpose(t: &Tensor, perm: &[usize]) -> Tensor {
    map_tensor!(t, a => a.view().permuted_axes(IxDyn(perm)).as_standard_layout().into_owned())
}

/// `broadcast(t), dimensions=dims` into `out` dims.
pub fn broadcast(t: &Tensor, out: &[usize], dims: &[usize]) -> Tensor {
    map_tensor!(t, a => broadcast_array(a, out, dims))
}

/// Operand axis `k` lands on output axis `dims[k]`. The output is written row by row: an
/// innermost run is a slice copy when it follows the operand's last axis, a fill when the
/// operand does not vary along it (a broadcast view walked element by element through
/// dynamic indices cost ~20 ns per element).
fn broadcast_array<T: Elem>(a: &ArrayD<T>, out: &[usize], dims: &[usize]) -> ArrayD<T> {
    let a = a.as_standard_layout();
    let src = a.as_slice().expect("standard layout");
    let total: usize = out.iter().product();
    if src.len() == 1 || total == 0 {
        let fill = src.first().copied().unwrap_or_default();
        return ArrayD::from_elem(IxDyn(out), fill);
    }
    // the operand's stride along each output axis (0 where it does not vary)
    let mut step = vec![0usize; out.len()];
    for ((k, &d), st) in dims.iter().enumerate().zip(strides(a.shape())) {
        if a.shape()[k] > 1 {
            step[d] = st;
        }
    }
    let last = out.len() - 1;
    let (n, s) = (out[last], step[last]);
    let mut v = Vec::with_capacity(total);
    let mut idx = vec![0usize; last];
    loop {
        let off: usize = idx.iter().zip(&step).map(|(i, st)| i * st).sum();
        match s {
            0 => v.extend(std::iter::repeat_n(src[off], n)),
            1 => v.extend_from_slice(&src[off..off + n]),
            s => v.extend((0..n).map(|i| src[off + i * s])),
        }
        if !next_index(&mut idx, &out[..last]) {
            break;
        }
    }
    ArrayD::from_shape_vec(IxDyn(out), v).expect("broadcast output size")
}

/// A scalar repeated to `dims`.
pub fn broadcast_scalar(t: &Tensor, dims: &[usize]) -> Tensor {
    broadcast(t, dims, &[])
}

/// `slice(t), slice={[start:limit:stride], ...}`.
pub fn slice(t: &Tensor, start: &[usize], limit: &[usize], stride: &[usize]) -> Tensor {
    map_tensor!(t, a => a
        .slice_each_axis(|ax| {
            let d = ax.axis.index();
            Slice::new(start[d] as isize, Some(limit[d] as isize), stride[d] as isize)
        })
        .as_standard_layout()
        .into_owned())
}

/// XLA's start-index clamping: each start into `[0, dim - size]`.
pub(crate) fn clamp_starts(starts: &[i64], dims: &[usize], sizes: &[usize]) -> Vec<usize> {
    starts
        .iter()
        .zip(dims.iter().zip(sizes))
        .map(|(&s, (&d, &z))| s.clamp(0, (d - z) as i64) as usize)
        .collect()
}

/// `dynamic-slice` with already-read start indices.
pub fn dynamic_slice(t: &Tensor, starts: &[i64], sizes: &[usize]) -> Tensor {
    let st = clamp_starts(starts, t.dims(), sizes);
    let lim: Vec<usize> = st.iter().zip(sizes).map(|(a, b)| a + b).collect();
    slice(t, &st, &lim, &vec![1; sizes.len()])
}

/// `dynamic-update-slice` in place on `t`: costs the size of `update`, not of `t`.
pub fn dynamic_update_slice(t: &mut Tensor, update: &Tensor, starts: &[i64]) {
    let st = clamp_starts(starts, t.dims(), update.dims());
    macro_rules! dus {
        ($($v:ident),*) => {
            match (t, update) {
                $((Tensor::$v(a), Tensor::$v(u)) => {
                    let mut view = a.slice_each_axis_mut(|ax| {
                        let d = ax.axis.index();
                        Slice::from(st[d]..st[d] + u.shape()[d])
                    });
                    view.assign(u);
                })*
                _ => unreachable!("dynamic-update-slice operands are type-checked"),
            }
        };
    }
    dus!(Pred, S8, S16, S32, S64, U8, U16, U32, U64, F16, BF16, F32, F64)
}

/// `concatenate(ts...), dimensions={dim}`.
pub fn concatenate(ts: &[&Tensor], dim: usize) -> Tensor {
    macro_rules! cat {
        ($($v:ident),*) => {
            match ts[0] {
                $(Tensor::$v(_) => {
                    let views: Vec<_> = ts.iter().map(|t| match t { Tensor::$v(a) => a.view(), _ => unreachable!("concatenate operands are type-checked") }).collect();
                    Tensor::$v(std_owned(ndarray::concatenate(Axis(dim), &views).expect("concatenate shapes are checked")))
                })*
            }
        };
    }
    cat!(Pred, S8, S16, S32, S64, U8, U16, U32, U64, F16, BF16, F32, F64)
}

/// `reverse(t), dimensions=dims`.
pub fn reverse(t: &Tensor, dims: &[usize]) -> Tensor {
    map_tensor!(t, a => {
        let mut v = a.view();
        for &d in dims {
            v.invert_axis(Axis(d));
        }
        v.as_standard_layout().into_owned()
    })
}

/// `iota(), iota_dimension=dim` of `dtype` and `dims`.
pub fn iota(dtype: DType, dims: &[usize], dim: usize) -> Tensor {
    let (outer, inner) = (
        dims[..dim].iter().product::<usize>(),
        dims[dim + 1..].iter().product::<usize>(),
    );
    make_tensor!(dtype, T => {
        let values: Vec<T> = (0..dims[dim])
            .map(|i| if T::DTYPE.is_float() { T::from_f64(i as f64) } else { T::from_i128(i as i128) })
            .collect();
        let mut v = Vec::with_capacity(outer * values.len() * inner);
        for _ in 0..outer {
            for &x in &values {
                v.extend(std::iter::repeat_n(x, inner));
            }
        }
        ArrayD::from_shape_vec(IxDyn(dims), v).expect("iota output size")
    })
}

/// `pad(t, value), padding=lo_hi_interior x ...` into `out` dims (negative padding crops).
pub fn pad(t: &Tensor, value: &Tensor, lo: &[i64], interior: &[usize], out: &[usize]) -> Tensor {
    macro_rules! padk {
        ($($v:ident),*) => {
            match (t, value) {
                $((Tensor::$v(a), Tensor::$v(pv)) => {
                    let fill = pv.first().copied().unwrap_or_default();
                    let mut res = ArrayD::from_elem(IxDyn(out), fill);
                    if a.len() > 0 {
                        let src = a.as_slice().expect("standard layout");
                        let dst = res.as_slice_mut().expect("standard layout");
                        let ostr = strides(out);
                        let mut idx = vec![0usize; a.ndim()];
                        let mut k = 0;
                        loop {
                            let mut off = 0usize;
                            let mut inside = true;
                            for d in 0..idx.len() {
                                let p = lo[d] + (idx[d] * (interior[d] + 1)) as i64;
                                if p < 0 || p >= out[d] as i64 { inside = false; break; }
                                off += p as usize * ostr[d];
                            }
                            if inside { dst[off] = src[k]; }
                            k += 1;
                            if !next_index(&mut idx, a.shape()) { break; }
                        }
                    }
                    Tensor::$v(res)
                })*
                _ => unreachable!("pad operands are type-checked"),
            }
        };
    }
    padk!(Pred, S8, S16, S32, S64, U8, U16, U32, U64, F16, BF16, F32, F64)
}

/// Reads an integer tensor's elements as i64.
pub(crate) fn to_i64_vec(t: &Tensor) -> Vec<i64> {
    with_tensor!(t, a => a.iter().map(|v| v.to_i128() as i64).collect())
}

/// The index-space attributes shared by gather and scatter.
#[derive(Clone, Debug, Default)]
pub struct IndexDims {
    /// gather `offset_dims` / scatter `update_window_dims`.
    pub window_dims: Vec<usize>,
    /// gather `collapsed_slice_dims` / scatter `inserted_window_dims`.
    pub collapsed: Vec<usize>,
    /// `start_index_map` / `scatter_dims_to_operand_dims`.
    pub index_map: Vec<usize>,
    /// `index_vector_dim`.
    pub index_vector_dim: usize,
    /// `operand_batching_dims` / `input_batching_dims`.
    pub operand_batching: Vec<usize>,
    /// `start_indices_batching_dims` / `scatter_indices_batching_dims`.
    pub indices_batching: Vec<usize>,
}

/// Start positions in the operand, computed from indices for one batch position `g` (the
/// indices' dims other than `index_vector_dim`, in order).
struct StartIndexer<'a> {
    idx: Vec<i64>,
    idims: Vec<usize>,
    istr: Vec<usize>,
    d: &'a IndexDims,
    operand_rank: usize,
}

impl<'a> StartIndexer<'a> {
    fn new(indices: &Tensor, d: &'a IndexDims, operand_rank: usize) -> Self {
        let mut idims = indices.dims().to_vec();
        if d.index_vector_dim == idims.len() {
            idims.push(1);
        }
        let istr = strides(&idims);
        StartIndexer {
            idx: to_i64_vec(indices),
            istr,
            idims,
            d,
            operand_rank,
        }
    }

    fn starts(&self, g: &[usize], out: &mut [i64]) {
        out.iter_mut().for_each(|v| *v = 0);
        let mut base = 0;
        let mut gi = 0;
        for k in 0..self.idims.len() {
            if k == self.d.index_vector_dim {
                continue;
            }
            base += g[gi] * self.istr[k];
            gi += 1;
        }
        for (k, &od) in self.d.index_map.iter().enumerate() {
            out[od] = self.idx[base + k * self.istr[self.d.index_vector_dim]];
        }
        for (&od, &id) in self.d.operand_batching.iter().zip(&self.d.indices_batching) {
            // position of indices dim `id` among the batch dims
            let pos = if id < self.d.index_vector_dim {
                id
            } else {
                id - 1
            };
            out[od] = g[pos] as i64;
        }
        debug_assert_eq!(out.len(), self.operand_rank);
    }
}

/// `gather(operand, indices)` into `out` dims with `slice_sizes`.
pub fn gather(
    operand: &Tensor,
    indices: &Tensor,
    d: &IndexDims,
    slice_sizes: &[usize],
    out: &[usize],
) -> Tensor {
    let odims = operand.dims().to_vec();
    let rank = odims.len();
    let si = StartIndexer::new(indices, d, rank);
    let batch_out: Vec<usize> = (0..out.len())
        .filter(|k| !d.window_dims.contains(k))
        .collect();
    let offset_operand: Vec<usize> = (0..rank)
        .filter(|k| !d.collapsed.contains(k) && !d.operand_batching.contains(k))
        .collect();
    let ostr = strides(&odims);
    let mut src_offsets = Vec::with_capacity(out.iter().product());
    let mut idx = vec![0usize; out.len()];
    let mut g = vec![0usize; batch_out.len()];
    let mut starts = vec![0i64; rank];
    if out.iter().all(|&n| n > 0) {
        loop {
            for (k, &bd) in batch_out.iter().enumerate() {
                g[k] = idx[bd];
            }
            si.starts(&g, &mut starts);
            let st = clamp_starts(&starts, &odims, slice_sizes);
            let mut off = 0;
            for dd in 0..rank {
                off += st[dd] * ostr[dd];
            }
            for (j, &wd) in d.window_dims.iter().enumerate() {
                off += idx[wd] * ostr[offset_operand[j]];
            }
            src_offsets.push(off);
            if !next_index(&mut idx, out) {
                break;
            }
        }
    }
    map_tensor!(operand, a => {
        let s = a.as_slice().expect("standard layout");
        let v: Vec<_> = src_offsets.iter().map(|&o| s[o]).collect();
        ArrayD::from_shape_vec(IxDyn(out), v).expect("gather output size")
    })
}

/// How scatter combines an update with the operand element.
pub enum Combiner<'a> {
    /// A recognised binary op.
    Binary(BinaryOp),
    /// The update replaces the element.
    Replace,
    /// Any other computation, evaluated on scalars.
    General(&'a mut dyn FnMut(Vec<Tensor>) -> Result<Vec<Tensor>>),
}

/// `scatter(operand, indices, updates)` applied in place to `operand`. Update windows that
/// fall outside the operand are skipped, as XLA does.
pub fn scatter(
    operand: &mut Tensor,
    indices: &Tensor,
    updates: &Tensor,
    d: &IndexDims,
    comb: Combiner<'_>,
) -> Result<()> {
    let odims = operand.dims().to_vec();
    let rank = odims.len();
    let udims = updates.dims().to_vec();
    let si = StartIndexer::new(indices, d, rank);
    let scatter_dims: Vec<usize> = (0..udims.len())
        .filter(|k| !d.window_dims.contains(k))
        .collect();
    let window_operand: Vec<usize> = (0..rank)
        .filter(|k| !d.collapsed.contains(k) && !d.operand_batching.contains(k))
        .collect();
    let mut wsize = vec![1usize; rank];
    for (j, &ud) in d.window_dims.iter().enumerate() {
        wsize[window_operand[j]] = udims[ud];
    }
    let ostr = strides(&odims);
    // (operand offset, update offset) pairs in update order
    let mut pairs = Vec::new();
    let mut idx = vec![0usize; udims.len()];
    let mut g = vec![0usize; scatter_dims.len()];
    let mut starts = vec![0i64; rank];
    if udims.iter().all(|&n| n > 0) {
        let mut k = 0usize;
        loop {
            for (q, &sd) in scatter_dims.iter().enumerate() {
                g[q] = idx[sd];
            }
            si.starts(&g, &mut starts);
            let inside =
                (0..rank).all(|dd| starts[dd] >= 0 && starts[dd] as usize + wsize[dd] <= odims[dd]);
            if inside {
                let mut off = 0;
                for dd in 0..rank {
                    off += starts[dd] as usize * ostr[dd];
                }
                for (j, &ud) in d.window_dims.iter().enumerate() {
                    off += idx[ud] * ostr[window_operand[j]];
                }
                pairs.push((off, k));
            }
            k += 1;
            if !next_index(&mut idx, &udims) {
                break;
            }
        }
    }
    match comb {
        Combiner::General(f) => {
            for (o, u) in pairs {
                let dtype = operand.dtype();
                let sz = dtype.size_bytes();
                let mut a = vec![0u8; sz];
                operand.read_bytes(o * sz, &mut a)?;
                let mut b = vec![0u8; sz];
                updates.read_bytes(u * sz, &mut b)?;
                let r = f(vec![
                    Tensor::from_le_bytes(dtype, &[], &a)?,
                    Tensor::from_le_bytes(dtype, &[], &b)?,
                ])?;
                let bytes = r.first().map(Tensor::to_le_bytes).unwrap_or(a);
                operand.write_bytes(o * sz, &bytes)?;
            }
        }
        comb => {
            macro_rules! sc {
                ($($v:ident),*) => {
                    match (operand, updates) {
                        $((Tensor::$v(a), Tensor::$v(b)) => {
                            let dst = a.as_slice_mut().expect("standard layout");
                            let src = b.as_slice().expect("standard layout");
                            match comb {
                                Combiner::Binary(op) => {
                                    let f = BinaryFn::binary_fn(op);
                                    for (o, u) in pairs { dst[o] = f(dst[o], src[u]); }
                                }
                                _ => for (o, u) in pairs { dst[o] = src[u]; },
                            }
                        })*
                        _ => unreachable!("scatter operands are type-checked"),
                    }
                };
            }
            sc!(Pred, S8, S16, S32, S64, U8, U16, U32, U64, F16, BF16, F32, F64)
        }
    }
    Ok(())
}

/// Dot dimension numbers.
#[derive(Clone, Debug, Default)]
pub struct DotDims {
    /// `lhs_batch_dims`.
    pub lhs_batch: Vec<usize>,
    /// `rhs_batch_dims`.
    pub rhs_batch: Vec<usize>,
    /// `lhs_contracting_dims`.
    pub lhs_contract: Vec<usize>,
    /// `rhs_contracting_dims`.
    pub rhs_contract: Vec<usize>,
}

/// How a dot's operands map onto batched matrices.
struct GemmLayout<'a> {
    lorder: &'a [usize],
    rorder: &'a [usize],
    groups_l: [usize; 3],
    groups_r: [usize; 3],
    b: usize,
    m: usize,
    k: usize,
    n: usize,
    out: &'a [usize],
}

/// The float element types `dot` computes in.
trait FloatArray: Elem + ndarray::LinalgScalar + Send + Sync {
    fn array(t: &Tensor) -> Option<&ArrayD<Self>>;
    fn wrap(a: ArrayD<Self>) -> Tensor;
}

impl FloatArray for f32 {
    fn array(t: &Tensor) -> Option<&ArrayD<f32>> {
        if let Tensor::F32(a) = t {
            Some(a)
        } else {
            None
        }
    }
    fn wrap(a: ArrayD<f32>) -> Tensor {
        Tensor::F32(a)
    }
}

impl FloatArray for f64 {
    fn array(t: &Tensor) -> Option<&ArrayD<f64>> {
        if let Tensor::F64(a) = t {
            Some(a)
        } else {
            None
        }
    }
    fn wrap(a: ArrayD<f64>) -> Tensor {
        Tensor::F64(a)
    }
}

/// A float dot computed in `T` (operands of other types converted first; `T` operands are
/// used in place).
fn float_dot<T: FloatArray>(lhs: &Tensor, rhs: &Tensor, g: &GemmLayout<'_>) -> Tensor {
    let conv =
        |t: &Tensor| (t.dtype() != T::DTYPE).then(|| crate::elementwise::convert(t, T::DTYPE));
    let (lc, rc) = (conv(lhs), conv(rhs));
    let l = T::array(lc.as_ref().unwrap_or(lhs)).expect("converted to the compute type");
    let r = T::array(rc.as_ref().unwrap_or(rhs)).expect("converted to the compute type");
    let v = gemm::batched_matmul(
        &gemm::view3(l, g.lorder, g.groups_l, (g.b, g.m, g.k)),
        &gemm::view3(r, g.rorder, g.groups_r, (g.b, g.k, g.n)),
    );
    T::wrap(ArrayD::from_shape_vec(IxDyn(g.out), v).expect("dot output size"))
}

/// Permutes `t` to `[first.., second.., third..]` and views it as a 3-D f32/f64 array.
fn to_bmk<T: Elem>(
    a: &ArrayD<T>,
    order: &[usize],
    b: usize,
    m: usize,
    k: usize,
) -> ndarray::Array3<T> {
    let p = a.view().permuted_axes(IxDyn(order));
    let p = p.as_standard_layout().into_owned();
    let (v, _) = p.into_raw_vec_and_offset();
    ndarray::Array3::from_shape_vec((b, m, k), v).expect("dot operand size")
}

fn int_gemm<T: Elem>(l: &ndarray::Array3<T>, r: &ndarray::Array3<T>) -> Vec<i128> {
    let (b, m, k) = l.dim();
    let n = r.dim().2;
    let mut out = vec![0i128; b * m * n];
    out.par_chunks_mut(n.max(1))
        .enumerate()
        .for_each(|(row, o)| {
            let (bi, mi) = (row / m.max(1), row % m.max(1));
            for kk in 0..k {
                let x = l[[bi, mi, kk]].to_i128();
                if x == 0 {
                    continue;
                }
                for (j, oj) in o.iter_mut().enumerate() {
                    *oj = oj.wrapping_add(x.wrapping_mul(r[[bi, kk, j]].to_i128()));
                }
            }
        });
    out
}

/// `dot(lhs, rhs)` with general dimension numbers; result in `out_dtype` with `out` dims
/// (batch, lhs free, rhs free). Floats run a real GEMM (f16/bf16 and mixed types in f32);
/// integers accumulate exactly and wrap to the output type.
pub fn dot(lhs: &Tensor, rhs: &Tensor, d: &DotDims, out_dtype: DType, out: &[usize]) -> Tensor {
    let ld = lhs.dims();
    let rd = rhs.dims();
    let lfree: Vec<usize> = (0..ld.len())
        .filter(|k| !d.lhs_batch.contains(k) && !d.lhs_contract.contains(k))
        .collect();
    let rfree: Vec<usize> = (0..rd.len())
        .filter(|k| !d.rhs_batch.contains(k) && !d.rhs_contract.contains(k))
        .collect();
    let b: usize = d.lhs_batch.iter().map(|&k| ld[k]).product();
    let m: usize = lfree.iter().map(|&k| ld[k]).product();
    let k: usize = d.lhs_contract.iter().map(|&k| ld[k]).product();
    let n: usize = rfree.iter().map(|&k| rd[k]).product();
    let lorder: Vec<usize> = d
        .lhs_batch
        .iter()
        .chain(&lfree)
        .chain(&d.lhs_contract)
        .copied()
        .collect();
    let rorder: Vec<usize> = d
        .rhs_batch
        .iter()
        .chain(&d.rhs_contract)
        .chain(&rfree)
        .copied()
        .collect();
    let float_math = lhs.dtype().is_float() || rhs.dtype().is_float() || out_dtype.is_float();
    let groups_l = [d.lhs_batch.len(), lfree.len(), d.lhs_contract.len()];
    let groups_r = [d.rhs_batch.len(), d.rhs_contract.len(), rfree.len()];
    let layout = GemmLayout {
        lorder: &lorder,
        rorder: &rorder,
        groups_l,
        groups_r,
        b,
        m,
        k,
        n,
        out,
    };
    let res: Tensor = if lhs.dtype() == DType::F64 || out_dtype == DType::F64 {
        float_dot::<f64>(lhs, rhs, &layout)
    } else if float_math {
        float_dot::<f32>(lhs, rhs, &layout)
    } else {
        let l = crate::elementwise::convert(lhs, DType::S64);
        let r = crate::elementwise::convert(rhs, DType::S64);
        let (Tensor::S64(l), Tensor::S64(r)) = (l, r) else {
            unreachable!("converted to s64")
        };
        let acc = int_gemm(&to_bmk(&l, &lorder, b, m, k), &to_bmk(&r, &rorder, b, k, n));
        return make_tensor!(out_dtype, T => ArrayD::from_shape_vec(IxDyn(out), acc.into_iter().map(T::from_i128).collect()).expect("dot output size"));
    };
    if res.dtype() == out_dtype {
        return res;
    }
    crate::elementwise::convert(&res, out_dtype)
}

/// Moves `reduced` axes last and returns the array in standard layout (borrowed when it
/// already is, as for a reduction over the trailing axes) with the length of each reduced
/// run.
fn reduced_last<'a, T: Elem>(
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
    } else if s.len() >= crate::elementwise::PAR_THRESHOLD && count > 1 {
        s.par_chunks(run).map(&fold).collect()
    } else {
        s.chunks(run).map(&fold).collect()
    };
    ArrayD::from_shape_vec(IxDyn(out), v).expect("reduce output size")
}

/// Float sum, maximum or minimum over eight interleaved partial results, so the loop
/// vectorises (a single running value is one long dependency chain); `init` is applied
/// once, to the combined result. Sums are reassociated, as XLA's CPU backend does.
macro_rules! float_reduce {
    ($a:expr, $init:expr, $reduced:expr, $out:expr, $op:expr, $t:ty) => {{
        let combine: fn($t, $t) -> $t = match $op {
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
        let lanes = |run: &[$t]| -> $t {
            let mut chunks = run.chunks_exact(8);
            let Some(first) = chunks.next() else {
                return run.iter().fold($init, |acc, &x| combine(acc, x));
            };
            let mut acc: [$t; 8] = first.try_into().expect("chunk of eight");
            // compare-and-pick forms of NaN-propagating max/min, which vectorise: a NaN
            // element is picked (`x != x`), a NaN partial result is never replaced
            #[allow(clippy::eq_op)]
            match $op {
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
            combine($init, total)
        };
        reduce_runs($a, $init, $reduced, $out, lanes)
    }};
}

/// `reduce(t, init), dimensions=reduced` with a recognised binary reducer.
pub fn reduce_binary(
    t: &Tensor,
    init: &Tensor,
    reduced: &[usize],
    op: BinaryOp,
    out: &[usize],
) -> Tensor {
    if matches!(op, BinaryOp::Add | BinaryOp::Maximum | BinaryOp::Minimum) {
        match (t, init) {
            (Tensor::F32(a), Tensor::F32(i)) => {
                let i = i.first().copied().unwrap_or_default();
                return Tensor::F32(float_reduce!(a, i, reduced, out, op, f32));
            }
            (Tensor::F64(a), Tensor::F64(i)) => {
                let i = i.first().copied().unwrap_or_default();
                return Tensor::F64(float_reduce!(a, i, reduced, out, op, f64));
            }
            _ => {}
        }
    }
    macro_rules! r {
        ($($v:ident),*) => {
            match (t, init) {
                $((Tensor::$v(a), Tensor::$v(i)) => Tensor::$v(reduce_typed(a, i.first().copied().unwrap_or_default(), reduced, op, out)),)*
                _ => unreachable!("reduce operands are type-checked"),
            }
        };
    }
    r!(Pred, S8, S16, S32, S64, U8, U16, U32, U64, F16, BF16, F32, F64)
}

/// One element of `t` at flat row-major `offset`, as a rank-0 tensor.
pub(crate) fn element(t: &Tensor, offset: usize) -> Tensor {
    map_tensor!(t, a => ndarray::arr0(a.as_slice().expect("standard layout")[offset]).into_dyn())
}

/// Writes the rank-0 `v` at flat `offset` of `t` (same dtype).
pub(crate) fn set_element(t: &mut Tensor, offset: usize, v: &Tensor) {
    macro_rules! s {
        ($($x:ident),*) => {
            match (t, v) {
                $((Tensor::$x(a), Tensor::$x(b)) => { a.as_slice_mut().expect("standard layout")[offset] = b.first().copied().unwrap_or_default(); })*
                _ => unreachable!("reducer result types are checked"),
            }
        };
    }
    s!(Pred, S8, S16, S32, S64, U8, U16, U32, U64, F16, BF16, F32, F64)
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
}

/// `reduce-window(t, init)`: padded and dilated positions take the init value, as in XLA.
pub fn reduce_window(
    t: &Tensor,
    init: &Tensor,
    w: &Window,
    out: &[usize],
    op: Option<BinaryOp>,
    f: &mut dyn FnMut(Vec<Tensor>) -> Result<Vec<Tensor>>,
) -> Result<Tensor> {
    let idims = t.dims().to_vec();
    let istr = strides(&idims);
    let rank = idims.len();
    // For each output element, the input offsets in its window (None = padding/hole).
    let mut res = broadcast_scalar(init, out);
    let count: usize = out.iter().product();
    if count == 0 {
        return Ok(res);
    }
    let wcount: usize = w.size.iter().product();
    let mut oidx = vec![0usize; rank];
    let mut o = 0;
    let mut offsets: Vec<Option<usize>> = Vec::with_capacity(wcount);
    loop {
        offsets.clear();
        let mut widx = vec![0usize; rank];
        if wcount > 0 {
            loop {
                let mut off = 0usize;
                let mut valid = true;
                for d in 0..rank {
                    let pos = (oidx[d] * w.stride[d] + widx[d] * w.window_dilation[d]) as i64
                        - w.pad_lo[d];
                    if pos < 0 || pos % w.base_dilation[d] as i64 != 0 {
                        valid = false;
                        break;
                    }
                    let p = (pos / w.base_dilation[d] as i64) as usize;
                    if p >= idims[d] {
                        valid = false;
                        break;
                    }
                    off += p * istr[d];
                }
                offsets.push(valid.then_some(off));
                if !next_index(&mut widx, &w.size) {
                    break;
                }
            }
        }
        match op {
            Some(op) => {
                macro_rules! rw {
                    ($($v:ident),*) => {
                        match (&mut res, t, init) {
                            $((Tensor::$v(r), Tensor::$v(a), Tensor::$v(i)) => {
                                let f = BinaryFn::binary_fn(op);
                                let iv = i.first().copied().unwrap_or_default();
                                let s = a.as_slice().expect("standard layout");
                                let acc = offsets.iter().fold(iv, |acc, off| f(acc, off.map_or(iv, |k| s[k])));
                                r.as_slice_mut().expect("standard layout")[o] = acc;
                            })*
                            _ => unreachable!("reduce-window operands are type-checked"),
                        }
                    };
                }
                rw!(Pred, S8, S16, S32, S64, U8, U16, U32, U64, F16, BF16, F32, F64)
            }
            None => {
                let mut acc = init.clone();
                for off in &offsets {
                    let e = off.map_or_else(|| init.clone(), |k| element(t, k));
                    acc = f(vec![acc, e])?
                        .into_iter()
                        .next()
                        .unwrap_or_else(|| init.clone());
                }
                set_element(&mut res, o, &acc);
            }
        }
        o += 1;
        if !next_index(&mut oidx, out) {
            break;
        }
    }
    Ok(res)
}

/// `sort(ts...), dimensions={dim}` with comparator `less(a0, b0, a1, b1, ...)`; stable
/// (XLA's unstable sort may order equal keys either way; stable is one valid order).
pub fn sort(
    ts: &[&Tensor],
    dim: usize,
    less: &mut dyn FnMut(Vec<Tensor>) -> Result<bool>,
) -> Result<Vec<Tensor>> {
    let dims = ts[0].dims().to_vec();
    let n = dims[dim];
    let str_ = strides(&dims);
    let mut outer_dims = dims.clone();
    outer_dims[dim] = 1;
    let mut results: Vec<Tensor> = ts.iter().map(|t| (*t).clone()).collect();
    if dims.contains(&0) {
        return Ok(results);
    }
    let mut idx = vec![0usize; dims.len()];
    loop {
        let base: usize = idx.iter().zip(&str_).map(|(a, b)| a * b).sum();
        let offs: Vec<usize> = (0..n).map(|i| base + i * str_[dim]).collect();
        let mut order: Vec<usize> = (0..n).collect();
        // merge sort with a fallible comparator
        let mut err = None;
        let mut cmp = |a: usize, b: usize| -> bool {
            if err.is_some() {
                return false;
            }
            let mut args = Vec::with_capacity(ts.len() * 2);
            for t in ts {
                args.push(element(t, offs[a]));
                args.push(element(t, offs[b]));
            }
            match less(args) {
                Ok(v) => v,
                Err(e) => {
                    err = Some(e);
                    false
                }
            }
        };
        merge_sort(&mut order, &mut cmp);
        if let Some(e) = err {
            return Err(e);
        }
        for (r, t) in results.iter_mut().zip(ts) {
            for (i, &src) in order.iter().enumerate() {
                set_element(r, offs[i], &element(t, offs[src]));
            }
        }
        if !next_index(&mut idx, &outer_dims) {
            break;
        }
    }
    Ok(results)
}

/// A stable merge sort driven by a strict-weak-order `less`, tolerant of inconsistent
/// comparators (it never panics, whatever `less` answers).
fn merge_sort(v: &mut [usize], less: &mut dyn FnMut(usize, usize) -> bool) {
    let n = v.len();
    if n < 2 {
        return;
    }
    let mut buf = v.to_vec();
    let mut width = 1;
    while width < n {
        let mut i = 0;
        while i < n {
            let mid = (i + width).min(n);
            let hi = (i + 2 * width).min(n);
            let (mut a, mut b, mut k) = (i, mid, i);
            while a < mid && b < hi {
                if less(v[b], v[a]) {
                    buf[k] = v[b];
                    b += 1;
                } else {
                    buf[k] = v[a];
                    a += 1;
                }
                k += 1;
            }
            buf[k..k + (mid - a)].copy_from_slice(&v[a..mid]);
            k += mid - a;
            buf[k..k + (hi - b)].copy_from_slice(&v[b..hi]);
            i += 2 * width;
        }
        v.copy_from_slice(&buf);
        width *= 2;
    }
}
