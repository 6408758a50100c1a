//! statetensor-conformance: the home of everything every backend is held to — the alias
//! contract suite ([`contract`], instantiated by each backend's test crate with
//! [`contract_tests!`](crate::contract_tests)), the committed fixtures ([`fixture_path`]), and the property-based
//! comparison of backends: scenarios as data, proptest strategies over them, one runner
//! generic over `StatefulModel`, and trace comparison.
//!
//! This crate names no backend: it depends on `statetensor-core` and `statetensor-hlo`
//! only (the reference evaluates with the engine), so a backend's tests can use it without
//! pulling in any other backend. The cross-backend suite (`tests/suite.rs`) opens the
//! backends through `statetensor-open`.
//!
//! Design choices:
//! - **Scenarios are data.** An [`Op`] sequence over a committed fixture model: create a
//!   state set (zeros or random values), write or read state (whole or a byte range),
//!   execute with inputs derived from a seed, execute through a second model sharing the
//!   set, reset, snapshot/restore on the device, save/load through a file, drop.
//! - **One runner, many backends.** [`run`] records a [`Trace`]: every result (output bytes
//!   or error kind), every live state's bytes after each operation, and the ledger's byte
//!   and transfer counts per operation. Backends are compared trace to trace: ledger counts
//!   and error kinds exactly, outputs and states bit for bit between the simulator and the
//!   driver over the emulator.
//! - **Several cores too.** [`run_sharded`] runs the same operations on a model run by
//!   several cores (a `ShardedModel`: state sets sharded across the cores, every execute
//!   on all of them at once) over the SPMD fixtures, into the same [`Trace`].
//! - **A third party.** [`Reference`] evaluates the same scenario functionally — copies in,
//!   copies out, no aliasing, no device — so a bug both backends share is caught too.
//! - **Known differences are declared, and checked.** [`KNOWN_DIFFERENCES`] lists what is
//!   meant to differ, with the reason; the suite verifies each still differs, so a fixed
//!   difference fails the run until the list is updated.

pub mod contract;
mod fixtures;
mod known;
mod reference;
mod scenario;
mod set_ops;
mod sharded;
mod trace;

pub use fixtures::{
    fixture_alias_map, fixture_aliases, fixture_arg, fixture_feeds, fixture_hlo,
    fixture_load_options, fixture_names, fixture_npy, fixture_path, fixture_weights, host_tensor,
    spmd_cores, spmd_fixture_names, spmd_load_options, spmd_npy, DIVERGING_COLLECTIVES,
};
pub use known::{Known, KNOWN_DIFFERENCES};
pub use reference::Reference;
pub use scenario::{inputs_for, scenario_strategy, values_for, Op, Scenario, MODELS};
pub use sharded::{run_sharded, sharded_scenario_strategy};
pub use trace::{diverge, run, Counts, Event, Outcome, Trace};
