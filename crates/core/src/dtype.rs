//! Element types, named as HLO names them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An element type of a tensor, with HLO's spelling (`f32`, `bf16`, `pred`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// Boolean, one byte per element.
    Pred,
    /// Signed 4-bit integer (-8..=7): int4 weights. Packed two to a byte on the device and
    /// on the wire, the first element in the low nibble (XLA's packing); one per byte while
    /// the engine computes on it.
    S4,
    /// Signed 8-bit integer.
    S8,
    /// Signed 16-bit integer.
    S16,
    /// Signed 32-bit integer.
    S32,
    /// Signed 64-bit integer.
    S64,
    /// Unsigned 4-bit integer (0..=15), packed as [`DType::S4`].
    U4,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// IEEE half precision.
    F16,
    /// bfloat16 (the upper half of an f32).
    BF16,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
    /// 8-bit float with 4 exponent and 3 mantissa bits, finite only (no infinity; NaN is
    /// `S.1111.111`; largest 448): the FP8 format trn2 and H100 compute in.
    F8E4M3FN,
    /// 8-bit float with 5 exponent and 2 mantissa bits, IEEE-like (infinities and NaNs;
    /// largest 57,344): FP8 for gradients.
    F8E5M2,
}

impl DType {
    /// Every dtype, in a stable order.
    pub const ALL: [DType; 17] = [
        DType::Pred,
        DType::S4,
        DType::S8,
        DType::S16,
        DType::S32,
        DType::S64,
        DType::U4,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
        DType::F8E4M3FN,
        DType::F8E5M2,
    ];

    /// Bytes one element takes while the engine computes on it (an int4 element takes a
    /// whole byte there, as in an XLA literal). The size of a tensor on the device and on
    /// the wire is [`DType::packed_bytes`].
    pub const fn size_bytes(self) -> usize {
        match self {
            DType::Pred
            | DType::S4
            | DType::U4
            | DType::S8
            | DType::U8
            | DType::F8E4M3FN
            | DType::F8E5M2 => 1,
            DType::S16 | DType::U16 | DType::F16 | DType::BF16 => 2,
            DType::S32 | DType::U32 | DType::F32 => 4,
            DType::S64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// The HLO spelling (`f32`, `pred`, ...).
    pub const fn hlo_name(self) -> &'static str {
        match self {
            DType::Pred => "pred",
            DType::S4 => "s4",
            DType::U4 => "u4",
            DType::S8 => "s8",
            DType::S16 => "s16",
            DType::S32 => "s32",
            DType::S64 => "s64",
            DType::U8 => "u8",
            DType::U16 => "u16",
            DType::U32 => "u32",
            DType::U64 => "u64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::F8E4M3FN => "f8e4m3fn",
            DType::F8E5M2 => "f8e5m2",
        }
    }

    /// Parses HLO's spelling; `None` for anything else.
    pub fn from_hlo_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.hlo_name() == name)
    }

    /// A floating-point type.
    pub const fn is_float(self) -> bool {
        matches!(
            self,
            DType::F16 | DType::BF16 | DType::F32 | DType::F64 | DType::F8E4M3FN | DType::F8E5M2
        )
    }

    /// A signed integer type.
    pub const fn is_signed_int(self) -> bool {
        matches!(
            self,
            DType::S4 | DType::S8 | DType::S16 | DType::S32 | DType::S64
        )
    }

    /// An unsigned integer type.
    pub const fn is_unsigned_int(self) -> bool {
        matches!(
            self,
            DType::U4 | DType::U8 | DType::U16 | DType::U32 | DType::U64
        )
    }

    /// Any integer type (not pred).
    pub const fn is_int(self) -> bool {
        self.is_signed_int() || self.is_unsigned_int()
    }

    /// Bit width of one element (pred counts as 8, as stored; int4 as 4).
    pub const fn bits(self) -> u32 {
        match self {
            DType::S4 | DType::U4 => 4,
            _ => (self.size_bytes() * 8) as u32,
        }
    }

    /// True for the sub-byte types, stored packed on the device and on the wire.
    pub const fn is_packed(self) -> bool {
        self.bits() < 8
    }

    /// Bytes `count` elements take on the device and on the wire: `count * size_bytes()`,
    /// except the int4 types, two to a byte (an odd count rounds up, as XLA's packing
    /// does); saturates instead of overflowing.
    pub const fn packed_bytes(self, count: usize) -> usize {
        if self.is_packed() {
            count.div_ceil(8 / self.bits() as usize)
        } else {
            count.saturating_mul(self.size_bytes())
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hlo_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_hlo_name(d.hlo_name()), Some(d));
        }
        assert_eq!(DType::from_hlo_name("f8e4m3"), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(DType::BF16.size_bytes(), 2);
        assert_eq!(DType::Pred.size_bytes(), 1);
        assert_eq!(DType::U64.size_bytes(), 8);
        assert_eq!(DType::S4.bits(), 4);
        assert_eq!(DType::U4.packed_bytes(5), 3);
        assert_eq!(DType::S4.packed_bytes(4), 2);
        assert_eq!(DType::F32.packed_bytes(3), 12);
        assert_eq!(DType::F32.packed_bytes(usize::MAX), usize::MAX);
    }
}
