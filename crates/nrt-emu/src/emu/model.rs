//! Models: load (HLO text as the emulated NEFF), unload, tensor information.

use super::*;

/// `NRT_STATUS nrt_load(const void *neff_bytes, size_t size, int32_t vnc, int32_t vnc_count, nrt_model_t **model)`.
///
/// The emulated NEFF is HLO text or a serialized HloModuleProto; anything else is
/// `NRT_INVALID`, and so is a module whose collectives need several cores (those load
/// with `nrt_load_collectives`).
///
/// # Safety
/// `neff_bytes` must point to `size` readable bytes; `model` to a writable pointer.
#[no_mangle]
pub unsafe extern "C" fn nrt_load(
    neff_bytes: *const c_void,
    size: usize,
    vnc: i32,
    _vnc_count: i32,
    model: *mut *mut c_void,
) -> NRT_STATUS {
    // SAFETY: forwarded under the same contract.
    unsafe { load_model(neff_bytes, size, vnc, model, None) }
}

/// The emulated NEFF at `neff_bytes` read as a program (copied out: the caller may free
/// the bytes afterwards).
///
/// # Safety
/// `neff_bytes` must point to `size` readable bytes.
pub(super) unsafe fn read_neff(neff_bytes: *const c_void, size: usize) -> Option<Program> {
    if neff_bytes.is_null() {
        return None;
    }
    // SAFETY: the caller provides `size` readable bytes at `neff_bytes`.
    let bytes = unsafe { std::slice::from_raw_parts(neff_bytes as *const u8, size) };
    // an emulated NEFF is the module itself, HLO text or a serialized HloModuleProto; a
    // real NEFF fails to parse as either and is refused
    match Program::from_bytes(bytes, "neff") {
        Ok(p) => Some(p),
        Err(e) => {
            warn(&format!(
                "nrt_load: not an emulated NEFF (HLO text or HloModuleProto; a real NEFF needs real hardware): {e}"
            ));
            None
        }
    }
}

/// Loads the emulated NEFF on core `vnc`, as one core of an SPMD program when `world`
/// says which (`nrt_load_collectives`), or alone.
///
/// # Safety
/// As [`nrt_load`].
pub(super) unsafe fn load_model(
    neff_bytes: *const c_void,
    size: usize,
    vnc: i32,
    model: *mut *mut c_void,
    world: Option<collectives::Join>,
) -> NRT_STATUS {
    let mut g = tri!(running());
    if model.is_null() {
        return NRT_INVALID;
    }
    let core = tri!(g.core(vnc as i64));
    // SAFETY: forwarded under the caller's contract.
    let Some(program) = (unsafe { read_neff(neff_bytes, size) }) else {
        return NRT_INVALID;
    };
    let devices = world.as_ref().map_or(1, |w| w.devices);
    if let Err(e) = program.topology(devices) {
        warn(&format!("nrt_load: {e}"));
        return NRT_INVALID;
    }
    let aliases = program.header_aliases().clone();
    let (input_names, output_names) =
        io_names(g.names, program.params(), program.outputs().len(), &aliases);
    let charged = program.constant_bytes();
    if g.hbm[core].alloc("nrt_load", charged).is_err() {
        return NRT_RESOURCE;
    }
    let program = Arc::new(program);
    let rank = world.map(|w| collectives::seat(&mut g, w, &program));
    let m = Box::into_raw(Box::new(Arc::new(EmuModel {
        program,
        input_names,
        output_names,
        aliases,
        core,
        charged,
        rank,
        running: Mutex::new(()),
    })));
    g.models.insert(m as usize);
    // SAFETY: `model` is a non-null writable pointer (checked above).
    unsafe { model.write(m as *mut c_void) };
    NRT_SUCCESS
}

/// `NRT_STATUS nrt_unload(nrt_model_t *model)`.
///
/// # Safety
/// `model` must be a handle from `nrt_load` (an unknown handle is rejected).
#[no_mangle]
pub unsafe extern "C" fn nrt_unload(model: *mut c_void) -> NRT_STATUS {
    let mut g = tri!(running());
    let m = tri!(g.model(model)).clone();
    g.models.remove(&(model as usize));
    g.hbm[m.core].free(m.charged);
    if let Some(seat) = &m.rank {
        collectives::leave(&mut g, seat);
    }
    // SAFETY: the handle was registered, so it is a live Box<ModelHandle> from nrt_load;
    // it is unregistered above, so it is freed exactly once (an execute still running
    // holds its own reference to the model).
    drop(unsafe { Box::from_raw(model as *mut ModelHandle) });
    NRT_SUCCESS
}

/// `NRT_STATUS nrt_get_model_tensor_info(nrt_model_t *model, nrt_tensor_info_array_t **tensor_info)`.
///
/// # Safety
/// `model` must be a handle from `nrt_load`; `tensor_info` a writable pointer. Free the
/// result with `nrt_free_model_tensor_info`.
#[no_mangle]
pub unsafe extern "C" fn nrt_get_model_tensor_info(
    model: *mut c_void,
    tensor_info: *mut *mut nrt_tensor_info_array_t,
) -> NRT_STATUS {
    let g = tri!(running());
    let m = tri!(g.model(model));
    if tensor_info.is_null() {
        return NRT_INVALID;
    }
    let mut infos: Vec<(String, c_int, &TensorSpec)> = Vec::new();
    for (p, s) in m.program.params().iter().enumerate() {
        infos.push((m.input_names[p].clone(), NRT_TENSOR_USAGE_INPUT, s));
    }
    for (o, s) in m.program.outputs().iter().enumerate() {
        infos.push((m.output_names[o].clone(), NRT_TENSOR_USAGE_OUTPUT, s));
    }
    let layout = info_layout(infos.len());
    // SAFETY: the layout has non-zero size (it always holds the 8-byte count).
    let base = unsafe { std::alloc::alloc_zeroed(layout) } as *mut nrt_tensor_info_array_t;
    if base.is_null() {
        return NRT_RESOURCE;
    }
    // SAFETY: `base` points to a zeroed allocation of `layout`, large enough for the header
    // and `infos.len()` entries, suitably aligned for nrt_tensor_info_array_t.
    unsafe {
        (*base).tensor_count = infos.len() as u64;
        let arr = std::ptr::addr_of_mut!((*base).tensor_array) as *mut nrt_tensor_info_t;
        for (i, (name, usage, spec)) in infos.iter().enumerate() {
            let shape: Box<[u32]> = spec.shape.dims().iter().map(|&d| d as u32).collect();
            let ndim = shape.len() as u32;
            let mut e = nrt_tensor_info_t {
                name: [0; NRT_TENSOR_NAME_MAX],
                usage: *usage,
                size: spec.size_bytes(),
                dtype: dtype_code(spec.dtype),
                shape: Box::into_raw(shape) as *mut u32,
                ndim,
            };
            fill_c(&mut e.name, name);
            arr.add(i).write(e);
        }
        tensor_info.write(base);
    }
    NRT_SUCCESS
}

fn info_layout(n: usize) -> std::alloc::Layout {
    let size = std::mem::size_of::<nrt_tensor_info_array_t>()
        + n * std::mem::size_of::<nrt_tensor_info_t>();
    std::alloc::Layout::from_size_align(size, std::mem::align_of::<nrt_tensor_info_array_t>())
        .expect("a small, valid layout")
}

/// `NRT_STATUS nrt_free_model_tensor_info(nrt_tensor_info_array_t *tensor_info)`.
///
/// # Safety
/// `tensor_info` must come from `nrt_get_model_tensor_info` and not be freed before.
#[no_mangle]
pub unsafe extern "C" fn nrt_free_model_tensor_info(
    tensor_info: *mut nrt_tensor_info_array_t,
) -> NRT_STATUS {
    if tensor_info.is_null() {
        return NRT_INVALID;
    }
    // SAFETY: per the contract, the array and every shape buffer were allocated by
    // nrt_get_model_tensor_info with the layouts reconstructed here.
    unsafe {
        let n = (*tensor_info).tensor_count as usize;
        let arr = std::ptr::addr_of_mut!((*tensor_info).tensor_array) as *mut nrt_tensor_info_t;
        for i in 0..n {
            let e = &*arr.add(i);
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                e.shape,
                e.ndim as usize,
            )));
        }
        std::alloc::dealloc(tensor_info as *mut u8, info_layout(n));
    }
    NRT_SUCCESS
}
