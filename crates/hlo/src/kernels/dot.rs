//! `dot` with general dimension numbers: batched GEMM for floats, exact integer products.

use super::gemm;
use crate::make_tensor;
use crate::tensor::{Elem, Tensor};
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use statetensor_core::DType;

/// Dot dimension numbers, with the free (neither batch nor contracting) dimensions of each
/// operand listed in the order they appear in the result. As HLO states them the free
/// dimensions are in ascending order ([`DotDims::new`]); a dot that reads a transposed
/// operand in place (the planner folds the `transpose` away) lists the source's dimensions
/// in the transpose's order instead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DotDims {
    /// `lhs_batch_dims`.
    pub lhs_batch: Vec<usize>,
    /// `rhs_batch_dims`.
    pub rhs_batch: Vec<usize>,
    /// `lhs_contracting_dims`.
    pub lhs_contract: Vec<usize>,
    /// `rhs_contracting_dims`.
    pub rhs_contract: Vec<usize>,
    /// The lhs's free dimensions, in result order.
    pub lhs_free: Vec<usize>,
    /// The rhs's free dimensions, in result order.
    pub rhs_free: Vec<usize>,
}

impl DotDims {
    /// The dimension numbers as HLO writes them, for operands of rank `lhs_rank` and
    /// `rhs_rank`: the free dimensions are the remaining ones, ascending.
    pub fn new(
        lhs_batch: Vec<usize>,
        rhs_batch: Vec<usize>,
        lhs_contract: Vec<usize>,
        rhs_contract: Vec<usize>,
        lhs_rank: usize,
        rhs_rank: usize,
    ) -> DotDims {
        let free = |rank: usize, batch: &[usize], contract: &[usize]| {
            (0..rank)
                .filter(|k| !batch.contains(k) && !contract.contains(k))
                .collect()
        };
        DotDims {
            lhs_free: free(lhs_rank, &lhs_batch, &lhs_contract),
            rhs_free: free(rhs_rank, &rhs_batch, &rhs_contract),
            lhs_batch,
            rhs_batch,
            lhs_contract,
            rhs_contract,
        }
    }

    /// The same product reading operand `side` (0 lhs, 1 rhs) through `transpose(x, perm)`
    /// from `x` itself: operand dimension `i` is `x`'s dimension `perm[i]`.
    pub fn through_transpose(&self, side: usize, perm: &[usize]) -> DotDims {
        let map = |dims: &[usize]| dims.iter().map(|&i| perm[i]).collect::<Vec<_>>();
        let mut d = self.clone();
        if side == 0 {
            d.lhs_batch = map(&self.lhs_batch);
            d.lhs_contract = map(&self.lhs_contract);
            d.lhs_free = map(&self.lhs_free);
        } else {
            d.rhs_batch = map(&self.rhs_batch);
            d.rhs_contract = map(&self.rhs_contract);
            d.rhs_free = map(&self.rhs_free);
        }
        d
    }
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

/// A float dot computed in `T` (operands of other types converted first; `T` operands are
/// used in place).
fn float_dot<T: Elem + ndarray::LinalgScalar>(
    lhs: &Tensor,
    rhs: &Tensor,
    g: &GemmLayout<'_>,
) -> Tensor {
    let conv =
        |t: &Tensor| (t.dtype() != T::DTYPE).then(|| super::elementwise::convert(t, T::DTYPE));
    let (lc, rc) = (conv(lhs), conv(rhs));
    let l = T::array_of(lc.as_ref().unwrap_or(lhs)).expect("converted to the compute type");
    let r = T::array_of(rc.as_ref().unwrap_or(rhs)).expect("converted to the compute type");
    let v = gemm::batched_matmul(
        &gemm::view3(l, g.lorder, g.groups_l, (g.b, g.m, g.k)),
        &gemm::view3(r, g.rorder, g.groups_r, (g.b, g.k, g.n)),
    );
    T::into_tensor(ArrayD::from_shape_vec(IxDyn(g.out), v).expect("dot output size"))
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
    let row = |(row, o): (usize, &mut [i128])| {
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
    };
    if b * m * n * k >= gemm::PAR_WORK && crate::pool::helpers_ready() {
        out.par_chunks_mut(n.max(1)).enumerate().for_each(row);
    } else {
        out.chunks_mut(n.max(1)).enumerate().for_each(row);
    }
    out
}

/// `dot(lhs, rhs)` with general dimension numbers; result in `out_dtype` with `out` dims
/// (batch, lhs free, rhs free). Floats run a real GEMM (f16/bf16 and mixed types in f32);
/// integers accumulate exactly and wrap to the output type.
pub fn dot(lhs: &Tensor, rhs: &Tensor, d: &DotDims, out_dtype: DType, out: &[usize]) -> Tensor {
    let ld = lhs.dims();
    let rd = rhs.dims();
    let (lfree, rfree) = (&d.lhs_free, &d.rhs_free);
    let b: usize = d.lhs_batch.iter().map(|&k| ld[k]).product();
    let m: usize = lfree.iter().map(|&k| ld[k]).product();
    let k: usize = d.lhs_contract.iter().map(|&k| ld[k]).product();
    let n: usize = rfree.iter().map(|&k| rd[k]).product();
    let lorder: Vec<usize> = d
        .lhs_batch
        .iter()
        .chain(lfree)
        .chain(&d.lhs_contract)
        .copied()
        .collect();
    let rorder: Vec<usize> = d
        .rhs_batch
        .iter()
        .chain(&d.rhs_contract)
        .chain(rfree)
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
        let l = super::elementwise::convert(lhs, DType::S64);
        let r = super::elementwise::convert(rhs, DType::S64);
        let (Tensor::S64(l), Tensor::S64(r)) = (l, r) else {
            unreachable!("converted to s64")
        };
        let acc = int_gemm(&to_bmk(&l, &lorder, b, m, k), &to_bmk(&r, &rorder, b, k, n));
        return make_tensor!(out_dtype, T => ArrayD::from_shape_vec(IxDyn(out), acc.into_iter().map(T::from_i128).collect()).expect("dot output size"));
    };
    if res.dtype() == out_dtype {
        return res;
    }
    super::elementwise::convert(&res, out_dtype)
}
