//! statetensor-core: the vocabulary every statetensor backend shares.
//!
//! Design choices (the whole picture is in `docs/architecture.md`):
//! - **Light.** Only `thiserror`, `serde` and `serde_json`; no ndarray, no libloading.
//!   Backends (the simulator, the libnrt driver) depend on this crate, never on each other.
//! - **Shared behaviour lives here, once.** [`AliasMap::validate`] is the single
//!   implementation of the alias contract's checks; [`Signature`] checks inputs, initial
//!   values and attaches, and gives each parameter its [`Role`] (input, state, weight) from
//!   the [`LoadOptions`]; [`ResidentWeights`] uploads weights once and shares them between
//!   models; [`StateSets`] is the registry of named state sets with its lookup, lock and
//!   poison rules; [`Hbm`] is the capacity ledger; [`snapshot`] saves and loads
//!   state sets through any [`StatefulModel`]. Every backend rejects bad input the same way,
//!   with the same [`ErrorKind`], by construction.
//! - **One error enum.** [`Error`] is `#[non_exhaustive]`; tests compare [`Error::kind`],
//!   never message text. Messages are lowercase, start with the operation and carry numbers.

mod alias;
mod dtype;
mod error;
pub mod files;
mod hbm;
mod host_tensor;
mod ledger;
mod load_options;
mod locking;
mod model;
mod names;
pub mod packing;
mod sharded;
pub mod sharding;
mod signature;
pub mod snapshot;
mod spec;
mod state_set;
mod weights;

pub use alias::{AliasMap, AliasPair};
pub use dtype::DType;
pub use error::{Error, ErrorKind, Location, Result};
pub use hbm::{Hbm, INF2_CORE_HBM_BYTES};
pub use host_tensor::HostTensor;
pub use ledger::{Direction, Flow, MemoryReport, TransferLedger};
pub use load_options::LoadOptions;
pub use locking::{check_distinct_sets, check_not_poisoned, lock_exclusive, lock_unpoisoned};
pub use model::{PreparedInputs, StatefulModel, STREAM_CHUNK};
pub use names::{resolve_param, stem};
pub use sharded::{
    check_same_roles, check_sharded_inputs, core_options, lock_every_core, on_every_core,
    settle_step, ShardedModel,
};
pub use signature::{Role, Signature};
pub use spec::{Shape, TensorSpec};
pub use state_set::{
    check_byte_range, lock_state_set, StateInit, StateSet, StateSetHandle, StateSets, StateSlot,
};
pub use weights::ResidentWeights;
