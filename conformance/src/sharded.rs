//! Scenarios on a model run by several cores: the same [`Op`]s, read the way a sharded
//! state set works, recorded into the same [`Trace`] so that backends are compared with
//! [`crate::diverge`].
//!
//! How an operation acts on N cores:
//! - `Create` makes the set on every core, core k's initial values derived from the seed
//!   plus k (every shard its own values);
//! - `Write` writes one core's shard (the core chosen by the seed); `Read` reads the state
//!   from every core, one buffer per core;
//! - `Execute` runs every core at once, core k's inputs derived from the seed plus k (the
//!   second-model flag is ignored: a sharded model has no second graph here);
//! - `Reset`, `Snapshot` (copy on every core), `Drop` act on every core;
//!   `FileRoundTrip` saves the set from every core into one file and loads it into another.
//!
//! Each event records every core's states of every live set and the ledger counts summed
//! over the cores.

use crate::scenario::{self, inputs_for, values_for, Op, Scenario};
use crate::set_ops::apply_set_op;
use crate::trace::{counts, outcome, sub, Counts, Event, Outcome, Trace};
use proptest::prelude::*;
use statetensor_core::{ShardedModel, StateInit};
use std::collections::BTreeSet;

/// Scenarios over the SPMD fixtures in `models`: a first set is always created, then 1–8
/// random operations.
pub fn sharded_scenario_strategy(models: Vec<String>) -> impl Strategy<Value = Scenario> {
    (
        0..models.len(),
        proptest::option::of(any::<u64>()),
        proptest::collection::vec(scenario::op(), 1..8),
    )
        .prop_map(move |(m, init, mut ops)| {
            ops.insert(0, Op::Create { set: 0, init });
            Scenario {
                model: models[m].clone(),
                ops,
            }
        })
}

fn total(m: &dyn ShardedModel) -> Counts {
    m.ledgers()
        .iter()
        .map(counts)
        .fold(Counts::default(), |a, b| {
            let add = |x: (u64, u64), y: (u64, u64)| (x.0 + y.0, x.1 + y.1);
            Counts {
                h2d: add(a.h2d, b.h2d),
                d2h: add(a.d2h, b.d2h),
                d2d: add(a.d2d, b.d2d),
            }
        })
}

/// Runs a scenario on a model run by several cores.
pub fn run_sharded(m: &dyn ShardedModel, sc: &Scenario) -> Trace {
    let sig = m.core(0).signature().clone();
    let states: Vec<String> = sig.state_specs().map(|s| s.name.clone()).collect();
    let mut live = BTreeSet::new();
    let mut events = Vec::new();
    for op in &sc.ops {
        let before = total(m);
        let out = apply(m, &sig, &states, op, &mut live);
        let moved = sub(total(m), before);
        let mut shards = Vec::new();
        for set in &live {
            for k in 0..m.cores() {
                for st in &states {
                    let mut buf = Vec::new();
                    shards.push((
                        set.clone(),
                        format!("core{k}/{st}"),
                        outcome(m.core(k).read_state_to(set, st, &mut buf), |_| vec![buf]),
                    ));
                }
            }
        }
        events.push(Event {
            outcome: out,
            counts: Some(moved),
            states: shards,
        });
    }
    Trace { events }
}

fn apply(
    m: &dyn ShardedModel,
    sig: &statetensor_core::Signature,
    states: &[String],
    op: &Op,
    live: &mut BTreeSet<String>,
) -> Outcome {
    let state_of = |i: u8| states.get(i as usize % states.len().max(1)).cloned();
    let cores = m.cores() as u64;
    match op {
        Op::Create { set, init } => {
            let name = Scenario::set_name(*set);
            let init: Vec<StateInit> = match init {
                None => vec![StateInit::Zeros],
                Some(seed) => (0..cores)
                    .map(|k| StateInit::Values(values_for(sig, seed.wrapping_add(k))))
                    .collect(),
            };
            let r = m.create_state_set(&name, &init);
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
            let core = (*seed % cores) as usize;
            outcome(
                m.core(core)
                    .write_state(&Scenario::set_name(*set), &st, off, &data),
                |_| vec![],
            )
        }
        Op::Read { set, state, range } => {
            let Some(st) = state_of(*state) else {
                return Outcome::Ok(vec![]);
            };
            let (off, len) = scenario::state_byte_range(sig, &st, *range);
            let read = (0..m.cores())
                .map(|k| {
                    let mut buf = vec![0u8; len as usize];
                    m.core(k)
                        .read_state(&Scenario::set_name(*set), &st, off, &mut buf)
                        .map(|()| buf)
                })
                .collect::<statetensor_core::Result<Vec<_>>>();
            outcome(read, |bufs| bufs)
        }
        Op::Execute { set, seed, .. } => {
            let inputs: Vec<_> = (0..cores)
                .map(|k| inputs_for(sig, seed.wrapping_add(k)))
                .collect();
            outcome(m.execute(&Scenario::set_name(*set), &inputs), |outs| {
                outs.into_iter().flatten().map(|h| h.data).collect()
            })
        }
        Op::Reset { .. } | Op::Snapshot { .. } | Op::FileRoundTrip { .. } | Op::Drop { .. } => {
            apply_set_op(m, op, live)
        }
    }
}
