//! `statetensor calibrate --cores N`: an all-reduce over N NeuronCores at growing sizes,
//! fitted to the ring model the simulator prices collectives with
//! (`DeviceProfile::collective_cost`).
//!
//! Each size is a one-instruction module (an `all-reduce` of `f32[n]` over every core), written
//! as a bundle under `--collective-models DIR` (`model.hlo`, written when the directory
//! has no model; `tools/gen_collective_models.py` writes JAX's `model.pb` there for
//! neuronx-cc). The runtime that loads HLO (the emulator) runs it as it is, real hardware
//! runs the `model.neff` compiled into the same directory (docs/hardware.md §6). A step's time is the slowest core's `nrt_execute`;
//! the fit of `t = a + 2(G−1)/G · S / bandwidth` over the sizes gives the bandwidth, and
//! the intercept less the execute overhead, over the ring's 2(G−1) steps, the latency.

use super::{fit, median};
use crate::progress::Progress;
use statetensor_core::{DType, Error, HostTensor, Result, ShardedModel, StateInit};
use statetensor_hlo::Bundle;
use statetensor_hw::NrtShardedModel;
use std::path::Path;

/// What the all-reduce measurements say.
pub(super) struct CollectiveFit {
    /// Bytes per core per second through the ring.
    pub bytes_per_s: f64,
    /// Seconds per ring step.
    pub latency_s: f64,
    /// (bytes per core, median seconds) measured.
    pub rows: Vec<(u64, f64)>,
    /// Largest and RMS relative residual of the fit.
    pub residuals: (f64, f64),
}

/// The module of one size: an all-reduce of `f32[elements]` over every core.
fn all_reduce_hlo(elements: u64) -> String {
    format!(
        "HloModule all_reduce_f32_{elements}, entry_computation_layout={{(f32[{elements}]{{0}})->f32[{elements}]{{0}}}}

add {{
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}}

ENTRY main {{
  x = f32[{elements}]{{0}} parameter(0)
  ROOT r = f32[{elements}]{{0}} all-reduce(x), replica_groups={{}}, to_apply=add
}}
"
    )
}

/// The bundle of one size under `dir`: its `model.hlo` written when missing (a
/// `model.neff` compiled beside it is what hardware loads).
fn bundle(dir: &Path, elements: u64) -> Result<Bundle> {
    let d = dir.join(format!("all_reduce_f32_{elements}"));
    let hlo = d.join("model.hlo");
    if !hlo.exists() && !d.join("model.pb").exists() {
        std::fs::create_dir_all(&d)
            .map_err(|e| Error::io("create the collective models", d.display().to_string(), e))?;
        statetensor_core::files::write_file_atomically(&hlo, all_reduce_hlo(elements).as_bytes())?;
    }
    Bundle::open(&d)
}

/// Measures all-reduces over `cores` cores at `sizes` bytes per core, `repeats` each
/// (the median); `overhead_s` is a trivial execute's time, taken off the intercept.
pub(super) fn measure(
    dir: &Path,
    cores: usize,
    sizes: &[u64],
    repeats: u32,
    overhead_s: f64,
    progress: &mut Progress,
) -> Result<CollectiveFit> {
    let mut rows = Vec::new();
    for &size in sizes {
        let elements = (size / 4).max(1);
        let model =
            NrtShardedModel::load(None, &bundle(dir, elements)?, &[Default::default()], cores)?;
        model.create_state_set("c", &[StateInit::Zeros])?;
        let x = HostTensor::new(
            DType::F32,
            vec![elements as usize],
            vec![0u8; 4 * elements as usize],
        )?;
        let inputs = vec![vec![x]; cores];
        model.execute("c", &inputs)?; // warm-up: first-use bindings
        let mut times = Vec::new();
        for _ in 0..repeats {
            let before = model.ledgers();
            model.execute("c", &inputs)?;
            let slowest = (model.ledgers().iter().zip(&before))
                .map(|(a, b)| (*a - *b).execute_seconds)
                .fold(0.0, f64::max);
            times.push(slowest);
        }
        rows.push((4 * elements, median(times)));
        progress.tick("calibrate");
    }
    let g = cores as f64;
    let ring = |bytes: u64| 2.0 * (g - 1.0) / g * bytes as f64;
    let points: Vec<(f64, f64)> = rows.iter().map(|&(b, t)| (ring(b), t)).collect();
    let (intercept, bytes_per_s, max, rms) = fit(&points);
    Ok(CollectiveFit {
        bytes_per_s,
        latency_s: (intercept - overhead_s).max(0.0) / (2.0 * (g - 1.0)),
        rows,
        residuals: (max, rms),
    })
}
