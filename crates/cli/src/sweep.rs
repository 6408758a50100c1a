//! `statetensor bench --sweep`: the savings over a range of state sizes, as CSV and a plot.

use crate::bench::{both_ways, BenchArgs};
use crate::model_args::Opened;
use crate::progress::Progress;
use crate::values::StepInputs;
use statetensor_core::files::write_file_atomically;
use statetensor_core::{Error, HostTensor, Result};
use statetensor_hlo::models;
use statetensor_hlo::Bundle;

/// A deterministic value of `spec` in [-0.05, 0.05), different for each `salt`.
fn synthetic(spec: &statetensor_core::TensorSpec, salt: u64) -> Result<statetensor_hlo::Tensor> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let vals: Vec<f64> = (0..spec.shape.element_count())
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64 * 0.1 - 0.05
        })
        .collect();
    statetensor_hlo::Tensor::from_f64s(spec.dtype, spec.shape.dims(), &vals)
}

/// Inputs for a generated model: deterministic values in [-0.05, 0.05).
fn synthetic_inputs(sig: &statetensor_core::Signature) -> Result<Vec<HostTensor>> {
    sig.input_params()
        .iter()
        .map(|&p| {
            let s = &sig.params[p];
            HostTensor::new(
                s.dtype,
                s.shape.dims().to_vec(),
                synthetic(s, 0)?.to_le_bytes(),
            )
        })
        .collect()
}

pub(crate) fn sweep(a: &BenchArgs, spec: &str) -> Result<()> {
    if a.m.cores.is_some() {
        return Err(Error::invalid_input(
            "--sweep",
            "the kv-decoder family runs on one core; --sweep-tp CORES sweeps the core count of its tensor-parallel layer, and bench --cores N runs a partitioned module",
        ));
    }
    let family = a.m.model.to_string_lossy();
    if family != "family:kv-decoder" {
        return Err(Error::invalid_input(
            "bench --sweep",
            format!("model '{family}' is not a model family; the sweep runs `family:kv-decoder`"),
        ));
    }
    let lens = parse_sizes(spec).ok_or_else(|| {
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
    let kind = crate::report::time_kind(a.m.backend);
    for &len in &lens {
        let file = dir.join(format!("kv_decoder_{len}.hlo"));
        let text = models::kv_decoder(len, a.width as usize);
        // kept next to the results, so a point of the sweep can be run again on its own
        write_file_atomically(&file, text.as_bytes())?;
        let bundle = Bundle::from_text(&text, &file.display().to_string())?;
        let Opened { model, device, .. } = a.m.open_bundle(bundle)?;
        let model = &*model;
        let mut inputs = StepInputs::fixed(model, synthetic_inputs(model.signature())?)?;
        model.create_state_set("aliased", statetensor_core::StateInit::Zeros)?;
        let (al, rt) = both_ways(model, &mut inputs, a.steps, &device, &mut progress)?;
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
    let title = format!(
        "kv-decoder step, width {}: time per step ({kind}, {})",
        a.width, a.m.backend
    );
    write_sweep(&a.out, &csv, &title, &xs, ta, tr)
}

/// `bench --sweep-tp`: the tensor-parallel layer of `models::tp_kv_decoder` at each core
/// count, aliased vs round trip (every core's shards copied out and back), as CSV and a
/// plot. Each point's model, its weights (one value for every core: their shapes are the
/// shard's) and its token are kept under `OUT/models/tp{N}/`, so a point can be run again
/// with `bench --cores N`.
pub(crate) fn sweep_tp(a: &BenchArgs, spec: &str) -> Result<()> {
    let family = a.m.model.to_string_lossy();
    if family != "family:kv-decoder" || a.m.cores.is_some() {
        return Err(Error::invalid_input(
            "bench --sweep-tp",
            format!("'{family}'{}: the TP sweep runs `family:kv-decoder` and chooses the core counts itself", if a.m.cores.is_some() { " with --cores" } else { "" }),
        ));
    }
    let counts = parse_sizes(spec).ok_or_else(|| {
        Error::invalid_input(
            "bench --sweep-tp",
            format!("'{spec}': expected MIN:MAX (doubling) or a comma list of core counts"),
        )
    })?;
    let (len, d) = (a.cache_len as usize, a.width as usize);
    let mut models = Vec::new();
    for &n in &counts {
        let text = models::tp_kv_decoder(len, d, n).ok_or_else(|| {
            let hd = models::tp_head_dim(d);
            let why = if d % hd != 0 {
                format!("--width {d} is not a whole number of heads of {hd}; use a multiple of {hd}")
            } else {
                format!(
                    "--width {d} has {} head(s) of {hd}, which do not split among {n} cores; use a multiple of {} (--width {})",
                    d / hd,
                    hd * n,
                    (d / (hd * n) + 1) * hd * n
                )
            };
            Error::invalid_input("bench --sweep-tp", why)
        })?;
        models.push((n, text));
    }
    let dir = a.out.join("models");
    let mut progress = Progress::new(counts.len() as u64);
    let mut csv = String::from("cores,state_bytes_per_core,aliased_s_per_step,round_trip_s_per_step,collective_s_per_step,aliased_h2d_per_step,round_trip_h2d_per_step,aliased_d2h_per_step,round_trip_d2h_per_step,time\n");
    let (mut xs, mut ta, mut tr) = (Vec::new(), Vec::new(), Vec::new());
    let kind = crate::report::time_kind(a.m.backend);
    for (n, text) in models {
        let point = dir.join(format!("tp{n}"));
        std::fs::create_dir_all(&point)
            .map_err(|e| Error::io("create", point.display().to_string(), e))?;
        let file = point.join("model.hlo");
        write_file_atomically(&file, text.as_bytes())?;
        let sig = Bundle::from_text(&text, &file.display().to_string())?
            .program()
            .signature(&Default::default())?;
        let mut m = a.m.clone();
        m.model = file;
        m.cores = Some(n as u64);
        for p in 0..5 {
            let f = point.join(format!("arg{p}.npy"));
            statetensor_hlo::npy::write_file(&f, &synthetic(&sig.params[p], p as u64)?)?;
            let flag = format!("{p}={}", f.display());
            if p == 0 {
                m.inputs.push(flag)
            } else {
                m.weights.push(flag)
            }
        }
        let (al, rt, _, _) = crate::cores::bench(&m, n, a.steps)?;
        let steps = a.steps as f64;
        csv.push_str(&format!(
            "{n},{},{:.9},{:.9},{:.9},{},{},{},{},{kind}\n",
            al.state_bytes / n as u64,
            al.modelled_s / steps,
            rt.modelled_s / steps,
            al.collective_s / steps,
            al.bytes_h2d / a.steps,
            rt.bytes_h2d / a.steps,
            al.bytes_d2h / a.steps,
            rt.bytes_d2h / a.steps
        ));
        xs.push(n as f64);
        ta.push(al.modelled_s / steps);
        tr.push(rt.modelled_s / steps);
        progress.tick("sweep-tp");
    }
    let title = format!(
        "tensor-parallel attention, width {d}, cache {len}: time per token by cores ({kind}, {})",
        a.m.backend
    );
    write_sweep(&a.out, &csv, &title, &xs, ta, tr)
}

/// Writes a sweep's `sweep.csv` and its plot `sweep.svg` (time per step aliased and round
/// trip over `xs`) into `out`, and prints the CSV.
fn write_sweep(
    out: &std::path::Path,
    csv: &str,
    title: &str,
    xs: &[f64],
    aliased: Vec<f64>,
    round_trip: Vec<f64>,
) -> Result<()> {
    write_file_atomically(&out.join("sweep.csv"), csv.as_bytes())?;
    let plot = crate::plot::svg(
        title,
        xs,
        &[
            ("aliased (state stays on the device)", "#1f77b4", aliased),
            (
                "round trip (state copied out and back)",
                "#d62728",
                round_trip,
            ),
        ],
    );
    write_file_atomically(&out.join("sweep.svg"), plot.as_bytes())?;
    crate::output::emit(&format!(
        "{csv}wrote {} and {}\n",
        out.join("sweep.csv").display(),
        out.join("sweep.svg").display()
    ))
}

/// `128:32768` (doubling from the first to the last) or `128,1024,4096`.
pub fn parse_sizes(spec: &str) -> Option<Vec<usize>> {
    if let Some((a, b)) = spec.split_once(':') {
        let (mut a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if a == 0 || a > b {
            return None;
        }
        let mut v = Vec::new();
        while a <= b {
            v.push(a);
            a *= 2;
        }
        return Some(v);
    }
    let v: Option<Vec<usize>> = spec
        .split(',')
        .map(|s| s.trim().parse().ok().filter(|&n: &usize| n > 0))
        .collect();
    v.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::parse_sizes;

    #[test]
    fn sizes() {
        assert_eq!(parse_sizes("128:1024"), Some(vec![128, 256, 512, 1024]));
        assert_eq!(parse_sizes("3, 5"), Some(vec![3, 5]));
        assert_eq!(parse_sizes("0:8"), None);
        assert_eq!(parse_sizes("8:4"), None);
        assert_eq!(parse_sizes(""), None);
        assert_eq!(parse_sizes("1,x"), None);
    }
}
