//! statetensor-open: the one place that names both backends.
//!
//! Everything that lets a user choose a backend — the CLI, the benchmarks, the conformance
//! suite (and the Python package, when it lands) — opens models here: a [`Bundle`] (an HLO
//! file or a bundle directory, parsed once), a [`Backend`], a device profile and an
//! optional alias map in; a `Box<dyn StatefulModel>` out. A new backend is a new [`Backend`] variant and its arms in
//! this file's matches; nothing outside this crate changes.
//!
//! Design choices:
//! - **Parse once.** A [`Bundle`] holds the planned program; every model loaded from it on
//!   any device shares it.
//! - **Devices are explicit.** Models loaded on one [`Device`] share its state sets (the
//!   prefill/decode pattern) and its memory; two devices share nothing.
//! - **The backends keep their own types.** Tests of one backend (its fault injection, its
//!   driver details) use that backend's crate directly; only code that lets the user pick
//!   comes through here.
//!
//! ```
//! use statetensor_open::{Backend, Bundle, Device, DeviceProfile};
//! use statetensor_core::{DType, HostTensor, StateInit};
//! let bundle = Bundle::from_text(
//!     "HloModule counter, input_output_alias={ {1}: (0, {}, may-alias) }
//! ENTRY e {
//!   x = s32[] parameter(0)
//!   c = s32[] parameter(1)
//!   n = s32[] add(c, x)
//!   ROOT t = (s32[], s32[]) tuple(c, n)
//! }",
//!     "counter.hlo",
//! )
//! .unwrap();
//! let device = Device::open(Backend::Sim, &DeviceProfile::inf2()).unwrap();
//! let model = device.load(&bundle, &Default::default()).unwrap();
//! model.create_state_set("s", StateInit::Zeros).unwrap();
//! let one = HostTensor::new(DType::S32, vec![], 1i32.to_le_bytes().to_vec()).unwrap();
//! model.execute("s", &[one]).unwrap();
//! assert_eq!(model.backend(), "sim");
//! ```

pub mod report;

use statetensor_core::{Error, LoadOptions, Result, ShardedModel, StatefulModel};
use statetensor_hw::{NrtDevice, NrtModel, NrtShardedModel};
use statetensor_sim::{SimDevice, SimModel, SimShardedModel};
use std::sync::Arc;

pub use statetensor_hlo::Bundle;
pub use statetensor_sim::DeviceProfile;

/// Where a model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The CPU simulator: executes the HLO, models HBM and transfer costs.
    Sim,
    /// The Neuron runtime, libnrt: real hardware, or the emulator named by
    /// `$STATETENSOR_LIBNRT`.
    Nrt,
}

impl Backend {
    /// Every backend, by the name users choose it with.
    pub const ALL: [(&'static str, Backend); 2] = [("sim", Backend::Sim), ("nrt", Backend::Nrt)];

    /// The backend's name (`sim`, `nrt`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sim => "sim",
            Backend::Nrt => "nrt",
        }
    }

    /// True when times are measured rather than modelled.
    pub fn measures_time(self) -> bool {
        self == Backend::Nrt
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Backend> {
        Backend::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|&(_, b)| b)
            .ok_or_else(|| {
                let names: Vec<&str> = Backend::ALL.iter().map(|(n, _)| *n).collect();
                Error::invalid_input(
                    "backend",
                    format!(
                        "'{s}' is not a backend; expected one of {}",
                        names.join(", ")
                    ),
                )
            })
    }
}

/// A device of one backend, on which models are loaded.
#[derive(Clone, Debug)]
pub enum Device {
    /// A simulated NeuronCore.
    Sim(Arc<SimDevice>),
    /// A NeuronCore through libnrt.
    Nrt(Arc<NrtDevice>),
}

impl Device {
    /// A fresh device: a simulated core with `profile`, or core 0 through libnrt (found as
    /// the driver documents; `profile` then only prices the "without state tensors"
    /// comparison).
    pub fn open(backend: Backend, profile: &DeviceProfile) -> Result<Device> {
        Ok(match backend {
            Backend::Sim => Device::Sim(SimDevice::new(profile.clone())),
            Backend::Nrt => Device::Nrt(NrtDevice::open(None)?),
        })
    }

    /// A device through the libnrt at `library` (the emulator in tests and benchmarks).
    pub fn nrt_library(library: &str) -> Result<Device> {
        Ok(Device::Nrt(NrtDevice::open(Some(library))?))
    }

    /// Its backend.
    pub fn backend(&self) -> Backend {
        match self {
            Device::Sim(_) => Backend::Sim,
            Device::Nrt(_) => Backend::Nrt,
        }
    }

    /// The device as reports name it: the profile's name, or the libnrt loaded.
    pub fn describe(&self) -> String {
        match self {
            Device::Sim(d) => d.profile().name.clone(),
            Device::Nrt(d) => format!("libnrt {}", d.library()),
        }
    }

    /// Loads `bundle` on this device: `opts` (alias map, names, weights) over the bundle's
    /// manifest over the HLO ([`Bundle::load_options`]).
    pub fn load(&self, bundle: &Bundle, opts: &LoadOptions) -> Result<Box<dyn StatefulModel>> {
        let opts = &bundle.load_options(opts, true)?;
        Ok(match self {
            Device::Sim(d) => Box::new(SimModel::from_program(d, bundle.program().clone(), opts)?),
            Device::Nrt(d) => Box::new(NrtModel::load(d, bundle, opts)?),
        })
    }

    /// The NEFF I/O names each parameter and output binds to, on a libnrt device (`None`
    /// on the simulator, which has no NEFF).
    pub fn io_names(
        &self,
        bundle: &Bundle,
        opts: &LoadOptions,
    ) -> Result<Option<(Vec<String>, Vec<String>)>> {
        match self {
            Device::Sim(_) => Ok(None),
            Device::Nrt(d) => {
                let m = NrtModel::load(d, bundle, &bundle.load_options(opts, true)?)?;
                let (i, o) = m.io_names();
                Ok(Some((i.to_vec(), o.to_vec())))
            }
        }
    }
}

/// Loads `bundle` as one SPMD model run by `cores` cores of `backend` — fresh cores of
/// `profile` on the simulator, NeuronCores 0..`cores` through libnrt (found as the driver
/// documents, `$STATETENSOR_LIBNRT` first): `opts[k]` is core k's (its shard of each
/// weight), or one for all.
pub fn load_sharded(
    backend: Backend,
    profile: &DeviceProfile,
    bundle: &Bundle,
    opts: &[LoadOptions],
    cores: usize,
) -> Result<Box<dyn ShardedModel>> {
    let opts = sharded_options(bundle, opts)?;
    Ok(match backend {
        Backend::Sim => Box::new(SimShardedModel::load(
            profile,
            bundle.program().clone(),
            &opts,
            cores,
        )?),
        Backend::Nrt => Box::new(NrtShardedModel::load(None, bundle, &opts, cores)?),
    })
}

/// [`load_sharded`] on the driver through the libnrt at `library` (the emulator in tests
/// and benchmarks).
pub fn load_sharded_nrt(
    library: &str,
    bundle: &Bundle,
    opts: &[LoadOptions],
    cores: usize,
) -> Result<Box<dyn ShardedModel>> {
    let opts = sharded_options(bundle, opts)?;
    Ok(Box::new(NrtShardedModel::load(
        Some(library),
        bundle,
        &opts,
        cores,
    )?))
}

/// Every core's options over the bundle's manifest (its weight files are not read: each
/// core is given its own shard).
fn sharded_options(bundle: &Bundle, opts: &[LoadOptions]) -> Result<Vec<LoadOptions>> {
    opts.iter().map(|o| bundle.load_options(o, false)).collect()
}

/// Opens the model at `path` (an HLO file or a bundle directory) on a fresh device.
pub fn open(
    path: &std::path::Path,
    backend: Backend,
    profile: &DeviceProfile,
    opts: &LoadOptions,
) -> Result<(Device, Box<dyn StatefulModel>)> {
    let bundle = Bundle::open(path)?;
    let device = Device::open(backend, profile)?;
    let model = device.load(&bundle, opts)?;
    Ok((device, model))
}
