//! The `StatefulModel` trait: one API over the simulator and the libnrt driver.

use crate::{Error, HostTensor, MemoryReport, Result, Signature, StateInit, TransferLedger};
use std::io::{Read, Write};

/// Inputs checked and converted once, for executes that pass the same values every step
/// (weights given as parameters, say). Each execute still counts them as crossing
/// host → device; preparing only saves the backend's conversion work.
pub struct PreparedInputs(pub Box<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for PreparedInputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedInputs")
    }
}

/// A stateful compiled model on a device: its state tensors stay in device memory, grouped
/// in named *state sets* (one per conversation or sequence); each execute names one.
///
/// The trait is object-safe: the CLI holds a `Box<dyn StatefulModel>` chosen at run time.
pub trait StatefulModel: Send + Sync {
    /// The backend's name (`sim`, `nrt`).
    fn backend(&self) -> &str;

    /// Parameters, outputs and aliases.
    fn signature(&self) -> &Signature;

    /// Creates state set `set` for this model's states, or attaches to an existing one that
    /// another model on the same device created (names, shapes and dtypes must agree).
    fn create_state_set(&self, set: &str, init: StateInit) -> Result<()>;

    /// Frees a state set's device memory.
    fn drop_state_set(&self, set: &str) -> Result<()>;

    /// True when state set `set` exists on the model's device.
    fn has_state_set(&self, set: &str) -> bool;

    /// Executes on state set `set`: `inputs` are the non-state parameters in order; returns
    /// the non-state outputs in order. State is updated in place on the device.
    fn execute(&self, set: &str, inputs: &[HostTensor]) -> Result<Vec<HostTensor>>;

    /// Copies bytes `[offset, offset + buf.len())` of a state tensor to the host.
    fn read_state(&self, set: &str, state: &str, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// Overwrites bytes `[offset, offset + data.len())` of a state tensor from the host.
    fn write_state(&self, set: &str, state: &str, offset: u64, data: &[u8]) -> Result<()>;

    /// Zeros every state, or restores the initial values the set was created with. Clears
    /// poisoning.
    fn reset(&self, set: &str) -> Result<()>;

    /// Copies state set `from` into state set `to` on the device (creating `to` if needed).
    /// Restoring is the same copy in the other direction. Copying into a poisoned set clears
    /// its poisoning.
    fn copy_state_set(&self, from: &str, to: &str) -> Result<()>;

    /// Totals since load.
    fn ledger(&self) -> TransferLedger;

    /// Device memory use.
    fn memory(&self) -> MemoryReport;

    /// Checks and converts inputs once for [`StatefulModel::execute_prepared`].
    fn prepare_inputs(&self, inputs: &[HostTensor]) -> Result<PreparedInputs> {
        self.signature().check_inputs(inputs)?;
        Ok(PreparedInputs(Box::new(inputs.to_vec())))
    }

    /// [`StatefulModel::execute`] with inputs from [`StatefulModel::prepare_inputs`] of this
    /// model.
    fn execute_prepared(&self, set: &str, inputs: &PreparedInputs) -> Result<Vec<HostTensor>> {
        match inputs.0.downcast_ref::<Vec<HostTensor>>() {
            Some(v) => self.execute(set, v),
            None => Err(Error::invalid_input(
                "execute",
                "the inputs were prepared by another backend",
            )),
        }
    }

    /// Streams a whole state tensor to `w` in bounded chunks; returns the bytes written.
    fn read_state_to(&self, set: &str, state: &str, w: &mut dyn Write) -> Result<u64> {
        let p = self.signature().state_param("read state", state)?;
        let size = self.signature().params[p].size_bytes() as u64;
        let mut buf = vec![0u8; STREAM_CHUNK.min(size as usize).max(1)];
        let mut off = 0u64;
        while off < size {
            let n = (size - off).min(buf.len() as u64) as usize;
            self.read_state(set, state, off, &mut buf[..n])?;
            w.write_all(&buf[..n])
                .map_err(|e| Error::io("read state", state, e))?;
            off += n as u64;
        }
        Ok(size)
    }

    /// Streams a whole state tensor from `r` in bounded chunks; returns the bytes read.
    fn write_state_from(&self, set: &str, state: &str, r: &mut dyn Read) -> Result<u64> {
        let p = self.signature().state_param("write state", state)?;
        let size = self.signature().params[p].size_bytes() as u64;
        let mut buf = vec![0u8; STREAM_CHUNK.min(size as usize).max(1)];
        let mut off = 0u64;
        while off < size {
            let n = (size - off).min(buf.len() as u64) as usize;
            r.read_exact(&mut buf[..n]).map_err(|e| {
                Error::invalid_input(
                    "write state",
                    format!("'{state}' needs {size} bytes; the source ended after {off}: {e}"),
                )
            })?;
            self.write_state(set, state, off, &buf[..n])?;
            off += n as u64;
        }
        Ok(size)
    }
}

/// Chunk size for streaming state to and from the host.
pub const STREAM_CHUNK: usize = 1 << 20;
