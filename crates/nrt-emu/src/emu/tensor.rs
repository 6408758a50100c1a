//! Device tensors: allocate (charged to the core's HBM), free, read, write, copy, memset.

use super::*;

fn register_tensor(g: &mut Emu, t: EmuTensor, out: *mut *mut c_void) -> NRT_STATUS {
    let h = Box::into_raw(Box::new(t));
    g.tensors.insert(h as usize);
    // SAFETY: callers check `out` is non-null and writable.
    unsafe { out.write(h as *mut c_void) };
    NRT_SUCCESS
}

/// `NRT_STATUS nrt_tensor_allocate(nrt_tensor_placement_t placement, int vnc, size_t size, const char *name, nrt_tensor_t **tensor)`.
///
/// # Safety
/// `tensor` must be a writable pointer; `name` null or a C string.
#[no_mangle]
pub unsafe extern "C" fn nrt_tensor_allocate(
    placement: c_int,
    vnc: c_int,
    size: usize,
    _name: *const c_char,
    tensor: *mut *mut c_void,
) -> NRT_STATUS {
    let mut g = tri!(running());
    if tensor.is_null() {
        return NRT_INVALID;
    }
    let (core, charged) = match placement {
        NRT_TENSOR_PLACEMENT_DEVICE => {
            let core = tri!(g.core(vnc as i64));
            if g.hbm[core]
                .alloc("nrt_tensor_allocate", size as u64)
                .is_err()
            {
                return NRT_RESOURCE;
            }
            (Some(core), size as u64)
        }
        NRT_TENSOR_PLACEMENT_HOST | NRT_TENSOR_PLACEMENT_VIRTUAL => (None, 0),
        _ => return NRT_INVALID,
    };
    let storage = new_storage(size);
    register_tensor(
        &mut g,
        EmuTensor {
            storage,
            offset: 0,
            size,
            core,
            charged,
            decoded: Arc::default(),
        },
        tensor,
    )
}

/// `NRT_STATUS nrt_tensor_allocate_slice(const nrt_tensor_t *tensor_source, size_t offset, size_t size, const char *name, nrt_tensor_t **tensor_slice)`.
///
/// # Safety
/// `source` must be a tensor handle; `slice` a writable pointer.
#[no_mangle]
pub unsafe extern "C" fn nrt_tensor_allocate_slice(
    source: *const c_void,
    offset: usize,
    size: usize,
    _name: *const c_char,
    slice: *mut *mut c_void,
) -> NRT_STATUS {
    let mut g = tri!(running());
    let src = tri!(g.tensor(source));
    if slice.is_null() || offset.checked_add(size).is_none_or(|e| e > src.size) {
        return NRT_INVALID;
    }
    let t = EmuTensor {
        storage: src.storage.clone(),
        offset: src.offset + offset,
        size,
        core: src.core,
        charged: 0,
        decoded: Arc::default(),
    };
    register_tensor(&mut g, t, slice)
}

/// `void nrt_tensor_free(nrt_tensor_t **tensor)`: frees and sets `*tensor = NULL`.
///
/// # Safety
/// `tensor` must be null or point to a tensor handle (unknown handles are ignored).
#[no_mangle]
pub unsafe extern "C" fn nrt_tensor_free(tensor: *mut *mut c_void) {
    let Ok(mut g) = running() else { return };
    if tensor.is_null() {
        return;
    }
    // SAFETY: non-null pointer to a handle the caller owns.
    let h = unsafe { tensor.read() };
    let Ok(t) = g.tensor(h) else { return };
    let (core, charged) = (t.core, t.charged);
    g.tensors.remove(&(h as usize));
    if let Some(hbm) = core.and_then(|c| g.hbm(c)) {
        hbm.free(charged);
    }
    // SAFETY: the handle was registered (a live Box<EmuTensor>) and is now unregistered, so
    // it is freed exactly once; `tensor` is writable per the contract.
    unsafe {
        drop(Box::from_raw(h as *mut EmuTensor));
        tensor.write(std::ptr::null_mut());
    }
}

/// `size_t nrt_tensor_get_size(const nrt_tensor_t *tensor)` (0 for an unknown handle).
///
/// # Safety
/// `tensor` must be a tensor handle.
#[no_mangle]
pub unsafe extern "C" fn nrt_tensor_get_size(tensor: *const c_void) -> usize {
    let Ok(g) = running() else { return 0 };
    g.tensor(tensor).map(|t| t.size).unwrap_or(0)
}

fn in_bounds(t: &EmuTensor, offset: usize, size: usize) -> bool {
    offset.checked_add(size).is_some_and(|e| e <= t.size)
}

/// `NRT_STATUS nrt_tensor_read(const nrt_tensor_t *tensor, void *buf, size_t offset, size_t size)`.
///
/// # Safety
/// `buf` must point to `size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn nrt_tensor_read(
    tensor: *const c_void,
    buf: *mut c_void,
    offset: usize,
    size: usize,
) -> NRT_STATUS {
    let g = tri!(running());
    let t = tri!(g.tensor(tensor));
    if buf.is_null() || !in_bounds(t, offset, size) {
        return NRT_INVALID;
    }
    let s = lock_storage(&t.storage);
    // SAFETY: `buf` has `size` writable bytes (contract); the source range is in bounds.
    unsafe {
        std::ptr::copy_nonoverlapping(
            s.bytes.as_ptr().add(t.offset + offset),
            buf as *mut u8,
            size,
        )
    };
    NRT_SUCCESS
}

/// `NRT_STATUS nrt_tensor_write(nrt_tensor_t *tensor, const void *buf, size_t offset, size_t size)`.
///
/// # Safety
/// `buf` must point to `size` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn nrt_tensor_write(
    tensor: *mut c_void,
    buf: *const c_void,
    offset: usize,
    size: usize,
) -> NRT_STATUS {
    let g = tri!(running());
    let t = tri!(g.tensor(tensor));
    if buf.is_null() || !in_bounds(t, offset, size) {
        return NRT_INVALID;
    }
    let mut s = lock_storage(&t.storage);
    // SAFETY: `buf` has `size` readable bytes (contract); the destination range is in bounds.
    unsafe {
        std::ptr::copy_nonoverlapping(
            buf as *const u8,
            s.write().as_mut_ptr().add(t.offset + offset),
            size,
        )
    };
    NRT_SUCCESS
}

/// `NRT_STATUS nrt_tensor_copy(const nrt_tensor_t *src, size_t src_offset, nrt_tensor_t *dst, size_t dst_offset, size_t size)`.
///
/// # Safety
/// Both must be tensor handles.
#[no_mangle]
pub unsafe extern "C" fn nrt_tensor_copy(
    src: *const c_void,
    src_offset: usize,
    dst: *mut c_void,
    dst_offset: usize,
    size: usize,
) -> NRT_STATUS {
    let g = tri!(running());
    let (s, d) = (tri!(g.tensor(src)), tri!(g.tensor(dst)));
    if !in_bounds(s, src_offset, size) || !in_bounds(d, dst_offset, size) {
        return NRT_INVALID;
    }
    if let (Some(a), Some(b)) = (s.core, d.core) {
        if a != b {
            // libnrt: a device-to-device copy needs both tensors on one NeuronCore
            warn(&format!(
                "nrt_tensor_copy: the source is on NeuronCore {a}, the destination on {b}"
            ));
            return NRT_INVALID;
        }
    }
    let bytes = lock_storage(&s.storage).bytes[s.offset + src_offset..s.offset + src_offset + size]
        .to_vec();
    lock_storage(&d.storage).write()[d.offset + dst_offset..d.offset + dst_offset + size]
        .copy_from_slice(&bytes);
    NRT_SUCCESS
}

/// `NRT_STATUS nrt_tensor_memset(nrt_tensor_t *tensor, uint64_t offset, int value, size_t size)`.
///
/// # Safety
/// `tensor` must be a tensor handle.
#[no_mangle]
pub unsafe extern "C" fn nrt_tensor_memset(
    tensor: *mut c_void,
    offset: u64,
    value: c_int,
    size: usize,
) -> NRT_STATUS {
    let g = tri!(running());
    let t = tri!(g.tensor(tensor));
    let Ok(offset) = usize::try_from(offset) else {
        return NRT_INVALID;
    };
    if !in_bounds(t, offset, size) {
        return NRT_INVALID;
    }
    lock_storage(&t.storage).write()[t.offset + offset..t.offset + offset + size].fill(value as u8);
    NRT_SUCCESS
}
