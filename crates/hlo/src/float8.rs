//! The FP8 element types, `f8e4m3fn` and `f8e5m2`, stored as their raw bits.
//!
//! Like f16 and bf16 they are computed in f32 and rounded on store — through f16, as
//! XLA:CPU computes FP8 operations in f16 ([`F8E4M3FN::from_f32_via_f16`]). Rounding follows
//! XLA's `convert`: to nearest, ties to even, subnormals kept; a magnitude past the largest
//! finite value (by at least half its spacing) overflows — to infinity in `f8e5m2`, and
//! to NaN in `f8e4m3fn`, which has no infinity (no saturation: that is what XLA:CPU and
//! ml_dtypes do, checked by the `float8` fixture). Every NaN becomes the format's NaN
//! (`S.1111.111` and `S.11111.10`), keeping its sign.

use std::fmt;

/// The layout of an 8-bit float format.
struct Format {
    /// Mantissa bits.
    mantissa: u32,
    /// Exponent bias.
    bias: i32,
    /// The largest finite code (of the positive half).
    max_code: u8,
    /// The code of +NaN.
    nan: u8,
    /// The code of +infinity, if the format has one.
    infinity: Option<u8>,
}

const E4M3FN: Format = Format {
    mantissa: 3,
    bias: 7,
    max_code: 0x7e,
    nan: 0x7f,
    infinity: None,
};

const E5M2: Format = Format {
    mantissa: 2,
    bias: 15,
    max_code: 0x7b,
    nan: 0x7e,
    infinity: Some(0x7c),
};

impl Format {
    fn decode(&self, bits: u8) -> f32 {
        let sign = if bits & 0x80 != 0 { -1.0f64 } else { 1.0 };
        let code = bits & 0x7f;
        if code > self.max_code {
            return match self.infinity {
                Some(inf) if code == inf => (sign * f64::INFINITY) as f32,
                _ => f32::NAN.copysign(sign as f32),
            };
        }
        let e = (code >> self.mantissa) as i32;
        let f = (code & ((1 << self.mantissa) - 1)) as f64;
        let scale = 2f64.powi(1 - self.bias - self.mantissa as i32);
        let v = if e == 0 {
            f * scale
        } else {
            (f + (1u32 << self.mantissa) as f64) * scale * 2f64.powi(e - 1)
        };
        (sign * v) as f32
    }

    fn encode(&self, x: f64) -> u8 {
        let sign = if x.is_sign_negative() { 0x80 } else { 0 };
        if x.is_nan() {
            return sign | self.nan;
        }
        let overflow = sign | self.infinity.unwrap_or(self.nan);
        if x.is_infinite() {
            return overflow;
        }
        let a = x.abs();
        let m = self.mantissa as i32;
        let min_normal_exp = 1 - self.bias;
        // the exponent of `a` (its binade), at least the smallest normal one
        let exp = if a == 0.0 {
            min_normal_exp
        } else {
            ((a.to_bits() >> 52) as i32 - 1023).max(min_normal_exp)
        };
        // `a` in units of the spacing of its binade, rounded to even; the code is that
        // count plus the binade's offset (the codes of one sign are in value order, and a
        // count that reaches the next binade carries into the exponent)
        let units = (a * 2f64.powi(m - exp)).round_ties_even();
        let code = (exp - min_normal_exp) as f64 * (1u64 << m) as f64 + units;
        if code > self.max_code as f64 {
            return overflow;
        }
        sign | code as u8
    }
}

macro_rules! float8 {
    ($name:ident, $format:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
        pub struct $name(pub u8);

        impl $name {
            /// Rounds to the nearest value of the format (ties to even).
            pub fn from_f64(x: f64) -> $name {
                $name($format.encode(x))
            }

            /// Rounds an f32 to the nearest value of the format (ties to even).
            pub fn from_f32(x: f32) -> $name {
                $name::from_f64(x as f64)
            }

            /// Rounds the f32 result of an operation on this format: through f16, since
            /// XLA:CPU computes FP8 operations in f16 (its optimised modules convert to f16,
            /// operate, convert back) — a sum can round differently than directly.
            /// `convert` rounds directly ([`Self::from_f32`]).
            pub fn from_f32_via_f16(x: f32) -> $name {
                $name::from_f32(crate::tensor::F16::from_f32(x).to_f32())
            }

            /// The exact f32 value.
            pub fn to_f32(self) -> f32 {
                $format.decode(self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.to_f32())
            }
        }
    };
}

float8!(
    F8E4M3FN,
    E4M3FN,
    "`f8e4m3fn`: 4 exponent bits (bias 7), 3 mantissa bits, no infinity, stored as raw bits."
);
float8!(
    F8E5M2,
    E5M2,
    "`f8e5m2`: 5 exponent bits (bias 15), 2 mantissa bits, IEEE-like, stored as raw bits."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_values_are_ordered() {
        for (format, max) in [(&E4M3FN, 448.0f32), (&E5M2, 57344.0)] {
            let mut last = -1.0f32;
            for code in 0..=format.max_code {
                let v = format.decode(code);
                assert!(v > last || code == 0, "{code:#x}: {v} after {last}");
                assert_eq!(format.encode(v as f64), code, "{v}");
                assert_eq!(format.encode(-v as f64), code | 0x80, "{v}");
                last = v;
            }
            assert_eq!(last, max);
        }
        assert!(F8E4M3FN::from_f32(500.0).to_f32().is_nan());
        assert_eq!(F8E4M3FN::from_f32(464.0).to_f32(), 448.0); // a tie, to the even 448
        assert_eq!(F8E4M3FN::from_f32(f32::INFINITY).0, 0x7f);
        assert_eq!(F8E5M2::from_f32(1e6).to_f32(), f32::INFINITY);
        assert_eq!(F8E5M2::from_f32(61440.0).to_f32(), f32::INFINITY); // tie, to even
        assert_eq!(F8E4M3FN::from_f32(2f32.powi(-10)).to_f32(), 0.0); // half the least
        assert_eq!(
            F8E4M3FN::from_f32(3.0 * 2f32.powi(-10)).to_f32(),
            2f32.powi(-8)
        );
        assert_eq!(F8E4M3FN::from_f32(0.0012).to_f32(), 0.001953125);
        assert_eq!(F8E5M2::from_f32(0.0012).to_f32(), 0.0012207031);
    }
}
