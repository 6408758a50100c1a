//! One NeuronCore through libnrt: the runtime, the state sets models share, the HBM peak.

use crate::safe::{DeviceTensor, Runtime};
use statetensor_core::{ResidentWeights, Result, StateSets};
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
    pub(crate) sets: NrtStateSets,
    /// Weights resident on this core (one device tensor each), shared by the models that
    /// name them.
    pub(crate) weights: ResidentWeights<DeviceTensor>,
    peak: Mutex<u64>,
}

impl std::fmt::Debug for NrtDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NrtDevice({})", self.rt.path)
    }
}

impl NrtDevice {
    /// Opens libnrt (`path`, or the usual search) and core 0.
    pub fn open(path: Option<&str>) -> Result<Arc<NrtDevice>> {
        Ok(Arc::new(NrtDevice {
            rt: Runtime::open(path)?,
            sets: StateSets::default(),
            weights: ResidentWeights::default(),
            peak: Mutex::new(0),
        }))
    }

    /// The loaded runtime's path.
    pub fn library(&self) -> &str {
        &self.rt.path
    }

    /// Notes the runtime's current HBM use in the peak.
    pub(crate) fn note_peak(&self) {
        if let Some((used, _)) = self.rt.memory_stats() {
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
