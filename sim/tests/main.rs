//! Behaviour tests of the simulator backend: the shared alias-contract suite, plus what is
//! specific to the simulator (exact HBM accounting, profiles).

mod model;
mod sharded;

use statetensor_conformance::contract::{ContractDevice, Harness};
use statetensor_conformance::{contract_tests, fixture_hlo};
use statetensor_core::StatefulModel;
use statetensor_sim::{DeviceProfile, Fault, SimDevice, SimModel};

/// Simulated devices (inf2 profile, capacity overridable).
pub struct SimHarness;

impl SimHarness {
    fn device_of(&self, profile: DeviceProfile) -> ContractDevice {
        let dev = SimDevice::new(profile);
        let for_faults = dev.clone();
        ContractDevice {
            loader: Box::new(move |name, opts| {
                Ok(
                    Box::new(SimModel::load(&dev, &fixture_hlo(name), name, opts)?)
                        as Box<dyn StatefulModel>,
                )
            }),
            arm_fail_execute: Some(Box::new(move |call| {
                for_faults.inject_fault(if call == 0 {
                    Fault::None
                } else {
                    Fault::FailExecute { call }
                })
            })),
            guard: None,
        }
    }
}

impl Harness for SimHarness {
    fn name(&self) -> String {
        "the simulator".into()
    }

    fn device(&self) -> ContractDevice {
        self.device_of(DeviceProfile::inf2())
    }

    fn device_with_capacity(&self, bytes: u64) -> Option<ContractDevice> {
        Some(self.device_of(DeviceProfile {
            hbm_bytes: bytes,
            ..DeviceProfile::inf2()
        }))
    }
}

contract_tests!(SimHarness);
