//! Behaviour tests of the simulator backend: the shared alias-contract suite, plus what is
//! specific to the simulator (exact HBM accounting, profiles).

#[macro_use]
mod contract;
mod model;

use contract::{fixture_path, Dev, Harness};
use statetensor_core::StatefulModel;
use statetensor_sim::{DeviceProfile, Fault, SimDevice, SimModel};

/// Simulated devices (inf2 profile, capacity overridable).
pub struct SimHarness;

impl Harness for SimHarness {
    fn device(&self, capacity: Option<u64>) -> Dev {
        let mut profile = DeviceProfile::inf2();
        if let Some(c) = capacity {
            profile.hbm_bytes = c;
        }
        let dev = SimDevice::new(profile);
        let for_faults = dev.clone();
        Dev {
            load: Box::new(move |name, aliases| {
                let text =
                    std::fs::read_to_string(fixture_path(name).join("model.hlo")).expect("fixture");
                Ok(Box::new(SimModel::load(&dev, &text, name, aliases)?) as Box<dyn StatefulModel>)
            }),
            arm_fail_execute: Box::new(move |call| {
                for_faults.inject_fault(if call == 0 {
                    Fault::None
                } else {
                    Fault::FailExecute { call }
                })
            }),
            guard: None,
        }
    }
}

contract_tests!(SimHarness);
