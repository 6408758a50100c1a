//! The int4 element types, `s4` and `u4`, one value per byte while the engine computes.
//!
//! XLA stores an int4 literal one value per byte and packs two to a byte on the device; the
//! engine does the same: a tensor's elements are [`I4`]/[`U4`] (a byte holding the value,
//! sign-extended for `s4`), and its byte image — what crosses to the device, to files and
//! to the caller — is packed, the first element in the low nibble
//! ([`statetensor_core::packing`]). Arithmetic wraps modulo 16 as XLA's does (`s4` 7 + 1 is
//! -8), and the bit operations see four bits: `clz` and the logical right shift of a
//! negative `s4` count only its low nibble (`popcnt` alone sees the sign-extended byte, as
//! XLA:CPU computes it — checked by the `int4_ops` fixture).

use std::fmt;

/// A signed 4-bit integer (-8..=7), held sign-extended in an `i8`.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct I4(i8);

/// An unsigned 4-bit integer (0..=15), held in a `u8`.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct U4(u8);

impl I4 {
    /// The value whose low four bits are `v`'s (two's complement wrap).
    pub const fn wrap(v: i64) -> I4 {
        I4((((v as u8) << 4) as i8) >> 4)
    }
    /// The value, -8..=7.
    pub const fn get(self) -> i8 {
        self.0
    }
    /// The four bits, 0..=15.
    pub const fn bits(self) -> u8 {
        self.0 as u8 & 0xf
    }
}

impl U4 {
    /// The value whose low four bits are `v`'s.
    pub const fn wrap(v: i64) -> U4 {
        U4(v as u8 & 0xf)
    }
    /// The value, 0..=15.
    pub const fn get(self) -> u8 {
        self.0
    }
    /// The four bits, 0..=15.
    pub const fn bits(self) -> u8 {
        self.0
    }
}

impl fmt::Debug for I4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for U4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_modulo_16() {
        assert_eq!(I4::wrap(7).get(), 7);
        assert_eq!(I4::wrap(8).get(), -8);
        assert_eq!(I4::wrap(-9).get(), 7);
        assert_eq!(I4::wrap(-2).bits(), 0xe);
        assert_eq!(U4::wrap(17).get(), 1);
        assert_eq!(U4::wrap(-1).get(), 15);
    }
}
