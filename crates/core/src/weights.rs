//! Resident weights: read-only parameters uploaded once, held on the device and shared by
//! every model loaded there that names them (two graphs over one set of weights, as NxD
//! loads its context-encoding and token-generation graphs).
//!
//! A device keeps one [`ResidentWeights`] registry, generic over where a buffer lives (a
//! tensor in the simulator, an `nrt_tensor_t` on the driver). Weights are keyed by
//! parameter name and counted by the models using them: the first model uploads a weight,
//! later ones attach to it, and it is freed when the last one is dropped. The checks —
//! a value for each weight not yet resident, none for a resident one, types that agree —
//! are here once, so both backends refuse the same loads with the same errors.

use crate::{Error, HostTensor, Result, Signature, TensorSpec};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug)]
struct Resident<B> {
    spec: TensorSpec,
    buf: Arc<B>,
    users: usize,
}

/// The weights resident on one device, by name.
#[derive(Debug)]
pub struct ResidentWeights<B> {
    held: Mutex<HashMap<String, Resident<B>>>,
}

impl<B> Default for ResidentWeights<B> {
    fn default() -> Self {
        ResidentWeights {
            held: Mutex::new(HashMap::new()),
        }
    }
}

impl<B> ResidentWeights<B> {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Resident<B>>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Binds the weights of a model with signature `sig`, in the order of
    /// [`Signature::weight_params`]: a weight given a value in `values` is uploaded with
    /// `upload` (which charges the device and the ledger); one given `None` must already be
    /// resident with the same type, and is shared. All or nothing: when any weight fails,
    /// those uploaded by this call are released again (`freed` is told of each) and the
    /// registry is as it was.
    pub fn acquire(
        &self,
        op: &str,
        sig: &Signature,
        values: &BTreeMap<usize, Option<HostTensor>>,
        mut upload: impl FnMut(&TensorSpec, &HostTensor) -> Result<B>,
        mut freed: impl FnMut(&TensorSpec),
    ) -> Result<Vec<Arc<B>>> {
        let mut held = self.lock();
        // check everything before anything moves
        for p in sig.weight_params() {
            let spec = &sig.params[p];
            let value = values.get(&p).and_then(Option::as_ref);
            match (held.get(&spec.name), value) {
                (Some(r), None) if r.spec.dtype == spec.dtype && r.spec.shape == spec.shape => {}
                (Some(r), None) => {
                    return Err(Error::invalid_input(
                        op,
                        format!(
                            "weight '{}' is resident on this device as {}, this model needs {}",
                            spec.name,
                            r.spec.type_string(),
                            spec.type_string()
                        ),
                    ))
                }
                (Some(_), Some(_)) => {
                    return Err(Error::invalid_input(
                        op,
                        format!(
                            "weight '{}' (parameter {p}) is already resident on this device \
                             (another model uploaded it); load without its value to share it",
                            spec.name
                        ),
                    ))
                }
                (None, None) => {
                    return Err(Error::invalid_input(
                        op,
                        format!(
                            "weight '{}' (parameter {p}, {}) has no value and no model on \
                             this device has uploaded it; give its value",
                            spec.name,
                            spec.type_string()
                        ),
                    ))
                }
                (None, Some(v)) => {
                    if v.dtype != spec.dtype || v.shape != spec.shape {
                        return Err(spec.wrong_argument(op, p, &v.type_string()));
                    }
                }
            }
        }
        let mut bound = Vec::new();
        let mut uploaded: Vec<&str> = Vec::new();
        let weights = sig.weight_params();
        for (i, &p) in weights.iter().enumerate() {
            let spec = &sig.params[p];
            if let Some(r) = held.get_mut(&spec.name) {
                r.users += 1;
                bound.push(r.buf.clone());
                continue;
            }
            let outcome = match values.get(&p).and_then(Option::as_ref) {
                Some(v) => upload(spec, v),
                None => Err(Error::runtime(op, "internal: weight value vanished")),
            };
            match outcome {
                Ok(buf) => {
                    let buf = Arc::new(buf);
                    let resident = Resident {
                        spec: spec.clone(),
                        buf: buf.clone(),
                        users: 1,
                    };
                    held.insert(spec.name.clone(), resident);
                    uploaded.push(&spec.name);
                    bound.push(buf);
                }
                Err(e) => {
                    // undo this call: drop what it uploaded, un-count what it attached to
                    drop(bound);
                    for &q in &weights[..i] {
                        let name = &sig.params[q].name;
                        if uploaded.contains(&name.as_str()) {
                            if let Some(r) = held.remove(name) {
                                freed(&r.spec);
                            }
                        } else if let Some(r) = held.get_mut(name) {
                            r.users = r.users.saturating_sub(1);
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(bound)
    }

    /// Releases the weights a model with signature `sig` bound; each weight no model uses
    /// any more is dropped from the device (`freed` is told of it).
    pub fn release(&self, sig: &Signature, mut freed: impl FnMut(&TensorSpec)) {
        let mut held = self.lock();
        for p in sig.weight_params() {
            let name = &sig.params[p].name;
            let last = match held.get_mut(name) {
                Some(r) => {
                    r.users = r.users.saturating_sub(1);
                    r.users == 0
                }
                None => false,
            };
            if last {
                if let Some(r) = held.remove(name) {
                    freed(&r.spec);
                }
            }
        }
    }

    /// Total bytes of the weights resident on the device.
    pub fn bytes(&self) -> u64 {
        self.lock()
            .values()
            .map(|r| r.spec.size_bytes() as u64)
            .sum()
    }

    /// Names of the resident weights, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.lock().keys().cloned().collect();
        n.sort_unstable();
        n
    }
}
