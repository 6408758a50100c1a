//! `sort` with a comparator computation, stable: interpreted, or native for a comparator
//! the planner recognised as ordering by one key ([`sort_by_key`]).

use super::layout::*;
use super::{total_key, CompareDirection};
use crate::tensor::{Elem, Tensor};
use statetensor_core::{DType, Result};

/// `sort(ts...), dimensions={dim}` with comparator `less(a0, b0, a1, b1, ...)`; stable
/// (XLA's unstable sort may order equal keys either way; stable is one valid order).
pub fn sort(
    ts: &[&Tensor],
    dim: usize,
    less: &mut dyn FnMut(Vec<Tensor>) -> Result<bool>,
) -> Result<Vec<Tensor>> {
    // the merge sort's comparator cannot fail: the first error is kept, every later
    // comparison answers false, and the error is returned once the rows are done
    let mut err = None;
    let results = sort_rows(ts, dim, &mut |a, b| {
        if err.is_some() {
            return false;
        }
        let args = ts
            .iter()
            .flat_map(|t| [element(t, a), element(t, b)])
            .collect();
        less(args).unwrap_or_else(|e| {
            err = Some(e);
            false
        })
    });
    match err {
        Some(e) => Err(e),
        None => Ok(results),
    }
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

/// The per-element key of a recognised single-key comparator (see the planner's
/// `sort_comparator`): applied to an element (as f64, which every float converts to
/// exactly) before comparing.
#[derive(Clone, Copy, Debug)]
pub enum KeyFn {
    /// The element itself.
    Identity,
    /// `select(x != x, nan, select(x == zero_match, zero, x))`.
    Canonical {
        /// The value every NaN becomes.
        nan: f64,
        /// The value compared with (`==`, so both zeros match a zero).
        zero_match: f64,
        /// What a match becomes.
        zero: f64,
    },
    /// The element's bits as an integer `b` of type `bits` (a `bitcast-convert`), then
    /// `select(b < below, flip ^ b, b)`: XLA's total-order key for floats (`bits` the signed
    /// type of the float's width, `below` 0, `flip` its largest value), which its `TopK`
    /// comparator compares as integers.
    SignedBits {
        /// The integer type the bits are read as.
        bits: DType,
        /// `b` is flipped when below this.
        below: i128,
        /// What it is xor-ed with.
        flip: i128,
    },
}

impl KeyFn {
    /// The same function (constants compared by their bits, so NaNs match).
    pub fn same(&self, other: &KeyFn) -> bool {
        match (self, other) {
            (KeyFn::Identity, KeyFn::Identity) => true,
            (
                KeyFn::SignedBits {
                    bits: d,
                    below: a,
                    flip: b,
                },
                KeyFn::SignedBits {
                    bits: e,
                    below: x,
                    flip: y,
                },
            ) => (d, a, b) == (e, x, y),
            (
                KeyFn::Canonical {
                    nan: a,
                    zero_match: b,
                    zero: c,
                },
                KeyFn::Canonical {
                    nan: x,
                    zero_match: y,
                    zero: z,
                },
            ) => [a, b, c]
                .iter()
                .zip([x, y, z])
                .all(|(p, q)| p.to_bits() == q.to_bits()),
            _ => false,
        }
    }

    fn apply(self, x: f64) -> f64 {
        match self {
            KeyFn::Identity | KeyFn::SignedBits { .. } => x,
            KeyFn::Canonical {
                nan,
                zero_match,
                zero,
            } => {
                if x.is_nan() {
                    nan
                } else if x == zero_match {
                    zero
                } else {
                    x
                }
            }
        }
    }
}

/// A comparator that is `compare(key(a_k), key(b_k)), direction, type` for operand `k`.
#[derive(Clone, Copy, Debug)]
pub struct SortKey {
    /// The operand whose elements are compared.
    pub operand: usize,
    /// The comparison's direction.
    pub direction: CompareDirection,
    /// `type=TOTALORDER` on a float operand.
    pub total_order: bool,
    /// What is applied to each element before comparing.
    pub key: KeyFn,
    /// A second key that decides when this one does not: where `compare(a, b)` and
    /// `compare(b, a)` give the same answer (neither is before the other), the comparator
    /// answers with the tie-break's comparison — XLA's TopK decomposition, sorting by value
    /// and then by index.
    pub then: Option<TieBreak>,
}

/// The second key of a [`SortKey`]: a comparison of one operand's (keyed) elements.
#[derive(Clone, Copy, Debug)]
pub struct TieBreak {
    /// The operand whose elements are compared.
    pub operand: usize,
    /// The comparison's direction.
    pub direction: CompareDirection,
    /// `type=TOTALORDER` on a float operand.
    pub total_order: bool,
    /// What is applied to each element before comparing.
    pub key: KeyFn,
}

impl TieBreak {
    /// The tie-break as a key of its own.
    pub(crate) fn as_key(&self) -> SortKey {
        SortKey {
            operand: self.operand,
            direction: self.direction,
            total_order: self.total_order,
            key: self.key,
            then: None,
        }
    }
}

/// The keys a recognised comparator compares, one per element of the keyed operand, in
/// the type the region compares them in.
pub(crate) enum Keys {
    /// Floats under `type=TOTALORDER`, as [`total_key`]s.
    Total(Vec<i64>),
    /// Floats under the default comparison (NaN unordered).
    Float(Vec<f64>),
    /// Integers, and float bits read as integers.
    Int(Vec<i128>),
}

impl Keys {
    /// The keys of every element of `t` (the keyed operand), in row-major order.
    pub(crate) fn of(t: &Tensor, key: &SortKey) -> Keys {
        match key.key {
            KeyFn::SignedBits { bits, below, flip } => {
                let ints = super::bitcast_convert(t, bits, t.dims());
                Keys::Int(crate::with_tensor!(&ints, a => a
                    .iter()
                    .map(|x| {
                        let b = x.to_i128();
                        if b < below { flip ^ b } else { b }
                    })
                    .collect()))
            }
            _ if t.dtype().is_float() => {
                let vals = t.to_f64_vec().into_iter().map(|x| key.key.apply(x));
                if key.total_order {
                    Keys::Total(vals.map(total_key).collect())
                } else {
                    Keys::Float(vals.collect())
                }
            }
            _ => Keys::Int(crate::with_tensor!(t, a => a.iter().map(|x| x.to_i128()).collect())),
        }
    }

    /// `dir.test(key[a], key[b])`: what the comparator answers for elements `a`, `b`.
    pub(crate) fn test(&self, dir: CompareDirection, a: usize, b: usize) -> bool {
        match self {
            Keys::Total(k) => dir.test(k[a], k[b]),
            Keys::Float(k) => dir.test(k[a], k[b]),
            Keys::Int(k) => dir.test(k[a], k[b]),
        }
    }
}

/// `sort` with a recognised single-key comparator: the stable merge sort of [`sort`],
/// comparing keys computed once per element exactly as the compare kernel would compare
/// the region's values — the same order as interpreting the region.
pub fn sort_by_key(ts: &[&Tensor], dim: usize, key: &SortKey) -> Vec<Tensor> {
    let keys = Keys::of(ts[key.operand], key);
    match key.then {
        None => sort_rows(ts, dim, &mut |a, b| keys.test(key.direction, a, b)),
        Some(t) => {
            let second = Keys::of(ts[t.operand], &t.as_key());
            sort_rows(ts, dim, &mut |a, b| {
                let first = keys.test(key.direction, a, b);
                if first == keys.test(key.direction, b, a) {
                    second.test(t.direction, a, b)
                } else {
                    first
                }
            })
        }
    }
}

/// Sorts every row of `ts` along `dim` with `less` over flat element offsets, and moves
/// every operand's elements into the row's order.
fn sort_rows(
    ts: &[&Tensor],
    dim: usize,
    less: &mut dyn FnMut(usize, usize) -> bool,
) -> Vec<Tensor> {
    let dims = ts[0].dims().to_vec();
    let mut results: Vec<Tensor> = ts.iter().map(|t| (*t).clone()).collect();
    if dims.contains(&0) {
        return results;
    }
    let n = dims[dim];
    let str_ = strides(&dims);
    let mut outer_dims = dims.clone();
    outer_dims[dim] = 1;
    let mut idx = vec![0usize; dims.len()];
    let mut order: Vec<usize> = Vec::with_capacity(n);
    loop {
        let base: usize = idx.iter().zip(&str_).map(|(a, b)| a * b).sum();
        order.clear();
        order.extend((0..n).map(|i| base + i * str_[dim]));
        merge_sort(&mut order, less);
        for (r, t) in results.iter_mut().zip(ts) {
            move_elements(
                r,
                t,
                (0..n)
                    .map(|i| base + i * str_[dim])
                    .zip(order.iter().copied()),
            );
        }
        if !next_index(&mut idx, &outer_dims) {
            break;
        }
    }
    results
}

/// `dst[d] = src[s]` for every `(d, s)` (same dtype, standard layouts).
fn move_elements(dst: &mut Tensor, src: &Tensor, pairs: impl Iterator<Item = (usize, usize)>) {
    macro_rules! m {
        ($($x:ident),*) => {
            match (dst, src) {
                $((Tensor::$x(d), Tensor::$x(s)) => {
                    let d = d.as_slice_mut().expect("standard layout");
                    let s = s.as_slice().expect("standard layout");
                    for (i, j) in pairs {
                        d[i] = s[j];
                    }
                })*
                _ => unreachable!("sort results have their operands' dtypes"),
            }
        };
    }
    crate::every_variant!(m)
}

/// The first `k` elements along the last axis of `t` in the strict order `key` gives
/// (ties by the lower index), and their indices along that axis (`s32`): the first `k` of
/// the stable sort, found without sorting the rest.
pub fn top_k(t: &Tensor, k: usize, key: &SortKey) -> (Tensor, Tensor) {
    let dims = t.dims().to_vec();
    let n = *dims.last().expect("top-k operands have rank 1 or more");
    let mut out_dims = dims.clone();
    *out_dims.last_mut().expect("rank 1 or more") = k;
    let keys = Keys::of(t, key);
    let picks = first_k(t.len(), n, k, |a, b| keys.test(key.direction, a, b));
    let mut values = Tensor::zeros(t.dtype(), &out_dims);
    move_elements(&mut values, t, picks.iter().copied().enumerate());
    let indices: Vec<i32> = picks.iter().map(|&p| (p % n.max(1)) as i32).collect();
    let indices = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&out_dims), indices)
        .expect("top-k index count");
    (values, Tensor::S32(indices))
}

/// Flat offsets of the first `k` of every row of `n` of `len` elements, in order: `a`
/// before `b` when `less(a, b)`, else `b` before `a` when `less(b, a)`, else the lower
/// offset.
fn first_k(len: usize, n: usize, k: usize, less: impl Fn(usize, usize) -> bool) -> Vec<usize> {
    let before = |&a: &usize, &b: &usize| {
        if less(a, b) {
            std::cmp::Ordering::Less
        } else if less(b, a) {
            std::cmp::Ordering::Greater
        } else {
            a.cmp(&b)
        }
    };
    let mut picks = Vec::with_capacity(len / n.max(1) * k);
    if n == 0 || k == 0 {
        return picks;
    }
    let mut row: Vec<usize> = Vec::with_capacity(n);
    for start in (0..len).step_by(n) {
        row.clear();
        row.extend(start..start + n);
        if k < n {
            row.select_nth_unstable_by(k - 1, before);
            row.truncate(k);
        }
        row.sort_unstable_by(before);
        picks.extend_from_slice(&row);
    }
    picks
}
