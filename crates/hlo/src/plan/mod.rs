//! The planner: type-checks every instruction and compiles each computation once into an
//! execution plan — resolved attributes, operand slots, a schedule, and the last use of
//! every value — so execution does no parsing and no name lookups.
//!
//! | module | what it holds |
//! |---|---|
//! | this one | the plan's types ([`Op`], [`Step`], [`CompPlan`]), compiling a module, dispatching an instruction to its family |
//! | `attrs` | reading attributes: lists, numbers, slices, padding, windows, called computations |
//! | `schedule` | dependency order, the in-place-friendly schedule, last uses |
//! | `rewrite` | plan-time rewrites: a `dot` reads a transposed operand in place |
//! | `fuse` | chains of elementwise instructions fused into one pass over memory |
//! | `values` | elementwise ops, constants, iota, compare, select, clamp, converts, reduce-precision, rng-bit-generator |
//! | `movement` | reshape, broadcast, transpose, slices, dynamic slices and updates, concatenate, pad, reverse |
//! | `structured` | gather, scatter, dot, reduce, reduce-window, sort, and recognising reducer computations |
//! | `regions` | map and select-and-scatter, which apply a computation per element or window |
//! | `top_k` | the `topk` op and the `TopK` custom-call |
//! | `select_reducer`, `sort_comparator` | recognising (value, index) reducers and single-key sort comparators, which then run natively |
//! | `control` | tuples, calls, while, conditional, tokens |
//!
//! The schedule is a topological order that runs the other readers of a buffer before a
//! `dynamic-update-slice` or `scatter` overwrites it, so the update can happen in place
//! (functional semantics, without a defensive copy). Values are dropped after
//! their last reader.

use crate::ir::{Computation, Instr, Module, Type};
use crate::kernels::gemm::PAR_WORK;
use crate::kernels::{
    BinaryOp, CompareDirection, ConvDims, DotDims, IndexDims, UnaryOp, Window, PAR_THRESHOLD,
};
use crate::tensor::Tensor;
use statetensor_core::{DType, Error, Result};
use std::sync::Arc;

/// An instruction with its attributes resolved.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Constant(Arc<Tensor>),
    Iota(usize),
    Unary(UnaryOp),
    Binary(BinaryOp),
    Compare(CompareDirection, bool),
    Select,
    Clamp,
    Convert(DType),
    BitcastConvert,
    /// `reduce-precision`: rounded to a narrower float format, kept in its type.
    ReducePrecision {
        exponent_bits: u32,
        mantissa_bits: u32,
    },
    /// `rng-bit-generator`: (new state, random bits).
    RngBitGenerator(crate::kernels::RngAlgorithm),
    /// `map` with a computation that is not one binary op, evaluated per element.
    Map(usize),
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
    /// A `bitcast` between layouts: transpose the operand to `physical` order, reshape to
    /// the result's physical `dims`, transpose by `logical`.
    Relayout {
        physical: Vec<usize>,
        dims: Vec<usize>,
        logical: Vec<usize>,
    },
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
    Convolution(Box<ConvDims>),
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
    SelectAndScatter {
        window: Window,
        select: usize,
        /// `select` is one comparison of its parameters, run natively.
        key: Option<crate::kernels::SortKey>,
        scatter: usize,
        reducer: Reducer,
    },
    Sort {
        dim: usize,
        comp: usize,
        /// The comparator orders by one key and runs natively.
        key: Option<crate::kernels::SortKey>,
    },
    /// The first `k` along the last axis in `key`'s order, with their indices.
    TopK {
        k: usize,
        key: crate::kernels::SortKey,
    },
    Tuple,
    GetTupleElement(usize),
    /// `after-all`: a token (no data).
    AfterAll,
    /// `add-dependency(x, token)`: `x`.
    AddDependency,
    Call(usize),
    While {
        cond: usize,
        body: usize,
    },
    Conditional(Vec<usize>),
    /// A collective across the cores of an SPMD step ([`collective`]).
    Collective(Arc<collective::CollectivePlan>),
    /// `replica-id`: this core's replica.
    ReplicaId,
    /// `partition-id`: this core's partition.
    PartitionId,
    /// `async-start` of computation `comp`: ((operands), result, context zeros...).
    AsyncStart {
        comp: usize,
        context: Vec<crate::ir::ArrayType>,
    },
    Identity,
    /// A chain of elementwise instructions run in one pass ([`fuse`]).
    Fused(Arc<fuse::FusedStep>),
}

/// A recognised reducer computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reducer {
    /// `ROOT = op(p0, p1)`.
    Binary(BinaryOp),
    /// `ROOT = p1` (scatter's "set").
    Replace,
    /// A (value, index) reducer such as argmax, by its table of cases.
    Select(crate::kernels::SelectTable),
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
    /// Some step may split its work across threads ([`Op::may_split`]).
    pub parallel: bool,
}

mod attrs;
mod collective;
mod control;
mod conv;
mod fuse;
mod movement;
mod regions;
mod rewrite;
mod schedule;
mod select_reducer;
mod sort_comparator;
mod structured;
mod top_k;
mod values;

pub(crate) use attrs::{
    int_list, is_permutation, padded_size, parse_padding, parse_window, scalar,
};
pub(crate) use collective::{CollectivePlan, Form, Packing};

/// The ops of the entry computation's plan, in schedule order (for the planner's tests).
#[cfg(test)]
fn entry_ops(text: &str) -> Vec<Op> {
    let module = crate::parse::parse_module(text, "t.hlo").unwrap();
    let plans = compile(&module).unwrap();
    let plan = plans[module.entry].as_ref().unwrap();
    plan.steps.iter().map(|s| s.op.clone()).collect()
}

fn ctx(comp: &Computation, instr: &Instr) -> String {
    format!("{}: {} in {}", instr.pos, instr.written_name(), comp.name)
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
pub(super) fn called_names(instr: &Instr) -> Vec<(String, &'static str)> {
    let mut v = Vec::new();
    for key in [
        "to_apply",
        "calls",
        "condition",
        "body",
        "true_computation",
        "false_computation",
        "select",
        "scatter",
    ] {
        if let Some(a) = instr.attr(key) {
            v.push((a.value.trim_start_matches('%').to_string(), key));
        }
    }
    for key in ["branch_computations", "called_computations"] {
        if let Some(a) = instr.attr(key) {
            for n in a.value.trim_matches(|c| c == '{' || c == '}').split(',') {
                let n = n.trim().trim_start_matches('%');
                if !n.is_empty() {
                    v.push((n.to_string(), key));
                }
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

impl Op {
    /// True for ops that only move, select or index data, or run other computations: they
    /// never split their work across threads.
    pub(crate) fn moves_data(&self) -> bool {
        matches!(
            self,
            Op::Constant(_)
                | Op::Iota(_)
                | Op::Reshape
                | Op::Copy
                | Op::Identity
                | Op::Broadcast(_)
                | Op::Transpose(_)
                | Op::Slice { .. }
                | Op::DynamicSlice(_)
                | Op::DynamicUpdateSlice
                | Op::Concatenate(_)
                | Op::Pad { .. }
                | Op::Reverse(_)
                | Op::Relayout { .. }
                | Op::Gather { .. }
                | Op::Scatter { .. }
                | Op::Tuple
                | Op::GetTupleElement(_)
                | Op::AfterAll
                | Op::AddDependency
                | Op::Call(_)
                | Op::While { .. }
                | Op::Conditional(_)
        )
    }

    /// True for ops that overwrite their first operand's buffer in place when they own it
    /// (`dynamic-update-slice`, `scatter`): the schedule runs the buffer's other readers
    /// first.
    pub(crate) fn updates_in_place(&self) -> bool {
        matches!(self, Op::DynamicUpdateSlice | Op::Scatter { .. })
    }

    /// Whether this op, producing `out` from `operands`, may split its work across threads:
    /// a matrix product that may reach [`PAR_WORK`] multiply-adds, or a computing op
    /// (elementwise, reduction) with an operand or result at least [`PAR_THRESHOLD`]
    /// long. A dot's work is batch·m·n·k; lhs·rhs·out elements is batch³·m²·n²·k², so its
    /// square root bounds the work from above without reading the dimension numbers.
    pub(crate) fn may_split(&self, out: &Type, operands: &[&Type]) -> bool {
        let elements = |t: &Type| t.as_array().map_or(0, |a| a.dims.iter().product::<usize>());
        match (self, operands) {
            (Op::Dot(_) | Op::Convolution(_), [l, r]) => {
                let bound = (elements(l) as f64 * elements(r) as f64 * elements(out) as f64).sqrt();
                bound >= PAR_WORK as f64
            }
            // these kernels run on one thread
            (
                Op::Sort { .. }
                | Op::TopK { .. }
                | Op::Map(_)
                | Op::SelectAndScatter { .. }
                | Op::RngBitGenerator(_)
                | Op::Collective(_)
                | Op::AsyncStart { .. },
                _,
            ) => false,
            _ if self.moves_data() => false,
            _ => {
                let largest = operands
                    .iter()
                    .map(|t| elements(t))
                    .fold(elements(out), usize::max);
                largest >= PAR_THRESHOLD
            }
        }
    }
}

impl<'a> Planner<'a> {
    /// Resolves one instruction and infers its type from its operands, by family.
    pub(super) fn op(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        let opc = instr.opcode.as_str();
        if UnaryOp::from_opcode(opc).is_some() || BinaryOp::from_opcode(opc).is_some() {
            return self.elementwise_op(instr, ots);
        }
        match opc {
            "constant" | "iota" | "compare" | "select" | "clamp" | "convert"
            | "bitcast-convert" | "reduce-precision" | "rng-bit-generator"
            | "get-dimension-size" => self.value_op(instr, ots),
            "all-reduce"
            | "all-reduce-start"
            | "all-reduce-done"
            | "all-gather"
            | "all-gather-start"
            | "all-gather-done"
            | "reduce-scatter"
            | "all-to-all"
            | "collective-permute"
            | "collective-permute-start"
            | "collective-permute-done"
            | "collective-broadcast"
            | "reduce-scatter-start"
            | "reduce-scatter-update"
            | "reduce-scatter-done"
            | "all-to-all-start"
            | "all-to-all-update"
            | "all-to-all-done"
            | "async-start"
            | "async-update"
            | "async-done"
            | "replica-id"
            | "partition-id" => self.collective_op(instr, ots),
            "bitcast"
            | "reshape"
            | "broadcast"
            | "transpose"
            | "copy"
            | "opt-barrier"
            | "optimization-barrier"
            | "slice"
            | "dynamic-slice"
            | "dynamic-update-slice"
            | "concatenate"
            | "pad"
            | "reverse" => self.movement_op(instr, ots),
            "gather" => self.gather(instr, ots),
            "scatter" => self.scatter(instr, ots),
            "dot" => self.dot(instr, ots),
            "convolution" => self.convolution(instr, ots),
            "reduce" => self.reduce(instr, ots),
            "reduce-window" => self.reduce_window(instr, ots),
            "map" => self.map_op(instr, ots),
            "select-and-scatter" => self.select_and_scatter(instr, ots),
            "sort" => self.sort(instr, ots),
            "topk" => self.top_k_op(instr, ots),
            "tuple" | "get-tuple-element" | "call" | "fusion" | "while" | "conditional"
            | "after-all" | "add-dependency" => self.control_op(instr, ots),
            "custom-call" => {
                let target = instr
                    .attr("custom_call_target")
                    .map(|a| a.value.trim().trim_matches('"').to_string())
                    .unwrap_or_default();
                if target == "TopK" {
                    return self.top_k_custom_call(instr, ots);
                }
                Err(Error::Unsupported {
                    context: ctx(self.comp, instr),
                    what: format!("custom-call {target} (a backend-specific kernel; statetensor executes only standard HLO ops)"),
                })
            }
            other => Err(Error::Unsupported {
                context: ctx(self.comp, instr),
                what: format!("opcode '{other}'"),
            }),
        }
    }

    /// The error for an opcode dispatched to a family that does not hold it (a bug).
    pub(super) fn misrouted<T>(&self, instr: &Instr, family: &str) -> Result<T> {
        self.err(
            instr,
            format!(
                "internal: opcode '{}' reached the {family} planner",
                instr.opcode
            ),
        )
    }
}

/// Binds, for one instruction, its opcode and the operand checks every family of ops uses:
/// `want(k)` (exactly k operands), `arr(k)` (operand k as an array), `declared()` (the
/// declared result as an array) and `same_dims(a, b, what)`.
macro_rules! operand_checks {
    ($planner:ident, $instr:ident, $ots:ident => $opc:ident, $want:ident, $arr:ident, $declared:ident, $same_dims:ident) => {
        let $opc = $instr.opcode.as_str();
        #[allow(unused_variables)]
        let $want = |k: usize| -> Result<()> {
            if $ots.len() != k {
                return $planner.err(
                    $instr,
                    format!("{} takes {k} operand(s), found {}", $opc, $ots.len()),
                );
            }
            Ok(())
        };
        #[allow(unused_variables)]
        let $arr = |k: usize| match $ots.get(k) {
            Some(t) => $planner.array($instr, t, &format!("operand {k} of {}", $opc)),
            None => $planner.err($instr, format!("{} is missing operand {k}", $opc)),
        };
        #[allow(unused_variables)]
        let $declared = || $planner.array($instr, &$instr.ty, &format!("the result of {}", $opc));
        #[allow(unused_variables)]
        let $same_dims = |a: &ArrayType, b: &ArrayType, what: &str| -> Result<()> {
            if a.dims != b.dims {
                return $planner.err($instr, format!("{}: {what} dims differ: {a} vs {b}", $opc));
            }
            Ok(())
        };
    };
}
pub(super) use operand_checks;
