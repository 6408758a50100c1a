//! The driver's real FFI path: the shared alias-contract suite, plus driver-specific tests.
//!
//! The contract suite runs over the libnrt emulator (`libnrt_emu.so`, built by the
//! dev-dependency) — or over the real runtime when `STATETENSOR_LIBNRT` names a libnrt that
//! is not the emulator, which is how the hardware lane runs the same suite on an inf2/trn1
//! machine (each fixture directory then holds the `model.neff` compiled from it). The
//! driver-specific tests always use the emulator.

mod driver;
mod sharded;

use statetensor_conformance::contract::{ContractDevice, Harness};
use statetensor_conformance::{contract_tests, fixture_hlo, fixture_path};
use statetensor_core::{StatefulModel, INF2_CORE_HBM_BYTES};
use statetensor_hlo::Bundle;
use statetensor_hw::{NrtDevice, NrtModel, LIBNRT_ENV};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// `libnrt_emu.so`, built by the dev-dependency on statetensor-nrt-emu.
pub fn emulator() -> PathBuf {
    nrt_emu::hook::built_library()
        .expect("libnrt_emu.so was not built (a dev-dependency of this crate)")
}

/// A libnrt is process-wide: tests that use one run one at a time.
pub static DEVICE_LOCK: Mutex<()> = Mutex::new(());

/// Calls the emulator's test hook (fault mode and HBM capacity).
pub fn configure(fault: &str, hbm_bytes: u64) {
    nrt_emu::hook::configure(emulator().to_str().unwrap(), fault, hbm_bytes)
        .expect("the emulator's test hook");
}

/// The real libnrt named by `STATETENSOR_LIBNRT`, when it names one (a library without the
/// emulator's test hook); `None` runs the suite over the freshly built emulator. Decided
/// once per process, under the device lock (asking an emulator clears its armed fault).
fn real_libnrt() -> Option<String> {
    static REAL: OnceLock<Option<String>> = OnceLock::new();
    REAL.get_or_init(|| {
        let path = std::env::var(LIBNRT_ENV).ok().filter(|p| !p.is_empty())?;
        let _guard = DEVICE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        // opening it runs nrt_init, as the suite would; the emulator then answers its test
        // hook (an empty fault, the capacity unchanged) and libnrt has no such symbol
        let emulated =
            NrtDevice::open(Some(&path)).is_ok() && nrt_emu::hook::configure(&path, "", 0).is_ok();
        (!emulated).then_some(path)
    })
    .clone()
}

/// Devices of the driver: over the emulator, or over real libnrt (see the crate docs).
pub struct DriverHarness {
    real: Option<String>,
}

impl DriverHarness {
    /// Over real libnrt when `STATETENSOR_LIBNRT` names it, else over the emulator.
    fn new() -> DriverHarness {
        DriverHarness {
            real: real_libnrt(),
        }
    }

    /// Always over the freshly built emulator.
    pub fn emulated() -> DriverHarness {
        DriverHarness { real: None }
    }

    fn device_of(&self, capacity: u64) -> ContractDevice {
        let guard = DEVICE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let library = match &self.real {
            Some(p) => p.clone(),
            None => emulator().display().to_string(),
        };
        let dev = NrtDevice::open(Some(&library)).expect("the driver loads libnrt");
        let arm_fail_execute: Option<Box<dyn Fn(u64)>> = if self.real.is_some() {
            None
        } else {
            configure("", capacity);
            Some(Box::new(|call| {
                configure(
                    &if call == 0 {
                        String::new()
                    } else {
                        format!("fail_execute:{call}")
                    },
                    0,
                )
            }))
        };
        let real = self.real.is_some();
        ContractDevice {
            loader: Box::new(move |name, opts| {
                // real libnrt loads the fixture directory's compiled model.neff; the
                // emulator loads the HLO text (a NEFF there would be refused)
                let bundle = if real {
                    Bundle::open(&fixture_path(name))?
                } else {
                    Bundle::from_text(&fixture_hlo(name), name)?
                };
                Ok(Box::new(NrtModel::load(&dev, &bundle, opts)?) as Box<dyn StatefulModel>)
            }),
            arm_fail_execute,
            guard: Some(Box::new(guard)),
        }
    }
}

impl Harness for DriverHarness {
    fn name(&self) -> String {
        match &self.real {
            Some(p) => format!("the driver over {p}"),
            None => "the driver over the emulator".into(),
        }
    }

    fn device(&self) -> ContractDevice {
        self.device_of(INF2_CORE_HBM_BYTES)
    }

    fn device_with_capacity(&self, bytes: u64) -> Option<ContractDevice> {
        self.real.is_none().then(|| self.device_of(bytes))
    }

    fn is_hardware(&self) -> bool {
        self.real.is_some()
    }
}

contract_tests!(DriverHarness::new());
