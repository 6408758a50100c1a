//! The parsed module: computations of instructions, as HLO text spells them.
//!
//! The IR keeps attributes as raw text with their positions; the planner
//! (the planner) interprets the ones each opcode needs, so an attribute nobody needs
//! (`metadata`, `sharding`, `backend_config`, ...) is ignored rather than rejected.

use statetensor_core::{DType, Shape, TensorSpec};
use std::fmt;

/// A position in the source text (1-based); line 0 for a module read from an
/// `HloModuleProto`, which has no lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line.
    pub line: usize,
    /// Column.
    pub column: usize,
}

impl Pos {
    /// The position of everything read from an `HloModuleProto`.
    pub const PROTO: Pos = Pos { line: 0, column: 0 };
}

impl fmt::Display for Pos {
    /// `line N`, or `HloModuleProto` for a module read from one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str("HloModuleProto")
        } else {
            write!(f, "line {}", self.line)
        }
    }
}

/// A `constant`'s value: the literal text between its parentheses, or the values an
/// `HloModuleProto` carries (already decoded).
#[derive(Clone, Debug)]
pub enum Literal {
    /// As HLO text spells it.
    Text(String),
    /// Decoded from a `LiteralProto`, row-major.
    Value(std::sync::Arc<crate::Tensor>),
}

/// An array type: element type and dimensions (layout is parsed and dropped: statetensor
/// keeps every buffer row-major).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ArrayType {
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub dims: Vec<usize>,
}

impl ArrayType {
    /// Number of elements.
    pub fn element_count(&self) -> usize {
        self.dims.iter().product()
    }

    /// Size in bytes on the device (int4 packed two to a byte).
    pub fn size_bytes(&self) -> usize {
        self.dtype.packed_bytes(self.element_count())
    }

    /// The spec of a tensor of this type under `name`.
    pub fn spec(&self, name: impl Into<String>) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            dtype: self.dtype,
            shape: Shape::new(self.dims.clone()),
        }
    }
}

impl fmt::Display for ArrayType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, Shape::new(self.dims.clone()))
    }
}

/// The type of an instruction's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// An array.
    Array(ArrayType),
    /// A tuple of values.
    Tuple(Vec<Type>),
    /// XLA's `token[]` (side-effect ordering): a value that carries no data.
    Token,
}

/// One array inside a (possibly nested) tuple type: the tuple indices down to it and its
/// type.
pub type Leaf = (Vec<usize>, ArrayType);

impl Type {
    /// The array type, if this is one.
    pub fn as_array(&self) -> Option<&ArrayType> {
        match self {
            Type::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The arrays inside, depth first with their tuple indices (an array is its own leaf at
    /// `[]`; tokens carry no data and are no leaves).
    pub fn leaves(&self) -> Vec<Leaf> {
        fn walk(t: &Type, path: &mut Vec<usize>, out: &mut Vec<Leaf>) {
            match t {
                Type::Array(a) => out.push((path.clone(), a.clone())),
                Type::Tuple(el) => {
                    for (k, e) in el.iter().enumerate() {
                        path.push(k);
                        walk(e, path, out);
                        path.pop();
                    }
                }
                Type::Token => {}
            }
        }
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), &mut out);
        out
    }

    /// Total bytes of all arrays inside.
    pub fn size_bytes(&self) -> usize {
        match self {
            Type::Array(a) => a.size_bytes(),
            Type::Tuple(t) => t.iter().map(Type::size_bytes).sum(),
            Type::Token => 0,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Array(a) => a.fmt(f),
            Type::Tuple(t) => {
                f.write_str("(")?;
                for (i, e) in t.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    e.fmt(f)?;
                }
                f.write_str(")")
            }
            Type::Token => f.write_str("token[]"),
        }
    }
}

/// An attribute `name=value`, the value kept as raw text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Attribute name.
    pub name: String,
    /// Raw value text (braces included).
    pub value: String,
    /// Where the value starts.
    pub pos: Pos,
}

/// One instruction: `name = type opcode(operands), attrs...`.
#[derive(Clone, Debug)]
pub struct Instr {
    /// Name without the `%` prefix.
    pub name: String,
    /// Result type.
    pub ty: Type,
    /// Opcode as spelled (`add`, `dynamic-update-slice`, ...).
    pub opcode: String,
    /// Operands, as indices into the computation's instructions.
    pub operands: Vec<usize>,
    /// Attributes in source order.
    pub attrs: Vec<Attr>,
    /// For `constant`: its value.
    pub literal: Option<Literal>,
    /// For `parameter`: its number.
    pub parameter_number: Option<usize>,
    /// Where the instruction starts.
    pub pos: Pos,
    /// Whether the source wrote the name with XLA's `%` prefix.
    pub percent: bool,
    /// The result's layout (minor-to-major dimension order) when the source gives one for
    /// an array result. Buffers are row-major whatever it says; only a `bitcast` between
    /// layouts, which reinterprets the bytes in layout order, depends on it.
    pub layout: Option<Vec<usize>>,
}

impl Instr {
    /// The name as the source wrote it, for messages.
    pub fn written_name(&self) -> String {
        if self.percent {
            format!("%{}", self.name)
        } else {
            self.name.clone()
        }
    }

    /// The raw value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.name == name)
    }
}

/// A computation: instructions in source order, a root, and parameters by number.
#[derive(Clone, Debug)]
pub struct Computation {
    /// Name without the `%` prefix.
    pub name: String,
    /// Instructions in source order.
    pub instrs: Vec<Instr>,
    /// Index of the root instruction.
    pub root: usize,
    /// `params[p]` is the index of `parameter(p)`.
    pub params: Vec<usize>,
    /// Where the computation starts.
    pub pos: Pos,
}

/// One `input_output_alias` entry of the module header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasEntry {
    /// Output shape index (`{}` for a non-tuple root, `{o}` for tuple element o).
    pub output_index: Vec<usize>,
    /// Parameter number.
    pub param: usize,
    /// Shape index inside the parameter (`{}` for the whole parameter).
    pub param_index: Vec<usize>,
    /// `must-alias` rather than `may-alias`.
    pub must_alias: bool,
    /// Where the entry is.
    pub pos: Pos,
}

/// A parsed HLO module.
#[derive(Clone, Debug)]
pub struct Module {
    /// The module's name.
    pub name: String,
    /// File name used in messages.
    pub file: String,
    /// All computations in source order.
    pub computations: Vec<Computation>,
    /// Index of the `ENTRY` computation.
    pub entry: usize,
    /// The header's `input_output_alias` entries.
    pub aliases: Vec<AliasEntry>,
    /// The header's `buffer_donor` entries: (parameter, shape index, where).
    pub buffer_donors: Vec<(usize, Vec<usize>, Pos)>,
    /// The header's `entry_computation_layout`: parameter types and result type, with where
    /// it is (checked against the entry computation by the planner).
    pub entry_layout: Option<(Vec<Type>, Type, Pos)>,
    /// The header's `replica_count` and `num_partitions`, when it gives them.
    pub devices: DeviceCounts,
}

/// How many replicas and partitions a module was compiled for, as its header says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceCounts {
    /// `replica_count=`.
    pub replica_count: Option<usize>,
    /// `num_partitions=`.
    pub num_partitions: Option<usize>,
}

impl Module {
    /// The entry computation.
    pub fn entry(&self) -> &Computation {
        &self.computations[self.entry]
    }

    /// Index of the computation named `name`.
    pub fn computation_index(&self, name: &str) -> Option<usize> {
        let name = name.strip_prefix('%').unwrap_or(name);
        self.computations.iter().position(|c| c.name == name)
    }
}

/// Whether `order` holds each of `0..rank` once (a layout's dimension order).
pub(crate) fn is_permutation(order: &[usize], rank: usize) -> bool {
    let mut seen = vec![false; rank];
    order.len() == rank
        && order
            .iter()
            .all(|&d| d < rank && !std::mem::replace(&mut seen[d], true))
}
