//! Layer 3: RAII handles over libnrt — the runtime, models, device tensors and tensor sets.
//! Dropping a handle frees it (the runtime is process-wide: libnrt is initialised once per
//! library and stays so until the process exits, see `loader`). Every call goes through
//! [`crate::result`]; the handles are what make those calls sound.

use crate::result::{
    self,
    model::{Collective, IoInfo},
};
use crate::sys::{nrt_model_t, nrt_tensor_set_t, nrt_tensor_t, NrtLib};
use statetensor_core::Result;
use std::sync::Arc;

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

impl Runtime {
    /// Runtime version, when the runtime reports one.
    pub fn version(&self) -> Option<String> {
        result::runtime::version(&self.lib)
    }

    /// Visible NeuronCores.
    pub fn visible_cores(&self) -> Result<u32> {
        result::runtime::visible_cores(&self.lib)
    }

    /// (used, capacity) bytes of NeuronCore `vnc`'s HBM, when the runtime reports them.
    pub fn memory_stats(&self, vnc: u32) -> Option<(u64, u64)> {
        result::runtime::memory_stats(&self.lib, vnc)
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

impl Model {
    /// `nrt_load` on NeuronCore `vnc`, or `nrt_load_collectives` as one core of an SPMD
    /// program (the bytes are kept alive for the model's lifetime).
    pub fn load(
        rt: &Arc<Runtime>,
        neff: Vec<u8>,
        vnc: u32,
        collective: Option<Collective>,
    ) -> Result<Model> {
        // SAFETY: `neff` is moved into the model, so it lives until the model is unloaded;
        // a Vec's heap buffer does not move when the Vec does.
        let ptr = unsafe { result::model::load(&rt.lib, &neff, vnc, collective) }?;
        Ok(Model {
            rt: rt.clone(),
            ptr,
            _neff: neff,
        })
    }

    /// The model's I/O tensors.
    pub fn io(&self) -> Result<Vec<IoInfo>> {
        // SAFETY: the handle is live until drop.
        unsafe { result::model::io(&self.rt.lib, self.ptr) }
    }

    /// `nrt_execute`.
    pub fn execute(&self, inputs: &TensorSet, outputs: &TensorSet) -> Result<()> {
        // SAFETY: the model and both sets are live for the call; a set's tensors outlive it
        // by the contract of [`TensorSet::add`].
        unsafe { result::model::execute(&self.rt.lib, self.ptr, inputs.ptr, outputs.ptr) }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the handle came from nrt_load and is unloaded exactly once.
        unsafe { result::model::unload(&self.rt.lib, self.ptr) };
    }
}

/// A device tensor on one NeuronCore (`nrt_tensor_free` on drop).
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
    /// `nrt_tensor_allocate` on NeuronCore `vnc`; `NRT_RESOURCE` becomes
    /// `OutOfDeviceMemory`.
    pub fn allocate(rt: &Arc<Runtime>, vnc: u32, size: usize, name: &str) -> Result<DeviceTensor> {
        let ptr = result::tensor::allocate(&rt.lib, vnc, size, name)?;
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
        // SAFETY: the handle is live until drop.
        unsafe { result::tensor::read(&self.rt.lib, self.ptr, offset, buf) }
    }

    /// `nrt_tensor_write`.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<()> {
        // SAFETY: the handle is live until drop.
        unsafe { result::tensor::write(&self.rt.lib, self.ptr, offset, data) }
    }

    /// `nrt_tensor_memset` of the whole tensor.
    pub fn memset(&self, value: u8) -> Result<()> {
        // SAFETY: the handle is live and the range is the tensor's own size.
        unsafe { result::tensor::memset(&self.rt.lib, self.ptr, value, self.size) }
    }

    /// `nrt_tensor_copy` of the whole tensor into `dst` (the smaller size when they
    /// differ).
    pub fn copy_to(&self, dst: &DeviceTensor) -> Result<()> {
        let size = self.size.min(dst.size);
        // SAFETY: both handles are live and hold at least `size` bytes.
        unsafe { result::tensor::copy(&self.rt.lib, self.ptr, dst.ptr, size) }
    }
}

impl Drop for DeviceTensor {
    fn drop(&mut self) {
        // SAFETY: the handle came from nrt_tensor_allocate and is freed exactly once.
        unsafe { result::tensor::free(&self.rt.lib, &mut self.ptr) };
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
        Ok(TensorSet {
            rt: rt.clone(),
            ptr: result::tensor_set::allocate(&rt.lib)?,
        })
    }

    /// `nrt_add_tensor_to_tensor_set` under `name`. The tensor must outlive the set (the
    /// driver drops its tensor sets before the tensors they hold).
    pub fn add(&self, name: &str, t: &DeviceTensor) -> Result<()> {
        // SAFETY: both handles are live; the caller keeps `t` alive longer than the set.
        unsafe { result::tensor_set::add(&self.rt.lib, self.ptr, name, t.ptr) }
    }
}

impl Drop for TensorSet {
    fn drop(&mut self) {
        // SAFETY: the handle came from nrt_allocate_tensor_set and is destroyed exactly once.
        unsafe { result::tensor_set::destroy(&self.rt.lib, &mut self.ptr) };
    }
}
