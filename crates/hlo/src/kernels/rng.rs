//! `rng-bit-generator`: counter-based random bits, bit for bit as XLA:CPU produces them.
//!
//! XLA:CPU has no kernel of its own for the op: a pass rewrites it into ordinary HLO that
//! runs a block cipher over counters, and `rng_default` means Philox there (as on GPU). This
//! module computes the same blocks directly:
//!
//! - **ThreeFry** (`rng_three_fry`, state `u64[2]` = {key, counter}): Threefry-2x32 with 20
//!   rounds (Random123's `threefry2x32_20`). A 64-bit element is one block; 32-bit and
//!   narrower outputs take one block per *pair* of elements along a split dimension (the
//!   first of even size, else the first of the largest size): the pair's first element
//!   gets the block's first word, the second its second word.
//! - **Philox** (`rng_philox`, `rng_default`; state `u64[2]` = {key, counter} or `u64[3]` =
//!   {key, counter low, counter high}): Philox-4x32 with 10 rounds (`philox4x32_10`) over a
//!   128-bit counter whose high word is, for a two-word state, the key itself (XLA reverses
//!   the state vector). Four 32-bit words per block, in row-major order; a 64-bit element
//!   takes two words, low first.
//!
//! Outputs narrower than 32 bits are the low bits of the 32-bit result for the same shape.
//! The new state advances the counter by the blocks used; for a two-word Philox state a
//! carry out of the low counter word is dropped, as XLA drops it. Checked against jaxlib on
//! CPU (`lax.rng_bit_generator`, every algorithm, element width and a range of shapes and
//! wrapping counters) and against the Random123 known-answer vectors.

use crate::tensor::Tensor;
use ndarray::{ArrayD, IxDyn};
use statetensor_core::DType;

/// The generator of a `rng-bit-generator` (its `algorithm=` attribute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RngAlgorithm {
    /// `rng_three_fry`.
    ThreeFry,
    /// `rng_philox`, and `rng_default` (what XLA:CPU and XLA:GPU choose for it).
    Philox,
}

/// Threefry-2x32, 20 rounds: block `(x0, x1)` under key `(k0, k1)`.
pub(crate) fn threefry2x32(k0: u32, k1: u32, x0: u32, x1: u32) -> [u32; 2] {
    const ROTATIONS: [u32; 8] = [13, 15, 26, 6, 17, 29, 16, 24];
    let ks = [k0, k1, 0x1BD1_1BDA ^ k0 ^ k1];
    let (mut x0, mut x1) = (x0.wrapping_add(ks[0]), x1.wrapping_add(ks[1]));
    for block in 0..5usize {
        let rotations = if block % 2 == 0 {
            &ROTATIONS[..4]
        } else {
            &ROTATIONS[4..]
        };
        for &r in rotations {
            x0 = x0.wrapping_add(x1);
            x1 = x1.rotate_left(r) ^ x0;
        }
        x0 = x0.wrapping_add(ks[(block + 1) % 3]);
        x1 = x1
            .wrapping_add(ks[(block + 2) % 3])
            .wrapping_add(block as u32 + 1);
    }
    [x0, x1]
}

/// Philox-4x32, 10 rounds: counter `x` under key `(k0, k1)`.
pub(crate) fn philox4x32(x: [u32; 4], k0: u32, k1: u32) -> [u32; 4] {
    const MA: u64 = 0xD251_1F53;
    const MB: u64 = 0xCD9E_8D57;
    let (mut x, mut k0, mut k1) = (x, k0, k1);
    for _ in 0..10 {
        let pa = x[0] as u64 * MA;
        let pb = x[2] as u64 * MB;
        x = [
            (pb >> 32) as u32 ^ x[1] ^ k0,
            pb as u32,
            (pa >> 32) as u32 ^ x[3] ^ k1,
            pa as u32,
        ];
        k0 = k0.wrapping_add(0x9E37_79B9);
        k1 = k1.wrapping_add(0xBB67_AE85);
    }
    x
}

/// The bits of one `rng-bit-generator` call: `state` (2 words, or 3 for Philox) and an
/// unsigned output of `dtype` and `dims`. Returns the new state and the bits. The planner
/// has checked the state length and that `dtype` is u8, u16, u32 or u64.
pub fn rng_bit_generator(
    algorithm: RngAlgorithm,
    state: &[u64],
    dtype: DType,
    dims: &[usize],
) -> (Vec<u64>, Tensor) {
    let wide = dtype == DType::U64;
    let (new_state, words) = match algorithm {
        RngAlgorithm::ThreeFry => threefry_words(state, dims, wide),
        RngAlgorithm::Philox => philox_words(state, dims.iter().product(), wide),
    };
    let shape = IxDyn(dims);
    let tensor = match dtype {
        DType::U64 => Tensor::U64(ArrayD::from_shape_vec(shape, words).expect("rng size")),
        DType::U32 => Tensor::U32(narrow(shape, &words)),
        DType::U16 => Tensor::U16(narrow(shape, &words)),
        DType::U8 => Tensor::U8(narrow(shape, &words)),
        other => unreachable!("rng-bit-generator output {other} is refused by the planner"),
    };
    (new_state, tensor)
}

/// The low bits of 32-bit words, as an array of a narrower (or equal) unsigned type.
fn narrow<T: TryFrom<u64> + Clone>(shape: IxDyn, words: &[u64]) -> ArrayD<T> {
    let mask = |w: u64| {
        T::try_from(w & (u64::MAX >> (64 - 8 * std::mem::size_of::<T>())))
            .ok()
            .expect("masked to the width")
    };
    ArrayD::from_shape_vec(shape, words.iter().map(|&w| mask(w)).collect()).expect("rng size")
}

/// ThreeFry words in row-major order (64-bit values, or 32-bit words in u64s).
fn threefry_words(state: &[u64], dims: &[usize], wide: bool) -> (Vec<u64>, Vec<u64>) {
    let (key, counter) = (state[0], state[1]);
    let block = |i: u64| {
        let c = counter.wrapping_add(i);
        threefry2x32(key as u32, (key >> 32) as u32, c as u32, (c >> 32) as u32)
    };
    let n: usize = dims.iter().product();
    if wide {
        let words = (0..n as u64)
            .map(|i| {
                let [lo, hi] = block(i);
                lo as u64 | (hi as u64) << 32
            })
            .collect();
        return (vec![key, counter.wrapping_add(n as u64)], words);
    }
    if dims.is_empty() {
        return (vec![key, counter.wrapping_add(1)], vec![block(0)[0] as u64]);
    }
    // one block per pair of elements along the split dimension
    let split = dims.iter().position(|d| d % 2 == 0).unwrap_or_else(|| {
        let largest = *dims.iter().max().expect("rank > 0");
        dims.iter()
            .position(|&d| d == largest)
            .expect("the largest")
    });
    let mut half = dims.to_vec();
    half[split] = dims[split].div_ceil(2);
    let (outer, inner) = (
        dims[..split].iter().product::<usize>(),
        dims[split + 1..].iter().product::<usize>(),
    );
    let mut words = Vec::with_capacity(n);
    for o in 0..outer {
        for s in 0..dims[split] {
            for i in 0..inner {
                let j = (o * half[split] + s / 2) * inner + i;
                words.push(block(j as u64)[s % 2] as u64);
            }
        }
    }
    let used = half.iter().product::<usize>() as u64;
    (vec![key, counter.wrapping_add(used)], words)
}

/// Philox words in row-major order: four 32-bit words per block, or two 64-bit values.
fn philox_words(state: &[u64], n: usize, wide: bool) -> (Vec<u64>, Vec<u64>) {
    let key = state[0];
    let (lo, hi) = if state.len() >= 3 {
        (state[1], state[2])
    } else {
        (state[1], state[0])
    };
    // the 128-bit counter (lo, hi) plus i
    let counter = |i: u64| {
        let l = lo.wrapping_add(i);
        (l, if l < lo { hi.wrapping_add(1) } else { hi })
    };
    let words32 = if wide { 2 * n } else { n };
    let blocks = words32.div_ceil(4) as u64;
    let mut words = Vec::with_capacity(n + 3);
    for b in 0..blocks {
        let (l, h) = counter(b);
        let r = philox4x32(
            [l as u32, (l >> 32) as u32, h as u32, (h >> 32) as u32],
            key as u32,
            (key >> 32) as u32,
        );
        if wide {
            words.push(r[0] as u64 | (r[1] as u64) << 32);
            words.push(r[2] as u64 | (r[3] as u64) << 32);
        } else {
            words.extend(r.iter().map(|&w| w as u64));
        }
    }
    words.truncate(n);
    let (l, h) = counter(blocks);
    let new_state = if state.len() >= 3 {
        vec![key, l, h]
    } else {
        vec![key, l]
    };
    (new_state, words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // Random123's known-answer vectors
        assert_eq!(threefry2x32(0, 0, 0, 0), [0x6b20_0159, 0x99ba_4efe]);
        let m = u32::MAX;
        assert_eq!(threefry2x32(m, m, m, m), [0x1cb9_96fc, 0xbb00_2be7]);
        assert_eq!(
            threefry2x32(0x1319_8a2e, 0x0370_7344, 0x243f_6a88, 0x85a3_08d3),
            [0xc492_3a9c, 0x483d_f7a0]
        );
        assert_eq!(
            philox4x32([0; 4], 0, 0),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox4x32([m; 4], m, m),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox4x32(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                0xa409_3822,
                0x299f_31d0
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }
}
