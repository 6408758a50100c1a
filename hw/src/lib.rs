//! statetensor-hw: the libnrt hardware driver behind the [`StatefulModel`] trait.
//!
//! | layer | module | what it holds |
//! |---|---|---|
//! | sys | [`sys`] | C types and constants exactly as libnrt's headers define them; one function table resolved once from the library loaded at run time (libloading) |
//! | result | [`result`] | `NRT_STATUS` → `Result`, with the C function's name and the raw code |
//! | safe | [`safe`] | RAII handles: runtime, model, device tensor, tensor set |
//! | model | [`NrtModel`] | the state-tensor semantics: state sets bound in place |
//!
//! Design choices:
//! - **Nothing is linked at build time.** The crate builds anywhere; libnrt is found at run
//!   time (`$STATETENSOR_LIBNRT`, `libnrt.so.1`, `/opt/aws/neuron/lib/libnrt.so.1`), and a
//!   missing library or symbol is `BackendUnavailable` listing every path tried.
//! - **State is bound in place.** Each state tensor is allocated once on the model's
//!   NeuronCore and added — the same `nrt_tensor_t` — to the input set under its input name
//!   and to the output set under its aliased output's name. Each execute writes only user
//!   inputs and reads only user outputs.
//! - **Names are discovered, dtypes are not trusted.** NEFF I/O names come from
//!   `nrt_get_model_tensor_info` and are matched to HLO parameters by convention
//!   (`input{p}`/`output{o}`, `{name}.must_alias_input`, the plain name) or `bindings.json`;
//!   dtypes come from the HLO (libnrt's dtype numbers changed between releases).
//! - **Same validation as the simulator.** Alias maps and inputs are checked by
//!   `statetensor-core`; a failed execute poisons its state set.

pub mod result;
pub mod safe;
pub mod sys;

use safe::{DeviceTensor, Model, Runtime, TensorSet};
use statetensor_core::{
    AliasMap, Direction, Error, HostTensor, MemoryReport, Result, Shape, Signature, StateInit,
    StatefulModel, TensorSpec, TransferLedger,
};
use statetensor_hlo::Program;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

pub use safe::{candidates, LIBNRT_ENV};

/// What `statetensor probe` reports.
#[derive(Clone, Debug)]
pub struct ProbeInfo {
    /// The library loaded.
    pub path: String,
    /// Runtime version, when reported.
    pub version: Option<String>,
    /// Visible NeuronCores.
    pub visible_cores: u32,
}

/// Loads libnrt (searching the usual places) and asks it what it sees.
pub fn probe(path: Option<&str>) -> Result<ProbeInfo> {
    let rt = Runtime::open(path)?;
    Ok(ProbeInfo {
        path: rt.path.clone(),
        version: rt.version(),
        visible_cores: rt.visible_cores()?,
    })
}

/// A named group of state tensors in device memory.
struct StateSet {
    states: BTreeMap<String, (TensorSpec, Arc<DeviceTensor>)>,
    /// Initial values kept on the device for `reset` (the host keeps no copy).
    init: BTreeMap<String, DeviceTensor>,
    poisoned: Option<String>,
}

/// One NeuronCore through libnrt: the runtime and the state sets models share.
pub struct NrtDevice {
    rt: Arc<Runtime>,
    sets: Mutex<HashMap<String, Arc<Mutex<StateSet>>>>,
    peak: Mutex<u64>,
}

impl std::fmt::Debug for NrtDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NrtDevice({})", self.rt.path)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl NrtDevice {
    /// Opens libnrt (`path`, or the usual search) and core 0.
    pub fn open(path: Option<&str>) -> Result<Arc<NrtDevice>> {
        Ok(Arc::new(NrtDevice {
            rt: Runtime::open(path)?,
            sets: Mutex::new(HashMap::new()),
            peak: Mutex::new(0),
        }))
    }

    /// The loaded runtime's path.
    pub fn library(&self) -> &str {
        &self.rt.path
    }

    fn note_peak(&self) {
        if let Some((used, _)) = self.rt.memory_stats() {
            let mut p = lock(&self.peak);
            *p = (*p).max(used);
        }
    }

    fn get_set(&self, op: &str, name: &str) -> Result<Arc<Mutex<StateSet>>> {
        lock(&self.sets)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                op: op.to_string(),
                what: "state set".into(),
                name: name.to_string(),
                hint: String::new(),
            })
    }
}

/// A model's binding to one state set: its tensor sets and staging tensors. Field order
/// matters: the sets are destroyed before the tensors they hold.
struct Binding {
    input_set: TensorSet,
    output_set: TensorSet,
    /// Staging for user inputs, by input parameter.
    inputs: Vec<(usize, DeviceTensor)>,
    /// Staging for returned outputs, by output index.
    outputs: Vec<(usize, DeviceTensor)>,
    _states: Vec<Arc<DeviceTensor>>,
}

/// A binding, with the state set it was made for.
type BindingEntry = (Weak<Mutex<StateSet>>, Arc<Mutex<Binding>>);

/// A model loaded through libnrt.
pub struct NrtModel {
    device: Arc<NrtDevice>,
    model: Model,
    program: Program,
    sig: Signature,
    input_names: Vec<String>,
    output_names: Vec<String>,
    /// Bindings by set name, with the set they were made for: a set dropped and created
    /// again (by any model) gets a fresh binding.
    bindings: Mutex<HashMap<String, BindingEntry>>,
    ledger: Mutex<TransferLedger>,
}

impl std::fmt::Debug for NrtModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NrtModel({})", self.program.name())
    }
}

fn stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((s, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => s,
        _ => name,
    }
}

/// Explicit NEFF names from `bindings.json`: `{"inputs": {"P": "name"}, "outputs": {"O": "name"}}`
/// (P a parameter number or HLO name, O an output index).
fn read_bindings(
    dir: &Path,
    params: &[TensorSpec],
) -> Result<(HashMap<usize, String>, HashMap<usize, String>)> {
    let path = dir.join("bindings.json");
    let (mut ins, mut outs) = (HashMap::new(), HashMap::new());
    if !path.exists() {
        return Ok((ins, outs));
    }
    let what = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read bindings", &what, e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::invalid_input(format!("bindings '{what}'"), e.to_string()))?;
    let bad = |m: String| Error::invalid_input(format!("bindings '{what}'"), m);
    for (k, name) in v["inputs"].as_object().into_iter().flatten() {
        let p = k.parse::<usize>().ok().or_else(|| {
            params
                .iter()
                .position(|s| s.name == *k || stem(&s.name) == k)
        });
        let p = p
            .filter(|&p| p < params.len())
            .ok_or_else(|| bad(format!("input '{k}' is not a parameter")))?;
        ins.insert(
            p,
            name.as_str()
                .ok_or_else(|| bad(format!("input '{k}' must map to a string")))?
                .to_string(),
        );
    }
    for (k, name) in v["outputs"].as_object().into_iter().flatten() {
        let o = k
            .parse::<usize>()
            .map_err(|_| bad(format!("output '{k}' is not an output index")))?;
        outs.insert(
            o,
            name.as_str()
                .ok_or_else(|| bad(format!("output '{k}' must map to a string")))?
                .to_string(),
        );
    }
    Ok((ins, outs))
}

impl NrtModel {
    /// Loads a bundle: a directory holding `model.hlo` and, for real hardware, `model.neff`
    /// (and optionally `bindings.json`), or an HLO file. Without a NEFF the HLO text is
    /// handed to `nrt_load`, which the emulator accepts and real libnrt refuses.
    pub fn open(
        device: &Arc<NrtDevice>,
        bundle: &Path,
        aliases: Option<AliasMap>,
    ) -> Result<NrtModel> {
        let (hlo, dir) = if bundle.is_dir() {
            (bundle.join("model.hlo"), Some(bundle.to_path_buf()))
        } else {
            (bundle.to_path_buf(), None)
        };
        let what = hlo.display().to_string();
        let text = std::fs::read_to_string(&hlo).map_err(|e| Error::io("read model", &what, e))?;
        let program = Program::parse(&text, &what)?;
        let neff_path = dir
            .as_ref()
            .map(|d| d.join("model.neff"))
            .filter(|p| p.exists());
        let neff = match &neff_path {
            Some(p) => {
                std::fs::read(p).map_err(|e| Error::io("read NEFF", p.display().to_string(), e))?
            }
            None => text.into_bytes(),
        };
        let bindings = match &dir {
            Some(d) => read_bindings(d, program.params())?,
            None => Default::default(),
        };
        NrtModel::load(
            device,
            program,
            neff,
            neff_path.is_some(),
            bindings,
            aliases,
        )
    }

    fn load(
        device: &Arc<NrtDevice>,
        program: Program,
        neff: Vec<u8>,
        real_neff: bool,
        (bind_in, bind_out): (HashMap<usize, String>, HashMap<usize, String>),
        aliases: Option<AliasMap>,
    ) -> Result<NrtModel> {
        let aliases = aliases.unwrap_or_else(|| program.header_aliases().clone());
        let sig = Signature::new(
            program.params().to_vec(),
            program.outputs().to_vec(),
            aliases,
        )?;
        let model = Model::load(&device.rt, neff).map_err(|e| match e {
            Error::Runtime { status: Some(2), .. } if !real_neff => Error::BackendUnavailable {
                what: format!("load {}", program.name()),
                reason: "libnrt refused the HLO text: real hardware needs a NEFF. Compile the model with `neuronx-cc compile model.pb --framework XLA --target inf2 --output model.neff` (see docs/hardware.md) and put model.neff next to model.hlo".into(),
            },
            e => e,
        })?;
        device.note_peak();
        let io = model.io()?;
        let find =
            |input: bool, candidates: &[String], size: usize, what: &str| -> Result<String> {
                for c in candidates {
                    if let Some(info) = io.iter().find(|i| i.input == input && &i.name == c) {
                        if info.size != size {
                            return Err(Error::invalid_input(
                                format!("bind {what}"),
                                format!(
                                    "NEFF tensor '{}' is {} bytes, the HLO says {size}",
                                    info.name, info.size
                                ),
                            ));
                        }
                        return Ok(info.name.clone());
                    }
                }
                let avail: Vec<&str> = io
                    .iter()
                    .filter(|i| i.input == input)
                    .map(|i| i.name.as_str())
                    .collect();
                Err(Error::invalid_input(
                    format!("bind {what}"),
                    format!(
                        "no NEFF {} named {:?}; the NEFF has {:?} (map it in bindings.json)",
                        if input { "input" } else { "output" },
                        candidates,
                        avail
                    ),
                ))
            };
        let mut input_names = Vec::new();
        for (p, s) in sig.params.iter().enumerate() {
            let mut c: Vec<String> = bind_in.get(&p).cloned().into_iter().collect();
            c.push(format!("input{p}"));
            if sig.aliases.is_state(p) {
                c.push(format!("{}.must_alias_input", s.name));
                c.push(format!("{}.must_alias_input", stem(&s.name)));
            }
            c.push(s.name.clone());
            c.push(stem(&s.name).to_string());
            input_names.push(find(
                true,
                &c,
                s.size_bytes(),
                &format!("parameter {p} ({})", s.name),
            )?);
        }
        let mut output_names = Vec::new();
        for (o, s) in sig.outputs.iter().enumerate() {
            let mut c: Vec<String> = bind_out.get(&o).cloned().into_iter().collect();
            c.push(format!("output{o}"));
            if let Some(p) = sig.aliases.param_for(o) {
                c.push(sig.params[p].name.clone());
                c.push(stem(&sig.params[p].name).to_string());
            }
            output_names.push(find(false, &c, s.size_bytes(), &format!("output {o}"))?);
        }
        Ok(NrtModel {
            device: device.clone(),
            model,
            program,
            sig,
            input_names,
            output_names,
            bindings: Mutex::new(HashMap::new()),
            ledger: Mutex::new(TransferLedger::default()),
        })
    }

    /// NEFF I/O names bound to each parameter and output.
    pub fn io_names(&self) -> (&[String], &[String]) {
        (&self.input_names, &self.output_names)
    }

    fn timed<T>(&self, dir: Direction, bytes: u64, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let t = Instant::now();
        let r = f()?;
        lock(&self.ledger).record(dir, bytes, t.elapsed().as_secs_f64());
        Ok(r)
    }

    fn lock_set<'a>(
        &self,
        op: &str,
        name: &str,
        set: &'a Mutex<StateSet>,
        allow_poisoned: bool,
    ) -> Result<MutexGuard<'a, StateSet>> {
        let g = statetensor_core::lock_exclusive(op, &format!("state set '{name}'"), set)?;
        if !allow_poisoned {
            statetensor_core::check_not_poisoned(op, name, &g.poisoned)?;
        }
        Ok(g)
    }

    /// This model's binding to `set`, created on first use: the state tensors bound in
    /// place, plus staging for user inputs and outputs.
    fn binding(
        &self,
        set_name: &str,
        handle: &Arc<Mutex<StateSet>>,
        set: &StateSet,
    ) -> Result<Arc<Mutex<Binding>>> {
        if let Some((made_for, b)) = lock(&self.bindings).get(set_name) {
            if made_for.ptr_eq(&Arc::downgrade(handle)) {
                return Ok(b.clone());
            }
        }
        let rt = &self.device.rt;
        let (input_set, output_set) = (TensorSet::new(rt)?, TensorSet::new(rt)?);
        let mut inputs = Vec::new();
        for p in self.sig.input_params() {
            let t =
                DeviceTensor::allocate(rt, self.sig.params[p].size_bytes(), &self.input_names[p])?;
            input_set.add(&self.input_names[p], &t)?;
            inputs.push((p, t));
        }
        let mut outputs = Vec::new();
        for o in self.sig.returned_outputs() {
            let t = DeviceTensor::allocate(
                rt,
                self.sig.outputs[o].size_bytes(),
                &self.output_names[o],
            )?;
            output_set.add(&self.output_names[o], &t)?;
            outputs.push((o, t));
        }
        let mut states = Vec::new();
        for pair in self.sig.aliases.pairs() {
            let name = &self.sig.params[pair.param].name;
            let (_, t) = set.states.get(name).ok_or_else(|| {
                Error::runtime("bind state", format!("internal: no state '{name}'"))
            })?;
            // the same tensor in both sets: the state is updated in place
            input_set.add(&self.input_names[pair.param], t)?;
            output_set.add(&self.output_names[pair.output], t)?;
            states.push(t.clone());
        }
        self.device.note_peak();
        let b = Arc::new(Mutex::new(Binding {
            input_set,
            output_set,
            inputs,
            outputs,
            _states: states,
        }));
        lock(&self.bindings).insert(set_name.to_string(), (Arc::downgrade(handle), b.clone()));
        Ok(b)
    }

    fn state<'a>(&self, op: &str, set: &'a StateSet, state: &str) -> Result<&'a Arc<DeviceTensor>> {
        self.sig.state_param(op, state)?;
        set.states
            .get(state)
            .map(|(_, t)| t)
            .ok_or_else(|| Error::NotFound {
                op: op.to_string(),
                what: "state in this state set".into(),
                name: state.to_string(),
                hint: String::new(),
            })
    }

    fn range(op: &str, t: &DeviceTensor, offset: u64, len: usize) -> Result<usize> {
        let off = usize::try_from(offset)
            .map_err(|_| Error::invalid_input(op, "offset does not fit in memory"))?;
        if off.checked_add(len).is_none_or(|e| e > t.size()) {
            return Err(Error::invalid_input(
                op,
                format!(
                    "byte range {off}..{} is outside the state's {} bytes",
                    off.saturating_add(len),
                    t.size()
                ),
            ));
        }
        Ok(off)
    }
}

impl StatefulModel for NrtModel {
    fn backend(&self) -> &str {
        "nrt"
    }

    fn signature(&self) -> &Signature {
        &self.sig
    }

    fn create_state_set(&self, set: &str, init: StateInit) -> Result<()> {
        let op = format!("create state set '{set}'");
        let specs: Vec<TensorSpec> = self
            .sig
            .state_params()
            .iter()
            .map(|&p| self.sig.params[p].clone())
            .collect();
        let mut sets = lock(&self.device.sets);
        if let Some(existing) = sets.get(set) {
            // attach: another model created it; names, shapes and dtypes must agree
            let g = self.lock_set(&op, set, existing, true)?;
            return self
                .sig
                .check_attach(&op, |n| g.states.get(n).map(|(s, _)| s), &init);
        }
        let init_values: BTreeMap<String, &Vec<u8>> = self
            .sig
            .check_init_values(&op, &init)?
            .into_iter()
            .map(|(n, v)| (n, &v.data))
            .collect();
        // allocate everything first: a failure drops what was allocated and nothing has
        // been written, so the device and the ledger are left as they were
        let mut states = BTreeMap::new();
        let mut kept = BTreeMap::new();
        for s in specs {
            let t = Arc::new(DeviceTensor::allocate(
                &self.device.rt,
                s.size_bytes(),
                &s.name,
            )?);
            if init_values.contains_key(&s.name) {
                let copy = DeviceTensor::allocate(
                    &self.device.rt,
                    s.size_bytes(),
                    &format!("{}.init", s.name),
                )?;
                kept.insert(s.name.clone(), copy);
            }
            states.insert(s.name.clone(), (s, t));
        }
        for (name, (_, t)) in &states {
            match (init_values.get(name), kept.get(name)) {
                (Some(bytes), Some(copy)) => {
                    // the values cross once, into the state; the copy kept for reset is
                    // made on the device
                    self.timed(Direction::HostToDevice, bytes.len() as u64, || {
                        t.write(0, bytes)
                    })?;
                    self.timed(Direction::DeviceToDevice, bytes.len() as u64, || {
                        t.copy_to(copy)
                    })?;
                }
                _ => t.memset(0)?,
            }
        }
        self.device.note_peak();
        sets.insert(
            set.to_string(),
            Arc::new(Mutex::new(StateSet {
                states,
                init: kept,
                poisoned: None,
            })),
        );
        Ok(())
    }

    fn drop_state_set(&self, set: &str) -> Result<()> {
        let op = format!("drop state set '{set}'");
        let h = self.device.get_set(&op, set)?;
        drop(self.lock_set(&op, set, &h, true)?);
        lock(&self.bindings).remove(set);
        lock(&self.device.sets).remove(set);
        Ok(())
    }

    fn execute(&self, set: &str, inputs: &[HostTensor]) -> Result<Vec<HostTensor>> {
        let op = format!("execute on state set '{set}'");
        self.sig.check_inputs(inputs)?;
        let h = self.device.get_set(&op, set)?;
        let mut g = self.lock_set(&op, set, &h, false)?;
        let b = self.binding(set, &h, &g)?;
        let b = statetensor_core::lock_exclusive(&op, &format!("state set '{set}'"), &b)?;
        for ((_, t), h) in b.inputs.iter().zip(inputs) {
            self.timed(Direction::HostToDevice, h.data.len() as u64, || {
                t.write(0, &h.data)
            })?;
        }
        let start = Instant::now();
        let r = self.model.execute(&b.input_set, &b.output_set);
        lock(&self.ledger).record_execute(start.elapsed().as_secs_f64());
        if let Err(e) = r {
            g.poisoned = Some(format!("nrt_execute of {}", self.program.name()));
            return Err(e);
        }
        let mut out = Vec::new();
        for (o, t) in &b.outputs {
            let spec = &self.sig.outputs[*o];
            let mut data = vec![0u8; spec.size_bytes()];
            self.timed(Direction::DeviceToHost, data.len() as u64, || {
                t.read(0, &mut data)
            })?;
            out.push(HostTensor {
                dtype: spec.dtype,
                shape: Shape::new(spec.shape.dims().to_vec()),
                data,
            });
        }
        Ok(out)
    }

    fn read_state(&self, set: &str, state: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        let op = format!("read state '{state}' of '{set}'");
        let h = self.device.get_set(&op, set)?;
        let g = self.lock_set(&op, set, &h, false)?;
        let t = self.state(&op, &g, state)?;
        let off = Self::range(&op, t, offset, buf.len())?;
        self.timed(Direction::DeviceToHost, buf.len() as u64, || {
            t.read(off, buf)
        })
    }

    fn write_state(&self, set: &str, state: &str, offset: u64, data: &[u8]) -> Result<()> {
        let op = format!("write state '{state}' of '{set}'");
        let h = self.device.get_set(&op, set)?;
        let g = self.lock_set(&op, set, &h, false)?;
        let t = self.state(&op, &g, state)?;
        let off = Self::range(&op, t, offset, data.len())?;
        self.timed(Direction::HostToDevice, data.len() as u64, || {
            t.write(off, data)
        })
    }

    fn reset(&self, set: &str) -> Result<()> {
        let op = format!("reset state set '{set}'");
        let h = self.device.get_set(&op, set)?;
        let mut g = self.lock_set(&op, set, &h, true)?;
        for (name, (_, t)) in &g.states {
            match g.init.get(name) {
                Some(copy) => self.timed(Direction::DeviceToDevice, copy.size() as u64, || {
                    copy.copy_to(t)
                })?,
                None => t.memset(0)?,
            }
        }
        g.poisoned = None;
        Ok(())
    }

    fn copy_state_set(&self, from: &str, to: &str) -> Result<()> {
        let op = format!("copy state set '{from}' to '{to}'");
        statetensor_core::check_distinct_sets(&op, from, to)?;
        let src_h = self.device.get_set(&op, from)?;
        let src = self.lock_set(&op, from, &src_h, false)?;
        if self.device.get_set(&op, to).is_err() {
            drop(src);
            self.create_state_set(to, StateInit::Zeros)?;
            return self.copy_state_set(from, to);
        }
        let dst_h = self.device.get_set(&op, to)?;
        let mut dst = self.lock_set(&op, to, &dst_h, true)?;
        for (name, (spec, d)) in &dst.states {
            let Some((sspec, s)) = src
                .states
                .get(name)
                .filter(|(s, _)| s.dtype == spec.dtype && s.shape == spec.shape)
            else {
                return Err(Error::invalid_input(
                    &op,
                    format!(
                        "'{from}' has no state '{name}' of type {}",
                        spec.type_string()
                    ),
                ));
            };
            self.timed(Direction::DeviceToDevice, sspec.size_bytes() as u64, || {
                s.copy_to(d)
            })?;
        }
        dst.poisoned = None;
        Ok(())
    }

    fn ledger(&self) -> TransferLedger {
        *lock(&self.ledger)
    }

    fn memory(&self) -> MemoryReport {
        let (used, capacity) = self.device.rt.memory_stats().unwrap_or((0, 0));
        MemoryReport {
            used,
            peak: (*lock(&self.device.peak)).max(used),
            capacity,
        }
    }
}
