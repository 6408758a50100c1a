//! `statetensor run` and `statetensor inspect`.

use crate::model_ref::{parse_aliases, resolve_param, split_assignment, ModelPath};
use crate::report::{bytes, seconds, Report, RoundTrip, StepReport};
use clap::Args;
use statetensor_core::{Error, HostTensor, Result, StateInit, StatefulModel, TensorSpec};
use statetensor_hlo::{npy, Program, Tensor};
use statetensor_sim::{DeviceProfile, SimDevice, SimModel};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The state set a run uses.
const SET: &str = "run";

/// What `run` and `bench` share: the model, where it runs, and its values.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// An HLO text file, or a directory holding model.hlo (and arg{P}.npy default values).
    pub model: PathBuf,
    /// Backend: the simulator, or libnrt (real hardware or the emulator).
    #[arg(long, default_value = "sim", value_parser = ["sim", "nrt"])]
    pub backend: String,
    /// Device profile: inf2, trn1, trn2, or a JSON profile file.
    #[arg(long, default_value = "inf2")]
    pub device: String,
    /// State parameter P is updated from output O (replaces the module's alias map).
    #[arg(long = "alias", value_name = "P=O[,P=O...]")]
    pub aliases: Vec<String>,
    /// Value of a non-state parameter, the same every step.
    #[arg(long = "input", value_name = "P=FILE.npy")]
    pub inputs: Vec<String>,
    /// Initial value of a state parameter (default zeros).
    #[arg(long = "state", value_name = "P=FILE.npy")]
    pub states: Vec<String>,
}

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

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// An HLO text file, or a directory holding model.hlo (and model.neff).
    model: PathBuf,
    /// Also load the model through libnrt and show the NEFF I/O name of each parameter and output.
    #[arg(long, default_value = "sim", value_parser = ["sim", "nrt"])]
    backend: String,
    /// State parameter P is updated from output O (replaces the module's alias map).
    #[arg(long = "alias", value_name = "P=O[,P=O...]")]
    aliases: Vec<String>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// A model opened on the chosen backend.
pub(crate) struct Opened {
    pub path: ModelPath,
    pub model: Box<dyn StatefulModel>,
    /// The device as the report names it.
    pub device: String,
    /// The cost model for the "without state tensors" column (and the simulator's clock).
    pub profile: DeviceProfile,
}

pub(crate) fn open_model(
    backend: &str,
    device: &str,
    model: &Path,
    aliases: &[String],
) -> Result<Opened> {
    let profile = DeviceProfile::resolve(device)?;
    let path = ModelPath::resolve(model)?;
    let text = path.read()?;
    let program = Program::parse(&text, &path.hlo.display().to_string())?;
    let map = parse_aliases(aliases, program.params())?;
    if backend == "nrt" {
        let dev = statetensor_hw::NrtDevice::open(None)?;
        let bundle = path.dir.clone().unwrap_or_else(|| path.hlo.clone());
        let m = statetensor_hw::NrtModel::open(&dev, &bundle, map)?;
        let device = format!("libnrt {}", dev.library());
        return Ok(Opened {
            path,
            model: Box::new(m),
            device,
            profile,
        });
    }
    let dev = SimDevice::new(profile.clone());
    let m = SimModel::from_program(&dev, program, map)?;
    Ok(Opened {
        path,
        model: Box::new(m),
        device: profile.name.clone(),
        profile,
    })
}

/// Opens an npy file and checks it holds a value for `spec`; returns the reader positioned
/// at the data.
fn open_npy(
    flag: &str,
    p: usize,
    spec: &TensorSpec,
    file: &Path,
) -> Result<BufReader<std::fs::File>> {
    let what = file.display().to_string();
    let f = std::fs::File::open(file)
        .map_err(|e| Error::io(format!("{flag} {}: open", spec.name), &what, e))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let h = npy::read_header(&mut r, &what)?;
    if h.dtype != spec.dtype || h.dims != spec.shape.dims() {
        return Err(Error::invalid_input(
            flag,
            format!(
                "parameter {p} ({}) is {}, but '{what}' holds {}{:?} ('{}')",
                spec.name,
                spec.type_string(),
                h.dtype,
                h.dims,
                h.descr
            ),
        ));
    }
    Ok(r)
}

fn preview(t: &Tensor) -> String {
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

/// Writes `path` via a temporary file and a rename, so a failure never leaves a
/// half-written file under the final name.
fn write_atomically(path: &Path, body: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let what = path.display().to_string();
    let tmp = path.with_extension("tmp");
    let f = std::fs::File::create(&tmp)
        .map_err(|e| Error::io("create", tmp.display().to_string(), e))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let r = body(&mut w).and_then(|_| w.flush().map_err(|e| Error::io("write", &what, e)));
    drop(w);
    match r {
        Ok(()) => std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into", &what, e)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Checks `--input`/`--state` flags, loads the inputs (from the flags or the model
/// directory's `arg{P}.npy`), creates state set `set` and streams initial state into it.
pub(crate) fn prepare(
    model: &dyn StatefulModel,
    path: &ModelPath,
    input_flags: &[String],
    state_flags: &[String],
    set: &str,
) -> Result<Vec<HostTensor>> {
    let sig = model.signature().clone();
    // values given on the command line, checked before anything is allocated
    let mut input_files: Vec<Option<PathBuf>> = vec![None; sig.params.len()];
    let mut state_files: Vec<Option<PathBuf>> = vec![None; sig.params.len()];
    for (flag, list, want_state) in [
        ("--input", input_flags, false),
        ("--state", state_flags, true),
    ] {
        for v in list.iter() {
            let (p, file) = split_assignment(flag, v, "FILE.npy")?;
            let p = resolve_param(flag, p, &sig.params)?;
            if sig.aliases.is_state(p) != want_state {
                let (is, use_) = if want_state {
                    ("not a state", "--input")
                } else {
                    ("a state", "--state")
                };
                return Err(Error::invalid_input(
                    flag,
                    format!(
                        "parameter {p} ({}) is {is} parameter; use {use_}",
                        sig.params[p].name
                    ),
                ));
            }
            let slot = if want_state {
                &mut state_files[p]
            } else {
                &mut input_files[p]
            };
            if slot.replace(PathBuf::from(file)).is_some() {
                return Err(Error::invalid_input(
                    flag,
                    format!("parameter {p} ({}) is given twice", sig.params[p].name),
                ));
            }
        }
    }
    let mut inputs = Vec::new();
    for p in sig.input_params() {
        let spec = &sig.params[p];
        let file = input_files[p]
            .clone()
            .or_else(|| path.default_value(p))
            .ok_or_else(|| {
                Error::invalid_input(
                    "run",
                    format!(
                        "parameter {p} ({} {}) needs a value: pass --input {}=FILE.npy",
                        spec.name,
                        spec.type_string(),
                        spec.name
                    ),
                )
            })?;
        let mut r = open_npy("--input", p, spec, &file)?;
        let mut t = Tensor::zeros(spec.dtype, spec.shape.dims());
        npy::read_data_into(&mut r, &mut t, &file.display().to_string())?;
        inputs.push(HostTensor::new(
            spec.dtype,
            spec.shape.dims().to_vec(),
            t.to_le_bytes(),
        )?);
    }
    model.create_state_set(set, StateInit::Zeros)?;
    for p in sig.state_params() {
        let spec = &sig.params[p];
        if let Some(file) = state_files[p].clone().or_else(|| path.default_value(p)) {
            let mut r = open_npy("--state", p, spec, &file)?;
            model.write_state_from(set, &spec.name, &mut r)?;
        }
    }
    Ok(inputs)
}

pub fn run(a: RunArgs) -> Result<()> {
    let start = Instant::now();
    let Opened {
        path,
        model,
        device,
        profile,
    } = open_model(&a.m.backend, &a.m.device, &a.m.model, &a.m.aliases)?;
    let model = &*model;
    let sig = model.signature().clone();
    let inputs = prepare(model, &path, &a.m.inputs, &a.m.states, SET)?;
    // the same values every step: converted once
    let prepared = model.prepare_inputs(&inputs)?;
    // the steps
    let mut per_step = Vec::new();
    let mut last = Vec::new();
    for _ in 0..a.steps {
        let before = model.ledger();
        last = model.execute_prepared(SET, &prepared)?;
        per_step.push(StepReport::from_ledger(&(model.ledger() - before)));
    }
    let total = model.ledger();
    let mem = model.memory();
    let p = &profile;
    // without state tensors every state is read out and written back each step
    let states: Vec<u64> = sig
        .state_params()
        .iter()
        .map(|&q| sig.params[q].size_bytes() as u64)
        .collect();
    let n = states.len() as u64 * a.steps;
    let extra_s: f64 = states
        .iter()
        .map(|&b| p.h2d_seconds(b) + p.d2h_seconds(b))
        .sum::<f64>()
        * a.steps as f64;
    let report = Report {
        backend: model.backend().to_string(),
        device,
        steps: a.steps,
        bytes_h2d: total.h2d.bytes,
        bytes_d2h: total.d2h.bytes,
        bytes_d2d: total.d2d.bytes,
        transfers_h2d: total.h2d.transfers,
        transfers_d2h: total.d2h.transfers,
        state_bytes: sig.state_bytes(),
        hbm_peak_bytes: mem.peak,
        hbm_capacity_bytes: mem.capacity,
        modelled_s: total.total_seconds(),
        wall_s: start.elapsed().as_secs_f64(),
        model: path.hlo.display().to_string(),
        transfers_d2d: total.d2d.transfers,
        execute_s: total.execute_seconds,
        without_state_tensors: Some(RoundTrip {
            bytes_h2d: total.h2d.bytes + sig.state_bytes() * a.steps,
            bytes_d2h: total.d2h.bytes + sig.state_bytes() * a.steps,
            transfers_h2d: total.h2d.transfers + n,
            transfers_d2h: total.d2h.transfers + n,
            modelled_s: total.total_seconds() + extra_s,
        }),
        per_step,
    };
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
                    model.read_state_to(SET, &sig.params[q].name, w).map(|_| ())
                })?,
                None => {
                    let i = returned.iter().position(|&o| o == k).unwrap_or(0);
                    let h = &last[i];
                    let t = Tensor::from_le_bytes(h.dtype, h.shape.dims(), &h.data)?;
                    write_atomically(&file, |w| npy::write(w, &t, &file.display().to_string()))?;
                }
            }
        }
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::runtime("report", e.to_string()))?;
        write_atomically(&dir.join("report.json"), |w| {
            w.write_all(json.as_bytes())
                .and_then(|_| w.write_all(b"\n"))
                .map_err(|e| Error::io("write", "report.json", e))
        })?;
    }
    if a.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::runtime("report", e.to_string()))?;
        return crate::emit(&format!("{json}\n"));
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
    for (i, st) in report.per_step.iter().enumerate() {
        out.push_str(&format!(
            "step {}: host->device {} ({}), device->host {} ({}), modelled {}\n",
            i + 1,
            bytes(st.bytes_h2d),
            st.transfers_h2d,
            bytes(st.bytes_d2h),
            st.transfers_d2h,
            seconds(st.modelled_s)
        ));
    }
    out.push_str(&format!("outputs of step {}:\n", a.steps));
    for (k, spec) in sig.outputs.iter().enumerate() {
        let shown = match sig.aliases.param_for(k) {
            Some(q) => {
                // a small read for display, after the report's totals were taken
                let take = spec.size_bytes().min(8 * spec.dtype.size_bytes());
                let mut buf = vec![0u8; take];
                model.read_state(SET, &sig.params[q].name, 0, &mut buf)?;
                let t = Tensor::from_le_bytes(spec.dtype, &[take / spec.dtype.size_bytes()], &buf)?;
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
    crate::emit(&out)
}

pub fn inspect(a: InspectArgs) -> Result<()> {
    let path = ModelPath::resolve(&a.model)?;
    let program = Program::parse(&path.read()?, &path.hlo.display().to_string())?;
    let map = parse_aliases(&a.aliases, program.params())?;
    let model =
        SimModel::from_program(&SimDevice::new(DeviceProfile::inf2()), program, map.clone())?;
    // with --backend nrt: how the NEFF's I/O names bind to the HLO's parameters and outputs
    let neff_names = if a.backend == "nrt" {
        let dev = statetensor_hw::NrtDevice::open(None)?;
        let m = statetensor_hw::NrtModel::open(
            &dev,
            &path.dir.clone().unwrap_or_else(|| path.hlo.clone()),
            map,
        )?;
        let (i, o) = m.io_names();
        Some((i.to_vec(), o.to_vec()))
    } else {
        None
    };
    let sig = model.signature();
    let mut devices = Vec::new();
    for name in ["inf2", "trn1", "trn2"] {
        let p = DeviceProfile::builtin(name).expect("built-in profile");
        let need = model.weight_bytes() + sig.state_bytes() + model.execute_footprint();
        devices.push(serde_json::json!({
            "device": name,
            "hbm_capacity_bytes": p.hbm_bytes,
            "footprint_bytes": need,
            "fits": need <= p.hbm_bytes,
            "state_sets_that_fit": (p.hbm_bytes.saturating_sub(model.weight_bytes() + model.execute_footprint())) / sig.state_bytes().max(1),
        }));
    }
    let params: Vec<serde_json::Value> = sig
        .params
        .iter()
        .enumerate()
        .map(|(i, s)| serde_json::json!({"index": i, "name": s.name, "type": s.type_string(), "bytes": s.size_bytes(), "state_from_output": sig.aliases.output_for(i), "neff_name": neff_names.as_ref().map(|n| n.0[i].clone())}))
        .collect();
    let outputs: Vec<serde_json::Value> = sig
        .outputs
        .iter()
        .enumerate()
        .map(|(k, s)| serde_json::json!({"index": k, "type": s.type_string(), "bytes": s.size_bytes(), "updates_state": sig.aliases.param_for(k), "neff_name": neff_names.as_ref().map(|n| n.1[k].clone())}))
        .collect();
    if a.json {
        let v = serde_json::json!({
            "model": path.hlo.display().to_string(),
            "name": model.program().name(),
            "parameters": params,
            "outputs": outputs,
            "state_bytes": sig.state_bytes(),
            "constant_bytes": model.weight_bytes(),
            "execute_staging_bytes": model.execute_footprint(),
            "devices": devices,
        });
        let json = serde_json::to_string_pretty(&v)
            .map_err(|e| Error::runtime("inspect", e.to_string()))?;
        return crate::emit(&format!("{json}\n"));
    }
    let mut out = format!(
        "model {} ({})\nparameters:\n",
        model.program().name(),
        path.hlo.display()
    );
    for (i, s) in sig.params.iter().enumerate() {
        let role = sig.aliases.output_for(i).map_or("input".to_string(), |o| {
            format!("state, updated from output {o}")
        });
        let neff = neff_names
            .as_ref()
            .map_or(String::new(), |n| format!("  [NEFF '{}']", n.0[i]));
        out.push_str(&format!(
            "  {i:>3}  {:<24} {:<20} {:>10}  {role}{neff}\n",
            s.name,
            s.type_string(),
            bytes(s.size_bytes() as u64)
        ));
    }
    out.push_str("outputs:\n");
    for (k, s) in sig.outputs.iter().enumerate() {
        let role = sig
            .aliases
            .param_for(k)
            .map_or("returned to the host".to_string(), |p| {
                format!("updates state {p} ({}) in place", sig.params[p].name)
            });
        let neff = neff_names
            .as_ref()
            .map_or(String::new(), |n| format!("  [NEFF '{}']", n.1[k]));
        out.push_str(&format!(
            "  {k:>3}  {:<20} {:>10}  {role}{neff}\n",
            s.type_string(),
            bytes(s.size_bytes() as u64)
        ));
    }
    out.push_str(&format!(
        "state: {} in {} tensor(s); constants {}; execute staging and temporaries {}\n",
        bytes(sig.state_bytes()),
        sig.state_params().len(),
        bytes(model.weight_bytes()),
        bytes(model.execute_footprint())
    ));
    out.push_str("HBM footprint (constants + one state set + execute staging):\n");
    for d in &devices {
        out.push_str(&format!(
            "  {:<5} {} of {}: {} ({} state sets fit)\n",
            d["device"].as_str().unwrap_or(""),
            bytes(d["footprint_bytes"].as_u64().unwrap_or(0)),
            bytes(d["hbm_capacity_bytes"].as_u64().unwrap_or(0)),
            if d["fits"].as_bool().unwrap_or(false) {
                "fits"
            } else {
                "does NOT fit"
            },
            d["state_sets_that_fit"]
        ));
    }
    crate::emit(&out)
}
