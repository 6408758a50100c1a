//! `statetensor calibrate`: measures a real device's transfers and execute overhead through
//! libnrt — and with `--cores N` its collectives between N NeuronCores
//! ([`collectives`]) — and writes a device profile. Hardware only, so it names the driver
//! directly.

mod collectives;

use crate::progress::Progress;
use crate::report::{bytes, seconds};
use clap::Args;
use statetensor_core::files::write_file_atomically;
use statetensor_core::{Error, Result, StatefulModel};
use statetensor_hlo::Bundle;
use statetensor_hw::safe::{DeviceTensor, Runtime};
use statetensor_hw::{NrtDevice, NrtModel};
use statetensor_open::DeviceProfile;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// The built-in profile whose other fields the measured ones complete.
    #[arg(long, default_value = "inf2", value_parser = ["inf2", "trn1", "trn2"])]
    base: String,
    /// Where to write the profile (JSON; `--device FILE` accepts it).
    #[arg(long, default_value = "calibrated.json")]
    out: PathBuf,
    /// Largest transfer measured, in MiB (sizes go up by 4x from 4 KiB).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_mib: u64,
    /// Repetitions per size (the median is used).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    repeats: u32,
    /// Also measure all-reduces over this many NeuronCores (0..N-1) and fit the profile's
    /// collective bandwidth (on-chip when they share a chip, NeuronLink otherwise) and
    /// latency. 1: no collectives.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    cores: u32,
    /// Where the all-reduce models are written, one bundle per size (hardware runs the
    /// model.neff compiled into each; see docs/hardware.md).
    #[arg(long, default_value = "calibrate-collectives")]
    collective_models: PathBuf,
}

/// Collectives are measured up to this size per core.
const MAX_COLLECTIVE_BYTES: u64 = 64 << 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Fit of `t = latency + bytes / bandwidth` minimising *relative* error (least squares
/// weighted by 1/t², so 4 KiB and 256 MiB transfers count alike); returns (latency,
/// bandwidth, largest relative residual, RMS relative residual). The residuals are how the
/// fit is judged: small ones mean the two-parameter model describes the transport.
pub(crate) fn fit(points: &[(f64, f64)]) -> (f64, f64, f64, f64) {
    let (mut sw, mut swx, mut swxx, mut swy, mut swxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(x, y) in points {
        let w = 1.0 / (y * y).max(1e-24);
        sw += w;
        swx += w * x;
        swxx += w * x * x;
        swy += w * y;
        swxy += w * x * y;
    }
    let det = sw * swxx - swx * swx;
    let (mut latency, mut slope) = if det.abs() > 0.0 {
        (
            (swxx * swy - swx * swxy) / det,
            (sw * swxy - swx * swy) / det,
        )
    } else {
        (0.0, 0.0)
    };
    if latency < 0.0 {
        // a negative intercept is noise: refit through the origin
        latency = 0.0;
        slope = swxy / swxx.max(1e-300);
    }
    let slope = slope.max(1e-15);
    let rel: Vec<f64> = points
        .iter()
        .map(|&(x, y)| ((latency + slope * x) - y).abs() / y.max(1e-12))
        .collect();
    let max = rel.iter().cloned().fold(0.0, f64::max);
    let rms = (rel.iter().map(|r| r * r).sum::<f64>() / points.len().max(1) as f64).sqrt();
    (latency, 1.0 / slope, max, rms)
}

/// A trivial model for measuring execute overhead.
const TRIVIAL: &str = "HloModule trivial, input_output_alias={ {}: (0, {}, may-alias) }\nENTRY e {\n  c = s32[] parameter(0)\n  one = s32[] constant(1)\n  ROOT n = s32[] add(c, one)\n}\n";

pub fn calibrate(a: CalibrateArgs) -> Result<()> {
    let rt = Runtime::open(None)?;
    let mut sizes = Vec::new();
    let mut s = 4096u64;
    while s <= a.max_mib << 20 {
        sizes.push(s as usize);
        s *= 4;
    }
    let collective_sizes: Vec<u64> = if a.cores > 1 {
        sizes
            .iter()
            .map(|&s| s as u64)
            .filter(|&s| s <= MAX_COLLECTIVE_BYTES)
            .collect()
    } else {
        Vec::new()
    };
    let mut progress = Progress::new((sizes.len() + collective_sizes.len()) as u64 + 2);
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    let mut rows = Vec::new();
    for &size in &sizes {
        let t = DeviceTensor::allocate(&rt, 0, size, "calibrate")?;
        let mut buf = vec![0x5au8; size];
        let time = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
            let mut v = Vec::new();
            for _ in 0..a.repeats {
                let st = Instant::now();
                f()?;
                v.push(st.elapsed().as_secs_f64());
            }
            Ok(median(v))
        };
        let w = time(&mut || t.write(0, &buf))?;
        let r = time(&mut || t.read(0, &mut buf))?;
        writes.push((size as f64, w));
        reads.push((size as f64, r));
        rows.push((size, w, r));
        progress.tick("calibrate");
    }
    // device-to-device copy at the largest size
    let big = *sizes.last().unwrap_or(&4096);
    let (src, dst) = (
        DeviceTensor::allocate(&rt, 0, big, "calibrate-src")?,
        DeviceTensor::allocate(&rt, 0, big, "calibrate-dst")?,
    );
    let mut v = Vec::new();
    for _ in 0..a.repeats {
        let st = Instant::now();
        src.copy_to(&dst)?;
        v.push(st.elapsed().as_secs_f64());
    }
    let d2d_rate = big as f64 / median(v);
    progress.tick("calibrate");
    // execute overhead of a trivial model (needs a runtime that loads HLO, or a NEFF)
    let dev = NrtDevice::open(None)?;
    let trivial = Bundle::from_text(TRIVIAL, "trivial.hlo")?;
    let overhead = match NrtModel::load(&dev, &trivial, &Default::default()) {
        Ok(m) => {
            m.create_state_set("c", statetensor_core::StateInit::Zeros)?;
            let mut v = Vec::new();
            for _ in 0..a.repeats.max(20) {
                let before = m.ledger();
                m.execute("c", &[])?;
                v.push((m.ledger() - before).execute_seconds);
            }
            Some(median(v))
        }
        Err(_) => None,
    };
    progress.tick("calibrate");
    let (lw, bw, wmax, wrms) = fit(&writes);
    let (lr, br, rmax, rrms) = fit(&reads);
    let base = DeviceProfile::builtin(&a.base).expect("validated by clap");
    let latency = (lw + lr) / 2.0;
    let mut notes = vec![
        format!("measured by statetensor calibrate on {} ({})", rt.path, rt.version().unwrap_or_else(|| "version not reported".into())),
        format!("host->device: {:.3} GiB/s, fit latency {:.1} us, relative residuals max {:.1}% rms {:.1}%", bw / (1u64 << 30) as f64, lw * 1e6, wmax * 100.0, wrms * 100.0),
        format!("device->host: {:.3} GiB/s, fit latency {:.1} us, relative residuals max {:.1}% rms {:.1}%", br / (1u64 << 30) as f64, lr * 1e6, rmax * 100.0, rrms * 100.0),
        format!("device->device copy (nrt_tensor_copy, {}): {:.3} GiB/s; not used as HBM bandwidth, which stays the {} figure", bytes(big as u64), d2d_rate / (1u64 << 30) as f64, a.base),
    ];
    match overhead {
        Some(o) => notes.push(format!("execute overhead of a trivial model: {:.1} us (median)", o * 1e6)),
        None => notes.push(format!("execute overhead not measured (the runtime did not load the trivial model); kept the {} figure", a.base)),
    }
    let mut profile = DeviceProfile {
        name: format!("calibrated-{}", a.base),
        h2d_bytes_per_s: bw,
        d2h_bytes_per_s: br,
        transfer_latency_s: latency,
        execute_overhead_s: overhead.unwrap_or(base.execute_overhead_s),
        ..base
    };
    let mut collective_rows = Vec::new();
    if a.cores > 1 {
        let c = collectives::measure(
            &a.collective_models,
            a.cores as usize,
            &collective_sizes,
            a.repeats,
            overhead.unwrap_or(0.0),
            &mut progress,
        )?;
        // a group within one chip exchanges on the chip; otherwise over NeuronLink
        let (field, what) = if a.cores as usize <= profile.cores_per_chip {
            profile.chip_bytes_per_s = c.bytes_per_s;
            ("chip_bytes_per_s", "on one chip")
        } else {
            profile.link_bytes_per_s = c.bytes_per_s;
            ("link_bytes_per_s", "over NeuronLink")
        };
        profile.collective_latency_s = c.latency_s;
        notes.push(format!(
            "all-reduce over {} cores ({what}): {:.3} GiB/s per core through the ring ({field}), {:.1} us per ring step (collective_latency_s), relative residuals max {:.1}% rms {:.1}%",
            a.cores,
            c.bytes_per_s / (1u64 << 30) as f64,
            c.latency_s * 1e6,
            c.residuals.0 * 100.0,
            c.residuals.1 * 100.0
        ));
        collective_rows = c.rows;
    }
    profile.notes = notes.clone();
    let json = serde_json::to_string_pretty(&profile)
        .map_err(|e| Error::runtime("calibrate", e.to_string()))?;
    write_file_atomically(&a.out, json.as_bytes())?;
    let mut out = String::from("size         write         read\n");
    for (size, w, r) in rows {
        out.push_str(&format!(
            "{:>10} {:>12} {:>12}\n",
            bytes(size as u64),
            seconds(w),
            seconds(r)
        ));
    }
    if !collective_rows.is_empty() {
        out.push_str(&format!(
            "size per core   all-reduce over {} cores\n",
            a.cores
        ));
        for (size, t) in &collective_rows {
            out.push_str(&format!("{:>13} {:>20}\n", bytes(*size), seconds(*t)));
        }
    }
    for n in &notes {
        out.push_str(&format!("{n}\n"));
    }
    out.push_str(&format!(
        "wrote {} (use it with --device {})\n",
        a.out.display(),
        a.out.display()
    ));
    crate::output::emit(&out)
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fit_recovers_latency_and_bandwidth() {
        let pts: Vec<(f64, f64)> = [4096.0, 65536.0, 1048576.0, 16777216.0]
            .iter()
            .map(|&x| (x, 10e-6 + x / 8e9))
            .collect();
        let (lat, bw, max, _) = fit(&pts);
        assert!((lat - 10e-6).abs() < 1e-9, "{lat}");
        assert!((bw - 8e9).abs() / 8e9 < 1e-6, "{bw}");
        assert!(max < 1e-6);
    }
}
