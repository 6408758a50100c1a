//! Special functions XLA computes with its own algorithms, so that results match XLA:CPU's.
//!
//! `erf` in f32 is the rational approximation XLA:CPU emits, `x·P(x²)/Q(x²)` with each
//! Horner step a fused multiply-add, saturating to ±1 from |x| ≥ 3.7439212 (the threshold of
//! XLA's scalar loop emitter, which every GELU takes because its fusion holds broadcast
//! constants; XLA's vector emitter saturates from 3.8325069 instead and differs by at most 5
//! ulps in between). It matches XLA:CPU bit for bit on every f32 input but subnormals, which
//! XLA flushes to zero (and returns ±0) while statetensor keeps them, as its other kernels
//! do. f16 and bf16 widen exactly, compute in f32 and round once. f64: XLA:CPU calls the
//! host's C library; here a series with positive terms, `erf(x) = 2/√π · e^(-x²) ·
//! Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1))`, accurate to a few ulps (no cancellation), and ±1 beyond
//! |x| = 6 where erf rounds to ±1 in f64.

/// Numerator coefficients, highest power first (x·P(x²)): XLA's decimal constants
/// 0.00022905065861350646, 0.0034082910107109506, 0.050955695062380861,
/// 0.18520832239976145 and 1.128379143519084, each rounded once to f32.
const ERF_P: [f32; 5] = [
    f32::from_bits(0x3970_2D51),
    f32::from_bits(0x3B5F_5DA2),
    f32::from_bits(0x3D50_B6EB),
    f32::from_bits(0x3E3D_A740),
    f32::from_bits(0x3F90_6EBA),
];

/// Denominator coefficients, highest power first (Q(x²)): -1.1791602954361697e-7,
/// 0.000023547966471313185, 0.0010179625278914885, 0.014070470171167667,
/// 0.11098505178285362, 0.49746925110067538 and 1, rounded once to f32.
const ERF_Q: [f32; 7] = [
    f32::from_bits(0xB3FD_3906),
    f32::from_bits(0x37C5_88DF),
    f32::from_bits(0x3A85_6D28),
    f32::from_bits(0x3C66_87D4),
    f32::from_bits(0x3DE3_4C21),
    f32::from_bits(0x3EFE_B44A),
    1.0,
];

/// |x| from which erf is ±1 (3.7439211627767994 rounded to f32).
const ERF_SATURATES: f32 = f32::from_bits(0x406F_9C68);

/// XLA:CPU's f32 erf.
pub(crate) fn erf_f32(x: f32) -> f32 {
    let t = x * x;
    let p = ERF_P[1..]
        .iter()
        .fold(ERF_P[0], |acc, &c| t.mul_add(acc, c));
    let q = ERF_Q[1..]
        .iter()
        .fold(ERF_Q[0], |acc, &c| t.mul_add(acc, c));
    let r = (x * p) / q;
    if x.abs() >= ERF_SATURATES {
        1.0f32.copysign(x)
    } else {
        r
    }
}

/// erf in f64 by its series of positive terms (see the module doc).
pub(crate) fn erf_f64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    if a >= 6.0 {
        return 1.0f64.copysign(x);
    }
    if a == 0.0 {
        return x;
    }
    let t = a * a;
    let (mut term, mut sum, mut n) = (a, a, 0u32);
    while term > sum * 1e-18 {
        n += 1;
        term *= 2.0 * t / f64::from(2 * n + 1);
        sum += term;
    }
    let r = std::f64::consts::FRAC_2_SQRT_PI * (-t).exp() * sum;
    r.min(1.0).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The constants are XLA's decimal literals rounded once to f32.
    #[test]
    #[allow(clippy::excessive_precision)] // the literals as XLA's source writes them
    fn coefficients_are_xlas_literals() {
        let literals: [f64; 12] = [
            0.000_229_050_658_613_506_46,
            0.003_408_291_010_710_950_6,
            0.050_955_695_062_380_861,
            0.185_208_322_399_761_45,
            1.128_379_143_519_084,
            -1.179_160_295_436_169_7e-7,
            0.000_023_547_966_471_313_185,
            0.001_017_962_527_891_488_5,
            0.014_070_470_171_167_667,
            0.110_985_051_782_853_62,
            0.497_469_251_100_675_38,
            1.0,
        ];
        for (c, l) in ERF_P.iter().chain(&ERF_Q).zip(literals) {
            assert_eq!(c.to_bits(), (l as f32).to_bits(), "{l}");
        }
        assert_eq!(ERF_SATURATES, 3.743_921_162_776_799_4_f64 as f32);
    }

    /// Values XLA:CPU (jaxlib 0.10.2) returns, bit for bit.
    #[test]
    fn f32_matches_xla() {
        assert_eq!(erf_f32(0.0).to_bits(), 0);
        assert_eq!(erf_f32(-0.0).to_bits(), 0x8000_0000);
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(f32::NEG_INFINITY), -1.0);
        assert!(erf_f32(f32::NAN).is_nan());
        assert_eq!(erf_f32(3.8), 1.0);
        assert_eq!(erf_f32(-x_odd()), -erf_f32(x_odd()));
        fn x_odd() -> f32 {
            0.731
        }
    }

    #[test]
    fn f64_is_accurate() {
        // erf(0.5), erf(1), erf(2), erf(3) to 17 digits
        for (x, want) in [
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.0, 0.999_977_909_503_001_4),
            (1e-10, 1.128_379_167_095_512_6e-10),
        ] {
            let got = erf_f64(x);
            assert!(
                ((got - want) / want).abs() < 4e-16,
                "erf({x}) = {got}, want {want}"
            );
            assert_eq!(erf_f64(-x), -got);
        }
        assert_eq!(erf_f64(7.0), 1.0);
    }
}
