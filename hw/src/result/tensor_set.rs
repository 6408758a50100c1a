//! Tensor set calls: allocate, add a tensor under a name, destroy.

use super::check;
use crate::sys::*;
use statetensor_core::{Error, Result};
use std::ffi::CString;

/// `nrt_allocate_tensor_set`.
pub fn allocate(lib: &NrtLib) -> Result<*mut nrt_tensor_set_t> {
    let mut ptr = std::ptr::null_mut();
    // SAFETY: valid out-pointer.
    let s = unsafe { (lib.nrt_allocate_tensor_set)(&mut ptr) };
    check(lib, "nrt_allocate_tensor_set", s)?;
    Ok(ptr)
}

/// `nrt_add_tensor_to_tensor_set` under `name`.
///
/// # Safety
/// Both handles must be live, and the tensor must outlive the set (destroying a set does
/// not free its tensors, and the set keeps only the pointer).
pub unsafe fn add(
    lib: &NrtLib,
    set: *mut nrt_tensor_set_t,
    name: &str,
    t: *mut nrt_tensor_t,
) -> Result<()> {
    let cname = CString::new(name)
        .map_err(|_| Error::invalid_input("tensor set", format!("name '{name}' has a NUL byte")))?;
    // SAFETY: live handles (caller) and a valid C string.
    let s = unsafe { (lib.nrt_add_tensor_to_tensor_set)(set, cname.as_ptr(), t) };
    check(lib, "nrt_add_tensor_to_tensor_set", s)
}

/// `nrt_destroy_tensor_set` (the runtime nulls the handle; the tensors are not freed).
///
/// # Safety
/// `set` must be a live handle from [`allocate`], not used afterwards.
pub unsafe fn destroy(lib: &NrtLib, set: &mut *mut nrt_tensor_set_t) {
    // SAFETY: the caller guarantees a live handle destroyed exactly once.
    unsafe { (lib.nrt_destroy_tensor_set)(set) };
}
