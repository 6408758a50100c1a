//! `statetensor bench` and `statetensor calibrate`.

use crate::report::{bytes, ratio, row, seconds, Report, StepReport};
use crate::run::{open_model, prepare, Opened};
use clap::Args;
use statetensor_core::{Error, HostTensor, Result, StatefulModel, TransferLedger};
use statetensor_sim::DeviceProfile;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    m: crate::run::ModelArgs,
    /// Steps per way.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    steps: u64,
    /// Print {"aliased": {...}, "round_trip": {...}} on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Sweep a model family's state size instead (MODEL is then `family:kv-decoder`):
    /// cache lengths `MIN:MAX` (doubling) or `A,B,C`; writes sweep.csv and sweep.svg.
    #[arg(long, value_name = "LENGTHS")]
    sweep: Option<String>,
    /// Where the sweep writes its CSV and SVG.
    #[arg(long, value_name = "DIR", default_value = "sweep")]
    out: PathBuf,
    /// Row width of the kv-decoder family (f32 elements).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=8192))]
    width: u64,
}

/// A progress line on stderr for long runs (only when stderr is a terminal).
struct Progress {
    total: u64,
    done: u64,
    start: Instant,
    show: bool,
}

impl Progress {
    fn new(total: u64) -> Progress {
        Progress {
            total,
            done: 0,
            start: Instant::now(),
            show: std::io::stderr().is_terminal(),
        }
    }

    fn tick(&mut self, what: &str) {
        self.done += 1;
        if self.show && self.start.elapsed().as_secs_f64() > 1.0 {
            let w = 30 * self.done / self.total.max(1);
            eprint!(
                "\r{what} [{}{}] {}/{}",
                "=".repeat(w as usize),
                " ".repeat(30 - w as usize),
                self.done,
                self.total
            );
            if self.done == self.total {
                eprintln!();
            }
        }
    }
}

/// Runs `steps` executes one way and returns the report of those steps.
/// Runs `steps` steps aliased on set `aliased` (already holding the starting state), then
/// round trip on a copy of that starting state in set `round_trip`.
fn both_ways(
    model: &dyn StatefulModel,
    inputs: &[HostTensor],
    steps: u64,
    device: &str,
    progress: &mut Progress,
) -> Result<(Report, Report)> {
    // the round-trip set starts from the same state
    model.copy_state_set("aliased", "round_trip")?;
    let aliased = one_way(model, "aliased", inputs, steps, false, device, progress)?;
    let round = one_way(model, "round_trip", inputs, steps, true, device, progress)?;
    Ok((aliased, round))
}

fn one_way(
    model: &dyn StatefulModel,
    set: &str,
    inputs: &[HostTensor],
    steps: u64,
    round_trip: bool,
    device: &str,
    progress: &mut Progress,
) -> Result<Report> {
    let sig = model.signature().clone();
    let states: Vec<String> = sig
        .state_params()
        .iter()
        .map(|&p| sig.params[p].name.clone())
        .collect();
    // round trip: the host holds the state between steps, as without state tensors
    let mut host: Vec<Vec<u8>> = Vec::new();
    if round_trip {
        for st in &states {
            let mut buf = Vec::new();
            model.read_state_to(set, st, &mut buf)?;
            host.push(buf);
        }
    }
    let prepared = model.prepare_inputs(inputs)?;
    let start = Instant::now();
    let first = model.ledger();
    let mut per_step = Vec::new();
    for _ in 0..steps {
        let before = model.ledger();
        if round_trip {
            for (st, buf) in states.iter().zip(&host) {
                model.write_state(set, st, 0, buf)?;
            }
        }
        model.execute_prepared(set, &prepared)?;
        if round_trip {
            for (st, buf) in states.iter().zip(host.iter_mut()) {
                buf.clear();
                model.read_state_to(set, st, buf)?;
            }
        }
        per_step.push(StepReport::from_ledger(&(model.ledger() - before)));
        progress.tick(if round_trip { "round trip" } else { "aliased" });
    }
    let d: TransferLedger = model.ledger() - first;
    let mem = model.memory();
    Ok(Report {
        backend: model.backend().to_string(),
        device: device.to_string(),
        steps,
        bytes_h2d: d.h2d.bytes,
        bytes_d2h: d.d2h.bytes,
        bytes_d2d: d.d2d.bytes,
        transfers_h2d: d.h2d.transfers,
        transfers_d2h: d.d2h.transfers,
        state_bytes: sig.state_bytes(),
        hbm_peak_bytes: mem.peak,
        hbm_capacity_bytes: mem.capacity,
        modelled_s: d.total_seconds(),
        wall_s: start.elapsed().as_secs_f64(),
        model: String::new(),
        transfers_d2d: d.d2d.transfers,
        execute_s: d.execute_seconds,
        per_step,
        without_state_tensors: None,
    })
}

pub fn bench(a: BenchArgs) -> Result<()> {
    if let Some(spec) = &a.sweep {
        return sweep(&a, spec);
    }
    let Opened {
        path,
        model,
        device,
        ..
    } = open_model(&a.m.backend, &a.m.device, &a.m.model, &a.m.aliases)?;
    let model = &*model;
    let inputs = prepare(model, &path, &a.m.inputs, &a.m.states, "aliased")?;
    let mut progress = Progress::new(2 * a.steps);
    let (mut aliased, mut round) = both_ways(model, &inputs, a.steps, &device, &mut progress)?;
    for r in [&mut aliased, &mut round] {
        r.model = path.hlo.display().to_string();
    }
    if a.json {
        let j = |r: &Report| {
            serde_json::to_string_pretty(r).map_err(|e| Error::runtime("bench", e.to_string()))
        };
        return crate::emit(&format!(
            "{{\n\"aliased\": {},\n\"round_trip\": {}\n}}\n",
            j(&aliased)?,
            j(&round)?
        ));
    }
    let n = a.steps as f64;
    let per = |x: u64| bytes((x as f64 / n).round() as u64);
    let time_kind = if aliased.backend == "sim" {
        "modelled"
    } else {
        "measured"
    };
    let mut out = format!(
        "bench {} on {} ({}), {} steps each way; per step:\n",
        aliased.model, aliased.backend, aliased.device, a.steps
    );
    let w = [22, 16, 16, 10];
    out.push_str(&row(
        &w,
        &[
            "".into(),
            "aliased".into(),
            "round trip".into(),
            "ratio".into(),
        ],
    ));
    out.push_str(&row(
        &w,
        &[
            "host -> device".into(),
            per(aliased.bytes_h2d),
            per(round.bytes_h2d),
            ratio(aliased.bytes_h2d as f64, round.bytes_h2d as f64),
        ],
    ));
    out.push_str(&row(
        &w,
        &[
            "device -> host".into(),
            per(aliased.bytes_d2h),
            per(round.bytes_d2h),
            ratio(aliased.bytes_d2h as f64, round.bytes_d2h as f64),
        ],
    ));
    out.push_str(&row(
        &w,
        &[
            format!("time ({time_kind})"),
            seconds(aliased.modelled_s / n),
            seconds(round.modelled_s / n),
            ratio(aliased.modelled_s, round.modelled_s),
        ],
    ));
    out.push_str(&row(
        &w[..3],
        &[
            "HBM used (peak)".into(),
            bytes(aliased.hbm_peak_bytes),
            bytes(round.hbm_peak_bytes),
        ],
    ));
    out.push_str(&format!(
        "  state {} in {} tensor(s)\n",
        bytes(aliased.state_bytes),
        model.signature().state_params().len()
    ));
    crate::emit(&out)
}

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
}

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
    use statetensor_hw::safe::{DeviceTensor, Runtime};
    let rt = Runtime::open(None)?;
    let mut sizes = Vec::new();
    let mut s = 4096u64;
    while s <= a.max_mib << 20 {
        sizes.push(s as usize);
        s *= 4;
    }
    let mut progress = Progress::new(sizes.len() as u64 + 2);
    let (mut writes, mut reads) = (Vec::new(), Vec::new());
    let mut rows = Vec::new();
    for &size in &sizes {
        let t = DeviceTensor::allocate(&rt, size, "calibrate")?;
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
        DeviceTensor::allocate(&rt, big, "calibrate-src")?,
        DeviceTensor::allocate(&rt, big, "calibrate-dst")?,
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
    let dir = std::env::temp_dir().join(format!("statetensor-calibrate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", dir.display().to_string(), e))?;
    std::fs::write(dir.join("model.hlo"), TRIVIAL)
        .map_err(|e| Error::io("write", dir.display().to_string(), e))?;
    let dev = statetensor_hw::NrtDevice::open(None)?;
    let overhead = match statetensor_hw::NrtModel::open(&dev, &dir, None) {
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
    let _ = std::fs::remove_dir_all(&dir);
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
    let profile = DeviceProfile {
        name: format!("calibrated-{}", a.base),
        h2d_bytes_per_s: bw,
        d2h_bytes_per_s: br,
        transfer_latency_s: latency,
        execute_overhead_s: overhead.unwrap_or(base.execute_overhead_s),
        notes: notes.clone(),
        ..base
    };
    let json = serde_json::to_string_pretty(&profile)
        .map_err(|e| Error::runtime("calibrate", e.to_string()))?;
    crate::write_file_atomically(&a.out, json.as_bytes())?;
    let mut out = String::from("size         write         read\n");
    for (size, w, r) in rows {
        out.push_str(&format!(
            "{:>10} {:>12} {:>12}\n",
            bytes(size as u64),
            seconds(w),
            seconds(r)
        ));
    }
    for n in &notes {
        out.push_str(&format!("{n}\n"));
    }
    out.push_str(&format!(
        "wrote {} (use it with --device {})\n",
        a.out.display(),
        a.out.display()
    ));
    crate::emit(&out)
}

/// Inputs for a generated model: deterministic values in [-0.05, 0.05).
fn synthetic_inputs(sig: &statetensor_core::Signature) -> Result<Vec<HostTensor>> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    sig.input_params()
        .iter()
        .map(|&p| {
            let s = &sig.params[p];
            let vals: Vec<f64> = (0..s.shape.element_count())
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 11) as f64 / (1u64 << 53) as f64 * 0.1 - 0.05
                })
                .collect();
            let t = statetensor_hlo::Tensor::from_f64s(s.dtype, s.shape.dims(), &vals)?;
            HostTensor::new(s.dtype, s.shape.dims().to_vec(), t.to_le_bytes())
        })
        .collect()
}

fn sweep(a: &BenchArgs, spec: &str) -> Result<()> {
    let family = a.m.model.to_string_lossy();
    if family != "family:kv-decoder" {
        return Err(Error::invalid_input(
            "bench --sweep",
            format!("model '{family}' is not a model family; the sweep runs `family:kv-decoder`"),
        ));
    }
    let lens = statetensor_sim::family::parse_sizes(spec).ok_or_else(|| {
        Error::invalid_input(
            "bench --sweep",
            format!("'{spec}': expected MIN:MAX (doubling) or a comma list of positive lengths"),
        )
    })?;
    std::fs::create_dir_all(&a.out)
        .map_err(|e| Error::io("create", a.out.display().to_string(), e))?;
    let dir = a.out.join("models");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", dir.display().to_string(), e))?;
    let mut progress = Progress::new(2 * a.steps * lens.len() as u64);
    let mut csv = String::from("cache_len,state_bytes,aliased_s_per_step,round_trip_s_per_step,aliased_h2d_per_step,round_trip_h2d_per_step,aliased_d2h_per_step,round_trip_d2h_per_step,time\n");
    let (mut xs, mut ta, mut tr) = (Vec::new(), Vec::new(), Vec::new());
    let mut kind = "modelled";
    for &len in &lens {
        let file = dir.join(format!("kv_decoder_{len}.hlo"));
        crate::write_file_atomically(
            &file,
            statetensor_sim::family::kv_decoder(len, a.width as usize).as_bytes(),
        )?;
        let Opened { model, device, .. } =
            open_model(&a.m.backend, &a.m.device, &file, &a.m.aliases)?;
        let model = &*model;
        let inputs = synthetic_inputs(model.signature())?;
        model.create_state_set("aliased", statetensor_core::StateInit::Zeros)?;
        let (al, rt) = both_ways(model, &inputs, a.steps, &device, &mut progress)?;
        if al.backend != "sim" {
            kind = "measured";
        }
        let n = a.steps as f64;
        csv.push_str(&format!(
            "{len},{},{:.9},{:.9},{},{},{},{},{kind}\n",
            al.state_bytes,
            al.modelled_s / n,
            rt.modelled_s / n,
            al.bytes_h2d / a.steps,
            rt.bytes_h2d / a.steps,
            al.bytes_d2h / a.steps,
            rt.bytes_d2h / a.steps
        ));
        xs.push(al.state_bytes as f64);
        ta.push(al.modelled_s / n);
        tr.push(rt.modelled_s / n);
    }
    crate::write_file_atomically(&a.out.join("sweep.csv"), csv.as_bytes())?;
    let title = format!(
        "kv-decoder step, width {}: time per step ({kind}, {})",
        a.width, a.m.backend
    );
    let plot = crate::family::svg(
        &title,
        &xs,
        &[
            ("aliased (state stays on the device)", "#1f77b4", ta),
            ("round trip (state copied out and back)", "#d62728", tr),
        ],
    );
    crate::write_file_atomically(&a.out.join("sweep.svg"), plot.as_bytes())?;
    crate::emit(&format!(
        "{csv}wrote {} and {}\n",
        a.out.join("sweep.csv").display(),
        a.out.join("sweep.svg").display()
    ))
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
