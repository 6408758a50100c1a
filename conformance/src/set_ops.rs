//! The operations a scenario applies alike to a model on one core and to one run by
//! several: reset, copy to another set, save to a file and load into another, drop. One
//! arm per operation serves both runners, so a sharded scenario means what a one-core one
//! means.

use crate::scenario::{Op, Scenario};
use crate::trace::{outcome, Outcome};
use statetensor_core::{snapshot, Result, ShardedModel, StatefulModel};
use std::collections::BTreeSet;

/// A model's whole-set operations (on a sharded model each acts on every core).
pub(crate) trait SetOps {
    fn reset_set(&self, set: &str) -> Result<()>;
    fn copy_set(&self, from: &str, to: &str) -> Result<()>;
    /// Saves `from` to a snapshot file (in memory) and loads the file into `to`.
    fn file_round_trip(&self, from: &str, to: &str) -> Result<()>;
    fn drop_set(&self, set: &str) -> Result<()>;
}

impl SetOps for dyn StatefulModel + '_ {
    fn reset_set(&self, set: &str) -> Result<()> {
        self.reset(set)
    }
    fn copy_set(&self, from: &str, to: &str) -> Result<()> {
        self.copy_state_set(from, to)
    }
    fn file_round_trip(&self, from: &str, to: &str) -> Result<()> {
        let mut file = Vec::new();
        snapshot::save_state_set(self, from, &mut file)?;
        snapshot::load_state_set(self, to, &mut file.as_slice(), "snapshot")
    }
    fn drop_set(&self, set: &str) -> Result<()> {
        self.drop_state_set(set)
    }
}

impl SetOps for dyn ShardedModel + '_ {
    fn reset_set(&self, set: &str) -> Result<()> {
        self.reset(set)
    }
    fn copy_set(&self, from: &str, to: &str) -> Result<()> {
        self.copy_state_set(from, to)
    }
    fn file_round_trip(&self, from: &str, to: &str) -> Result<()> {
        let mut file = Vec::new();
        snapshot::save_sharded_state_set(self, from, &mut file)?;
        snapshot::load_sharded_state_set(self, to, &mut file.as_slice(), "snapshot")
    }
    fn drop_set(&self, set: &str) -> Result<()> {
        self.drop_state_set(set)
    }
}

/// Applies `op`, one of the whole-set operations, keeping `live` (the sets that exist) up
/// to date. The runners apply the other operations their own way and never pass them.
pub(crate) fn apply_set_op<M: SetOps + ?Sized>(
    m: &M,
    op: &Op,
    live: &mut BTreeSet<String>,
) -> Outcome {
    let r = match op {
        Op::Reset { set } => m.reset_set(&Scenario::set_name(*set)),
        Op::Snapshot { from, to } | Op::FileRoundTrip { from, to } => {
            let (f, t) = (Scenario::set_name(*from), Scenario::set_name(*to));
            let r = if matches!(op, Op::Snapshot { .. }) {
                m.copy_set(&f, &t)
            } else {
                m.file_round_trip(&f, &t)
            };
            if r.is_ok() {
                live.insert(t);
            }
            r
        }
        Op::Drop { set } => {
            let name = Scenario::set_name(*set);
            let r = m.drop_set(&name);
            if r.is_ok() {
                live.remove(&name);
            }
            r
        }
        Op::Create { .. } | Op::Write { .. } | Op::Read { .. } | Op::Execute { .. } => {
            unreachable!("{op:?} is not a whole-set operation")
        }
    };
    outcome(r, |()| vec![])
}
