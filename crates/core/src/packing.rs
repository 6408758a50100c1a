//! Sub-byte packing: how int4 tensors sit on the device and on the wire.
//!
//! XLA packs `s4`/`u4` two to a byte, the first element in the low nibble and the second in
//! the high one (`xla/packing.cc`); an odd count leaves the last high nibble zero. Files
//! that have no int4 type hold one value per byte instead — NumPy's `ml_dtypes.int4` keeps
//! the value in the low nibble, safetensors has no int4 dtype and statetensor writes int4
//! state there as `I8`/`U8` — so these helpers convert between the two, checking ranges.

use crate::{DType, Error, Result};

/// Packs one value per byte (low nibble significant, as `ml_dtypes` stores them) into two
/// per byte; `out` must hold `values.len().div_ceil(2)` bytes.
pub fn pack_nibbles(values: &[u8], out: &mut [u8]) {
    assert_eq!(
        out.len(),
        values.len().div_ceil(2),
        "pack_nibbles: output size"
    );
    for (o, pair) in out.iter_mut().zip(values.chunks(2)) {
        let hi = pair.get(1).map_or(0, |&v| v & 0xf);
        *o = (pair[0] & 0xf) | (hi << 4);
    }
}

/// Unpacks `out.len()` int4 values from two-per-byte `packed` bytes into one per byte:
/// sign-extended for `s4` (so `-1` is `0xff`, an `i8`), zero-extended for `u4`.
pub fn unpack_nibbles(dtype: DType, packed: &[u8], out: &mut [u8]) {
    assert_eq!(
        packed.len(),
        out.len().div_ceil(2),
        "unpack_nibbles: input size"
    );
    let signed = dtype.is_signed_int();
    for (i, o) in out.iter_mut().enumerate() {
        let nib = (packed[i / 2] >> (4 * (i % 2))) & 0xf;
        *o = if signed && nib & 0x8 != 0 {
            nib | 0xf0
        } else {
            nib
        };
    }
}

/// Checks that one-value-per-byte data (an `I8`/`U8` tensor standing for `dtype`, `s4` or
/// `u4`) fits in four bits: -8..=7 or 0..=15. `ml_dtypes` bytes (the value's low nibble,
/// high nibble zero) are accepted too when `nibble_bytes` is set. `first` is the element
/// number of `values[0]`, for the message.
pub fn check_int4_values(
    dtype: DType,
    values: &[u8],
    first: usize,
    nibble_bytes: bool,
    what: &str,
) -> Result<()> {
    let fits = |b: u8| match dtype {
        DType::S4 => (-8..=7).contains(&(b as i8)) || (nibble_bytes && b <= 0xf),
        _ => b <= 0xf,
    };
    match values.iter().position(|&b| !fits(b)) {
        None => Ok(()),
        Some(i) => {
            let v = if dtype == DType::S4 {
                (values[i] as i8).to_string()
            } else {
                values[i].to_string()
            };
            let range = if dtype == DType::S4 {
                "-8..=7"
            } else {
                "0..=15"
            };
            Err(Error::invalid_input(
                what,
                format!(
                    "element {} is {v}, outside {dtype}'s range {range}",
                    first + i
                ),
            ))
        }
    }
}

/// Streams `count` int4 values of `dtype` out one per byte, in bounded chunks: `read_packed`
/// fills packed bytes from a byte offset of the packed image, `write` takes the values.
pub fn stream_unpacked(
    dtype: DType,
    count: usize,
    chunk: usize,
    mut read_packed: impl FnMut(usize, &mut [u8]) -> Result<()>,
    mut write: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut packed = vec![0u8; chunk.min(count.div_ceil(2)).max(1)];
    let mut values = vec![0u8; 2 * packed.len()];
    let mut done = 0;
    while done < count {
        let n = (count - done).min(values.len());
        let bytes = n.div_ceil(2);
        read_packed(done / 2, &mut packed[..bytes])?;
        unpack_nibbles(dtype, &packed[..bytes], &mut values[..n]);
        write(&values[..n])?;
        done += n;
    }
    Ok(())
}

/// Streams `count` int4 values of `dtype` in, one per byte, in bounded chunks: `read` fills
/// values (from element `done` on), each is range-checked (`nibble_bytes` as in
/// [`check_int4_values`]), and `write_packed` takes packed bytes at a byte offset.
pub fn stream_packed(
    dtype: DType,
    count: usize,
    chunk: usize,
    nibble_bytes: bool,
    what: &str,
    mut read: impl FnMut(usize, &mut [u8]) -> Result<()>,
    mut write_packed: impl FnMut(usize, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut values = vec![0u8; (2 * chunk).min(count.max(2)).next_multiple_of(2)];
    let mut packed = vec![0u8; values.len() / 2];
    let mut done = 0;
    while done < count {
        let n = (count - done).min(values.len());
        read(done, &mut values[..n])?;
        check_int4_values(dtype, &values[..n], done, nibble_bytes, what)?;
        let bytes = n.div_ceil(2);
        pack_nibbles(&values[..n], &mut packed[..bytes]);
        write_packed(done / 2, &packed[..bytes])?;
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_low_nibble_first_as_xla() {
        let mut out = [0u8; 2];
        pack_nibbles(&[0x1, 0xe, 0x7], &mut out);
        assert_eq!(out, [0xe1, 0x07]);
        let mut back = [0u8; 3];
        unpack_nibbles(DType::S4, &out, &mut back);
        assert_eq!(back, [1, (-2i8) as u8, 7]);
        unpack_nibbles(DType::U4, &out, &mut back);
        assert_eq!(back, [1, 14, 7]);
    }

    #[test]
    fn range_checks_name_the_element() {
        assert!(check_int4_values(DType::S4, &[7, (-8i8) as u8], 0, false, "t").is_ok());
        let e = check_int4_values(DType::S4, &[0, 8], 0, false, "t").unwrap_err();
        assert!(e.to_string().contains("element 1 is 8"), "{e}");
        let e = check_int4_values(DType::U4, &[1, 16], 1 << 20, false, "t").unwrap_err();
        assert!(e.to_string().contains("element 1048577 is 16"), "{e}");
        assert!(check_int4_values(DType::S4, &[0x0e], 0, true, "t").is_ok());
        assert!(check_int4_values(DType::U4, &[16], 0, false, "t").is_err());
    }
}
