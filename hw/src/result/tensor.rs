//! Device tensor calls: allocate, read, write, memset, copy, free.

use super::check;
use crate::sys::*;
use statetensor_core::{Error, Result};
use std::ffi::CString;
use std::os::raw::c_void;

/// `nrt_tensor_allocate` of `size` bytes in NeuronCore `vnc`'s device memory.
/// `NRT_RESOURCE` becomes [`Error::OutOfDeviceMemory`] with the runtime's figures when it
/// reports them.
pub fn allocate(lib: &NrtLib, vnc: u32, size: usize, name: &str) -> Result<*mut nrt_tensor_t> {
    let cname = CString::new(name.replace('\0', "")).unwrap_or_default();
    let mut ptr = std::ptr::null_mut();
    // SAFETY: valid C string and out-pointer.
    let s = unsafe {
        (lib.nrt_tensor_allocate)(
            NRT_TENSOR_PLACEMENT_DEVICE,
            vnc as i32,
            size,
            cname.as_ptr(),
            &mut ptr,
        )
    };
    if s == NRT_RESOURCE {
        let (used, cap) = super::runtime::memory_stats(lib, vnc).unwrap_or((0, 0));
        return Err(Error::OutOfDeviceMemory {
            op: format!("nrt_tensor_allocate '{name}' on NeuronCore {vnc}"),
            requested: size as u64,
            free: cap.saturating_sub(used),
            capacity: cap,
        });
    }
    check(lib, "nrt_tensor_allocate", s)?;
    Ok(ptr)
}

/// `nrt_tensor_read` of `buf.len()` bytes from `offset`.
///
/// # Safety
/// `t` must be a live tensor handle.
pub unsafe fn read(
    lib: &NrtLib,
    t: *mut nrt_tensor_t,
    offset: usize,
    buf: &mut [u8],
) -> Result<()> {
    // SAFETY: live handle (caller); `buf` is valid for buf.len() writable bytes.
    let s = unsafe { (lib.nrt_tensor_read)(t, buf.as_mut_ptr() as *mut c_void, offset, buf.len()) };
    check(lib, "nrt_tensor_read", s)
}

/// `nrt_tensor_write` of `data` at `offset`.
///
/// # Safety
/// `t` must be a live tensor handle.
pub unsafe fn write(lib: &NrtLib, t: *mut nrt_tensor_t, offset: usize, data: &[u8]) -> Result<()> {
    // SAFETY: live handle (caller); `data` is valid for data.len() readable bytes.
    let s =
        unsafe { (lib.nrt_tensor_write)(t, data.as_ptr() as *const c_void, offset, data.len()) };
    check(lib, "nrt_tensor_write", s)
}

/// `nrt_tensor_memset` of bytes `[0, size)` to `value`.
///
/// # Safety
/// `t` must be a live tensor handle of at least `size` bytes.
pub unsafe fn memset(lib: &NrtLib, t: *mut nrt_tensor_t, value: u8, size: usize) -> Result<()> {
    // SAFETY: live handle and in-range size (caller).
    let s = unsafe { (lib.nrt_tensor_memset)(t, 0, value as i32, size) };
    check(lib, "nrt_tensor_memset", s)
}

/// `nrt_tensor_copy` of `size` bytes from the start of `src` to the start of `dst`.
///
/// # Safety
/// Both handles must be live and hold at least `size` bytes.
pub unsafe fn copy(
    lib: &NrtLib,
    src: *mut nrt_tensor_t,
    dst: *mut nrt_tensor_t,
    size: usize,
) -> Result<()> {
    // SAFETY: live handles and in-range size (caller); the runtime also rejects
    // out-of-range copies.
    let s = unsafe { (lib.nrt_tensor_copy)(src, 0, dst, 0, size) };
    check(lib, "nrt_tensor_copy", s)
}

/// `nrt_tensor_free` (the runtime nulls the handle).
///
/// # Safety
/// `t` must be a live handle from [`allocate`], not used afterwards.
pub unsafe fn free(lib: &NrtLib, t: &mut *mut nrt_tensor_t) {
    // SAFETY: the caller guarantees a live handle freed exactly once.
    unsafe { (lib.nrt_tensor_free)(t) };
}
