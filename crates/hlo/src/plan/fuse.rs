//! Elementwise fusion: chains of elementwise instructions over one shape become one
//! [`Op::Fused`] step, evaluated block by block in one pass over memory
//! ([`crate::kernels::fused`]).
//!
//! A value joins the chain of its readers when every one of its readers is in that chain
//! and it has the chain's shape: it is then never materialised. A value read from outside
//! the chain (by a reduction, a dot, the root, two chains) stays a full-size value and
//! enters the chains that read it as an input. So a softmax's `exp(x - max)` is one chain
//! (its result feeds the sum and the division, and is kept), its `e / sum` another, and an
//! RMSNorm's scaling, a GELU, or a residual add with a bias each one pass.
//!
//! What fuses: unary, binary, compare, select, clamp and convert over f32, bf16, f16 and
//! predicates, and broadcasts whose operand's axes are a run of consecutive result axes (a
//! scalar, a bias, a per-row statistic), when the chain has more than one element
//! (scalar regions — reducers, comparators — stay as they are, where the recognisers read
//! them). A chain of one instruction keeps its own kernel. The cost model counts a chain
//! as its instructions ([`FusedStep`]); the peak of temporaries (`Program::peak_temp_bytes`)
//! follows the fused plan, whose intermediates are never held (neuronx-cc fuses such
//! chains on the device too).

use super::Op;
use crate::ir::Type;
use crate::kernels::{fusable_dtype, Arg, BinaryOp, Fused, Node, NodeOp, UnaryOp};
use statetensor_core::DType;
use std::collections::HashMap;
use std::sync::Arc;

/// A fused chain as the executor runs it, with the work of the instructions it replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FusedStep {
    pub expr: Fused,
    /// Instructions in the chain.
    pub members: u64,
    /// Their modelled operations and bytes read and written, as each would count alone.
    pub flops: u64,
    pub bytes: u64,
}

/// The node an instruction becomes in a chain, if it may join one: `out` its result type,
/// `ins` its operands' types.
fn node_op(op: &Op, out: &Type, ins: &[&Type]) -> Option<NodeOp> {
    let out = out.as_array()?;
    if !fusable_dtype(out.dtype) || out.dims.iter().product::<usize>() <= 1 {
        return None;
    }
    if let (Op::Broadcast(dims), [t]) = (op, ins) {
        let a = t.as_array()?;
        // the operand's axes a run of consecutive result axes: an index is a division and
        // a remainder
        let consecutive = dims.windows(2).all(|w| w[1] == w[0] + 1);
        if !fusable_dtype(a.dtype) || a.dtype != out.dtype || !consecutive {
            return None;
        }
        let after = dims.last().map_or(out.dims.len(), |&d| d + 1);
        return Some(NodeOp::Broadcast {
            div: out.dims[after..].iter().product(),
            modulo: a.dims.iter().product::<usize>().max(1),
        });
    }
    let mut operand_dtype = None;
    for t in ins {
        let a = t.as_array()?;
        if !fusable_dtype(a.dtype) || !(a.dims == out.dims || a.dims.is_empty()) {
            return None;
        }
        operand_dtype.get_or_insert(a.dtype);
    }
    let pred_in = operand_dtype == Some(DType::Pred);
    Some(match op {
        Op::Unary(UnaryOp::Not) if pred_in => NodeOp::Unary(UnaryOp::Not),
        Op::Unary(UnaryOp::Not | UnaryOp::Popcnt | UnaryOp::Clz) => return None,
        Op::Unary(_) if pred_in => return None,
        Op::Unary(u) => NodeOp::Unary(*u),
        Op::Binary(b) => {
            use BinaryOp::*;
            let ok = if pred_in {
                matches!(b, And | Or | Xor | Maximum | Minimum)
            } else {
                matches!(
                    b,
                    Add | Subtract
                        | Multiply
                        | Divide
                        | Remainder
                        | Power
                        | Maximum
                        | Minimum
                        | Atan2
                )
            };
            if !ok {
                return None;
            }
            NodeOp::Binary(*b)
        }
        Op::Compare(d, total) => NodeOp::Compare(*d, *total),
        Op::Select => NodeOp::Select,
        Op::Clamp if out.dtype != DType::Pred => NodeOp::Clamp,
        Op::Convert(_) => NodeOp::Convert {
            from: operand_dtype?,
        },
        _ => return None,
    })
}

/// Fuses the chains among `order` (live instructions, operands first), rewriting `ops`
/// and `operands` (indexed by instruction): each chain's last instruction becomes the
/// fused step reading the chain's inputs; the others are left for [`super::rewrite::keep_live`]
/// to drop. `types[i]` is instruction i's result type; `root` the computation's root.
pub(super) fn fuse_elementwise(
    ops: &mut [Option<Op>],
    operands: &mut [Vec<usize>],
    types: &[&Type],
    order: &[usize],
    root: usize,
) {
    let n = ops.len();
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &i in order {
        for &o in &operands[i] {
            if !readers[o].contains(&i) {
                readers[o].push(i);
            }
        }
    }
    let node_ops: Vec<Option<NodeOp>> = (0..n)
        .map(|i| {
            let op = ops[i].as_ref()?;
            let ins: Vec<&Type> = operands[i].iter().map(|&o| types[o]).collect();
            node_op(op, types[i], &ins)
        })
        .collect();
    // Each instruction's chain, named by the chain's last instruction; readers first.
    let mut chain: Vec<Option<usize>> = vec![None; n];
    let mut size: HashMap<usize, usize> = HashMap::new();
    for &i in order.iter().rev() {
        if node_ops[i].is_none() {
            continue;
        }
        let rs = &readers[i];
        let joined = match rs.first() {
            // a broadcast node reads a chain input, never a node: a value read by a
            // broadcast (one that keeps its shape, as JAX writes `broadcast` of a
            // [2,1,32] to [2,1,32]) stays out of the broadcast's chain
            Some(&r0) if i != root => chain[r0].filter(|&c| {
                rs.iter().all(|&r| {
                    chain[r] == Some(c) && !matches!(node_ops[r], Some(NodeOp::Broadcast { .. }))
                }) && types[c].as_array().map(|a| &a.dims) == types[i].as_array().map(|a| &a.dims)
            }),
            _ => None,
        };
        let c = joined.unwrap_or(i);
        chain[i] = Some(c);
        *size.entry(c).or_default() += 1;
    }
    for (&last, &members) in &size {
        if members < 2 {
            continue;
        }
        let step = build(last, &chain, &node_ops, operands, types, order);
        operands[last] = step.1;
        ops[last] = Some(Op::Fused(Arc::new(step.0)));
    }
}

/// The fused step of the chain ending at `last`, and its inputs (instructions).
fn build(
    last: usize,
    chain: &[Option<usize>],
    node_ops: &[Option<NodeOp>],
    operands: &[Vec<usize>],
    types: &[&Type],
    order: &[usize],
) -> (FusedStep, Vec<usize>) {
    let mut inputs: Vec<usize> = Vec::new();
    let mut node_of: HashMap<usize, usize> = HashMap::new();
    let mut nodes = Vec::new();
    let (mut flops, mut bytes) = (0u64, 0u64);
    for &i in order.iter().filter(|&&i| chain[i] == Some(last)) {
        let args = operands[i]
            .iter()
            .map(|&o| match node_of.get(&o) {
                Some(&k) => Arg::Node(k),
                None => Arg::Input(match inputs.iter().position(|&x| x == o) {
                    Some(k) => k,
                    None => {
                        inputs.push(o);
                        inputs.len() - 1
                    }
                }),
            })
            .collect();
        let dtype = types[i].as_array().expect("fused values are arrays").dtype;
        node_of.insert(i, nodes.len());
        nodes.push(Node {
            op: node_ops[i].expect("chain members are fusable"),
            args,
            dtype,
        });
        flops += types[i].as_array().map_or(0, |a| a.element_count() as u64);
        bytes += types[i].size_bytes() as u64
            + operands[i]
                .iter()
                .map(|&o| types[o].size_bytes() as u64)
                .sum::<u64>();
    }
    let expr = Fused {
        inputs: inputs
            .iter()
            .map(|&o| types[o].as_array().expect("fused inputs are arrays").dtype)
            .collect(),
        dims: types[last]
            .as_array()
            .expect("fused values are arrays")
            .dims
            .clone(),
        nodes,
    };
    let members = expr.nodes.len() as u64;
    (
        FusedStep {
            expr,
            members,
            flops,
            bytes,
        },
        inputs,
    )
}

#[cfg(test)]
mod tests {
    use super::super::{entry_ops, Op};
    use crate::kernels::{Arg, NodeOp};

    fn fused(ops: &[Op]) -> Vec<&super::FusedStep> {
        ops.iter()
            .filter_map(|o| match o {
                Op::Fused(f) => Some(&**f),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_tanh_gelu_is_one_pass() {
        // 0.5 x (1 + tanh(c (x + 0.044715 x^3))), as jax.nn.gelu lowers it
        let ops = entry_ops(
            "HloModule t
ENTRY e {
  x = f32[64] parameter(0)
  half = f32[] constant(0.5)
  one = f32[] constant(1)
  k = f32[] constant(0.044715)
  c = f32[] constant(0.797884583)
  x2 = f32[64] multiply(x, x)
  x3 = f32[64] multiply(x2, x)
  kb = f32[64] broadcast(k), dimensions={}
  kx3 = f32[64] multiply(kb, x3)
  s = f32[64] add(x, kx3)
  cb = f32[64] broadcast(c), dimensions={}
  cs = f32[64] multiply(cb, s)
  t = f32[64] tanh(cs)
  ob = f32[64] broadcast(one), dimensions={}
  u = f32[64] add(ob, t)
  hb = f32[64] broadcast(half), dimensions={}
  hx = f32[64] multiply(hb, x)
  ROOT y = f32[64] multiply(hx, u)
}",
        );
        let f = fused(&ops);
        assert_eq!(f.len(), 1, "{ops:?}");
        assert_eq!(f[0].members, 13);
        // x and the four scalar constants are its inputs
        assert_eq!(f[0].expr.inputs.len(), 5);
        assert!(
            ops.iter()
                .all(|o| matches!(o, Op::Constant(_) | Op::Fused(_))),
            "{ops:?}"
        );
        // x, read five times by four nodes, is one input; each constant is read once
        let mut reads: Vec<usize> = (0..5)
            .map(|k| {
                f[0].expr
                    .nodes
                    .iter()
                    .flat_map(|n| &n.args)
                    .filter(|&&a| a == Arg::Input(k))
                    .count()
            })
            .collect();
        reads.sort();
        assert_eq!(reads, [1, 1, 1, 1, 5]);
    }

    #[test]
    fn a_value_read_outside_the_chain_is_kept_and_broadcasts_are_read_in_place() {
        // softmax: e = exp(x - max) feeds the sum and the division, so it is materialised
        let ops = entry_ops(
            "HloModule t
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
ENTRY e {
  x = f32[8,32] parameter(0)
  m = f32[8] parameter(1)
  mb = f32[8,32] broadcast(m), dimensions={0}
  d = f32[8,32] subtract(x, mb)
  e = f32[8,32] exponential(d)
  z = f32[] constant(0)
  s = f32[8] reduce(e, z), dimensions={1}, to_apply=add
  sb = f32[8,32] broadcast(s), dimensions={0}
  ROOT p = f32[8,32] divide(e, sb)
}",
        );
        let f = fused(&ops);
        assert_eq!(f.len(), 2, "{ops:?}");
        // exp(x - broadcast(m)), ending in the materialised e; then e / broadcast(s)
        assert_eq!(f[0].members, 3);
        assert_eq!(
            f[0].expr.nodes.last().unwrap().op,
            NodeOp::Unary(crate::kernels::UnaryOp::Exp)
        );
        assert_eq!(f[1].members, 2);
        // the per-row values are read in place: element f of [8, 32] is row f / 32
        assert_eq!(
            f[1].expr.nodes[0].op,
            NodeOp::Broadcast { div: 32, modulo: 8 }
        );
        assert!(
            !ops.iter().any(|o| matches!(o, Op::Broadcast(_))),
            "no broadcast is materialised: {ops:?}"
        );
    }

    #[test]
    fn integer_chains_and_scalar_regions_are_not_fused() {
        let ops = entry_ops(
            "HloModule t
ENTRY e {
  a = s32[16] parameter(0)
  b = s32[16] add(a, a)
  c = s32[16] multiply(b, a)
  x = f32[] parameter(1)
  y = f32[] multiply(x, x)
  z = f32[] add(y, x)
  ROOT r = (s32[16], f32[]) tuple(c, z)
}",
        );
        assert!(fused(&ops).is_empty(), "{ops:?}");
    }
}
