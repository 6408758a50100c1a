//! NumPy arrays in and out, each copied once.
//!
//! Arrays come in through NumPy's `__array_interface__` (the limited C API of Python 3.9,
//! which an abi3 wheel is built against, has no buffer protocol): the array is checked —
//! exactly a numpy.ndarray, C-contiguous, little-endian, of a dtype statetensor knows, its
//! item size what the dtype needs — and its memory is read in place while the GIL is held:
//! copied once into the step's input (or, for a state, streamed straight to the device).
//! Arrays go out as `bytearray`s filled once; the Python side views them with
//! `numpy.frombuffer` (writable, no further copy).
//!
//! dtypes are matched by NumPy's name for them, which is how `ml_dtypes` types (bfloat16,
//! float8, int4) identify themselves: their array interface says only "void".

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict, PyTuple};
use statetensor_core::{DType, Error, HostTensor, Result, TensorSpec};

/// NumPy's (and ml_dtypes') name for `dtype`: what `numpy.dtype(...)` takes, or the
/// `ml_dtypes` attribute for bfloat16, float8 and int4.
pub(crate) fn numpy_name(dtype: DType) -> &'static str {
    match dtype {
        DType::Pred => "bool",
        DType::S4 => "int4",
        DType::S8 => "int8",
        DType::S16 => "int16",
        DType::S32 => "int32",
        DType::S64 => "int64",
        DType::U4 => "uint4",
        DType::U8 => "uint8",
        DType::U16 => "uint16",
        DType::U32 => "uint32",
        DType::U64 => "uint64",
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::F32 => "float32",
        DType::F64 => "float64",
        DType::F8E4M3FN => "float8_e4m3fn",
        DType::F8E5M2 => "float8_e5m2",
    }
}

/// Bytes per element of the NumPy array holding `dtype`: int4 takes a byte per value there
/// (ml_dtypes' layout), packed two to a byte on the device.
pub(crate) fn numpy_item_bytes(dtype: DType) -> usize {
    if dtype.is_packed() {
        1
    } else {
        dtype.size_bytes()
    }
}

/// A NumPy array checked for reading in place: kept referenced, so its memory lives as long
/// as this does.
pub(crate) struct ArrayIn<'py> {
    _array: Bound<'py, PyAny>,
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub dims: Vec<usize>,
    addr: usize,
    len: usize,
}

impl<'py> ArrayIn<'py> {
    /// Checks `obj` (`what` names it in errors) and takes its address.
    pub fn borrow(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<ArrayIn<'py>> {
        let py = obj.py();
        let ndarray = py.import("numpy")?.getattr("ndarray")?;
        // exactly an ndarray: a subclass may report any address or size as its own
        if !obj.get_type().is(&ndarray) {
            return Err(PyTypeError::new_err(format!(
                "{what}: expected a numpy.ndarray (not a subclass), got {}",
                obj.get_type().name()?
            )));
        }
        let bad = |m: String| crate::errors::to_py(py, Error::invalid_input(what, m));
        let np_dtype = obj.getattr("dtype")?;
        let name: String = np_dtype.getattr("name")?.extract()?;
        let dtype = DType::ALL
            .into_iter()
            .find(|&d| numpy_name(d) == name)
            .ok_or_else(|| {
                let known: Vec<&str> = DType::ALL.into_iter().map(numpy_name).collect();
                bad(format!(
                    "dtype {name} is not one statetensor holds; expected one of {}",
                    known.join(", ")
                ))
            })?;
        let byteorder: String = np_dtype.getattr("byteorder")?.extract()?;
        if byteorder == ">" || (byteorder == "=" && cfg!(target_endian = "big")) {
            return Err(bad(format!(
                "a big-endian {name} array; expected little-endian \
                 (a.astype(a.dtype.newbyteorder('<')))"
            )));
        }
        let itemsize: usize = np_dtype.getattr("itemsize")?.extract()?;
        if itemsize != numpy_item_bytes(dtype) {
            return Err(bad(format!(
                "{name} items of {itemsize} bytes; expected {}",
                numpy_item_bytes(dtype)
            )));
        }
        let contiguous: bool = obj.getattr("flags")?.get_item("C_CONTIGUOUS")?.extract()?;
        if !contiguous {
            return Err(bad(
                "the array is not C-contiguous (a view with strides, a transpose); \
                 pass numpy.ascontiguousarray(a)"
                    .into(),
            ));
        }
        let dims: Vec<usize> = obj.getattr("shape")?.extract()?;
        let len: usize = obj.getattr("nbytes")?.extract()?;
        let interface = obj.getattr("__array_interface__")?;
        let data = interface.get_item("data")?;
        let data = data.cast::<PyTuple>()?;
        let addr: usize = data.get_item(0)?.extract()?;
        let want = dims
            .iter()
            .try_fold(itemsize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| bad(format!("shape {dims:?} overflows the address space")))?;
        if len != want {
            return Err(bad(format!("{len} bytes for {want} bytes of elements")));
        }
        Ok(ArrayIn {
            _array: obj.clone(),
            dtype,
            dims,
            addr,
            len,
        })
    }

    /// The array's bytes, in place.
    pub fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // `addr` and `len` are what NumPy reports for `_array`, exactly a numpy.ndarray (a
        // subclass could report others), checked C-contiguous, so the `len` bytes are its
        // elements; this value keeps the array referenced and the GIL is held for 'py, so no
        // Python code frees or resizes the buffer meanwhile. As for NumPy itself, another
        // thread writing the array in a GIL-free NumPy loop at that moment is a race the
        // caller must not start.
        // SAFETY: a live, unmoved, C-contiguous buffer of exactly `len` bytes (above).
        unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.len) }
    }

    /// `dtype[dims]` as errors print types.
    pub fn type_string(&self) -> String {
        HostTensor {
            dtype: self.dtype,
            shape: statetensor_core::Shape::new(self.dims.clone()),
            data: Vec::new(),
        }
        .type_string()
    }

    /// Checks the array is a value of parameter `p` specified by `spec`: the type must
    /// match exactly (no silent conversions).
    pub fn check(&self, op: &str, p: usize, spec: &TensorSpec) -> Result<()> {
        if self.dtype != spec.dtype || self.dims != spec.shape.dims() {
            return Err(spec.wrong_argument(op, p, &self.type_string()));
        }
        Ok(())
    }

    /// The array as every core's value of parameter `p`: the parameter's own type (every
    /// core the same) or with a leading axis of `cores` (core k its slice k), copied once.
    pub fn to_core_hosts(
        &self,
        op: &str,
        p: usize,
        spec: &TensorSpec,
        cores: usize,
    ) -> Result<Vec<HostTensor>> {
        if self.dims == spec.shape.dims() {
            return Ok(vec![self.to_host(op, p, spec)?; cores]);
        }
        let mut stacked = vec![cores];
        stacked.extend_from_slice(spec.shape.dims());
        if self.dtype != spec.dtype || self.dims != stacked {
            return Err(Error::invalid_input(
                op,
                format!(
                    "parameter {p} ({}) is {} on each core; got {}, expected {:?} (every core) or {stacked:?} (core k at slice k)",
                    spec.name,
                    spec.type_string(),
                    self.type_string(),
                    spec.shape.dims()
                ),
            ));
        }
        let per = self.bytes().len() / cores.max(1);
        self.bytes()
            .chunks(per.max(1))
            .take(cores)
            .map(|mut chunk| {
                if spec.dtype.is_packed() {
                    statetensor_hlo::npy::read_host_value(&mut chunk, spec, op)
                } else {
                    HostTensor::new(spec.dtype, spec.shape.dims().to_vec(), chunk.to_vec())
                }
            })
            .collect()
    }

    /// The array as a value of parameter `p` ([`ArrayIn::check`]), copied once; int4 is
    /// range-checked and packed.
    pub fn to_host(&self, op: &str, p: usize, spec: &TensorSpec) -> Result<HostTensor> {
        self.check(op, p, spec)?;
        if spec.dtype.is_packed() {
            return statetensor_hlo::npy::read_host_value(&mut self.bytes(), spec, op);
        }
        HostTensor::new(
            spec.dtype,
            spec.shape.dims().to_vec(),
            self.bytes().to_vec(),
        )
    }
}

/// A `bytearray` of `len` bytes filled by `fill` (outputs, states read back).
pub(crate) fn bytearray_with<'py>(
    py: Python<'py>,
    len: usize,
    fill: impl FnOnce(&mut [u8]) -> Result<()>,
) -> PyResult<Bound<'py, PyByteArray>> {
    let mut failure = None;
    let out = PyByteArray::new_with(py, len, |buf| {
        if let Err(e) = fill(buf) {
            failure = Some(e);
        }
        Ok(())
    })?;
    match failure {
        Some(e) => Err(crate::errors::to_py(py, e)),
        None => Ok(out),
    }
}

/// A host tensor's values as a NumPy array holds them: int4 one value per byte.
pub(crate) fn host_to_bytearray<'py>(
    py: Python<'py>,
    t: &HostTensor,
) -> PyResult<Bound<'py, PyByteArray>> {
    if !t.dtype.is_packed() {
        return Ok(PyByteArray::new(py, &t.data));
    }
    let count = t.shape.element_count();
    bytearray_with(py, count, |out| {
        statetensor_core::packing::unpack_nibbles(DType::U4, &t.data, out);
        Ok(())
    })
}

/// `{name, dtype, shape}` of a spec, for the Python side.
pub(crate) fn spec_dict<'py>(py: Python<'py>, spec: &TensorSpec) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &spec.name)?;
    d.set_item("dtype", numpy_name(spec.dtype))?;
    d.set_item("shape", PyTuple::new(py, spec.shape.dims())?)?;
    d.set_item("type", spec.type_string())?;
    Ok(d)
}
