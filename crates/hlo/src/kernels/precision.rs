//! `reduce-precision`: a float rounded to a narrower format and kept in its own type, as
//! XLA computes it (what mixed-precision emulation and quantisation-aware code emit).
//!
//! The mantissa is rounded to `mantissa_bits` to nearest, ties to even (a carry may bump
//! the exponent); then, when `exponent_bits` is narrower than the type's, a magnitude above
//! the narrow format's largest exponent becomes infinity and one at or below its smallest
//! normal exponent becomes zero (the narrow format has no subnormals), both keeping the
//! sign. A NaN stays the NaN it was, payload and all (checked against XLA:CPU over random
//! bit patterns and every special value, including `mantissa_bits=0`). Widths at least the
//! type's leave that part unchanged.

use crate::tensor::{Tensor, BF16, F16};
use statetensor_core::DType;

/// Bit layout of a float type: (total bits, exponent bits, mantissa bits).
fn layout(d: DType) -> (u32, u32, u32) {
    match d {
        DType::F16 => (16, 5, 10),
        DType::BF16 => (16, 8, 7),
        DType::F32 => (32, 8, 23),
        DType::F64 => (64, 11, 52),
        other => unreachable!("reduce-precision of {other} is refused by the planner"),
    }
}

/// The rounding on a bit pattern of a type laid out as `(bits, exp, mant)`.
fn reduce_bits(
    x: u64,
    (bits, exp, mant): (u32, u32, u32),
    exponent_bits: u32,
    mantissa_bits: u32,
) -> u64 {
    let all = u64::MAX >> (64 - bits);
    let exponent_mask = ((1u64 << exp) - 1) << mant;
    let is_nan = x & exponent_mask == exponent_mask && x & ((1u64 << mant) - 1) != 0;
    if is_nan {
        return x;
    }
    let mut y = x;
    if mantissa_bits < mant {
        let dropped = mant - mantissa_bits;
        let last_kept = 1u64 << dropped;
        let odd = (y & last_kept) >> dropped;
        let bias = (last_kept >> 1) - 1 + odd;
        y = (y.wrapping_add(bias) & all) & !(last_kept - 1);
    }
    if exponent_bits < exp {
        let sign = y & (1u64 << (bits - 1));
        let bias = (1u64 << (exp - 1)) - 1;
        let narrow_bias = (1u64 << (exponent_bits - 1)) - 1;
        let exponent = y & exponent_mask;
        if exponent > (bias + narrow_bias) << mant {
            y = sign | exponent_mask;
        } else if exponent <= (bias - narrow_bias) << mant {
            y = sign;
        }
    }
    y
}

/// `reduce-precision(t), exponent_bits=e, mantissa_bits=m` on a float tensor (the planner
/// has checked the type and that `e >= 1`).
pub fn reduce_precision(t: &Tensor, exponent_bits: u32, mantissa_bits: u32) -> Tensor {
    let l = layout(t.dtype());
    let f = |x: u64| reduce_bits(x, l, exponent_bits, mantissa_bits);
    match t {
        Tensor::F32(a) => Tensor::F32(a.mapv(|v| f32::from_bits(f(v.to_bits() as u64) as u32))),
        Tensor::F64(a) => Tensor::F64(a.mapv(|v| f64::from_bits(f(v.to_bits())))),
        Tensor::F16(a) => Tensor::F16(a.mapv(|v| F16(f(v.0 as u64) as u16))),
        Tensor::BF16(a) => Tensor::BF16(a.mapv(|v| BF16(f(v.0 as u64) as u16))),
        other => unreachable!(
            "reduce-precision of {} is refused by the planner",
            other.dtype()
        ),
    }
}
