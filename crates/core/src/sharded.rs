//! The `ShardedModel` trait: one SPMD model run by several NeuronCores at once.
//!
//! A tensor-parallel model is one program every core runs on its own parameters — its
//! shard of the weights and of the state — meeting the others at collectives. Each core is
//! a [`StatefulModel`] on its own device (its own HBM, its own ledger, its own state
//! sets), reached with [`ShardedModel::core`] for what one core does alone (reading or
//! writing its shard, its ledger and memory); an execute runs every core together, which
//! only [`ShardedModel::execute`] can do. A state set of a sharded model is one set of
//! that name on every core (one shard each), created and dropped on all of them or on
//! none.

use crate::{Error, HostTensor, MemoryReport, Result, StateInit, StatefulModel, TransferLedger};

/// A model run by several cores at once, each holding its shard.
pub trait ShardedModel: Send + Sync {
    /// The backend's name (`sim`, `nrt`).
    fn backend(&self) -> &str;

    /// The number of cores.
    fn cores(&self) -> usize;

    /// Core `k`'s model: its signature (every core's is the same), its shard of each
    /// state, its ledger and memory. Its own `execute` refuses to run alone.
    fn core(&self, k: usize) -> &dyn StatefulModel;

    /// Runs one step on every core at once on state set `set`: `inputs[k]` are core k's
    /// non-state parameters in order; returns each core's non-state outputs in order. The
    /// inputs of every core are checked before any core starts; a core that fails stops
    /// the others, and every core's set is then poisoned.
    fn execute(&self, set: &str, inputs: &[Vec<HostTensor>]) -> Result<Vec<Vec<HostTensor>>>;

    /// Creates state set `set` on every core (`init[k]` core k's initial values; one value
    /// for all when `init` has one), or on none: a core that fails — out of its memory,
    /// say — is named in the error and the set is dropped from the cores before it.
    fn create_state_set(&self, set: &str, init: &[StateInit]) -> Result<()> {
        if init.len() != 1 && init.len() != self.cores() {
            return Err(Error::invalid_input(
                format!("create state set '{set}'"),
                format!(
                    "{} initial values for {} cores: give one for all or one per core",
                    init.len(),
                    self.cores()
                ),
            ));
        }
        let existed: Vec<bool> = (0..self.cores())
            .map(|k| self.core(k).has_state_set(set))
            .collect();
        for k in 0..self.cores() {
            let value = init.get(k).unwrap_or(&init[0]).clone();
            if let Err(e) = self.core(k).create_state_set(set, value) {
                // undo only what this call created; a set that was there is kept
                for done in (0..k).filter(|&d| !existed[d]) {
                    let _ = self.core(done).drop_state_set(set);
                }
                return Err(e.on_core(k));
            }
        }
        Ok(())
    }

    /// Drops state set `set` from every core.
    fn drop_state_set(&self, set: &str) -> Result<()> {
        each_core(self, |m| m.drop_state_set(set))
    }

    /// Resets state set `set` on every core.
    fn reset(&self, set: &str) -> Result<()> {
        each_core(self, |m| m.reset(set))
    }

    /// Copies state set `from` into `to` on every core (each core its own shard).
    fn copy_state_set(&self, from: &str, to: &str) -> Result<()> {
        each_core(self, |m| m.copy_state_set(from, to))
    }

    /// Every core's ledger, in core order.
    fn ledgers(&self) -> Vec<TransferLedger> {
        (0..self.cores()).map(|k| self.core(k).ledger()).collect()
    }

    /// Every core's memory, in core order.
    fn memories(&self) -> Vec<MemoryReport> {
        (0..self.cores()).map(|k| self.core(k).memory()).collect()
    }
}

/// Runs `op` on every core in order, stopping at the first failure (named by its core).
fn each_core<M: ShardedModel + ?Sized>(
    m: &M,
    op: impl Fn(&dyn StatefulModel) -> Result<()>,
) -> Result<()> {
    for k in 0..m.cores() {
        op(m.core(k)).map_err(|e| e.on_core(k))?;
    }
    Ok(())
}

/// Checks `inputs` holds one list per core, each what core 0's signature takes, before any
/// core starts (every core runs the same program).
pub fn check_sharded_inputs(m: &dyn ShardedModel, inputs: &[Vec<HostTensor>]) -> Result<()> {
    if inputs.len() != m.cores() {
        return Err(Error::invalid_input(
            "execute",
            format!(
                "inputs for {} cores given to a model run by {}",
                inputs.len(),
                m.cores()
            ),
        ));
    }
    let sig = m.core(0).signature();
    for (k, i) in inputs.iter().enumerate() {
        sig.check_inputs(i).map_err(|e| e.on_core(k))?;
    }
    Ok(())
}
