//! Engine errors as Python exceptions: the class by the error's kind, from
//! `statetensor.errors` (each also a subclass of the built-in a caller expects:
//! `ValueError` for bad input, `MemoryError` for device memory, ...).

use pyo3::prelude::*;
use pyo3::types::PyDict;
use statetensor_core::Error;

/// The Python exception for `e`.
pub(crate) fn to_py(py: Python<'_>, e: Error) -> PyErr {
    match exception(py, &e) {
        Ok(err) => err,
        // the errors module itself failed to import: say so, with the original message
        Err(import) => PyErr::new::<pyo3::exceptions::PyRuntimeError, _>(format!(
            "{e} (statetensor.errors could not be loaded: {import})"
        )),
    }
}

fn exception(py: Python<'_>, e: &Error) -> PyResult<PyErr> {
    let extra = PyDict::new(py);
    if let Error::OutOfDeviceMemory {
        requested,
        free,
        capacity,
        ..
    } = e
    {
        extra.set_item("requested", requested)?;
        extra.set_item("free", free)?;
        extra.set_item("capacity", capacity)?;
    }
    let kind = e.kind().name();
    let value = py
        .import("statetensor.errors")?
        .call_method1("_from_native", (kind, e.to_string(), extra))?;
    Ok(PyErr::from_value(value))
}

/// `Result` into `PyResult`.
pub(crate) trait IntoPy<T> {
    /// The error as its Python exception.
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for statetensor_core::Result<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}
