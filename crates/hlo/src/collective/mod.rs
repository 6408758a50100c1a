//! SPMD execution: one module run by several simulated NeuronCores, which meet at its
//! collectives.
//!
//! A module partitioned for N devices — what JAX compiles from a `shard_map` or `pjit`
//! step over N devices (its header says `num_partitions=N`), or what torch-xla and NxD
//! compile for each rank — is one program that every core runs on its own parameters.
//! Each core runs it on its own thread; at a collective (`all-reduce`, `all-gather`,
//! `reduce-scatter`, `all-to-all`, `collective-permute`, `collective-broadcast`, and the
//! async `-start`/`-done` pairs) the members of its group exchange operands through a
//! [`Communicator`] and each computes its result from all of them. `replica-id` and
//! `partition-id` read the core's coordinates in the [`Topology`].
//!
//! Results follow XLA's semantics (groups, modes and orders in [`groups`](self)); integer
//! reductions are exact, so they equal XLA's bit for bit. **Float reductions** combine the
//! members' operands left to right in the order the group lists them (`((x0 + x1) + x2) +
//! ...`), evaluated the same way on every member, so every core of a group holds the same
//! bits; XLA's CPU and Neuron's collectives may associate differently (a ring all-reduce
//! sums in ring order), so float results agree with theirs to rounding, not bit for bit.
//!
//! An async `-start` does the whole collective and its `-done` hands the result on:
//! nothing overlaps on a simulated core, and a program's results do not depend on what
//! overlaps.

mod groups;
mod rendezvous;
mod spmd;

pub(crate) use groups::{parse_replica_groups, DeviceGroups, GroupMode, PermutePairs};
pub(crate) use rendezvous::Contribution;
pub use rendezvous::{Communicator, DEFAULT_COLLECTIVE_TIMEOUT};
pub use spmd::CollectiveSite;
pub(crate) use spmd::{check_groups, SpmdFacts};

use std::fmt;

/// How the cores of an SPMD run are numbered: `replicas × partitions` cores, core `k`
/// being replica `k / partitions`, partition `k % partitions` (XLA's flattened device id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Replicas (`replica_count`).
    pub replicas: usize,
    /// Partitions per replica (`num_partitions`).
    pub partitions: usize,
}

impl Topology {
    /// One core.
    pub const SINGLE: Topology = Topology {
        replicas: 1,
        partitions: 1,
    };

    /// The number of cores.
    pub fn cores(self) -> usize {
        self.replicas * self.partitions
    }

    /// (replica, partition) of core `core`.
    pub fn coordinates(self, core: usize) -> (usize, usize) {
        (core / self.partitions, core % self.partitions)
    }

    /// The core of (replica, partition).
    pub fn core(self, replica: usize, partition: usize) -> usize {
        replica * self.partitions + partition
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cores = self.cores();
        write!(
            f,
            "{cores} core{} ({} replica{} × {} partition{})",
            if cores == 1 { "" } else { "s" },
            self.replicas,
            if self.replicas == 1 { "" } else { "s" },
            self.partitions,
            if self.partitions == 1 { "" } else { "s" }
        )
    }
}

/// The kinds of collective, for reports and the cost model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CollectiveKind {
    /// `all-reduce` (and `-start`).
    AllReduce,
    /// `all-gather` (and `-start`).
    AllGather,
    /// `reduce-scatter`.
    ReduceScatter,
    /// `all-to-all`.
    AllToAll,
    /// `collective-permute` (and `-start`).
    CollectivePermute,
    /// `collective-broadcast`.
    CollectiveBroadcast,
}

impl CollectiveKind {
    /// The HLO opcode.
    pub fn opcode(self) -> &'static str {
        match self {
            CollectiveKind::AllReduce => "all-reduce",
            CollectiveKind::AllGather => "all-gather",
            CollectiveKind::ReduceScatter => "reduce-scatter",
            CollectiveKind::AllToAll => "all-to-all",
            CollectiveKind::CollectivePermute => "collective-permute",
            CollectiveKind::CollectiveBroadcast => "collective-broadcast",
        }
    }
}

/// One collective a core took part in during a step: what it was, who was in its group
/// (cores, in group order) and how many bytes the core put in and got out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectiveEvent {
    /// The collective.
    pub kind: CollectiveKind,
    /// The cores that took part, in group order; for a permute, this core and the cores
    /// it sends to (none when no pair starts at it).
    pub group: Vec<usize>,
    /// Bytes of this core's operands.
    pub bytes_in: u64,
    /// Bytes of this core's result.
    pub bytes_out: u64,
}

/// What a core needs to run its part of an SPMD step.
#[derive(Clone, Copy, Debug)]
pub struct Rank<'c> {
    /// This core's number.
    pub core: usize,
    /// How the cores are numbered.
    pub topology: Topology,
    /// Where the cores meet.
    pub comm: &'c Communicator,
}

/// Stack size of a core's thread: as much as a program's nesting of calls and loops gets
/// on the main thread.
const CORE_STACK_BYTES: usize = 16 << 20;

/// Runs `run(core, args[core], comm)` for every core at once, each on its own thread, and
/// returns each core's outcome in core order. A core whose thread cannot start or panics
/// aborts the step for the others.
pub fn run_cores<A: Send, R: Send>(
    comm: &Communicator,
    args: Vec<A>,
    run: impl Fn(usize, A, &Communicator) -> statetensor_core::Result<R> + Sync,
) -> Vec<statetensor_core::Result<R>> {
    use statetensor_core::Error;
    let run = &run;
    std::thread::scope(|scope| {
        let handles: Vec<_> = args
            .into_iter()
            .enumerate()
            .map(|(core, a)| {
                std::thread::Builder::new()
                    .name(format!("statetensor-core-{core}"))
                    .stack_size(CORE_STACK_BYTES)
                    .spawn_scoped(scope, move || {
                        // a panic stops the step at once, not when its thread is joined
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            run(core, a, comm)
                        }))
                        .unwrap_or_else(|_| {
                            comm.abort(core, "internal error: its thread panicked");
                            Err(Error::runtime(
                                "execute",
                                format!("core {core}: internal error: its thread panicked"),
                            ))
                        })
                    })
                    .map_err(|e| {
                        let e = Error::runtime("execute", format!("core {core}: no thread: {e}"));
                        comm.abort(core, &e.to_string());
                        e
                    })
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(core, h)| {
                h.and_then(|h| {
                    h.join().unwrap_or_else(|_| {
                        comm.abort(core, "its thread panicked");
                        Err(Error::runtime(
                            "execute",
                            format!("core {core}: internal error: its thread panicked"),
                        ))
                    })
                })
            })
            .collect()
    })
}
