//! A model loaded on a simulated device: the [`StatefulModel`] implementation.

use crate::device::{lock, SimBuffer};
use crate::{Fault, SimDevice};
use statetensor_core::{
    check_byte_range, lock_state_set, Direction, Error, HostTensor, LoadOptions, MemoryReport,
    PreparedInputs, Result, Signature, StateInit, StateSet, StateSlot, StatefulModel,
    TransferLedger,
};
use statetensor_hlo::collective::{Communicator, Rank, Topology};
use statetensor_hlo::{Program, Tensor};
use statetensor_hugepages::When;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub(crate) type SimStateSet = StateSet<SimBuffer, Arc<Tensor>>;

/// Device bytes a state set holds: its states and the initial values kept for `reset`.
fn device_bytes(set: &SimStateSet) -> u64 {
    set.state_bytes()
        + set
            .init
            .values()
            .map(|t| t.size_bytes() as u64)
            .sum::<u64>()
}

/// A model loaded on a [`SimDevice`].
#[derive(Debug)]
pub struct SimModel {
    device: Arc<SimDevice>,
    program: Arc<Program>,
    sig: Signature,
    /// Bytes of the program's constants, charged while the model is loaded.
    constants: u64,
    /// The resident weights this model binds, by parameter, shared through the device.
    weights: Vec<(usize, Arc<Tensor>)>,
    temps: u64,
    ledger: Mutex<TransferLedger>,
    /// This model's core and the cores' numbering when it is one core of an SPMD model
    /// ([`crate::SimShardedModel`]); it then executes only with the others.
    seat: Option<(usize, Topology)>,
}

fn to_tensor(h: &HostTensor) -> Result<Tensor> {
    Tensor::from_le_bytes(h.dtype, h.shape.dims(), &h.data)
}

/// `t`, with its memory backed by huge pages where the OS grants them: a buffer that stays
/// on the simulated device (a resident weight, a state) is read every step, and with 4 KiB
/// pages a step's working set outruns the TLB (see statetensor-hugepages). A weight, filled
/// once, moves at once ([`When::Now`]); a state only as it is written ([`When::AsTouched`]:
/// a zeroed cache costs no memory until used, and a reset or copy is not copied twice).
/// Never changes a value.
fn resident(t: Tensor, when: When) -> Tensor {
    statetensor_hlo::with_tensor!(&t, a => {
        if let Some(data) = a.as_slice_memory_order() {
            statetensor_hugepages::prefer_huge_pages(data, when);
        }
    });
    t
}

fn to_host(t: &Tensor) -> HostTensor {
    HostTensor {
        dtype: t.dtype(),
        shape: statetensor_core::Shape::new(t.dims().to_vec()),
        data: t.to_le_bytes(),
    }
}

impl SimModel {
    /// Parses and plans `text`, then loads it as [`SimModel::from_program`] does.
    pub fn load(
        device: &Arc<SimDevice>,
        text: &str,
        file: &str,
        opts: &LoadOptions,
    ) -> Result<SimModel> {
        let program = Program::parse(text, file)?;
        SimModel::from_program(device, Arc::new(program), opts)
    }

    /// Loads an already parsed program: validates its signature under `opts` (the alias
    /// map overriding the header's, torch-neuronx style; names; weights), charges its
    /// constants to the device and binds its weights — uploading each one not yet resident
    /// (host → device once, charged to HBM), sharing those another model uploaded. A
    /// failure leaves the device and its memory as they were.
    pub fn from_program(
        device: &Arc<SimDevice>,
        program: Arc<Program>,
        opts: &LoadOptions,
    ) -> Result<SimModel> {
        let sig = program.signature(opts)?;
        // a module whose collectives need more cores is refused here, with its reason
        program.topology(1)?;
        SimModel::seated(device, program, opts, sig, None)
    }

    /// Loads `program` as core `core` of an SPMD model over `topology`: as
    /// [`SimModel::from_program`], but it executes only together with the other cores.
    pub(crate) fn for_core(
        device: &Arc<SimDevice>,
        program: Arc<Program>,
        opts: &LoadOptions,
        core: usize,
        topology: Topology,
    ) -> Result<SimModel> {
        let sig = program.signature(opts)?;
        SimModel::seated(device, program, opts, sig, Some((core, topology)))
    }

    fn seated(
        device: &Arc<SimDevice>,
        program: Arc<Program>,
        opts: &LoadOptions,
        sig: Signature,
        seat: Option<(usize, Topology)>,
    ) -> Result<SimModel> {
        let op = format!("load {}", program.name());
        let constants = program.constant_bytes();
        device.hbm.alloc(&format!("{op}: constants"), constants)?;
        let ledger = Mutex::new(TransferLedger::default());
        let bound = device.weights.acquire(
            &format!("{op}: weights"),
            &sig,
            &opts.weights,
            |spec, value| {
                let t = to_tensor(value)?;
                let bytes = value.data.len() as u64;
                device
                    .hbm
                    .alloc(&format!("{op}: weight '{}'", spec.name), bytes)?;
                lock(&ledger).record(
                    Direction::HostToDevice,
                    bytes,
                    device.profile.h2d_seconds(bytes),
                );
                Ok(resident(t, When::Now))
            },
            |spec| device.hbm.free(spec.size_bytes() as u64),
        );
        let bound = match bound {
            Ok(b) => b,
            Err(e) => {
                device.hbm.free(constants);
                return Err(e);
            }
        };
        let weights = sig.weight_params().into_iter().zip(bound).collect();
        let temps = program.peak_temp_bytes();
        Ok(SimModel {
            device: device.clone(),
            program,
            sig,
            constants,
            weights,
            temps,
            ledger,
            seat,
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
        self.sig.input_bytes() + self.temps
    }

    /// Bytes of the program's constants the model holds on the device.
    pub fn constant_bytes(&self) -> u64 {
        self.constants
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

    fn state_slot<'a>(
        &self,
        op: &str,
        set: &'a mut SimStateSet,
        state: &str,
    ) -> Result<&'a mut StateSlot<SimBuffer>> {
        self.sig.state_param(op, state)?;
        set.slot_mut(op, state)
    }

    fn fresh_buffers(&self, set: &mut SimStateSet) {
        for (name, slot) in set.states.iter_mut() {
            let t = match set.init.get(name) {
                Some(v) => (**v).clone(),
                None => Tensor::zeros(slot.spec.dtype, slot.spec.shape.dims()),
            };
            slot.buf = Some(Arc::new(resident(t, When::AsTouched)));
        }
    }
}

impl Drop for SimModel {
    fn drop(&mut self) {
        self.device.hbm.free(self.constants);
        let hbm = &self.device.hbm;
        self.device
            .weights
            .release(&self.sig, |spec| hbm.free(spec.size_bytes() as u64));
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
        let mut sets = self.device.sets.registry();
        if let Some(existing) = sets.get(set) {
            // attach: another model created it; names, shapes and dtypes must agree
            let g = lock_state_set(&op, set, existing, true)?;
            return self
                .sig
                .check_attach(&op, |n| g.states.get(n).map(|s| &s.spec), &init);
        }
        let mut init_values = BTreeMap::new();
        for (name, v) in self.sig.check_init_values(&op, &init)? {
            init_values.insert(name, Arc::new(to_tensor(v)?));
        }
        let states = self
            .sig
            .state_specs()
            .map(|spec| {
                let slot = StateSlot {
                    spec: spec.clone(),
                    buf: None,
                };
                (spec.name.clone(), slot)
            })
            .collect();
        let mut s = SimStateSet::new(states, init_values);
        self.device.hbm.alloc(&op, device_bytes(&s))?;
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

    fn has_state_set(&self, set: &str) -> bool {
        self.device.sets.contains(set)
    }

    fn drop_state_set(&self, set: &str) -> Result<()> {
        let op = format!("drop state set '{set}'");
        let handle = self.device.sets.get(&op, set)?;
        let g = lock_state_set(&op, set, &handle, true)?;
        let bytes = device_bytes(&g);
        drop(g);
        self.device.sets.remove(set);
        self.device.hbm.free(bytes);
        Ok(())
    }

    fn execute(&self, set: &str, inputs: &[HostTensor]) -> Result<Vec<HostTensor>> {
        self.alone()?;
        self.sig.check_inputs(inputs)?;
        let tensors = inputs
            .iter()
            .map(|h| to_tensor(h).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        self.execute_tensors(set, &tensors, None)
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
        self.alone()?;
        match inputs.0.downcast_ref::<Vec<Arc<Tensor>>>() {
            Some(t) => self.execute_tensors(set, t, None),
            None => Err(Error::invalid_input(
                "execute",
                "the inputs were prepared by another backend",
            )),
        }
    }

    fn read_state(&self, set: &str, state: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
        let op = format!("read state '{state}' of '{set}'");
        let handle = self.device.sets.get(&op, set)?;
        let mut g = lock_state_set(&op, set, &handle, false)?;
        let slot = self.state_slot(&op, &mut g, state)?;
        let t = slot
            .buf
            .as_ref()
            .ok_or_else(|| Error::runtime(&op, "internal: state buffer missing"))?;
        let offset = check_byte_range(&op, t.size_bytes(), offset, buf.len())?;
        t.read_bytes(offset, buf)
            .map_err(|e| Error::invalid_input(&op, e.to_string()))?;
        self.record(Direction::DeviceToHost, buf.len() as u64);
        Ok(())
    }

    fn write_state(&self, set: &str, state: &str, offset: u64, data: &[u8]) -> Result<()> {
        let op = format!("write state '{state}' of '{set}'");
        let handle = self.device.sets.get(&op, set)?;
        let mut g = lock_state_set(&op, set, &handle, false)?;
        let slot = self.state_slot(&op, &mut g, state)?;
        let t = slot
            .buf
            .as_mut()
            .ok_or_else(|| Error::runtime(&op, "internal: state buffer missing"))?;
        let offset = check_byte_range(&op, t.size_bytes(), offset, data.len())?;
        Arc::make_mut(t)
            .write_bytes(offset, data)
            .map_err(|e| Error::invalid_input(&op, e.to_string()))?;
        self.record(Direction::HostToDevice, data.len() as u64);
        Ok(())
    }

    fn reset(&self, set: &str) -> Result<()> {
        let op = format!("reset state set '{set}'");
        let handle = self.device.sets.get(&op, set)?;
        let mut g = lock_state_set(&op, set, &handle, true)?;
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
        // a new destination has no initial values of its own: reset zeros it
        self.device.sets.copy_set(
            &op,
            from,
            to,
            || self.create_state_set(to, StateInit::Zeros),
            |spec, src, dst| {
                let v = src
                    .as_ref()
                    .ok_or_else(|| Error::runtime(&op, "internal: state buffer missing"))?;
                self.record(Direction::DeviceToDevice, spec.size_bytes() as u64);
                *dst = Some(Arc::new(resident((**v).clone(), When::AsTouched)));
                Ok(())
            },
        )
    }

    fn ledger(&self) -> TransferLedger {
        *lock(&self.ledger)
    }

    fn memory(&self) -> MemoryReport {
        self.device.memory()
    }
}

impl SimModel {
    /// Refuses to execute one core of an SPMD model alone: the others would never meet it
    /// at its collectives.
    fn alone(&self) -> Result<()> {
        match self.seat {
            Some((core, topo)) => Err(Error::invalid_input(
                "execute",
                format!(
                    "this is core {core} of a model run by {topo}; execute every core together (ShardedModel::execute)"
                ),
            )),
            None => Ok(()),
        }
    }

    /// The device state set `set` of this core, its absence named.
    pub(crate) fn state_set(
        &self,
        op: &str,
        set: &str,
    ) -> Result<statetensor_core::StateSetHandle<SimBuffer, Arc<Tensor>>> {
        self.device.sets.get(op, set)
    }

    /// Runs this core's part of an SPMD step on its set `g` (locked by the caller for
    /// every core), meeting the other cores at `comm`. Any failure, here or in the engine,
    /// stops the step for every core.
    pub(crate) fn execute_on_core(
        &self,
        op: &str,
        g: &mut SimStateSet,
        inputs: &[Arc<Tensor>],
        comm: &Communicator,
    ) -> Result<Vec<HostTensor>> {
        let Some((core, topology)) = self.seat else {
            return Err(Error::runtime(
                "execute",
                "internal: not a core of an SPMD model",
            ));
        };
        let rank = Rank {
            core,
            topology,
            comm,
        };
        let outcome = self.execute_locked(op, g, inputs, Some(rank));
        if let Err(e) = &outcome {
            comm.abort(core, &e.to_string());
        }
        outcome
    }

    /// Executes with inputs already converted (shared, never modified).
    fn execute_tensors(
        &self,
        set: &str,
        inputs: &[Arc<Tensor>],
        rank: Option<Rank<'_>>,
    ) -> Result<Vec<HostTensor>> {
        let op = format!("execute on state set '{set}'");
        let handle = self.device.sets.get(&op, set)?;
        let mut g = lock_state_set(&op, set, &handle, false)?;
        self.execute_locked(&op, &mut g, inputs, rank)
    }

    /// Executes on a set the caller has locked.
    fn execute_locked(
        &self,
        op: &str,
        g: &mut SimStateSet,
        inputs: &[Arc<Tensor>],
        rank: Option<Rank<'_>>,
    ) -> Result<Vec<HostTensor>> {
        // staging for inputs and outputs, and temporaries: charged before anything moves
        let staging = self.execute_footprint();
        self.device.hbm.alloc(op, staging)?;
        let result = self.run(g, inputs, rank);
        self.device.hbm.free(staging);
        result
    }

    /// The body of an execute, with the set locked and staging charged.
    fn run(
        &self,
        g: &mut SimStateSet,
        inputs: &[Arc<Tensor>],
        rank: Option<Rank<'_>>,
    ) -> Result<Vec<HostTensor>> {
        let (fault, call) = self.device.count_execute();
        let call_name = format!("execute #{call} of {}", self.program.name());
        // inputs cross host -> device
        let mut args: Vec<Option<Arc<Tensor>>> = vec![None; self.sig.params.len()];
        for (t, &p) in inputs.iter().zip(&self.sig.input_params()) {
            args[p] = Some(t.clone());
            self.record(Direction::HostToDevice, t.size_bytes() as u64);
        }
        // weights are resident: read in place, nothing moves
        for (p, w) in &self.weights {
            args[*p] = Some(w.clone());
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
        let outcome = match rank {
            Some(rank) => self.program.execute_rank(args, rank),
            None => self.program.execute_with_stats(args),
        };
        let (outs, stats) = match outcome {
            Ok(v) => v,
            Err(e) => {
                g.poisoned = Some(call_name);
                lock(&self.ledger).record_execute(self.device.profile.execute_overhead_s);
                return Err(e);
            }
        };
        {
            let profile = &self.device.profile;
            let mut ledger = lock(&self.ledger);
            ledger.record_execute(profile.execute_seconds(stats.flops, stats.bytes_touched));
            for c in &stats.collectives {
                let (sent, seconds) = profile.collective_cost(c.kind, &c.group, c.bytes_in);
                ledger.record_collective(sent, seconds);
            }
        }
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
