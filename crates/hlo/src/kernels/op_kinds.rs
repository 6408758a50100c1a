//! The elementwise operation kinds the planner resolves opcodes into.

use statetensor_core::DType;

/// A unary elementwise opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum UnaryOp {
    Abs,
    Negate,
    Sign,
    Exp,
    Expm1,
    Log,
    Log1p,
    Sqrt,
    Rsqrt,
    Cbrt,
    Tanh,
    Logistic,
    Erf,
    Sin,
    Cos,
    Tan,
    Floor,
    Ceil,
    RoundEven,
    RoundAfz,
    Not,
    IsFinite,
    Popcnt,
    Clz,
}

impl UnaryOp {
    /// The opcode for an HLO spelling.
    pub fn from_opcode(s: &str) -> Option<UnaryOp> {
        use UnaryOp::*;
        Some(match s {
            "abs" => Abs,
            "negate" => Negate,
            "sign" => Sign,
            "exponential" => Exp,
            "exponential-minus-one" => Expm1,
            "log" => Log,
            "log-plus-one" => Log1p,
            "sqrt" => Sqrt,
            "rsqrt" => Rsqrt,
            "cbrt" => Cbrt,
            "tanh" => Tanh,
            "logistic" => Logistic,
            "erf" => Erf,
            "sine" => Sin,
            "cosine" => Cos,
            "tan" => Tan,
            "floor" => Floor,
            "ceil" => Ceil,
            "round-nearest-even" => RoundEven,
            "round-nearest-afz" => RoundAfz,
            "not" => Not,
            "is-finite" => IsFinite,
            "popcnt" => Popcnt,
            "count-leading-zeros" => Clz,
            _ => return None,
        })
    }

    /// Whether the op accepts `dtype`, and the result dtype.
    pub fn result_dtype(self, d: DType) -> Option<DType> {
        use UnaryOp::*;
        let ok = match self {
            Abs | Negate | Sign => {
                d != DType::Pred && !d.is_unsigned_int()
                    || matches!(self, Negate | Sign) && d.is_int()
            }
            Not => !d.is_float(),
            Popcnt | Clz => d.is_int(),
            IsFinite => d.is_float(),
            _ => d.is_float(),
        };
        ok.then_some(if self == IsFinite { DType::Pred } else { d })
    }
}

/// A binary elementwise opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
    Power,
    Maximum,
    Minimum,
    And,
    Or,
    Xor,
    ShiftLeft,
    ShiftRightArithmetic,
    ShiftRightLogical,
    Atan2,
}

impl BinaryOp {
    /// The opcode for an HLO spelling.
    pub fn from_opcode(s: &str) -> Option<BinaryOp> {
        use BinaryOp::*;
        Some(match s {
            "add" => Add,
            "subtract" => Subtract,
            "multiply" => Multiply,
            "divide" => Divide,
            "remainder" => Remainder,
            "power" => Power,
            "maximum" => Maximum,
            "minimum" => Minimum,
            "and" => And,
            "or" => Or,
            "xor" => Xor,
            "shift-left" => ShiftLeft,
            "shift-right-arithmetic" => ShiftRightArithmetic,
            "shift-right-logical" => ShiftRightLogical,
            "atan2" => Atan2,
            _ => return None,
        })
    }

    /// Whether the op accepts operands of `d`.
    pub fn accepts(self, d: DType) -> bool {
        use BinaryOp::*;
        match self {
            And | Or | Xor => !d.is_float(),
            Maximum | Minimum => true,
            ShiftLeft | ShiftRightArithmetic | ShiftRightLogical => d.is_int(),
            Atan2 => d.is_float(),
            // XLA accepts add and multiply on pred (or and and), not the others
            Add | Multiply => true,
            Subtract | Divide | Remainder | Power => d != DType::Pred,
        }
    }
}

/// A comparison direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum CompareDirection {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareDirection {
    /// The direction for an HLO spelling (`EQ`, `LT`, ...).
    pub fn parse(s: &str) -> Option<CompareDirection> {
        Some(match s {
            "EQ" => CompareDirection::Eq,
            "NE" => CompareDirection::Ne,
            "LT" => CompareDirection::Lt,
            "LE" => CompareDirection::Le,
            "GT" => CompareDirection::Gt,
            "GE" => CompareDirection::Ge,
            _ => return None,
        })
    }

    pub(crate) fn test<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CompareDirection::Eq => a == b,
            CompareDirection::Ne => a != b,
            CompareDirection::Lt => a < b,
            CompareDirection::Le => a <= b,
            CompareDirection::Gt => a > b,
            CompareDirection::Ge => a >= b,
        }
    }
}
