//! statetensor-sim: a NeuronCore simulator behind the [`StatefulModel`] trait.
//!
//! Design choices:
//! - **It really executes.** Models are XLA HLO text run by `statetensor-hlo`; outputs are
//!   the model's real outputs, computed exactly as the fixtures' JAX oracle does.
//! - **State lives "on the device".** A [`SimDevice`] owns named state sets; a state buffer
//!   is moved into each execute and the aliased output moved back, so state is updated in
//!   place (a one-row KV-cache update costs the row) and never crosses host↔device.
//! - **Capacity is accounted, not allocated.** Weights (constants), state, staging for
//!   inputs and outputs, and the execute's peak temporaries are charged to the profile's
//!   HBM; exceeding it is `OutOfDeviceMemory` with the numbers, and the ledger is left as
//!   it was. Host memory stays close to what the model really holds.
//! - **Time is modelled, never slept.** Every transfer and execute is charged with the
//!   profile's cost model (DESIGN §4) in the [`TransferLedger`].
//! - **Same validation as every backend.** Alias maps and inputs are checked by
//!   `statetensor-core`, so the driver rejects what the simulator rejects.
//!
//! ```
//! use statetensor_core::{DType, HostTensor, StateInit, StatefulModel};
//! use statetensor_sim::{DeviceProfile, SimDevice, SimModel};
//! let text = "HloModule counter, input_output_alias={ {1}: (0, {}, may-alias) }
//! ENTRY e {
//!   x = s32[] parameter(0)
//!   c = s32[] parameter(1)
//!   n = s32[] add(c, x)
//!   ROOT t = (s32[], s32[]) tuple(c, n)
//! }";
//! let device = SimDevice::new(DeviceProfile::inf2());
//! let model = SimModel::load(&device, text, "counter.hlo", None).unwrap();
//! model.create_state_set("seq0", StateInit::Zeros).unwrap();
//! let one = HostTensor::new(DType::S32, vec![], 1i32.to_le_bytes().to_vec()).unwrap();
//! model.execute("seq0", &[one.clone()]).unwrap();
//! let out = model.execute("seq0", &[one]).unwrap();
//! assert_eq!(out[0].data, 1i32.to_le_bytes()); // output 0 is the counter before the step
//! ```

pub mod family;
mod hbm;
mod profile;
pub mod snapshot;

pub use hbm::Hbm;
pub use profile::DeviceProfile;

use statetensor_core::{
    AliasMap, Direction, Error, HostTensor, MemoryReport, PreparedInputs, Result, Signature,
    StateInit, StatefulModel, TensorSpec, TransferLedger,
};
use statetensor_hlo::{Program, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// One state tensor in a state set.
#[derive(Debug)]
struct Slot {
    spec: TensorSpec,
    /// `None` only after a failed execute consumed it (the set is then poisoned).
    buf: Option<Arc<Tensor>>,
}

/// A named group of state tensors on the device.
#[derive(Debug)]
struct StateSet {
    states: BTreeMap<String, Slot>,
    /// Initial values by state name (empty: zeros): a device-side copy, charged to HBM,
    /// that `reset` copies back (the host keeps no copy).
    init: BTreeMap<String, Arc<Tensor>>,
    /// The call that failed on this set, if any.
    poisoned: Option<String>,
}

impl StateSet {
    /// Device bytes: the states and the kept initial values.
    fn bytes(&self) -> u64 {
        let states: u64 = self
            .states
            .values()
            .map(|s| s.spec.size_bytes() as u64)
            .sum();
        states
            + self
                .init
                .values()
                .map(|t| t.size_bytes() as u64)
                .sum::<u64>()
    }
}

/// A simulated NeuronCore: a profile, its HBM ledger and its state sets. Several models
/// loaded on one device can share state sets by name.
#[derive(Debug)]
pub struct SimDevice {
    profile: DeviceProfile,
    hbm: Hbm,
    sets: Mutex<HashMap<String, Arc<Mutex<StateSet>>>>,
    /// The armed fault and the executes counted since it was armed.
    fault: Mutex<(Fault, u64)>,
}

impl SimDevice {
    /// An empty device.
    pub fn new(profile: DeviceProfile) -> Arc<SimDevice> {
        Arc::new(SimDevice {
            hbm: Hbm::new(profile.hbm_bytes),
            profile,
            sets: Mutex::new(HashMap::new()),
            fault: Mutex::new((Fault::None, 0)),
        })
    }

    /// The profile.
    pub fn profile(&self) -> &DeviceProfile {
        &self.profile
    }

    /// Arms a fault for the executes that follow on this device (any model); counting
    /// starts again from 1.
    pub fn inject_fault(&self, fault: Fault) {
        *lock(&self.fault) = (fault, 0);
    }

    /// HBM use.
    pub fn memory(&self) -> MemoryReport {
        self.hbm.report()
    }

    fn sets(&self) -> MutexGuard<'_, HashMap<String, Arc<Mutex<StateSet>>>> {
        self.sets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get_set(&self, op: &str, name: &str) -> Result<Arc<Mutex<StateSet>>> {
        let sets = self.sets();
        sets.get(name).cloned().ok_or_else(|| {
            let mut names: Vec<&String> = sets.keys().collect();
            names.sort();
            Error::NotFound {
                op: op.to_string(),
                what: "state set".into(),
                name: name.to_string(),
                hint: if names.is_empty() {
                    "; no state sets exist (create one first)".into()
                } else {
                    format!(
                        "; existing: {}",
                        names
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            }
        })
    }
}

/// Faults the simulator can inject, so tests can show failures are handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// No fault.
    #[default]
    None,
    /// Execute number `call` (1-based, counted per device since the fault was armed) fails after it has written part
    /// of the state (the first state tensor is updated, the others are lost).
    FailExecute {
        /// Which execute fails.
        call: u64,
    },
}

/// A model loaded on a [`SimDevice`].
#[derive(Debug)]
pub struct SimModel {
    device: Arc<SimDevice>,
    program: Program,
    sig: Signature,
    weights: u64,
    temps: u64,
    ledger: Mutex<TransferLedger>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn to_tensor(h: &HostTensor) -> Result<Tensor> {
    Tensor::from_le_bytes(h.dtype, h.shape.dims(), &h.data)
}

fn to_host(t: &Tensor) -> HostTensor {
    HostTensor {
        dtype: t.dtype(),
        shape: statetensor_core::Shape::new(t.dims().to_vec()),
        data: t.to_le_bytes(),
    }
}

impl SimModel {
    /// Parses and plans `text`, validates its alias map (`aliases` overrides the header's,
    /// torch-neuronx style) and charges its constants to the device.
    pub fn load(
        device: &Arc<SimDevice>,
        text: &str,
        file: &str,
        aliases: Option<AliasMap>,
    ) -> Result<SimModel> {
        let program = Program::parse(text, file)?;
        SimModel::from_program(device, program, aliases)
    }

    /// Loads an already parsed program.
    pub fn from_program(
        device: &Arc<SimDevice>,
        program: Program,
        aliases: Option<AliasMap>,
    ) -> Result<SimModel> {
        let aliases = aliases.unwrap_or_else(|| program.header_aliases().clone());
        let sig = Signature::new(
            program.params().to_vec(),
            program.outputs().to_vec(),
            aliases,
        )?;
        let weights = program.constant_bytes();
        device
            .hbm
            .alloc(&format!("load {}: constants", program.name()), weights)?;
        let temps = program.peak_temp_bytes();
        Ok(SimModel {
            device: device.clone(),
            program,
            sig,
            weights,
            temps,
            ledger: Mutex::new(TransferLedger::default()),
        })
    }

    /// The device this model is loaded on.
    pub fn device(&self) -> &Arc<SimDevice> {
        &self.device
    }

    /// The parsed program.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Bytes an execute stages and holds beyond the state: inputs, returned outputs and
    /// the peak of temporaries.
    pub fn execute_footprint(&self) -> u64 {
        let inputs: u64 = self
            .sig
            .input_params()
            .iter()
            .map(|&p| self.sig.params[p].size_bytes() as u64)
            .sum();
        inputs + self.temps
    }

    /// Bytes of constants (weights) the model holds on the device.
    pub fn weight_bytes(&self) -> u64 {
        self.weights
    }

    fn record(&self, dir: Direction, bytes: u64) {
        let p = &self.device.profile;
        let s = match dir {
            Direction::HostToDevice => p.h2d_seconds(bytes),
            Direction::DeviceToHost => p.d2h_seconds(bytes),
            Direction::DeviceToDevice => p.d2d_seconds(bytes),
        };
        lock(&self.ledger).record(dir, bytes, s);
    }

    /// Locks a state set for exclusive use: a set in use by another call is `Busy`, never
    /// a race; a poisoned set is `Poisoned` unless `allow_poisoned`.
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

    fn state_slot<'a>(&self, op: &str, set: &'a mut StateSet, state: &str) -> Result<&'a mut Slot> {
        self.sig.state_param(op, state)?;
        set.states.get_mut(state).ok_or_else(|| Error::NotFound {
            op: op.to_string(),
            what: "state in this state set".into(),
            name: state.to_string(),
            hint: String::new(),
        })
    }

    /// This model's states as (name, spec).
    fn state_specs(&self) -> Vec<(String, TensorSpec)> {
        self.sig
            .state_params()
            .iter()
            .map(|&p| (self.sig.params[p].name.clone(), self.sig.params[p].clone()))
            .collect()
    }

    fn fresh_buffers(&self, set: &mut StateSet) {
        for (name, slot) in set.states.iter_mut() {
            let t = match set.init.get(name) {
                Some(v) => (**v).clone(),
                None => Tensor::zeros(slot.spec.dtype, slot.spec.shape.dims()),
            };
            slot.buf = Some(Arc::new(t));
        }
    }
}

impl Drop for SimModel {
    fn drop(&mut self) {
        self.device.hbm.free(self.weights);
    }
}

impl StatefulModel for SimModel {
    fn backend(&self) -> &str {
        "sim"
    }

    fn signature(&self) -> &Signature {
        &self.sig
    }

    fn create_state_set(&self, set: &str, init: StateInit) -> Result<()> {
        let op = format!("create state set '{set}'");
        let specs = self.state_specs();
        let mut sets = self.device.sets();
        if let Some(existing) = sets.get(set) {
            // attach: another model created it; names, shapes and dtypes must agree
            let g = self.lock_set(&op, set, existing, true)?;
            return self
                .sig
                .check_attach(&op, |n| g.states.get(n).map(|s| &s.spec), &init);
        }
        let mut init_values = BTreeMap::new();
        for (name, v) in self.sig.check_init_values(&op, &init)? {
            init_values.insert(name, Arc::new(to_tensor(v)?));
        }
        let mut s = StateSet {
            states: specs
                .into_iter()
                .map(|(n, spec)| (n, Slot { spec, buf: None }))
                .collect(),
            init: init_values,
            poisoned: None,
        };
        self.device.hbm.alloc(&op, s.bytes())?;
        self.fresh_buffers(&mut s);
        for v in s.init.values() {
            // the values cross once, into the state; the copy kept for reset is made on
            // the device
            self.record(Direction::HostToDevice, v.size_bytes() as u64);
            self.record(Direction::DeviceToDevice, v.size_bytes() as u64);
        }
        sets.insert(set.to_string(), Arc::new(Mutex::new(s)));
        Ok(())
    }

    fn drop_state_set(&self, set: &str) -> Result<()> {
        let op = format!("drop state set '{set}'");
        let handle = self.device.get_set(&op, set)?;
        let g = self.lock_set(&op, set, &handle, true)?;
        let bytes = g.bytes();
        drop(g);
        self.device.sets().remove(set);
        self.device.hbm.free(bytes);
        Ok(())
    }

    fn execute(&self, set: &str, inputs: &[HostTensor]) -> Result<Vec<HostTensor>> {
        self.sig.check_inputs(inputs)?;
        let tensors = inputs
            .iter()
            .map(|h| to_tensor(h).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        self.execute_tensors(set, &tensors)
    }

    fn prepare_inputs(&self, inputs: &[HostTensor]) -> Result<PreparedInputs> {
        self.sig.check_inputs(inputs)?;
        let tensors = inputs
            .iter()
            .map(|h| to_tensor(h).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(PreparedInputs(Box::new(tensors)))
    }

    fn execute_prepared(&self, set: &str, inputs: &PreparedInputs) -> Result<Vec<HostTensor>> {
        match inputs.0.downcast_ref::<Vec<Arc<Tensor>>>() {
            Some(t) => self.execute_tensors(set, t),
            None => Err(Error::invalid_input(
                "execute",
                "the inputs were prepared by another backend",
            )),
        }
    }

    fn read_state(&self, set: &str, state: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        let op = format!("read state '{state}' of '{set}'");
        let handle = self.device.get_set(&op, set)?;
        let mut g = self.lock_set(&op, set, &handle, false)?;
        let slot = self.state_slot(&op, &mut g, state)?;
        let t = slot
            .buf
            .as_ref()
            .ok_or_else(|| Error::runtime(&op, "internal: state buffer missing"))?;
        let offset = usize::try_from(offset)
            .map_err(|_| Error::invalid_input(&op, "offset does not fit in memory"))?;
        t.read_bytes(offset, buf)
            .map_err(|e| Error::invalid_input(&op, e.to_string()))?;
        self.record(Direction::DeviceToHost, buf.len() as u64);
        Ok(())
    }

    fn write_state(&self, set: &str, state: &str, offset: u64, data: &[u8]) -> Result<()> {
        let op = format!("write state '{state}' of '{set}'");
        let handle = self.device.get_set(&op, set)?;
        let mut g = self.lock_set(&op, set, &handle, false)?;
        let slot = self.state_slot(&op, &mut g, state)?;
        let t = slot
            .buf
            .as_mut()
            .ok_or_else(|| Error::runtime(&op, "internal: state buffer missing"))?;
        let offset = usize::try_from(offset)
            .map_err(|_| Error::invalid_input(&op, "offset does not fit in memory"))?;
        Arc::make_mut(t)
            .write_bytes(offset, data)
            .map_err(|e| Error::invalid_input(&op, e.to_string()))?;
        self.record(Direction::HostToDevice, data.len() as u64);
        Ok(())
    }

    fn reset(&self, set: &str) -> Result<()> {
        let op = format!("reset state set '{set}'");
        let handle = self.device.get_set(&op, set)?;
        let mut g = self.lock_set(&op, set, &handle, true)?;
        self.fresh_buffers(&mut g);
        for v in g.init.values() {
            // initial values are re-copied from their device-side copy
            self.record(Direction::DeviceToDevice, v.size_bytes() as u64);
        }
        g.poisoned = None;
        Ok(())
    }

    fn copy_state_set(&self, from: &str, to: &str) -> Result<()> {
        let op = format!("copy state set '{from}' to '{to}'");
        statetensor_core::check_distinct_sets(&op, from, to)?;
        let src_handle = self.device.get_set(&op, from)?;
        let src = self.lock_set(&op, from, &src_handle, false)?;
        if self.device.get_set(&op, to).is_err() {
            // a new destination has no initial values of its own: reset zeros it
            drop(src);
            self.create_state_set(to, StateInit::Zeros)?;
            return self.copy_state_set(from, to);
        }
        let dst_handle = self.device.get_set(&op, to)?;
        let mut dst = self.lock_set(&op, to, &dst_handle, true)?;
        for (name, slot) in &dst.states {
            match src.states.get(name) {
                Some(s) if s.spec.dtype == slot.spec.dtype && s.spec.shape == slot.spec.shape => {}
                _ => {
                    return Err(Error::invalid_input(
                        &op,
                        format!(
                            "'{from}' has no state '{name}' of type {}",
                            slot.spec.type_string()
                        ),
                    ))
                }
            }
        }
        let names: Vec<String> = dst.states.keys().cloned().collect();
        for name in names {
            let v = src.states[&name]
                .buf
                .as_ref()
                .ok_or_else(|| Error::runtime(&op, "internal: state buffer missing"))?;
            let copy = Arc::new((**v).clone());
            self.record(Direction::DeviceToDevice, copy.size_bytes() as u64);
            if let Some(slot) = dst.states.get_mut(&name) {
                slot.buf = Some(copy);
            }
        }
        dst.poisoned = None;
        Ok(())
    }

    fn ledger(&self) -> TransferLedger {
        *lock(&self.ledger)
    }

    fn memory(&self) -> MemoryReport {
        self.device.memory()
    }
}

impl SimModel {
    /// Executes with inputs already converted (shared, never modified).
    fn execute_tensors(&self, set: &str, inputs: &[Arc<Tensor>]) -> Result<Vec<HostTensor>> {
        let op = format!("execute on state set '{set}'");
        let handle = self.device.get_set(&op, set)?;
        let mut g = self.lock_set(&op, set, &handle, false)?;
        // staging for inputs and outputs, and temporaries: charged before anything moves
        let staging = self.execute_footprint();
        self.device.hbm.alloc(&op, staging)?;
        let result = self.run(&mut g, inputs);
        self.device.hbm.free(staging);
        result
    }

    /// The body of an execute, with the set locked and staging charged.
    fn run(&self, g: &mut StateSet, inputs: &[Arc<Tensor>]) -> Result<Vec<HostTensor>> {
        let (fault, call) = {
            let mut f = lock(&self.device.fault);
            f.1 += 1;
            *f
        };
        let call_name = format!("execute #{call} of {}", self.program.name());
        // inputs cross host -> device
        let mut args: Vec<Option<Arc<Tensor>>> = vec![None; self.sig.params.len()];
        for (t, &p) in inputs.iter().zip(&self.sig.input_params()) {
            args[p] = Some(t.clone());
            self.record(Direction::HostToDevice, t.size_bytes() as u64);
        }
        // state moves in (donated): updated in place, never copied
        for p in self.sig.state_params() {
            let name = &self.sig.params[p].name;
            let slot = g.states.get_mut(name).ok_or_else(|| {
                Error::runtime(&call_name, format!("internal: no state '{name}'"))
            })?;
            args[p] = slot.buf.take();
        }
        let args: Vec<Arc<Tensor>> = match args.into_iter().collect::<Option<Vec<_>>>() {
            Some(a) => a,
            None => {
                g.poisoned = Some(call_name.clone());
                return Err(Error::runtime(
                    &call_name,
                    "internal: a state buffer was missing",
                ));
            }
        };
        let outcome = self.program.execute_with_stats(args);
        let (outs, stats) = match outcome {
            Ok(v) => v,
            Err(e) => {
                g.poisoned = Some(call_name);
                lock(&self.ledger).record_execute(self.device.profile.execute_overhead_s);
                return Err(e);
            }
        };
        lock(&self.ledger).record_execute(
            self.device
                .profile
                .execute_seconds(stats.flops, stats.bytes_touched),
        );
        if fault == (Fault::FailExecute { call }) {
            // part of the state written back, the rest lost: the set must not be used
            if let Some(first) = self.sig.aliases.pairs().next() {
                let name = &self.sig.params[first.param].name;
                if let Some(slot) = g.states.get_mut(name) {
                    slot.buf = Some(outs[first.output].clone());
                }
            }
            g.poisoned = Some(call_name.clone());
            return Err(Error::runtime(
                &call_name,
                "injected fault: execute failed after a partial state update",
            ));
        }
        for pair in self.sig.aliases.pairs() {
            let name = &self.sig.params[pair.param].name;
            if let Some(slot) = g.states.get_mut(name) {
                slot.buf = Some(outs[pair.output].clone());
            }
        }
        // returned outputs cross device -> host
        let mut result = Vec::new();
        for o in self.sig.returned_outputs() {
            let h = to_host(&outs[o]);
            self.record(Direction::DeviceToHost, h.data.len() as u64);
            result.push(h);
        }
        Ok(result)
    }
}
