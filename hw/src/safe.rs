//! Layer 3: RAII handles over libnrt — the runtime (initialised once per library per
//! process), models, device tensors and tensor sets. Dropping a handle frees it.

use crate::result::check;
use crate::sys::*;
use statetensor_core::{Error, Result};
use std::collections::HashMap;
use std::ffi::CString;
use std::os::raw::c_void;
use std::sync::{Arc, Mutex, OnceLock};

/// The environment variable naming the libnrt to load.
pub const LIBNRT_ENV: &str = "STATETENSOR_LIBNRT";

/// The libraries tried, in order, when no path is given.
pub fn candidates() -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(p) = std::env::var(LIBNRT_ENV) {
        if !p.is_empty() {
            v.push(p);
        }
    }
    v.push("libnrt.so.1".into());
    v.push("/opt/aws/neuron/lib/libnrt.so.1".into());
    v
}

/// A loaded, initialised libnrt.
pub struct Runtime {
    /// The function table.
    pub lib: NrtLib,
    /// Where it was loaded from.
    pub path: String,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Runtime({})", self.path)
    }
}

fn runtimes() -> &'static Mutex<HashMap<String, Arc<Runtime>>> {
    static R: OnceLock<Mutex<HashMap<String, Arc<Runtime>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Runtime {
    /// Loads libnrt from `path`, or searches [`candidates`]; `nrt_init` runs once per
    /// library per process. Missing libraries and symbols are `BackendUnavailable`, listing
    /// every path tried and how to choose another.
    pub fn open(path: Option<&str>) -> Result<Arc<Runtime>> {
        let tried: Vec<String> = match path {
            Some(p) => vec![p.to_string()],
            None => candidates(),
        };
        let mut map = runtimes().lock().unwrap_or_else(|p| p.into_inner());
        let mut failures = Vec::new();
        for p in &tried {
            if let Some(rt) = map.get(p) {
                return Ok(rt.clone());
            }
            match NrtLib::open(p) {
                Ok(lib) => {
                    // SAFETY: nrt_init takes a framework enum and two C strings; empty static
                    // strings are what the developer guide passes for NO_FW.
                    let s = unsafe {
                        (lib.nrt_init)(NRT_FRAMEWORK_TYPE_NO_FW, c"".as_ptr(), c"".as_ptr())
                    };
                    check(&lib, "nrt_init", s)?;
                    let rt = Arc::new(Runtime {
                        lib,
                        path: p.clone(),
                    });
                    map.insert(p.clone(), rt.clone());
                    return Ok(rt);
                }
                Err(e) => failures.push(format!("{p}: {e}")),
            }
        }
        Err(Error::BackendUnavailable {
            what: "libnrt".into(),
            reason: format!(
                "could not load the Neuron runtime; tried {}. Set {LIBNRT_ENV} to the library (for example target/debug/libnrt_emu.so for the emulator), or install aws-neuronx-runtime-lib and add /opt/aws/neuron/lib to LD_LIBRARY_PATH",
                failures.join("; ")
            ),
        })
    }

    /// Runtime version as `major.minor.patch (detail)`, when the runtime reports one.
    pub fn version(&self) -> Option<String> {
        let f = self.lib.nrt_get_version?;
        let mut v = std::mem::MaybeUninit::<nrt_version_t>::zeroed();
        // SAFETY: the buffer is exactly size_of::<nrt_version_t>() writable bytes.
        let s = unsafe { f(v.as_mut_ptr(), std::mem::size_of::<nrt_version_t>()) };
        if s != NRT_SUCCESS {
            return None;
        }
        // SAFETY: zero-initialised, and filled by a successful call.
        let v = unsafe { v.assume_init() };
        let detail: Vec<u8> = v
            .rt_detail
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        Some(format!(
            "{}.{}.{}.{} ({})",
            v.rt_major,
            v.rt_minor,
            v.rt_patch,
            v.rt_maintenance,
            String::from_utf8_lossy(&detail)
        ))
    }

    /// Visible NeuronCores.
    pub fn visible_cores(&self) -> Result<u32> {
        let mut n = 0u32;
        let (f, name) = match self.lib.nrt_get_visible_vnc_count {
            Some(f) => (f, "nrt_get_visible_vnc_count"),
            None => (
                self.lib.nrt_get_visible_nc_count,
                "nrt_get_visible_nc_count",
            ),
        };
        // SAFETY: writes one u32 to a valid local.
        let s = unsafe { f(&mut n) };
        check(&self.lib, name, s)?;
        Ok(n)
    }

    /// (used, capacity) bytes of core 0's HBM, when the runtime reports them.
    pub fn memory_stats(&self) -> Option<(u64, u64)> {
        let f = self.lib.nrt_get_vnc_memory_stats?;
        let mut st = nrt_vnc_memory_stats_t {
            bytes_used: 0,
            bytes_limit: 0,
        };
        let mut out = 0usize;
        // SAFETY: passes a valid struct and its exact size, and a valid size_t for the output.
        let s = unsafe {
            f(
                0,
                &mut st,
                std::mem::size_of::<nrt_vnc_memory_stats_t>(),
                &mut out,
            )
        };
        (s == NRT_SUCCESS).then_some((st.bytes_used as u64, st.bytes_limit as u64))
    }
}

/// A loaded model (`nrt_unload` on drop).
pub struct Model {
    rt: Arc<Runtime>,
    ptr: *mut nrt_model_t,
    _neff: Vec<u8>,
}

// SAFETY: libnrt model handles may be used from any thread; the driver serialises use of
// each state set's tensors with its own locks.
unsafe impl Send for Model {}
// SAFETY: as above.
unsafe impl Sync for Model {}

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

impl Model {
    /// `nrt_load` on core 0 (the bytes are kept alive for the model's lifetime).
    pub fn load(rt: &Arc<Runtime>, neff: Vec<u8>) -> Result<Model> {
        let mut ptr = std::ptr::null_mut();
        // SAFETY: `neff` outlives the model (stored in it); `ptr` is a valid out-pointer.
        let s = unsafe {
            (rt.lib.nrt_load)(neff.as_ptr() as *const c_void, neff.len(), -1, -1, &mut ptr)
        };
        check(&rt.lib, "nrt_load", s)?;
        Ok(Model {
            rt: rt.clone(),
            ptr,
            _neff: neff,
        })
    }

    /// The model's I/O tensors.
    pub fn io(&self) -> Result<Vec<IoInfo>> {
        let mut arr = std::ptr::null_mut();
        // SAFETY: valid model handle and out-pointer.
        let s = unsafe { (self.rt.lib.nrt_get_model_tensor_info)(self.ptr, &mut arr) };
        check(&self.rt.lib, "nrt_get_model_tensor_info", s)?;
        let mut v = Vec::new();
        // SAFETY: on success `arr` points to a runtime-owned array of `tensor_count` entries,
        // read here and freed below with the runtime's own function.
        unsafe {
            let n = (*arr).tensor_count as usize;
            let base = std::ptr::addr_of!((*arr).tensor_array) as *const nrt_tensor_info_t;
            for i in 0..n {
                let e = &*base.add(i);
                let name: Vec<u8> = e
                    .name
                    .iter()
                    .take_while(|&&c| c != 0)
                    .map(|&c| c as u8)
                    .collect();
                v.push(IoInfo {
                    name: String::from_utf8_lossy(&name).into_owned(),
                    input: e.usage == NRT_TENSOR_USAGE_INPUT,
                    size: e.size,
                });
            }
            (self.rt.lib.nrt_free_model_tensor_info)(arr);
        }
        Ok(v)
    }

    /// `nrt_execute`.
    pub fn execute(&self, inputs: &TensorSet, outputs: &TensorSet) -> Result<()> {
        // SAFETY: valid model and tensor-set handles, alive for the call.
        let s = unsafe { (self.rt.lib.nrt_execute)(self.ptr, inputs.ptr, outputs.ptr) };
        check(&self.rt.lib, "nrt_execute", s)
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the handle came from nrt_load and is unloaded exactly once.
        unsafe { (self.rt.lib.nrt_unload)(self.ptr) };
    }
}

/// A device tensor on core 0 (`nrt_tensor_free` on drop).
pub struct DeviceTensor {
    rt: Arc<Runtime>,
    ptr: *mut nrt_tensor_t,
    size: usize,
}

// SAFETY: tensor handles may be used from any thread; access is serialised by the driver.
unsafe impl Send for DeviceTensor {}
// SAFETY: as above.
unsafe impl Sync for DeviceTensor {}

impl DeviceTensor {
    /// `nrt_tensor_allocate` on the device; `NRT_RESOURCE` becomes `OutOfDeviceMemory`.
    pub fn allocate(rt: &Arc<Runtime>, size: usize, name: &str) -> Result<DeviceTensor> {
        let cname = CString::new(name.replace('\0', "")).unwrap_or_default();
        let mut ptr = std::ptr::null_mut();
        // SAFETY: valid C string and out-pointer.
        let s = unsafe {
            (rt.lib.nrt_tensor_allocate)(
                NRT_TENSOR_PLACEMENT_DEVICE,
                0,
                size,
                cname.as_ptr(),
                &mut ptr,
            )
        };
        if s == NRT_RESOURCE {
            let (used, cap) = rt.memory_stats().unwrap_or((0, 0));
            return Err(Error::OutOfDeviceMemory {
                op: format!("nrt_tensor_allocate '{name}'"),
                requested: size as u64,
                free: cap.saturating_sub(used),
                capacity: cap,
            });
        }
        check(&rt.lib, "nrt_tensor_allocate", s)?;
        Ok(DeviceTensor {
            rt: rt.clone(),
            ptr,
            size,
        })
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// `nrt_tensor_read`.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        // SAFETY: `buf` is valid for buf.len() writable bytes.
        let s = unsafe {
            (self.rt.lib.nrt_tensor_read)(
                self.ptr,
                buf.as_mut_ptr() as *mut c_void,
                offset,
                buf.len(),
            )
        };
        check(&self.rt.lib, "nrt_tensor_read", s)
    }

    /// `nrt_tensor_write`.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<()> {
        // SAFETY: `data` is valid for data.len() readable bytes.
        let s = unsafe {
            (self.rt.lib.nrt_tensor_write)(
                self.ptr,
                data.as_ptr() as *const c_void,
                offset,
                data.len(),
            )
        };
        check(&self.rt.lib, "nrt_tensor_write", s)
    }

    /// `nrt_tensor_memset` of the whole tensor.
    pub fn memset(&self, value: u8) -> Result<()> {
        // SAFETY: valid handle; the range is the tensor's own size.
        let s = unsafe { (self.rt.lib.nrt_tensor_memset)(self.ptr, 0, value as i32, self.size) };
        check(&self.rt.lib, "nrt_tensor_memset", s)
    }

    /// `nrt_tensor_copy` of the whole tensor into `dst` (same size).
    pub fn copy_to(&self, dst: &DeviceTensor) -> Result<()> {
        // SAFETY: valid handles; the sizes were checked equal by the caller (the runtime
        // also rejects out-of-range copies).
        let s = unsafe {
            (self.rt.lib.nrt_tensor_copy)(self.ptr, 0, dst.ptr, 0, self.size.min(dst.size))
        };
        check(&self.rt.lib, "nrt_tensor_copy", s)
    }
}

impl Drop for DeviceTensor {
    fn drop(&mut self) {
        // SAFETY: the handle came from nrt_tensor_allocate and is freed exactly once.
        unsafe { (self.rt.lib.nrt_tensor_free)(&mut self.ptr) };
    }
}

/// A tensor set (`nrt_destroy_tensor_set` on drop; the tensors are not freed by it, so a
/// set must be dropped before the tensors it holds).
pub struct TensorSet {
    rt: Arc<Runtime>,
    ptr: *mut nrt_tensor_set_t,
}

// SAFETY: as for tensors.
unsafe impl Send for TensorSet {}
// SAFETY: as for tensors.
unsafe impl Sync for TensorSet {}

impl TensorSet {
    /// `nrt_allocate_tensor_set`.
    pub fn new(rt: &Arc<Runtime>) -> Result<TensorSet> {
        let mut ptr = std::ptr::null_mut();
        // SAFETY: valid out-pointer.
        let s = unsafe { (rt.lib.nrt_allocate_tensor_set)(&mut ptr) };
        check(&rt.lib, "nrt_allocate_tensor_set", s)?;
        Ok(TensorSet {
            rt: rt.clone(),
            ptr,
        })
    }

    /// `nrt_add_tensor_to_tensor_set` under `name`. The tensor must outlive the set.
    pub fn add(&self, name: &str, t: &DeviceTensor) -> Result<()> {
        let cname = CString::new(name).map_err(|_| {
            Error::invalid_input("tensor set", format!("name '{name}' has a NUL byte"))
        })?;
        // SAFETY: valid handles and C string; the caller keeps `t` alive longer than the set.
        let s =
            unsafe { (self.rt.lib.nrt_add_tensor_to_tensor_set)(self.ptr, cname.as_ptr(), t.ptr) };
        check(&self.rt.lib, "nrt_add_tensor_to_tensor_set", s)
    }
}

impl Drop for TensorSet {
    fn drop(&mut self) {
        // SAFETY: the handle came from nrt_allocate_tensor_set and is destroyed exactly once.
        unsafe { (self.rt.lib.nrt_destroy_tensor_set)(&mut self.ptr) };
    }
}
