//! `statetensor run --cores N`: an SPMD model run by N cores at once, each with its own
//! parameters. A value file whose leading axis is N gives core k its slice k; a file of
//! the parameter's own shape gives every core that value. `--out` writes each output with a
//! leading axis of N (core k's at slice k).

use crate::model_args::{parse_aliases, split_assignment, ModelArgs};
use crate::report::{Report, RunFacts, StepReport};
use crate::values::{given_values, Given};
use statetensor_core::files::write_atomically;
use statetensor_core::{
    resolve_param, Error, HostTensor, LoadOptions, Result, ShardedModel, Signature, StateInit,
    TensorSpec, TransferLedger,
};
use statetensor_hlo::{npy, Tensor};
use statetensor_open::{Bundle, DeviceProfile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The state set a run uses.
const SET: &str = "run";

/// A run's values, read and checked before anything runs.
struct CoreValues {
    /// Per input parameter (in input order): one value per core, or (`--feed`) one per
    /// step and core.
    inputs: Vec<PerCore>,
    /// Per state: core k's initial value, or none (zeros).
    states: Vec<StateInit>,
    zeros: Vec<String>,
    fed_bytes_per_step: u64,
    /// `--state-axis`: the axis each named state is sharded along.
    axes: BTreeMap<usize, usize>,
}

enum PerCore {
    Fixed(Vec<HostTensor>),
    Fed(Vec<Vec<HostTensor>>),
}

fn host(t: &Tensor) -> Result<HostTensor> {
    HostTensor::new(t.dtype(), t.dims().to_vec(), t.to_le_bytes())
}

fn dims_text(d: &[usize]) -> String {
    let v: Vec<String> = d.iter().map(usize::to_string).collect();
    format!("[{}]", v.join(", "))
}

/// Parameter `p`'s value for each of `cores` cores from `file`: its own shape (every core
/// the same) or a leading axis of `cores` (core k slice k).
fn per_core_values(
    flag: &str,
    p: usize,
    spec: &TensorSpec,
    file: &Path,
    cores: usize,
) -> Result<Vec<HostTensor>> {
    let what = file.display().to_string();
    let t = npy::read_file_as(file, spec.dtype)
        .map_err(|e| Error::invalid_input(flag, format!("parameter {p} ({}): {e}", spec.name)))?;
    let own = spec.shape.dims();
    if t.dims() == own {
        let h = host(&t)?;
        return Ok(vec![h; cores]);
    }
    if t.dims().first() == Some(&cores) && &t.dims()[1..] == own {
        return (0..cores).map(|k| host(&t.leading_slice(k)?)).collect();
    }
    let mut stacked = vec![cores];
    stacked.extend_from_slice(own);
    Err(Error::invalid_input(
        flag,
        format!(
            "parameter {p} ({}) is {}; '{what}' holds shape {}, expected {} (every core) or {} (core k at slice k)",
            spec.name,
            spec.type_string(),
            dims_text(t.dims()),
            dims_text(own),
            dims_text(&stacked)
        ),
    ))
}

/// `--state-axis P=AXIS`: the axis each named state is sharded along, checked against its
/// rank.
fn state_axes(sig: &Signature, m: &ModelArgs) -> Result<BTreeMap<usize, usize>> {
    let mut axes = BTreeMap::new();
    for v in &m.state_axes {
        let (p, axis) = split_assignment("--state-axis", v, "AXIS")?;
        let p = resolve_param("--state-axis", p, &sig.params)?;
        let spec = &sig.params[p];
        if !sig.aliases.is_state(p) {
            return Err(Error::invalid_input(
                "--state-axis",
                format!("parameter {p} ({}) is not a state", spec.name),
            ));
        }
        let rank = spec.shape.dims().len();
        let axis = axis
            .parse::<usize>()
            .ok()
            .filter(|&a| a < rank)
            .ok_or_else(|| {
                Error::invalid_input(
                    "--state-axis",
                    format!(
                        "'{axis}' for state {p} ({}, {}): expected an axis from 0 to {}",
                        spec.name,
                        spec.type_string(),
                        rank.saturating_sub(1)
                    ),
                )
            })?;
        if axes.insert(p, axis).is_some() {
            return Err(Error::invalid_input(
                "--state-axis",
                format!("state {p} ({}) is given twice", spec.name),
            ));
        }
    }
    Ok(axes)
}

/// A whole state from `file`, split along `axis` into one shard per core.
fn split_state(
    p: usize,
    spec: &TensorSpec,
    file: &Path,
    axis: usize,
    cores: usize,
) -> Result<Vec<HostTensor>> {
    let t = npy::read_file_as(file, spec.dtype).map_err(|e| {
        Error::invalid_input("--state", format!("parameter {p} ({}): {e}", spec.name))
    })?;
    let mut whole = spec.shape.dims().to_vec();
    whole[axis] *= cores;
    if t.dims() != whole {
        return Err(Error::invalid_input(
            "--state",
            format!(
                "state {p} ({}) is {} on each core and sharded along axis {axis} (--state-axis): '{}' holds shape {}, expected the whole state {}",
                spec.name,
                spec.type_string(),
                file.display(),
                dims_text(t.dims()),
                dims_text(&whole)
            ),
        ));
    }
    statetensor_core::sharding::split_along(&host(&t)?, axis, cores)
}

/// `--feed` values: one per step along the leading axis, each of the parameter's shape
/// (every core) or with a second axis of `cores`.
fn fed_values(
    p: usize,
    spec: &TensorSpec,
    file: &Path,
    cores: usize,
    steps: u64,
) -> Result<Vec<Vec<HostTensor>>> {
    let what = file.display().to_string();
    let t = npy::read_file_as(file, spec.dtype).map_err(|e| {
        Error::invalid_input("--feed", format!("parameter {p} ({}): {e}", spec.name))
    })?;
    let own = spec.shape.dims();
    let n = t.dims().first().copied().unwrap_or(0);
    let rest = t.dims().get(1..).unwrap_or(&[]);
    let per_core = rest.first() == Some(&cores) && &rest[1..] == own;
    if (n as u64) < steps || !(rest == own || per_core) {
        return Err(Error::invalid_input(
            "--feed",
            format!(
                "parameter {p} ({}) is {}; '{what}' holds shape {}, expected [S, {}] or [S, {cores}, {}] with S >= {steps} (one value per step)",
                spec.name,
                spec.type_string(),
                dims_text(t.dims()),
                own.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
                own.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
            ),
        ));
    }
    (0..steps as usize)
        .map(|s| {
            let step = t.leading_slice(s)?;
            if per_core {
                (0..cores).map(|k| host(&step.leading_slice(k)?)).collect()
            } else {
                Ok(vec![host(&step)?; cores])
            }
        })
        .collect()
}

/// Per-core load options: `--alias`, and every weight's value per core (`--weight`, else
/// the bundle's `arg{P}.npy`).
fn load_options(m: &ModelArgs, bundle: &Bundle, cores: usize) -> Result<Vec<LoadOptions>> {
    let params = bundle.params();
    let mut overrides = LoadOptions::with_aliases(parse_aliases(&m.aliases, &params)?);
    let mut values: BTreeMap<usize, Vec<HostTensor>> = BTreeMap::new();
    for v in &m.weights {
        let (p, file) = split_assignment("--weight", v, "FILE.npy")?;
        let p = resolve_param("--weight", p, &params)?;
        let per_core = per_core_values("--weight", p, &params[p], Path::new(file), cores)?;
        if values.insert(p, per_core).is_some() {
            return Err(Error::invalid_input(
                "--weight",
                format!("parameter {p} ({}) is given twice", params[p].name),
            ));
        }
        overrides.weights.insert(p, None);
    }
    let base = bundle.load_options(&overrides, false)?;
    let sig = bundle.program().signature(&base)?;
    for p in sig.weight_params() {
        if values.contains_key(&p) {
            continue;
        }
        let file = bundle.default_value(p).ok_or_else(|| {
            Error::invalid_input(
                "--weight",
                format!(
                    "weight {p} ({}) needs a value: pass --weight {}=FILE.npy",
                    params[p].name, params[p].name
                ),
            )
        })?;
        values.insert(p, per_core_values("--weight", p, &params[p], &file, cores)?);
    }
    Ok((0..cores)
        .map(|k| {
            let mut o = base.clone();
            for (&p, v) in &values {
                o.weights.insert(p, Some(v[k].clone()));
            }
            o
        })
        .collect())
}

/// Reads every value the flags and the bundle give, per core.
fn values(
    model: &dyn ShardedModel,
    bundle: &Bundle,
    m: &ModelArgs,
    steps: u64,
) -> Result<CoreValues> {
    let cores = model.cores();
    let sig = model.core(0).signature().clone();
    let given = given_values(&sig, m)?;
    let mut inputs = Vec::new();
    let mut fed_bytes_per_step = 0;
    for p in sig.input_params() {
        let spec = &sig.params[p];
        inputs.push(match given[p].clone() {
            Some(Given::Feed(file)) => {
                fed_bytes_per_step += (spec.size_bytes() * cores) as u64;
                PerCore::Fed(fed_values(p, spec, &file, cores, steps)?)
            }
            Some(Given::Input(file)) => {
                PerCore::Fixed(per_core_values("--input", p, spec, &file, cores)?)
            }
            _ => {
                let file = bundle.default_value(p).ok_or_else(|| {
                    Error::invalid_input(
                        "run",
                        format!(
                            "parameter {p} ({} {}) needs a value: pass --input {}=FILE.npy (one value for every core, or one per core along a leading axis of {cores})",
                            spec.name,
                            spec.type_string(),
                            spec.name
                        ),
                    )
                })?;
                PerCore::Fixed(per_core_values("--input", p, spec, &file, cores)?)
            }
        });
    }
    let mut per_core_init: Vec<Vec<(String, HostTensor)>> = vec![Vec::new(); cores];
    let mut zeros = Vec::new();
    let axes = state_axes(&sig, m)?;
    for p in sig.state_params() {
        let spec = &sig.params[p];
        // a --state file of a state with a declared axis is the whole state; the bundle's
        // own value files are per core, as for every other parameter
        let (file, whole): (Option<PathBuf>, bool) = match given[p].clone() {
            Some(Given::State(f)) => (Some(f), axes.contains_key(&p)),
            _ => (bundle.default_value(p), false),
        };
        match file {
            Some(file) => {
                let shards = match axes.get(&p).filter(|_| whole) {
                    Some(&axis) => split_state(p, spec, &file, axis, cores)?,
                    None => per_core_values("--state", p, spec, &file, cores)?,
                };
                for (k, v) in shards.into_iter().enumerate() {
                    per_core_init[k].push((spec.name.clone(), v));
                }
            }
            None => zeros.push(spec.name.clone()),
        }
    }
    let states = per_core_init
        .into_iter()
        .map(|v| {
            if v.is_empty() {
                StateInit::Zeros
            } else {
                StateInit::Values(v)
            }
        })
        .collect();
    Ok(CoreValues {
        inputs,
        states,
        zeros,
        fed_bytes_per_step,
        axes,
    })
}

/// What every core is given at step `s`.
fn step_inputs(v: &CoreValues, cores: usize, s: usize) -> Vec<Vec<HostTensor>> {
    (0..cores)
        .map(|k| {
            v.inputs
                .iter()
                .map(|i| match i {
                    PerCore::Fixed(per_core) => per_core[k].clone(),
                    PerCore::Fed(per_step) => per_step[s][k].clone(),
                })
                .collect()
        })
        .collect()
}

/// What [`OpenedCores::steps`] returns: each step's report, the last step's outputs, and
/// every core's ledger as the first step began.
type Steps = (Vec<StepReport>, Vec<Vec<HostTensor>>, Vec<TransferLedger>);

/// A model opened on several cores, with its values.
struct OpenedCores {
    bundle: Bundle,
    profile: DeviceProfile,
    model: Box<dyn ShardedModel>,
    values: CoreValues,
}

fn open(m: &ModelArgs, cores: usize, steps: u64) -> Result<OpenedCores> {
    let profile = DeviceProfile::resolve(&m.device)?;
    let bundle = Bundle::open(&m.model)?;
    let opts = load_options(m, &bundle, cores)?;
    let model = statetensor_open::load_sharded(m.backend, &profile, &bundle, &opts, cores)?;
    let values = values(&*model, &bundle, m, steps)?;
    Ok(OpenedCores {
        bundle,
        profile,
        model,
        values,
    })
}

impl OpenedCores {
    fn facts(&self, m: &ModelArgs, per_step: Vec<StepReport>, wall_s: f64) -> RunFacts {
        RunFacts {
            backend: m.backend,
            device: self.profile.name.clone(),
            profile: self.profile.clone(),
            model: self.bundle.source().to_string(),
            per_step,
            wall_s,
            fed_bytes_per_step: self.values.fed_bytes_per_step,
            states_started_at_zeros: self.values.zeros.clone(),
        }
    }

    /// Runs `steps` steps on state set `set`; with `round_trip`, every core's state shards
    /// are written from the host before each step and read back after it, as without state
    /// tensors. Returns each step's report, the last step's outputs, and every core's
    /// ledger as the first step began.
    fn steps(&self, set: &str, steps: u64, round_trip: bool) -> Result<Steps> {
        let model = &*self.model;
        let cores = model.cores();
        let sig = model.core(0).signature().clone();
        let states: Vec<String> = sig.state_specs().map(|s| s.name.clone()).collect();
        let mut host: Vec<Vec<Vec<u8>>> = vec![Vec::new(); cores];
        if round_trip {
            for (k, shards) in host.iter_mut().enumerate() {
                for st in &states {
                    let mut buf = Vec::new();
                    model.core(k).read_state_to(set, st, &mut buf)?;
                    shards.push(buf);
                }
            }
        }
        let first = model.ledgers();
        let mut per_step = Vec::new();
        let mut last = Vec::new();
        for s in 0..steps as usize {
            let before = model.ledgers();
            if round_trip {
                for (k, shards) in host.iter().enumerate() {
                    for (st, buf) in states.iter().zip(shards) {
                        model.core(k).write_state(set, st, 0, buf)?;
                    }
                }
            }
            last = model.execute(set, &step_inputs(&self.values, cores, s))?;
            if round_trip {
                for (k, shards) in host.iter_mut().enumerate() {
                    for (st, buf) in states.iter().zip(shards.iter_mut()) {
                        buf.clear();
                        model.core(k).read_state_to(set, st, buf)?;
                    }
                }
            }
            per_step.push(StepReport::of_cores(&before, &model.ledgers()));
        }
        Ok((per_step, last, first))
    }
}

/// `bench --cores N`: the same steps aliased and round trip on every core (each core's
/// state shards copied out and back around each step): the reports of the steps only, and
/// how many state and weight tensors each core holds.
pub(crate) fn bench(
    m: &ModelArgs,
    cores: usize,
    steps: u64,
) -> Result<(Report, Report, usize, usize)> {
    let o = open(m, cores, steps)?;
    o.model.create_state_set("aliased", &o.values.states)?;
    o.model.copy_state_set("aliased", "round_trip")?;
    let mut reports = Vec::new();
    for (set, round_trip) in [("aliased", false), ("round_trip", true)] {
        let start = std::time::Instant::now();
        let (per_step, _, since) = o.steps(set, steps, round_trip)?;
        let facts = o.facts(m, per_step, start.elapsed().as_secs_f64());
        let mut r = Report::of_sharded_run(&*o.model, Some(&since), facts);
        r.without_state_tensors = None;
        reports.push(r);
    }
    let round = reports.pop().expect("two reports");
    let aliased = reports.pop().expect("two reports");
    let sig = o.model.core(0).signature();
    Ok((
        aliased,
        round,
        sig.state_params().len(),
        sig.weight_params().len(),
    ))
}

/// `run --cores N`: loads, runs `steps` steps, reports and writes the outputs.
pub(crate) fn run(
    m: &ModelArgs,
    cores: usize,
    steps: u64,
    out: Option<&Path>,
    json: bool,
) -> Result<()> {
    let start = std::time::Instant::now();
    let o = open(m, cores, steps)?;
    let (bundle, profile, model) = (&o.bundle, &o.profile, &*o.model);
    model.create_state_set(SET, &o.values.states)?;
    let (per_step, last, _) = o.steps(SET, steps, false)?;
    let report = Report::of_sharded_run(
        model,
        None,
        o.facts(m, per_step, start.elapsed().as_secs_f64()),
    );
    let sig = model.core(0).signature().clone();
    let axes = &o.values.axes;
    let outputs = stacked_outputs(model, &last, axes)?;
    if let Some(dir) = out {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io("create output directory", dir.display().to_string(), e))?;
        for (k, t) in outputs.iter().enumerate() {
            let file = dir.join(format!("output_{k}.npy"));
            write_atomically(&file, |w| npy::write(w, t, &file.display().to_string()))?;
        }
        crate::run::write_report(dir, &report)?;
    }
    if json {
        return crate::run::emit_json(&report);
    }
    let topo = bundle.program().topology(cores)?;
    let mut text = format!(
        "model {} on {} ({} profile), {topo}, {}\n",
        report.model, report.backend, report.device, profile.interconnect
    );
    let collectives = bundle.program().collectives().len();
    text.push_str(&if m.backend.measures_time() {
        format!("  {collectives} collective instruction(s), run by the runtime inside each core's execute (their time is in the measured compute)\n")
    } else {
        format!(
            "  {collectives} collective instruction(s); per step each core moved {} over the links\n",
            crate::report::bytes(report.collective_bytes / (steps * cores as u64).max(1))
        )
    });
    for q in sig.state_params() {
        let s = &sig.params[q];
        text.push_str(&format!(
            "  state {} {} per core ({}) <- output {}\n",
            s.name,
            s.type_string(),
            crate::report::bytes(s.size_bytes() as u64),
            sig.aliases.output_for(q).unwrap_or(0)
        ));
    }
    text.push_str(&format!("outputs of step {steps} (core 0 of {cores}):\n"));
    for (k, t) in outputs.iter().enumerate() {
        let gathered = sig.aliases.param_for(k).and_then(|q| axes.get(&q));
        let (ty, shown) = match gathered {
            // the whole state, gathered along its axis
            Some(axis) => (
                format!("{}{:?} whole (axis {axis})", t.dtype(), t.dims()),
                t.clone(),
            ),
            None => (sig.outputs[k].type_string(), t.leading_slice(0)?),
        };
        text.push_str(&format!(
            "  output {k} {ty} = {}\n",
            crate::run::preview(&shown)
        ));
    }
    text.push_str(&report.human());
    crate::output::emit(&text)
}

/// Every output of the last step with a leading axis of the cores: returned outputs from
/// `last`, state outputs read back from each core's shard — or, for a state sharded along
/// a declared axis (`axes`), gathered whole along it.
fn stacked_outputs(
    model: &dyn ShardedModel,
    last: &[Vec<HostTensor>],
    axes: &BTreeMap<usize, usize>,
) -> Result<Vec<Tensor>> {
    let sig = model.core(0).signature().clone();
    let returned = sig.returned_outputs();
    let mut outs = Vec::new();
    for (o, spec) in sig.outputs.iter().enumerate() {
        // a state sharded along a declared axis is written whole
        if let Some((q, &axis)) = sig
            .aliases
            .param_for(o)
            .and_then(|q| axes.get(&q).map(|a| (q, a)))
        {
            let h = model.read_state_gathered(SET, &sig.params[q].name, axis)?;
            outs.push(Tensor::from_le_bytes(h.dtype, h.shape.dims(), &h.data)?);
            continue;
        }
        let per_core = (0..model.cores())
            .map(|k| match sig.aliases.param_for(o) {
                Some(q) => {
                    let mut buf = Vec::new();
                    model
                        .core(k)
                        .read_state_to(SET, &sig.params[q].name, &mut buf)?;
                    Tensor::from_le_bytes(spec.dtype, spec.shape.dims(), &buf)
                }
                None => {
                    let i = returned.iter().position(|&r| r == o).unwrap_or(0);
                    let h = &last[k][i];
                    Tensor::from_le_bytes(h.dtype, h.shape.dims(), &h.data)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = per_core.iter().collect();
        outs.push(Tensor::stack(&refs)?);
    }
    Ok(outs)
}
