//! `statetensor._native.NativeShardedModel`: one SPMD model run by several cores (the
//! simulator's or libnrt's), each with its shard of the weights and of every state set.
//!
//! As narrow as `NativeModel`: values cross per core (core k's arrays in, core k's
//! bytearrays out); splitting a whole array among the cores, stacking or gathering the
//! cores' values is Python's (`statetensor/_sharded.py`), where NumPy does it. A step runs
//! every core at once with the GIL released.

use crate::arrays::{bytearray_with, host_to_bytearray, numpy_item_bytes, ArrayIn};
use crate::errors::{to_py, IntoPy};
use crate::model::{
    describe_params, load_file, save_file, signature_dict, state_of, weight_given_twice,
    LoadRequest, ParamRef, Source,
};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict};
use statetensor_core::{snapshot, Error, HostTensor, Result, ShardedModel, StateInit};
use statetensor_open::report::{Report, RunFacts, StepReport};
use statetensor_open::{Backend, DeviceProfile};
use std::sync::Mutex;
use std::time::Instant;

/// A model loaded on several cores.
#[pyclass(frozen, module = "statetensor._native")]
pub(crate) struct NativeShardedModel {
    model: Box<dyn ShardedModel>,
    backend: Backend,
    profile: DeviceProfile,
    source: String,
    loaded_at: Instant,
    steps: Mutex<Vec<StepReport>>,
}

/// Every core's value of parameter `p` from one array (`ArrayIn::to_core_hosts`).
fn core_values(
    py: Python<'_>,
    op: &str,
    p: usize,
    spec: &statetensor_core::TensorSpec,
    value: &Bound<'_, PyAny>,
    cores: usize,
) -> PyResult<Vec<HostTensor>> {
    let a = ArrayIn::borrow(value, &format!("{op} {p} ({})", spec.name))?;
    a.to_core_hosts(op, p, spec, cores).py_err(py)
}

#[pymethods]
impl NativeShardedModel {
    /// Loads a model on `cores` cores. `aliases`: `{param: output}`; `weights`:
    /// `[(param, array)]`, each array the weight's own type (every core) or with a leading
    /// axis of `cores` (core k its slice k); `names`: `{param: name}`, on every core.
    #[staticmethod]
    #[pyo3(signature = (source, name, aliases, weights, names, backend, device, cores))]
    #[allow(clippy::too_many_arguments)]
    fn load(
        py: Python<'_>,
        source: Source,
        name: String,
        aliases: Option<Vec<(ParamRef, usize)>>,
        weights: Vec<(ParamRef, Bound<'_, PyAny>)>,
        names: Vec<(ParamRef, String)>,
        backend: &str,
        device: &str,
        cores: usize,
    ) -> PyResult<NativeShardedModel> {
        let LoadRequest {
            backend,
            profile,
            bundle,
            options,
        } = LoadRequest::prepare(py, source, &name, aliases, names, backend, device)?;
        let params = bundle.params();
        let mut opts = vec![options; cores.max(1)];
        for (p, value) in weights {
            let p = p.resolve(py, "weights", &params).py_err(py)?;
            if opts[0].weights.contains_key(&p) {
                return Err(to_py(py, weight_given_twice(p, &params[p])));
            }
            let values = core_values(py, "weights", p, &params[p], &value, cores)?;
            for (k, h) in values.into_iter().enumerate() {
                opts[k].weights.insert(p, Some(h));
            }
        }
        let model = py
            .detach(|| statetensor_open::load_sharded(backend, &profile, &bundle, &opts, cores))
            .py_err(py)?;
        Ok(NativeShardedModel {
            model,
            backend,
            profile,
            source: bundle.source().to_string(),
            loaded_at: Instant::now(),
            steps: Mutex::new(Vec::new()),
        })
    }

    /// The number of cores.
    #[getter]
    fn cores(&self) -> usize {
        self.model.cores()
    }

    /// The backend's name.
    #[getter]
    fn backend(&self) -> &str {
        self.model.backend()
    }

    /// Every core's signature (one program: core 0's), as `NativeModel.signature`.
    fn signature<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        signature_dict(py, self.model.core(0).signature())
    }

    /// The number of state `state` (a number or a name), or the error naming the states.
    fn state_number(&self, py: Python<'_>, op: &str, state: ParamRef) -> PyResult<usize> {
        state_of(py, self.model.core(0).signature(), op, &state).py_err(py)
    }

    /// Runs one step on every core: `inputs` are the input parameters' arrays in order,
    /// each the parameter's own type (every core) or with a leading axis of the cores.
    /// Returns each core's outputs not aliased to state, as bytearrays.
    fn execute<'py>(
        &self,
        py: Python<'py>,
        set: &str,
        inputs: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Vec<Bound<'py, PyByteArray>>>> {
        let sig = self.model.core(0).signature();
        let cores = self.model.cores();
        let order = sig.input_params();
        if inputs.len() != order.len() {
            let e = Error::invalid_input(
                "call",
                format!(
                    "{} input(s) given; the model takes {}: {}",
                    inputs.len(),
                    order.len(),
                    describe_params(sig, &order)
                ),
            );
            return Err(to_py(py, e));
        }
        let mut host: Vec<Vec<HostTensor>> = vec![Vec::with_capacity(order.len()); cores];
        for (obj, &p) in inputs.iter().zip(&order) {
            for (k, h) in core_values(py, "call", p, &sig.params[p], obj, cores)?
                .into_iter()
                .enumerate()
            {
                host[k].push(h);
            }
        }
        let model = &*self.model;
        let (outputs, step) = py
            .detach(|| -> Result<_> {
                let before = model.ledgers();
                let outputs = model.execute(set, &host)?;
                Ok((outputs, StepReport::of_cores(&before, &model.ledgers())))
            })
            .py_err(py)?;
        self.steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(step);
        outputs
            .iter()
            .map(|core| core.iter().map(|t| host_to_bytearray(py, t)).collect())
            .collect()
    }

    /// True when state set `set` exists on every core.
    fn has_state_set(&self, set: &str) -> bool {
        (0..self.model.cores()).all(|k| self.model.core(k).has_state_set(set))
    }

    /// Core `core`'s shard of state `state` of `set`, as NumPy holds it.
    fn read_state<'py>(
        &self,
        py: Python<'py>,
        set: &str,
        state: ParamRef,
        core: usize,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let m = self.core(py, core)?;
        let sig = m.signature();
        let spec = &sig.params[state_of(py, sig, "read_state", &state).py_err(py)?];
        let len = spec.shape.element_count() * numpy_item_bytes(spec.dtype);
        bytearray_with(py, len, |buf| {
            snapshot::write_state_values(m, set, spec, &mut &mut buf[..], true)
                .map_err(|e| e.on_core(core))
        })
    }

    /// Overwrites state `state` of `set`: core `core`'s shard with `value`, or (`core`
    /// `None`) every core's from `value` as a call takes an input. Checked before any core
    /// is written.
    fn write_state(
        &self,
        py: Python<'_>,
        set: &str,
        state: ParamRef,
        core: Option<usize>,
        value: Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let sig = self.model.core(0).signature();
        let p = state_of(py, sig, "write_state", &state).py_err(py)?;
        let spec = &sig.params[p];
        let (first, values) = match core {
            Some(k) => {
                self.core(py, k)?;
                let a = ArrayIn::borrow(&value, &format!("state {p} ({}) on core {k}", spec.name))?;
                (k, vec![a.to_host("write_state", p, spec).py_err(py)?])
            }
            None => (
                0,
                core_values(py, "write_state", p, spec, &value, self.model.cores())?,
            ),
        };
        for (i, h) in values.iter().enumerate() {
            let k = first + i;
            self.model
                .core(k)
                .write_state(set, &spec.name, 0, &h.data)
                .map_err(|e| e.on_core(k))
                .py_err(py)?;
        }
        Ok(())
    }

    /// Creates state set `set` on every core: zeros, or `values` (`[(state, array)]`,
    /// each as a call takes an input; states not named start at zeros).
    fn create_state_set(
        &self,
        py: Python<'_>,
        set: &str,
        values: Vec<(ParamRef, Bound<'_, PyAny>)>,
    ) -> PyResult<()> {
        let sig = self.model.core(0).signature();
        let cores = self.model.cores();
        let op = "create_state_set";
        let mut per_core: Vec<Vec<(String, HostTensor)>> = vec![Vec::new(); cores];
        for (r, vs) in &values {
            let p = state_of(py, sig, op, r).py_err(py)?;
            let spec = &sig.params[p];
            if per_core[0].iter().any(|(n, _)| *n == spec.name) {
                let e =
                    Error::invalid_input(op, format!("state {p} ({}) is given twice", spec.name));
                return Err(to_py(py, e));
            }
            for (k, h) in core_values(py, op, p, spec, vs, cores)?
                .into_iter()
                .enumerate()
            {
                per_core[k].push((spec.name.clone(), h));
            }
        }
        let init: Vec<StateInit> = if values.is_empty() {
            vec![StateInit::Zeros]
        } else {
            per_core
                .into_iter()
                .map(|mut given| {
                    for spec in sig.state_specs() {
                        if !given.iter().any(|(n, _)| *n == spec.name) {
                            given.push((spec.name.clone(), HostTensor::zeros(spec)));
                        }
                    }
                    StateInit::Values(given)
                })
                .collect()
        };
        let model = &*self.model;
        py.detach(|| model.create_state_set(set, &init)).py_err(py)
    }

    /// Frees state set `set` on every core.
    fn drop_state_set(&self, py: Python<'_>, set: &str) -> PyResult<()> {
        self.model.drop_state_set(set).py_err(py)
    }

    /// Resets state set `set` on every core.
    fn reset(&self, py: Python<'_>, set: &str) -> PyResult<()> {
        self.model.reset(set).py_err(py)
    }

    /// Copies state set `from_set` into `to_set` on every core.
    fn copy_state_set(&self, py: Python<'_>, from_set: &str, to_set: &str) -> PyResult<()> {
        let model = &*self.model;
        py.detach(|| model.copy_state_set(from_set, to_set))
            .py_err(py)
    }

    /// Writes every core's shards of `set` to one safetensors file (whole, or not at all).
    fn save_state_set(&self, py: Python<'_>, set: &str, path: std::path::PathBuf) -> PyResult<u64> {
        let model = &*self.model;
        py.detach(|| save_file(&path, |w| snapshot::save_sharded_state_set(model, set, w)))
            .py_err(py)
    }

    /// Reads a file written by `save_state_set` into `set` on every core.
    fn load_state_set(&self, py: Python<'_>, set: &str, path: std::path::PathBuf) -> PyResult<()> {
        let model = &*self.model;
        py.detach(|| {
            load_file(&path, |r, what| {
                snapshot::load_sharded_state_set(model, set, r, what)
            })
        })
        .py_err(py)
    }

    /// The run report since load, as JSON (report.json's fields, `per_core` included).
    fn report_json(&self, py: Python<'_>) -> PyResult<String> {
        self.report().to_json().py_err(py)
    }

    /// The report as the CLI prints it.
    fn report_text(&self) -> String {
        self.report().human()
    }
}

impl NativeShardedModel {
    fn core(&self, py: Python<'_>, k: usize) -> PyResult<&dyn statetensor_core::StatefulModel> {
        if k >= self.model.cores() {
            let e = Error::invalid_input(
                "core",
                format!(
                    "core {k} of a model run by {} cores (numbered from 0)",
                    self.model.cores()
                ),
            );
            return Err(to_py(py, e));
        }
        Ok(self.model.core(k))
    }

    fn report(&self) -> Report {
        let steps = self.steps.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Report::of_sharded_run(
            &*self.model,
            None,
            RunFacts {
                backend: self.backend,
                device: self.profile.name.clone(),
                profile: self.profile.clone(),
                model: self.source.clone(),
                per_step: steps,
                wall_s: self.loaded_at.elapsed().as_secs_f64(),
                fed_bytes_per_step: 0,
                states_started_at_zeros: Vec::new(),
            },
        )
    }
}
