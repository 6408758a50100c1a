//! statetensor-nrt-emu: `libnrt_emu.so`, the libnrt C ABI on top of statetensor's HLO
//! engine and core's HBM ledger (not on the simulator backend), so the driver's real FFI
//! path runs in CI with no Neuron device — the same idea as running a GPU driver stack on a
//! software rasteriser.
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

#![allow(unsafe_code)]

pub mod abi;
pub mod emu;

pub use emu::{Fault, Naming};

/// Safe access, from Rust tests, to the test hook of a *loaded* `libnrt_emu.so` (the
/// library the driver dlopens — not this crate's statically linked copy).
pub mod hook {
    use std::os::raw::{c_char, c_int};
    use std::path::PathBuf;

    /// Where cargo put `libnrt_emu.so` for the running test or benchmark: next to it in
    /// `target/<profile>/deps/` (where a dependency's cdylib lands), or in
    /// `target/<profile>/` (after `cargo build -p statetensor-nrt-emu`).
    pub fn built_library() -> Option<PathBuf> {
        let exe = std::env::current_exe().ok()?;
        let deps = exe.parent()?;
        [
            deps.join("libnrt_emu.so"),
            deps.parent()?.join("libnrt_emu.so"),
        ]
        .into_iter()
        .find(|p| p.exists())
    }

    /// Sets the fault mode (`STATETENSOR_EMU_FAULT` syntax; "" clears it) and, when
    /// `hbm_bytes > 0`, the capacity of the emulator at `library`. The runtime must be
    /// initialised (the driver has opened it).
    pub fn configure(library: &str, fault: &str, hbm_bytes: u64) -> Result<(), String> {
        let c = std::ffi::CString::new(fault).map_err(|_| "fault has a NUL byte".to_string())?;
        // SAFETY: dlopen of an already-loaded library returns the same handle; the symbol
        // is this crate's `statetensor_emu_configure` with exactly this C signature, and
        // the CString outlives the call.
        let status = unsafe {
            let lib = libloading::Library::new(library).map_err(|e| e.to_string())?;
            let f: libloading::Symbol<unsafe extern "C" fn(*const c_char, u64) -> c_int> = lib
                .get(b"statetensor_emu_configure\0")
                .map_err(|e| e.to_string())?;
            f(c.as_ptr(), hbm_bytes)
        };
        if status == 0 {
            Ok(())
        } else {
            Err(format!(
                "statetensor_emu_configure({fault}, {hbm_bytes}) returned {status}"
            ))
        }
    }
}
