//! `statetensor._native.NativeModel`: one loaded model, its state sets and its run record.
//!
//! Everything Python-facing that needs care lives in Python (`statetensor/_model.py`:
//! argument handling, dtype objects, the report as a dict); this class is the narrow waist
//! to the engine: values in as checked NumPy arrays, values out as `bytearray`s, errors as
//! `statetensor.errors` exceptions. Steps run with the GIL released.

use crate::arrays::{bytearray_with, host_to_bytearray, spec_dict, ArrayIn};
use crate::errors::{to_py, IntoPy};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict, PyList};
use statetensor_core::{
    files, packing, resolve_param, snapshot, AliasMap, Error, LoadOptions, Result, Role, StateInit,
    StatefulModel,
};
use statetensor_open::report::{Report, RunFacts, StepReport};
use statetensor_open::{Backend, Bundle, Device, DeviceProfile};
use std::sync::Mutex;
use std::time::Instant;

/// What the report needs beyond the model's ledger.
struct Record {
    per_step: Vec<StepReport>,
    states_started_at_zeros: Vec<String>,
}

/// A model loaded on a device (simulator or libnrt).
#[pyclass(frozen, module = "statetensor._native")]
pub(crate) struct NativeModel {
    model: Box<dyn StatefulModel>,
    backend: Backend,
    device: String,
    profile: DeviceProfile,
    source: String,
    loaded_at: Instant,
    record: Mutex<Record>,
}

/// A parameter reference from Python: its number or its name (anything else is an
/// InvalidInputError naming the parameters, as a bad name is).
#[derive(FromPyObject)]
pub(crate) enum ParamRef {
    Number(i64),
    Name(String),
    Other(Py<PyAny>),
}

impl ParamRef {
    pub(crate) fn resolve(
        &self,
        py: Python<'_>,
        op: &str,
        params: &[statetensor_core::TensorSpec],
    ) -> Result<usize> {
        match self {
            ParamRef::Number(n) => resolve_param(op, &n.to_string(), params),
            ParamRef::Name(s) => resolve_param(op, s, params),
            ParamRef::Other(o) => {
                let shown = o.bind(py).repr().map(|r| r.to_string());
                resolve_param(op, &shown.unwrap_or_else(|_| "?".into()), params)
            }
        }
    }
}

/// The model's source: a path (HLO text, an HloModuleProto, a bundle directory) or the
/// bytes of a serialized HloModuleProto.
#[derive(FromPyObject)]
pub(crate) enum Source {
    Bytes(Vec<u8>),
    Path(std::path::PathBuf),
}

/// What loading on one core and on several shares: the backend, the device profile, the
/// bundle, and the options every core starts from (the alias map and parameter names; the
/// weights, which differ, are the caller's).
pub(crate) struct LoadRequest {
    pub(crate) backend: Backend,
    pub(crate) profile: DeviceProfile,
    pub(crate) bundle: Bundle,
    pub(crate) options: LoadOptions,
}

impl LoadRequest {
    pub(crate) fn prepare(
        py: Python<'_>,
        source: Source,
        name: &str,
        aliases: Option<Vec<(ParamRef, usize)>>,
        names: Vec<(ParamRef, String)>,
        backend: &str,
        device: &str,
    ) -> PyResult<LoadRequest> {
        let backend: Backend = backend.parse().py_err(py)?;
        let profile = DeviceProfile::resolve(device).py_err(py)?;
        let bundle = match source {
            Source::Bytes(b) => py.detach(|| Bundle::from_bytes(b, name)),
            Source::Path(p) => py.detach(|| Bundle::open(&p)),
        }
        .py_err(py)?;
        let params = bundle.params();
        let mut options = LoadOptions::default();
        if let Some(pairs) = aliases {
            let mut map = AliasMap::new();
            for (p, o) in pairs {
                let p = p.resolve(py, "aliases", &params).py_err(py)?;
                map.insert(p, o).py_err(py)?;
            }
            options.aliases = Some(map);
        }
        for (p, n) in names {
            let p = p.resolve(py, "names", &params).py_err(py)?;
            options.names.insert(p, n);
        }
        Ok(LoadRequest {
            backend,
            profile,
            bundle,
            options,
        })
    }
}

/// The error for a weight given twice in one load.
pub(crate) fn weight_given_twice(p: usize, spec: &statetensor_core::TensorSpec) -> Error {
    Error::invalid_input(
        "weights",
        format!("parameter {p} ({}) is given twice", spec.name),
    )
}

#[pymethods]
impl NativeModel {
    /// Loads a model. `aliases`: `{param: output}` replacing the module's own map;
    /// `weights`: `{param: array}` made resident; `names`: `{param: name}`.
    #[staticmethod]
    #[pyo3(signature = (source, name, aliases, weights, names, backend, device))]
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
    ) -> PyResult<NativeModel> {
        let LoadRequest {
            backend,
            profile,
            bundle,
            options: mut opts,
        } = LoadRequest::prepare(py, source, &name, aliases, names, backend, device)?;
        let params = bundle.params();
        for (p, value) in weights {
            let p = p.resolve(py, "weights", &params).py_err(py)?;
            let array = ArrayIn::borrow(&value, &format!("weight {p} ({})", params[p].name))?;
            let value = array.to_host("weights", p, &params[p]).py_err(py)?;
            if opts.weights.insert(p, Some(value)).is_some() {
                return Err(to_py(py, weight_given_twice(p, &params[p])));
            }
        }
        let (dev, model) = py
            .detach(|| -> Result<_> {
                let dev = Device::open(backend, &profile)?;
                let model = dev.load(&bundle, &opts)?;
                Ok((dev, model))
            })
            .py_err(py)?;
        Ok(NativeModel {
            model,
            backend,
            device: dev.describe(),
            profile,
            source: bundle.source().to_string(),
            loaded_at: Instant::now(),
            record: Mutex::new(Record {
                per_step: Vec::new(),
                states_started_at_zeros: Vec::new(),
            }),
        })
    }

    /// `{"params": [...], "outputs": [...]}`: each parameter's name, dtype, shape, role
    /// (`input`, `state`, `weight`) and, for a state, its output; each output's dtype, shape
    /// and the state it updates (or `None`).
    fn signature<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        signature_dict(py, self.model.signature())
    }

    /// The backend's name.
    #[getter]
    fn backend(&self) -> &str {
        self.model.backend()
    }

    /// The device as reports name it.
    #[getter]
    fn device(&self) -> &str {
        &self.device
    }

    /// Runs one step on state set `set`: `inputs` are the input parameters' arrays in order.
    /// Returns the outputs not aliased to state, in order, as bytearrays. The step's figures
    /// in the report are the ledger's change across the call: steps run from several
    /// Python threads at once on one model count each other's transfers.
    fn execute<'py>(
        &self,
        py: Python<'py>,
        set: &str,
        inputs: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyByteArray>>> {
        let sig = self.model.signature();
        let order = sig.input_params();
        if inputs.len() != order.len() {
            return Err(to_py(
                py,
                Error::invalid_input(
                    "call",
                    format!(
                        "{} input(s) given; the model takes {}: {}",
                        inputs.len(),
                        order.len(),
                        describe_params(sig, &order)
                    ),
                ),
            ));
        }
        let mut host = Vec::with_capacity(inputs.len());
        for (obj, &p) in inputs.iter().zip(&order) {
            let spec = &sig.params[p];
            let array = ArrayIn::borrow(obj, &format!("input {p} ({})", spec.name))?;
            host.push(array.to_host("call", p, spec).py_err(py)?);
        }
        let model = &*self.model;
        let (outputs, step) = py
            .detach(|| -> Result<_> {
                let before = model.ledger();
                let outputs = model.execute(set, &host)?;
                Ok((outputs, StepReport::from_ledger(&(model.ledger() - before))))
            })
            .py_err(py)?;
        self.record().per_step.push(step);
        outputs.iter().map(|t| host_to_bytearray(py, t)).collect()
    }

    /// The number of state `state` (a number or a name), or the error naming the states;
    /// `op` names the caller's operation in that error.
    fn state_number(&self, py: Python<'_>, op: &str, state: ParamRef) -> PyResult<usize> {
        self.state_param(py, op, &state).py_err(py)
    }

    /// The number of parameter `param` (a number or a name, by the engine's one rule).
    fn param_number(&self, py: Python<'_>, op: &str, param: ParamRef) -> PyResult<usize> {
        param
            .resolve(py, op, &self.model.signature().params)
            .py_err(py)
    }

    /// True when state set `set` exists on the device.
    fn has_state_set(&self, set: &str) -> bool {
        self.model.has_state_set(set)
    }

    /// The whole of state `state` of `set`, as a NumPy array holds it (int4 a byte a value).
    fn read_state<'py>(
        &self,
        py: Python<'py>,
        set: &str,
        state: ParamRef,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let p = self.state_param(py, "read_state", &state).py_err(py)?;
        let spec = &self.model.signature().params[p];
        let len = spec.shape.element_count() * crate::arrays::numpy_item_bytes(spec.dtype);
        let model = &*self.model;
        bytearray_with(py, len, |buf| {
            snapshot::write_state_values(model, set, spec, &mut &mut buf[..], true)
        })
    }

    /// Overwrites the whole of state `state` of `set` with `value` (checked against the
    /// state's dtype and shape before anything is written).
    fn write_state(
        &self,
        py: Python<'_>,
        set: &str,
        state: ParamRef,
        value: Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let p = self.state_param(py, "write_state", &state).py_err(py)?;
        let spec = &self.model.signature().params[p];
        let array = ArrayIn::borrow(&value, &format!("state {p} ({})", spec.name))?;
        array.check("write_state", p, spec).py_err(py)?;
        if spec.dtype.is_packed() {
            // every value checked before the first chunk reaches the device
            let what = format!("write_state '{}'", spec.name);
            packing::check_int4_values(spec.dtype, array.bytes(), 0, true, &what).py_err(py)?;
        }
        snapshot::read_state_values(&*self.model, set, spec, &mut array.bytes(), true).py_err(py)
    }

    /// Creates state set `set` (which must not exist yet): zeros, or `values`
    /// (`{state: array}`; states not named start at zeros).
    fn create_state_set(
        &self,
        py: Python<'_>,
        set: &str,
        values: Vec<(ParamRef, Bound<'_, PyAny>)>,
    ) -> PyResult<()> {
        let sig = self.model.signature();
        let op = "create_state_set";
        if self.model.has_state_set(set) {
            let e = Error::invalid_input(op, format!("state set '{set}' already exists"));
            return Err(to_py(py, e));
        }
        let mut given: Vec<(String, statetensor_core::HostTensor)> = Vec::new();
        for (r, value) in &values {
            let p = self.state_param(py, op, r).py_err(py)?;
            let spec = &sig.params[p];
            if given.iter().any(|(n, _)| *n == spec.name) {
                let e =
                    Error::invalid_input(op, format!("state {p} ({}) is given twice", spec.name));
                return Err(to_py(py, e));
            }
            let array = ArrayIn::borrow(value, &format!("state {p} ({})", spec.name))?;
            given.push((spec.name.clone(), array.to_host(op, p, spec).py_err(py)?));
        }
        let zeros: Vec<String> = sig
            .state_specs()
            .map(|s| s.name.clone())
            .filter(|n| !given.iter().any(|(g, _)| g == n))
            .collect();
        let init = if given.is_empty() {
            StateInit::Zeros
        } else {
            // states not given start at zeros
            for q in sig.state_params() {
                let spec = &sig.params[q];
                if zeros.contains(&spec.name) {
                    given.push((spec.name.clone(), statetensor_core::HostTensor::zeros(spec)));
                }
            }
            StateInit::Values(given)
        };
        let model = &*self.model;
        py.detach(|| model.create_state_set(set, init)).py_err(py)?;
        let mut record = self.record();
        for z in zeros {
            if !record.states_started_at_zeros.contains(&z) {
                record.states_started_at_zeros.push(z);
            }
        }
        Ok(())
    }

    /// Frees state set `set`.
    fn drop_state_set(&self, py: Python<'_>, set: &str) -> PyResult<()> {
        self.model.drop_state_set(set).py_err(py)
    }

    /// Zeros every state of `set`, or restores the values it was created with.
    fn reset(&self, py: Python<'_>, set: &str) -> PyResult<()> {
        self.model.reset(set).py_err(py)
    }

    /// Copies state set `from_set` into `to_set` on the device (creating it if needed).
    fn copy_state_set(&self, py: Python<'_>, from_set: &str, to_set: &str) -> PyResult<()> {
        let model = &*self.model;
        py.detach(|| model.copy_state_set(from_set, to_set))
            .py_err(py)
    }

    /// Writes every state of `set` to a safetensors file at `path` (whole, or not at all);
    /// returns its size.
    fn save_state_set(&self, py: Python<'_>, set: &str, path: std::path::PathBuf) -> PyResult<u64> {
        let model = &*self.model;
        py.detach(|| save_file(&path, |w| snapshot::save_state_set(model, set, w)))
            .py_err(py)
    }

    /// Reads a safetensors file written by `save_state_set` into `set` (creating it if
    /// needed); checked whole before anything is written.
    fn load_state_set(&self, py: Python<'_>, set: &str, path: std::path::PathBuf) -> PyResult<()> {
        let model = &*self.model;
        py.detach(|| {
            load_file(&path, |r, what| {
                snapshot::load_state_set(model, set, r, what)
            })
        })
        .py_err(py)
    }

    /// The run report since load, as JSON (the fields of the CLI's report.json).
    fn report_json(&self, py: Python<'_>) -> PyResult<String> {
        self.report().to_json().py_err(py)
    }

    /// The report as the CLI prints it.
    fn report_text(&self) -> String {
        self.report().human()
    }
}

impl NativeModel {
    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        // a panic elsewhere cannot leave the record half-updated: each update is one push
        self.record.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn report(&self) -> Report {
        let record = self.record();
        Report::of_run(
            &*self.model,
            RunFacts {
                backend: self.backend,
                device: self.device.clone(),
                profile: self.profile.clone(),
                model: self.source.clone(),
                per_step: record.per_step.clone(),
                wall_s: self.loaded_at.elapsed().as_secs_f64(),
                fed_bytes_per_step: 0,
                states_started_at_zeros: record.states_started_at_zeros.clone(),
            },
        )
    }

    /// A state by number or name; anything else is an error naming the states.
    fn state_param(&self, py: Python<'_>, op: &str, r: &ParamRef) -> Result<usize> {
        state_of(py, self.model.signature(), op, r)
    }
}

/// Writes the snapshot `save` makes to `path`, whole or not at all; returns its size.
pub(crate) fn save_file(
    path: &std::path::Path,
    save: impl FnOnce(&mut dyn std::io::Write) -> Result<u64>,
) -> Result<u64> {
    let mut size = 0;
    files::write_atomically(path, |w| {
        size = save(w)?;
        Ok(())
    })?;
    Ok(size)
}

/// Opens the snapshot at `path` for `load` (given the path to name in its errors).
pub(crate) fn load_file(
    path: &std::path::Path,
    load: impl FnOnce(&mut dyn std::io::Read, &str) -> Result<()>,
) -> Result<()> {
    let what = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::io("load state set", &what, e))?;
    load(&mut std::io::BufReader::new(file), &what)
}

/// A signature as Python sees it: `{"params": [...], "outputs": [...]}`, each parameter's
/// name, dtype, shape, role and, for a state, its output; each output's dtype, shape and
/// the state it updates (or `None`).
pub(crate) fn signature_dict<'py>(
    py: Python<'py>,
    sig: &statetensor_core::Signature,
) -> PyResult<Bound<'py, PyDict>> {
    let params = PyList::empty(py);
    for (p, spec) in sig.params.iter().enumerate() {
        let d = spec_dict(py, spec)?;
        match sig.role(p) {
            Role::Input => d.set_item("role", "input")?,
            Role::Weight => d.set_item("role", "weight")?,
            Role::State { output } => {
                d.set_item("role", "state")?;
                d.set_item("output", output)?;
            }
        }
        params.append(d)?;
    }
    let outputs = PyList::empty(py);
    for (k, spec) in sig.outputs.iter().enumerate() {
        let d = spec_dict(py, spec)?;
        d.set_item("state", sig.aliases.param_for(k))?;
        outputs.append(d)?;
    }
    let out = PyDict::new(py);
    out.set_item("params", params)?;
    out.set_item("outputs", outputs)?;
    Ok(out)
}

/// A state of `sig` by number or name; anything else is an error naming the states.
pub(crate) fn state_of(
    py: Python<'_>,
    sig: &statetensor_core::Signature,
    op: &str,
    r: &ParamRef,
) -> Result<usize> {
    let p = r.resolve(py, op, &sig.params)?;
    match sig.role(p) {
        Role::State { .. } => Ok(p),
        role => Err(Error::invalid_input(
            op,
            format!(
                "parameter {p} ({}) is a{} {role}, not a state; the states are {}",
                sig.params[p].name,
                if matches!(role, Role::Input) { "n" } else { "" },
                describe_params(sig, &sig.state_params())
            ),
        )),
    }
}

/// `0 (x.1) f32[2], 1 (cache.1) f32[2,2]`, or `none`.
pub(crate) fn describe_params(sig: &statetensor_core::Signature, ps: &[usize]) -> String {
    if ps.is_empty() {
        return "none".into();
    }
    ps.iter()
        .map(|&p| {
            format!(
                "{p} ({}) {}",
                sig.params[p].name,
                sig.params[p].type_string()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
