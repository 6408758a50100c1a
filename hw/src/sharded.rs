//! An SPMD model on several NeuronCores through libnrt: one [`NrtModel`] per core, each
//! loaded with `nrt_load_collectives` (its global device id and the device count, so the
//! runtime connects their collectives) on its own [`NrtDevice`], executed together.
//!
//! Design choices:
//! - **Core k is device id k on NeuronCore k** (numbered among the visible cores), as NxD
//!   places the ranks of one tensor-parallel model on the cores of one instance.
//! - **One load at a time.** The cores of one model are loaded while a process-wide lock
//!   is held, so two models loading at once on other threads cannot interleave their ranks
//!   (a runtime pairs up the ranks of one program in the order they load).
//! - **Nothing runs unless every core can.** A step locks its state set on every core,
//!   binds every core's tensors and writes every core's inputs before any core calls
//!   `nrt_execute`: a core that cannot would leave the others waiting at their first
//!   collective until the runtime's timeout. Then every core executes on its own thread;
//!   when one fails, the runtime stops the others (`NRT_EXEC_HW_ERR_COLLECTIVES`), the
//!   failing core's own error is reported and the set is poisoned on every core.

use crate::device::lock;
use crate::model::NrtModel;
use crate::result::model::Collective;
use crate::sys::NRT_EXEC_HW_ERR_COLLECTIVES;
use crate::NrtDevice;
use statetensor_core::{
    check_same_roles, check_sharded_inputs, core_options, lock_every_core, on_every_core,
    settle_step, Error, HostTensor, LoadOptions, Result, ShardedModel, StatefulModel,
};
use statetensor_hlo::Bundle;
use std::sync::Mutex;

/// A model run by several NeuronCores through libnrt.
pub struct NrtShardedModel {
    cores: Vec<NrtModel>,
}

impl std::fmt::Debug for NrtShardedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NrtShardedModel({} cores)", self.cores.len())
    }
}

/// Held while the cores of one model load.
static LOADING: Mutex<()> = Mutex::new(());

impl NrtShardedModel {
    /// Loads `bundle` on NeuronCores 0..`cores` of the libnrt at `library` (or the usual
    /// search), core k as device k of `cores`; `opts[k]` is core k's (its shard of each
    /// weight), or one for all, applied as [`NrtModel::load`] applies them. The module's
    /// collectives are checked against the core count first; a core that cannot load is
    /// named in the error, and the cores loaded before it are unloaded.
    pub fn load(
        library: Option<&str>,
        bundle: &Bundle,
        opts: &[LoadOptions],
        cores: usize,
    ) -> Result<NrtShardedModel> {
        bundle.program().topology(cores)?;
        let opts = core_options(opts, cores)?;
        let devices = u32::try_from(cores)
            .map_err(|_| Error::invalid_input("load", format!("{cores} cores")))?;
        let _one_at_a_time = lock(&LOADING);
        let models = on_every_core((0..devices).zip(opts), |(k, o)| {
            let device = NrtDevice::open_core(library, k)?;
            let seat = Collective { device: k, devices };
            NrtModel::load_as(&device, bundle, o, Some(seat))
        })?;
        check_same_roles(&models)?;
        Ok(NrtShardedModel { cores: models })
    }

    /// Core `k`'s driver model (its NEFF I/O names, its device), if there is a core `k`.
    pub fn nrt_core(&self, k: usize) -> Option<&NrtModel> {
        self.cores.get(k)
    }
}

impl Drop for NrtShardedModel {
    fn drop(&mut self) {
        // unloading under the same lock as loading: another model of the same program
        // loading meanwhile must not take some of these cores' places among its ranks
        let _one_at_a_time = lock(&LOADING);
        self.cores.clear();
    }
}

impl ShardedModel for NrtShardedModel {
    fn backend(&self) -> &str {
        "nrt"
    }

    fn cores(&self) -> usize {
        self.cores.len()
    }

    fn core(&self, k: usize) -> &dyn StatefulModel {
        &self.cores[k]
    }

    fn execute(&self, set: &str, inputs: &[Vec<HostTensor>]) -> Result<Vec<Vec<HostTensor>>> {
        check_sharded_inputs(self, inputs)?;
        let op = format!("execute on state set '{set}'");
        let handles = on_every_core(&self.cores, |c| c.state_set(&op, set))?;
        let mut guards = lock_every_core(&op, set, &handles)?;
        // every core bound and its inputs written before any core executes
        let bindings = on_every_core(
            self.cores.iter().zip(&handles).zip(&guards),
            |((c, h), g)| c.binding(set, h, g),
        )?;
        let mut bound = on_every_core(&bindings, |b| {
            statetensor_core::lock_exclusive(&op, &format!("state set '{set}'"), b)
        })?;
        on_every_core(self.cores.iter().zip(&bound).zip(inputs), |((c, b), i)| {
            c.write_inputs(b, i)
        })?;
        let outcomes = std::thread::scope(|scope| {
            let running: Vec<_> = (self.cores.iter())
                .zip(bound.iter_mut().map(|b| &**b))
                .zip(guards.iter_mut().map(|g| &mut **g))
                .map(|((c, b), g)| scope.spawn(move || c.run_bound(b, g)))
                .collect();
            running
                .into_iter()
                .enumerate()
                .map(|(k, r)| {
                    r.join().unwrap_or_else(|_| {
                        Err(Error::runtime(
                            "execute",
                            format!("core {k}: internal error: its thread panicked"),
                        ))
                    })
                })
                .collect::<Vec<_>>()
        });
        settle_step(
            outcomes,
            &mut guards,
            &op,
            |_, e| matches!(e, Error::Runtime { status: Some(s), .. } if *s == NRT_EXEC_HW_ERR_COLLECTIVES as i64),
        )
    }
}
