//! statetensor-hw: the libnrt hardware driver behind the [`StatefulModel`] trait.
//!
//! | layer | module | what it holds |
//! |---|---|---|
//! | sys | [`sys`] | C types and constants exactly as libnrt's headers define them; one function table resolved once from the library loaded at run time (libloading) |
//! | loader | `loader` | the candidates (`$STATETENSOR_LIBNRT`, ...) and the process-wide registry that initialises each library once |
//! | result | [`result`] | one function per libnrt call, grouped by area (runtime, model, tensor, tensor set): `NRT_STATUS` → `Result` with the C function's name and the raw code; the only caller of the function table |
//! | safe | [`safe`] | RAII handles (runtime, model, device tensor, tensor set) that own what the `result` calls need to be sound |
//! | driver | [`NrtDevice`], [`NrtModel`] | the state-tensor semantics: state sets bound in place, NEFF I/O names matched to the HLO |
//! | several cores | [`NrtShardedModel`] | an SPMD model: one `NrtModel` per NeuronCore loaded with `nrt_load_collectives`, executed together |
//!
//! Design choices:
//! - **Nothing is linked at build time.** The crate builds anywhere; libnrt is found at run
//!   time (`$STATETENSOR_LIBNRT`, `libnrt.so.1`, `/opt/aws/neuron/lib/libnrt.so.1`), and a
//!   missing library or symbol is `BackendUnavailable` listing every path tried.
//! - **State is bound in place.** Each state tensor is allocated once on the model's
//!   NeuronCore and added — the same `nrt_tensor_t` — to the input set under its input name
//!   and to the output set under its aliased output's name. Each execute writes only user
//!   inputs and reads only user outputs.
//! - **Names are discovered, dtypes are not trusted.** NEFF I/O names come from
//!   `nrt_get_model_tensor_info` and are matched to HLO parameters by convention or
//!   `bindings.json` ([`io_names`]); dtypes come from the HLO (libnrt's dtype numbers changed
//!   between releases).
//! - **Same validation as the simulator.** Alias maps, inputs, state-set lookup, locking,
//!   poisoning, byte ranges and copies are checked by `statetensor-core`, so the driver
//!   rejects what the simulator rejects, with the same error kinds.
//! - **`unsafe` is fenced.** `sys` (loading the library and resolving its symbols),
//!   `result` (the C calls) and the handles in `safe` hold every `unsafe` block; each says
//!   why it is sound and each `unsafe fn` has a `# Safety` section.
#![allow(unsafe_code)]

mod device;
pub mod io_names;
mod loader;
mod model;
pub mod result;
pub mod safe;
mod sharded;
pub mod sys;

pub use device::{probe, NrtDevice, ProbeInfo};
pub use loader::{candidates, LIBNRT_ENV};
pub use model::NrtModel;
pub use sharded::NrtShardedModel;

#[doc(no_inline)]
pub use statetensor_core::StatefulModel;
