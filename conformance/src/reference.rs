//! The functional reference: each scenario evaluated with no device and no aliasing — state
//! kept as host bytes, every execute given fresh copies and its outputs copied back.

use crate::scenario::{byte_range, bytes_for, inputs_for, values_for, Op, Scenario};
use crate::{Event, Outcome, Trace};
use statetensor_core::{Error, ErrorKind, LoadOptions, Signature};
use statetensor_hlo::{Program, Tensor};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A state set: state bytes and initial values by name.
#[derive(Clone, Default)]
struct Set {
    states: BTreeMap<String, Vec<u8>>,
    init: BTreeMap<String, Vec<u8>>,
}

/// Evaluates scenarios on one model without aliasing.
pub struct Reference {
    program: Arc<Program>,
    sig: Signature,
    /// The weights' values, by parameter.
    weights: Vec<(usize, Arc<Tensor>)>,
}

impl Reference {
    /// A reference for a parsed model loaded with `opts`; every weight needs its value
    /// (there is no device to share one from).
    pub fn new(program: Arc<Program>, opts: &LoadOptions) -> statetensor_core::Result<Reference> {
        let sig = program.signature(opts)?;
        let mut weights = Vec::new();
        for p in sig.weight_params() {
            let Some(Some(h)) = opts.weights.get(&p) else {
                return Err(Error::invalid_input(
                    "reference",
                    format!("weight {p} has no value"),
                ));
            };
            let t = Tensor::from_le_bytes(h.dtype, h.shape.dims(), &h.data)?;
            weights.push((p, Arc::new(t)));
        }
        Ok(Reference {
            program,
            sig,
            weights,
        })
    }

    fn zeros(&self) -> Set {
        let states = self
            .sig
            .state_params()
            .iter()
            .map(|&p| {
                (
                    self.sig.params[p].name.clone(),
                    vec![0u8; self.sig.params[p].size_bytes()],
                )
            })
            .collect();
        Set {
            states,
            init: BTreeMap::new(),
        }
    }

    fn execute(&self, set: &mut Set, seed: u64) -> Outcome {
        let inputs = inputs_for(&self.sig, seed);
        let mut args: Vec<Option<Arc<Tensor>>> = vec![None; self.sig.params.len()];
        for (h, &p) in inputs.iter().zip(&self.sig.input_params()) {
            args[p] = Some(Arc::new(
                Tensor::from_le_bytes(h.dtype, h.shape.dims(), &h.data).expect("inputs match"),
            ));
        }
        for (p, w) in &self.weights {
            args[*p] = Some(w.clone());
        }
        for p in self.sig.state_params() {
            let spec = &self.sig.params[p];
            args[p] = Some(Arc::new(
                Tensor::from_le_bytes(spec.dtype, spec.shape.dims(), &set.states[&spec.name])
                    .expect("states match"),
            ));
        }
        let args = args
            .into_iter()
            .map(|a| a.expect("every parameter bound"))
            .collect();
        match self.program.execute(args) {
            Err(e) => Outcome::Err(e.kind()),
            Ok(outs) => {
                for pair in self.sig.aliases.pairs() {
                    set.states.insert(
                        self.sig.params[pair.param].name.clone(),
                        outs[pair.output].to_le_bytes(),
                    );
                }
                Outcome::Ok(
                    self.sig
                        .returned_outputs()
                        .iter()
                        .map(|&o| outs[o].to_le_bytes())
                        .collect(),
                )
            }
        }
    }

    /// The trace of a scenario (no ledger: the reference has no device).
    pub fn run(&self, sc: &Scenario) -> Trace {
        let states: Vec<String> = self
            .sig
            .state_params()
            .iter()
            .map(|&p| self.sig.params[p].name.clone())
            .collect();
        let state_of = |i: u8| states.get(i as usize % states.len().max(1)).cloned();
        let mut sets: BTreeMap<String, Set> = BTreeMap::new();
        let mut events = Vec::new();
        let ok = || Outcome::Ok(vec![]);
        let not_found = Outcome::Err(ErrorKind::NotFound);
        for op in &sc.ops {
            let out = match op {
                Op::Create { set, init } => {
                    let name = Scenario::set_name(*set);
                    match (sets.contains_key(&name), init) {
                        (true, None) => ok(),
                        (true, Some(_)) => Outcome::Err(ErrorKind::InvalidInput),
                        (false, init) => {
                            let mut s = self.zeros();
                            if let Some(seed) = init {
                                for (n, h) in values_for(&self.sig, *seed) {
                                    s.states.insert(n.clone(), h.data.clone());
                                    s.init.insert(n, h.data);
                                }
                            }
                            sets.insert(name, s);
                            ok()
                        }
                    }
                }
                Op::Write {
                    set,
                    state,
                    range,
                    seed,
                } => match (sets.get_mut(&Scenario::set_name(*set)), state_of(*state)) {
                    (None, _) => not_found.clone(),
                    (Some(_), None) => ok(),
                    (Some(s), Some(st)) => {
                        let buf = s.states.get_mut(&st).expect("every state exists");
                        let (off, len) = byte_range(*range, buf.len() as u64);
                        if off + len > buf.len() as u64 {
                            Outcome::Err(ErrorKind::InvalidInput)
                        } else {
                            buf[off as usize..(off + len) as usize]
                                .copy_from_slice(&bytes_for(*seed, len as usize));
                            ok()
                        }
                    }
                },
                Op::Read { set, state, range } => {
                    match (sets.get(&Scenario::set_name(*set)), state_of(*state)) {
                        (None, _) => not_found.clone(),
                        (Some(_), None) => ok(),
                        (Some(s), Some(st)) => {
                            let buf = &s.states[&st];
                            let (off, len) = byte_range(*range, buf.len() as u64);
                            if off + len > buf.len() as u64 {
                                Outcome::Err(ErrorKind::InvalidInput)
                            } else {
                                Outcome::Ok(vec![buf[off as usize..(off + len) as usize].to_vec()])
                            }
                        }
                    }
                }
                Op::Execute {
                    set,
                    seed,
                    second_model,
                } => {
                    let name = Scenario::set_name(*set);
                    if *second_model && !sets.contains_key(&name) {
                        // the second model's attach creates a missing set
                        sets.insert(name.clone(), self.zeros());
                    }
                    match sets.get_mut(&name) {
                        None => not_found.clone(),
                        Some(s) => self.execute(s, *seed),
                    }
                }
                Op::Reset { set } => match sets.get_mut(&Scenario::set_name(*set)) {
                    None => not_found.clone(),
                    Some(s) => {
                        let fresh = self.zeros();
                        for (n, v) in s.states.iter_mut() {
                            *v = s
                                .init
                                .get(n)
                                .cloned()
                                .unwrap_or_else(|| fresh.states[n].clone());
                        }
                        ok()
                    }
                },
                Op::Snapshot { from, to } => {
                    let (f, t) = (Scenario::set_name(*from), Scenario::set_name(*to));
                    if f == t {
                        Outcome::Err(ErrorKind::InvalidInput)
                    } else {
                        match sets.get(&f).map(|s| s.states.clone()) {
                            None => not_found.clone(),
                            Some(states) => {
                                sets.entry(t).or_default().states = states;
                                ok()
                            }
                        }
                    }
                }
                Op::FileRoundTrip { from, to } => {
                    let (f, t) = (Scenario::set_name(*from), Scenario::set_name(*to));
                    match sets.get(&f).map(|s| s.states.clone()) {
                        None => not_found.clone(),
                        Some(states) => {
                            sets.entry(t).or_default().states = states;
                            ok()
                        }
                    }
                }
                Op::Drop { set } => match sets.remove(&Scenario::set_name(*set)) {
                    None => not_found.clone(),
                    Some(_) => ok(),
                },
            };
            let snapshot = sets
                .iter()
                .flat_map(|(n, s)| {
                    states.iter().map(move |st| {
                        (
                            n.clone(),
                            st.clone(),
                            Outcome::Ok(vec![s.states[st].clone()]),
                        )
                    })
                })
                .collect();
            events.push(Event {
                outcome: out,
                counts: None,
                states: snapshot,
            });
        }
        Trace { events }
    }
}
