//! The planner: type-checks every instruction and compiles each computation once into an
//! execution plan — resolved attributes, operand slots, a schedule, and the last use of
//! every value — so execution does no parsing and no name lookups.
//!
//! The schedule is a topological order that runs the other readers of a buffer before a
//! `dynamic-update-slice` or `scatter` overwrites it, so the update can happen in place
//! (functional semantics, DESIGN §2.4, without a defensive copy). Values are dropped after
//! their last reader.

use crate::elementwise::{BinaryOp, Direction, UnaryOp};
use crate::ir::{ArrayType, Attr, Computation, Instr, Module, Type};
use crate::literal::parse_literal;
use crate::shape_ops::{DotDims, IndexDims, Window};
use crate::tensor::Tensor;
use statetensor_core::{DType, Error, Result};
use std::collections::BTreeSet;
use std::sync::Arc;

/// An instruction with its attributes resolved.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Constant(Arc<Tensor>),
    Iota(usize),
    Unary(UnaryOp),
    Binary(BinaryOp),
    Compare(Direction, bool),
    Select,
    Clamp,
    Convert(DType),
    BitcastConvert,
    Reshape,
    Broadcast(Vec<usize>),
    Transpose(Vec<usize>),
    Copy,
    Slice {
        start: Vec<usize>,
        limit: Vec<usize>,
        stride: Vec<usize>,
    },
    DynamicSlice(Vec<usize>),
    DynamicUpdateSlice,
    Concatenate(usize),
    Pad {
        lo: Vec<i64>,
        interior: Vec<usize>,
    },
    Reverse(Vec<usize>),
    Gather {
        dims: IndexDims,
        slice_sizes: Vec<usize>,
    },
    Scatter {
        dims: IndexDims,
        comp: usize,
        reducer: Reducer,
    },
    Dot(DotDims),
    Reduce {
        dims: Vec<usize>,
        comp: usize,
        reducer: Reducer,
    },
    ReduceWindow {
        window: Window,
        comp: usize,
        reducer: Reducer,
    },
    Sort {
        dim: usize,
        comp: usize,
    },
    Tuple,
    GetTupleElement(usize),
    Call(usize),
    While {
        cond: usize,
        body: usize,
    },
    Conditional(Vec<usize>),
    Identity,
}

/// A recognised reducer computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reducer {
    /// `ROOT = op(p0, p1)`.
    Binary(BinaryOp),
    /// `ROOT = p1` (scatter's "set").
    Replace,
    /// Anything else: evaluated as a computation.
    General,
}

/// One scheduled instruction.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub op: Op,
    pub operands: Vec<usize>,
    /// `take[k]`: operand k's value is not read after this step, so it can be moved.
    pub take: Vec<bool>,
    pub out: usize,
    /// Nobody reads the result (it is dropped at once).
    pub dead: bool,
    pub ty: Type,
    pub name: String,
    pub line: usize,
}

/// A computation compiled for execution.
#[derive(Clone, Debug)]
pub(crate) struct CompPlan {
    pub name: String,
    pub steps: Vec<Step>,
    pub nslots: usize,
    /// Slot of each parameter; `None` when the parameter is never read.
    pub params: Vec<Option<usize>>,
    pub param_types: Vec<Type>,
    pub root: usize,
    pub root_ty: Type,
}

fn ctx(comp: &Computation, instr: &Instr) -> String {
    format!("line {}: %{} in {}", instr.pos.line, instr.name, comp.name)
}

/// Compiles every computation reachable from the entry.
pub(crate) fn compile(module: &Module) -> Result<Vec<Option<CompPlan>>> {
    let mut plans: Vec<Option<CompPlan>> = vec![None; module.computations.len()];
    let mut visiting = vec![false; module.computations.len()];
    compile_comp(module, module.entry, &mut plans, &mut visiting)?;
    Ok(plans)
}

fn compile_comp(
    module: &Module,
    c: usize,
    plans: &mut Vec<Option<CompPlan>>,
    visiting: &mut Vec<bool>,
) -> Result<()> {
    if plans[c].is_some() {
        return Ok(());
    }
    let comp = &module.computations[c];
    if visiting[c] {
        return Err(Error::invalid_model(
            &comp.name,
            "computation calls itself (recursion is not allowed in HLO)",
        ));
    }
    visiting[c] = true;
    // callees first, so their signatures are known
    for instr in &comp.instrs {
        for name in called_names(instr) {
            let (n, attr) = name;
            let Some(idx) = module.computation_index(&n) else {
                return Err(Error::invalid_model(
                    ctx(comp, instr),
                    format!("{attr}={n}: no computation named '{n}' in the module"),
                ));
            };
            compile_comp(module, idx, plans, visiting)?;
        }
    }
    let plan = Planner {
        module,
        comp,
        plans,
    }
    .plan()?;
    plans[c] = Some(plan);
    visiting[c] = false;
    Ok(())
}

/// Names of the computations an instruction calls, with the attribute naming each.
fn called_names(instr: &Instr) -> Vec<(String, &'static str)> {
    let mut v = Vec::new();
    for key in [
        "to_apply",
        "calls",
        "condition",
        "body",
        "true_computation",
        "false_computation",
    ] {
        if let Some(a) = instr.attr(key) {
            v.push((a.value.trim_start_matches('%').to_string(), key));
        }
    }
    if let Some(a) = instr.attr("branch_computations") {
        for n in a.value.trim_matches(|c| c == '{' || c == '}').split(',') {
            let n = n.trim().trim_start_matches('%');
            if !n.is_empty() {
                v.push((n.to_string(), "branch_computations"));
            }
        }
    }
    v
}

struct Planner<'a> {
    module: &'a Module,
    comp: &'a Computation,
    plans: &'a Vec<Option<CompPlan>>,
}

/// Parses `{1,2,3}` (or `{}`) into numbers.
pub(crate) fn int_list(s: &str) -> Option<Vec<i64>> {
    let inner = s.trim().strip_prefix('{')?.strip_suffix('}')?.trim();
    if inner.is_empty() {
        return Some(Vec::new());
    }
    inner.split(',').map(|x| x.trim().parse().ok()).collect()
}

impl<'a> Planner<'a> {
    fn err<T>(&self, instr: &Instr, msg: impl Into<String>) -> Result<T> {
        Err(Error::invalid_model(ctx(self.comp, instr), msg))
    }

    fn attr<'i>(&self, instr: &'i Instr, name: &str) -> Result<&'i Attr> {
        match instr.attr(name) {
            Some(a) => Ok(a),
            None => self.err(instr, format!("{} needs attribute '{name}'", instr.opcode)),
        }
    }

    fn usize_list(&self, instr: &Instr, name: &str) -> Result<Vec<usize>> {
        let a = self.attr(instr, name)?;
        match int_list(&a.value) {
            Some(v) if v.iter().all(|&x| x >= 0) => Ok(v.into_iter().map(|x| x as usize).collect()),
            _ => self.err(
                instr,
                format!(
                    "attribute {name}={} : expected a list like {{0,1}}",
                    a.value
                ),
            ),
        }
    }

    fn opt_usize_list(&self, instr: &Instr, name: &str) -> Result<Vec<usize>> {
        if instr.attr(name).is_some() {
            self.usize_list(instr, name)
        } else {
            Ok(Vec::new())
        }
    }

    fn usize_attr(&self, instr: &Instr, name: &str) -> Result<usize> {
        let a = self.attr(instr, name)?;
        match a.value.trim().parse() {
            Ok(v) => Ok(v),
            Err(_) => self.err(
                instr,
                format!("attribute {name}={}: expected a number", a.value),
            ),
        }
    }

    fn comp_attr(&self, instr: &Instr, name: &str) -> Result<usize> {
        let a = self.attr(instr, name)?;
        self.module.computation_index(a.value.trim()).map_or_else(
            || self.err(instr, format!("no computation named '{}'", a.value)),
            Ok,
        )
    }

    fn plan_of(&self, c: usize) -> &CompPlan {
        self.plans[c].as_ref().expect("callees are compiled first")
    }

    fn array<'t>(&self, instr: &Instr, t: &'t Type, what: &str) -> Result<&'t ArrayType> {
        match t {
            Type::Array(a) => Ok(a),
            other => self.err(instr, format!("{what} must be an array, found {other}")),
        }
    }

    fn plan(&self) -> Result<CompPlan> {
        let comp = self.comp;
        let n = comp.instrs.len();
        let mut ops: Vec<Option<Op>> = vec![None; n];
        // Type-check in dependency order (operands may be printed after their users).
        let order = self.topo_order()?;
        for &i in &order {
            let instr = &comp.instrs[i];
            if instr.opcode == "parameter" {
                if let Type::Token = instr.ty {
                    return self.err(instr, "token parameters are not supported");
                }
                continue;
            }
            let operand_types: Vec<&Type> =
                instr.operands.iter().map(|&o| &comp.instrs[o].ty).collect();
            let (op, ty) = self.op(instr, &operand_types)?;
            if ty != instr.ty {
                return self.err(
                    instr,
                    format!(
                        "{} produces {ty}, but the instruction declares {}",
                        instr.opcode, instr.ty
                    ),
                );
            }
            ops[i] = Some(op);
        }
        let schedule = self.schedule(&order);
        // last use of every slot in schedule order
        let mut last_use = vec![None; n];
        for (si, &i) in schedule.iter().enumerate() {
            for (k, &o) in comp.instrs[i].operands.iter().enumerate() {
                last_use[o] = Some((si, k));
            }
        }
        let mut steps = Vec::with_capacity(schedule.len());
        for (si, &i) in schedule.iter().enumerate() {
            let instr = &comp.instrs[i];
            let take = instr
                .operands
                .iter()
                .enumerate()
                .map(|(k, &o)| o != comp.root && last_use[o] == Some((si, k)))
                .collect();
            steps.push(Step {
                op: ops[i]
                    .take()
                    .expect("every scheduled instruction was planned"),
                operands: instr.operands.clone(),
                take,
                out: i,
                dead: last_use[i].is_none() && i != comp.root,
                ty: instr.ty.clone(),
                name: instr.name.clone(),
                line: instr.pos.line,
            });
        }
        let params = comp
            .params
            .iter()
            .map(|&i| (last_use[i].is_some() || i == comp.root).then_some(i))
            .collect();
        let param_types = comp
            .params
            .iter()
            .map(|&i| comp.instrs[i].ty.clone())
            .collect();
        Ok(CompPlan {
            name: comp.name.clone(),
            steps,
            nslots: n,
            params,
            param_types,
            root: comp.root,
            root_ty: comp.instrs[comp.root].ty.clone(),
        })
    }

    /// Instructions reachable from the root, operands before users (parameters included).
    fn topo_order(&self) -> Result<Vec<usize>> {
        let comp = self.comp;
        let n = comp.instrs.len();
        let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
        let mut order = Vec::new();
        let mut stack = vec![(comp.root, 0usize)];
        while let Some((i, k)) = stack.pop() {
            if k == 0 {
                if state[i] == 2 {
                    continue;
                }
                state[i] = 1;
            }
            let ops = &comp.instrs[i].operands;
            if k < ops.len() {
                stack.push((i, k + 1));
                let o = ops[k];
                match state[o] {
                    0 => stack.push((o, 0)),
                    1 => {
                        return self.err(
                            &comp.instrs[i],
                            format!("operand cycle through %{}", comp.instrs[o].name),
                        )
                    }
                    _ => {}
                }
            } else {
                state[i] = 2;
                order.push(i);
            }
        }
        Ok(order)
    }

    /// Greedy list schedule: source order among ready instructions, except that an
    /// in-place updater waits while other readers of its buffer are still pending.
    fn schedule(&self, order: &[usize]) -> Vec<usize> {
        let comp = self.comp;
        let n = comp.instrs.len();
        let live: Vec<bool> = {
            let mut l = vec![false; n];
            order.iter().for_each(|&i| l[i] = true);
            l
        };
        let is_param = |i: usize| comp.instrs[i].opcode == "parameter";
        let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut pending_ops = vec![0usize; n];
        let mut readers_left = vec![0usize; n];
        for &i in order {
            if is_param(i) {
                continue;
            }
            let mut seen = BTreeSet::new();
            for &o in &comp.instrs[i].operands {
                readers_left[o] += 1;
                if !is_param(o) && seen.insert(o) {
                    pending_ops[i] += 1;
                    users[o].push(i);
                }
            }
        }
        let destructive = |i: usize| {
            matches!(
                comp.instrs[i].opcode.as_str(),
                "dynamic-update-slice" | "scatter"
            )
        };
        let mut ready: BTreeSet<usize> = order
            .iter()
            .copied()
            .filter(|&i| !is_param(i) && pending_ops[i] == 0)
            .collect();
        let mut out = Vec::with_capacity(order.len());
        while !ready.is_empty() {
            let pick = ready
                .iter()
                .copied()
                .find(|&i| {
                    !(destructive(i)
                        && comp.instrs[i]
                            .operands
                            .first()
                            .is_some_and(|&o| readers_left[o] > 1))
                })
                .or_else(|| ready.iter().next().copied())
                .expect("ready is not empty");
            ready.remove(&pick);
            out.push(pick);
            for &o in &comp.instrs[pick].operands {
                readers_left[o] -= 1;
            }
            for &u in &users[pick] {
                pending_ops[u] -= 1;
                if pending_ops[u] == 0 && live[u] {
                    ready.insert(u);
                }
            }
        }
        out
    }

    /// Resolves one instruction and infers its type from its operands.
    fn op(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        let opc = instr.opcode.as_str();
        let want = |k: usize| -> Result<()> {
            if ots.len() != k {
                return self.err(
                    instr,
                    format!("{opc} takes {k} operand(s), found {}", ots.len()),
                );
            }
            Ok(())
        };
        let arr = |k: usize| match ots.get(k) {
            Some(t) => self.array(instr, t, &format!("operand {k} of {opc}")),
            None => self.err(instr, format!("{opc} is missing operand {k}")),
        };
        let declared = || self.array(instr, &instr.ty, &format!("the result of {opc}"));
        let same_dims = |a: &ArrayType, b: &ArrayType, what: &str| -> Result<()> {
            if a.dims != b.dims {
                return self.err(instr, format!("{opc}: {what} dims differ: {a} vs {b}"));
            }
            Ok(())
        };
        if let Some(u) = UnaryOp::from_opcode(opc) {
            want(1)?;
            let a = arr(0)?;
            let Some(d) = u.result_dtype(a.dtype) else {
                return self.err(instr, format!("{opc} does not accept {}", a.dtype));
            };
            return Ok((
                Op::Unary(u),
                Type::Array(ArrayType {
                    dtype: d,
                    dims: a.dims.clone(),
                }),
            ));
        }
        if let Some(b) = BinaryOp::from_opcode(opc) {
            want(2)?;
            let (x, y) = (arr(0)?, arr(1)?);
            if x != y {
                return self.err(
                    instr,
                    format!("{opc} operands must have one type, found {x} and {y}"),
                );
            }
            if !b.accepts(x.dtype) {
                return self.err(instr, format!("{opc} does not accept {}", x.dtype));
            }
            return Ok((Op::Binary(b), Type::Array(x.clone())));
        }
        Ok(match opc {
            "constant" => {
                let d = declared()?;
                let text = instr.literal.as_deref().unwrap_or("");
                let t = parse_literal(text, d)
                    .map_err(|m| Error::invalid_model(ctx(self.comp, instr), m))?;
                (Op::Constant(Arc::new(t)), instr.ty.clone())
            }
            "iota" => {
                want(0)?;
                let d = declared()?;
                let dim = self.usize_attr(instr, "iota_dimension")?;
                if dim >= d.dims.len() {
                    return self.err(
                        instr,
                        format!("iota_dimension {dim} is out of range for {d}"),
                    );
                }
                (Op::Iota(dim), instr.ty.clone())
            }
            "compare" => {
                want(2)?;
                let (x, y) = (arr(0)?, arr(1)?);
                if x != y {
                    return self.err(
                        instr,
                        format!("compare operands must have one type, found {x} and {y}"),
                    );
                }
                let dir_attr = self.attr(instr, "direction")?;
                let Some(dir) = Direction::parse(dir_attr.value.trim()) else {
                    return self.err(
                        instr,
                        format!(
                            "direction={}: expected EQ, NE, LT, LE, GT or GE",
                            dir_attr.value
                        ),
                    );
                };
                let total = instr
                    .attr("type")
                    .is_some_and(|a| a.value.trim() == "TOTALORDER");
                (
                    Op::Compare(dir, total),
                    Type::Array(ArrayType {
                        dtype: DType::Pred,
                        dims: x.dims.clone(),
                    }),
                )
            }
            "select" => {
                want(3)?;
                let (p, t, f) = (arr(0)?, arr(1)?, arr(2)?);
                if p.dtype != DType::Pred || (!p.dims.is_empty() && p.dims != t.dims) {
                    return self.err(instr, format!("select predicate must be pred with the branches' dims (or scalar), found {p}"));
                }
                if t != f {
                    return self.err(
                        instr,
                        format!("select branches must have one type, found {t} and {f}"),
                    );
                }
                (Op::Select, Type::Array(t.clone()))
            }
            "clamp" => {
                want(3)?;
                let (lo, x, hi) = (arr(0)?, arr(1)?, arr(2)?);
                for b in [lo, hi] {
                    if b.dtype != x.dtype || (!b.dims.is_empty() && b.dims != x.dims) {
                        return self.err(
                            instr,
                            format!("clamp bounds must be {} scalars or {x}, found {b}", x.dtype),
                        );
                    }
                }
                (Op::Clamp, Type::Array(x.clone()))
            }
            "convert" => {
                want(1)?;
                let (a, d) = (arr(0)?, declared()?);
                same_dims(a, d, "operand and result")?;
                (Op::Convert(d.dtype), instr.ty.clone())
            }
            "bitcast-convert" => {
                want(1)?;
                let (a, d) = (arr(0)?, declared()?);
                if a.size_bytes() != d.size_bytes() {
                    return self.err(
                        instr,
                        format!("bitcast-convert from {a} to {d} changes the byte size"),
                    );
                }
                (Op::BitcastConvert, instr.ty.clone())
            }
            "bitcast" if arr(0)?.dtype != declared()?.dtype => {
                // XLA's layout-level bitcast may also reinterpret the element type
                want(1)?;
                let (a, d) = (arr(0)?, declared()?);
                if a.size_bytes() != d.size_bytes() {
                    return self.err(
                        instr,
                        format!("bitcast from {a} to {d} changes the byte size"),
                    );
                }
                (Op::BitcastConvert, instr.ty.clone())
            }
            "reshape" | "bitcast" => {
                want(1)?;
                let (a, d) = (arr(0)?, declared()?);
                if a.dtype != d.dtype || a.element_count() != d.element_count() {
                    return self.err(
                        instr,
                        format!("{opc} from {a} to {d} changes the element type or count"),
                    );
                }
                (Op::Reshape, instr.ty.clone())
            }
            "broadcast" => {
                want(1)?;
                let (a, d) = (arr(0)?, declared()?);
                let dims = self.usize_list(instr, "dimensions")?;
                let mut seen = BTreeSet::new();
                if dims.len() != a.dims.len()
                    || a.dtype != d.dtype
                    || dims.iter().enumerate().any(|(i, &t)| {
                        t >= d.dims.len()
                            || !seen.insert(t)
                            || (a.dims[i] != d.dims[t] && a.dims[i] != 1)
                    })
                {
                    return self.err(
                        instr,
                        format!("broadcast of {a} to {d} with dimensions={dims:?} is inconsistent"),
                    );
                }
                (Op::Broadcast(dims), instr.ty.clone())
            }
            "transpose" => {
                want(1)?;
                let a = arr(0)?;
                let perm = self.usize_list(instr, "dimensions")?;
                let mut sorted = perm.clone();
                sorted.sort_unstable();
                if sorted != (0..a.dims.len()).collect::<Vec<_>>() {
                    return self.err(
                        instr,
                        format!(
                            "transpose dimensions={perm:?} is not a permutation of {} axes",
                            a.dims.len()
                        ),
                    );
                }
                let dims = perm.iter().map(|&p| a.dims[p]).collect();
                (
                    Op::Transpose(perm),
                    Type::Array(ArrayType {
                        dtype: a.dtype,
                        dims,
                    }),
                )
            }
            "copy" | "opt-barrier" | "optimization-barrier" => {
                want(1)?;
                (
                    if opc == "copy" {
                        Op::Copy
                    } else {
                        Op::Identity
                    },
                    ots[0].clone(),
                )
            }
            "slice" => {
                want(1)?;
                let a = arr(0)?;
                let spec = self.attr(instr, "slice")?;
                let Some(parts) = parse_slice(&spec.value) else {
                    return self.err(
                        instr,
                        format!(
                            "slice={}: expected {{[start:limit:stride], ...}}",
                            spec.value
                        ),
                    );
                };
                if parts.len() != a.dims.len() {
                    return self.err(instr, format!("slice has {} ranges for {a}", parts.len()));
                }
                let mut dims = Vec::new();
                for (k, &(s, l, st)) in parts.iter().enumerate() {
                    if s > l || l > a.dims[k] || st == 0 {
                        return self.err(
                            instr,
                            format!(
                                "slice range [{s}:{l}:{st}] is invalid for dimension {k} of {a}"
                            ),
                        );
                    }
                    dims.push((l - s).div_ceil(st));
                }
                let op = Op::Slice {
                    start: parts.iter().map(|p| p.0).collect(),
                    limit: parts.iter().map(|p| p.1).collect(),
                    stride: parts.iter().map(|p| p.2).collect(),
                };
                (
                    op,
                    Type::Array(ArrayType {
                        dtype: a.dtype,
                        dims,
                    }),
                )
            }
            "dynamic-slice" => {
                let a = arr(0)?;
                want(1 + a.dims.len())?;
                self.check_scalar_ints(instr, ots, 1)?;
                let sizes = self.usize_list(instr, "dynamic_slice_sizes")?;
                if sizes.len() != a.dims.len() || sizes.iter().zip(&a.dims).any(|(s, d)| s > d) {
                    return self.err(
                        instr,
                        format!("dynamic_slice_sizes={sizes:?} does not fit {a}"),
                    );
                }
                (
                    Op::DynamicSlice(sizes.clone()),
                    Type::Array(ArrayType {
                        dtype: a.dtype,
                        dims: sizes,
                    }),
                )
            }
            "dynamic-update-slice" => {
                let a = arr(0)?;
                want(2 + a.dims.len())?;
                let u = arr(1)?;
                if u.dtype != a.dtype
                    || u.dims.len() != a.dims.len()
                    || u.dims.iter().zip(&a.dims).any(|(x, y)| x > y)
                {
                    return self.err(instr, format!("update {u} does not fit operand {a}"));
                }
                self.check_scalar_ints(instr, ots, 2)?;
                (Op::DynamicUpdateSlice, Type::Array(a.clone()))
            }
            "concatenate" => {
                if ots.is_empty() {
                    return self.err(instr, "concatenate needs at least one operand");
                }
                let dims = self.usize_list(instr, "dimensions")?;
                let a = arr(0)?;
                let Some(&d) = dims
                    .first()
                    .filter(|&&d| dims.len() == 1 && d < a.dims.len())
                else {
                    return self.err(
                        instr,
                        format!("concatenate dimensions={dims:?} is not one axis of {a}"),
                    );
                };
                let mut out = a.dims.clone();
                for k in 1..ots.len() {
                    let b = arr(k)?;
                    let ok = b.dtype == a.dtype
                        && b.dims.len() == a.dims.len()
                        && b.dims
                            .iter()
                            .zip(&a.dims)
                            .enumerate()
                            .all(|(i, (x, y))| i == d || x == y);
                    if !ok {
                        return self.err(instr, format!("concatenate operand {k} {b} does not match {a} outside dimension {d}"));
                    }
                    out[d] += b.dims[d];
                }
                (
                    Op::Concatenate(d),
                    Type::Array(ArrayType {
                        dtype: a.dtype,
                        dims: out,
                    }),
                )
            }
            "pad" => {
                want(2)?;
                let (a, v) = (arr(0)?, arr(1)?);
                if v.dtype != a.dtype || !v.dims.is_empty() {
                    return self.err(
                        instr,
                        format!("pad value must be a {} scalar, found {v}", a.dtype),
                    );
                }
                let spec = self.attr(instr, "padding")?;
                let Some(cfg) = parse_padding(&spec.value) else {
                    return self.err(
                        instr,
                        format!(
                            "padding={}: expected lo_hi[_interior] per dimension, joined by 'x'",
                            spec.value
                        ),
                    );
                };
                if cfg.len() != a.dims.len() {
                    return self.err(instr, format!("padding has {} entries for {a}", cfg.len()));
                }
                let mut dims = Vec::new();
                for (k, &(lo, hi, int)) in cfg.iter().enumerate() {
                    let n = a.dims[k] as i64;
                    let size = lo + hi + n + (n - 1).max(0) * int;
                    if int < 0 || size < 0 {
                        return self.err(
                            instr,
                            format!("padding {lo}_{hi}_{int} is invalid for dimension {k} of {a}"),
                        );
                    }
                    dims.push(size as usize);
                }
                let op = Op::Pad {
                    lo: cfg.iter().map(|c| c.0).collect(),
                    interior: cfg.iter().map(|c| c.2 as usize).collect(),
                };
                (
                    op,
                    Type::Array(ArrayType {
                        dtype: a.dtype,
                        dims,
                    }),
                )
            }
            "reverse" => {
                want(1)?;
                let a = arr(0)?;
                let dims = self.usize_list(instr, "dimensions")?;
                if dims.iter().any(|&d| d >= a.dims.len()) {
                    return self.err(
                        instr,
                        format!("reverse dimensions={dims:?} out of range for {a}"),
                    );
                }
                (Op::Reverse(dims), Type::Array(a.clone()))
            }
            "gather" => self.gather(instr, ots)?,
            "scatter" => self.scatter(instr, ots)?,
            "dot" => self.dot(instr, ots)?,
            "reduce" => self.reduce(instr, ots)?,
            "reduce-window" => self.reduce_window(instr, ots)?,
            "sort" => {
                if ots.is_empty() {
                    return self.err(instr, "sort needs at least one operand");
                }
                let a = arr(0)?;
                for k in 1..ots.len() {
                    same_dims(a, arr(k)?, "sort operand")?;
                }
                let dims = self.usize_list(instr, "dimensions")?;
                let Some(&dim) = dims
                    .first()
                    .filter(|&&d| dims.len() == 1 && d < a.dims.len())
                else {
                    return self.err(
                        instr,
                        format!("sort dimensions={dims:?} is not one axis of {a}"),
                    );
                };
                let comp = self.comp_attr(instr, "to_apply")?;
                let p = self.plan_of(comp);
                let scalars: Vec<Type> = ots
                    .iter()
                    .flat_map(|t| {
                        let d = t.as_array().map(|a| a.dtype).unwrap_or(DType::Pred);
                        [scalar(d), scalar(d)]
                    })
                    .collect();
                if p.param_types != scalars || p.root_ty != scalar(DType::Pred) {
                    return self.err(
                        instr,
                        format!(
                            "sort comparator '{}' must take {} scalars and return pred[]",
                            p.name,
                            scalars.len()
                        ),
                    );
                }
                let ty = if ots.len() == 1 {
                    ots[0].clone()
                } else {
                    Type::Tuple(ots.iter().map(|t| (*t).clone()).collect())
                };
                (Op::Sort { dim, comp }, ty)
            }
            "tuple" => (
                Op::Tuple,
                Type::Tuple(ots.iter().map(|t| (*t).clone()).collect()),
            ),
            "get-tuple-element" => {
                want(1)?;
                let idx = self.usize_attr(instr, "index")?;
                match ots[0] {
                    Type::Tuple(el) if idx < el.len() => {
                        (Op::GetTupleElement(idx), el[idx].clone())
                    }
                    t => return self.err(instr, format!("get-tuple-element index={idx} of {t}")),
                }
            }
            "call" | "fusion" => {
                let comp =
                    self.comp_attr(instr, if opc == "call" { "to_apply" } else { "calls" })?;
                let p = self.plan_of(comp);
                self.check_args(instr, &p.param_types, ots, &p.name)?;
                (Op::Call(comp), p.root_ty.clone())
            }
            "while" => {
                want(1)?;
                let cond = self.comp_attr(instr, "condition")?;
                let body = self.comp_attr(instr, "body")?;
                let (cp, bp) = (self.plan_of(cond), self.plan_of(body));
                self.check_args(instr, &cp.param_types, ots, &cp.name)?;
                self.check_args(instr, &bp.param_types, ots, &bp.name)?;
                if cp.root_ty != scalar(DType::Pred) || &bp.root_ty != ots[0] {
                    return self.err(
                        instr,
                        format!(
                            "while: condition must return pred[] and body must return {}",
                            ots[0]
                        ),
                    );
                }
                (Op::While { cond, body }, ots[0].clone())
            }
            "conditional" => {
                if ots.is_empty() {
                    return self.err(instr, "conditional needs a predicate or branch index");
                }
                let sel = arr(0)?;
                let branches: Vec<usize> = if sel.dtype == DType::Pred {
                    vec![
                        self.comp_attr(instr, "true_computation")?,
                        self.comp_attr(instr, "false_computation")?,
                    ]
                } else if sel.dtype == DType::S32 {
                    called_names(instr)
                        .into_iter()
                        .filter(|(_, a)| *a == "branch_computations")
                        .map(|(n, _)| {
                            self.module
                                .computation_index(&n)
                                .expect("resolved in compile_comp")
                        })
                        .collect()
                } else {
                    return self.err(
                        instr,
                        format!("conditional selector must be pred[] or s32[], found {sel}"),
                    );
                };
                if !sel.dims.is_empty() || branches.is_empty() || ots.len() != branches.len() + 1 {
                    return self.err(
                        instr,
                        format!(
                            "conditional needs a scalar selector and one operand per branch ({})",
                            branches.len()
                        ),
                    );
                }
                let mut ty = None;
                for (k, &b) in branches.iter().enumerate() {
                    let p = self.plan_of(b);
                    self.check_args(instr, &p.param_types, &ots[k + 1..k + 2], &p.name)?;
                    if ty.as_ref().is_some_and(|t| t != &p.root_ty) {
                        return self.err(instr, "conditional branches return different types");
                    }
                    ty = Some(p.root_ty.clone());
                }
                (
                    Op::Conditional(branches),
                    ty.unwrap_or(Type::Tuple(Vec::new())),
                )
            }
            "partition-id" | "replica-id" => {
                want(0)?;
                (
                    Op::Constant(Arc::new(Tensor::zeros(DType::U32, &[]))),
                    scalar(DType::U32),
                )
            }
            "custom-call" => {
                let target = instr
                    .attr("custom_call_target")
                    .map(|a| a.value.clone())
                    .unwrap_or_default();
                return Err(Error::Unsupported {
                    context: ctx(self.comp, instr),
                    what: format!("custom-call {target} (a backend-specific kernel; statetensor executes only standard HLO ops)"),
                });
            }
            other => {
                return Err(Error::Unsupported {
                    context: ctx(self.comp, instr),
                    what: format!("opcode '{other}'"),
                });
            }
        })
    }

    fn check_scalar_ints(&self, instr: &Instr, ots: &[&Type], from: usize) -> Result<()> {
        for (k, t) in ots.iter().enumerate().skip(from) {
            match t {
                Type::Array(a) if a.dims.is_empty() && a.dtype.is_int() => {}
                _ => {
                    return self.err(
                        instr,
                        format!(
                            "{} start index operand {k} must be an integer scalar, found {t}",
                            instr.opcode
                        ),
                    )
                }
            }
        }
        Ok(())
    }

    fn check_args(
        &self,
        instr: &Instr,
        params: &[Type],
        args: &[&Type],
        callee: &str,
    ) -> Result<()> {
        if params.len() != args.len() || params.iter().zip(args).any(|(p, a)| p != *a) {
            let args: Vec<String> = args.iter().map(|t| t.to_string()).collect();
            let params: Vec<String> = params.iter().map(|t| t.to_string()).collect();
            return self.err(
                instr,
                format!(
                    "'{callee}' takes ({}) but is given ({})",
                    params.join(", "),
                    args.join(", ")
                ),
            );
        }
        Ok(())
    }

    /// Recognises `ROOT op(p0, p1)` and `ROOT p1` reducers.
    fn reducer(&self, c: usize) -> Reducer {
        let comp = &self.module.computations[c];
        let root = &comp.instrs[comp.root];
        if comp.params.len() != 2 {
            return Reducer::General;
        }
        if root.parameter_number == Some(1) {
            return Reducer::Replace;
        }
        let (p0, p1) = (comp.params[0], comp.params[1]);
        if let Some(op) = BinaryOp::from_opcode(&root.opcode) {
            let commutative = matches!(
                op,
                BinaryOp::Add
                    | BinaryOp::Multiply
                    | BinaryOp::Maximum
                    | BinaryOp::Minimum
                    | BinaryOp::And
                    | BinaryOp::Or
                    | BinaryOp::Xor
            );
            if root.operands == [p0, p1] || (commutative && root.operands == [p1, p0]) {
                return Reducer::Binary(op);
            }
        }
        Reducer::General
    }

    fn index_dims(&self, instr: &Instr, names: [&str; 6]) -> Result<IndexDims> {
        Ok(IndexDims {
            window_dims: self.usize_list(instr, names[0])?,
            collapsed: self.opt_usize_list(instr, names[1])?,
            index_map: self.usize_list(instr, names[2])?,
            index_vector_dim: self.usize_attr(instr, "index_vector_dim")?,
            operand_batching: self.opt_usize_list(instr, names[4])?,
            indices_batching: self.opt_usize_list(instr, names[5])?,
        })
    }

    /// Checks the index-space attributes against operand and indices; returns the indices'
    /// batch dims (all but index_vector_dim).
    fn check_index_dims(
        &self,
        instr: &Instr,
        d: &IndexDims,
        operand: &ArrayType,
        indices: &ArrayType,
    ) -> Result<Vec<usize>> {
        let rank = operand.dims.len();
        if !indices.dtype.is_int() {
            return self.err(instr, format!("indices must be integers, found {indices}"));
        }
        if d.index_vector_dim > indices.dims.len() {
            return self.err(
                instr,
                format!(
                    "index_vector_dim={} is out of range for {indices}",
                    d.index_vector_dim
                ),
            );
        }
        let vec_len = indices.dims.get(d.index_vector_dim).copied().unwrap_or(1);
        if d.index_map.len() != vec_len {
            return self.err(
                instr,
                format!(
                    "index map has {} entries but index vectors have {vec_len}",
                    d.index_map.len()
                ),
            );
        }
        let all_in_range = d
            .index_map
            .iter()
            .chain(&d.collapsed)
            .chain(&d.operand_batching)
            .all(|&k| k < rank);
        let mut seen = BTreeSet::new();
        let distinct = d
            .collapsed
            .iter()
            .chain(&d.operand_batching)
            .all(|&k| seen.insert(k));
        if !all_in_range || !distinct || d.operand_batching.len() != d.indices_batching.len() {
            return self.err(
                instr,
                format!("index dimension numbers do not fit operand {operand}"),
            );
        }
        let batch: Vec<usize> = (0..indices.dims.len())
            .filter(|&k| k != d.index_vector_dim)
            .map(|k| indices.dims[k])
            .collect();
        for (&od, &id) in d.operand_batching.iter().zip(&d.indices_batching) {
            if id >= indices.dims.len()
                || id == d.index_vector_dim
                || indices.dims[id] != operand.dims[od]
            {
                return self.err(
                    instr,
                    format!("batching dims {od} (operand) and {id} (indices) do not match"),
                );
            }
        }
        Ok(batch)
    }

    fn gather(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        if ots.len() != 2 {
            return self.err(
                instr,
                format!("gather takes 2 operands, found {}", ots.len()),
            );
        }
        let operand = self.array(instr, ots[0], "gather operand")?;
        let indices = self.array(instr, ots[1], "gather indices")?;
        let d = self.index_dims(
            instr,
            [
                "offset_dims",
                "collapsed_slice_dims",
                "start_index_map",
                "",
                "operand_batching_dims",
                "start_indices_batching_dims",
            ],
        )?;
        let batch = self.check_index_dims(instr, &d, operand, indices)?;
        let sizes = self.usize_list(instr, "slice_sizes")?;
        if sizes.len() != operand.dims.len() || sizes.iter().zip(&operand.dims).any(|(s, o)| s > o)
        {
            return self.err(
                instr,
                format!("slice_sizes={sizes:?} does not fit {operand}"),
            );
        }
        if d.collapsed
            .iter()
            .chain(&d.operand_batching)
            .any(|&k| sizes[k] != 1)
        {
            return self.err(instr, "collapsed and batching dims must have slice size 1");
        }
        let offset_sizes: Vec<usize> = (0..operand.dims.len())
            .filter(|k| !d.collapsed.contains(k) && !d.operand_batching.contains(k))
            .map(|k| sizes[k])
            .collect();
        let out_rank = batch.len() + offset_sizes.len();
        if d.window_dims.len() != offset_sizes.len()
            || d.window_dims.iter().any(|&k| k >= out_rank)
            || d.window_dims.windows(2).any(|w| w[0] >= w[1])
        {
            return self.err(
                instr,
                format!(
                    "offset_dims={:?} does not fit {} offset dims in a rank-{out_rank} result",
                    d.window_dims,
                    offset_sizes.len()
                ),
            );
        }
        let mut dims = Vec::with_capacity(out_rank);
        let (mut bi, mut oi) = (0, 0);
        for k in 0..out_rank {
            if d.window_dims.contains(&k) {
                dims.push(offset_sizes[oi]);
                oi += 1;
            } else {
                dims.push(batch[bi]);
                bi += 1;
            }
        }
        Ok((
            Op::Gather {
                dims: d,
                slice_sizes: sizes,
            },
            Type::Array(ArrayType {
                dtype: operand.dtype,
                dims,
            }),
        ))
    }

    fn scatter(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        if ots.len() != 3 {
            return Err(Error::Unsupported {
                context: ctx(self.comp, instr),
                what: format!(
                    "scatter with {} operands (only one operand, indices and updates)",
                    ots.len()
                ),
            });
        }
        let operand = self.array(instr, ots[0], "scatter operand")?;
        let indices = self.array(instr, ots[1], "scatter indices")?;
        let updates = self.array(instr, ots[2], "scatter updates")?;
        let d = self.index_dims(
            instr,
            [
                "update_window_dims",
                "inserted_window_dims",
                "scatter_dims_to_operand_dims",
                "",
                "input_batching_dims",
                "scatter_indices_batching_dims",
            ],
        )?;
        let batch = self.check_index_dims(instr, &d, operand, indices)?;
        if updates.dtype != operand.dtype {
            return self.err(
                instr,
                format!("scatter updates {updates} and operand {operand} differ in type"),
            );
        }
        let window_operand: Vec<usize> = (0..operand.dims.len())
            .filter(|k| !d.collapsed.contains(k) && !d.operand_batching.contains(k))
            .collect();
        let scatter_dims: Vec<usize> = (0..updates.dims.len())
            .filter(|k| !d.window_dims.contains(k))
            .collect();
        let ok = d.window_dims.len() == window_operand.len()
            && d.window_dims.iter().all(|&k| k < updates.dims.len())
            && d.window_dims
                .iter()
                .zip(&window_operand)
                .all(|(&u, &o)| updates.dims[u] <= operand.dims[o])
            && scatter_dims.len() == batch.len()
            && scatter_dims
                .iter()
                .zip(&batch)
                .all(|(&u, &b)| updates.dims[u] == b);
        if !ok {
            return self.err(
                instr,
                format!(
                    "scatter updates {updates} do not fit operand {operand} and indices {indices}"
                ),
            );
        }
        let comp = self.comp_attr(instr, "to_apply")?;
        let p = self.plan_of(comp);
        let s = scalar(operand.dtype);
        if p.param_types != [s.clone(), s.clone()] || p.root_ty != s {
            return self.err(
                instr,
                format!("scatter combiner '{}' must map ({s}, {s}) to {s}", p.name),
            );
        }
        Ok((
            Op::Scatter {
                dims: d,
                comp,
                reducer: self.reducer(comp),
            },
            Type::Array(operand.clone()),
        ))
    }

    fn dot(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        if ots.len() != 2 {
            return self.err(instr, format!("dot takes 2 operands, found {}", ots.len()));
        }
        let l = self.array(instr, ots[0], "dot lhs")?;
        let r = self.array(instr, ots[1], "dot rhs")?;
        let d = DotDims {
            lhs_batch: self.opt_usize_list(instr, "lhs_batch_dims")?,
            rhs_batch: self.opt_usize_list(instr, "rhs_batch_dims")?,
            lhs_contract: self.opt_usize_list(instr, "lhs_contracting_dims")?,
            rhs_contract: self.opt_usize_list(instr, "rhs_contracting_dims")?,
        };
        let pairs_ok = |a: &[usize], b: &[usize]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(&x, &y)| x < l.dims.len() && y < r.dims.len() && l.dims[x] == r.dims[y])
        };
        let mut seen_l = BTreeSet::new();
        let mut seen_r = BTreeSet::new();
        let distinct = d
            .lhs_batch
            .iter()
            .chain(&d.lhs_contract)
            .all(|&k| seen_l.insert(k))
            && d.rhs_batch
                .iter()
                .chain(&d.rhs_contract)
                .all(|&k| seen_r.insert(k));
        if !pairs_ok(&d.lhs_batch, &d.rhs_batch)
            || !pairs_ok(&d.lhs_contract, &d.rhs_contract)
            || !distinct
        {
            return self.err(
                instr,
                format!("dot dimension numbers do not fit {l} and {r}"),
            );
        }
        let out_dtype = self.array(instr, &instr.ty, "dot result")?.dtype;
        if (l.dtype == DType::Pred) != (r.dtype == DType::Pred) {
            return self.err(instr, format!("dot of {l} and {r} mixes pred with numbers"));
        }
        let mut dims: Vec<usize> = d.lhs_batch.iter().map(|&k| l.dims[k]).collect();
        dims.extend(
            (0..l.dims.len())
                .filter(|k| !d.lhs_batch.contains(k) && !d.lhs_contract.contains(k))
                .map(|k| l.dims[k]),
        );
        dims.extend(
            (0..r.dims.len())
                .filter(|k| !d.rhs_batch.contains(k) && !d.rhs_contract.contains(k))
                .map(|k| r.dims[k]),
        );
        Ok((
            Op::Dot(d),
            Type::Array(ArrayType {
                dtype: out_dtype,
                dims,
            }),
        ))
    }

    fn reduce(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        if ots.is_empty() || ots.len() % 2 != 0 {
            return self.err(
                instr,
                format!(
                    "reduce takes N inputs and N init values, found {} operands",
                    ots.len()
                ),
            );
        }
        let n = ots.len() / 2;
        let a = self.array(instr, ots[0], "reduce input")?;
        let dims = self.usize_list(instr, "dimensions")?;
        let mut seen = BTreeSet::new();
        if dims.iter().any(|&k| k >= a.dims.len() || !seen.insert(k)) {
            return self.err(
                instr,
                format!("reduce dimensions={dims:?} out of range for {a}"),
            );
        }
        let out_dims: Vec<usize> = (0..a.dims.len())
            .filter(|k| !dims.contains(k))
            .map(|k| a.dims[k])
            .collect();
        let mut outs = Vec::new();
        let mut scalars = Vec::new();
        for k in 0..n {
            let x = self.array(instr, ots[k], "reduce input")?;
            let i = self.array(instr, ots[n + k], "reduce init")?;
            if x.dims != a.dims || !i.dims.is_empty() || i.dtype != x.dtype {
                return self.err(
                    instr,
                    format!("reduce input {k} {x} and init {i} do not fit"),
                );
            }
            outs.push(Type::Array(ArrayType {
                dtype: x.dtype,
                dims: out_dims.clone(),
            }));
            scalars.push(scalar(x.dtype));
        }
        let comp = self.comp_attr(instr, "to_apply")?;
        let p = self.plan_of(comp);
        let want_params: Vec<Type> = scalars.iter().chain(&scalars).cloned().collect();
        let want_root = if n == 1 {
            scalars[0].clone()
        } else {
            Type::Tuple(scalars.clone())
        };
        if p.param_types != want_params || p.root_ty != want_root {
            return self.err(
                instr,
                format!(
                    "reducer '{}' must map {} scalars to {want_root}",
                    p.name,
                    want_params.len()
                ),
            );
        }
        let reducer = if n == 1 {
            self.reducer(comp)
        } else {
            Reducer::General
        };
        let reducer = if reducer == Reducer::Replace {
            Reducer::General
        } else {
            reducer
        };
        let ty = if n == 1 {
            outs.remove(0)
        } else {
            Type::Tuple(outs)
        };
        Ok((
            Op::Reduce {
                dims,
                comp,
                reducer,
            },
            ty,
        ))
    }

    fn reduce_window(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        if ots.len() != 2 {
            return Err(Error::Unsupported {
                context: ctx(self.comp, instr),
                what: format!(
                    "reduce-window with {} operands (only one input and one init)",
                    ots.len()
                ),
            });
        }
        let a = self.array(instr, ots[0], "reduce-window input")?;
        let i = self.array(instr, ots[1], "reduce-window init")?;
        if !i.dims.is_empty() || i.dtype != a.dtype {
            return self.err(
                instr,
                format!("reduce-window init must be a {} scalar, found {i}", a.dtype),
            );
        }
        let spec = self.attr(instr, "window")?;
        let Some(w) = parse_window(&spec.value, a.dims.len()) else {
            return self.err(
                instr,
                format!(
                    "window={}: expected size=AxB stride=.. pad=lo_hi.. for {} dims",
                    spec.value,
                    a.dims.len()
                ),
            );
        };
        let mut dims = Vec::new();
        for k in 0..a.dims.len() {
            let n = a.dims[k] as i64;
            let base = if n == 0 {
                0
            } else {
                (n - 1) * w.base_dilation[k] as i64 + 1
            };
            let padded = base + w.pad_lo[k] + w.pad_hi[k];
            let win = (w.size[k] as i64 - 1) * w.window_dilation[k] as i64 + 1;
            dims.push(if padded < win {
                0
            } else {
                ((padded - win) / w.stride[k] as i64 + 1) as usize
            });
        }
        let comp = self.comp_attr(instr, "to_apply")?;
        let p = self.plan_of(comp);
        let s = scalar(a.dtype);
        if p.param_types != [s.clone(), s.clone()] || p.root_ty != s {
            return self.err(
                instr,
                format!("reducer '{}' must map ({s}, {s}) to {s}", p.name),
            );
        }
        let reducer = match self.reducer(comp) {
            Reducer::Replace => Reducer::General,
            r => r,
        };
        Ok((
            Op::ReduceWindow {
                window: w,
                comp,
                reducer,
            },
            Type::Array(ArrayType {
                dtype: a.dtype,
                dims,
            }),
        ))
    }
}

/// A rank-0 array type.
pub(crate) fn scalar(d: DType) -> Type {
    Type::Array(ArrayType {
        dtype: d,
        dims: Vec::new(),
    })
}

/// `{[0:2], [1:5:2]}` into (start, limit, stride) triples.
fn parse_slice(s: &str) -> Option<Vec<(usize, usize, usize)>> {
    let inner = s.trim().strip_prefix('{')?.strip_suffix('}')?.trim();
    if inner.is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(',')
        .map(|part| {
            let p = part.trim().strip_prefix('[')?.strip_suffix(']')?;
            let nums: Vec<usize> = p
                .split(':')
                .map(|x| x.trim().parse().ok())
                .collect::<Option<_>>()?;
            match nums[..] {
                [a, b] => Some((a, b, 1)),
                [a, b, c] => Some((a, b, c)),
                _ => None,
            }
        })
        .collect()
}

/// `0_1_0x2_2` into (lo, hi, interior) per dim (interior defaults to 0).
fn parse_padding(s: &str) -> Option<Vec<(i64, i64, i64)>> {
    let s = s.trim();
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split('x')
        .map(|d| {
            let n: Vec<i64> = d
                .split('_')
                .map(|x| x.trim().parse().ok())
                .collect::<Option<_>>()?;
            match n[..] {
                [lo, hi] => Some((lo, hi, 0)),
                [lo, hi, i] => Some((lo, hi, i)),
                _ => None,
            }
        })
        .collect()
}

/// `{size=1x2 stride=1x2 pad=0_0x0_1 lhs_dilate=1x1 rhs_dilate=1x1}`.
fn parse_window(s: &str, rank: usize) -> Option<Window> {
    let inner = s.trim().strip_prefix('{')?.strip_suffix('}')?.trim();
    let ones = vec![1usize; rank];
    let mut w = Window {
        size: ones.clone(),
        stride: ones.clone(),
        pad_lo: vec![0; rank],
        pad_hi: vec![0; rank],
        base_dilation: ones.clone(),
        window_dilation: ones,
    };
    let nums =
        |v: &str| -> Option<Vec<usize>> { v.split('x').map(|x| x.trim().parse().ok()).collect() };
    for field in inner.split_whitespace() {
        let (k, v) = field.split_once('=')?;
        let list = match k {
            "size" => &mut w.size,
            "stride" => &mut w.stride,
            "lhs_dilate" => &mut w.base_dilation,
            "rhs_dilate" => &mut w.window_dilation,
            "pad" => {
                let p = parse_padding(v)?;
                if p.len() != rank {
                    return None;
                }
                w.pad_lo = p.iter().map(|x| x.0).collect();
                w.pad_hi = p.iter().map(|x| x.1).collect();
                continue;
            }
            "rhs_reversal" => continue,
            _ => return None,
        };
        *list = nums(v)?;
        if list.len() != rank {
            return None;
        }
    }
    let positive = |v: &[usize]| v.iter().all(|&x| x > 0);
    (rank == 0
        || (positive(&w.stride) && positive(&w.base_dilation) && positive(&w.window_dilation)))
    .then_some(w)
}
