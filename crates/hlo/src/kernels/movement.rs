//! Data movement: reshape, transpose, broadcast, slices, dynamic slices and updates,
//! concatenate, reverse, iota, pad.

use super::layout::*;
use crate::tensor::{Elem, Tensor};
use crate::{make_tensor, map_tensor};
use ndarray::{ArrayD, Axis, IxDyn, Slice};
use statetensor_core::DType;

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
/// operand does not vary along it (walking a broadcast view element by element through
/// dynamic indices is many times slower).
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
    crate::every_variant!(dus)
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
    crate::every_variant!(cat)
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
    // nothing is built along the iota dimension when the shape holds no elements: its
    // length alone may be anything (`f32[1000000000000,0]`)
    let total = if dims.contains(&0) {
        0
    } else {
        outer * dims[dim] * inner
    };
    make_tensor!(dtype, T => {
        let mut v = Vec::with_capacity(total);
        if total > 0 {
            for _ in 0..outer {
                for i in 0..dims[dim] {
                    let x = if T::DTYPE.is_float() { T::from_f64(i as f64) } else { T::from_i128(i as i128) };
                    v.extend(std::iter::repeat_n(x, inner));
                }
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
    crate::every_variant!(padk)
}
