//! `statetensor bench`: the same steps aliased and round trip, side by side.

use crate::model_args::{ModelArgs, Opened};
use crate::progress::Progress;
use crate::report::{bytes, ratio, row, seconds, Report, StepReport};
use crate::values::{prepare, StepInputs};
use clap::Args;
use statetensor_core::{Error, Result, StatefulModel, TransferLedger};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub(crate) m: ModelArgs,
    /// Steps per way.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) steps: u64,
    /// Print {"aliased": {...}, "round_trip": {...}} on stdout instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Sweep a model family's state size instead (MODEL is then `family:kv-decoder`):
    /// cache lengths `MIN:MAX` (doubling) or `A,B,C`; writes sweep.csv and sweep.svg.
    #[arg(long, value_name = "LENGTHS")]
    pub(crate) sweep: Option<String>,
    /// Sweep the tensor-parallel degree instead (MODEL is then `family:kv-decoder`): core
    /// counts `MIN:MAX` (doubling) or `A,B,C`, each running a Megatron-style attention
    /// layer of `--width` (heads of 64) over a `--cache-len` cache, its heads split among
    /// the cores; writes sweep.csv and sweep.svg: aliased vs round trip per core count.
    #[arg(long, value_name = "CORES", conflicts_with = "sweep")]
    pub(crate) sweep_tp: Option<String>,
    /// Cache length of the TP sweep's layer.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub(crate) cache_len: u64,
    /// Where the sweep writes its CSV and SVG.
    #[arg(long, value_name = "DIR", default_value = "sweep")]
    pub(crate) out: PathBuf,
    /// Row width of the kv-decoder family (f32 elements).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=8192))]
    pub(crate) width: u64,
}

/// Runs `steps` executes one way and returns the report of those steps.
/// Runs `steps` steps aliased on set `aliased` (already holding the starting state), then
/// round trip on a copy of that starting state in set `round_trip`.
pub(crate) fn both_ways(
    model: &dyn StatefulModel,
    inputs: &mut StepInputs,
    steps: u64,
    device: &str,
    progress: &mut Progress,
) -> Result<(Report, Report)> {
    // the round-trip set starts from the same state
    model.copy_state_set("aliased", "round_trip")?;
    let aliased = one_way(model, "aliased", inputs, steps, false, device, progress)?;
    inputs.rewind()?;
    let round = one_way(model, "round_trip", inputs, steps, true, device, progress)?;
    Ok((aliased, round))
}

fn one_way(
    model: &dyn StatefulModel,
    set: &str,
    inputs: &mut StepInputs,
    steps: u64,
    round_trip: bool,
    device: &str,
    progress: &mut Progress,
) -> Result<Report> {
    let sig = model.signature().clone();
    let states: Vec<String> = sig.state_specs().map(|s| s.name.clone()).collect();
    // round trip: the host holds the state between steps, as without state tensors
    let mut host: Vec<Vec<u8>> = Vec::new();
    if round_trip {
        for st in &states {
            let mut buf = Vec::new();
            model.read_state_to(set, st, &mut buf)?;
            host.push(buf);
        }
    }
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
        inputs.execute_next(model, set)?;
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
        time_kind: model
            .backend()
            .parse::<statetensor_open::Backend>()
            .map_or("modelled", crate::report::time_kind)
            .into(),
        model: String::new(),
        transfers_d2d: d.d2d.transfers,
        execute_s: d.execute_seconds,
        collective_s: d.collective.seconds,
        collective_bytes: d.collective.bytes,
        fed_bytes_per_step: inputs.fed_bytes_per_step(),
        states_started_at_zeros: Vec::new(),
        weight_bytes: sig.weight_bytes(),
        per_step,
        without_state_tensors: None,
        per_core: Vec::new(),
    })
}

pub fn bench(a: BenchArgs) -> Result<()> {
    let (aliased, round, states, weights) = match a.m.cores {
        Some(n) => crate::cores::bench(&a.m, n as usize, a.steps)?,
        None => {
            let Opened {
                bundle,
                model,
                device,
                ..
            } = a.m.open()?;
            let model = &*model;
            let (mut inputs, zeros) = prepare(model, &bundle, &a.m, a.steps, "aliased")?;
            let mut progress = Progress::new(2 * a.steps);
            let (mut aliased, mut round) =
                both_ways(model, &mut inputs, a.steps, &device, &mut progress)?;
            aliased.states_started_at_zeros = zeros;
            for r in [&mut aliased, &mut round] {
                r.model = bundle.source().to_string();
            }
            let sig = model.signature();
            (
                aliased,
                round,
                sig.state_params().len(),
                sig.weight_params().len(),
            )
        }
    };
    if a.json {
        let j = |r: &Report| {
            serde_json::to_string_pretty(r).map_err(|e| Error::runtime("bench", e.to_string()))
        };
        return crate::output::emit(&format!(
            "{{\n\"aliased\": {},\n\"round_trip\": {}\n}}\n",
            j(&aliased)?,
            j(&round)?
        ));
    }
    let n = a.steps as f64;
    let per = |x: u64| bytes((x as f64 / n).round() as u64);
    let time_kind = crate::report::time_kind(a.m.backend);
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
        "  state {} in {states} tensor(s)\n",
        bytes(aliased.state_bytes),
    ));
    if aliased.weight_bytes > 0 {
        out.push_str(&format!(
            "  weights {} resident in {} tensor(s), uploaded once at load (not in the figures above)\n",
            bytes(aliased.weight_bytes),
            weights
        ));
    }
    crate::output::emit(&out)
}
