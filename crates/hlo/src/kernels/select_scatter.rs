//! `select-and-scatter`: in every window of the operand one element is selected, and the
//! source element of that window is scattered onto it — the gradient of max pooling.
//!
//! As XLA defines it: the result starts as `init` everywhere; windows are visited in the
//! source's row-major order; within a window, positions in the padding (or in a hole of
//! the input dilation) are skipped, the first real element is the candidate, and each
//! following element `e` replaces it unless `select(candidate, e)` is true; then
//! `result[selected] = scatter(result[selected], source)`. A window of padding alone
//! scatters nothing. A `select` the planner recognised as one comparison of its two
//! parameters (`GE` for max pooling's gradient) runs natively on keys computed once per
//! element, exactly as the compare kernel compares; any other runs through the
//! interpreter.

use super::indexing::{combine_pairs, Combiner};
use super::layout::*;
use super::movement::broadcast_scalar;
use super::sort::Keys;
use super::{SortKey, Window};
use crate::tensor::Tensor;
use statetensor_core::Result;

/// How the element of a window is selected.
pub enum Selector<'a> {
    /// `select(a, b)` is `key.direction.test(key(a), key(b))`.
    Key(&'a SortKey),
    /// Any other computation, evaluated on scalars.
    General(&'a mut dyn FnMut(Vec<Tensor>) -> Result<Vec<Tensor>>),
}

/// `select-and-scatter(operand, source, init), window=w, select=.., scatter=..` (the planner
/// has checked that `source` has the window's output dims over `operand`).
pub fn select_and_scatter(
    operand: &Tensor,
    source: &Tensor,
    init: &Tensor,
    w: &Window,
    select: Selector<'_>,
    scatter: Combiner<'_>,
) -> Result<Tensor> {
    let odims = operand.dims().to_vec();
    let sdims = source.dims().to_vec();
    let mut result = broadcast_scalar(init, &odims);
    let count: usize = sdims.iter().product();
    if count == 0 {
        return Ok(result);
    }
    let operand = standard_tensor(operand);
    let source = standard_tensor(source);
    let rank = odims.len();
    let ostr = strides(&odims);
    let taps: Vec<Vec<Option<usize>>> = (0..rank).map(|d| w.taps(d, odims[d], sdims[d])).collect();
    let mut keep: Box<dyn FnMut(usize, usize) -> Result<bool> + '_> = match select {
        Selector::Key(key) => {
            let keys = Keys::of(&operand, key);
            let direction = key.direction;
            Box::new(move |a, b| Ok(keys.test(direction, a, b)))
        }
        Selector::General(f) => {
            let operand = &operand;
            Box::new(move |a, b| {
                let r = f(vec![element(operand, a), element(operand, b)])?;
                Ok(r.first()
                    .is_some_and(|x| x.to_f64_vec().first().is_some_and(|&v| v != 0.0)))
            })
        }
    };
    let mut pairs = Vec::with_capacity(count);
    let mut sidx = vec![0usize; rank];
    let mut offsets = Vec::with_capacity(w.size.iter().product());
    for s in 0..count {
        w.offsets(&taps, &sidx, &ostr, &mut offsets);
        let mut selected: Option<usize> = None;
        for &o in offsets.iter().flatten() {
            selected = match selected {
                Some(c) if keep(c, o)? => Some(c),
                _ => Some(o),
            };
        }
        if let Some(o) = selected {
            pairs.push((o, s));
        }
        next_index(&mut sidx, &sdims);
    }
    drop(keep);
    combine_pairs(&mut result, &source, pairs, scatter)?;
    Ok(result)
}
