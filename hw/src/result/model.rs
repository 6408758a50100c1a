//! Model calls: load, I/O tensor information, execute, unload.

use super::{c_chars, check};
use crate::sys::*;
use statetensor_core::{Error, Result};
use std::os::raw::c_void;

/// One I/O tensor of a loaded model, as `nrt_get_model_tensor_info` reports it.
#[derive(Clone, Debug)]
pub struct IoInfo {
    /// The NEFF's name for it (the tensor-set key).
    pub name: String,
    /// Input (true) or output.
    pub input: bool,
    /// Bytes.
    pub size: usize,
}

/// A model's place among the cores of an SPMD program: `nrt_load_collectives`'s
/// `ctx_device_id` and `ctx_device_count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Collective {
    /// This core's global device id.
    pub device: u32,
    /// How many cores run the program.
    pub devices: u32,
}

/// `nrt_load` on NeuronCore `vnc`, or `nrt_load_collectives` there as one core of an SPMD
/// program; returns the model handle. A runtime without `nrt_load_collectives` is
/// `BackendUnavailable`.
///
/// # Safety
/// `neff` must stay alive and unmoved until the model is unloaded.
pub unsafe fn load(
    lib: &NrtLib,
    neff: &[u8],
    vnc: u32,
    collective: Option<Collective>,
) -> Result<*mut nrt_model_t> {
    let mut ptr = std::ptr::null_mut();
    let (bytes, size) = (neff.as_ptr() as *const c_void, neff.len());
    // vnc_count: "DEPRECATED: always use -1" (nrt.h 2.28)
    let (name, s) = match collective {
        None => (
            "nrt_load",
            // SAFETY: the caller keeps `neff` alive for the model's lifetime; `ptr` is a
            // valid out-pointer.
            unsafe { (lib.nrt_load)(bytes, size, vnc as i32, -1, &mut ptr) },
        ),
        Some(c) => {
            let f = lib.nrt_load_collectives.ok_or_else(|| Error::BackendUnavailable {
                what: "nrt_load_collectives".into(),
                reason: "this libnrt does not export it; a model run by several NeuronCores needs a runtime with collectives (aws-neuronx-runtime-lib 2.x and aws-neuronx-collectives)".into(),
            })?;
            (
                "nrt_load_collectives",
                // SAFETY: as for nrt_load; the two ids are plain integers.
                unsafe { f(bytes, size, vnc as i32, -1, c.device, c.devices, &mut ptr) },
            )
        }
    };
    check(lib, name, s)?;
    Ok(ptr)
}

/// `nrt_get_model_tensor_info`, copied out, then `nrt_free_model_tensor_info`.
///
/// # Safety
/// `model` must be a live handle from [`load`].
pub unsafe fn io(lib: &NrtLib, model: *mut nrt_model_t) -> Result<Vec<IoInfo>> {
    let mut arr = std::ptr::null_mut();
    // SAFETY: the caller guarantees a live model handle; `arr` is a valid out-pointer.
    let s = unsafe { (lib.nrt_get_model_tensor_info)(model, &mut arr) };
    check(lib, "nrt_get_model_tensor_info", s)?;
    let mut v = Vec::new();
    // SAFETY: on success `arr` points to a runtime-owned array of `tensor_count` entries,
    // read here and freed below with the runtime's own function.
    unsafe {
        let n = (*arr).tensor_count as usize;
        let base = std::ptr::addr_of!((*arr).tensor_array) as *const nrt_tensor_info_t;
        for i in 0..n {
            let e = &*base.add(i);
            v.push(IoInfo {
                name: c_chars(&e.name),
                input: e.usage == NRT_TENSOR_USAGE_INPUT,
                size: e.size,
            });
        }
        (lib.nrt_free_model_tensor_info)(arr);
    }
    Ok(v)
}

/// `nrt_execute`.
///
/// # Safety
/// All three handles must be live; the tensors in the sets must outlive the call.
pub unsafe fn execute(
    lib: &NrtLib,
    model: *mut nrt_model_t,
    inputs: *mut nrt_tensor_set_t,
    outputs: *mut nrt_tensor_set_t,
) -> Result<()> {
    // SAFETY: the caller guarantees live handles for the duration of the call.
    let s = unsafe { (lib.nrt_execute)(model, inputs, outputs) };
    check(lib, "nrt_execute", s)
}

/// `nrt_unload`.
///
/// # Safety
/// `model` must be a live handle from [`load`], not used afterwards.
pub unsafe fn unload(lib: &NrtLib, model: *mut nrt_model_t) {
    // SAFETY: the caller guarantees a live handle unloaded exactly once.
    unsafe { (lib.nrt_unload)(model) };
}
