//! Tensors in host memory, as callers hand them to a model and get them back.

use crate::{DType, Error, Result, Shape, TensorSpec};

/// A tensor in host memory: its type and little-endian, row-major bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTensor {
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Shape,
    /// `dtype.packed_bytes(shape.element_count())` bytes (int4 packed two to a byte, the
    /// first element in the low nibble).
    pub data: Vec<u8>,
}

impl HostTensor {
    /// A tensor from its parts; the byte count must match.
    pub fn new(dtype: DType, dims: impl Into<Vec<usize>>, data: Vec<u8>) -> Result<HostTensor> {
        let shape = Shape::new(dims);
        let want = dtype.packed_bytes(shape.element_count());
        if data.len() != want {
            return Err(Error::invalid_input(
                "host tensor",
                format!("{dtype}{shape} needs {want} bytes, got {}", data.len()),
            ));
        }
        Ok(HostTensor { dtype, shape, data })
    }

    /// A tensor of `spec`'s type, all zero bytes.
    pub fn zeros(spec: &TensorSpec) -> HostTensor {
        HostTensor {
            dtype: spec.dtype,
            shape: spec.shape.clone(),
            data: vec![0; spec.size_bytes()],
        }
    }

    /// `dtype[shape]`, as HLO prints a type.
    pub fn type_string(&self) -> String {
        format!("{}{}", self.dtype, self.shape)
    }
}
