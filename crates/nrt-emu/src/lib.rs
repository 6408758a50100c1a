//! statetensor-nrt-emu: `libnrt_emu.so`, the libnrt C ABI on top of statetensor's
//! simulator, so the driver's real FFI path runs in CI with no Neuron device — the same
//! idea as running a GPU driver stack on a software rasteriser.
//!
//! Design choices:
//! - **The real ABI.** Every exported function has libnrt's exact signature and the
//!   structs have the headers' layouts (`abi`); a C program in the tests drives it the way
//!   the runtime's developer-guide sample does.
//! - **Behaves like libnrt where the documents say how.** `NRT_UNINITIALIZED` before
//!   `nrt_init`, `NRT_CLOSED` after `nrt_close`, `NRT_INVALID` for a NEFF it cannot load,
//!   a tensor-set name or size mismatch, or a read/write past a tensor's end;
//!   `NRT_RESOURCE` past the core's capacity; tensor sets keyed by name; the same tensor
//!   in the input and output sets is how state is bound.
//! - **An emulated NEFF is HLO text.** `nrt_load` accepts the HLO a NEFF is compiled from
//!   and refuses anything else. I/O names follow torch-neuronx (`input{p}`, `output{o}`) or
//!   the newer compiler (`{name}.must_alias_input`): `STATETENSOR_EMU_NAMES=torch|nkipy`.
//! - **Hazards and faults are real.** Binding one tensor as the input and output of a pair
//!   the model does not alias reproduces what hardware does (the output is written before
//!   the input is read), with a warning; `STATETENSOR_EMU_FAULT` injects failures so tests
//!   can show they are caught. `STATETENSOR_EMU_HBM_BYTES` sets the capacity.
//! - **Handles are checked.** Every pointer handed out is registered; an unknown or freed
//!   handle is `NRT_INVALID_HANDLE`, never undefined behaviour on our side.

pub mod abi;
pub mod emu;

pub use emu::{Fault, Naming};
