//! Running a scenario on one backend into a [`Trace`], and comparing traces.

use crate::scenario::{self, inputs_for, values_for, Op, Scenario};
use crate::set_ops::apply_set_op;
use statetensor_core::{ErrorKind, StatefulModel};
use std::collections::BTreeSet;

/// What an operation returned: output/read bytes, or the error's kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success, with the bytes it returned (outputs of an execute, bytes of a read).
    Ok(Vec<Vec<u8>>),
    /// Failure, by kind.
    Err(ErrorKind),
}

/// Ledger counts of one operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Host → device bytes, transfers.
    pub h2d: (u64, u64),
    /// Device → host bytes, transfers.
    pub d2h: (u64, u64),
    /// Device → device bytes, transfers.
    pub d2d: (u64, u64),
}

/// One operation's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// What it returned.
    pub outcome: Outcome,
    /// What it moved (`None` for the reference, which has no device).
    pub counts: Option<Counts>,
    /// Every live state set's state bytes afterwards, by (set, state).
    pub states: Vec<(String, String, Outcome)>,
}

/// A scenario's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// One event per operation.
    pub events: Vec<Event>,
}

pub(crate) fn counts(a: &statetensor_core::TransferLedger) -> Counts {
    Counts {
        h2d: (a.h2d.bytes, a.h2d.transfers),
        d2h: (a.d2h.bytes, a.d2h.transfers),
        d2d: (a.d2d.bytes, a.d2d.transfers),
    }
}

pub(crate) fn sub(a: Counts, b: Counts) -> Counts {
    let s = |x: (u64, u64), y: (u64, u64)| (x.0 - y.0, x.1 - y.1);
    Counts {
        h2d: s(a.h2d, b.h2d),
        d2h: s(a.d2h, b.d2h),
        d2d: s(a.d2d, b.d2d),
    }
}

pub(crate) fn outcome<T>(
    r: statetensor_core::Result<T>,
    f: impl FnOnce(T) -> Vec<Vec<u8>>,
) -> Outcome {
    match r {
        Ok(v) => Outcome::Ok(f(v)),
        Err(e) => Outcome::Err(e.kind()),
    }
}

/// Runs a scenario on a backend: `primary` and `second` are two models of the scenario's
/// fixture loaded on one device (the second shares state sets with the first).
pub fn run(primary: &dyn StatefulModel, second: &dyn StatefulModel, sc: &Scenario) -> Trace {
    let sig = primary.signature().clone();
    let states: Vec<String> = sig.state_specs().map(|s| s.name.clone()).collect();
    let total = || {
        let (a, b) = (counts(&primary.ledger()), counts(&second.ledger()));
        let add = |x: (u64, u64), y: (u64, u64)| (x.0 + y.0, x.1 + y.1);
        Counts {
            h2d: add(a.h2d, b.h2d),
            d2h: add(a.d2h, b.d2h),
            d2d: add(a.d2d, b.d2d),
        }
    };
    let mut live: BTreeSet<String> = BTreeSet::new();
    let mut events = Vec::new();
    for op in &sc.ops {
        let before = total();
        let out = apply(primary, second, &sig, &states, op, &mut live);
        let moved = sub(total(), before);
        let mut snapshot = Vec::new();
        for set in &live {
            for st in &states {
                let mut buf = Vec::new();
                snapshot.push((
                    set.clone(),
                    st.clone(),
                    outcome(primary.read_state_to(set, st, &mut buf), |_| vec![buf]),
                ));
            }
        }
        events.push(Event {
            outcome: out,
            counts: Some(moved),
            states: snapshot,
        });
    }
    Trace { events }
}

fn apply(
    m: &dyn StatefulModel,
    second: &dyn StatefulModel,
    sig: &statetensor_core::Signature,
    states: &[String],
    op: &Op,
    live: &mut BTreeSet<String>,
) -> Outcome {
    use statetensor_core::StateInit;
    let state_of = |i: u8| states.get(i as usize % states.len().max(1)).cloned();
    match op {
        Op::Create { set, init } => {
            let name = Scenario::set_name(*set);
            let init = match init {
                None => StateInit::Zeros,
                Some(seed) => StateInit::Values(values_for(sig, *seed)),
            };
            let r = m.create_state_set(&name, init);
            if r.is_ok() {
                live.insert(name);
            }
            outcome(r, |_| vec![])
        }
        Op::Write {
            set,
            state,
            range,
            seed,
        } => {
            let Some(st) = state_of(*state) else {
                return Outcome::Ok(vec![]);
            };
            let (off, len) = scenario::state_byte_range(sig, &st, *range);
            let data = scenario::bytes_for(*seed, len as usize);
            outcome(
                m.write_state(&Scenario::set_name(*set), &st, off, &data),
                |_| vec![],
            )
        }
        Op::Read { set, state, range } => {
            let Some(st) = state_of(*state) else {
                return Outcome::Ok(vec![]);
            };
            let (off, len) = scenario::state_byte_range(sig, &st, *range);
            let mut buf = vec![0u8; len as usize];
            outcome(
                m.read_state(&Scenario::set_name(*set), &st, off, &mut buf),
                |_| vec![buf],
            )
        }
        Op::Execute {
            set,
            seed,
            second_model,
        } => {
            let model = if *second_model { second } else { m };
            if *second_model
                && model
                    .create_state_set(&Scenario::set_name(*set), StateInit::Zeros)
                    .is_ok()
            {
                // the second model attached to the set, or created it (a prefill/decode pair
                // sharing state)
                live.insert(Scenario::set_name(*set));
            }
            outcome(
                model.execute(&Scenario::set_name(*set), &inputs_for(sig, *seed)),
                |outs| outs.into_iter().map(|h| h.data).collect(),
            )
        }
        Op::Reset { .. } | Op::Snapshot { .. } | Op::FileRoundTrip { .. } | Op::Drop { .. } => {
            apply_set_op(m, op, live)
        }
    }
}

/// Where two traces first differ, described; `None` when they agree. `compare_counts`
/// is false when one side is the reference (it has no device).
pub fn diverge(
    a_name: &str,
    a: &Trace,
    b_name: &str,
    b: &Trace,
    sc: &Scenario,
    compare_counts: bool,
) -> Option<String> {
    for (i, (x, y)) in a.events.iter().zip(&b.events).enumerate() {
        let op = &sc.ops[i];
        if x.outcome != y.outcome {
            return Some(format!(
                "op {i} {op:?} on {}: {a_name} {:?} vs {b_name} {:?}",
                sc.model,
                brief(&x.outcome),
                brief(&y.outcome)
            ));
        }
        if compare_counts && x.counts != y.counts {
            return Some(format!(
                "op {i} {op:?} on {}: ledger {a_name} {:?} vs {b_name} {:?}",
                sc.model, x.counts, y.counts
            ));
        }
        if x.states != y.states {
            let which = x
                .states
                .iter()
                .zip(&y.states)
                .find(|(p, q)| p != q)
                .map(|(p, _)| format!("{}/{}", p.0, p.1));
            return Some(format!(
                "op {i} {op:?} on {}: state {} differs between {a_name} and {b_name}",
                sc.model,
                which.unwrap_or_else(|| "set list".into())
            ));
        }
    }
    None
}

fn brief(o: &Outcome) -> String {
    match o {
        Outcome::Ok(v) => format!(
            "Ok({} buffers, {} bytes)",
            v.len(),
            v.iter().map(Vec::len).sum::<usize>()
        ),
        Outcome::Err(k) => format!("Err({k:?})"),
    }
}
