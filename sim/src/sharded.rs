//! An SPMD model on N simulated NeuronCores: one [`SimModel`] per core, each on its own
//! [`SimDevice`] (its own HBM capacity, state sets and ledger), executed together — every
//! core on its own thread, meeting the others at the collectives — with each collective
//! charged to the core's ledger by the profile's NeuronLink model
//! ([`DeviceProfile::collective_cost`]).

use crate::{DeviceProfile, SimDevice, SimModel};
use statetensor_core::{
    check_same_roles, check_sharded_inputs, core_options, lock_every_core, on_every_core,
    settle_step, HostTensor, LoadOptions, Result, ShardedModel, StatefulModel,
};
use statetensor_hlo::collective::{run_cores, Communicator, Topology, DEFAULT_COLLECTIVE_TIMEOUT};
use statetensor_hlo::{Program, Tensor};
use std::sync::Arc;
use std::time::Duration;

/// A model run by several simulated cores.
#[derive(Debug)]
pub struct SimShardedModel {
    cores: Vec<SimModel>,
    topology: Topology,
    timeout: Duration,
}

impl SimShardedModel {
    /// Loads `program` on `cores` fresh cores of `profile`; `opts[k]` is core k's (its alias
    /// map and its shard of each weight), or one for all. A core that cannot load — its
    /// weights do not fit its memory, say — is named in the error.
    pub fn load(
        profile: &DeviceProfile,
        program: Arc<Program>,
        opts: &[LoadOptions],
        cores: usize,
    ) -> Result<SimShardedModel> {
        let topology = program.topology(cores)?;
        let models = on_every_core(
            core_options(opts, cores)?.into_iter().enumerate(),
            |(k, o)| {
                let device = SimDevice::new(profile.clone());
                SimModel::for_core(&device, program.clone(), o, k, topology)
            },
        )?;
        check_same_roles(&models)?;
        Ok(SimShardedModel {
            cores: models,
            topology,
            timeout: DEFAULT_COLLECTIVE_TIMEOUT,
        })
    }

    /// How the cores are numbered (replicas × partitions).
    pub fn topology(&self) -> Topology {
        self.topology
    }

    /// Core `k`'s simulated model (its device, program, footprint).
    pub fn sim_core(&self, k: usize) -> &SimModel {
        &self.cores[k]
    }
}

impl ShardedModel for SimShardedModel {
    fn backend(&self) -> &str {
        "sim"
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
        let tensors = on_every_core(inputs, |i| {
            i.iter()
                .map(|h| Tensor::from_le_bytes(h.dtype, h.shape.dims(), &h.data).map(Arc::new))
                .collect::<Result<Vec<_>>>()
        })?;
        let comm = Communicator::new(self.cores.len(), self.timeout);
        let work = tensors.into_iter().zip(guards.iter_mut().map(|g| &mut **g));
        let outcomes = run_cores(&comm, work.collect(), |k, (t, g), comm| {
            self.cores[k].execute_on_core(&op, g, &t, comm)
        });
        // the failing core's own error first: the others only say they were stopped
        settle_step(outcomes, &mut guards, &op, |k, _| {
            comm.failed_core() != Some(k)
        })
    }
}
