//! The emulator's state and the exported functions.

use crate::abi::*;
use statetensor_core::{AliasMap, TensorSpec};
use statetensor_core::{Hbm, INF2_CORE_HBM_BYTES};
use statetensor_hlo::{Program, Tensor};
use std::collections::{BTreeSet, HashMap};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::{Arc, Mutex, MutexGuard};

/// I/O naming convention of emulated NEFFs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// torch-neuronx: `input{p}` and `output{o}`.
    Torch,
    /// nkipy / newer neuronx-cc: `{name}.must_alias_input` for an aliased parameter and
    /// `{name}` for its aliased output; other parameters by name, other outputs `output{o}`.
    Nkipy,
}

/// Faults `STATETENSOR_EMU_FAULT` injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `fail_execute:N`: execute call N (1-based) writes its first aliased output, then
    /// fails with `NRT_EXEC_COMPLETED_WITH_ERR`.
    FailExecute(u64),
    /// `lost_write`: aliased outputs are silently not written back.
    LostWrite,
    /// `hazard`: every aliased state is written before it is read.
    Hazard,
}

impl Fault {
    fn parse(s: &str) -> Result<Option<Fault>, String> {
        match s.trim() {
            "" | "none" => Ok(None),
            "lost_write" => Ok(Some(Fault::LostWrite)),
            "hazard" => Ok(Some(Fault::Hazard)),
            other => match other.strip_prefix("fail_execute:").map(str::parse) {
                Some(Ok(n)) if n > 0 => Ok(Some(Fault::FailExecute(n))),
                _ => Err(format!("STATETENSOR_EMU_FAULT='{other}': expected fail_execute:N (N >= 1), lost_write, hazard or none")),
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Uninitialized,
    Running,
    Closed,
}

/// Bytes of one allocation; slices share it.
type Storage = Arc<Mutex<Vec<u8>>>;

struct EmuTensor {
    storage: Storage,
    offset: usize,
    size: usize,
    /// Bytes charged to HBM (0 for host tensors and slices).
    charged: u64,
}

struct EmuModel {
    program: Program,
    input_names: Vec<String>,
    output_names: Vec<String>,
    aliases: AliasMap,
    charged: u64,
}

struct Emu {
    life: Life,
    hbm: Option<Hbm>,
    names: Naming,
    fault: Option<Fault>,
    executes: u64,
    tensors: BTreeSet<usize>,
    models: BTreeSet<usize>,
    sets: BTreeSet<usize>,
}

static EMU: Mutex<Emu> = Mutex::new(Emu {
    life: Life::Uninitialized,
    hbm: None,
    names: Naming::Torch,
    fault: None,
    executes: 0,
    tensors: BTreeSet::new(),
    models: BTreeSet::new(),
    sets: BTreeSet::new(),
});

type TensorSet = HashMap<String, usize>;

fn emu() -> MutexGuard<'static, Emu> {
    EMU.lock().unwrap_or_else(|p| p.into_inner())
}

fn warn(msg: &str) {
    eprintln!("[nrt-emu] {msg}");
}

/// The running emulator, or the status libnrt returns outside nrt_init..nrt_close.
fn running() -> Result<MutexGuard<'static, Emu>, NRT_STATUS> {
    let g = emu();
    match g.life {
        Life::Running => Ok(g),
        Life::Uninitialized => Err(NRT_UNINITIALIZED),
        Life::Closed => Err(NRT_CLOSED),
    }
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(status) => return status,
        }
    };
}

fn lock_storage(s: &Storage) -> MutexGuard<'_, Vec<u8>> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

impl Emu {
    fn tensor(&self, h: *const c_void) -> Result<&EmuTensor, NRT_STATUS> {
        if h.is_null() || !self.tensors.contains(&(h as usize)) {
            return Err(NRT_INVALID_HANDLE);
        }
        // SAFETY: registered handles are live `Box<EmuTensor>` pointers created by
        // nrt_tensor_allocate*/unregistered before they are freed; the global lock is held.
        Ok(unsafe { &*(h as *const EmuTensor) })
    }

    fn model(&self, h: *const c_void) -> Result<&EmuModel, NRT_STATUS> {
        if h.is_null() || !self.models.contains(&(h as usize)) {
            return Err(NRT_INVALID_HANDLE);
        }
        // SAFETY: registered model handles are live `Box<EmuModel>` pointers (see nrt_load).
        Ok(unsafe { &*(h as *const EmuModel) })
    }

    fn set(&self, h: *const c_void) -> Result<&TensorSet, NRT_STATUS> {
        if h.is_null() || !self.sets.contains(&(h as usize)) {
            return Err(NRT_INVALID_HANDLE);
        }
        // SAFETY: registered set handles are live `Box<TensorSet>` pointers.
        Ok(unsafe { &*(h as *const TensorSet) })
    }

    #[allow(clippy::mut_from_ref)]
    fn set_mut(&mut self, h: *mut c_void) -> Result<&mut TensorSet, NRT_STATUS> {
        if h.is_null() || !self.sets.contains(&(h as usize)) {
            return Err(NRT_INVALID_HANDLE);
        }
        // SAFETY: as `set`; `&mut self` proves exclusive access through the global lock.
        Ok(unsafe { &mut *(h as *mut TensorSet) })
    }

    fn hbm(&self) -> &Hbm {
        self.hbm.as_ref().expect("hbm exists while running")
    }
}

fn stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((s, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => s,
        _ => name,
    }
}

fn io_names(
    naming: Naming,
    params: &[TensorSpec],
    outputs: usize,
    aliases: &AliasMap,
) -> (Vec<String>, Vec<String>) {
    match naming {
        Naming::Torch => (
            (0..params.len()).map(|p| format!("input{p}")).collect(),
            (0..outputs).map(|o| format!("output{o}")).collect(),
        ),
        Naming::Nkipy => {
            let inputs = params
                .iter()
                .enumerate()
                .map(|(p, s)| {
                    if aliases.is_state(p) {
                        format!("{}.must_alias_input", stem(&s.name))
                    } else {
                        stem(&s.name).to_string()
                    }
                })
                .collect();
            let outs = (0..outputs)
                .map(|o| match aliases.param_for(o) {
                    Some(p) => stem(&params[p].name).to_string(),
                    None => format!("output{o}"),
                })
                .collect();
            (inputs, outs)
        }
    }
}

/// Copies a Rust string into a fixed C buffer, NUL-terminated and truncated.
fn fill_c(buf: &mut [c_char], s: &str) {
    let n = s.len().min(buf.len() - 1);
    for (d, &b) in buf.iter_mut().zip(&s.as_bytes()[..n]) {
        *d = b as c_char;
    }
    buf[n] = 0;
}

// ------------------------------------------------------------------ init / close / info

/// `NRT_STATUS nrt_init(nrt_framework_type_t framework, const char *fw_version, const char *fal_version)`.
///
/// Reads `STATETENSOR_EMU_NAMES`, `STATETENSOR_EMU_HBM_BYTES` and `STATETENSOR_EMU_FAULT`.
#[no_mangle]
pub extern "C" fn nrt_init(
    _framework: c_int,
    _fw_version: *const c_char,
    _fal_version: *const c_char,
) -> NRT_STATUS {
    let names = match std::env::var("STATETENSOR_EMU_NAMES").as_deref() {
        Err(_) | Ok("") | Ok("torch") => Naming::Torch,
        Ok("nkipy") => Naming::Nkipy,
        Ok(other) => {
            warn(&format!(
                "STATETENSOR_EMU_NAMES='{other}': expected torch or nkipy"
            ));
            return NRT_INVALID;
        }
    };
    let capacity = match std::env::var("STATETENSOR_EMU_HBM_BYTES") {
        Err(_) => INF2_CORE_HBM_BYTES,
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                warn(&format!(
                    "STATETENSOR_EMU_HBM_BYTES='{v}': expected a byte count"
                ));
                return NRT_INVALID;
            }
        },
    };
    let fault = match Fault::parse(&std::env::var("STATETENSOR_EMU_FAULT").unwrap_or_default()) {
        Ok(f) => f,
        Err(m) => {
            warn(&m);
            return NRT_INVALID;
        }
    };
    let mut g = emu();
    if g.life == Life::Running {
        return NRT_SUCCESS;
    }
    *g = Emu {
        life: Life::Running,
        hbm: Some(Hbm::new(capacity)),
        names,
        fault,
        executes: 0,
        tensors: BTreeSet::new(),
        models: BTreeSet::new(),
        sets: BTreeSet::new(),
    };
    NRT_SUCCESS
}

/// `void nrt_close()`.
#[no_mangle]
pub extern "C" fn nrt_close() {
    let mut g = emu();
    if g.life == Life::Running {
        g.life = Life::Closed;
    }
}

/// `NRT_STATUS nrt_get_version(nrt_version_t *ver, size_t size)`.
///
/// # Safety
/// `ver` must point to `size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn nrt_get_version(ver: *mut nrt_version_t, size: usize) -> NRT_STATUS {
    if ver.is_null() || size < std::mem::size_of::<nrt_version_t>() {
        return NRT_INVALID;
    }
    let mut v = nrt_version_t {
        rt_major: 2,
        rt_minor: 28,
        rt_patch: 0,
        rt_maintenance: 0,
        rt_detail: [0; 128],
        git_hash: [0; 64],
    };
    fill_c(
        &mut v.rt_detail,
        concat!("statetensor-nrt-emu ", env!("CARGO_PKG_VERSION")),
    );
    fill_c(&mut v.git_hash, "emulator");
    // SAFETY: the caller provides at least size_of::<nrt_version_t>() writable bytes (checked above).
    unsafe { ver.write_unaligned(v) };
    NRT_SUCCESS
}

fn write_count(out: *mut u32, n: u32) -> NRT_STATUS {
    if out.is_null() {
        return NRT_INVALID;
    }
    // SAFETY: non-null pointer to a u32 the caller owns.
    unsafe { out.write_unaligned(n) };
    NRT_SUCCESS
}

/// `NRT_STATUS nrt_get_total_nc_count(uint32_t *nc_count)` (callable before nrt_init).
///
/// # Safety
/// `count` must point to a writable `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn nrt_get_total_nc_count(count: *mut u32) -> NRT_STATUS {
    write_count(count, 1)
}

/// `NRT_STATUS nrt_get_total_vnc_count(uint32_t *vnc_count)` (callable before nrt_init).
///
/// # Safety
/// `count` must point to a writable `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn nrt_get_total_vnc_count(count: *mut u32) -> NRT_STATUS {
    write_count(count, 1)
}

/// `NRT_STATUS nrt_get_visible_nc_count(uint32_t *nc_count)`.
///
/// # Safety
/// `count` must point to a writable `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn nrt_get_visible_nc_count(count: *mut u32) -> NRT_STATUS {
    tri!(running().map(|_| ()));
    write_count(count, 1)
}

/// `NRT_STATUS nrt_get_visible_vnc_count(uint32_t *vnc_count)`.
///
/// # Safety
/// `count` must point to a writable `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn nrt_get_visible_vnc_count(count: *mut u32) -> NRT_STATUS {
    tri!(running().map(|_| ()));
    write_count(count, 1)
}

/// `const char *nrt_get_status_as_str(NRT_STATUS status)`.
#[no_mangle]
pub extern "C" fn nrt_get_status_as_str(status: NRT_STATUS) -> *const c_char {
    status_name(status).as_ptr() as *const c_char
}

/// `NRT_STATUS nrt_get_vnc_memory_stats(uint32_t vnc, nrt_vnc_memory_stats_t *stats, size_t stats_size_in, size_t *stats_size_out)`.
///
/// # Safety
/// `stats` must point to `stats_size_in` writable bytes; `stats_size_out` may be null or
/// point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn nrt_get_vnc_memory_stats(
    vnc: u32,
    stats: *mut nrt_vnc_memory_stats_t,
    size_in: usize,
    size_out: *mut usize,
) -> NRT_STATUS {
    let g = tri!(running());
    if vnc != 0 || stats.is_null() || size_in < std::mem::size_of::<nrt_vnc_memory_stats_t>() {
        return NRT_INVALID;
    }
    let r = g.hbm().report();
    // SAFETY: the caller provides size_in >= size_of::<nrt_vnc_memory_stats_t>() writable bytes.
    unsafe {
        stats.write_unaligned(nrt_vnc_memory_stats_t {
            bytes_used: r.used as usize,
            bytes_limit: r.capacity as usize,
        })
    };
    if !size_out.is_null() {
        // SAFETY: non-null pointer to a writable size_t, per the contract above.
        unsafe { size_out.write_unaligned(std::mem::size_of::<nrt_vnc_memory_stats_t>()) };
    }
    NRT_SUCCESS
}

// ------------------------------------------------------------------ models

/// `NRT_STATUS nrt_load(const void *neff_bytes, size_t size, int32_t vnc, int32_t vnc_count, nrt_model_t **model)`.
///
/// The emulated NEFF is HLO text; anything else is `NRT_INVALID`.
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
    let mut g = tri!(running());
    if neff_bytes.is_null() || model.is_null() || !(vnc == 0 || vnc == -1) {
        return NRT_INVALID;
    }
    // SAFETY: the caller provides `size` readable bytes at `neff_bytes`; they are copied out
    // before this function returns, so the caller may free them afterwards.
    let bytes = unsafe { std::slice::from_raw_parts(neff_bytes as *const u8, size) };
    let Ok(text) = std::str::from_utf8(bytes) else {
        warn("nrt_load: not an emulated NEFF (HLO text); a real NEFF needs real hardware");
        return NRT_INVALID;
    };
    if !text.trim_start().starts_with("HloModule") {
        warn("nrt_load: not an emulated NEFF: expected HLO text starting with 'HloModule'");
        return NRT_INVALID;
    }
    let program = match Program::parse(text, "neff") {
        Ok(p) => p,
        Err(e) => {
            warn(&format!("nrt_load: {e}"));
            return NRT_INVALID;
        }
    };
    let aliases = program.header_aliases().clone();
    let (input_names, output_names) =
        io_names(g.names, program.params(), program.outputs().len(), &aliases);
    let charged = program.constant_bytes();
    if g.hbm().alloc("nrt_load", charged).is_err() {
        return NRT_RESOURCE;
    }
    let m = Box::into_raw(Box::new(EmuModel {
        program,
        input_names,
        output_names,
        aliases,
        charged,
    }));
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
    let charged = tri!(g.model(model)).charged;
    g.models.remove(&(model as usize));
    g.hbm().free(charged);
    // SAFETY: the handle was registered, so it is a live Box<EmuModel> from nrt_load; it is
    // unregistered above, so it is freed exactly once.
    drop(unsafe { Box::from_raw(model as *mut EmuModel) });
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

// ------------------------------------------------------------------ tensors

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
    let charged = match placement {
        NRT_TENSOR_PLACEMENT_DEVICE => {
            if vnc != 0 {
                return NRT_INVALID;
            }
            if g.hbm().alloc("nrt_tensor_allocate", size as u64).is_err() {
                return NRT_RESOURCE;
            }
            size as u64
        }
        NRT_TENSOR_PLACEMENT_HOST | NRT_TENSOR_PLACEMENT_VIRTUAL => 0,
        _ => return NRT_INVALID,
    };
    let storage = Arc::new(Mutex::new(vec![0u8; size]));
    register_tensor(
        &mut g,
        EmuTensor {
            storage,
            offset: 0,
            size,
            charged,
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
        charged: 0,
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
    let charged = t.charged;
    g.tensors.remove(&(h as usize));
    g.hbm().free(charged);
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
        std::ptr::copy_nonoverlapping(s.as_ptr().add(t.offset + offset), buf as *mut u8, size)
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
            s.as_mut_ptr().add(t.offset + offset),
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
    let bytes =
        lock_storage(&s.storage)[s.offset + src_offset..s.offset + src_offset + size].to_vec();
    lock_storage(&d.storage)[d.offset + dst_offset..d.offset + dst_offset + size]
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
    lock_storage(&t.storage)[t.offset + offset..t.offset + offset + size].fill(value as u8);
    NRT_SUCCESS
}

// ------------------------------------------------------------------ tensor sets

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

fn c_name(name: *const c_char) -> Option<String> {
    if name.is_null() {
        return None;
    }
    // SAFETY: callers pass a NUL-terminated C string (the libnrt contract).
    unsafe { CStr::from_ptr(name) }
        .to_str()
        .ok()
        .map(str::to_string)
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

// ------------------------------------------------------------------ execute

/// Where one model I/O lives.
struct Bound<'a> {
    tensor: &'a EmuTensor,
}

impl Bound<'_> {
    fn read(&self) -> Vec<u8> {
        lock_storage(&self.tensor.storage)
            [self.tensor.offset..self.tensor.offset + self.tensor.size]
            .to_vec()
    }

    fn write(&self, bytes: &[u8]) {
        lock_storage(&self.tensor.storage)
            [self.tensor.offset..self.tensor.offset + self.tensor.size]
            .copy_from_slice(bytes);
    }

    fn same_memory(&self, o: &Bound<'_>) -> bool {
        Arc::ptr_eq(&self.tensor.storage, &o.tensor.storage)
            && self.tensor.offset == o.tensor.offset
    }
}

/// `NRT_STATUS nrt_execute(nrt_model_t *model, const nrt_tensor_set_t *input_set, nrt_tensor_set_t *output_set)`.
///
/// # Safety
/// The handles must come from this library (unknown handles are rejected).
#[no_mangle]
pub unsafe extern "C" fn nrt_execute(
    model: *mut c_void,
    input_set: *const c_void,
    output_set: *mut c_void,
) -> NRT_STATUS {
    let mut g = tri!(running());
    g.executes += 1;
    let call = g.executes;
    let fault = g.fault;
    let m = tri!(g.model(model));
    let (ins, outs) = (
        tri!(g.set(input_set)),
        tri!(g.set(output_set as *const c_void)),
    );
    let bind = |set: &TensorSet, name: &str, spec: &TensorSpec| -> Result<Bound<'_>, NRT_STATUS> {
        let Some(&h) = set.get(name) else {
            warn(&format!(
                "nrt_execute: no tensor named '{name}' in the tensor set"
            ));
            return Err(NRT_INVALID);
        };
        let t = g.tensor(h as *const c_void)?;
        if t.size != spec.size_bytes() {
            warn(&format!(
                "nrt_execute: '{name}' is {} bytes, the model needs {} ({})",
                t.size,
                spec.size_bytes(),
                spec.type_string()
            ));
            return Err(NRT_INVALID);
        }
        Ok(Bound { tensor: t })
    };
    let params = m.program.params();
    let outputs = m.program.outputs();
    let mut inb = Vec::with_capacity(params.len());
    for (p, spec) in params.iter().enumerate() {
        inb.push(tri!(bind(ins, &m.input_names[p], spec)));
    }
    let mut outb = Vec::with_capacity(outputs.len());
    for (o, spec) in outputs.iter().enumerate() {
        outb.push(tri!(bind(outs, &m.output_names[o], spec)));
    }
    // pairs bound to one tensor that the model does not alias: a read/write hazard
    let mut hazards: Vec<(usize, usize)> = Vec::new();
    for (p, i) in inb.iter().enumerate() {
        for (o, ob) in outb.iter().enumerate() {
            if i.same_memory(ob) && m.aliases.output_for(p) != Some(o) {
                warn(&format!(
                    "nrt_execute: input '{}' and output '{}' share a tensor but the model does not alias them: the output is written before the input is read",
                    m.input_names[p], m.output_names[o]
                ));
                hazards.push((p, o));
            }
        }
    }
    if fault == Some(Fault::Hazard) {
        hazards.extend(m.aliases.pairs().map(|a| (a.param, a.output)));
    }
    let run = |inb: &[Bound<'_>]| -> Result<Vec<Arc<Tensor>>, NRT_STATUS> {
        let args = inb
            .iter()
            .zip(params)
            .map(|(b, s)| Tensor::from_le_bytes(s.dtype, s.shape.dims(), &b.read()).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| NRT_INVALID)?;
        m.program.execute(args).map_err(|e| {
            warn(&format!("nrt_execute: {e}"));
            NRT_EXEC_COMPLETED_WITH_ERR
        })
    };
    let mut results = tri!(run(&inb));
    if !hazards.is_empty() {
        // hardware streams outputs while it still reads inputs: the hazardous outputs land
        // first, and the computation then sees them in place of its inputs
        for &(_, o) in &hazards {
            outb[o].write(&results[o].to_le_bytes());
        }
        results = tri!(run(&inb));
    }
    match fault {
        Some(Fault::FailExecute(n)) if n == call => {
            if let Some(a) = m.aliases.pairs().next() {
                outb[a.output].write(&results[a.output].to_le_bytes());
            }
            warn(&format!(
                "nrt_execute: injected fault: call {call} failed after a partial state update"
            ));
            return NRT_EXEC_COMPLETED_WITH_ERR;
        }
        _ => {}
    }
    for (o, b) in outb.iter().enumerate() {
        if fault == Some(Fault::LostWrite) && m.aliases.param_for(o).is_some() {
            continue;
        }
        b.write(&results[o].to_le_bytes());
    }
    NRT_SUCCESS
}

// ------------------------------------------------------------------ test hooks (not libnrt)

/// Test hook, not part of libnrt: sets the fault mode (the `STATETENSOR_EMU_FAULT` syntax;
/// null or "" clears it), restarting the execute count, and the HBM capacity in bytes (0
/// keeps it). Lets one test process exercise what the environment variables configure.
///
/// # Safety
/// `fault` must be null or a C string.
#[no_mangle]
pub unsafe extern "C" fn statetensor_emu_configure(
    fault: *const c_char,
    hbm_bytes: u64,
) -> NRT_STATUS {
    let mut g = tri!(running());
    let parsed = match Fault::parse(&c_name(fault).unwrap_or_default()) {
        Ok(f) => f,
        Err(m) => {
            warn(&m);
            return NRT_INVALID;
        }
    };
    g.fault = parsed;
    g.executes = 0;
    if hbm_bytes > 0 {
        g.hbm().set_capacity(hbm_bytes);
    }
    NRT_SUCCESS
}
