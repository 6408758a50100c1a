//! Fused elementwise chains: several elementwise instructions over the same shape
//! evaluated in one pass over memory, block by block, instead of one full-size temporary
//! per instruction.
//!
//! A [`Fused`] expression is a small DAG of nodes (unary, binary, compare, select, clamp,
//! convert, and broadcasts along a run of axes) over the chain's external inputs. It is
//! evaluated [`BLOCK`] elements at a time: every input and node has a block-sized lane
//! that stays in the L1 cache, so a softmax's `exp(x - max) / sum` or an RMSNorm's
//! `x * rsqrt(mean + eps) * w` reads its inputs and writes its result once.
//!
//! The results are bit for bit those of the instructions run one by one: every node
//! computes with the same per-element functions as the unfused kernels
//! ([`super::elementwise`]) and rounds to its own element type after each operation, as
//! they do (f16 and bf16 values are held as their exact f32 expansion and rounded to
//! nearest-even after every arithmetic node; copies — select, broadcast — do not round,
//! so NaN payloads pass through as they would). The one freedom: which NaN an operation
//! on two NaNs returns — IEEE 754 and XLA leave its sign and payload open, and it differs
//! with how the compiler orders a commutative instruction's operands, fused or not.
//! Floats (f32, bf16, f16) and predicates fuse; integer and f64 chains run unfused.

use super::elementwise::{
    f32_binary, f32_unary, max_f32, min_f32, pred_binary, splits, total_key, PAR_CHUNK,
};
use super::op_kinds::{BinaryOp, CompareDirection, UnaryOp};
use crate::tensor::{Tensor, BF16, F16};
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use statetensor_core::DType;

/// Elements per block: every lane of a chain of a dozen nodes stays in the L1 cache.
pub(crate) const BLOCK: usize = 512;
const _: () = assert!(
    PAR_CHUNK % BLOCK == 0,
    "a parallel chunk holds whole blocks"
);

/// Where a node reads an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arg {
    /// The chain's external input `k` (full-size, or a scalar broadcast to every element).
    Input(usize),
    /// An earlier node.
    Node(usize),
}

/// The operation of one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeOp {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Compare(CompareDirection, bool),
    /// `select(pred, on_true, on_false)`.
    Select,
    /// `clamp(lo, x, hi)`.
    Clamp,
    /// `convert` from `from` to the node's element type.
    Convert {
        from: DType,
    },
    /// `broadcast` of an input whose axes are a run of consecutive result axes (a scalar, a
    /// bias along the last axes, a per-row scale along the first): element `f` of the
    /// result is element `(f / div) % modulo` of the input, which is read in place.
    Broadcast {
        div: usize,
        modulo: usize,
    },
}

/// One node of a fused chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    pub op: NodeOp,
    pub args: Vec<Arg>,
    /// The element type of the node's result: f32, bf16, f16 or pred.
    pub dtype: DType,
}

/// A fused elementwise chain: `nodes` in dependency order, the last one the result. An
/// input as long as the result is read element for element; a scalar, or a shorter input,
/// only by broadcast nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fused {
    /// Element type of each external input (f32, bf16, f16 or pred).
    pub inputs: Vec<DType>,
    pub nodes: Vec<Node>,
    /// The result's dimensions; every full-size input has them.
    pub dims: Vec<usize>,
}

/// Whether a chain may hold values of this element type.
pub(crate) fn fusable_dtype(d: DType) -> bool {
    matches!(d, DType::F32 | DType::BF16 | DType::F16 | DType::Pred)
}

/// A block of one value: floats as f32 (bf16 and f16 by their exact expansion), or
/// predicates.
enum Lane {
    F(Vec<f32>),
    P(Vec<bool>),
}

impl Lane {
    fn new(d: DType) -> Lane {
        if d == DType::Pred {
            Lane::P(vec![false; BLOCK])
        } else {
            Lane::F(vec![0.0; BLOCK])
        }
    }
}

/// A block of one value as a node reads it: a lane, or a piece of an f32 or pred input
/// read in place.
#[derive(Clone, Copy)]
enum View<'a> {
    F(&'a [f32]),
    P(&'a [bool]),
}

impl<'a> View<'a> {
    fn of(lane: &'a Lane) -> View<'a> {
        match lane {
            Lane::F(v) => View::F(v),
            Lane::P(v) => View::P(v),
        }
    }
    fn f(self) -> &'a [f32] {
        match self {
            View::F(v) => v,
            View::P(_) => unreachable!("the planner types a chain's float arguments"),
        }
    }
    fn p(self) -> &'a [bool] {
        match self {
            View::P(v) => v,
            View::F(_) => unreachable!("the planner types a chain's predicate arguments"),
        }
    }
}

/// Rounds an f32 result to `d` and back (the unfused kernels' store and reload).
fn round_to(d: DType) -> Option<fn(f32) -> f32> {
    match d {
        DType::BF16 => Some(|x| BF16::from_f32(x).to_f32()),
        DType::F16 => Some(|x| F16::from_f32(x).to_f32()),
        _ => None,
    }
}

/// An input tensor with its elements readable as a slice.
enum Source<'a> {
    F32(std::borrow::Cow<'a, [f32]>),
    BF16(std::borrow::Cow<'a, [BF16]>),
    F16(std::borrow::Cow<'a, [F16]>),
    Pred(std::borrow::Cow<'a, [bool]>),
}

fn slice_of<T: Clone>(a: &ArrayD<T>) -> std::borrow::Cow<'_, [T]> {
    match a.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(a.iter().cloned().collect()),
    }
}

impl<'a> Source<'a> {
    fn of(t: &'a Tensor) -> Source<'a> {
        match t {
            Tensor::F32(a) => Source::F32(slice_of(a)),
            Tensor::BF16(a) => Source::BF16(slice_of(a)),
            Tensor::F16(a) => Source::F16(slice_of(a)),
            Tensor::Pred(a) => Source::Pred(slice_of(a)),
            _ => unreachable!("the planner fuses only float and predicate inputs"),
        }
    }

    fn len(&self) -> usize {
        match self {
            Source::F32(s) => s.len(),
            Source::BF16(s) => s.len(),
            Source::F16(s) => s.len(),
            Source::Pred(s) => s.len(),
        }
    }

    /// Whether blocks are read in place: f32 and pred arrays need no conversion.
    fn reads_in_place(&self) -> bool {
        matches!(self, Source::F32(_) | Source::Pred(_)) && !self.is_scalar()
    }

    /// Elements `range` read in place ([`Source::reads_in_place`]).
    fn in_place(&self, range: std::ops::Range<usize>) -> Option<View<'_>> {
        match self {
            Source::F32(s) if self.reads_in_place() => Some(View::F(&s[range])),
            Source::Pred(s) if self.reads_in_place() => Some(View::P(&s[range])),
            _ => None,
        }
    }

    /// Loads elements `range` of a full-size input into `lane`.
    fn load(&self, range: std::ops::Range<usize>, lane: &mut Lane) {
        match (self, lane) {
            (Source::F32(s), Lane::F(l)) => l[..range.len()].copy_from_slice(&s[range]),
            (Source::BF16(s), Lane::F(l)) => l
                .iter_mut()
                .zip(&s[range])
                .for_each(|(l, x)| *l = x.to_f32()),
            (Source::F16(s), Lane::F(l)) => l
                .iter_mut()
                .zip(&s[range])
                .for_each(|(l, x)| *l = x.to_f32()),
            (Source::Pred(s), Lane::P(l)) => l[..range.len()].copy_from_slice(&s[range]),
            _ => unreachable!("a lane has its input's kind"),
        }
    }

    /// Loads the elements a broadcast reads for result elements `range` into `lane`.
    fn load_broadcast(
        &self,
        range: std::ops::Range<usize>,
        div: usize,
        modulo: usize,
        lane: &mut Lane,
    ) {
        let (start, n) = (range.start, range.len());
        match (self, lane) {
            (Source::F32(s), Lane::F(l)) => {
                broadcast_run(s, |x| x, &mut l[..n], start, div, modulo)
            }
            (Source::BF16(s), Lane::F(l)) => {
                broadcast_run(s, |x| x.to_f32(), &mut l[..n], start, div, modulo)
            }
            (Source::F16(s), Lane::F(l)) => {
                broadcast_run(s, |x| x.to_f32(), &mut l[..n], start, div, modulo)
            }
            (Source::Pred(s), Lane::P(l)) => {
                broadcast_run(s, |x| x, &mut l[..n], start, div, modulo)
            }
            _ => unreachable!("a lane has its input's kind"),
        }
    }

    /// Whether every block reads the same value (a scalar), loaded once.
    fn is_scalar(&self) -> bool {
        self.len() == 1
    }
}

/// Evaluates `f` on its inputs (in `f.inputs` order). The result is a fresh tensor of the
/// last node's type with `f.dims`.
pub(crate) fn fused(f: &Fused, inputs: &[&Tensor]) -> Tensor {
    let len: usize = f.dims.iter().product();
    let sources: Vec<Source<'_>> = inputs.iter().map(|t| Source::of(t)).collect();
    let out_dtype = f.nodes.last().map_or(DType::F32, |n| n.dtype);
    let dims = IxDyn(&f.dims);
    macro_rules! run_into {
        ($t:ty, $store:expr) => {{
            let mut out: Vec<$t> = vec![<$t>::default(); len];
            let store = $store;
            // blocks of one chunk share one set of lanes; chunks may run on several threads
            let body = |(c, chunk): (usize, &mut [$t])| {
                let mut lanes = Lanes::new(f, &sources);
                for (b, block) in chunk.chunks_mut(BLOCK).enumerate() {
                    let start = c * PAR_CHUNK + b * BLOCK;
                    lanes.eval(f, &sources, start..start + block.len());
                    store(lanes.result(), block);
                }
            };
            if splits(len) {
                out.par_chunks_mut(PAR_CHUNK).enumerate().for_each(body);
            } else {
                body((0, &mut out[..]));
            }
            ArrayD::from_shape_vec(dims, out).expect("fused output size")
        }};
    }
    match out_dtype {
        DType::F32 => Tensor::F32(run_into!(f32, |v: View<'_>, o: &mut [f32]| {
            o.copy_from_slice(&v.f()[..o.len()])
        })),
        DType::BF16 => Tensor::BF16(run_into!(BF16, |v: View<'_>, o: &mut [BF16]| {
            o.iter_mut()
                .zip(v.f())
                .for_each(|(o, &x)| *o = exact_bf16(x))
        })),
        DType::F16 => Tensor::F16(run_into!(F16, |v: View<'_>, o: &mut [F16]| {
            o.iter_mut()
                .zip(v.f())
                .for_each(|(o, &x)| *o = exact_f16(x))
        })),
        _ => Tensor::Pred(run_into!(bool, |v: View<'_>, o: &mut [bool]| {
            o.copy_from_slice(&v.p()[..o.len()])
        })),
    }
}

/// The bf16 whose expansion is `x` (every lane value of a bf16 node is one, NaNs included).
fn exact_bf16(x: f32) -> BF16 {
    BF16((x.to_bits() >> 16) as u16)
}

/// The f16 whose expansion is `x` (every lane value of an f16 node is one, NaNs included).
fn exact_f16(x: f32) -> F16 {
    if x.is_nan() {
        let b = x.to_bits();
        return F16(((b >> 16) & 0x8000) as u16 | 0x7c00 | ((b >> 13) & 0x3ff) as u16);
    }
    F16::from_f32(x)
}

/// `out[i] = conv(src[((start + i) / div) % modulo])`, stepping the index instead of
/// dividing per element: runs of `div` equal values, wrapping after `modulo` of them.
fn broadcast_run<T: Copy, U: Copy>(
    src: &[T],
    conv: impl Fn(T) -> U,
    out: &mut [U],
    start: usize,
    div: usize,
    modulo: usize,
) {
    let mut j = (start / div) % modulo;
    if div == 1 {
        // along the trailing axes: runs of consecutive source elements
        let mut i = 0;
        while i < out.len() {
            let run = (modulo - j).min(out.len() - i);
            for (o, &x) in out[i..i + run].iter_mut().zip(&src[j..j + run]) {
                *o = conv(x);
            }
            i += run;
            j = 0;
        }
        return;
    }
    let mut left = div - start % div; // elements before j moves on
    let mut i = 0;
    while i < out.len() {
        let run = left.min(out.len() - i);
        out[i..i + run].fill(conv(src[j]));
        i += run;
        left = div;
        j = if j + 1 == modulo { 0 } else { j + 1 };
    }
}

/// The block lanes of one evaluation: one per input, one per node.
struct Lanes {
    inputs: Vec<Lane>,
    nodes: Vec<Lane>,
    /// Per node, for a broadcast: where in its source the lane's values start and how
    /// many it holds (the source index, the elements before it moves on, the count). A
    /// block that starts at the same place reads the same values: a per-channel vector
    /// broadcast over an activation is loaded once, not once per block.
    broadcast_loaded: Vec<Option<(usize, usize, usize)>>,
}

impl Lanes {
    /// Lanes for `f`, with its scalar inputs loaded (they are the same for every block).
    fn new(f: &Fused, sources: &[Source<'_>]) -> Lanes {
        let mut inputs: Vec<Lane> = f.inputs.iter().map(|&d| Lane::new(d)).collect();
        // a scalar is its own broadcast to every element
        for (src, lane) in sources.iter().zip(&mut inputs) {
            if src.is_scalar() {
                src.load_broadcast(0..BLOCK, 1, 1, lane);
            }
        }
        let mut nodes: Vec<Lane> = f.nodes.iter().map(|n| Lane::new(n.dtype)).collect();
        // a broadcast of one value is the same in every block: filled once
        for (node, lane) in f.nodes.iter().zip(&mut nodes) {
            if let (NodeOp::Broadcast { modulo: 1, .. }, [Arg::Input(k)]) =
                (node.op, &node.args[..])
            {
                sources[*k].load_broadcast(0..BLOCK, 1, 1, lane);
            }
        }
        let broadcast_loaded = vec![None; nodes.len()];
        Lanes {
            inputs,
            nodes,
            broadcast_loaded,
        }
    }

    /// Computes every node over elements `range`; the result is the last node's lane.
    /// Inputs as long as the result are read block by block (in place when they need no
    /// conversion); shorter ones only through broadcasts.
    fn eval(&mut self, f: &Fused, sources: &[Source<'_>], range: std::ops::Range<usize>) {
        let n = range.len();
        let len: usize = f.dims.iter().product();
        let full = |src: &Source<'_>| src.len() == len && !src.is_scalar();
        for (src, lane) in sources.iter().zip(&mut self.inputs) {
            if full(src) && !src.reads_in_place() {
                src.load(range.clone(), lane);
            }
        }
        let inputs: Vec<View<'_>> = sources
            .iter()
            .zip(&self.inputs)
            .map(|(src, lane)| match full(src) {
                true => src.in_place(range.clone()).unwrap_or(View::of(lane)),
                false => View::of(lane),
            })
            .collect();
        for (j, node) in f.nodes.iter().enumerate() {
            let (done, rest) = self.nodes.split_at_mut(j);
            if let (NodeOp::Broadcast { div, modulo }, [Arg::Input(k)]) = (node.op, &node.args[..])
            {
                let at = ((range.start / div) % modulo, range.start % div, n);
                if modulo > 1 && self.broadcast_loaded[j] != Some(at) {
                    sources[*k].load_broadcast(range.clone(), div, modulo, &mut rest[0]);
                    self.broadcast_loaded[j] = Some(at);
                }
                continue;
            }
            let arg = |k: usize| -> View<'_> {
                match node.args[k] {
                    Arg::Input(i) => inputs[i],
                    Arg::Node(i) => View::of(&done[i]),
                }
            };
            eval_node(node, &arg, &mut rest[0], n);
        }
    }

    /// The last node's lane.
    fn result(&self) -> View<'_> {
        View::of(self.nodes.last().expect("a fused chain has nodes"))
    }
}

/// Computes one node over the first `n` elements of its lanes.
fn eval_node<'l>(node: &Node, arg: &dyn Fn(usize) -> View<'l>, out: &mut Lane, n: usize) {
    let round = round_to(node.dtype);
    match (node.op, out) {
        (NodeOp::Unary(UnaryOp::IsFinite), Lane::P(o)) => {
            let x = arg(0).f();
            (0..n).for_each(|i| o[i] = x[i].is_finite());
        }
        (NodeOp::Unary(_), Lane::P(o)) => {
            let x = arg(0).p();
            (0..n).for_each(|i| o[i] = !x[i]);
        }
        (NodeOp::Unary(u), Lane::F(o)) => {
            let (x, g) = (arg(0).f(), f32_unary(u));
            (0..n).for_each(|i| o[i] = g(x[i]));
            rounded(o, n, round);
        }
        (NodeOp::Binary(b), Lane::P(o)) => {
            let (x, y, g) = (arg(0).p(), arg(1).p(), pred_binary(b));
            (0..n).for_each(|i| o[i] = g(x[i], y[i]));
        }
        (NodeOp::Binary(b), Lane::F(o)) => {
            let (x, y) = (&arg(0).f()[..n], &arg(1).f()[..n]);
            let o = &mut o[..n];
            // the common ops inlined, so the loop vectorises
            match b {
                BinaryOp::Add => o
                    .iter_mut()
                    .zip(x.iter().zip(y))
                    .for_each(|(o, (a, b))| *o = a + b),
                BinaryOp::Subtract => o
                    .iter_mut()
                    .zip(x.iter().zip(y))
                    .for_each(|(o, (a, b))| *o = a - b),
                BinaryOp::Multiply => o
                    .iter_mut()
                    .zip(x.iter().zip(y))
                    .for_each(|(o, (a, b))| *o = a * b),
                BinaryOp::Divide => o
                    .iter_mut()
                    .zip(x.iter().zip(y))
                    .for_each(|(o, (a, b))| *o = a / b),
                BinaryOp::Maximum => o
                    .iter_mut()
                    .zip(x.iter().zip(y))
                    .for_each(|(o, (a, b))| *o = max_f32(*a, *b)),
                BinaryOp::Minimum => o
                    .iter_mut()
                    .zip(x.iter().zip(y))
                    .for_each(|(o, (a, b))| *o = min_f32(*a, *b)),
                b => {
                    let g = f32_binary(b);
                    o.iter_mut()
                        .zip(x.iter().zip(y))
                        .for_each(|(o, (a, b))| *o = g(*a, *b));
                }
            }
            rounded(o, n, round);
        }
        (NodeOp::Compare(dir, total), Lane::P(o)) => match (arg(0), arg(1)) {
            (View::P(x), View::P(y)) => (0..n).for_each(|i| o[i] = dir.test(x[i], y[i])),
            (View::F(x), View::F(y)) if total => {
                (0..n).for_each(|i| o[i] = dir.test(total_key(x[i] as f64), total_key(y[i] as f64)))
            }
            (View::F(x), View::F(y)) => (0..n).for_each(|i| o[i] = dir.test(x[i], y[i])),
            _ => unreachable!("compare operands share a type"),
        },
        (NodeOp::Select, out) => {
            let p = arg(0).p();
            match (out, arg(1), arg(2)) {
                (Lane::F(o), View::F(t), View::F(e)) => {
                    (0..n).for_each(|i| o[i] = if p[i] { t[i] } else { e[i] })
                }
                (Lane::P(o), View::P(t), View::P(e)) => {
                    (0..n).for_each(|i| o[i] = if p[i] { t[i] } else { e[i] })
                }
                _ => unreachable!("select's branches share the result's type"),
            }
        }
        (NodeOp::Clamp, Lane::F(o)) => {
            let (lo, x, hi) = (arg(0).f(), arg(1).f(), arg(2).f());
            // as the unfused kernel: maximum with lo, rounded; then minimum with hi, rounded
            let r = |v: f32| round.map_or(v, |r| r(v));
            (0..n).for_each(|i| o[i] = r(min_f32(r(max_f32(x[i], lo[i])), hi[i])));
        }
        (NodeOp::Convert { from }, out) => match (out, arg(0)) {
            // to its own type: a copy
            (Lane::F(o), View::F(x)) if from == node.dtype => o[..n].copy_from_slice(&x[..n]),
            // between float types through f64, as the unfused kernel converts (a signalling
            // NaN comes out quiet)
            (Lane::F(o), View::F(x)) => {
                (0..n).for_each(|i| o[i] = (x[i] as f64) as f32);
                rounded(o, n, round);
            }
            (Lane::F(o), View::P(x)) => (0..n).for_each(|i| o[i] = if x[i] { 1.0 } else { 0.0 }),
            (Lane::P(o), View::F(x)) => (0..n).for_each(|i| o[i] = x[i] != 0.0),
            (Lane::P(o), View::P(x)) => o[..n].copy_from_slice(&x[..n]),
        },
        (NodeOp::Broadcast { .. }, _) => unreachable!("broadcasts read their source directly"),
        (NodeOp::Clamp, Lane::P(_)) => unreachable!("clamp is fused only for floats"),
        (NodeOp::Compare(..), Lane::F(_)) => unreachable!("compare yields a predicate"),
    }
}

/// Rounds the first `n` elements to the node's type, when it is narrower than f32.
fn rounded(o: &mut [f32], n: usize, round: Option<fn(f32) -> f32>) {
    if let Some(r) = round {
        o[..n].iter_mut().for_each(|v| *v = r(*v));
    }
}
