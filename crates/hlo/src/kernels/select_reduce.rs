//! The native kernel for (value, index) reducers recognised by their behaviour (argmax,
//! argmin and kin; see the planner's `select_reducer`): each step keeps the accumulator's
//! or takes the element's value and index as a table says for how the two compare.

use super::layout::{element, set_element};
use super::movement::broadcast_scalar;
use crate::tensor::{Elem, Tensor};
use crate::{map_tensor, with_tensor};
use rayon::prelude::*;

/// The cases a (value, index) comparison falls into: values less, equal, greater, or
/// unordered with the NaN on the accumulator's side, the element's, or both (6), times
/// indices less, equal or greater (3).
pub const SELECT_CASES: usize = 18;

/// For each case, whether the value and the index keep the accumulator's (else take the
/// element's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectTable {
    /// Per case: the value output keeps the accumulator.
    pub value_from_acc: [bool; SELECT_CASES],
    /// Per case: the index output keeps the accumulator.
    pub index_from_acc: [bool; SELECT_CASES],
}

/// The case of accumulator (`av`, `ai`) against element (`v`, `i`).
#[inline]
pub fn select_case<K: PartialOrd, I: Ord>(av: K, v: K, ai: I, i: I) -> usize {
    #[allow(clippy::eq_op)]
    let (an, vn) = (av != av, v != v);
    let value = match (an, vn) {
        (false, false) => match av.partial_cmp(&v) {
            Some(std::cmp::Ordering::Less) => 0,
            Some(std::cmp::Ordering::Equal) => 1,
            _ => 2,
        },
        (true, false) => 3,
        (false, true) => 4,
        (true, true) => 5,
    };
    let index = match ai.cmp(&i) {
        std::cmp::Ordering::Less => 0,
        std::cmp::Ordering::Equal => 1,
        std::cmp::Ordering::Greater => 2,
    };
    value * 3 + index
}

/// Reduces runs of `run` elements: returns, per run, where the value and the index came
/// from (`None`: the init).
fn runs<K, I>(
    keys: &[K],
    idx: &[I],
    run: usize,
    init: (K, I),
    table: &SelectTable,
) -> Vec<(Option<usize>, Option<usize>)>
where
    K: PartialOrd + Copy + Send + Sync,
    I: Ord + Copy + Send + Sync,
{
    let one = |(o, (ks, is)): (usize, (&[K], &[I]))| {
        let (mut av, mut ai) = init;
        let (mut vp, mut ip) = (None, None);
        for (r, (&k, &i)) in ks.iter().zip(is).enumerate() {
            let c = select_case(av, k, ai, i);
            if !table.value_from_acc[c] {
                av = k;
                vp = Some(o * run + r);
            }
            if !table.index_from_acc[c] {
                ai = i;
                ip = Some(o * run + r);
            }
        }
        (vp, ip)
    };
    if keys.len() / run > 1 && super::elementwise::splits(keys.len()) {
        keys.par_chunks(run)
            .zip(idx.par_chunks(run))
            .enumerate()
            .map(one)
            .collect()
    } else {
        keys.chunks(run)
            .zip(idx.chunks(run))
            .enumerate()
            .map(one)
            .collect()
    }
}

/// Values as the kernel compares them: f32 and f64 in place, anything else widened
/// exactly (halves to f64, integers to i128).
enum Keys<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    Float(Vec<f64>),
    Int(Vec<i128>),
}

impl<'a> Keys<'a> {
    fn of(t: &'a Tensor) -> Keys<'a> {
        match t {
            Tensor::F32(a) => Keys::F32(a.as_slice().expect("standard layout")),
            Tensor::F64(a) => Keys::F64(a.as_slice().expect("standard layout")),
            t if t.dtype().is_float() => Keys::Float(t.to_f64_vec()),
            t => Keys::Int(with_tensor!(t, a => a.iter().map(|x| x.to_i128()).collect())),
        }
    }
}

/// Indices as the kernel compares them: s32 and s64 in place, others widened to i128.
enum Indices<'a> {
    S32(&'a [i32]),
    S64(&'a [i64]),
    Wide(Vec<i128>),
}

impl<'a> Indices<'a> {
    fn of(t: &'a Tensor) -> Indices<'a> {
        match t {
            Tensor::S32(a) => Indices::S32(a.as_slice().expect("standard layout")),
            Tensor::S64(a) => Indices::S64(a.as_slice().expect("standard layout")),
            t => Indices::Wide(with_tensor!(t, a => a.iter().map(|x| x.to_i128()).collect())),
        }
    }
}

/// The first element of a rank-0 tensor, widened as [`Keys`] and [`Indices`] widen.
fn scalar_f64(t: &Tensor) -> f64 {
    with_tensor!(t, a => a.first().map_or(0.0, |x| x.to_f64()))
}
fn scalar_i128(t: &Tensor) -> i128 {
    with_tensor!(t, a => a.first().map_or(0, |x| x.to_i128()))
}

/// Variadic `reduce` of (`values`, `indices`) with inits, over `reduced`, by `table`.
pub fn reduce_select(
    values: &Tensor,
    indices: &Tensor,
    inits: (&Tensor, &Tensor),
    reduced: &[usize],
    out: &[usize],
    table: &SelectTable,
) -> (Tensor, Tensor) {
    // the reduced axes last, row-major (no copy when they already are)
    let last = |t: &Tensor| -> Option<Tensor> {
        // the last reduced.len() dimensions, in order
        let rank = t.dims().len();
        let trailing = reduced
            .iter()
            .rev()
            .enumerate()
            .all(|(k, &d)| d + 1 + k == rank);
        (!trailing)
            .then(|| map_tensor!(t, a => super::reduce::reduced_last(a, reduced).0.into_owned()))
    };
    let (pv, pi) = (last(values), last(indices));
    let (v, i) = (
        pv.as_ref().unwrap_or(values),
        pi.as_ref().unwrap_or(indices),
    );
    let run: usize = reduced.iter().map(|&k| values.dims()[k]).product();
    let count: usize = out.iter().product();
    let mut rv = broadcast_scalar(inits.0, out);
    let mut ri = broadcast_scalar(inits.1, out);
    if run == 0 || count == 0 {
        return (rv, ri);
    }
    let (iv, ii) = (inits.0, inits.1);
    macro_rules! go {
        ($keys:expr, $kinit:expr) => {
            match Indices::of(i) {
                Indices::S32(x) => runs($keys, x, run, ($kinit, scalar_i128(ii) as i32), table),
                Indices::S64(x) => runs($keys, x, run, ($kinit, scalar_i128(ii) as i64), table),
                Indices::Wide(x) => runs($keys, &x, run, ($kinit, scalar_i128(ii)), table),
            }
        };
    }
    let picks = match Keys::of(v) {
        Keys::F32(k) => go!(k, scalar_f64(iv) as f32),
        Keys::F64(k) => go!(k, scalar_f64(iv)),
        Keys::Float(k) => go!(&k, scalar_f64(iv)),
        Keys::Int(k) => go!(&k, scalar_i128(iv)),
    };
    for (o, (vp, ip)) in picks.into_iter().enumerate() {
        if let Some(p) = vp {
            set_element(&mut rv, o, &element(v, p));
        }
        if let Some(p) = ip {
            set_element(&mut ri, o, &element(i, p));
        }
    }
    (rv, ri)
}
