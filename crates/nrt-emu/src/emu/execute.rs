//! `nrt_execute`: reads the bound inputs, runs the HLO engine, writes the bound outputs — with the hazard hardware shows for an unaliased shared tensor, and injected faults.

use super::*;
use statetensor_hlo::collective::{Communicator, Rank};

/// Where one model I/O lives: the tensor's storage and decoded copy, held by the execute
/// so that the runtime's lock is free while the engine runs.
struct Bound {
    storage: Storage,
    offset: usize,
    size: usize,
    decoded: Arc<Decoded>,
}

impl Bound {
    fn of(t: &EmuTensor) -> Bound {
        Bound {
            storage: t.storage.clone(),
            offset: t.offset,
            size: t.size,
            decoded: t.decoded.clone(),
        }
    }

    /// The tensor's contents as `spec`: the copy decoded earlier when nothing has written
    /// the storage since, else decoded now. `take` leaves no copy behind (a state the
    /// engine may then update in place, its only holder).
    fn read(&self, spec: &TensorSpec, take: bool) -> Result<Arc<Tensor>, NRT_STATUS> {
        let s = lock_storage(&self.storage);
        let mut cache = self.decoded.lock().unwrap_or_else(|p| p.into_inner());
        let current = |t: &Tensor| t.dtype() == spec.dtype && t.dims() == spec.shape.dims();
        match cache.take() {
            Some((v, t)) if v == s.version && current(&t) => {
                if !take {
                    *cache = Some((v, t.clone()));
                }
                Ok(t)
            }
            _ => {
                let range = self.offset..self.offset + self.size;
                let t = Tensor::from_le_bytes(spec.dtype, spec.shape.dims(), &s.bytes[range])
                    .map(Arc::new)
                    .map_err(|_| NRT_INVALID)?;
                if !take {
                    *cache = Some((s.version, t.clone()));
                }
                Ok(t)
            }
        }
    }

    /// Writes `t` into the tensor's bytes, and keeps `t` as its decoded contents.
    fn write(&self, t: &Arc<Tensor>) {
        let mut s = lock_storage(&self.storage);
        let range = self.offset..self.offset + self.size;
        if t.read_bytes(0, &mut s.write()[range]).is_err() {
            // sizes were checked when the tensor was bound
            warn("nrt_execute: internal: an output does not fit its tensor");
        }
        *self.decoded.lock().unwrap_or_else(|p| p.into_inner()) = Some((s.version, t.clone()));
    }

    fn same_memory(&self, o: &Bound) -> bool {
        Arc::ptr_eq(&self.storage, &o.storage) && self.offset == o.offset
    }
}

/// Every input and output of `m` found in the sets by its NEFF name and checked for size;
/// a failure is the status and why.
fn bind_all(
    g: &Emu,
    m: &EmuModel,
    input_set: *const c_void,
    output_set: *const c_void,
) -> Result<(Vec<Bound>, Vec<Bound>), (NRT_STATUS, String)> {
    let unknown = |s| (s, "an unknown tensor set handle".to_string());
    let ins = g.set(input_set).map_err(unknown)?;
    let outs = g.set(output_set).map_err(unknown)?;
    let bind = |set: &TensorSet, name: &str, spec: &TensorSpec| {
        let Some(&h) = set.get(name) else {
            return Err((
                NRT_INVALID,
                format!("no tensor named '{name}' in the tensor set"),
            ));
        };
        let t = g
            .tensor(h as *const c_void)
            .map_err(|s| (s, format!("'{name}' is not a live tensor")))?;
        if t.size != spec.size_bytes() {
            return Err((
                NRT_INVALID,
                format!(
                    "'{name}' is {} bytes, the model needs {} ({})",
                    t.size,
                    spec.size_bytes(),
                    spec.type_string()
                ),
            ));
        }
        if let Some(c) = t.core.filter(|&c| c != m.core) {
            return Err((
                NRT_INVALID,
                format!(
                    "'{name}' is on NeuronCore {c}, the model on NeuronCore {}",
                    m.core
                ),
            ));
        }
        Ok(Bound::of(t))
    };
    let inb = (m.program.params().iter().enumerate())
        .map(|(p, spec)| bind(ins, &m.input_names[p], spec))
        .collect::<Result<Vec<_>, _>>()?;
    let outb = (m.program.outputs().iter().enumerate())
        .map(|(o, spec)| bind(outs, &m.output_names[o], spec))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((inb, outb))
}

/// `NRT_STATUS nrt_execute(nrt_model_t *model, const nrt_tensor_set_t *input_set, nrt_tensor_set_t *output_set)`.
///
/// The runtime's lock is held only to find the model and its tensors: executes of
/// different models run at once, as the cores of an SPMD program must.
///
/// # Safety
/// The handles must come from this library (unknown handles are rejected).
#[no_mangle]
pub unsafe extern "C" fn nrt_execute(
    model: *mut c_void,
    input_set: *const c_void,
    output_set: *mut c_void,
) -> NRT_STATUS {
    let mut g = tri!(running());
    g.executes += 1;
    let call = g.executes;
    let fault = g.fault;
    let m = tri!(g.model(model)).clone();
    drop(g);
    // one execute of a model at a time; the runtime's lock is not held while waiting
    let _running = m.running.lock().unwrap_or_else(|p| p.into_inner());
    let mut g = tri!(running());
    // a world member joins its step before anything can fail, so that a failure here
    // stops the other members instead of leaving them waiting
    let step = m
        .rank
        .as_ref()
        .map(|seat| (collectives::next_step(&mut g, seat), seat));
    let bound = bind_all(&g, &m, input_set, output_set as *const c_void);
    drop(g);
    run_bound(&m, bound, &step, fault, call)
}

/// The body of an execute once its tensors are found: the engine, hazards and faults.
fn run_bound(
    m: &EmuModel,
    bound: Result<(Vec<Bound>, Vec<Bound>), (NRT_STATUS, String)>,
    step: &Option<(Arc<Communicator>, &collectives::Seat)>,
    fault: Option<Fault>,
    call: u64,
) -> NRT_STATUS {
    let fail = |status: NRT_STATUS, why: &str| {
        warn(&format!("nrt_execute: {why}"));
        if let Some((comm, seat)) = &step {
            comm.abort(seat.device, why);
        }
        status
    };
    let (inb, outb) = match bound {
        Ok(b) => b,
        Err((status, why)) => return fail(status, &why),
    };
    // pairs bound to one tensor that the model does not alias: a read/write hazard
    let mut hazards: Vec<(usize, usize)> = Vec::new();
    for (p, i) in inb.iter().enumerate() {
        for (o, ob) in outb.iter().enumerate() {
            if i.same_memory(ob) && m.aliases.output_for(p) != Some(o) {
                warn(&format!(
                    "nrt_execute: input '{}' and output '{}' share a tensor but the model does not alias them: the output is written before the input is read",
                    m.input_names[p], m.output_names[o]
                ));
                hazards.push((p, o));
            }
        }
    }
    if fault == Some(Fault::Hazard) {
        hazards.extend(m.aliases.pairs().map(|a| (a.param, a.output)));
    }
    if !hazards.is_empty() && step.is_some() {
        // replaying the step with the early outputs would need every core to run it twice
        return fail(
            NRT_INVALID,
            "a read/write hazard on a core of an SPMD program: the emulator replays a hazard by running the step again, which the other cores cannot join; bind each state only to its aliased output",
        );
    }
    let params = m.program.params();
    let run = |inb: &[Bound]| -> Result<Vec<Arc<Tensor>>, NRT_STATUS> {
        // a state is handed over (its output replaces it), everything else shared
        let args = inb
            .iter()
            .zip(params)
            .enumerate()
            .map(|(p, (b, s))| b.read(s, m.aliases.output_for(p).is_some()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|status| fail(status, "an input's bytes do not decode as its type"))?;
        let outcome = match step {
            None => m.program.execute(args),
            Some((comm, seat)) => {
                let rank = Rank {
                    core: seat.device,
                    topology: seat.topology,
                    comm,
                };
                m.program.execute_rank(args, rank).map(|(t, _)| t)
            }
        };
        outcome.map_err(|e| {
            warn(&format!("nrt_execute: {e}"));
            match step {
                Some((comm, seat)) => {
                    collectives::failed_status(comm, seat.device, NRT_EXEC_COMPLETED_WITH_ERR)
                }
                None => NRT_EXEC_COMPLETED_WITH_ERR,
            }
        })
    };
    let mut results = tri!(run(&inb));
    if !hazards.is_empty() {
        // hardware streams outputs while it still reads inputs: the hazardous outputs land
        // first, and the computation then sees them in place of its inputs
        for &(_, o) in &hazards {
            outb[o].write(&results[o]);
        }
        results = tri!(run(&inb));
    }
    match fault {
        Some(Fault::FailExecute(n)) if n == call => {
            if let Some(a) = m.aliases.pairs().next() {
                outb[a.output].write(&results[a.output]);
            }
            return fail(
                NRT_EXEC_COMPLETED_WITH_ERR,
                &format!("injected fault: call {call} failed after a partial state update"),
            );
        }
        _ => {}
    }
    for (o, b) in outb.iter().enumerate() {
        if fault == Some(Fault::LostWrite) && m.aliases.param_for(o).is_some() {
            continue;
        }
        b.write(&results[o]);
    }
    NRT_SUCCESS
}
