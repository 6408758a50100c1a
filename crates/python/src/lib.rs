//! statetensor-python: the native half of the `statetensor` Python package.
//!
//! The package (`python/statetensor`) is a drop-in for what state-tensor developers do in
//! notebooks — `statetensor.load(...)`, `statetensor.jax.trace(...)`,
//! `statetensor.torch.trace(...)` — over the same `StatefulModel` API the CLI uses, opened
//! through the one seam (`statetensor-open`). This crate is the extension module
//! `statetensor._native`, built by maturin into an abi3 wheel (one wheel for every Python
//! from 3.9).
//!
//! Design choices:
//! - **A narrow native surface.** One class, `NativeModel` (`model.rs`), with methods that
//!   take and return plain values: checked NumPy arrays in, `bytearray`s out (viewed by
//!   NumPy without a copy), JSON for the report. Argument conveniences, dtype objects and
//!   the framework front ends are Python, where they are easiest to read and test.
//! - **No second host copy.** Inputs and states are read in place from the caller's array
//!   (checked C-contiguous and little-endian; `arrays.rs`); a state read back is written
//!   once into the array returned. That is this crate's one `unsafe` block: Python 3.9's
//!   limited API has no buffer protocol, so an array's memory is reached through NumPy's
//!   `__array_interface__` address.
//! - **Exceptions by kind.** Every engine error becomes the `statetensor.errors` class of
//!   its kind (`errors.rs`), each also the built-in a caller would catch (`ValueError`,
//!   `MemoryError`, `LookupError`, ...).
//! - **The GIL released while a step runs**, so other Python threads go on.

#![allow(unsafe_code)] // one block, in arrays.rs: reading a NumPy array's memory in place

mod arrays;
mod errors;
mod model;
mod sharded;

use pyo3::prelude::*;

/// The native module: `NativeModel`, and the dtype names it speaks.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::NativeModel>()?;
    m.add_class::<sharded::NativeShardedModel>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
