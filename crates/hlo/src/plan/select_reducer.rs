//! Recognising (value, index) reducers — argmax, argmin and their kin — by what they do.
//!
//! JAX, flax and torch-xla lower argmax/argmin to a variadic `reduce` over (values, iota)
//! whose region compares the accumulated pair with the next one and `select`s each output
//! from one of them, with tie-breaking and NaN rules that vary between frontends. Rather
//! than match the spellings, the planner evaluates the region *symbolically*: when it uses
//! only parameters, `compare`s between the two values or the two indices (default
//! comparison type), boolean `and`/`or`/`xor`/`not`, `select`s between parameters and a
//! root `tuple`, its result is decided entirely by how the values compare (less, equal,
//! greater, or unordered with a NaN on one side or both) and how the indices compare. There
//! are 18 such cases; evaluating the region once per case gives a table saying, for each,
//! whether each output keeps the accumulator or takes the element — exactly the region's
//! behaviour on every input, which a native kernel then applies without interpreting
//! anything. A region may reach its selects through `call`s and `fusion`s (XLA's optimised
//! dumps wrap it so) and `get-tuple-element`s of their results, and may pick an index with
//! `minimum`/`maximum` (indices are integers: equal means identical). Any other region runs
//! through the interpreter as before.

use crate::ir::{Computation, Instr, Module};
use crate::kernels::{CompareDirection, SelectTable, SELECT_CASES};

/// How two scalars compare.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rel {
    Lt,
    Eq,
    Gt,
    /// At least one is NaN.
    Unordered,
}

/// One of the 18 cases: the accumulated value vs the element's value (with which side is
/// NaN), and the accumulated index vs the element's index.
#[derive(Clone, Copy)]
struct Case {
    value: Rel,
    acc_nan: bool,
    elem_nan: bool,
    index: Rel,
}

impl Case {
    /// Case `k` of [`SELECT_CASES`], in the order [`crate::kernels::select_case`] numbers them.
    fn nth(k: usize) -> Case {
        let (v, i) = (k / 3, k % 3);
        let (value, acc_nan, elem_nan) = match v {
            0 => (Rel::Lt, false, false),
            1 => (Rel::Eq, false, false),
            2 => (Rel::Gt, false, false),
            3 => (Rel::Unordered, true, false),
            4 => (Rel::Unordered, false, true),
            _ => (Rel::Unordered, true, true),
        };
        let index = [Rel::Lt, Rel::Eq, Rel::Gt][i];
        Case {
            value,
            acc_nan,
            elem_nan,
            index,
        }
    }

    /// How parameter `x` compares with parameter `y` (0 = accumulated value, 1 =
    /// accumulated index, 2 = value, 3 = index); `None` across kinds.
    fn rel(&self, x: usize, y: usize) -> Option<Rel> {
        let flip = |r: Rel| match r {
            Rel::Lt => Rel::Gt,
            Rel::Gt => Rel::Lt,
            r => r,
        };
        let nan = |p: usize| if p == 0 { self.acc_nan } else { self.elem_nan };
        Some(match (x, y) {
            (0, 0) | (2, 2) if nan(x) => Rel::Unordered,
            (0, 0) | (2, 2) | (1, 1) | (3, 3) => Rel::Eq,
            (0, 2) => self.value,
            (2, 0) => flip(self.value),
            (1, 3) => self.index,
            (3, 1) => flip(self.index),
            _ => return None,
        })
    }
}

/// A symbolic value in the region.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sym {
    Param(usize),
    Bool(bool),
    Pair(usize, usize),
}

fn holds(dir: CompareDirection, r: Rel) -> bool {
    use CompareDirection as D;
    match (dir, r) {
        (D::Ne, Rel::Unordered) => true,
        (_, Rel::Unordered) => false,
        (D::Eq, r) => r == Rel::Eq,
        (D::Ne, r) => r != Rel::Eq,
        (D::Lt, r) => r == Rel::Lt,
        (D::Le, r) => r != Rel::Gt,
        (D::Gt, r) => r == Rel::Gt,
        (D::Ge, r) => r != Rel::Lt,
    }
}

/// Evaluates instruction `k` of `comp` for `case`, its parameters bound to `env` (the
/// region's own parameters at the top; a callee's operands inside a call or fusion).
fn eval(
    module: &Module,
    comp: &Computation,
    k: usize,
    env: &[Sym],
    case: &Case,
    depth: usize,
) -> Option<Sym> {
    if depth > 64 {
        return None;
    }
    let instr: &Instr = &comp.instrs[k];
    let arg = |i: usize| eval(module, comp, *instr.operands.get(i)?, env, case, depth + 1);
    let boolean = |i: usize| match arg(i)? {
        Sym::Bool(b) => Some(b),
        _ => None,
    };
    Some(match instr.opcode.as_str() {
        "parameter" => *env.get(instr.parameter_number?)?,
        "call" | "fusion" => {
            let callee = instr.attr(if instr.opcode == "call" {
                "to_apply"
            } else {
                "calls"
            })?;
            let callee = module
                .computations
                .iter()
                .find(|c| c.name == callee.value.trim().trim_start_matches('%'))?;
            let args = (0..instr.operands.len())
                .map(arg)
                .collect::<Option<Vec<_>>>()?;
            eval(module, callee, callee.root, &args, case, depth + 1)?
        }
        "get-tuple-element" => match (arg(0)?, instr.attr("index")?.value.trim()) {
            (Sym::Pair(a, _), "0") => Sym::Param(a),
            (Sym::Pair(_, b), "1") => Sym::Param(b),
            _ => return None,
        },
        // of the two indices (integers, so that equal means the same value)
        "minimum" | "maximum" if instr.operands.len() == 2 => match (arg(0)?, arg(1)?) {
            (Sym::Param(x @ (1 | 3)), Sym::Param(y @ (1 | 3))) => {
                let x_first = match case.rel(x, y)? {
                    Rel::Lt | Rel::Eq => instr.opcode == "minimum",
                    _ => instr.opcode == "maximum",
                };
                Sym::Param(if x_first { x } else { y })
            }
            _ => return None,
        },
        "compare" => {
            if instr.operands.len() != 2
                || instr
                    .attr("type")
                    .is_some_and(|t| t.value.trim() == "TOTALORDER")
            {
                return None;
            }
            let dir = CompareDirection::parse(instr.attr("direction")?.value.trim())?;
            match (arg(0)?, arg(1)?) {
                (Sym::Param(x), Sym::Param(y)) => Sym::Bool(holds(dir, case.rel(x, y)?)),
                _ => return None,
            }
        }
        "and" | "or" | "xor" if instr.operands.len() == 2 => {
            let (a, b) = (boolean(0)?, boolean(1)?);
            Sym::Bool(match instr.opcode.as_str() {
                "and" => a && b,
                "or" => a || b,
                _ => a != b,
            })
        }
        "not" if instr.operands.len() == 1 => Sym::Bool(!boolean(0)?),
        "select" if instr.operands.len() == 3 => match (boolean(0)?, arg(1)?, arg(2)?) {
            (p, Sym::Param(a), Sym::Param(b)) => Sym::Param(if p { a } else { b }),
            _ => return None,
        },
        "tuple" if instr.operands.len() == 2 => match (arg(0)?, arg(1)?) {
            (Sym::Param(a), Sym::Param(b)) => Sym::Pair(a, b),
            _ => return None,
        },
        _ => return None,
    })
}

/// The table of a (value, index) reducer region with parameters (value acc, index acc,
/// value, index) and integer indices, or `None` when the region is not one.
pub(super) fn select_table(
    module: &Module,
    comp: &Computation,
    index_is_integer: bool,
) -> Option<SelectTable> {
    if comp.params.len() != 4 || !index_is_integer {
        return None;
    }
    let mut table = SelectTable {
        value_from_acc: [false; SELECT_CASES],
        index_from_acc: [false; SELECT_CASES],
    };
    for k in 0..SELECT_CASES {
        let params = [Sym::Param(0), Sym::Param(1), Sym::Param(2), Sym::Param(3)];
        match eval(module, comp, comp.root, &params, &Case::nth(k), 0)? {
            Sym::Pair(v @ (0 | 2), i @ (1 | 3)) => {
                table.value_from_acc[k] = v == 0;
                table.index_from_acc[k] = i == 1;
            }
            _ => return None,
        }
    }
    Some(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JAX's argmax region (values f32, indices s32): the larger value, NaN first, the
    /// lower index on ties.
    pub(crate) const ARGMAX: &str = "r {
  a = f32[] parameter(0)
  c = f32[] parameter(2)
  gt = pred[] compare(a, c), direction=GT
  ne = pred[] compare(a, a), direction=NE
  or1 = pred[] or(gt, ne)
  sv = f32[] select(or1, a, c)
  eq = pred[] compare(a, c), direction=EQ
  b = s32[] parameter(1)
  d = s32[] parameter(3)
  lt = pred[] compare(b, d), direction=LT
  and1 = pred[] and(eq, lt)
  or2 = pred[] or(or1, and1)
  si = s32[] select(or2, b, d)
  ROOT t = (f32[], s32[]) tuple(sv, si)
}";

    fn table(region: &str) -> Option<SelectTable> {
        let text =
            format!("HloModule m\n{region}\nENTRY e {{\n  ROOT x = f32[] parameter(0)\n}}\n");
        let m = crate::parse::parse_module(&text, "t.hlo").unwrap();
        select_table(&m, &m.computations[0], true)
    }

    #[test]
    fn argmax_is_recognised_by_what_it_does() {
        let t = table(ARGMAX).expect("recognised");
        let case = |acc: usize, idx: usize| acc * 3 + idx;
        // a larger element wins: case "acc less" takes the element's value and index
        assert!(!t.value_from_acc[case(0, 0)] && !t.index_from_acc[case(0, 0)]);
        // equal values keep the lower index
        assert!(t.index_from_acc[case(1, 0)] && !t.index_from_acc[case(1, 2)]);
        // a NaN accumulator stays; a NaN element wins
        assert!(t.value_from_acc[case(3, 2)] && !t.value_from_acc[case(4, 0)]);
    }

    /// XLA's optimised form (multi_output_fusion_test): the region calls a fusion with its
    /// parameters reordered, and takes the smaller index of equal values with `minimum`.
    #[test]
    fn a_region_wrapped_in_a_fusion_is_recognised() {
        let text = "HloModule m
fused {
  v0 = f32[] parameter(0)
  v1 = f32[] parameter(1)
  ge = pred[] compare(v0, v1), direction=GE
  v = f32[] select(ge, v0, v1)
  eq = pred[] compare(v0, v1), direction=EQ
  i0 = s32[] parameter(2)
  i1 = s32[] parameter(3)
  lo = s32[] minimum(i0, i1)
  pick = s32[] select(ge, i0, i1)
  i = s32[] select(eq, lo, pick)
  ROOT t = (f32[], s32[]) tuple(v, i)
}
region {
  a = f32[] parameter(0)
  c = f32[] parameter(2)
  b = s32[] parameter(1)
  d = s32[] parameter(3)
  ROOT f = (f32[], s32[]) fusion(a, c, b, d), kind=kLoop, calls=fused
}
ENTRY e {
  ROOT x = f32[] parameter(0)
}
";
        let m = crate::parse::parse_module(text, "t.hlo").unwrap();
        let t = select_table(&m, &m.computations[1], true).expect("recognised");
        let case = |acc: usize, idx: usize| acc * 3 + idx;
        // a larger element wins; a smaller one does not
        assert!(!t.value_from_acc[case(0, 0)] && !t.index_from_acc[case(0, 0)]);
        assert!(t.value_from_acc[case(2, 2)] && t.index_from_acc[case(2, 2)]);
        // equal values: the smaller index, whichever side holds it
        assert!(t.index_from_acc[case(1, 0)] && !t.index_from_acc[case(1, 2)]);
        // a minimum of values is no choice between parameters (-0 and +0 compare equal):
        // left to the interpreter
        let bad = text.replace("v = f32[] select(ge, v0, v1)", "v = f32[] minimum(v0, v1)");
        let m = crate::parse::parse_module(&bad, "t.hlo").unwrap();
        assert!(select_table(&m, &m.computations[1], true).is_none());
    }

    #[test]
    fn anything_beyond_compare_and_select_is_left_to_the_interpreter() {
        for (from, to) in [
            // arithmetic on an index
            ("si = s32[] select(or2, b, d)", "one = s32[] constant(1)\n  bb = s32[] add(b, one)\n  si = s32[] select(or2, bb, d)"),
            // a total-order comparison
            ("direction=GT", "direction=GT, type=TOTALORDER"),
            // comparing a value with a constant
            ("ne = pred[] compare(a, a), direction=NE", "z = f32[] constant(0)\n  ne = pred[] compare(a, z), direction=NE"),
        ] {
            assert!(table(&ARGMAX.replace(from, to)).is_none(), "{to}");
        }
        let m = crate::parse::parse_module(
            &format!("HloModule m\n{ARGMAX}\nENTRY e {{\n  ROOT x = f32[] parameter(0)\n}}\n"),
            "t",
        )
        .unwrap();
        assert!(select_table(&m, &m.computations[0], false).is_none());
    }
}
