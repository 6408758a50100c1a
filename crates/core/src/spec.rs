//! Shapes and tensor specifications.

use crate::DType;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Dimensions of an array, outermost first (row-major, as HLO's default `{n-1,...,0}` layout).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Shape(pub Vec<usize>);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Shape {
        Shape(dims.into())
    }

    /// The rank-0 shape.
    pub fn scalar() -> Shape {
        Shape(Vec::new())
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar); saturates instead of overflowing.
    pub fn element_count(&self) -> usize {
        self.0.iter().fold(1usize, |a, &d| a.saturating_mul(d))
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// A named tensor's type: name, dtype and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Name (an HLO parameter's name, or `output{K}` for outputs).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Shape,
}

impl TensorSpec {
    /// A spec from its parts.
    pub fn new(name: impl Into<String>, dtype: DType, shape: impl Into<Vec<usize>>) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            dtype,
            shape: Shape::new(shape),
        }
    }

    /// Size in bytes of the whole tensor on the device and on the wire (int4 packed two to
    /// a byte); saturates instead of overflowing.
    pub fn size_bytes(&self) -> usize {
        self.dtype.packed_bytes(self.shape.element_count())
    }

    /// `f32[2,3]`, as HLO prints a type.
    pub fn type_string(&self) -> String {
        format!("{}{}", self.dtype, self.shape)
    }

    /// The error for parameter `p` of `op`, specified by `self`, given a value of type
    /// `got` (as [`TensorSpec::type_string`] prints it).
    pub fn wrong_argument(&self, op: &str, p: usize, got: &str) -> crate::Error {
        crate::Error::invalid_input(
            op,
            format!(
                "parameter {p} ({}) expects {}, got {got}",
                self.name,
                self.type_string()
            ),
        )
    }
}

impl fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.type_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_display() {
        let s = TensorSpec::new("cache", DType::BF16, vec![2, 3, 4]);
        assert_eq!(s.size_bytes(), 48);
        assert_eq!(s.type_string(), "bf16[2,3,4]");
        assert_eq!(Shape::scalar().element_count(), 1);
        assert_eq!(Shape::new(vec![usize::MAX, 2]).element_count(), usize::MAX);
    }
}
