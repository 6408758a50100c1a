//! An SPMD model on N simulated NeuronCores: one [`SimModel`] per core, each on its own
//! [`SimDevice`] (its own HBM capacity, state sets and ledger), executed together — every
//! core on its own thread, meeting the others at the collectives — with each collective
//! charged to the core's ledger by the profile's NeuronLink model
//! ([`DeviceProfile::collective_cost`]).

use crate::{DeviceProfile, SimDevice, SimModel};
use statetensor_core::{
    check_sharded_inputs, Error, HostTensor, LoadOptions, Result, ShardedModel, StatefulModel,
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
        if opts.len() != 1 && opts.len() != cores {
            return Err(Error::invalid_input(
                "load",
                format!(
                    "{} sets of load options for {cores} cores: give one for all or one per core",
                    opts.len()
                ),
            ));
        }
        let models = (0..cores)
            .map(|k| {
                let device = SimDevice::new(profile.clone());
                let o = opts.get(k).unwrap_or(&opts[0]);
                SimModel::for_core(&device, program.clone(), o, k, topology)
                    .map_err(|e| e.on_core(k))
            })
            .collect::<Result<Vec<_>>>()?;
        // one program: every core must bind the same roles (only weights' values differ)
        let first = models[0].signature();
        if let Some(k) = models.iter().position(|m| m.signature() != first) {
            return Err(Error::invalid_input(
                "load",
                format!("core {k}'s alias map, names or weights differ from core 0's; every core runs the same program with the same roles"),
            ));
        }
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
        // a core without the set would fail alone while the others ran on
        if let Some(k) = (0..self.cores.len()).find(|&k| !self.cores[k].has_state_set(set)) {
            return Err(Error::NotFound {
                op: format!("core {k}: execute"),
                what: "state set".into(),
                name: set.into(),
                hint: String::new(),
            });
        }
        let tensors = inputs
            .iter()
            .map(|i| {
                i.iter()
                    .map(|h| Tensor::from_le_bytes(h.dtype, h.shape.dims(), &h.data).map(Arc::new))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let comm = Communicator::new(self.cores.len(), self.timeout);
        let outcomes = run_cores(&comm, tensors, |k, t, comm| {
            self.cores[k].execute_on_core(set, &t, comm)
        });
        // the failing core's own error first: the others only say they were stopped
        let mut results = Vec::with_capacity(outcomes.len());
        let mut stopped = None;
        for (k, o) in outcomes.into_iter().enumerate() {
            match o {
                Ok(r) => results.push(r),
                Err(e)
                    if comm
                        .aborted()
                        .is_some_and(|why| why.starts_with(&format!("core {k} failed"))) =>
                {
                    return Err(e.on_core(k))
                }
                Err(e) => {
                    stopped.get_or_insert(e.on_core(k));
                }
            }
        }
        match stopped {
            Some(e) => Err(e),
            None => Ok(results),
        }
    }
}
