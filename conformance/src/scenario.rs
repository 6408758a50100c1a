//! Scenarios as data, and the proptest strategies that generate them.

use proptest::prelude::*;
use statetensor_core::{DType, HostTensor, Signature};
use statetensor_hlo::Tensor;

/// The committed fixtures scenarios run on (all keep state on the device; the `_external`
/// ones with the alias map from [`crate::fixture_aliases`]; the `_weights` ones with
/// resident weights, [`crate::fixture_load_options`]).
pub const MODELS: &[&str] = &[
    "mlp_cache",
    "kv_decoder",
    "swap",
    "multi_reader",
    "counters",
    "ring_buffer",
    "bf16_state",
    // alias maps kept beside the HLO (torch-neuronx's shape), given as the override
    "mlp_cache_external",
    "swap_external",
    "kv_decoder_external",
    // resident weights, uploaded by the first model and shared by the second
    "mlp_cache_weights",
    "kv_decoder_weights",
];

/// One operation of a scenario. Sets are named `s0`..`s2`; states are picked by index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create (or attach to) a state set: zeros, or values derived from a seed.
    Create {
        /// Which set.
        set: u8,
        /// `Some(seed)`: initial values.
        init: Option<u64>,
    },
    /// Write a state, whole (`None`) or a byte range, with bytes derived from a seed.
    Write {
        /// Which set.
        set: u8,
        /// Which state (index, modulo the model's state count).
        state: u8,
        /// Raw range parameters (may fall outside the tensor: an error every side reports).
        range: Option<(u32, u32)>,
        /// Data seed.
        seed: u64,
    },
    /// Read a state, whole or a byte range.
    Read {
        /// Which set.
        set: u8,
        /// Which state.
        state: u8,
        /// Raw range parameters.
        range: Option<(u32, u32)>,
    },
    /// Execute with inputs derived from a seed; optionally through a second model of the
    /// same graph sharing the set (it attaches first).
    Execute {
        /// Which set.
        set: u8,
        /// Input seed.
        seed: u64,
        /// Through the second model.
        second_model: bool,
    },
    /// Reset a set (zeros, or its initial values).
    Reset {
        /// Which set.
        set: u8,
    },
    /// Device-side snapshot/restore: copy one set into another.
    Snapshot {
        /// Source.
        from: u8,
        /// Destination (created if needed).
        to: u8,
    },
    /// Save a set to a safetensors file and load it into another.
    FileRoundTrip {
        /// Source.
        from: u8,
        /// Destination.
        to: u8,
    },
    /// Drop a set.
    Drop {
        /// Which set.
        set: u8,
    },
}

/// A model and the operations run on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Fixture name.
    pub model: String,
    /// Operations in order.
    pub ops: Vec<Op>,
}

impl Scenario {
    /// The name of set `i`.
    pub fn set_name(i: u8) -> String {
        format!("s{}", i % 3)
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when there are no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A deterministic stream of numbers from a seed (splitmix64).
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value for `dtype`: floats in [-1, 1), integers in `lo..hi`, pred either.
    fn value(&mut self, dtype: DType, lo: i64, hi: i64) -> f64 {
        let r = self.next();
        if dtype.is_float() {
            (r >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        } else if dtype == DType::Pred {
            (r & 1) as f64
        } else {
            let lo = if dtype.is_unsigned_int() {
                lo.max(0)
            } else {
                lo
            };
            (lo + (r % (hi - lo) as u64) as i64) as f64
        }
    }
}

fn tensor(spec: &statetensor_core::TensorSpec, s: &mut Stream, lo: i64, hi: i64) -> HostTensor {
    let vals: Vec<f64> = (0..spec.shape.element_count())
        .map(|_| s.value(spec.dtype, lo, hi))
        .collect();
    let t = Tensor::from_f64s(spec.dtype, spec.shape.dims(), &vals)
        .expect("the count matches the spec");
    HostTensor {
        dtype: spec.dtype,
        shape: spec.shape.clone(),
        data: t.to_le_bytes(),
    }
}

/// Inputs for an execute, derived from `seed`.
pub fn inputs_for(sig: &Signature, seed: u64) -> Vec<HostTensor> {
    let mut s = Stream(seed);
    sig.input_params()
        .iter()
        .map(|&p| tensor(&sig.params[p], &mut s, -3, 8))
        .collect()
}

/// Initial values for every state, derived from `seed`.
pub fn values_for(sig: &Signature, seed: u64) -> Vec<(String, HostTensor)> {
    let mut s = Stream(seed);
    sig.state_params()
        .iter()
        .map(|&p| {
            (
                sig.params[p].name.clone(),
                tensor(&sig.params[p], &mut s, 0, 8),
            )
        })
        .collect()
}

/// Raw bytes derived from `seed`.
pub fn bytes_for(seed: u64, len: usize) -> Vec<u8> {
    let mut s = Stream(seed);
    (0..len).map(|_| s.next() as u8).collect()
}

/// (offset, length) for a range parameter on state `state` of `sig` ([`byte_range`]).
pub(crate) fn state_byte_range(
    sig: &statetensor_core::Signature,
    state: &str,
    range: Option<(u32, u32)>,
) -> (u64, u64) {
    let p = sig
        .state_param("range", state)
        .expect("a state of the signature");
    byte_range(range, sig.params[p].size_bytes() as u64)
}

/// (offset, length) for a range parameter on a tensor of `size` bytes: `None` is the whole
/// tensor; a range may reach past the end (every backend must reject it the same way).
pub fn byte_range(range: Option<(u32, u32)>, size: u64) -> (u64, u64) {
    match range {
        None => (0, size),
        Some((a, b)) => {
            let off = a as u64 % (size + 2);
            (off, 1 + b as u64 % (size + 1))
        }
    }
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    let set = 0u8..3;
    let range = proptest::option::of((any::<u32>(), any::<u32>()));
    prop_oneof![
        2 => (set.clone(), proptest::option::of(any::<u64>())).prop_map(|(set, init)| Op::Create { set, init }),
        2 => (set.clone(), any::<u8>(), range.clone(), any::<u64>()).prop_map(|(set, state, range, seed)| Op::Write { set, state, range, seed }),
        2 => (set.clone(), any::<u8>(), range).prop_map(|(set, state, range)| Op::Read { set, state, range }),
        6 => (set.clone(), any::<u64>(), proptest::bool::weighted(0.25)).prop_map(|(set, seed, second_model)| Op::Execute { set, seed, second_model }),
        1 => set.clone().prop_map(|set| Op::Reset { set }),
        1 => (set.clone(), set.clone()).prop_map(|(from, to)| Op::Snapshot { from, to }),
        1 => (set.clone(), set.clone()).prop_map(|(from, to)| Op::FileRoundTrip { from, to }),
        1 => set.prop_map(|set| Op::Drop { set }),
    ]
}

/// Scenarios over the committed fixtures: a first set is always created, then 1–12
/// random operations.
pub fn scenario_strategy() -> impl Strategy<Value = Scenario> {
    (
        0..MODELS.len(),
        proptest::option::of(any::<u64>()),
        proptest::collection::vec(op(), 1..12),
    )
        .prop_map(|(m, init, mut ops)| {
            ops.insert(0, Op::Create { set: 0, init });
            Scenario {
                model: MODELS[m].to_string(),
                ops,
            }
        })
}
