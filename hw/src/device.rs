//! One NeuronCore through libnrt: the runtime, the state sets models share, the HBM peak.

use crate::result::model::Collective;
use crate::safe::{DeviceTensor, Model, Runtime};
use statetensor_core::{Error, ResidentWeights, Result, StateSets};
use std::sync::{Arc, Mutex};

/// What `statetensor probe` reports.
#[derive(Clone, Debug)]
pub struct ProbeInfo {
    /// The library loaded.
    pub path: String,
    /// Runtime version, when reported.
    pub version: Option<String>,
    /// Visible NeuronCores.
    pub visible_cores: u32,
}

/// Loads libnrt (searching the usual places) and asks it what it sees.
pub fn probe(path: Option<&str>) -> Result<ProbeInfo> {
    let rt = Runtime::open(path)?;
    Ok(ProbeInfo {
        path: rt.path.clone(),
        version: rt.version(),
        visible_cores: rt.visible_cores()?,
    })
}

/// The driver's state sets: each state one device tensor (shared with the tensor sets it
/// is bound in), and initial values kept on the device for `reset`.
pub(crate) type NrtStateSets = StateSets<Arc<DeviceTensor>, DeviceTensor>;

/// One NeuronCore through libnrt: the runtime, and the state sets and weights models
/// share.
pub struct NrtDevice {
    pub(crate) rt: Arc<Runtime>,
    /// The NeuronCore, numbered among those visible to the process.
    core: u32,
    pub(crate) sets: NrtStateSets,
    /// Weights resident on this core (one device tensor each), shared by the models that
    /// name them.
    pub(crate) weights: ResidentWeights<DeviceTensor>,
    peak: Mutex<u64>,
}

impl std::fmt::Debug for NrtDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NrtDevice({}, NeuronCore {})", self.rt.path, self.core)
    }
}

impl NrtDevice {
    /// Opens libnrt (`path`, or the usual search) and NeuronCore 0.
    pub fn open(path: Option<&str>) -> Result<Arc<NrtDevice>> {
        NrtDevice::open_core(path, 0)
    }

    /// Opens libnrt and NeuronCore `core` (numbered among the cores visible to the
    /// process, as `NEURON_RT_VISIBLE_CORES` makes them); a core past the last visible one
    /// is refused, naming how many there are.
    pub fn open_core(path: Option<&str>, core: u32) -> Result<Arc<NrtDevice>> {
        let rt = Runtime::open(path)?;
        let visible = rt.visible_cores()?;
        if core >= visible {
            return Err(Error::invalid_input(
                format!("open NeuronCore {core}"),
                format!(
                    "{} sees {visible} NeuronCore{} (numbered from 0; NEURON_RT_VISIBLE_CORES chooses them)",
                    rt.path,
                    if visible == 1 { "" } else { "s" }
                ),
            ));
        }
        Ok(Arc::new(NrtDevice {
            rt,
            core,
            sets: StateSets::default(),
            weights: ResidentWeights::default(),
            peak: Mutex::new(0),
        }))
    }

    /// The NeuronCore this device is.
    pub fn core(&self) -> u32 {
        self.core
    }

    /// A device tensor of `size` bytes in this core's memory.
    pub(crate) fn allocate(&self, size: usize, name: &str) -> Result<DeviceTensor> {
        DeviceTensor::allocate(&self.rt, self.core, size, name)
    }

    /// Loads `neff` on this core, alone or as one core of an SPMD program.
    pub(crate) fn load(&self, neff: Vec<u8>, collective: Option<Collective>) -> Result<Model> {
        Model::load(&self.rt, neff, self.core, collective)
    }

    /// (used, capacity) bytes of this core's memory, when the runtime reports them.
    pub(crate) fn memory_stats(&self) -> Option<(u64, u64)> {
        self.rt.memory_stats(self.core)
    }

    /// The loaded runtime's path.
    pub fn library(&self) -> &str {
        &self.rt.path
    }

    /// Notes the runtime's current HBM use in the peak.
    pub(crate) fn note_peak(&self) {
        if let Some((used, _)) = self.memory_stats() {
            let mut p = lock(&self.peak);
            *p = (*p).max(used);
        }
    }

    /// The highest HBM use noted so far.
    pub(crate) fn peak(&self) -> u64 {
        *lock(&self.peak)
    }
}

pub(crate) use statetensor_core::lock_unpoisoned as lock;
