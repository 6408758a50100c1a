//! What a program needs to know to run on several cores: how N cores split into replicas
//! and partitions, whether every collective's groups exist on them, and where its
//! collectives are (for `inspect`).

use super::{GroupMode, Topology};
use crate::ir::{DeviceCounts, Module};
use crate::plan::{CompPlan, Form, Op};
use statetensor_core::{Error, Result};

/// What the planner found about a program's collectives.
#[derive(Clone, Debug, Default)]
pub(crate) struct SpmdFacts {
    /// The header's counts.
    pub devices: DeviceCounts,
    /// The program reads `partition-id` or has a collective over partitions (what SPMD
    /// partitioners write), so a header-less module's cores are partitions.
    pub partitioned: bool,
    /// Every collective, in module order.
    pub sites: Vec<CollectiveSite>,
    /// The fewest cores the groups name.
    pub min_cores: usize,
}

/// One collective instruction as the module writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectiveSite {
    /// The computation holding it.
    pub computation: String,
    /// The instruction's name.
    pub instruction: String,
    /// Its opcode (`all-reduce`, `all-gather-start`, ...).
    pub opcode: String,
    /// Its `replica_groups` (or `source_target_pairs`) as written; `{}` when absent.
    pub groups: String,
    /// How the ids in the groups are read: `replica`, `partition`, `replica×partition`,
    /// `device`.
    pub ids: &'static str,
}

impl SpmdFacts {
    pub(crate) fn of(module: &Module, plans: &[Option<CompPlan>]) -> SpmdFacts {
        let mut facts = SpmdFacts {
            devices: module.devices,
            min_cores: 1,
            ..SpmdFacts::default()
        };
        for (c, plan) in plans.iter().enumerate() {
            let Some(plan) = plan else { continue };
            let comp = &module.computations[c];
            for step in &plan.steps {
                let mode = match &step.op {
                    Op::PartitionId => {
                        facts.partitioned = true;
                        continue;
                    }
                    Op::Collective(p) => match &p.form {
                        Form::Permute(pairs) => {
                            let most = pairs
                                .pairs
                                .iter()
                                .map(|&(s, t)| s.max(t).saturating_add(1))
                                .max();
                            facts.min_cores = facts.min_cores.max(most.unwrap_or(1));
                            pairs.mode
                        }
                        _ => {
                            facts.min_cores = facts.min_cores.max(p.groups.min_ids());
                            p.groups.mode
                        }
                    },
                    _ => continue,
                };
                if mode != GroupMode::CrossReplica {
                    facts.partitioned = true;
                }
                let Some(instr) = comp
                    .instrs
                    .iter()
                    .find(|i| i.name == step.name || i.written_name() == step.name)
                else {
                    continue;
                };
                let groups = instr
                    .attr("replica_groups")
                    .or_else(|| instr.attr("source_target_pairs"))
                    .map_or("{}".to_string(), |a| a.value.clone());
                facts.sites.push(CollectiveSite {
                    computation: comp.name.clone(),
                    instruction: instr.name.clone(),
                    opcode: instr.opcode.clone(),
                    groups,
                    ids: match mode {
                        GroupMode::CrossReplica => "replica",
                        GroupMode::CrossPartition => "partition",
                        GroupMode::CrossReplicaAndPartition => "replica×partition",
                        GroupMode::FlattenedId => "device",
                    },
                });
            }
        }
        facts
    }

    /// How `cores` cores split into replicas and partitions: as the header says when it
    /// gives `num_partitions` or `replica_count` (the other count is what is left), else
    /// all partitions for a partitioned program and all replicas otherwise.
    pub(crate) fn topology(&self, cores: usize) -> Result<Topology> {
        let bad = |m: String| Err(Error::invalid_input("run on several cores", m));
        if cores == 0 {
            return bad("the number of cores must be at least 1".into());
        }
        let spmd = self.partitioned || !self.sites.is_empty();
        if cores == 1 && !(spmd && self.compiled_cores() > 1) {
            // one core runs any module whose groups all resolve to it (checked next), and
            // a module compiled for several that has no collective and reads no partition
            return Ok(Topology::SINGLE);
        }
        let DeviceCounts {
            replica_count,
            num_partitions,
        } = self.devices;
        let topo = match (replica_count, num_partitions) {
            (Some(r), Some(p)) if r.checked_mul(p) == Some(cores) => Topology {
                replicas: r,
                partitions: p,
            },
            (Some(r), Some(p)) => {
                return bad(format!(
                    "the module was compiled for replica_count={r} × num_partitions={p} = {} cores, not {cores}",
                    r.saturating_mul(p)
                ))
            }
            (_, Some(p)) if p > 1 && cores % p == 0 => Topology {
                replicas: cores / p,
                partitions: p,
            },
            (Some(r), _) if r > 1 && cores % r == 0 => Topology {
                replicas: r,
                partitions: cores / r,
            },
            (None, Some(p)) if p > 1 => {
                return bad(format!(
                    "the module was compiled for num_partitions={p}; run it on a multiple of {p} cores, not {cores}"
                ))
            }
            (Some(r), None) if r > 1 => {
                return bad(format!(
                    "the module was compiled for replica_count={r}; run it on a multiple of {r} cores, not {cores}"
                ))
            }
            _ if self.partitioned => Topology {
                replicas: 1,
                partitions: cores,
            },
            _ => Topology {
                replicas: cores,
                partitions: 1,
            },
        };
        Ok(topo)
    }

    /// The number of cores the header asks for (1 when it says nothing).
    pub(crate) fn compiled_cores(&self) -> usize {
        self.devices
            .replica_count
            .unwrap_or(1)
            .saturating_mul(self.devices.num_partitions.unwrap_or(1))
    }
}

/// Checks that every collective's groups resolve on every core of `topo` and have the size
/// its shapes need, so a step never fails half way for a reason known before it starts.
pub(crate) fn check_groups(plans: &[Option<CompPlan>], topo: Topology) -> Result<()> {
    for plan in plans.iter().flatten() {
        for step in &plan.steps {
            let Op::Collective(p) = &step.op else {
                continue;
            };
            let fail = |m: String| {
                Err(Error::invalid_input(
                    "run on several cores",
                    format!("{} (line {}) in {}: {m}", step.name, step.line, plan.name),
                ))
            };
            for core in 0..topo.cores() {
                let group = match &p.form {
                    Form::Permute(pairs) => match pairs.route(core, topo) {
                        Ok((set, _)) => set,
                        Err(m) => return fail(m),
                    },
                    _ => match p.groups.participants(core, topo) {
                        Ok(g) => g,
                        Err(m) => return fail(m),
                    },
                };
                let size = group.len();
                if let Some(need) = p.group_size {
                    if need != size {
                        return fail(format!(
                            "its shapes need groups of {need} cores, but on {topo} core {core}'s group has {size}"
                        ));
                    }
                }
                let split = match &p.form {
                    Form::AllToAll { dim: Some(d) } => Some(*d),
                    _ => None,
                };
                if let (Some(d), Some(x)) = (split, p.results.first()) {
                    if x.dims[d] % size != 0 {
                        return fail(format!(
                            "dimension {d} of {x} does not split into {size} equal blocks, one per core of its group"
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}
