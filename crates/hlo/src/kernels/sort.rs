//! `sort` with a comparator computation, stable.

use super::layout::*;
use crate::tensor::Tensor;
use statetensor_core::Result;

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
