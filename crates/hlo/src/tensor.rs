//! Tensors: row-major ndarray buffers of every HLO element type.
//!
//! Every [`Tensor`] is kept in standard (C) layout, so its bytes can be streamed to and from
//! files and device buffers without a reordering copy. f16, bf16 and the FP8 types are
//! stored as their raw bits ([`F16`], [`BF16`], [`F8E4M3FN`], [`F8E5M2`]) and computed in
//! f32, rounded to nearest-even on store, as XLA's CPU backend does. The int4 types hold one
//! value per element ([`I4`], [`U4`]); their byte image is packed two to a byte.

pub use crate::float8::{F8E4M3FN, F8E5M2};
pub use crate::int4::{I4, U4};
use ndarray::{ArrayD, IxDyn};
use statetensor_core::{DType, Error, Result, TensorSpec};
use std::fmt;

/// IEEE half precision, stored as raw bits.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct F16(pub u16);

/// bfloat16, stored as raw bits.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct BF16(pub u16);

impl F16 {
    /// Rounds an f32 to the nearest f16 (ties to even); NaN stays NaN.
    pub fn from_f32(x: f32) -> F16 {
        let b = x.to_bits();
        let sign = ((b >> 16) & 0x8000) as u16;
        let exp = ((b >> 23) & 0xff) as i32;
        let man = b & 0x7f_ffff;
        if exp == 0xff {
            let nan = if man != 0 {
                0x200 | (man >> 13) as u16
            } else {
                0
            };
            return F16(sign | 0x7c00 | nan);
        }
        let e = exp - 127 + 15;
        if e >= 0x1f {
            return F16(sign | 0x7c00);
        }
        if e <= 0 {
            let shift = (126 - exp) as u32;
            if shift > 25 {
                return F16(sign);
            }
            let m = man | 0x80_0000;
            let mut h = m >> shift;
            let rem = m & ((1 << shift) - 1);
            let half = 1 << (shift - 1);
            if rem > half || (rem == half && h & 1 == 1) {
                h += 1;
            }
            return F16(sign | h as u16);
        }
        let mut h = ((e as u32) << 10) | (man >> 13);
        let rem = man & 0x1fff;
        if rem > 0x1000 || (rem == 0x1000 && h & 1 == 1) {
            h += 1;
        }
        F16(sign | h as u16)
    }

    /// The exact f32 value.
    pub fn to_f32(self) -> f32 {
        let h = self.0 as u32;
        let sign = (h & 0x8000) << 16;
        let exp = (h >> 10) & 0x1f;
        let man = h & 0x3ff;
        let bits = if exp == 0 {
            let v = man as f32 * f32::from_bits(0x3380_0000); // 2^-24
            return if sign != 0 { -v } else { v };
        } else if exp == 31 {
            sign | 0x7f80_0000 | (man << 13)
        } else {
            sign | ((exp + 112) << 23) | (man << 13)
        };
        f32::from_bits(bits)
    }
}

impl BF16 {
    /// Rounds an f32 to the nearest bf16 (ties to even); NaN stays a quiet NaN.
    pub fn from_f32(x: f32) -> BF16 {
        let b = x.to_bits();
        if x.is_nan() {
            return BF16(((b >> 16) as u16) | 0x40);
        }
        let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1));
        BF16((rounded >> 16) as u16)
    }

    /// The exact f32 value.
    pub fn to_f32(self) -> f32 {
        f32::from_bits((self.0 as u32) << 16)
    }
}

impl fmt::Debug for F16 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_f32())
    }
}

impl fmt::Debug for BF16 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_f32())
    }
}

/// An element type the interpreter stores.
pub trait Elem: Copy + Default + PartialEq + Send + Sync + fmt::Debug + 'static {
    /// The HLO dtype.
    const DTYPE: DType;
    /// Value as f64 (exact for all but 64-bit integers beyond 2^53).
    fn to_f64(self) -> f64;
    /// Conversion from f64: round-to-nearest-even for floats, saturating truncation for
    /// integers (NaN to 0), `!= 0` for pred — XLA's `convert` semantics.
    fn from_f64(v: f64) -> Self;
    /// Value as an integer (floats truncated, saturating).
    fn to_i128(self) -> i128;
    /// Conversion from an integer, wrapping for integer types (XLA's int-to-int convert).
    fn from_i128(v: i128) -> Self;
    /// Writes the little-endian bytes (`size_bytes` of them).
    fn write_le(self, out: &mut [u8]);
    /// Reads from little-endian bytes.
    fn read_le(b: &[u8]) -> Self;
    /// The array of a tensor of this element type (None for a tensor of another dtype).
    fn array_of(t: &Tensor) -> Option<&ArrayD<Self>>;
    /// The array of an owned tensor of this element type (None for another dtype).
    fn into_array(t: Tensor) -> Option<ArrayD<Self>>;
    /// The tensor holding `a`.
    fn into_tensor(a: ArrayD<Self>) -> Tensor;
}

/// The [`Elem`] methods that move between a [`Tensor`] and its typed array, for the element
/// type stored in variant `$v`.
macro_rules! tensor_access {
    ($v:ident) => {
        fn array_of(t: &Tensor) -> Option<&ArrayD<Self>> {
            match t {
                Tensor::$v(a) => Some(a),
                _ => None,
            }
        }
        fn into_array(t: Tensor) -> Option<ArrayD<Self>> {
            match t {
                Tensor::$v(a) => Some(a),
                _ => None,
            }
        }
        fn into_tensor(a: ArrayD<Self>) -> Tensor {
            Tensor::$v(a)
        }
    };
}

macro_rules! int_elem {
    ($t:ty, $d:ident) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$d;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_i128(self) -> i128 {
                self as i128
            }
            fn from_i128(v: i128) -> Self {
                v as $t
            }
            fn write_le(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
            fn read_le(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..std::mem::size_of::<$t>()]);
                <$t>::from_le_bytes(a)
            }
            tensor_access!($d);
        }
    };
}
int_elem!(i8, S8);
int_elem!(i16, S16);
int_elem!(i32, S32);
int_elem!(i64, S64);
int_elem!(u8, U8);
int_elem!(u16, U16);
int_elem!(u32, U32);
int_elem!(u64, U64);

/// The int4 types: XLA's integer semantics at four bits (conversions wrap, or saturate from
/// floats); one byte per element in [`Elem::write_le`]'s form (sign-extended for `s4`, as
/// an XLA literal proto holds them).
macro_rules! int4_elem {
    ($t:ident, $d:ident, $min:expr, $max:expr) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$d;
            fn to_f64(self) -> f64 {
                self.get() as f64
            }
            fn from_f64(v: f64) -> Self {
                // saturating, NaN to 0, as XLA's float-to-int convert
                $t::wrap(if v.is_nan() {
                    0
                } else {
                    v.clamp($min, $max) as i64
                })
            }
            fn to_i128(self) -> i128 {
                self.get() as i128
            }
            fn from_i128(v: i128) -> Self {
                $t::wrap(v as i64)
            }
            fn write_le(self, out: &mut [u8]) {
                out[0] = self.get() as u8;
            }
            fn read_le(b: &[u8]) -> Self {
                $t::wrap(b[0] as i64)
            }
            tensor_access!($d);
        }
    };
}
int4_elem!(I4, S4, -8.0, 7.0);
int4_elem!(U4, U4, 0.0, 15.0);

impl Elem for bool {
    const DTYPE: DType = DType::Pred;
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn to_i128(self) -> i128 {
        self as i128
    }
    fn from_i128(v: i128) -> Self {
        v != 0
    }
    fn write_le(self, out: &mut [u8]) {
        out[0] = self as u8;
    }
    fn read_le(b: &[u8]) -> Self {
        b[0] != 0
    }
    tensor_access!(Pred);
}

macro_rules! float_elem {
    ($t:ty, $d:ident, $bits:ty) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$d;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_i128(self) -> i128 {
                self as i128
            }
            fn from_i128(v: i128) -> Self {
                v as $t
            }
            fn write_le(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_bits().to_le_bytes());
            }
            fn read_le(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..std::mem::size_of::<$t>()]);
                <$t>::from_bits(<$bits>::from_le_bytes(a))
            }
            tensor_access!($d);
        }
    };
}
float_elem!(f32, F32, u32);
float_elem!(f64, F64, u64);

macro_rules! half_elem {
    ($t:ident, $d:ident) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$d;
            fn to_f64(self) -> f64 {
                self.to_f32() as f64
            }
            fn from_f64(v: f64) -> Self {
                $t::from_f32(v as f32)
            }
            fn to_i128(self) -> i128 {
                self.to_f32() as i128
            }
            fn from_i128(v: i128) -> Self {
                $t::from_f32(v as f32)
            }
            fn write_le(self, out: &mut [u8]) {
                out.copy_from_slice(&self.0.to_le_bytes());
            }
            fn read_le(b: &[u8]) -> Self {
                $t(u16::from_le_bytes([b[0], b[1]]))
            }
            tensor_access!($d);
        }
    };
}
half_elem!(F16, F16);
half_elem!(BF16, BF16);

macro_rules! float8_elem {
    ($t:ident) => {
        impl Elem for $t {
            const DTYPE: DType = DType::$t;
            fn to_f64(self) -> f64 {
                self.to_f32() as f64
            }
            fn from_f64(v: f64) -> Self {
                $t::from_f64(v)
            }
            fn to_i128(self) -> i128 {
                self.to_f32() as i128
            }
            fn from_i128(v: i128) -> Self {
                $t::from_f64(v as f64)
            }
            fn write_le(self, out: &mut [u8]) {
                out[0] = self.0;
            }
            fn read_le(b: &[u8]) -> Self {
                $t(b[0])
            }
            tensor_access!($t);
        }
    };
}
float8_elem!(F8E4M3FN);
float8_elem!(F8E5M2);

/// Typed storage of a tensor.
#[derive(Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Tensor {
    Pred(ArrayD<bool>),
    S4(ArrayD<I4>),
    U4(ArrayD<U4>),
    S8(ArrayD<i8>),
    S16(ArrayD<i16>),
    S32(ArrayD<i32>),
    S64(ArrayD<i64>),
    U8(ArrayD<u8>),
    U16(ArrayD<u16>),
    U32(ArrayD<u32>),
    U64(ArrayD<u64>),
    F16(ArrayD<F16>),
    BF16(ArrayD<BF16>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    F8E4M3FN(ArrayD<F8E4M3FN>),
    F8E5M2(ArrayD<F8E5M2>),
}

/// Runs `$body` with `$a` bound to the typed array of a [`Tensor`] (by value, ref or ref mut,
/// as `$t` is), whatever its dtype.
#[macro_export]
#[doc(hidden)]
macro_rules! with_tensor {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            $crate::Tensor::Pred($a) => $body,
            $crate::Tensor::S4($a) => $body,
            $crate::Tensor::U4($a) => $body,
            $crate::Tensor::S8($a) => $body,
            $crate::Tensor::S16($a) => $body,
            $crate::Tensor::S32($a) => $body,
            $crate::Tensor::S64($a) => $body,
            $crate::Tensor::U8($a) => $body,
            $crate::Tensor::U16($a) => $body,
            $crate::Tensor::U32($a) => $body,
            $crate::Tensor::U64($a) => $body,
            $crate::Tensor::F16($a) => $body,
            $crate::Tensor::BF16($a) => $body,
            $crate::Tensor::F32($a) => $body,
            $crate::Tensor::F64($a) => $body,
            $crate::Tensor::F8E4M3FN($a) => $body,
            $crate::Tensor::F8E5M2($a) => $body,
        }
    };
}

/// Invokes macro `$m` with the name of every [`Tensor`] variant, for kernels that match two
/// tensors of one dtype (`$m!(Pred, S4, ...)`): one list, so a new type is added once.
#[macro_export]
#[doc(hidden)]
macro_rules! every_variant {
    ($m:ident) => {
        $m!(
            Pred, S4, U4, S8, S16, S32, S64, U8, U16, U32, U64, F16, BF16, F32, F64, F8E4M3FN,
            F8E5M2
        )
    };
}

/// Like [`with_tensor!`], wrapping the body's array result back into the same variant.
#[macro_export]
#[doc(hidden)]
macro_rules! map_tensor {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            $crate::Tensor::Pred($a) => $crate::Tensor::Pred($body),
            $crate::Tensor::S4($a) => $crate::Tensor::S4($body),
            $crate::Tensor::U4($a) => $crate::Tensor::U4($body),
            $crate::Tensor::S8($a) => $crate::Tensor::S8($body),
            $crate::Tensor::S16($a) => $crate::Tensor::S16($body),
            $crate::Tensor::S32($a) => $crate::Tensor::S32($body),
            $crate::Tensor::S64($a) => $crate::Tensor::S64($body),
            $crate::Tensor::U8($a) => $crate::Tensor::U8($body),
            $crate::Tensor::U16($a) => $crate::Tensor::U16($body),
            $crate::Tensor::U32($a) => $crate::Tensor::U32($body),
            $crate::Tensor::U64($a) => $crate::Tensor::U64($body),
            $crate::Tensor::F16($a) => $crate::Tensor::F16($body),
            $crate::Tensor::BF16($a) => $crate::Tensor::BF16($body),
            $crate::Tensor::F32($a) => $crate::Tensor::F32($body),
            $crate::Tensor::F64($a) => $crate::Tensor::F64($body),
            $crate::Tensor::F8E4M3FN($a) => $crate::Tensor::F8E4M3FN($body),
            $crate::Tensor::F8E5M2($a) => $crate::Tensor::F8E5M2($body),
        }
    };
}

/// Builds a [`Tensor`] of `$dtype`, running `$body` with the type alias `$T` set to its
/// element type; `$body` must evaluate to an `ArrayD<$T>`.
#[macro_export]
#[doc(hidden)]
macro_rules! make_tensor {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            statetensor_core::DType::Pred => {
                type $T = bool;
                $crate::Tensor::Pred($body)
            }
            statetensor_core::DType::S4 => {
                type $T = $crate::I4;
                $crate::Tensor::S4($body)
            }
            statetensor_core::DType::U4 => {
                type $T = $crate::U4;
                $crate::Tensor::U4($body)
            }
            statetensor_core::DType::S8 => {
                type $T = i8;
                $crate::Tensor::S8($body)
            }
            statetensor_core::DType::S16 => {
                type $T = i16;
                $crate::Tensor::S16($body)
            }
            statetensor_core::DType::S32 => {
                type $T = i32;
                $crate::Tensor::S32($body)
            }
            statetensor_core::DType::S64 => {
                type $T = i64;
                $crate::Tensor::S64($body)
            }
            statetensor_core::DType::U8 => {
                type $T = u8;
                $crate::Tensor::U8($body)
            }
            statetensor_core::DType::U16 => {
                type $T = u16;
                $crate::Tensor::U16($body)
            }
            statetensor_core::DType::U32 => {
                type $T = u32;
                $crate::Tensor::U32($body)
            }
            statetensor_core::DType::U64 => {
                type $T = u64;
                $crate::Tensor::U64($body)
            }
            statetensor_core::DType::F16 => {
                type $T = $crate::F16;
                $crate::Tensor::F16($body)
            }
            statetensor_core::DType::BF16 => {
                type $T = $crate::BF16;
                $crate::Tensor::BF16($body)
            }
            statetensor_core::DType::F32 => {
                type $T = f32;
                $crate::Tensor::F32($body)
            }
            statetensor_core::DType::F64 => {
                type $T = f64;
                $crate::Tensor::F64($body)
            }
            statetensor_core::DType::F8E4M3FN => {
                type $T = $crate::F8E4M3FN;
                $crate::Tensor::F8E4M3FN($body)
            }
            statetensor_core::DType::F8E5M2 => {
                type $T = $crate::F8E5M2;
                $crate::Tensor::F8E5M2($body)
            }
        }
    };
}

impl Tensor {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::Pred(_) => DType::Pred,
            Tensor::S4(_) => DType::S4,
            Tensor::U4(_) => DType::U4,
            Tensor::S8(_) => DType::S8,
            Tensor::S16(_) => DType::S16,
            Tensor::S32(_) => DType::S32,
            Tensor::S64(_) => DType::S64,
            Tensor::U8(_) => DType::U8,
            Tensor::U16(_) => DType::U16,
            Tensor::U32(_) => DType::U32,
            Tensor::U64(_) => DType::U64,
            Tensor::F16(_) => DType::F16,
            Tensor::BF16(_) => DType::BF16,
            Tensor::F32(_) => DType::F32,
            Tensor::F64(_) => DType::F64,
            Tensor::F8E4M3FN(_) => DType::F8E4M3FN,
            Tensor::F8E5M2(_) => DType::F8E5M2,
        }
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        with_tensor!(self, a => a.shape())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_tensor!(self, a => a.len())
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size in bytes of the byte image (int4 packed two to a byte).
    pub fn size_bytes(&self) -> usize {
        self.dtype().packed_bytes(self.len())
    }

    /// A zero-filled tensor.
    pub fn zeros(dtype: DType, dims: &[usize]) -> Tensor {
        make_tensor!(dtype, T => ArrayD::<T>::default(IxDyn(dims)))
    }

    /// A tensor of `dtype` from values given as f64 (converted as XLA's `convert` does:
    /// rounded for floats, saturated for integers); `values.len()` must match `dims`.
    pub fn from_f64s(dtype: DType, dims: &[usize], values: &[f64]) -> Result<Tensor> {
        let n: usize = dims.iter().product();
        if values.len() != n {
            return Err(Error::invalid_input(
                "tensor from values",
                format!("{dtype}{dims:?} needs {n} values, got {}", values.len()),
            ));
        }
        Ok(
            make_tensor!(dtype, T => ArrayD::from_shape_vec(IxDyn(dims), values.iter().map(|&v| T::from_f64(v)).collect()).expect("count checked")),
        )
    }

    /// A tensor from little-endian bytes in row-major order (int4 packed two to a byte, the
    /// first element in the low nibble); the byte count must be exact.
    pub fn from_le_bytes(dtype: DType, dims: &[usize], bytes: &[u8]) -> Result<Tensor> {
        let n: usize = dims.iter().product();
        let want = dtype.packed_bytes(n);
        if bytes.len() != want {
            return Err(Error::invalid_input(
                "tensor from bytes",
                format!("{dtype}{dims:?} needs {want} bytes, got {}", bytes.len()),
            ));
        }
        if dtype.is_packed() {
            let mut t = Tensor::zeros(dtype, dims);
            t.write_bytes(0, bytes)?;
            return Ok(t);
        }
        let sz = dtype.size_bytes();
        Ok(make_tensor!(dtype, T => {
            let v: Vec<T> = bytes.chunks_exact(sz).map(T::read_le).collect();
            ArrayD::from_shape_vec(IxDyn(dims), v).expect("the byte count matches the dims")
        }))
    }

    /// The whole tensor as little-endian bytes, row-major.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.size_bytes()];
        self.read_bytes(0, &mut out)
            .expect("whole-range read is in bounds");
        out
    }

    /// Copies bytes `[offset, offset + out.len())` of the tensor's row-major image into `out`.
    pub fn read_bytes(&self, offset: usize, out: &mut [u8]) -> Result<()> {
        self.check_range("read tensor bytes", offset, out.len())?;
        if self.dtype().is_packed() {
            with_tensor!(self, a => copy_out_packed(a.as_slice().ok_or_else(not_standard)?, offset, out));
            return Ok(());
        }
        with_tensor!(self, a => copy_out(a.as_slice().ok_or_else(not_standard)?, offset, out));
        Ok(())
    }

    /// Overwrites bytes `[offset, offset + src.len())` of the tensor's row-major image.
    pub fn write_bytes(&mut self, offset: usize, src: &[u8]) -> Result<()> {
        self.check_range("write tensor bytes", offset, src.len())?;
        if self.dtype().is_packed() {
            with_tensor!(self, a => copy_in_packed(a.as_slice_mut().ok_or_else(not_standard)?, offset, src));
            return Ok(());
        }
        with_tensor!(self, a => copy_in(a.as_slice_mut().ok_or_else(not_standard)?, offset, src));
        Ok(())
    }

    fn check_range(&self, op: &str, offset: usize, len: usize) -> Result<()> {
        let size = self.size_bytes();
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::invalid_input(
                op,
                format!(
                    "byte range {offset}..{} is outside the tensor's {size} bytes",
                    offset.saturating_add(len)
                ),
            ));
        }
        Ok(())
    }

    /// The address of the first element: equal for two tensors exactly when they share one
    /// buffer (used to prove an update happened in place).
    pub fn buffer_addr(&self) -> usize {
        with_tensor!(self, a => a.as_ptr() as usize)
    }

    /// The spec of this tensor under `name`.
    pub fn spec(&self, name: impl Into<String>) -> TensorSpec {
        TensorSpec::new(name, self.dtype(), self.dims().to_vec())
    }

    /// Every element as f64 (for tests and reports).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        with_tensor!(self, a => a.iter().map(|v| v.to_f64()).collect())
    }

    /// Slice `k` along the leading axis, without that axis: core k's value of a per-core
    /// stack. `k` must be below the leading dimension.
    pub fn leading_slice(&self, k: usize) -> Result<Tensor> {
        let dims = self.dims();
        if dims.first().is_none_or(|&n| k >= n) {
            return Err(Error::invalid_input(
                "take a slice",
                format!("slice {k} of a tensor of shape {dims:?}"),
            ));
        }
        let mut start = vec![0; dims.len()];
        let mut limit = dims.to_vec();
        start[0] = k;
        limit[0] = k + 1;
        let one = crate::kernels::slice(self, &start, &limit, &vec![1; dims.len()]);
        Ok(crate::kernels::reshape(one, &dims[1..]))
    }

    /// The tensors stacked along a new leading axis (core k's at slice k). They must share
    /// dtype and shape.
    pub fn stack(parts: &[&Tensor]) -> Result<Tensor> {
        let Some(first) = parts.first() else {
            return Err(Error::invalid_input("stack tensors", "nothing to stack"));
        };
        if let Some(other) = parts
            .iter()
            .find(|t| t.dtype() != first.dtype() || t.dims() != first.dims())
        {
            return Err(Error::invalid_input(
                "stack tensors",
                format!(
                    "{} and {} differ",
                    first.spec("").type_string(),
                    other.spec("").type_string()
                ),
            ));
        }
        let mut dims = vec![1];
        dims.extend_from_slice(first.dims());
        let lifted: Vec<Tensor> = parts
            .iter()
            .map(|t| crate::kernels::reshape((*t).clone(), &dims))
            .collect();
        let refs: Vec<&Tensor> = lifted.iter().collect();
        Ok(crate::kernels::concatenate(&refs, 0))
    }
}

fn not_standard() -> Error {
    Error::runtime(
        "tensor bytes",
        "internal: tensor is not in row-major layout",
    )
}

/// Splits byte range `[offset, offset+len)` into a partial head element, whole elements and
/// a partial tail element, so the bulk is converted element by element without a byte loop.
fn copy_out<T: Elem>(data: &[T], offset: usize, out: &mut [u8]) {
    let sz = T::DTYPE.size_bytes();
    let mut k = 0;
    // partial elements at either end go through a small buffer
    let partial = |k: &mut usize, out: &mut [u8]| {
        let byte = offset + *k;
        let (i, within) = (byte / sz, byte % sz);
        let mut buf = [0u8; 8];
        data[i].write_le(&mut buf[..sz]);
        let n = (sz - within).min(out.len() - *k);
        out[*k..*k + n].copy_from_slice(&buf[within..within + n]);
        *k += n;
    };
    if offset % sz != 0 && !out.is_empty() {
        partial(&mut k, out);
    }
    let first = (offset + k) / sz;
    let whole = (out.len() - k) / sz;
    for (chunk, v) in out[k..k + whole * sz]
        .chunks_exact_mut(sz)
        .zip(&data[first..first + whole])
    {
        v.write_le(chunk);
    }
    k += whole * sz;
    if k < out.len() {
        partial(&mut k, out);
    }
}

/// [`copy_out`] for the int4 types: byte `b` of the image holds elements `2b` (low nibble)
/// and `2b + 1` (high nibble; zero past the end).
fn copy_out_packed<T: Elem>(data: &[T], offset: usize, out: &mut [u8]) {
    let nibble = |i: usize| data.get(i).map_or(0, |v| (v.to_i128() & 0xf) as u8);
    for (k, o) in out.iter_mut().enumerate() {
        let i = 2 * (offset + k);
        *o = nibble(i) | (nibble(i + 1) << 4);
    }
}

/// [`copy_in`] for the int4 types (the high nibble of an odd count's last byte is ignored).
fn copy_in_packed<T: Elem>(data: &mut [T], offset: usize, src: &[u8]) {
    for (k, &b) in src.iter().enumerate() {
        let i = 2 * (offset + k);
        data[i] = T::from_i128((b & 0xf) as i128);
        if let Some(v) = data.get_mut(i + 1) {
            *v = T::from_i128((b >> 4) as i128);
        }
    }
}

fn copy_in<T: Elem>(data: &mut [T], offset: usize, src: &[u8]) {
    let sz = T::DTYPE.size_bytes();
    let mut k = 0;
    let partial = |k: &mut usize, data: &mut [T]| {
        let byte = offset + *k;
        let (i, within) = (byte / sz, byte % sz);
        let mut buf = [0u8; 8];
        data[i].write_le(&mut buf[..sz]);
        let n = (sz - within).min(src.len() - *k);
        buf[within..within + n].copy_from_slice(&src[*k..*k + n]);
        data[i] = T::read_le(&buf[..sz]);
        *k += n;
    };
    if offset % sz != 0 && !src.is_empty() {
        partial(&mut k, data);
    }
    let first = (offset + k) / sz;
    let whole = (src.len() - k) / sz;
    for (chunk, v) in src[k..k + whole * sz]
        .chunks_exact(sz)
        .zip(&mut data[first..first + whole])
    {
        *v = T::read_le(chunk);
    }
    k += whole * sz;
    if k < src.len() {
        partial(&mut k, data);
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:?} ", self.dtype(), self.dims())?;
        with_tensor!(self, a => write!(f, "{:?}", a.as_slice().unwrap_or(&[])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_round_trip_and_rounding() {
        for bits in 0u16..=u16::MAX {
            let h = F16(bits);
            let f = h.to_f32();
            if f.is_nan() {
                assert!(F16::from_f32(f).to_f32().is_nan());
            } else {
                assert_eq!(F16::from_f32(f).0, bits, "bits {bits:#x}");
            }
        }
        assert_eq!(F16::from_f32(65520.0).to_f32(), f32::INFINITY);
        assert_eq!(F16::from_f32(65519.0).to_f32(), 65504.0);
        // 1 + 2^-11 is a tie between 1 and 1 + 2^-10: rounds to even (1)
        assert_eq!(F16::from_f32(1.0 + 2f32.powi(-11)).to_f32(), 1.0);
        assert_eq!(F16::from_f32(2f32.powi(-25)).0, 0); // tie with 0 -> even (0)
        assert_eq!(F16::from_f32(2f32.powi(-25) * 1.5).0, 1);
    }

    #[test]
    fn bf16_rounding() {
        for bits in (0u16..=u16::MAX).step_by(7) {
            let f = BF16(bits).to_f32();
            if !f.is_nan() {
                assert_eq!(BF16::from_f32(f).0, bits);
            }
        }
        assert_eq!(BF16::from_f32(1.0 + 2f32.powi(-8)).to_f32(), 1.0);
        assert_eq!(
            BF16::from_f32(1.0 + 3.0 * 2f32.powi(-8)).to_f32(),
            1.0 + 2f32.powi(-6)
        );
        assert!(BF16::from_f32(f32::NAN).to_f32().is_nan());
    }

    #[test]
    fn byte_ranges() {
        let mut t = Tensor::from_le_bytes(DType::S32, &[2], &[1, 0, 0, 0, 2, 0, 0, 0]).unwrap();
        t.write_bytes(3, &[9, 9]).unwrap();
        let mut out = [0u8; 3];
        t.read_bytes(2, &mut out).unwrap();
        assert_eq!(out, [0, 9, 9]);
        assert!(t.write_bytes(7, &[1, 1]).is_err());
        assert!(t.read_bytes(usize::MAX, &mut out).is_err());
    }

    #[test]
    fn int4_byte_image_is_packed_low_nibble_first() {
        let t = Tensor::from_f64s(DType::S4, &[3], &[1.0, -2.0, 7.0]).unwrap();
        assert_eq!(t.size_bytes(), 2);
        assert_eq!(t.to_le_bytes(), [0xe1, 0x07]);
        let mut u = Tensor::from_le_bytes(DType::U4, &[3], &[0xe1, 0xf7]).unwrap();
        assert_eq!(u.to_f64_vec(), [1.0, 14.0, 7.0]);
        u.write_bytes(1, &[0x05]).unwrap();
        assert_eq!(u.to_f64_vec(), [1.0, 14.0, 5.0]);
        let mut one = [0u8; 1];
        u.read_bytes(1, &mut one).unwrap();
        assert_eq!(one, [0x05]);
        assert!(Tensor::from_le_bytes(DType::S4, &[3], &[0, 0, 0]).is_err());
        // floats convert saturating, integers wrap, as XLA's convert
        let s = Tensor::from_f64s(DType::S4, &[3], &[100.0, -9.5, f64::NAN]).unwrap();
        assert_eq!(s.to_f64_vec(), [7.0, -8.0, 0.0]);
    }
}
