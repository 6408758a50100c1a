//! Elementwise kernels: unary, binary, compare, select, clamp, convert.
//!
//! Floating-point types compute in their own precision (f16 and bf16 in f32, rounded to
//! nearest-even on store). Integer arithmetic wraps; division and remainder follow XLA
//! (`x / 0 == -1`, `x % 0 == x`, `MIN / -1 == MIN`); shifts by the bit width or more give
//! 0 (or the sign fill for an arithmetic right shift). Large arrays run in parallel.

use super::layout::{element, set_element, standard_tensor};
use super::op_kinds::{BinaryOp, CompareDirection, UnaryOp};
use crate::tensor::{Elem, Tensor, BF16, F16, F8E4M3FN, F8E5M2, I4, U4};
use ndarray::{ArrayD, Zip};
use rayon::prelude::*;
use statetensor_core::{DType, Result};

/// Arrays at least this long are processed with rayon.
pub(crate) const PAR_THRESHOLD: usize = 1 << 18;

/// Elements per rayon task in parallel elementwise loops.
pub(crate) const PAR_CHUNK: usize = 1 << 14;

/// Whether an elementwise loop, reduction or scan over `len` elements runs split across
/// threads: long enough to pay ([`PAR_THRESHOLD`]) and a helper ready to take a part
/// ([`crate::pool::helpers_ready`]). Never changes a result, only who computes it.
pub(crate) fn splits(len: usize) -> bool {
    len >= PAR_THRESHOLD && crate::pool::helpers_ready()
}

pub(crate) fn f32_unary(op: UnaryOp) -> fn(f32) -> f32 {
    use UnaryOp::*;
    match op {
        Abs => f32::abs,
        Negate => |x| -x,
        Sign => |x| {
            if x.is_nan() || x == 0.0 {
                x
            } else {
                x.signum()
            }
        },
        Exp => f32::exp,
        Expm1 => f32::exp_m1,
        Log => f32::ln,
        Log1p => f32::ln_1p,
        Sqrt => f32::sqrt,
        Rsqrt => |x| 1.0 / x.sqrt(),
        Cbrt => f32::cbrt,
        Tanh => f32::tanh,
        Erf => super::special::erf_f32,
        Logistic => |x| 1.0 / (1.0 + (-x).exp()),
        Sin => f32::sin,
        Cos => f32::cos,
        Tan => f32::tan,
        Floor => f32::floor,
        Ceil => f32::ceil,
        RoundEven => f32::round_ties_even,
        RoundAfz => f32::round,
        Not | IsFinite | Popcnt | Clz => |x| x,
    }
}

fn f64_unary(op: UnaryOp) -> fn(f64) -> f64 {
    use UnaryOp::*;
    match op {
        Abs => f64::abs,
        Negate => |x| -x,
        Sign => |x| {
            if x.is_nan() || x == 0.0 {
                x
            } else {
                x.signum()
            }
        },
        Exp => f64::exp,
        Expm1 => f64::exp_m1,
        Log => f64::ln,
        Log1p => f64::ln_1p,
        Sqrt => f64::sqrt,
        Rsqrt => |x| 1.0 / x.sqrt(),
        Cbrt => f64::cbrt,
        Tanh => f64::tanh,
        Erf => super::special::erf_f64,
        Logistic => |x| 1.0 / (1.0 + (-x).exp()),
        Sin => f64::sin,
        Cos => f64::cos,
        Tan => f64::tan,
        Floor => f64::floor,
        Ceil => f64::ceil,
        RoundEven => f64::round_ties_even,
        RoundAfz => f64::round,
        Not | IsFinite | Popcnt | Clz => |x| x,
    }
}

/// Applies `f` to every element in place, in parallel for large arrays.
fn map_inplace<T: Elem>(a: &mut ArrayD<T>, f: impl Fn(T) -> T + Sync + Send) {
    if splits(a.len()) {
        a.par_mapv_inplace(f);
    } else {
        a.mapv_inplace(f);
    }
}

fn map_new<T: Elem, U: Elem>(a: &ArrayD<T>, f: impl Fn(T) -> U + Sync + Send) -> ArrayD<U> {
    if splits(a.len()) {
        Zip::from(a).par_map_collect(|&x| f(x))
    } else {
        a.mapv(f)
    }
}

/// Integer element operations, implemented for every integer width.
pub(crate) trait IntElem: Elem + Ord {
    fn wadd(self, o: Self) -> Self;
    fn wsub(self, o: Self) -> Self;
    fn wmul(self, o: Self) -> Self;
    fn xdiv(self, o: Self) -> Self;
    fn xrem(self, o: Self) -> Self;
    fn band(self, o: Self) -> Self;
    fn bor(self, o: Self) -> Self;
    fn bxor(self, o: Self) -> Self;
    fn bnot(self) -> Self;
    fn wneg(self) -> Self;
    fn wabs(self) -> Self;
    fn sign(self) -> Self;
    fn popcnt(self) -> Self;
    fn clz(self) -> Self;
    fn shl(self, o: Self) -> Self;
    fn shr_logical(self, o: Self) -> Self;
    fn shr_arith(self, o: Self) -> Self;
    fn ipow(self, o: Self) -> Self;
}

macro_rules! int_ops {
    ($t:ty, $u:ty, $signed:expr) => {
        impl IntElem for $t {
            fn wadd(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn wsub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            fn wmul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            fn xdiv(self, o: Self) -> Self {
                if o == 0 {
                    // XLA: x / 0 is -1 (all bits set)
                    (0 as $t).wrapping_sub(1)
                } else {
                    self.wrapping_div(o)
                }
            }
            fn xrem(self, o: Self) -> Self {
                if o == 0 {
                    self
                } else {
                    self.wrapping_rem(o)
                }
            }
            fn band(self, o: Self) -> Self {
                self & o
            }
            fn bor(self, o: Self) -> Self {
                self | o
            }
            fn bxor(self, o: Self) -> Self {
                self ^ o
            }
            fn bnot(self) -> Self {
                !self
            }
            fn wneg(self) -> Self {
                (0 as $t).wrapping_sub(self)
            }
            fn wabs(self) -> Self {
                if $signed && self < (0 as $t) {
                    self.wneg()
                } else {
                    self
                }
            }
            fn sign(self) -> Self {
                if self == 0 {
                    0
                } else if $signed && self < (0 as $t) {
                    (0 as $t).wrapping_sub(1)
                } else {
                    1
                }
            }
            fn popcnt(self) -> Self {
                self.count_ones() as $t
            }
            fn clz(self) -> Self {
                self.leading_zeros() as $t
            }
            fn shl(self, o: Self) -> Self {
                let n = o as $u;
                if n >= <$t>::BITS as $u {
                    0
                } else {
                    ((self as $u) << n) as $t
                }
            }
            fn shr_logical(self, o: Self) -> Self {
                let n = o as $u;
                if n >= <$t>::BITS as $u {
                    0
                } else {
                    ((self as $u) >> n) as $t
                }
            }
            fn shr_arith(self, o: Self) -> Self {
                let n = o as $u;
                let n = if n >= <$t>::BITS as $u {
                    <$t>::BITS - 1
                } else {
                    n as u32
                };
                if $signed {
                    self >> n
                } else {
                    // XLA: arithmetic shift of an unsigned value fills with its top bit
                    (((self as $u) as i128) << (128 - <$t>::BITS) >> (128 - <$t>::BITS) >> n) as $t
                }
            }
            fn ipow(self, o: Self) -> Self {
                if $signed && o < (0 as $t) {
                    return if self == 1 {
                        1
                    } else if self.wneg() == 1 {
                        if o & 1 == 1 {
                            self
                        } else {
                            1
                        }
                    } else {
                        0
                    };
                }
                let (mut base, mut e, mut acc) = (self, o as $u, 1 as $t);
                while e > 0 {
                    if e & 1 == 1 {
                        acc = acc.wrapping_mul(base);
                    }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                acc
            }
        }
    };
}
int_ops!(i8, u8, true);
int_ops!(i16, u16, true);
int_ops!(i32, u32, true);
int_ops!(i64, u64, true);
int_ops!(u8, u8, false);
int_ops!(u16, u16, false);
int_ops!(u32, u32, false);
int_ops!(u64, u64, false);

/// The int4 types: each operation computed on the value and wrapped to four bits; the bit
/// operations shift and count within the nibble (a logical right shift of `s4` -1 by one
/// is 7), except `popcnt`, which XLA:CPU takes of the byte the value is widened to.
macro_rules! int4_ops {
    ($t:ident, $signed:expr) => {
        impl IntElem for $t {
            fn wadd(self, o: Self) -> Self {
                $t::wrap(self.get() as i64 + o.get() as i64)
            }
            fn wsub(self, o: Self) -> Self {
                $t::wrap(self.get() as i64 - o.get() as i64)
            }
            fn wmul(self, o: Self) -> Self {
                $t::wrap(self.get() as i64 * o.get() as i64)
            }
            fn xdiv(self, o: Self) -> Self {
                if o.get() == 0 {
                    $t::wrap(-1)
                } else {
                    // -8 / -1 overflows to -8, as in every width
                    $t::wrap(self.get() as i64 / o.get() as i64)
                }
            }
            fn xrem(self, o: Self) -> Self {
                if o.get() == 0 {
                    self
                } else {
                    $t::wrap(self.get() as i64 % o.get() as i64)
                }
            }
            fn band(self, o: Self) -> Self {
                $t::wrap((self.bits() & o.bits()) as i64)
            }
            fn bor(self, o: Self) -> Self {
                $t::wrap((self.bits() | o.bits()) as i64)
            }
            fn bxor(self, o: Self) -> Self {
                $t::wrap((self.bits() ^ o.bits()) as i64)
            }
            fn bnot(self) -> Self {
                $t::wrap(!self.bits() as i64)
            }
            fn wneg(self) -> Self {
                $t::wrap(-(self.get() as i64))
            }
            fn wabs(self) -> Self {
                $t::wrap((self.get() as i64).abs())
            }
            fn sign(self) -> Self {
                $t::wrap((self.get() as i64).signum())
            }
            fn popcnt(self) -> Self {
                // XLA:CPU counts the bits of the value widened to a byte (sign-extended for
                // s4: popcnt of s4 -1 is 8, which wraps to -8); clz counts within the nibble
                $t::wrap((self.get() as u8).count_ones() as i64)
            }
            fn clz(self) -> Self {
                $t::wrap((self.bits().leading_zeros() - 4) as i64)
            }
            fn shl(self, o: Self) -> Self {
                match o.bits() {
                    n @ 0..4 => $t::wrap((self.bits() << n) as i64),
                    _ => $t::wrap(0),
                }
            }
            fn shr_logical(self, o: Self) -> Self {
                match o.bits() {
                    n @ 0..4 => $t::wrap((self.bits() >> n) as i64),
                    _ => $t::wrap(0),
                }
            }
            fn shr_arith(self, o: Self) -> Self {
                // the top bit of the nibble fills, for u4 too (as for every unsigned width)
                let v = ((self.bits() << 4) as i8 >> 4) as i64;
                $t::wrap(v >> o.bits().min(3))
            }
            fn ipow(self, o: Self) -> Self {
                if $signed && (o.get() as i64) < 0 {
                    return match self.get() as i64 {
                        1 => self,
                        -1 if o.bits() & 1 == 1 => self,
                        -1 => $t::wrap(1),
                        _ => $t::wrap(0),
                    };
                }
                let (mut base, mut e, mut acc) = (self.get() as i64, o.get() as u32, 1i64);
                while e > 0 {
                    if e & 1 == 1 {
                        acc = $t::wrap(acc * base).get() as i64;
                    }
                    base = $t::wrap(base * base).get() as i64;
                    e >>= 1;
                }
                $t::wrap(acc)
            }
        }
    };
}
int4_ops!(I4, true);
int4_ops!(U4, false);

fn int_unary<T: IntElem>(op: UnaryOp) -> fn(T) -> T {
    use UnaryOp::*;
    match op {
        Abs => T::wabs,
        Negate => T::wneg,
        Sign => T::sign,
        Not => T::bnot,
        Popcnt => T::popcnt,
        Clz => T::clz,
        _ => |x| x,
    }
}

fn int_binary<T: IntElem>(op: BinaryOp) -> fn(T, T) -> T {
    use BinaryOp::*;
    match op {
        Add => T::wadd,
        Subtract => T::wsub,
        Multiply => T::wmul,
        Divide => T::xdiv,
        Remainder => T::xrem,
        Power => T::ipow,
        Maximum => |a, b| a.max(b),
        Minimum => |a, b| a.min(b),
        And => T::band,
        Or => T::bor,
        Xor => T::bxor,
        ShiftLeft => T::shl,
        ShiftRightArithmetic => T::shr_arith,
        ShiftRightLogical => T::shr_logical,
        Atan2 => |a, _| a,
    }
}

/// XLA's `maximum` and `minimum` of floats: NaN when either operand is NaN. Inlined where
/// a loop applies them, so that it vectorises.
macro_rules! nan_min_max {
    ($($t:ident: $max:ident, $min:ident);*) => {$(
        #[inline(always)]
        pub(crate) fn $max(a: $t, b: $t) -> $t {
            if a.is_nan() || b.is_nan() {
                $t::NAN
            } else {
                a.max(b)
            }
        }

        #[inline(always)]
        pub(crate) fn $min(a: $t, b: $t) -> $t {
            if a.is_nan() || b.is_nan() {
                $t::NAN
            } else {
                a.min(b)
            }
        }
    )*};
}
nan_min_max!(f32: max_f32, min_f32; f64: max_f64, min_f64);

pub(crate) fn f32_binary(op: BinaryOp) -> fn(f32, f32) -> f32 {
    use BinaryOp::*;
    match op {
        Add => |a, b| a + b,
        Subtract => |a, b| a - b,
        Multiply => |a, b| a * b,
        Divide => |a, b| a / b,
        Remainder => |a, b| a % b,
        Power => f32::powf,
        Maximum => max_f32,
        Minimum => min_f32,
        Atan2 => f32::atan2,
        _ => |a, _| a,
    }
}

fn f64_binary(op: BinaryOp) -> fn(f64, f64) -> f64 {
    use BinaryOp::*;
    match op {
        Add => |a, b| a + b,
        Subtract => |a, b| a - b,
        Multiply => |a, b| a * b,
        Divide => |a, b| a / b,
        Remainder => |a, b| a % b,
        Power => f64::powf,
        Maximum => max_f64,
        Minimum => min_f64,
        Atan2 => f64::atan2,
        _ => |a, _| a,
    }
}

pub(crate) fn pred_binary(op: BinaryOp) -> fn(bool, bool) -> bool {
    use BinaryOp::*;
    match op {
        // XLA:CPU computes add on pred as or and multiply as and (saturating, as C++ bool)
        And | Minimum | Multiply => |a, b| a & b,
        Or | Maximum | Add => |a, b| a | b,
        Xor => |a, b| a ^ b,
        Subtract | Divide | Remainder | Power | ShiftLeft | ShiftRightArithmetic
        | ShiftRightLogical | Atan2 => unreachable!("{op:?} is refused on pred by the planner"),
    }
}

/// Applies a unary op (already type-checked).
pub fn unary(op: UnaryOp, mut t: Tensor) -> Tensor {
    if op == UnaryOp::IsFinite {
        return match &t {
            Tensor::F16(a) => Tensor::Pred(map_new(a, |x| x.to_f32().is_finite())),
            Tensor::BF16(a) => Tensor::Pred(map_new(a, |x| x.to_f32().is_finite())),
            Tensor::F8E4M3FN(a) => Tensor::Pred(map_new(a, |x| x.to_f32().is_finite())),
            Tensor::F8E5M2(a) => Tensor::Pred(map_new(a, |x| x.to_f32().is_finite())),
            Tensor::F32(a) => Tensor::Pred(map_new(a, |x| x.is_finite())),
            Tensor::F64(a) => Tensor::Pred(map_new(a, |x| x.is_finite())),
            _ => t,
        };
    }
    match &mut t {
        Tensor::Pred(a) => map_inplace(a, |x| !x),
        Tensor::S4(a) => map_inplace(a, int_unary(op)),
        Tensor::U4(a) => map_inplace(a, int_unary(op)),
        Tensor::S8(a) => map_inplace(a, int_unary(op)),
        Tensor::S16(a) => map_inplace(a, int_unary(op)),
        Tensor::S32(a) => map_inplace(a, int_unary(op)),
        Tensor::S64(a) => map_inplace(a, int_unary(op)),
        Tensor::U8(a) => map_inplace(a, int_unary(op)),
        Tensor::U16(a) => map_inplace(a, int_unary(op)),
        Tensor::U32(a) => map_inplace(a, int_unary(op)),
        Tensor::U64(a) => map_inplace(a, int_unary(op)),
        Tensor::F16(a) => {
            let f = f32_unary(op);
            map_inplace(a, move |x| F16::from_f32(f(x.to_f32())))
        }
        Tensor::BF16(a) => {
            let f = f32_unary(op);
            map_inplace(a, move |x| BF16::from_f32(f(x.to_f32())))
        }
        Tensor::F8E4M3FN(a) => {
            let f = f32_unary(op);
            map_inplace(a, move |x| F8E4M3FN::from_f32_via_f16(f(x.to_f32())))
        }
        Tensor::F8E5M2(a) => {
            let f = f32_unary(op);
            map_inplace(a, move |x| F8E5M2::from_f32_via_f16(f(x.to_f32())))
        }
        Tensor::F32(a) => map_inplace(a, f32_unary(op)),
        Tensor::F64(a) => map_inplace(a, f64_unary(op)),
    }
    t
}

fn zip_inplace<T: Elem>(a: &mut ArrayD<T>, b: &ArrayD<T>, f: impl Fn(T, T) -> T + Sync + Send) {
    let par = splits(a.len());
    if let (Some(xs), Some(ys)) = (a.as_slice_mut(), b.as_slice()) {
        // both row-major: a plain slice loop, which the compiler vectorises
        let body = |(xs, ys): (&mut [T], &[T])| {
            xs.iter_mut().zip(ys).for_each(|(x, &y)| *x = f(*x, y));
        };
        if par {
            xs.par_chunks_mut(PAR_CHUNK)
                .zip(ys.par_chunks(PAR_CHUNK))
                .for_each(body);
        } else {
            body((xs, ys));
        }
    } else if par {
        Zip::from(a).and(b).par_for_each(|x, &y| *x = f(*x, y));
    } else {
        Zip::from(a).and(b).for_each(|x, &y| *x = f(*x, y));
    }
}

/// `x = x op y` for f32 or f64 arrays, with the common ops inlined into the loop (through
/// [`f32_binary`]'s function pointers every element was an indirect call, and nothing
/// vectorised).
macro_rules! float_binary_inplace {
    ($x:expr, $y:expr, $op:expr, $t:ty, $generic:ident, $max:ident, $min:ident) => {
        match $op {
            BinaryOp::Add => zip_inplace($x, $y, |a: $t, b: $t| a + b),
            BinaryOp::Subtract => zip_inplace($x, $y, |a: $t, b: $t| a - b),
            BinaryOp::Multiply => zip_inplace($x, $y, |a: $t, b: $t| a * b),
            BinaryOp::Divide => zip_inplace($x, $y, |a: $t, b: $t| a / b),
            BinaryOp::Maximum => zip_inplace($x, $y, $max),
            BinaryOp::Minimum => zip_inplace($x, $y, $min),
            op => zip_inplace($x, $y, $generic(op)),
        }
    };
}

/// Applies a binary op (type-checked: same dtype and dims); the result reuses `a`'s buffer.
pub fn binary(op: BinaryOp, mut a: Tensor, b: &Tensor) -> Tensor {
    match (&mut a, b) {
        (Tensor::Pred(x), Tensor::Pred(y)) => zip_inplace(x, y, pred_binary(op)),
        (Tensor::S4(x), Tensor::S4(y)) => zip_inplace(x, y, int_binary(op)),
        (Tensor::U4(x), Tensor::U4(y)) => zip_inplace(x, y, int_binary(op)),
        (Tensor::S8(x), Tensor::S8(y)) => zip_inplace(x, y, int_binary(op)),
        (Tensor::S16(x), Tensor::S16(y)) => zip_inplace(x, y, int_binary(op)),
        (Tensor::S32(x), Tensor::S32(y)) => zip_inplace(x, y, int_binary(op)),
        (Tensor::S64(x), Tensor::S64(y)) => zip_inplace(x, y, int_binary(op)),
        (Tensor::U8(x), Tensor::U8(y)) => zip_inplace(x, y, int_binary(op)),
        (Tensor::U16(x), Tensor::U16(y)) => zip_inplace(x, y, int_binary(op)),
        (Tensor::U32(x), Tensor::U32(y)) => zip_inplace(x, y, int_binary(op)),
        (Tensor::U64(x), Tensor::U64(y)) => zip_inplace(x, y, int_binary(op)),
        (Tensor::F16(x), Tensor::F16(y)) => {
            let f = f32_binary(op);
            zip_inplace(x, y, move |p, q| F16::from_f32(f(p.to_f32(), q.to_f32())))
        }
        (Tensor::BF16(x), Tensor::BF16(y)) => {
            let f = f32_binary(op);
            zip_inplace(x, y, move |p, q| BF16::from_f32(f(p.to_f32(), q.to_f32())))
        }
        (Tensor::F8E4M3FN(x), Tensor::F8E4M3FN(y)) => {
            let f = f32_binary(op);
            zip_inplace(x, y, move |p, q| {
                F8E4M3FN::from_f32_via_f16(f(p.to_f32(), q.to_f32()))
            })
        }
        (Tensor::F8E5M2(x), Tensor::F8E5M2(y)) => {
            let f = f32_binary(op);
            zip_inplace(x, y, move |p, q| {
                F8E5M2::from_f32_via_f16(f(p.to_f32(), q.to_f32()))
            })
        }
        (Tensor::F32(x), Tensor::F32(y)) => {
            float_binary_inplace!(x, y, op, f32, f32_binary, max_f32, min_f32)
        }
        (Tensor::F64(x), Tensor::F64(y)) => {
            float_binary_inplace!(x, y, op, f64, f64_binary, max_f64, min_f64)
        }
        _ => unreachable!("binary operands are type-checked by the planner"),
    }
    a
}

/// The binary function of an op for one element type (reductions, scatter, windows).
pub(crate) trait BinaryFn: Elem {
    /// `op` on two elements of this type.
    fn binary_fn(op: BinaryOp) -> Box<dyn Fn(Self, Self) -> Self + Send + Sync>;
}

macro_rules! binary_fn_int {
    ($($t:ty),*) => {$(
        impl BinaryFn for $t {
            fn binary_fn(op: BinaryOp) -> Box<dyn Fn(Self, Self) -> Self + Send + Sync> {
                Box::new(int_binary::<$t>(op))
            }
        }
    )*};
}
binary_fn_int!(I4, U4, i8, i16, i32, i64, u8, u16, u32, u64);

impl BinaryFn for bool {
    fn binary_fn(op: BinaryOp) -> Box<dyn Fn(Self, Self) -> Self + Send + Sync> {
        Box::new(pred_binary(op))
    }
}
impl BinaryFn for f32 {
    fn binary_fn(op: BinaryOp) -> Box<dyn Fn(Self, Self) -> Self + Send + Sync> {
        Box::new(f32_binary(op))
    }
}
impl BinaryFn for f64 {
    fn binary_fn(op: BinaryOp) -> Box<dyn Fn(Self, Self) -> Self + Send + Sync> {
        Box::new(f64_binary(op))
    }
}
/// The narrow floats compute in f32 and round the result to their own type (FP8 through
/// f16, as XLA:CPU computes it).
macro_rules! binary_fn_via_f32 {
    ($($t:ident: $round:ident),*) => {$(
        impl BinaryFn for $t {
            fn binary_fn(op: BinaryOp) -> Box<dyn Fn(Self, Self) -> Self + Send + Sync> {
                let f = f32_binary(op);
                Box::new(move |p: $t, q: $t| $t::$round(f(p.to_f32(), q.to_f32())))
            }
        }
    )*};
}
binary_fn_via_f32!(F16: from_f32, BF16: from_f32, F8E4M3FN: from_f32_via_f16, F8E5M2: from_f32_via_f16);

/// A key whose integer order is IEEE totalOrder (-NaN < -inf < ... < -0 < +0 < ... < NaN).
pub(crate) fn total_key(x: f64) -> i64 {
    let b = x.to_bits() as i64;
    if b < 0 {
        b ^ i64::MAX
    } else {
        b
    }
}

fn cmp_map<T: Elem>(
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    f: impl Fn(T, T) -> bool + Sync + Send,
) -> ArrayD<bool> {
    if splits(a.len()) {
        Zip::from(a).and(b).par_map_collect(|&x, &y| f(x, y))
    } else {
        Zip::from(a).and(b).map_collect(|&x, &y| f(x, y))
    }
}

/// Compares elementwise; `total_order` uses IEEE totalOrder for floats (`type=TOTALORDER`).
pub fn compare(dir: CompareDirection, total_order: bool, a: &Tensor, b: &Tensor) -> Tensor {
    macro_rules! float_cmp {
        ($x:expr, $y:expr, $conv:expr) => {{
            let conv = $conv;
            if total_order {
                cmp_map($x, $y, move |p, q| {
                    dir.test(total_key(conv(p)), total_key(conv(q)))
                })
            } else {
                cmp_map($x, $y, move |p, q| dir.test(conv(p), conv(q)))
            }
        }};
    }
    Tensor::Pred(match (a, b) {
        (Tensor::Pred(x), Tensor::Pred(y)) => cmp_map(x, y, move |p, q| dir.test(p, q)),
        (Tensor::S4(x), Tensor::S4(y)) => cmp_map(x, y, move |p, q| dir.test(p, q)),
        (Tensor::U4(x), Tensor::U4(y)) => cmp_map(x, y, move |p, q| dir.test(p, q)),
        (Tensor::S8(x), Tensor::S8(y)) => cmp_map(x, y, move |p, q| dir.test(p, q)),
        (Tensor::S16(x), Tensor::S16(y)) => cmp_map(x, y, move |p, q| dir.test(p, q)),
        (Tensor::S32(x), Tensor::S32(y)) => cmp_map(x, y, move |p, q| dir.test(p, q)),
        (Tensor::S64(x), Tensor::S64(y)) => cmp_map(x, y, move |p, q| dir.test(p, q)),
        (Tensor::U8(x), Tensor::U8(y)) => cmp_map(x, y, move |p, q| dir.test(p, q)),
        (Tensor::U16(x), Tensor::U16(y)) => cmp_map(x, y, move |p, q| dir.test(p, q)),
        (Tensor::U32(x), Tensor::U32(y)) => cmp_map(x, y, move |p, q| dir.test(p, q)),
        (Tensor::U64(x), Tensor::U64(y)) => cmp_map(x, y, move |p, q| dir.test(p, q)),
        (Tensor::F16(x), Tensor::F16(y)) => float_cmp!(x, y, |v: F16| v.to_f32() as f64),
        (Tensor::BF16(x), Tensor::BF16(y)) => float_cmp!(x, y, |v: BF16| v.to_f32() as f64),
        (Tensor::F8E4M3FN(x), Tensor::F8E4M3FN(y)) => {
            float_cmp!(x, y, |v: F8E4M3FN| v.to_f32() as f64)
        }
        (Tensor::F8E5M2(x), Tensor::F8E5M2(y)) => {
            float_cmp!(x, y, |v: F8E5M2| v.to_f32() as f64)
        }
        (Tensor::F32(x), Tensor::F32(y)) => float_cmp!(x, y, |v: f32| v as f64),
        (Tensor::F64(x), Tensor::F64(y)) => float_cmp!(x, y, |v: f64| v),
        _ => unreachable!("compare operands are type-checked by the planner"),
    })
}

/// `select(pred, on_true, on_false)`; `pred` is scalar or the same dims. Reuses `t`'s buffer.
pub fn select(pred: &Tensor, mut t: Tensor, f: &Tensor) -> Tensor {
    let Tensor::Pred(p) = pred else {
        unreachable!("select predicate is type-checked")
    };
    macro_rules! sel {
        ($x:expr, $y:expr) => {{
            if p.ndim() == 0 {
                if !p.first().copied().unwrap_or(false) {
                    $x.assign($y);
                }
            } else {
                Zip::from($x).and($y).and(p).for_each(|x, &y, &c| {
                    if !c {
                        *x = y
                    }
                });
            }
        }};
    }
    match (&mut t, f) {
        (Tensor::Pred(x), Tensor::Pred(y)) => sel!(x, y),
        (Tensor::S4(x), Tensor::S4(y)) => sel!(x, y),
        (Tensor::U4(x), Tensor::U4(y)) => sel!(x, y),
        (Tensor::S8(x), Tensor::S8(y)) => sel!(x, y),
        (Tensor::S16(x), Tensor::S16(y)) => sel!(x, y),
        (Tensor::S32(x), Tensor::S32(y)) => sel!(x, y),
        (Tensor::S64(x), Tensor::S64(y)) => sel!(x, y),
        (Tensor::U8(x), Tensor::U8(y)) => sel!(x, y),
        (Tensor::U16(x), Tensor::U16(y)) => sel!(x, y),
        (Tensor::U32(x), Tensor::U32(y)) => sel!(x, y),
        (Tensor::U64(x), Tensor::U64(y)) => sel!(x, y),
        (Tensor::F16(x), Tensor::F16(y)) => sel!(x, y),
        (Tensor::BF16(x), Tensor::BF16(y)) => sel!(x, y),
        (Tensor::F8E4M3FN(x), Tensor::F8E4M3FN(y)) => sel!(x, y),
        (Tensor::F8E5M2(x), Tensor::F8E5M2(y)) => sel!(x, y),
        (Tensor::F32(x), Tensor::F32(y)) => sel!(x, y),
        (Tensor::F64(x), Tensor::F64(y)) => sel!(x, y),
        _ => unreachable!("select operands are type-checked by the planner"),
    }
    t
}

/// `clamp(lo, x, hi)`: lo and hi scalar or the same dims as x. NaN bounds propagate.
pub fn clamp(lo: &Tensor, x: Tensor, hi: &Tensor) -> Tensor {
    let dims = x.dims().to_vec();
    let widen = |b: &Tensor| {
        if b.dims().is_empty() && !dims.is_empty() {
            Some(super::movement::broadcast_scalar(b, &dims))
        } else {
            None
        }
    };
    let (lo_w, hi_w) = (widen(lo), widen(hi));
    let x = binary(BinaryOp::Maximum, x, lo_w.as_ref().unwrap_or(lo));
    binary(BinaryOp::Minimum, x, hi_w.as_ref().unwrap_or(hi))
}

fn convert_array<S: Elem, D: Elem>(a: &ArrayD<S>) -> ArrayD<D> {
    let float_src = S::DTYPE.is_float();
    let int_dst = D::DTYPE.is_int() || D::DTYPE == DType::Pred;
    if !float_src && int_dst {
        map_new(a, |x| D::from_i128(x.to_i128()))
    } else if D::DTYPE == DType::Pred {
        map_new(a, |x| {
            D::from_f64(if x.to_f64() != 0.0 { 1.0 } else { 0.0 })
        })
    } else {
        map_new(a, |x| D::from_f64(x.to_f64()))
    }
}

/// `convert` to `to`: XLA's rules (float to int saturates, NaN to 0; int to int wraps;
/// anything to pred is `!= 0`).
pub fn convert(t: &Tensor, to: DType) -> Tensor {
    if t.dtype() == to {
        return t.clone();
    }
    crate::with_tensor!(t, a => crate::make_tensor!(to, D => convert_array::<_, D>(a)))
}

/// `bitcast-convert` to `to` with result dims `dims` (bytes reinterpreted).
pub fn bitcast_convert(t: &Tensor, to: DType, dims: &[usize]) -> Tensor {
    let bytes = t.to_le_bytes();
    Tensor::from_le_bytes(to, dims, &bytes).unwrap_or_else(|_| Tensor::zeros(to, dims))
}

/// `map(inputs..), to_apply=f` element by element, in row-major order: `f` of the inputs'
/// elements at each index gives the result's element (a result of `dtype` and `dims`).
pub fn map_elements(
    inputs: &[&Tensor],
    dtype: DType,
    dims: &[usize],
    f: &mut dyn FnMut(Vec<Tensor>) -> Result<Vec<Tensor>>,
) -> Result<Tensor> {
    let inputs: Vec<_> = inputs.iter().map(|t| standard_tensor(t)).collect();
    let mut out = Tensor::zeros(dtype, dims);
    for o in 0..dims.iter().product() {
        let r = f(inputs.iter().map(|t| element(t, o)).collect())?;
        if let Some(r) = r.first() {
            set_element(&mut out, o, r);
        }
    }
    Ok(out)
}
