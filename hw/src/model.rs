//! A model loaded through libnrt: the [`StatefulModel`] implementation, with each state
//! bound in place in the tensor sets of every model that uses its state set.

use crate::device::{lock, NrtDevice};
use crate::io_names::{self, ExplicitNames};
use crate::result::model::Collective;
use crate::safe::{DeviceTensor, Model, TensorSet};
use statetensor_core::{
    check_byte_range, lock_state_set, Direction, Error, HostTensor, LoadOptions, MemoryReport,
    Result, Shape, Signature, StateInit, StateSet, StateSlot, StatefulModel, TensorSpec,
    TransferLedger,
};
use statetensor_hlo::{Bundle, Program, BUNDLE_HLO};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

pub(crate) type NrtStateSet = StateSet<Arc<DeviceTensor>, DeviceTensor>;

/// A model's binding to one state set: its tensor sets and staging tensors. Field order
/// matters: the sets are destroyed before the tensors they hold.
pub(crate) struct SetBinding {
    input_set: TensorSet,
    output_set: TensorSet,
    /// Staging for user inputs, by input parameter.
    inputs: Vec<(usize, DeviceTensor)>,
    /// Staging for returned outputs, by output index.
    outputs: Vec<(usize, DeviceTensor)>,
    _states: Vec<Arc<DeviceTensor>>,
    _weights: Vec<Arc<DeviceTensor>>,
}

/// A binding, with the state set it was made for.
type BindingEntry = (Weak<Mutex<NrtStateSet>>, Arc<Mutex<SetBinding>>);

/// A model loaded through libnrt.
pub struct NrtModel {
    device: Arc<NrtDevice>,
    model: Model,
    program: Arc<Program>,
    sig: Signature,
    /// The resident weights this model binds, by parameter, shared through the device.
    weights: Vec<(usize, Arc<DeviceTensor>)>,
    input_names: Vec<String>,
    output_names: Vec<String>,
    /// Bindings by set name, with the set they were made for: a set dropped and created
    /// again (by any model) gets a fresh binding.
    bindings: Mutex<HashMap<String, BindingEntry>>,
    ledger: Mutex<TransferLedger>,
    /// Its place among the cores of an SPMD program (loaded with `nrt_load_collectives`).
    collective: Option<Collective>,
}

impl std::fmt::Debug for NrtModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NrtModel({})", self.program.name())
    }
}

impl NrtModel {
    /// Loads `bundle` through libnrt with `opts` as given (the seam in `statetensor-open`
    /// applies the bundle's manifest first): its `model.neff` when it holds one (real
    /// hardware), otherwise its HLO (text or proto), which the emulator accepts and real
    /// libnrt refuses with a message saying how to compile it. The alias map in `opts`
    /// overrides the module's own: the HLO is loaded with that map written into it, so the
    /// runtime's model aliases exactly the pairs the states are bound to; a NEFF, whose
    /// aliasing was fixed when it was compiled, is refused
    /// ([`ErrorKind::Alias`](statetensor_core::ErrorKind)) when the map differs from the one
    /// it was compiled with ([`Bundle::compiled_aliases`]). Weights in `opts` are
    /// uploaded once into one device tensor each (or shared with another model on the
    /// device that uploaded them) and bound in every input set of the model.
    pub fn load(device: &Arc<NrtDevice>, bundle: &Bundle, opts: &LoadOptions) -> Result<NrtModel> {
        NrtModel::load_as(device, bundle, opts, None)
    }

    /// [`NrtModel::load`], as one core of an SPMD program when `collective` says which
    /// (`nrt_load_collectives`); such a model executes only with the other cores
    /// ([`crate::NrtShardedModel`]).
    pub(crate) fn load_as(
        device: &Arc<NrtDevice>,
        bundle: &Bundle,
        opts: &LoadOptions,
        collective: Option<Collective>,
    ) -> Result<NrtModel> {
        let program = bundle.program().clone();
        let sig = program.signature(opts)?;
        let aliases = &sig.aliases;
        let explicit = match bundle.dir() {
            Some(d) => ExplicitNames::read(d, program.params())?,
            None => ExplicitNames::default(),
        };
        let (artifact, compiled) = match bundle.neff()? {
            Some(neff) => {
                // a NEFF's aliasing was fixed when it was compiled from the bundle's HLO
                aliases.check_same_as_compiled(bundle.compiled_aliases(), program.params())?;
                (neff, true)
            }
            // HLO text is "compiled" by the runtime that loads it (the emulator): it must
            // carry the alias map the model runs with
            None => (bundle.with_aliases(aliases)?, false),
        };
        let model = device.load(artifact, collective).map_err(|e| match e {
            Error::Runtime { status: Some(2), .. } if !compiled => Error::BackendUnavailable {
                what: format!("load {}", program.name()),
                reason: format!("libnrt refused the HLO text: real hardware needs a NEFF. Compile the model with `neuronx-cc compile model.pb --framework XLA --target inf2 --output model.neff` (see docs/hardware.md) and put model.neff next to {BUNDLE_HLO}"),
            },
            e => e,
        })?;
        device.note_peak();
        // the NEFF names its I/O after the HLO's parameters, not the caller's names
        let hlo_sig = Signature {
            params: program.params().to_vec(),
            ..sig.clone()
        };
        let (input_names, output_names) = io_names::resolve(&hlo_sig, &model.io()?, &explicit)?;
        let ledger = Mutex::new(TransferLedger::default());
        let bound = device.weights.acquire(
            &format!("load {}: weights", program.name()),
            &sig,
            &opts.weights,
            |spec, value| {
                let t = device.allocate(spec.size_bytes(), &spec.name)?;
                let start = Instant::now();
                t.write(0, &value.data)?;
                lock(&ledger).record(
                    Direction::HostToDevice,
                    value.data.len() as u64,
                    start.elapsed().as_secs_f64(),
                );
                Ok(t)
            },
            |_| {},
        )?;
        device.note_peak();
        let weights = sig.weight_params().into_iter().zip(bound).collect();
        Ok(NrtModel {
            device: device.clone(),
            model,
            program,
            sig,
            weights,
            input_names,
            output_names,
            bindings: Mutex::new(HashMap::new()),
            ledger,
            collective,
        })
    }

    /// Opens a bundle directory or HLO file and loads it ([`Bundle::open`], then
    /// [`NrtModel::load`]).
    pub fn open(
        device: &Arc<NrtDevice>,
        path: &std::path::Path,
        opts: &LoadOptions,
    ) -> Result<NrtModel> {
        NrtModel::load(device, &Bundle::open(path)?, opts)
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

    /// This model's binding to `set`, created on first use: the state tensors bound in
    /// place, plus staging for user inputs and outputs.
    pub(crate) fn binding(
        &self,
        set_name: &str,
        handle: &Arc<Mutex<NrtStateSet>>,
        set: &NrtStateSet,
    ) -> Result<Arc<Mutex<SetBinding>>> {
        if let Some((made_for, b)) = lock(&self.bindings).get(set_name) {
            if made_for.ptr_eq(&Arc::downgrade(handle)) {
                return Ok(b.clone());
            }
        }
        let rt = &self.device.rt;
        let (input_set, output_set) = (TensorSet::new(rt)?, TensorSet::new(rt)?);
        let mut inputs = Vec::new();
        for p in self.sig.input_params() {
            let t = self
                .device
                .allocate(self.sig.params[p].size_bytes(), &self.input_names[p])?;
            input_set.add(&self.input_names[p], &t)?;
            inputs.push((p, t));
        }
        let mut outputs = Vec::new();
        for o in self.sig.returned_outputs() {
            let t = self
                .device
                .allocate(self.sig.outputs[o].size_bytes(), &self.output_names[o])?;
            output_set.add(&self.output_names[o], &t)?;
            outputs.push((o, t));
        }
        let mut weights = Vec::new();
        for (p, t) in &self.weights {
            // resident: the same tensor in every input set, never written per step
            input_set.add(&self.input_names[*p], t)?;
            weights.push(t.clone());
        }
        let mut states = Vec::new();
        for pair in self.sig.aliases.pairs() {
            let name = &self.sig.params[pair.param].name;
            let t = &set.slot("bind state", name)?.buf;
            // the same tensor in both sets: the state is updated in place
            input_set.add(&self.input_names[pair.param], t)?;
            output_set.add(&self.output_names[pair.output], t)?;
            states.push(t.clone());
        }
        self.device.note_peak();
        let b = Arc::new(Mutex::new(SetBinding {
            input_set,
            output_set,
            inputs,
            outputs,
            _states: states,
            _weights: weights,
        }));
        lock(&self.bindings).insert(set_name.to_string(), (Arc::downgrade(handle), b.clone()));
        Ok(b)
    }

    fn state<'a>(
        &self,
        op: &str,
        set: &'a NrtStateSet,
        state: &str,
    ) -> Result<&'a Arc<DeviceTensor>> {
        self.sig.state_param(op, state)?;
        Ok(&set.slot(op, state)?.buf)
    }
}

impl NrtModel {
    /// The state set `set` on this core, its absence named.
    pub(crate) fn state_set(&self, op: &str, set: &str) -> Result<Arc<Mutex<NrtStateSet>>> {
        self.device.sets.get(op, set)
    }

    /// One execute on set `g` (handle `h`), locked by the caller: user inputs written,
    /// `nrt_execute`, returned outputs read. A failed `nrt_execute` poisons the set.
    fn step(
        &self,
        op: &str,
        set: &str,
        h: &Arc<Mutex<NrtStateSet>>,
        g: &mut NrtStateSet,
        inputs: &[HostTensor],
    ) -> Result<Vec<HostTensor>> {
        let b = self.binding(set, h, g)?;
        let b = statetensor_core::lock_exclusive(op, &format!("state set '{set}'"), &b)?;
        self.write_inputs(&b, inputs)?;
        self.run_bound(&b, g)
    }

    /// Writes the user inputs into a binding's staging tensors.
    pub(crate) fn write_inputs(&self, b: &SetBinding, inputs: &[HostTensor]) -> Result<()> {
        for ((_, t), h) in b.inputs.iter().zip(inputs) {
            self.timed(Direction::HostToDevice, h.data.len() as u64, || {
                t.write(0, &h.data)
            })?;
        }
        Ok(())
    }

    /// `nrt_execute` on a binding whose inputs are written, then the returned outputs
    /// read. A failed `nrt_execute` poisons the set.
    pub(crate) fn run_bound(&self, b: &SetBinding, g: &mut NrtStateSet) -> Result<Vec<HostTensor>> {
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
}

impl Drop for NrtModel {
    fn drop(&mut self) {
        // a weight no other model uses is freed when its last handle (ours) goes
        self.device.weights.release(&self.sig, |_| {});
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
        let specs: Vec<TensorSpec> = self.sig.state_specs().cloned().collect();
        let mut sets = self.device.sets.registry();
        if let Some(existing) = sets.get(set) {
            // attach: another model created it; names, shapes and dtypes must agree
            let g = lock_state_set(&op, set, existing, true)?;
            return self
                .sig
                .check_attach(&op, |n| g.states.get(n).map(|s| &s.spec), &init);
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
            let t = Arc::new(self.device.allocate(s.size_bytes(), &s.name)?);
            if init_values.contains_key(&s.name) {
                let copy = self
                    .device
                    .allocate(s.size_bytes(), &format!("{}.init", s.name))?;
                kept.insert(s.name.clone(), copy);
            }
            states.insert(s.name.clone(), StateSlot { spec: s, buf: t });
        }
        for (name, StateSlot { buf: t, .. }) in &states {
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
            Arc::new(Mutex::new(NrtStateSet::new(states, kept))),
        );
        Ok(())
    }

    fn has_state_set(&self, set: &str) -> bool {
        self.device.sets.contains(set)
    }

    fn drop_state_set(&self, set: &str) -> Result<()> {
        let op = format!("drop state set '{set}'");
        let h = self.device.sets.get(&op, set)?;
        drop(lock_state_set(&op, set, &h, true)?);
        lock(&self.bindings).remove(set);
        self.device.sets.remove(set);
        Ok(())
    }

    fn execute(&self, set: &str, inputs: &[HostTensor]) -> Result<Vec<HostTensor>> {
        if let Some(c) = self.collective {
            return Err(Error::invalid_input(
                "execute",
                format!(
                    "this is core {} of a model run by {} NeuronCores; execute every core together (ShardedModel::execute)",
                    c.device, c.devices
                ),
            ));
        }
        let op = format!("execute on state set '{set}'");
        self.sig.check_inputs(inputs)?;
        let h = self.device.sets.get(&op, set)?;
        let mut g = lock_state_set(&op, set, &h, false)?;
        self.step(&op, set, &h, &mut g, inputs)
    }

    fn read_state(&self, set: &str, state: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        let op = format!("read state '{state}' of '{set}'");
        let h = self.device.sets.get(&op, set)?;
        let g = lock_state_set(&op, set, &h, false)?;
        let t = self.state(&op, &g, state)?;
        let off = check_byte_range(&op, t.size(), offset, buf.len())?;
        self.timed(Direction::DeviceToHost, buf.len() as u64, || {
            t.read(off, buf)
        })
    }
    fn write_state(&self, set: &str, state: &str, offset: u64, data: &[u8]) -> Result<()> {
        let op = format!("write state '{state}' of '{set}'");
        let h = self.device.sets.get(&op, set)?;
        let g = lock_state_set(&op, set, &h, false)?;
        let t = self.state(&op, &g, state)?;
        let off = check_byte_range(&op, t.size(), offset, data.len())?;
        self.timed(Direction::HostToDevice, data.len() as u64, || {
            t.write(off, data)
        })
    }

    fn reset(&self, set: &str) -> Result<()> {
        let op = format!("reset state set '{set}'");
        let h = self.device.sets.get(&op, set)?;
        let mut g = lock_state_set(&op, set, &h, true)?;
        for (name, StateSlot { buf: t, .. }) in &g.states {
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
        // a new destination has no initial values of its own: reset zeros it
        self.device.sets.copy_set(
            &op,
            from,
            to,
            || self.create_state_set(to, StateInit::Zeros),
            |spec, src, dst| {
                self.timed(Direction::DeviceToDevice, spec.size_bytes() as u64, || {
                    src.copy_to(dst)
                })
            },
        )
    }

    fn ledger(&self) -> TransferLedger {
        *lock(&self.ledger)
    }

    fn memory(&self) -> MemoryReport {
        let (used, capacity) = self.device.memory_stats().unwrap_or((0, 0));
        MemoryReport {
            used,
            peak: self.device.peak().max(used),
            capacity,
        }
    }
}
