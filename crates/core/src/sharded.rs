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
//!
//! The helpers below are what every backend's sharded model shares: one load option per
//! core or one for all, every core binding the same roles, a step's set locked on every
//! core before any core starts ([`lock_every_core`]) and poisoned on every core when any
//! core fails ([`settle_step`]) — a step that some cores committed and others did not
//! leaves the shards out of step with each other, which only a reset or restore mends.

use crate::{
    lock_state_set, Error, HostTensor, LoadOptions, MemoryReport, Result, StateInit, StateSet,
    StateSetHandle, StatefulModel, TransferLedger,
};
use std::sync::MutexGuard;

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

    /// Drops state set `set` from every core; a set missing on any core is refused before
    /// any core drops it.
    fn drop_state_set(&self, set: &str) -> Result<()> {
        require_on_every_core(self, &format!("drop state set '{set}'"), set)?;
        each_core(self, |m| m.drop_state_set(set))
    }

    /// Resets state set `set` on every core; a set missing on any core is refused before
    /// any core is reset.
    fn reset(&self, set: &str) -> Result<()> {
        require_on_every_core(self, &format!("reset state set '{set}'"), set)?;
        each_core(self, |m| m.reset(set))
    }

    /// Copies state set `from` into `to` on every core (each core its own shard): `from`
    /// missing on any core is refused before any copy, and a core that fails — out of its
    /// memory for a new `to`, say — is named, with `to` dropped from the cores before it
    /// where this call created it (a `to` that existed there keeps the copied shards).
    fn copy_state_set(&self, from: &str, to: &str) -> Result<()> {
        require_on_every_core(self, &format!("copy state set '{from}' to '{to}'"), from)?;
        let existed: Vec<bool> = (0..self.cores())
            .map(|k| self.core(k).has_state_set(to))
            .collect();
        for k in 0..self.cores() {
            if let Err(e) = self.core(k).copy_state_set(from, to) {
                for done in (0..k).filter(|&d| !existed[d]) {
                    let _ = self.core(done).drop_state_set(to);
                }
                return Err(e.on_core(k));
            }
        }
        Ok(())
    }

    /// State `state` of set `set` whole: every core's shard read and gathered along
    /// `axis` (core k's shard the k-th block, as [`crate::sharding::gather_along`]).
    fn read_state_gathered(&self, set: &str, state: &str, axis: usize) -> Result<HostTensor> {
        let sig = self.core(0).signature();
        let spec = &sig.params[sig.state_param(&format!("read state '{state}'"), state)?];
        let shards = on_every_core((0..self.cores()).map(|k| self.core(k)), |core| {
            let mut buf = Vec::new();
            core.read_state_to(set, state, &mut buf)?;
            HostTensor::new(spec.dtype, spec.shape.dims(), buf)
        })?;
        crate::sharding::gather_along(&shards, axis)
    }

    /// Writes state `state` of set `set` whole: `value` split along `axis` into one shard
    /// per core (core k the k-th block). Its type and shape — each shard's shape with
    /// `axis` times the core count — and the set on every core are checked before any
    /// core is written, and every core's shard is read first: a core whose write fails
    /// (its set busy, say) is named and the cores before it get their old shards back.
    fn write_state_split(
        &self,
        set: &str,
        state: &str,
        axis: usize,
        value: &HostTensor,
    ) -> Result<()> {
        let op = format!("write state '{state}' of '{set}' split along axis {axis}");
        let sig = self.core(0).signature();
        let spec = &sig.params[sig.state_param(&op, state)?];
        let mut whole = spec.shape.dims().to_vec();
        if axis >= whole.len() {
            return Err(Error::invalid_input(
                &op,
                format!(
                    "state '{state}' is {}, which has {} axes",
                    spec.type_string(),
                    whole.len()
                ),
            ));
        }
        whole[axis] *= self.cores();
        if value.dtype != spec.dtype || value.shape.dims() != whole {
            return Err(Error::invalid_input(
                &op,
                format!(
                    "each core's shard is {}, so the whole state is {}{:?} on {} cores; got {}",
                    spec.type_string(),
                    spec.dtype,
                    whole,
                    self.cores(),
                    value.type_string()
                ),
            ));
        }
        require_on_every_core(self, &op, set)?;
        let shards = crate::sharding::split_along(value, axis, self.cores())?;
        let old = on_every_core((0..self.cores()).map(|k| self.core(k)), |core| {
            let mut buf = Vec::new();
            core.read_state_to(set, state, &mut buf).map(|_| buf)
        })?;
        for (k, shard) in shards.iter().enumerate() {
            if let Err(e) = self.core(k).write_state(set, state, 0, &shard.data) {
                for (done, buf) in old.iter().enumerate().take(k) {
                    let _ = self.core(done).write_state(set, state, 0, buf);
                }
                return Err(e.on_core(k));
            }
        }
        Ok(())
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

/// Refuses `op` when state set `set` is missing on any core, naming the first.
fn require_on_every_core<M: ShardedModel + ?Sized>(m: &M, op: &str, set: &str) -> Result<()> {
    match (0..m.cores()).find(|&k| !m.core(k).has_state_set(set)) {
        Some(k) => Err(Error::NotFound {
            op: format!("core {k}: {op}"),
            what: "state set".into(),
            name: set.into(),
            hint: " (a sharded state set lives on every core)".into(),
        }),
        None => Ok(()),
    }
}

/// `f` of every core's item (core k's the k-th), in order, stopping at the first failure,
/// which is named by its core ([`Error::on_core`]).
pub fn on_every_core<T, U>(
    items: impl IntoIterator<Item = T>,
    mut f: impl FnMut(T) -> Result<U>,
) -> Result<Vec<U>> {
    (items.into_iter().enumerate())
        .map(|(k, item)| f(item).map_err(|e| e.on_core(k)))
        .collect()
}

/// Runs `op` on every core in order, stopping at the first failure (named by its core).
fn each_core<M: ShardedModel + ?Sized>(
    m: &M,
    op: impl Fn(&dyn StatefulModel) -> Result<()>,
) -> Result<()> {
    on_every_core((0..m.cores()).map(|k| m.core(k)), op).map(drop)
}

/// Core `k`'s load options: `opts[k]` when there is one per core, else the one for all.
/// Any other count is refused.
pub fn core_options(opts: &[LoadOptions], cores: usize) -> Result<Vec<&LoadOptions>> {
    if opts.is_empty() || (opts.len() != 1 && opts.len() != cores) {
        return Err(Error::invalid_input(
            "load",
            format!(
                "{} sets of load options for {cores} cores: give one for all or one per core",
                opts.len()
            ),
        ));
    }
    Ok((0..cores)
        .map(|k| opts.get(k).unwrap_or(&opts[0]))
        .collect())
}

/// Checks every core binds the same roles as core 0: one program, the same alias map,
/// names and weights (only the weights' values differ between cores).
pub fn check_same_roles<M: StatefulModel>(models: &[M]) -> Result<()> {
    let Some(first) = models.first().map(|m| m.signature()) else {
        return Ok(());
    };
    match models.iter().position(|m| m.signature() != first) {
        Some(k) => Err(Error::invalid_input(
            "load",
            format!("core {k}'s alias map, names or weights differ from core 0's; every core runs the same program with the same roles"),
        )),
        None => Ok(()),
    }
}

/// Locks state set `set` on every core for one step, before any core starts: a set
/// missing, busy or poisoned on any core refuses the step (naming the core) with nothing
/// run and nothing poisoned. `handles[k]` is core k's set, found with its error named.
pub fn lock_every_core<'a, B, I>(
    op: &str,
    set: &str,
    handles: &'a [StateSetHandle<B, I>],
) -> Result<Vec<MutexGuard<'a, StateSet<B, I>>>> {
    on_every_core(handles, |h| lock_state_set(op, set, h, false))
}

/// The outcome of a step every core ran with its set locked (`guards`): every core's
/// results, or — when any core failed — the failing core's own error (not one the others
/// report because it stopped them, which `stopped_by_another` recognises), with the set
/// poisoned on every core.
pub fn settle_step<T, B, I>(
    outcomes: Vec<Result<T>>,
    guards: &mut [MutexGuard<'_, StateSet<B, I>>],
    what: &str,
    stopped_by_another: impl Fn(usize, &Error) -> bool,
) -> Result<Vec<T>> {
    if outcomes.iter().all(|o| o.is_ok()) {
        return Ok(outcomes.into_iter().flatten().collect());
    }
    let mut first = None;
    let mut own = None;
    for (k, o) in outcomes.into_iter().enumerate() {
        if let Err(e) = o {
            if own.is_none() && !stopped_by_another(k, &e) {
                own = Some(e.on_core(k));
            } else if first.is_none() {
                first = Some(e.on_core(k));
            }
        }
    }
    let e = own.or(first).expect("some core failed");
    for g in guards.iter_mut() {
        if g.poisoned.is_none() {
            g.poisoned = Some(format!(
                "{what} (the cores no longer hold one step's shards)"
            ));
        }
    }
    Err(e)
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
    on_every_core(inputs, |i| sig.check_inputs(i)).map(drop)
}
