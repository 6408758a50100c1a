//! `nrt_execute`: reads the bound inputs, runs the HLO engine, writes the bound outputs — with the hazard hardware shows for an unaliased shared tensor, and injected faults.

use super::*;

/// Where one model I/O lives.
struct Bound<'a> {
    tensor: &'a EmuTensor,
}

impl Bound<'_> {
    /// The tensor's contents as `spec`: the copy decoded earlier when nothing has written
    /// the storage since, else decoded now. `take` leaves no copy behind (a state the
    /// engine may then update in place, its only holder).
    fn read(&self, spec: &TensorSpec, take: bool) -> Result<Arc<Tensor>, NRT_STATUS> {
        let s = lock_storage(&self.tensor.storage);
        let mut cache = self
            .tensor
            .decoded
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let current = |t: &Tensor| t.dtype() == spec.dtype && t.dims() == spec.shape.dims();
        match cache.take() {
            Some((v, t)) if v == s.version && current(&t) => {
                if !take {
                    *cache = Some((v, t.clone()));
                }
                Ok(t)
            }
            _ => {
                let range = self.tensor.offset..self.tensor.offset + self.tensor.size;
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
        let mut s = lock_storage(&self.tensor.storage);
        let range = self.tensor.offset..self.tensor.offset + self.tensor.size;
        if t.read_bytes(0, &mut s.write()[range]).is_err() {
            // sizes were checked when the tensor was bound
            warn("nrt_execute: internal: an output does not fit its tensor");
        }
        *self
            .tensor
            .decoded
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((s.version, t.clone()));
    }

    fn same_memory(&self, o: &Bound<'_>) -> bool {
        Arc::ptr_eq(&self.tensor.storage, &o.tensor.storage)
            && self.tensor.offset == o.tensor.offset
    }
}

/// `NRT_STATUS nrt_execute(nrt_model_t *model, const nrt_tensor_set_t *input_set, nrt_tensor_set_t *output_set)`.
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
    let m = tri!(g.model(model));
    let (ins, outs) = (
        tri!(g.set(input_set)),
        tri!(g.set(output_set as *const c_void)),
    );
    let bind = |set: &TensorSet, name: &str, spec: &TensorSpec| -> Result<Bound<'_>, NRT_STATUS> {
        let Some(&h) = set.get(name) else {
            warn(&format!(
                "nrt_execute: no tensor named '{name}' in the tensor set"
            ));
            return Err(NRT_INVALID);
        };
        let t = g.tensor(h as *const c_void)?;
        if t.size != spec.size_bytes() {
            warn(&format!(
                "nrt_execute: '{name}' is {} bytes, the model needs {} ({})",
                t.size,
                spec.size_bytes(),
                spec.type_string()
            ));
            return Err(NRT_INVALID);
        }
        Ok(Bound { tensor: t })
    };
    let params = m.program.params();
    let outputs = m.program.outputs();
    let mut inb = Vec::with_capacity(params.len());
    for (p, spec) in params.iter().enumerate() {
        inb.push(tri!(bind(ins, &m.input_names[p], spec)));
    }
    let mut outb = Vec::with_capacity(outputs.len());
    for (o, spec) in outputs.iter().enumerate() {
        outb.push(tri!(bind(outs, &m.output_names[o], spec)));
    }
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
    let run = |inb: &[Bound<'_>]| -> Result<Vec<Arc<Tensor>>, NRT_STATUS> {
        // a state is handed over (its output replaces it), everything else shared
        let args = inb
            .iter()
            .zip(params)
            .enumerate()
            .map(|(p, (b, s))| b.read(s, m.aliases.output_for(p).is_some()))
            .collect::<Result<Vec<_>, _>>()?;
        m.program.execute(args).map_err(|e| {
            warn(&format!("nrt_execute: {e}"));
            NRT_EXEC_COMPLETED_WITH_ERR
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
            warn(&format!(
                "nrt_execute: injected fault: call {call} failed after a partial state update"
            ));
            return NRT_EXEC_COMPLETED_WITH_ERR;
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
