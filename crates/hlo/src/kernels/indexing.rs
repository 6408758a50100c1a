//! Indexed access: gather and scatter (with a combiner for the scattered values).

use super::elementwise::BinaryFn;
use super::layout::*;
use super::movement::clamp_starts;
use super::op_kinds::BinaryOp;
use crate::map_tensor;
use crate::tensor::Tensor;
use ndarray::{ArrayD, IxDyn};
use statetensor_core::Result;

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
    let pairs = scatter_pairs(operand.dims(), indices, updates.dims(), d);
    combine_pairs(operand, updates, pairs, comb)
}

/// Variadic `scatter(operands.., indices, updates..)` with a combiner over all of them:
/// `f(operand elements.., update elements..)` gives the new operand elements, in update
/// order (applied in place to `operands`, which share their dims, as the updates do).
pub fn scatter_variadic(
    operands: &mut [Tensor],
    indices: &Tensor,
    updates: &[&Tensor],
    d: &IndexDims,
    f: &mut dyn FnMut(Vec<Tensor>) -> Result<Vec<Tensor>>,
) -> Result<()> {
    let pairs = scatter_pairs(operands[0].dims(), indices, updates[0].dims(), d);
    for (o, u) in pairs {
        let mut args: Vec<Tensor> = operands.iter().map(|t| element(t, o)).collect();
        args.extend(updates.iter().map(|t| element(t, u)));
        let results = f(args)?;
        for (t, r) in operands.iter_mut().zip(&results) {
            set_element(t, o, r);
        }
    }
    Ok(())
}

/// The (operand offset, update offset) pairs a scatter combines, in update order; update
/// windows that fall outside the operand are left out, as XLA leaves them.
fn scatter_pairs(
    odims: &[usize],
    indices: &Tensor,
    udims: &[usize],
    d: &IndexDims,
) -> Vec<(usize, usize)> {
    let rank = odims.len();
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
    let ostr = strides(odims);
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
            if !next_index(&mut idx, udims) {
                break;
            }
        }
    }
    pairs
}

/// `operand[o] = comb(operand[o], updates[u])` for every pair, in order (same dtype,
/// standard layouts).
pub(crate) fn combine_pairs(
    operand: &mut Tensor,
    updates: &Tensor,
    pairs: Vec<(usize, usize)>,
    comb: Combiner<'_>,
) -> Result<()> {
    match comb {
        Combiner::General(f) => {
            for (o, u) in pairs {
                let r = f(vec![element(operand, o), element(updates, u)])?;
                if let Some(r) = r.first() {
                    set_element(operand, o, r);
                }
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
            crate::every_variant!(sc)
        }
    }
    Ok(())
}
