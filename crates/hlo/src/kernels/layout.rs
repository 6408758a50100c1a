//! Index arithmetic and element access the kernels share.

use crate::tensor::{Elem, Tensor};
use crate::{map_tensor, with_tensor};
use ndarray::ArrayD;

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

pub(crate) fn std_owned<T: Elem>(a: ArrayD<T>) -> ArrayD<T> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

/// `t` in standard layout (a copy only when it is not), for flat element access.
pub(crate) fn standard_tensor(t: &Tensor) -> std::borrow::Cow<'_, Tensor> {
    if with_tensor!(t, a => a.is_standard_layout()) {
        std::borrow::Cow::Borrowed(t)
    } else {
        std::borrow::Cow::Owned(map_tensor!(t, a => a.as_standard_layout().into_owned()))
    }
}

/// Reads an integer tensor's elements as i64.
pub(crate) fn to_i64_vec(t: &Tensor) -> Vec<i64> {
    with_tensor!(t, a => a.iter().map(|v| v.to_i128() as i64).collect())
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
    crate::every_variant!(s)
}
