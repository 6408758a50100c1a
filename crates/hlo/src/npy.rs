//! `.npy` files, streamed: a tensor is read straight into its buffer and written straight
//! from it in bounded chunks, so a 512 MiB state never needs a second full host copy.
//!
//! Supported: little-endian C-order f64 f32 f16 i64 i32 i16 i8 u64 u32 u16 u8 bool, and the
//! `ml_dtypes` types as NumPy saves them: bf16 as 2-byte void (`<V2`), float8_e5m2 as `<f1`,
//! and float8_e4m3fn, int4 and uint4 all as 1-byte void (`<V1`) — which of the three a `<V1`
//! file holds only the reader can say ([`NpyHeader::reads_as`]; without a hint it is
//! float8_e4m3fn). int4 files hold one value per byte (in the low nibble, as `ml_dtypes`
//! stores it); the tensor packs them. Format versions 1.0, 2.0 and 3.0.

use crate::tensor::Tensor;
use statetensor_core::{DType, Error, HostTensor, Result, TensorSpec};
use std::io::{Read, Write};

/// Chunk size for streaming.
const CHUNK: usize = 1 << 20;

/// The header of a `.npy` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type (`V2` maps to bf16, `V1` to f8e4m3fn unless [`NpyHeader::reads_as`]
    /// says otherwise).
    pub dtype: DType,
    /// Dimensions.
    pub dims: Vec<usize>,
    /// The header's `descr` as written.
    pub descr: String,
}

impl NpyHeader {
    /// True when the file can be read as `want`: its own dtype, or, for a 1-byte void file
    /// (`<V1`: what NumPy writes for `ml_dtypes`' float8_e4m3fn, int4 and uint4 alike), any
    /// of those three.
    pub fn reads_as(&self, want: DType) -> bool {
        self.dtype == want
            || (matches!(self.descr.as_str(), "<V1" | "|V1")
                && matches!(want, DType::F8E4M3FN | DType::S4 | DType::U4))
    }
}

fn bad(what: &str, msg: impl Into<String>) -> Error {
    Error::invalid_input(format!("read npy '{what}'"), msg.into())
}

fn descr_of(d: DType) -> &'static str {
    match d {
        DType::Pred => "|b1",
        DType::S8 => "|i1",
        DType::S16 => "<i2",
        DType::S32 => "<i4",
        DType::S64 => "<i8",
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::F16 => "<f2",
        DType::BF16 => "<V2",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        // what numpy writes for ml_dtypes' float8_e4m3fn, int4, uint4 and float8_e5m2
        DType::F8E4M3FN | DType::S4 | DType::U4 => "<V1",
        DType::F8E5M2 => "<f1",
    }
}

fn dtype_of(descr: &str) -> Option<DType> {
    Some(match descr {
        "|b1" | "<b1" | "b1" => DType::Pred,
        "|i1" | "<i1" | "i1" => DType::S8,
        "<i2" => DType::S16,
        "<i4" => DType::S32,
        "<i8" => DType::S64,
        "|u1" | "<u1" | "u1" => DType::U8,
        "<u2" => DType::U16,
        "<u4" => DType::U32,
        "<u8" => DType::U64,
        "<f2" => DType::F16,
        "<V2" | "|V2" => DType::BF16,
        "<f4" => DType::F32,
        "<f8" => DType::F64,
        "<V1" | "|V1" => DType::F8E4M3FN,
        "<f1" | "|f1" => DType::F8E5M2,
        _ => return None,
    })
}

/// Reads and parses the header; `what` names the source in errors.
pub fn read_header<R: Read + ?Sized>(r: &mut R, what: &str) -> Result<NpyHeader> {
    let io = |e: std::io::Error| Error::io("read npy", what, e);
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(|_| {
        bad(
            what,
            "file is shorter than an npy header (expected the magic '\\x93NUMPY')",
        )
    })?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err(bad(
            what,
            "not an npy file: expected the magic '\\x93NUMPY' at the start",
        ));
    }
    let len = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(io)?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(io)?;
            u32::from_le_bytes(b) as usize
        }
        v => {
            return Err(bad(
                what,
                format!("npy format version {v} is not supported (expected 1, 2 or 3)"),
            ))
        }
    };
    if len > 1 << 20 {
        return Err(bad(
            what,
            format!("npy header of {len} bytes is implausibly large"),
        ));
    }
    let mut h = vec![0u8; len];
    r.read_exact(&mut h)
        .map_err(|_| bad(what, "file ends inside the npy header"))?;
    let h = String::from_utf8_lossy(&h);
    let field = |key: &str| -> Option<String> {
        let at = h.find(&format!("'{key}'"))?;
        let rest = h[at + key.len() + 2..]
            .trim_start()
            .strip_prefix(':')?
            .trim_start();
        if let Some(r) = rest.strip_prefix('(') {
            Some(r[..r.find(')')?].to_string())
        } else if let Some(r) = rest.strip_prefix('\'') {
            Some(r[..r.find('\'')?].to_string())
        } else {
            Some(rest.split([',', '}']).next()?.trim().to_string())
        }
    };
    let descr = field("descr").ok_or_else(|| bad(what, "npy header has no 'descr'"))?;
    if field("fortran_order").as_deref() != Some("False") {
        return Err(bad(
            what,
            "Fortran-order arrays are not supported: save a C-order array (np.ascontiguousarray)",
        ));
    }
    let shape = field("shape").ok_or_else(|| bad(what, "npy header has no 'shape'"))?;
    let dims = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(what, format!("shape entry '{s}' is not a size")))
        })
        .collect::<Result<Vec<_>>>()?;
    let dtype = dtype_of(&descr).ok_or_else(|| {
        bad(
            what,
            format!("dtype '{descr}' is not supported: expected little-endian f8 f4 f2 i8 i4 i2 i1 u8 u4 u2 u1 b1, or an ml_dtypes type (V2 for bf16, f1 for float8_e5m2, V1 for float8_e4m3fn, int4 or uint4)"),
        )
    })?;
    if dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|n| n.checked_mul(dtype.size_bytes()))
        .is_none()
    {
        return Err(bad(what, format!("shape {dims:?} is too large")));
    }
    Ok(NpyHeader { dtype, dims, descr })
}

/// A buffered reader of an npy file.
pub type FileReader = std::io::BufReader<std::fs::File>;

/// Opens npy file `path` and reads its header, leaving the reader at the data; `context`
/// says what the file is for in the error when it cannot be opened.
pub fn open(path: &std::path::Path, context: &str) -> Result<(FileReader, NpyHeader)> {
    let what = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| Error::io(context, &what, e))?;
    let mut r = std::io::BufReader::with_capacity(CHUNK, f);
    let h = read_header(&mut r, &what)?;
    Ok((r, h))
}

/// The data after header `h`, read as a tensor of `dtype` (the header's, or one it
/// [`reads_as`](NpyHeader::reads_as): refused otherwise).
fn read_body<R: Read + ?Sized>(
    r: &mut R,
    h: &NpyHeader,
    dtype: DType,
    what: &str,
) -> Result<Tensor> {
    if !h.reads_as(dtype) {
        return Err(bad(
            what,
            format!(
                "the file holds {} ('{}'); expected {dtype}",
                h.dtype, h.descr
            ),
        ));
    }
    let mut t = Tensor::zeros(dtype, &h.dims);
    read_data_into(r, &mut t, what)?;
    Ok(t)
}

/// Reads a whole tensor, streaming the data into its buffer.
pub fn read<R: Read + ?Sized>(r: &mut R, what: &str) -> Result<Tensor> {
    let h = read_header(r, what)?;
    read_body(r, &h, h.dtype, what)
}

/// Reads a whole tensor of dtype `want` (which the file must hold: see
/// [`NpyHeader::reads_as`]), streaming the data into its buffer.
pub fn read_as<R: Read + ?Sized>(r: &mut R, want: DType, what: &str) -> Result<Tensor> {
    let h = read_header(r, what)?;
    read_body(r, &h, want, what)
}

/// One value of `spec` read from the data at `r` (after a header the caller has checked
/// against `spec`), as a host tensor.
pub fn read_host_value<R: Read + ?Sized>(
    r: &mut R,
    spec: &TensorSpec,
    what: &str,
) -> Result<HostTensor> {
    let mut t = Tensor::zeros(spec.dtype, spec.shape.dims());
    read_data_into(r, &mut t, what)?;
    HostTensor::new(spec.dtype, spec.shape.dims().to_vec(), t.to_le_bytes())
}

/// Streams the data part of an npy file (after [`read_header`]) into `t`.
pub fn read_data_into<R: Read + ?Sized>(r: &mut R, t: &mut Tensor, what: &str) -> Result<()> {
    if t.dtype().is_packed() {
        return read_int4_into(r, t, what);
    }
    let total = t.size_bytes();
    let mut buf = vec![0u8; CHUNK.min(total.max(1))];
    let mut off = 0;
    while off < total {
        let n = (total - off).min(buf.len());
        r.read_exact(&mut buf[..n]).map_err(|_| {
            bad(
                what,
                format!("file holds fewer data bytes than its header's {total}"),
            )
        })?;
        t.write_bytes(off, &buf[..n])?;
        off += n;
    }
    Ok(())
}

/// Reads int4 values one per byte (the value's low nibble, as `ml_dtypes` stores it, or the
/// value sign-extended), checks their range and packs them into `t`.
fn read_int4_into<R: Read + ?Sized>(r: &mut R, t: &mut Tensor, what: &str) -> Result<()> {
    let (count, dtype) = (t.len(), t.dtype());
    statetensor_core::packing::stream_packed(
        dtype,
        count,
        CHUNK,
        true,
        &format!("read npy '{what}'"),
        |_, values| {
            r.read_exact(values).map_err(|_| {
                bad(
                    what,
                    format!("file holds fewer data bytes than its header's {count}"),
                )
            })
        },
        |off, packed| t.write_bytes(off, packed),
    )
}

/// The header bytes for a tensor of `dtype` and `dims` (version 1.0, 64-byte aligned).
pub fn header_bytes(dtype: DType, dims: &[usize]) -> Vec<u8> {
    let shape = match dims.len() {
        0 => "()".to_string(),
        1 => format!("({},)", dims[0]),
        _ => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        descr_of(dtype)
    );
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes a tensor, streaming its data in chunks.
pub fn write<W: Write + ?Sized>(w: &mut W, t: &Tensor, what: &str) -> Result<()> {
    let io = |e: std::io::Error| Error::io("write npy", what, e);
    w.write_all(&header_bytes(t.dtype(), t.dims()))
        .map_err(io)?;
    if t.dtype().is_packed() {
        // one value per byte, in the low nibble, as ml_dtypes writes int4
        statetensor_core::packing::stream_unpacked(
            DType::U4,
            t.len(),
            CHUNK,
            |off, buf| t.read_bytes(off, buf),
            |values| w.write_all(values).map_err(io),
        )?;
        return w.flush().map_err(io);
    }
    let total = t.size_bytes();
    let mut buf = vec![0u8; CHUNK.min(total.max(1))];
    let mut off = 0;
    while off < total {
        let n = (total - off).min(buf.len());
        t.read_bytes(off, &mut buf[..n])?;
        w.write_all(&buf[..n]).map_err(io)?;
        off += n;
    }
    w.flush().map_err(io)
}

/// Reads a tensor from a file.
pub fn read_file(path: &std::path::Path) -> Result<Tensor> {
    let (mut r, h) = open(path, "open")?;
    read_body(&mut r, &h, h.dtype, &path.display().to_string())
}

/// Reads a tensor of dtype `want` from a file (see [`read_as`]).
pub fn read_file_as(path: &std::path::Path, want: DType) -> Result<Tensor> {
    let (mut r, h) = open(path, "open")?;
    read_body(&mut r, &h, want, &path.display().to_string())
}

/// Writes a tensor to a file.
pub fn write_file(path: &std::path::Path, t: &Tensor) -> Result<()> {
    let what = path.display().to_string();
    let f = std::fs::File::create(path).map_err(|e| Error::io("create", &what, e))?;
    write(&mut std::io::BufWriter::new(f), t, &what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_dtype() {
        for d in DType::ALL {
            let mut t = Tensor::zeros(d, &[2, 3]);
            let bytes: Vec<u8> = (0..t.size_bytes()).map(|i| (i * 7 % 251) as u8).collect();
            t.write_bytes(0, &bytes).unwrap();
            if d == DType::Pred {
                t = Tensor::from_le_bytes(d, &[2, 3], &[1, 0, 1, 1, 0, 0]).unwrap();
            }
            let mut buf = Vec::new();
            write(&mut buf, &t, "mem").unwrap();
            let data = if d.is_packed() {
                t.len()
            } else {
                t.size_bytes()
            };
            assert_eq!(buf.len() % 64, data % 64);
            let back = read_as(&mut buf.as_slice(), d, "mem").unwrap();
            assert_eq!(back, t, "{d}");
        }
    }

    #[test]
    fn int4_files_as_ml_dtypes_writes_them() {
        // np.save of np.array([1, -2, 7, -8], dtype=ml_dtypes.int4): '<V1', low nibbles
        let mut f = header_bytes(DType::S4, &[4]);
        assert!(String::from_utf8_lossy(&f).contains("'<V1'"));
        f.extend_from_slice(&[0x01, 0x0e, 0x07, 0x08]);
        let t = read_as(&mut f.as_slice(), DType::S4, "int4.npy").unwrap();
        assert_eq!(t.to_f64_vec(), [1.0, -2.0, 7.0, -8.0]);
        assert_eq!(t.to_le_bytes(), [0xe1, 0x87]);
        let u = read_as(&mut f.as_slice(), DType::U4, "uint4.npy").unwrap();
        assert_eq!(u.to_f64_vec(), [1.0, 14.0, 7.0, 8.0]);
        // without a hint a '<V1' file is float8_e4m3fn; f1 never reads as int4
        assert_eq!(
            read(&mut f.as_slice(), "x").unwrap().dtype(),
            DType::F8E4M3FN
        );
        let mut e5 = header_bytes(DType::F8E5M2, &[4]);
        e5.extend_from_slice(&[0; 4]);
        assert!(read_as(&mut e5.as_slice(), DType::S4, "e5.npy").is_err());
        // a byte that is no int4 value is refused, naming it
        let n = f.len();
        f[n - 1] = 0x1e;
        let e = read_as(&mut f.as_slice(), DType::S4, "bad.npy").unwrap_err();
        assert!(e.to_string().contains("element 3"), "{e}");
        let mut back = Vec::new();
        write(&mut back, &t, "mem").unwrap();
        assert!(back.ends_with(&[0x01, 0x0e, 0x07, 0x08]));
    }

    #[test]
    fn rejects_bad_files() {
        assert!(read(&mut &b"hello"[..], "x").is_err());
        let mut h = header_bytes(DType::F32, &[4]);
        h.extend_from_slice(&[0; 8]);
        let e = read(&mut h.as_slice(), "short.npy").unwrap_err();
        assert!(e.to_string().contains("fewer data bytes"), "{e}");
        let mut h = header_bytes(DType::F32, &[4]);
        let at = h.windows(3).position(|w| w == b"<f4").unwrap();
        h[at] = b'>';
        let e = read(&mut h.as_slice(), "be.npy").unwrap_err();
        assert!(e.to_string().contains(">f4"), "{e}");
    }
}
