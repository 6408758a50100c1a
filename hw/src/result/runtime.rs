//! Runtime-wide calls: initialisation, version, visible cores, memory statistics.

use super::{c_chars, check};
use crate::sys::*;
use statetensor_core::Result;

/// `nrt_init` with no framework (what the developer guide passes for standalone use).
pub fn init(lib: &NrtLib) -> Result<()> {
    // SAFETY: nrt_init takes a framework enum and two C strings; empty static strings are
    // what the developer guide passes for NO_FW.
    let s = unsafe { (lib.nrt_init)(NRT_FRAMEWORK_TYPE_NO_FW, c"".as_ptr(), c"".as_ptr()) };
    check(lib, "nrt_init", s)
}

/// `nrt_get_version` as `major.minor.patch.maintenance (detail)`; `None` when the runtime
/// lacks the call or it fails.
pub fn version(lib: &NrtLib) -> Option<String> {
    let f = lib.nrt_get_version?;
    let mut v = std::mem::MaybeUninit::<nrt_version_t>::zeroed();
    // SAFETY: the buffer is exactly size_of::<nrt_version_t>() writable bytes.
    let s = unsafe { f(v.as_mut_ptr(), std::mem::size_of::<nrt_version_t>()) };
    if s != NRT_SUCCESS {
        return None;
    }
    // SAFETY: zero-initialised, and filled by a successful call.
    let v = unsafe { v.assume_init() };
    Some(format!(
        "{}.{}.{}.{} ({})",
        v.rt_major,
        v.rt_minor,
        v.rt_patch,
        v.rt_maintenance,
        c_chars(&v.rt_detail)
    ))
}

/// Visible NeuronCores: `nrt_get_visible_vnc_count` where the runtime has it, else
/// `nrt_get_visible_nc_count`.
pub fn visible_cores(lib: &NrtLib) -> Result<u32> {
    let mut n = 0u32;
    let (f, name) = match lib.nrt_get_visible_vnc_count {
        Some(f) => (f, "nrt_get_visible_vnc_count"),
        None => (lib.nrt_get_visible_nc_count, "nrt_get_visible_nc_count"),
    };
    // SAFETY: writes one u32 to a valid local.
    let s = unsafe { f(&mut n) };
    check(lib, name, s)?;
    Ok(n)
}

/// `nrt_get_vnc_memory_stats` of NeuronCore `vnc` as (used, capacity) bytes, when the
/// runtime has it.
pub fn memory_stats(lib: &NrtLib, vnc: u32) -> Option<(u64, u64)> {
    let f = lib.nrt_get_vnc_memory_stats?;
    let mut st = nrt_vnc_memory_stats_t {
        bytes_used: 0,
        bytes_limit: 0,
    };
    let mut out = 0usize;
    // SAFETY: passes a valid struct and its exact size, and a valid size_t for the output.
    let s = unsafe {
        f(
            vnc,
            &mut st,
            std::mem::size_of::<nrt_vnc_memory_stats_t>(),
            &mut out,
        )
    };
    (s == NRT_SUCCESS).then_some((st.bytes_used as u64, st.bytes_limit as u64))
}
