//! A simulated NeuronCore: a profile, its HBM ledger, its state sets and an armed fault.

use crate::DeviceProfile;
use statetensor_core::{Hbm, MemoryReport, ResidentWeights, StateSets};
use statetensor_hlo::Tensor;
use std::sync::{Arc, Mutex};

/// A state buffer in the simulator: `None` only after a failed execute consumed it (the
/// set is then poisoned).
pub(crate) type SimBuffer = Option<Arc<Tensor>>;

/// The simulator's state sets: buffers, and initial values kept for `reset`.
pub(crate) type SimStateSets = StateSets<SimBuffer, Arc<Tensor>>;

/// A simulated NeuronCore: a profile, its HBM ledger, its state sets and resident weights.
/// Several models loaded on one device share state sets and weights by name.
#[derive(Debug)]
pub struct SimDevice {
    pub(crate) profile: DeviceProfile,
    pub(crate) hbm: Hbm,
    pub(crate) sets: SimStateSets,
    /// Weights resident on this core, shared by the models that name them.
    pub(crate) weights: ResidentWeights<Tensor>,
    /// The armed fault and the executes counted since it was armed.
    fault: Mutex<(Fault, u64)>,
}

impl SimDevice {
    /// An empty device.
    pub fn new(profile: DeviceProfile) -> Arc<SimDevice> {
        Arc::new(SimDevice {
            hbm: Hbm::new(profile.hbm_bytes),
            profile,
            sets: StateSets::default(),
            weights: ResidentWeights::default(),
            fault: Mutex::new((Fault::None, 0)),
        })
    }

    /// The profile.
    pub fn profile(&self) -> &DeviceProfile {
        &self.profile
    }

    /// Arms a fault for the executes that follow on this device (any model); counting
    /// starts again from 1.
    pub fn inject_fault(&self, fault: Fault) {
        *lock(&self.fault) = (fault, 0);
    }

    /// HBM use.
    pub fn memory(&self) -> MemoryReport {
        self.hbm.report()
    }

    /// Counts one execute; returns the armed fault and this execute's number.
    pub(crate) fn count_execute(&self) -> (Fault, u64) {
        let mut f = lock(&self.fault);
        f.1 += 1;
        *f
    }
}

/// Faults the simulator can inject, so tests can show failures are handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// No fault.
    #[default]
    None,
    /// Execute number `call` (1-based, counted per device since the fault was armed) fails
    /// after it has written part of the state (the first state tensor is updated, the others
    /// are lost).
    FailExecute {
        /// Which execute fails.
        call: u64,
    },
}

pub(crate) use statetensor_core::lock_unpoisoned as lock;
