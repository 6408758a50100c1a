//! statetensor-core: the vocabulary every statetensor backend shares.
//!
//! Design choices:
//! - **Light.** Only `thiserror` and `serde`; no ndarray, no libloading. Backends (the
//!   simulator, the libnrt driver) depend on this crate, never on each other.
//! - **Validation lives here, once.** [`AliasMap::validate`] is the single implementation of
//!   the alias contract's checks (DESIGN §2.2), so every backend rejects a bad alias map the
//!   same way, with the same [`ErrorKind`], by construction.
//! - **One error enum.** [`Error`] is `#[non_exhaustive]`; tests compare [`Error::kind`],
//!   never message text. Messages are lowercase, start with the operation and carry numbers.

mod alias;
mod dtype;
mod error;
mod ledger;
mod model;
mod spec;

pub use alias::{AliasMap, AliasPair};
pub use dtype::DType;
pub use error::{Error, ErrorKind, Location, Result};
pub use ledger::{Direction, Flow, MemoryReport, TransferLedger};
pub use model::{
    check_distinct_sets, check_not_poisoned, lock_exclusive, HostTensor, PreparedInputs, Signature,
    StateInit, StatefulModel, STREAM_CHUNK,
};
pub use spec::{Shape, TensorSpec};
