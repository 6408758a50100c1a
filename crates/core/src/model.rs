//! The `StatefulModel` trait: one API over the simulator and the libnrt driver.

use crate::{AliasMap, DType, Error, MemoryReport, Result, Shape, TensorSpec, TransferLedger};
use std::io::{Read, Write};

/// A tensor in host memory: its type and little-endian, row-major bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTensor {
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Shape,
    /// `shape.element_count() * dtype.size_bytes()` bytes.
    pub data: Vec<u8>,
}

impl HostTensor {
    /// A tensor from its parts; the byte count must match.
    pub fn new(dtype: DType, dims: impl Into<Vec<usize>>, data: Vec<u8>) -> Result<HostTensor> {
        let shape = Shape::new(dims);
        let want = shape.element_count() * dtype.size_bytes();
        if data.len() != want {
            return Err(Error::invalid_input(
                "host tensor",
                format!("{dtype}{shape} needs {want} bytes, got {}", data.len()),
            ));
        }
        Ok(HostTensor { dtype, shape, data })
    }

    /// `dtype[shape]`, as HLO prints a type.
    pub fn type_string(&self) -> String {
        format!("{}{}", self.dtype, self.shape)
    }
}

/// A model's interface: parameters, outputs and which parameters are state.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// Parameters by number.
    pub params: Vec<TensorSpec>,
    /// Outputs by index.
    pub outputs: Vec<TensorSpec>,
    /// State parameters and the outputs that update them (validated).
    pub aliases: AliasMap,
}

impl Signature {
    /// A signature whose alias map is validated against its parameters and outputs.
    pub fn new(
        params: Vec<TensorSpec>,
        outputs: Vec<TensorSpec>,
        aliases: AliasMap,
    ) -> Result<Signature> {
        aliases.validate(&params, &outputs)?;
        Ok(Signature {
            params,
            outputs,
            aliases,
        })
    }

    /// Numbers of the parameters the caller supplies each execute (non-state), in order.
    pub fn input_params(&self) -> Vec<usize> {
        (0..self.params.len())
            .filter(|&p| !self.aliases.is_state(p))
            .collect()
    }

    /// Numbers of the state parameters, in order.
    pub fn state_params(&self) -> Vec<usize> {
        (0..self.params.len())
            .filter(|&p| self.aliases.is_state(p))
            .collect()
    }

    /// Indices of the outputs returned to the host (not aliased), in order.
    pub fn returned_outputs(&self) -> Vec<usize> {
        (0..self.outputs.len())
            .filter(|&o| self.aliases.param_for(o).is_none())
            .collect()
    }

    /// The state parameter named `name`.
    pub fn state_param(&self, op: &str, name: &str) -> Result<usize> {
        self.state_params()
            .into_iter()
            .find(|&p| self.params[p].name == name)
            .ok_or_else(|| Error::NotFound {
                op: op.to_string(),
                what: "state".into(),
                name: name.to_string(),
                hint: format!(
                    "; the states are: {}",
                    self.state_params()
                        .iter()
                        .map(|&p| self.params[p].name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// Total bytes of all state tensors.
    pub fn state_bytes(&self) -> u64 {
        self.state_params()
            .iter()
            .map(|&p| self.params[p].size_bytes() as u64)
            .sum()
    }

    /// Checks that this model may attach to an existing state set whose states `held`
    /// looks up by name: every state of this model must be there with its shape and dtype,
    /// and an attach cannot re-initialise the set. Both backends call this.
    pub fn check_attach<'a>(
        &self,
        op: &str,
        held: impl Fn(&str) -> Option<&'a TensorSpec>,
        init: &StateInit,
    ) -> Result<()> {
        for p in self.state_params() {
            let s = &self.params[p];
            match held(&s.name) {
                Some(have) if have.dtype == s.dtype && have.shape == s.shape => {}
                Some(have) => {
                    return Err(Error::invalid_input(
                        op,
                        format!(
                            "the set holds '{}' as {}, this model needs {}",
                            s.name,
                            have.type_string(),
                            s.type_string()
                        ),
                    ))
                }
                None => {
                    return Err(Error::invalid_input(
                        op,
                        format!(
                            "the set has no state '{}' ({}) that this model needs",
                            s.name,
                            s.type_string()
                        ),
                    ))
                }
            }
        }
        if *init != StateInit::Zeros {
            return Err(Error::invalid_input(
                op,
                "the set already exists; write its states instead of re-initialising it",
            ));
        }
        Ok(())
    }

    /// Checks initial values (each names a state of this model, with its type) and returns
    /// them by state name. Both backends call this.
    pub fn check_init_values<'a>(
        &self,
        op: &str,
        init: &'a StateInit,
    ) -> Result<std::collections::BTreeMap<String, &'a HostTensor>> {
        let mut out = std::collections::BTreeMap::new();
        if let StateInit::Values(values) = init {
            for (name, v) in values {
                let spec = &self.params[self.state_param(op, name)?];
                if v.dtype != spec.dtype || v.shape != spec.shape {
                    return Err(Error::invalid_input(
                        op,
                        format!(
                            "initial value of '{name}' is {}, the state is {}",
                            v.type_string(),
                            spec.type_string()
                        ),
                    ));
                }
                out.insert(name.clone(), v);
            }
        }
        Ok(out)
    }

    /// Checks execute inputs: one per non-state parameter, each with its dtype and shape.
    /// Both backends call this, so they reject bad inputs identically.
    pub fn check_inputs(&self, inputs: &[HostTensor]) -> Result<()> {
        let want = self.input_params();
        if inputs.len() != want.len() {
            return Err(Error::invalid_input(
                "execute",
                format!(
                    "expected {} inputs (the non-state parameters), got {}",
                    want.len(),
                    inputs.len()
                ),
            ));
        }
        for (t, &p) in inputs.iter().zip(&want) {
            let spec = &self.params[p];
            if t.dtype != spec.dtype || t.shape != spec.shape || t.data.len() != spec.size_bytes() {
                return Err(spec.wrong_argument("execute", p, &t.type_string()));
            }
        }
        Ok(())
    }
}

/// Inputs checked and converted once, for executes that pass the same values every step
/// (weights given as parameters, say). Each execute still counts them as crossing
/// host → device; preparing only saves the backend's conversion work.
pub struct PreparedInputs(pub Box<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for PreparedInputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedInputs")
    }
}

/// How a new state set is filled.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum StateInit {
    /// All zeros (a device-side memset: nothing crosses the bus).
    #[default]
    Zeros,
    /// The given values, by state name: written host → device once, and copied on the
    /// device into a kept copy (charged to HBM) that `reset` restores; states not named are
    /// zeros.
    Values(Vec<(String, HostTensor)>),
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

/// Locks a state set (or any resource) for exclusive use without waiting: a resource in use
/// by another call is [`Error::Busy`] — never a race, never a deadlock. A lock poisoned by a
/// panic elsewhere is taken anyway (the state set's own poisoning is what reports failures).
pub fn lock_exclusive<'a, T>(
    op: &str,
    resource: &str,
    m: &'a std::sync::Mutex<T>,
) -> Result<std::sync::MutexGuard<'a, T>> {
    match m.try_lock() {
        Ok(g) => Ok(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Ok(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => Err(Error::Busy {
            op: op.to_string(),
            resource: resource.to_string(),
        }),
    }
}

/// [`Error::Poisoned`] when state set `set` was poisoned by the call `failed`.
pub fn check_not_poisoned(op: &str, set: &str, failed: &Option<String>) -> Result<()> {
    match failed {
        Some(f) => Err(Error::Poisoned {
            op: op.to_string(),
            state_set: set.to_string(),
            failed_call: f.clone(),
        }),
        None => Ok(()),
    }
}

/// [`Error::InvalidInput`] when a copy's source and destination are the same state set.
pub fn check_distinct_sets(op: &str, from: &str, to: &str) -> Result<()> {
    if from == to {
        return Err(Error::invalid_input(
            op,
            "source and destination are the same state set",
        ));
    }
    Ok(())
}
