//! Tensor sets: named tensors, as `nrt_execute` takes its inputs and outputs.

use super::*;

/// `NRT_STATUS nrt_allocate_tensor_set(nrt_tensor_set_t **result)`.
///
/// # Safety
/// `result` must be a writable pointer.
#[no_mangle]
pub unsafe extern "C" fn nrt_allocate_tensor_set(result: *mut *mut c_void) -> NRT_STATUS {
    let mut g = tri!(running());
    if result.is_null() {
        return NRT_INVALID;
    }
    let h = Box::into_raw(Box::new(TensorSet::new()));
    g.sets.insert(h as usize);
    // SAFETY: non-null writable pointer (checked).
    unsafe { result.write(h as *mut c_void) };
    NRT_SUCCESS
}

/// `void nrt_destroy_tensor_set(nrt_tensor_set_t **tensor_set)`: the tensors are not freed.
///
/// # Safety
/// `tensor_set` must be null or point to a set handle.
#[no_mangle]
pub unsafe extern "C" fn nrt_destroy_tensor_set(tensor_set: *mut *mut c_void) {
    let Ok(mut g) = running() else { return };
    if tensor_set.is_null() {
        return;
    }
    // SAFETY: non-null pointer to a handle the caller owns.
    let h = unsafe { tensor_set.read() };
    if g.set(h).is_err() {
        return;
    }
    g.sets.remove(&(h as usize));
    // SAFETY: registered, now unregistered: a live Box<TensorSet> freed exactly once.
    unsafe {
        drop(Box::from_raw(h as *mut TensorSet));
        tensor_set.write(std::ptr::null_mut());
    }
}

/// `NRT_STATUS nrt_add_tensor_to_tensor_set(nrt_tensor_set_t *tensor_set, const char *tensor_name, nrt_tensor_t *tensor)`: add or replace.
///
/// # Safety
/// `tensor_name` must be a C string.
#[no_mangle]
pub unsafe extern "C" fn nrt_add_tensor_to_tensor_set(
    tensor_set: *mut c_void,
    tensor_name: *const c_char,
    tensor: *mut c_void,
) -> NRT_STATUS {
    let mut g = tri!(running());
    tri!(g.tensor(tensor));
    let Some(name) = c_name(tensor_name) else {
        return NRT_INVALID;
    };
    tri!(g.set_mut(tensor_set)).insert(name, tensor as usize);
    NRT_SUCCESS
}

/// `NRT_STATUS nrt_get_tensor_from_tensor_set(nrt_tensor_set_t *tensor_set, const char *tensor_name, nrt_tensor_t **tensor)`: `NRT_FAILURE` if absent.
///
/// # Safety
/// `tensor_name` must be a C string; `tensor` a writable pointer.
#[no_mangle]
pub unsafe extern "C" fn nrt_get_tensor_from_tensor_set(
    tensor_set: *mut c_void,
    tensor_name: *const c_char,
    tensor: *mut *mut c_void,
) -> NRT_STATUS {
    let g = tri!(running());
    let set = tri!(g.set(tensor_set));
    let Some(name) = c_name(tensor_name) else {
        return NRT_INVALID;
    };
    if tensor.is_null() {
        return NRT_INVALID;
    }
    match set.get(&name) {
        // SAFETY: non-null writable pointer (checked).
        Some(&h) => unsafe { tensor.write(h as *mut c_void) },
        None => return NRT_FAILURE,
    }
    NRT_SUCCESS
}
