//! `statetensor run`: a model for N steps with its state on the device, and the report.

use crate::model_args::{ModelArgs, Opened};
use crate::report::{bytes, seconds, Report, RunFacts, StepReport};
use crate::values::prepare;
use clap::Args;
use statetensor_core::files::write_atomically;
use statetensor_core::{snapshot, Error, Result};
use statetensor_hlo::{npy, Tensor};
use std::path::PathBuf;
use std::time::Instant;

/// The state set a run uses.
const SET: &str = "run";

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    m: ModelArgs,
    /// Executions, carrying state between them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    steps: u64,
    /// Write output_K.npy for every output of the last step, and report.json.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the report as JSON on stdout instead of the human summary.
    #[arg(long)]
    json: bool,
}

pub(crate) fn preview(t: &Tensor) -> String {
    let v = t.to_f64_vec();
    // f64 prints in full; narrower floats print their own shortest form
    let narrow = t.dtype().is_float() && t.dtype() != statetensor_core::DType::F64;
    let shown: Vec<String> = v
        .iter()
        .take(8)
        .map(|&x| {
            if narrow {
                format!("{}", x as f32)
            } else {
                format!("{x}")
            }
        })
        .collect();
    let more = if v.len() > 8 {
        format!(", ... ({} values)", v.len())
    } else {
        String::new()
    };
    format!("[{}{more}]", shown.join(", "))
}

/// Writes `report.json` into `dir`, whole or not at all.
pub(crate) fn write_report(dir: &std::path::Path, report: &Report) -> Result<()> {
    let json = report.to_json()?;
    write_atomically(&dir.join("report.json"), |w| {
        w.write_all(json.as_bytes())
            .and_then(|_| w.write_all(b"\n"))
            .map_err(|e| Error::io("write", "report.json", e))
    })
}

/// Prints the report as JSON on stdout (`--json`).
pub(crate) fn emit_json(report: &Report) -> Result<()> {
    crate::output::emit(&format!("{}\n", report.to_json()?))
}

pub fn run(a: RunArgs) -> Result<()> {
    if let Some(n) = a.m.cores {
        return crate::cores::run(&a.m, n as usize, a.steps, a.out.as_deref(), a.json);
    }
    let start = Instant::now();
    let Opened {
        bundle,
        model,
        device,
        profile,
    } = a.m.open()?;
    let model = &*model;
    let sig = model.signature().clone();
    let (mut step_inputs, zeros) = prepare(model, &bundle, &a.m, a.steps, SET)?;
    // the steps
    let mut per_step = Vec::new();
    let mut last = Vec::new();
    for _ in 0..a.steps {
        let before = model.ledger();
        last = step_inputs.execute_next(model, SET)?;
        per_step.push(StepReport::from_ledger(&(model.ledger() - before)));
    }
    let report = Report::of_run(
        model,
        RunFacts {
            backend: a.m.backend,
            device,
            profile,
            model: bundle.source().to_string(),
            per_step,
            wall_s: start.elapsed().as_secs_f64(),
            fed_bytes_per_step: step_inputs.fed_bytes_per_step(),
            states_started_at_zeros: zeros,
        },
    );
    // outputs of the last step: returned ones from the host, state ones read back streaming
    let returned = sig.returned_outputs();
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io("create output directory", dir.display().to_string(), e))?;
        for (k, spec) in sig.outputs.iter().enumerate() {
            let file = dir.join(format!("output_{k}.npy"));
            match sig.aliases.param_for(k) {
                Some(q) => write_atomically(&file, |w| {
                    w.write_all(&npy::header_bytes(spec.dtype, spec.shape.dims()))
                        .map_err(|e| Error::io("write", file.display().to_string(), e))?;
                    // int4: one value per byte in the file (ml_dtypes' form), packed in the state
                    snapshot::write_state_values(model, SET, &sig.params[q], w, true)
                })?,
                None => {
                    let i = returned.iter().position(|&o| o == k).unwrap_or(0);
                    let h = &last[i];
                    let t = Tensor::from_le_bytes(h.dtype, h.shape.dims(), &h.data)?;
                    write_atomically(&file, |w| npy::write(w, &t, &file.display().to_string()))?;
                }
            }
        }
        write_report(dir, &report)?;
    }
    if a.json {
        return emit_json(&report);
    }
    let mut out = String::new();
    out.push_str(&format!(
        "model {} on {} ({} profile)\n",
        report.model, report.backend, report.device
    ));
    for q in sig.state_params() {
        let s = &sig.params[q];
        out.push_str(&format!(
            "  state {} {} ({}) <- output {}\n",
            s.name,
            s.type_string(),
            bytes(s.size_bytes() as u64),
            sig.aliases.output_for(q).unwrap_or(0)
        ));
    }
    for q in sig.weight_params() {
        let s = &sig.params[q];
        out.push_str(&format!(
            "  weight {} {} ({}), resident\n",
            s.name,
            s.type_string(),
            bytes(s.size_bytes() as u64)
        ));
    }
    for (i, st) in report.per_step.iter().enumerate() {
        out.push_str(&format!(
            "step {}: host->device {} ({}), device->host {} ({}), {} {}\n",
            i + 1,
            bytes(st.bytes_h2d),
            st.transfers_h2d,
            bytes(st.bytes_d2h),
            st.transfers_d2h,
            report.time_kind,
            seconds(st.modelled_s)
        ));
    }
    out.push_str(&format!("outputs of step {}:\n", a.steps));
    for (k, spec) in sig.outputs.iter().enumerate() {
        let shown = match sig.aliases.param_for(k) {
            Some(q) => {
                // a small read for display, after the report's totals were taken
                let count = spec.shape.element_count().min(8);
                let mut buf = vec![0u8; spec.dtype.packed_bytes(count)];
                model.read_state(SET, &sig.params[q].name, 0, &mut buf)?;
                let t = Tensor::from_le_bytes(spec.dtype, &[count], &buf)?;
                let more = if spec.shape.element_count() > 8 {
                    format!(" (first 8 of {})", spec.shape.element_count())
                } else {
                    String::new()
                };
                format!("{}{more}  (state {})", preview(&t), sig.params[q].name)
            }
            None => {
                let i = returned.iter().position(|&o| o == k).unwrap_or(0);
                let h = &last[i];
                preview(&Tensor::from_le_bytes(h.dtype, h.shape.dims(), &h.data)?)
            }
        };
        out.push_str(&format!("  output {k} {} = {shown}\n", spec.type_string()));
    }
    out.push_str(&report.human());
    crate::output::emit(&out)
}
