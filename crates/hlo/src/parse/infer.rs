//! Result types the source leaves out, inferred as XLA's parser infers them.
//!
//! XLA's HLO text may omit an instruction's result shape when it can be inferred from the
//! operands (`ROOT t = tuple(a, b)`, `x = get-tuple-element(t), index=0`, `s = add(a, b)`,
//! and an instruction written inline as an operand, `negate(add(a, b))`). The parser reads
//! such an instruction with a placeholder type and this pass fills it in once every
//! computation is read (a `call` or `map` needs its callee's result type), in dependency
//! order. Other opcodes (`reshape`, `broadcast` and `convert` need more than their operands;
//! XLA can infer a few more, such as `dot`, that statetensor does not yet) must be written
//! with their type; the error says so.

use crate::ir::{ArrayType, Computation, Instr, Pos, Type};
use statetensor_core::DType;
use std::collections::{HashMap, HashSet};

/// Opcodes whose result has the type of their first operand.
const SAME_AS_FIRST: &[&str] = &[
    "abs",
    "negate",
    "exponential",
    "exponential-minus-one",
    "log",
    "log-plus-one",
    "sqrt",
    "rsqrt",
    "cbrt",
    "tanh",
    "tan",
    "sine",
    "cosine",
    "logistic",
    "sign",
    "not",
    "floor",
    "ceil",
    "round-nearest-afz",
    "round-nearest-even",
    "popcnt",
    "count-leading-zeros",
    "erf",
    "copy",
    "add",
    "subtract",
    "multiply",
    "divide",
    "remainder",
    "maximum",
    "minimum",
    "power",
    "atan2",
    "and",
    "or",
    "xor",
    "shift-left",
    "shift-right-logical",
    "shift-right-arithmetic",
    "add-dependency",
    "optimization-barrier",
    "reduce-precision",
];

/// Fills in the types of the instructions listed in `untyped[c]` (indices into
/// computation `c`); on failure, where and why.
pub(super) fn infer_types(
    comps: &mut [Computation],
    untyped: &[Vec<usize>],
) -> Result<(), (Pos, String)> {
    let mut pending: Vec<(usize, usize)> = untyped
        .iter()
        .enumerate()
        .flat_map(|(c, is)| is.iter().map(move |&i| (c, i)))
        .collect();
    let mut untyped_now: HashSet<(usize, usize)> = pending.iter().copied().collect();
    // a computation's result type once its root is typed
    let known =
        |comps: &[Computation], untyped_now: &HashSet<(usize, usize)>| -> HashMap<String, Type> {
            comps
                .iter()
                .enumerate()
                .filter(|(c, comp)| !untyped_now.contains(&(*c, comp.root)))
                .map(|(_, comp)| (comp.name.clone(), comp.instrs[comp.root].ty.clone()))
                .collect()
        };
    while !pending.is_empty() {
        let roots = known(comps, &untyped_now);
        let mut progress = false;
        let mut k = 0;
        while k < pending.len() {
            let (c, i) = pending[k];
            let comp = &comps[c];
            let waiting = comp.instrs[i]
                .operands
                .iter()
                .any(|&o| untyped_now.contains(&(c, o)));
            if waiting {
                k += 1;
                continue;
            }
            match infer(comp, &comp.instrs[i], &roots)? {
                Some(ty) => {
                    comps[c].instrs[i].ty = ty;
                    untyped_now.remove(&(c, i));
                    pending.swap_remove(k);
                    progress = true;
                }
                None => k += 1,
            }
        }
        if !progress {
            let (c, i) = pending[0];
            let instr = &comps[c].instrs[i];
            return Err((
                instr.pos,
                format!(
                    "instruction '{}' has no result type, and its type cannot be inferred: its operands' or callee's types depend on it",
                    instr.name
                ),
            ));
        }
    }
    Ok(())
}

/// The type of `instr` from its (typed) operands, or `None` while its callee's result type
/// is still unknown.
fn infer(
    comp: &Computation,
    instr: &Instr,
    roots: &HashMap<String, Type>,
) -> Result<Option<Type>, (Pos, String)> {
    fn fail<T>(instr: &Instr, msg: String) -> Result<T, (Pos, String)> {
        Err((
            instr.pos,
            format!("instruction '{}' has no result type: {msg}", instr.name),
        ))
    }
    let operand = |k: usize| comp.instrs[instr.operands[k]].ty.clone();
    let array = |k: usize| match operand(k) {
        Type::Array(a) => Some(a),
        _ => None,
    };
    let attr = |name: &str| instr.attr(name).map(|a| a.value.trim().to_string());
    let op = instr.opcode.as_str();
    let n = instr.operands.len();
    let needs = |k: usize| {
        if n < k {
            fail(
                instr,
                format!("{op} needs {k} operand(s) to infer its type, found {n}"),
            )
        } else {
            Ok(())
        }
    };
    Ok(Some(match op {
        _ if SAME_AS_FIRST.contains(&op) => {
            needs(1)?;
            operand(0)
        }
        "select" | "clamp" => {
            needs(2)?;
            operand(1)
        }
        "compare" | "is-finite" => {
            needs(1)?;
            match array(0) {
                Some(a) => Type::Array(ArrayType { dtype: DType::Pred, dims: a.dims }),
                None => return fail(instr, format!("{op} of a non-array operand")),
            }
        }
        "tuple" => Type::Tuple(instr.operands.iter().map(|&o| comp.instrs[o].ty.clone()).collect()),
        "after-all" => Type::Token,
        "get-tuple-element" => {
            needs(1)?;
            let index = attr("index").and_then(|v| v.parse::<usize>().ok());
            match (operand(0), index) {
                (Type::Tuple(el), Some(i)) if i < el.len() => el[i].clone(),
                (t, _) => return fail(instr, format!("get-tuple-element of {t} needs an index= within it")),
            }
        }
        "concatenate" => {
            needs(1)?;
            let dim = attr("dimensions")
                .and_then(|v| crate::plan::int_list(&v))
                .and_then(|v| (v.len() == 1).then(|| v[0] as usize));
            let arrays: Option<Vec<ArrayType>> = (0..n).map(array).collect();
            match (arrays, dim) {
                (Some(a), Some(d)) if a.iter().all(|x| d < x.dims.len()) => {
                    let mut dims = a[0].dims.clone();
                    dims[d] = a.iter().map(|x| x.dims[d]).sum();
                    Type::Array(ArrayType { dtype: a[0].dtype, dims })
                }
                _ => return fail(instr, "concatenate needs array operands and dimensions={d}".into()),
            }
        }
        "pad" => {
            needs(1)?;
            let (Some(a), Some(cfg)) = (array(0), attr("padding")) else {
                return fail(instr, "pad needs an array operand and padding=".into());
            };
            let mut dims = Vec::new();
            for (d, part) in cfg.split('x').enumerate() {
                let v: Option<Vec<i64>> = part.split('_').map(|x| x.parse().ok()).collect();
                // checked: a padding near i64::MAX is refused, not an overflow
                let size = match (v.as_deref(), a.dims.get(d)) {
                    (Some(&[lo, hi]), Some(&s)) => lo.checked_add(hi).and_then(|x| x.checked_add(s as i64)),
                    (Some(&[lo, hi, int]), Some(&s)) => (s as i64 - 1)
                        .max(0)
                        .checked_mul(int)
                        .and_then(|x| x.checked_add(lo))
                        .and_then(|x| x.checked_add(hi))
                        .and_then(|x| x.checked_add(s as i64)),
                    _ => None,
                };
                match size {
                    Some(size) => dims.push(size),
                    None => return fail(instr, format!("padding={cfg} does not fit {a}")),
                }
            }
            if dims.len() != a.dims.len() || dims.iter().any(|&d| d < 0) {
                return fail(instr, format!("padding={cfg} does not fit {a}"));
            }
            Type::Array(ArrayType { dtype: a.dtype, dims: dims.into_iter().map(|d| d as usize).collect() })
        }
        "call" | "map" => {
            let Some(callee) = attr("to_apply") else {
                return fail(instr, format!("{op} needs to_apply="));
            };
            let Some(result) = roots.get(callee.trim_start_matches('%')) else {
                return Ok(None);
            };
            if op == "call" {
                result.clone()
            } else {
                needs(1)?;
                match (result, array(0)) {
                    (Type::Array(r), Some(a)) => Type::Array(ArrayType { dtype: r.dtype, dims: a.dims }),
                    _ => return fail(instr, "map needs an array operand and a callee with an array result".into()),
                }
            }
        }
        _ => {
            return fail(instr, format!(
                "statetensor infers the result type of elementwise ops, compare, select, clamp, tuple, get-tuple-element, after-all, concatenate, pad, call and map; write the type of '{op}' (as XLA requires too where it cannot infer it)"
            ))
        }
    }))
}
