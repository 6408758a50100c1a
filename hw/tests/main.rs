//! The driver's real FFI path, run over the libnrt emulator (libnrt_emu.so): the shared
//! alias-contract suite (the very file the simulator runs), plus driver-specific tests.

#[macro_use]
#[path = "../../sim/tests/contract.rs"]
mod contract;
mod driver;

use contract::{fixture_path, Dev, Harness};
use statetensor_core::StatefulModel;
use statetensor_hw::{NrtDevice, NrtModel};
use std::path::PathBuf;
use std::sync::Mutex;

/// `libnrt_emu.so`, built by the dev-dependency on statetensor-nrt-emu.
pub fn emulator() -> PathBuf {
    nrt_emu::hook::built_library()
        .expect("libnrt_emu.so was not built (a dev-dependency of this crate)")
}

/// The emulator is one device per process: tests that use it run one at a time.
pub static DEVICE_LOCK: Mutex<()> = Mutex::new(());

/// Calls the emulator's test hook (fault mode and HBM capacity).
pub fn configure(fault: &str, hbm_bytes: u64) {
    nrt_emu::hook::configure(emulator().to_str().unwrap(), fault, hbm_bytes)
        .expect("the emulator's test hook");
}

/// Devices of the driver over the emulator.
pub struct EmuHarness;

impl Harness for EmuHarness {
    fn device(&self, capacity: Option<u64>) -> Dev {
        let guard = DEVICE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let dev = NrtDevice::open(Some(emulator().to_str().unwrap()))
            .expect("the emulator loads through the driver");
        configure(
            "",
            capacity.unwrap_or(statetensor_sim::DeviceProfile::inf2().hbm_bytes),
        );
        Dev {
            load: Box::new(move |name, aliases| {
                Ok(
                    Box::new(NrtModel::open(&dev, &fixture_path(name), aliases)?)
                        as Box<dyn StatefulModel>,
                )
            }),
            arm_fail_execute: Box::new(|call| {
                configure(
                    &if call == 0 {
                        String::new()
                    } else {
                        format!("fail_execute:{call}")
                    },
                    0,
                )
            }),
            guard: Some(Box::new(guard)),
        }
    }
}

contract_tests!(EmuHarness);
