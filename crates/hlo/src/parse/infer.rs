//! Result types the source leaves out, inferred as XLA's parser infers them.
//!
//! XLA's HLO text may omit an instruction's result shape when it can be inferred from the
//! operands (`ROOT t = tuple(a, b)`, `x = get-tuple-element(t), index=0`, `s = add(a, b)`,
//! and an instruction written inline as an operand, `negate(add(a, b))`). The parser reads
//! such an instruction with a placeholder type and this pass fills it in once every
//! computation is read (a `call`, `map` or `conditional` needs its callee's result type),
//! in dependency order. The opcodes inferred are the ones XLA's parser infers, by the same
//! rules (XLA's ShapeInference), except `convolution` and `gather`; the others (`reshape`,
//! `convert`, `slice`, ... need more than their operands, in XLA too) must be written with
//! their type, and the error says so.

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
    "reverse",
    "while",
    "select-and-scatter",
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
    let names: HashSet<String> = comps.iter().map(|c| c.name.clone()).collect();
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
            match infer(comp, &comp.instrs[i], &roots, &names)? {
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
/// is still unknown (`roots`: the computations whose result types are known; `names`: every
/// computation's).
fn infer(
    comp: &Computation,
    instr: &Instr,
    roots: &HashMap<String, Type>,
    names: &HashSet<String>,
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
            let pads = crate::plan::parse_padding(&cfg).filter(|p| p.len() == a.dims.len());
            // checked: a padding near i64::MAX is refused, not an overflow
            let dims: Option<Vec<usize>> = pads.and_then(|pads| {
                pads.iter()
                    .zip(&a.dims)
                    .map(|(&(lo, hi, interior), &n)| crate::plan::padded_size(n, lo, hi, interior))
                    .collect()
            });
            match dims {
                Some(dims) => Type::Array(ArrayType { dtype: a.dtype, dims }),
                None => return fail(instr, format!("padding={cfg} does not fit {a}")),
            }
        }
        "sort" if n == 1 => operand(0),
        "sort" => Type::Tuple((0..n).map(operand).collect()),
        "scatter" => {
            // operands..., indices, updates...: the result has the operands' types
            if n < 3 || n % 2 == 0 {
                return fail(instr, format!("scatter needs 2N+1 operands, found {n}"));
            }
            match n / 2 {
                1 => operand(0),
                k => Type::Tuple((0..k).map(operand).collect()),
            }
        }
        "get-dimension-size" => Type::Array(ArrayType { dtype: DType::S32, dims: Vec::new() }),
        "transpose" => {
            needs(1)?;
            let perm = attr("dimensions")
                .and_then(|v| crate::plan::int_list(&v))
                .and_then(|p| p.into_iter().map(|d| usize::try_from(d).ok()).collect::<Option<Vec<usize>>>());
            match (array(0), perm) {
                (Some(a), Some(p)) if crate::plan::is_permutation(&p, a.dims.len()) => Type::Array(ArrayType {
                    dtype: a.dtype,
                    dims: p.iter().map(|&d| a.dims[d]).collect(),
                }),
                (a, _) => return fail(instr, format!("transpose needs an array operand and dimensions= permuting its {} dimensions", a.map_or(0, |a| a.dims.len()))),
            }
        }
        "broadcast" => {
            // XLA's rule when the shape is left out: the listed sizes, then the operand's
            // dimensions (for a scalar operand without dimensions=, a scalar)
            needs(1)?;
            let sizes = match attr("dimensions") {
                Some(v) => crate::plan::int_list(&v),
                None => Some(Vec::new()),
            };
            match (array(0), sizes) {
                (Some(a), Some(s)) if s.iter().all(|&x| x >= 0) => {
                    let mut dims: Vec<usize> = s.iter().map(|&x| x as usize).collect();
                    dims.extend(&a.dims);
                    Type::Array(ArrayType { dtype: a.dtype, dims })
                }
                _ => return fail(instr, "broadcast needs an array operand and dimensions= sizes".into()),
            }
        }
        "dot" => {
            needs(2)?;
            let list = |name: &str| match attr(name) {
                Some(v) => crate::plan::int_list(&v),
                None => Some(Vec::new()),
            };
            let dims = (
                list("lhs_batch_dims"),
                list("lhs_contracting_dims"),
                list("rhs_batch_dims"),
                list("rhs_contracting_dims"),
            );
            match (array(0), array(1), dims) {
                (Some(l), Some(r), (Some(lb), Some(lc), Some(rb), Some(rc)))
                    if l.dtype == r.dtype
                        && lb.len() == rb.len()
                        && lc.len() == rc.len()
                        && lb.iter().chain(&lc).all(|&d| d >= 0 && (d as usize) < l.dims.len())
                        && rb.iter().chain(&rc).all(|&d| d >= 0 && (d as usize) < r.dims.len()) =>
                {
                    let free = |a: &ArrayType, used: &[i64]| {
                        (0..a.dims.len())
                            .filter(|d| !used.contains(&(*d as i64)))
                            .map(|d| a.dims[d])
                            .collect::<Vec<_>>()
                    };
                    let mut dims: Vec<usize> = lb.iter().map(|&d| l.dims[d as usize]).collect();
                    dims.extend(free(&l, &[lb.as_slice(), &lc].concat()));
                    dims.extend(free(&r, &[rb.as_slice(), &rc].concat()));
                    Type::Array(ArrayType { dtype: l.dtype, dims })
                }
                _ => return fail(instr, "dot needs two array operands of one element type and dimension numbers within them (operands of two types: write the result type)".into()),
            }
        }
        "reduce" | "reduce-window" => {
            // inputs..., inits...: each result has its input's shape reduced and its init's
            // element type
            if n == 0 || n % 2 == 1 {
                return fail(instr, format!("{op} needs N inputs and N initial values, found {n} operands"));
            }
            let k = n / 2;
            let (Some(inputs), Some(inits)) = (
                (0..k).map(array).collect::<Option<Vec<_>>>(),
                (k..n).map(array).collect::<Option<Vec<_>>>(),
            ) else {
                return fail(instr, format!("{op} needs array operands"));
            };
            let rank = inputs[0].dims.len();
            let dims = if op == "reduce" {
                let reduced = attr("dimensions").and_then(|v| crate::plan::int_list(&v));
                match reduced {
                    Some(r) if r.iter().all(|&d| d >= 0 && (d as usize) < rank) => (0..rank)
                        .filter(|d| !r.contains(&(*d as i64)))
                        .map(|d| inputs[0].dims[d])
                        .collect::<Vec<_>>(),
                    _ => return fail(instr, format!("reduce needs dimensions= within its input's {rank}")),
                }
            } else {
                let window = attr("window").and_then(|v| crate::plan::parse_window(&v, rank));
                // an extent that overflows is refused, not a panic
                match window.and_then(|w| (0..rank).map(|d| w.output_len(d, inputs[0].dims[d])).collect()) {
                    Some(dims) => dims,
                    None => return fail(instr, format!("reduce-window needs a window= over its input's {rank} dimensions whose extents fit")),
                }
            };
            let results: Vec<Type> = inits
                .iter()
                .map(|i| Type::Array(ArrayType { dtype: i.dtype, dims: dims.clone() }))
                .collect();
            match results.len() {
                1 => results[0].clone(),
                _ => Type::Tuple(results),
            }
        }
        "conditional" => {
            let branch = attr("true_computation").or_else(|| {
                attr("branch_computations").and_then(|v| {
                    let inner = v.trim().strip_prefix('{')?.strip_suffix('}')?.to_string();
                    inner.split(',').next().map(|b| b.trim().to_string())
                })
            });
            let Some(branch) = branch else {
                return fail(instr, "conditional needs true_computation= or branch_computations=".into());
            };
            let branch = branch.trim_start_matches('%');
            match roots.get(branch) {
                Some(result) => result.clone(),
                None if names.contains(branch) => return Ok(None),
                None => return fail(instr, format!("no computation named '{branch}'")),
            }
        }
        "call" | "map" => {
            let Some(callee) = attr("to_apply") else {
                return fail(instr, format!("{op} needs to_apply="));
            };
            let callee = callee.trim_start_matches('%');
            let Some(result) = roots.get(callee) else {
                if names.contains(callee) {
                    return Ok(None);
                }
                return fail(instr, format!("no computation named '{callee}'"));
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
                "statetensor infers the result type of elementwise ops, compare, select, clamp, tuple, get-tuple-element, after-all, concatenate, pad, broadcast, transpose, reverse, dot, reduce, reduce-window, sort, scatter, select-and-scatter, while, conditional, call, map and get-dimension-size; write the type of '{op}'"
            ))
        }
    }))
}
