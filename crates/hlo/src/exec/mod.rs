//! The executor: runs compiled plans on [`Value`]s.
//!
//! Ownership drives in-place updates. Values are reference-counted; an operand whose last
//! use is the current step is *moved* into it, and kernels that can work in place
//! (`dynamic-update-slice`, `scatter`, elementwise ops, `reshape`) take the buffer with
//! copy-on-write: when nobody else holds it — a donated state buffer, a temporary — the
//! update happens in place; when another reader still needs the old value, it is copied
//! first, so functional semantics always hold.

mod collective;

use crate::collective::{CollectiveEvent, Rank};
use crate::kernels as k;
use crate::plan::{CompPlan, Op, Reducer, Step};
use crate::tensor::Tensor;
use statetensor_core::{Error, Result};
use std::sync::Arc;

/// A runtime value: a tensor or a tuple of values.
#[derive(Clone, Debug)]
pub enum Value {
    /// An array.
    Tensor(Arc<Tensor>),
    /// A tuple.
    Tuple(Vec<Value>),
}

impl Value {
    fn tensor(&self) -> Result<&Arc<Tensor>> {
        match self {
            Value::Tensor(t) => Ok(t),
            Value::Tuple(_) => Err(internal("expected an array value, found a tuple")),
        }
    }

    fn into_tensor(self) -> Result<Tensor> {
        match self {
            Value::Tensor(t) => Ok(Arc::try_unwrap(t).unwrap_or_else(|shared| (*shared).clone())),
            Value::Tuple(_) => Err(internal("expected an array value, found a tuple")),
        }
    }
}

fn internal(msg: &str) -> Error {
    Error::runtime("execute", format!("internal: {msg}"))
}

/// Work counted while executing, for the simulator's cost model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Floating-point (or integer) operations.
    pub flops: u64,
    /// Bytes read and written by kernels.
    pub bytes_touched: u64,
    /// Instructions executed.
    pub instructions: u64,
    /// The collectives this core took part in, in the order it ran them.
    pub collectives: Vec<CollectiveEvent>,
}

pub(crate) struct Executor<'p> {
    pub plans: &'p [Option<CompPlan>],
    pub stats: ExecStats,
    /// The core this executor runs as in an SPMD step; `None` on one core.
    pub rank: Option<Rank<'p>>,
    /// Collectives issued so far on each group (by its member cores), which pairs this
    /// core's n-th collective on a group with every other member's.
    pub collective_seq: std::collections::HashMap<Vec<usize>, u64>,
}

fn scalar_args(args: Vec<Tensor>) -> Vec<Value> {
    args.into_iter()
        .map(|t| Value::Tensor(Arc::new(t)))
        .collect()
}

fn flatten(v: Value) -> Result<Vec<Tensor>> {
    match v {
        Value::Tensor(t) => Ok(vec![Arc::try_unwrap(t).unwrap_or_else(|s| (*s).clone())]),
        Value::Tuple(vs) => vs.into_iter().map(Value::into_tensor).collect(),
    }
}

impl<'p> Executor<'p> {
    fn plan(&self, c: usize) -> Result<&'p CompPlan> {
        self.plans
            .get(c)
            .and_then(|p| p.as_ref())
            .ok_or_else(|| internal("computation was not compiled"))
    }

    /// Runs computation `c` on `args` (one per parameter).
    pub fn run(&mut self, c: usize, args: Vec<Value>, count: bool) -> Result<Value> {
        let plan = self.plan(c)?;
        let mut slots: Vec<Option<Value>> = vec![None; plan.nslots];
        for (p, v) in args.into_iter().enumerate() {
            if let Some(Some(slot)) = plan.params.get(p) {
                slots[*slot] = Some(v);
            }
        }
        for step in &plan.steps {
            let mut ops = Vec::with_capacity(step.operands.len());
            for (k, &s) in step.operands.iter().enumerate() {
                let v = if step.take[k] {
                    slots[s].take()
                } else {
                    slots[s].clone()
                };
                ops.push(v.ok_or_else(|| internal("operand value missing"))?);
            }
            if count {
                self.stats.instructions += match &step.op {
                    Op::Fused(f) => f.members,
                    _ => 1,
                };
                let (f, b) = step_cost(step, &ops);
                self.stats.flops += f;
                self.stats.bytes_touched += b;
            }
            let out = self.eval(step, ops, count).map_err(|e| match e {
                Error::Runtime {
                    function,
                    status,
                    message,
                } if function == "execute" => Error::Runtime {
                    function: format!(
                        "execute {} (line {}) in {}",
                        step.name, step.line, plan.name
                    ),
                    status,
                    message,
                },
                e => e,
            })?;
            if !step.dead {
                slots[step.out] = Some(out);
            }
        }
        slots[plan.root]
            .take()
            .ok_or_else(|| internal("root value missing"))
    }

    fn scalar_fn(
        &mut self,
        comp: usize,
    ) -> impl FnMut(Vec<Tensor>) -> Result<Vec<Tensor>> + use<'_, 'p> {
        move |args| flatten(self.run(comp, scalar_args(args), false)?)
    }

    fn eval(&mut self, step: &Step, mut ops: Vec<Value>, count: bool) -> Result<Value> {
        let t = |v: &Value| -> Result<Arc<Tensor>> { v.tensor().cloned() };
        let out_array = || {
            step.ty
                .as_array()
                .ok_or_else(|| internal("expected an array result"))
        };
        let tensor = |x: Tensor| Ok(Value::Tensor(Arc::new(x)));
        match &step.op {
            Op::Constant(c) => Ok(Value::Tensor(c.clone())),
            Op::Iota(d) => {
                let a = out_array()?;
                tensor(k::iota(a.dtype, &a.dims, *d))
            }
            Op::Unary(u) => tensor(k::unary(*u, pop(&mut ops)?.into_tensor()?)),
            Op::Binary(b) => {
                let rhs = t(&ops[1])?;
                tensor(k::binary(*b, take0(&mut ops)?.into_tensor()?, &rhs))
            }
            Op::Compare(d, total) => tensor(k::compare(*d, *total, &*t(&ops[0])?, &*t(&ops[1])?)),
            Op::Select => {
                let (p, f) = (t(&ops[0])?, t(&ops[2])?);
                let on_true =
                    std::mem::replace(&mut ops[1], Value::Tuple(Vec::new())).into_tensor()?;
                tensor(k::select(&p, on_true, &f))
            }
            Op::Clamp => {
                let (lo, hi) = (t(&ops[0])?, t(&ops[2])?);
                let x = std::mem::replace(&mut ops[1], Value::Tuple(Vec::new())).into_tensor()?;
                tensor(k::clamp(&lo, x, &hi))
            }
            Op::Convert(d) => tensor(k::convert(&*t(&ops[0])?, *d)),
            Op::BitcastConvert => {
                let a = out_array()?;
                tensor(k::bitcast_convert(&*t(&ops[0])?, a.dtype, &a.dims))
            }
            Op::ReducePrecision {
                exponent_bits,
                mantissa_bits,
            } => tensor(k::reduce_precision(
                &*t(&ops[0])?,
                *exponent_bits,
                *mantissa_bits,
            )),
            Op::RngBitGenerator(algorithm) => {
                let state = k::to_i64_vec(&*t(&ops[0])?);
                let state: Vec<u64> = state.into_iter().map(|w| w as u64).collect();
                let crate::ir::Type::Tuple(parts) = &step.ty else {
                    return Err(internal("rng-bit-generator without a tuple result"));
                };
                let bits = parts[1]
                    .as_array()
                    .ok_or_else(|| internal("rng-bit-generator bits are an array"))?;
                let (next, out) = k::rng_bit_generator(*algorithm, &state, bits.dtype, &bits.dims);
                let next = Tensor::U64(
                    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[next.len()]), next)
                        .map_err(|_| internal("rng state size"))?,
                );
                Ok(Value::Tuple(vec![
                    Value::Tensor(Arc::new(next)),
                    Value::Tensor(Arc::new(out)),
                ]))
            }
            Op::Map(comp) => {
                let a = out_array()?;
                let ts: Vec<Arc<Tensor>> = ops.iter().map(t).collect::<Result<_>>()?;
                let refs: Vec<&Tensor> = ts.iter().map(|x| &**x).collect();
                let mut f = self.scalar_fn(*comp);
                tensor(k::map_elements(&refs, a.dtype, &a.dims, &mut f)?)
            }
            Op::Reshape => {
                let a = out_array()?;
                let x = pop(&mut ops)?.into_tensor()?;
                if x.dims() == a.dims.as_slice() {
                    return tensor(x);
                }
                tensor(k::reshape(x, &a.dims))
            }
            Op::Broadcast(dims) => tensor(k::broadcast(&*t(&ops[0])?, &out_array()?.dims, dims)),
            Op::Transpose(p) => tensor(k::transpose(&*t(&ops[0])?, p)),
            Op::Relayout {
                physical,
                dims,
                logical,
            } => {
                let bytes = k::reshape(k::transpose(&*t(&ops[0])?, physical), dims);
                tensor(k::transpose(&bytes, logical))
            }
            Op::Copy => match pop(&mut ops)? {
                // `copy` is a fresh buffer: never shares storage with its operand
                Value::Tensor(x) => tensor((*x).clone()),
                v => Ok(v),
            },
            Op::Identity => pop(&mut ops),
            Op::Slice {
                start,
                limit,
                stride,
            } => tensor(k::slice(&*t(&ops[0])?, start, limit, stride)),
            Op::DynamicSlice(sizes) => {
                let starts = read_starts(&ops[1..])?;
                tensor(k::dynamic_slice(&*t(&ops[0])?, &starts, sizes))
            }
            Op::DynamicUpdateSlice => {
                let starts = read_starts(&ops[2..])?;
                let update = t(&ops[1])?;
                let mut base = take0(&mut ops)?.into_tensor()?;
                k::dynamic_update_slice(&mut base, &update, &starts);
                tensor(base)
            }
            Op::Concatenate(d) => {
                let ts: Vec<Arc<Tensor>> = ops.iter().map(t).collect::<Result<_>>()?;
                let refs: Vec<&Tensor> = ts.iter().map(|x| &**x).collect();
                tensor(k::concatenate(&refs, *d))
            }
            Op::Pad { lo, interior } => tensor(k::pad(
                &*t(&ops[0])?,
                &*t(&ops[1])?,
                lo,
                interior,
                &out_array()?.dims,
            )),
            Op::Reverse(d) => tensor(k::reverse(&*t(&ops[0])?, d)),
            Op::Gather { dims, slice_sizes } => tensor(k::gather(
                &*t(&ops[0])?,
                &*t(&ops[1])?,
                dims,
                slice_sizes,
                &out_array()?.dims,
            )),
            Op::Scatter {
                dims,
                comp,
                reducer,
            } => {
                let n = (ops.len() - 1) / 2;
                if n > 1 {
                    let idx = t(&ops[n])?;
                    let upd: Vec<Arc<Tensor>> =
                        ops[n + 1..].iter().map(t).collect::<Result<_>>()?;
                    let upd: Vec<&Tensor> = upd.iter().map(|x| &**x).collect();
                    let mut bases = ops[..n]
                        .iter_mut()
                        .map(|v| std::mem::replace(v, Value::Tuple(Vec::new())).into_tensor())
                        .collect::<Result<Vec<_>>>()?;
                    let mut f = self.scalar_fn(*comp);
                    k::scatter_variadic(&mut bases, &idx, &upd, dims, &mut f)?;
                    return Ok(Value::Tuple(
                        bases
                            .into_iter()
                            .map(|x| Value::Tensor(Arc::new(x)))
                            .collect(),
                    ));
                }
                let (idx, upd) = (t(&ops[1])?, t(&ops[2])?);
                let mut base = take0(&mut ops)?.into_tensor()?;
                match reducer {
                    Reducer::Binary(b) => {
                        k::scatter(&mut base, &idx, &upd, dims, k::Combiner::Binary(*b))?
                    }
                    Reducer::Replace => {
                        k::scatter(&mut base, &idx, &upd, dims, k::Combiner::Replace)?
                    }
                    // the planner gives scatter only single-operand reducers
                    Reducer::General | Reducer::Select(_) => {
                        let mut f = self.scalar_fn(*comp);
                        k::scatter(&mut base, &idx, &upd, dims, k::Combiner::General(&mut f))?
                    }
                }
                tensor(base)
            }
            Op::Dot(d) => {
                let a = out_array()?;
                tensor(k::dot(&*t(&ops[0])?, &*t(&ops[1])?, d, a.dtype, &a.dims))
            }
            Op::Convolution(c) => {
                let a = out_array()?;
                tensor(k::convolution(
                    &*t(&ops[0])?,
                    &*t(&ops[1])?,
                    c,
                    a.dtype,
                    &a.dims,
                ))
            }
            Op::Reduce {
                dims,
                comp,
                reducer,
            } => {
                let n = ops.len() / 2;
                let ts: Vec<Arc<Tensor>> = ops.iter().map(t).collect::<Result<_>>()?;
                let out_dims = match &step.ty {
                    crate::ir::Type::Array(a) => a.dims.clone(),
                    crate::ir::Type::Tuple(el) => el
                        .first()
                        .and_then(|e| e.as_array())
                        .map(|a| a.dims.clone())
                        .unwrap_or_default(),
                    crate::ir::Type::Token => Vec::new(),
                };
                if let (Reducer::Binary(b), 1) = (reducer, n) {
                    return tensor(k::reduce_binary(&ts[0], &ts[1], dims, *b, &out_dims));
                }
                if let (Reducer::Select(table), 2) = (reducer, n) {
                    let (v, i) =
                        k::reduce_select(&ts[0], &ts[1], (&ts[2], &ts[3]), dims, &out_dims, table);
                    return Ok(Value::Tuple(vec![
                        Value::Tensor(Arc::new(v)),
                        Value::Tensor(Arc::new(i)),
                    ]));
                }
                let inputs: Vec<&Tensor> = ts[..n].iter().map(|x| &**x).collect();
                let inits: Vec<&Tensor> = ts[n..].iter().map(|x| &**x).collect();
                let mut f = self.scalar_fn(*comp);
                let mut res = k::reduce_general(&inputs, &inits, dims, &out_dims, &mut f)?;
                if n == 1 {
                    return tensor(res.remove(0));
                }
                Ok(Value::Tuple(
                    res.into_iter()
                        .map(|x| Value::Tensor(Arc::new(x)))
                        .collect(),
                ))
            }
            Op::ReduceWindow {
                window,
                comp,
                reducer,
            } => {
                if ops.len() > 2 {
                    let n = ops.len() / 2;
                    let dims = match &step.ty {
                        crate::ir::Type::Tuple(el) => el
                            .first()
                            .and_then(|e| e.as_array())
                            .map(|a| a.dims.clone())
                            .unwrap_or_default(),
                        _ => return Err(internal("variadic reduce-window without a tuple")),
                    };
                    let ts: Vec<Arc<Tensor>> = ops.iter().map(t).collect::<Result<_>>()?;
                    let refs: Vec<&Tensor> = ts.iter().map(|x| &**x).collect();
                    let mut f = self.scalar_fn(*comp);
                    let res =
                        k::reduce_window_general(&refs[..n], &refs[n..], window, &dims, &mut f)?;
                    return Ok(Value::Tuple(
                        res.into_iter()
                            .map(|x| Value::Tensor(Arc::new(x)))
                            .collect(),
                    ));
                }
                let op = match reducer {
                    Reducer::Binary(b) => Some(*b),
                    _ => None,
                };
                let dims = out_array()?.dims.clone();
                let (x, init) = (t(&ops[0])?, t(&ops[1])?);
                let mut f = self.scalar_fn(*comp);
                tensor(k::reduce_window(&x, &init, window, &dims, op, &mut f)?)
            }
            Op::SelectAndScatter {
                window,
                select,
                key,
                scatter,
                reducer,
            } => {
                let (x, source, init) = (t(&ops[0])?, t(&ops[1])?, t(&ops[2])?);
                // both regions run on this executor, one after the other (selection first)
                let executor = std::cell::RefCell::new(&mut *self);
                let region = |c: usize| {
                    let executor = &executor;
                    move |args: Vec<Tensor>| {
                        flatten(executor.borrow_mut().run(c, scalar_args(args), false)?)
                    }
                };
                let mut select_fn = region(*select);
                let selector = match key {
                    Some(key) => k::Selector::Key(key),
                    None => k::Selector::General(&mut select_fn),
                };
                let mut scatter_fn = region(*scatter);
                let combiner = match reducer {
                    Reducer::Binary(b) => k::Combiner::Binary(*b),
                    Reducer::Replace => k::Combiner::Replace,
                    Reducer::General | Reducer::Select(_) => k::Combiner::General(&mut scatter_fn),
                };
                tensor(k::select_and_scatter(
                    &x, &source, &init, window, selector, combiner,
                )?)
            }
            Op::Sort { dim, comp, key } => {
                let ts: Vec<Arc<Tensor>> = ops.iter().map(t).collect::<Result<_>>()?;
                let refs: Vec<&Tensor> = ts.iter().map(|x| &**x).collect();
                let mut res = match key {
                    Some(key) => k::sort_by_key(&refs, *dim, key),
                    None => {
                        let mut f = self.scalar_fn(*comp);
                        let mut less = |args: Vec<Tensor>| -> Result<bool> {
                            let r = f(args)?;
                            Ok(r.first()
                                .is_some_and(|x| x.to_f64_vec().first().is_some_and(|&v| v != 0.0)))
                        };
                        k::sort(&refs, *dim, &mut less)?
                    }
                };
                if res.len() == 1 {
                    return tensor(res.remove(0));
                }
                Ok(Value::Tuple(
                    res.into_iter()
                        .map(|x| Value::Tensor(Arc::new(x)))
                        .collect(),
                ))
            }
            Op::Fused(f) => {
                let ts: Vec<Arc<Tensor>> = ops.iter().map(t).collect::<Result<_>>()?;
                let refs: Vec<&Tensor> = ts.iter().map(|x| &**x).collect();
                tensor(k::fused(&f.expr, &refs))
            }
            Op::TopK { k, key } => {
                let (values, indices) = k::top_k(&*t(&ops[0])?, *k, key);
                Ok(Value::Tuple(vec![
                    Value::Tensor(Arc::new(values)),
                    Value::Tensor(Arc::new(indices)),
                ]))
            }
            Op::Collective(plan) => {
                let ts: Vec<Arc<Tensor>> = ops.iter().map(t).collect::<Result<_>>()?;
                drop(ops);
                self.collective(plan, ts, count)
            }
            Op::ReplicaId | Op::PartitionId => {
                let (core, topo) = self.coordinates();
                let (replica, partition) = topo.coordinates(core);
                let id = if matches!(step.op, Op::ReplicaId) {
                    replica
                } else {
                    partition
                };
                tensor(Tensor::from_f64s(
                    statetensor_core::DType::U32,
                    &[],
                    &[id as f64],
                )?)
            }
            Op::AsyncStart { comp, context } => {
                let operands = Value::Tuple(ops.clone());
                let result = self.run(*comp, ops, count)?;
                let mut parts = vec![operands, result];
                parts.extend(
                    context
                        .iter()
                        .map(|a| Value::Tensor(Arc::new(Tensor::zeros(a.dtype, &a.dims)))),
                );
                Ok(Value::Tuple(parts))
            }
            Op::Tuple => Ok(Value::Tuple(ops)),
            Op::AfterAll => Ok(Value::Tuple(Vec::new())),
            Op::AddDependency => take0(&mut ops),
            Op::GetTupleElement(i) => match pop(&mut ops)? {
                Value::Tuple(mut el) if *i < el.len() => Ok(el.swap_remove(*i)),
                _ => Err(internal("get-tuple-element of a non-tuple")),
            },
            Op::Call(c) => self.run(*c, ops, count),
            Op::While { cond, body } => {
                let mut state = pop(&mut ops)?;
                loop {
                    let go = self.run(*cond, vec![state.clone()], count)?;
                    let go = go.tensor()?.to_f64_vec().first().is_some_and(|&v| v != 0.0);
                    if !go {
                        return Ok(state);
                    }
                    state = self.run(*body, vec![state], count)?;
                }
            }
            Op::Conditional(branches) => {
                let sel = t(&ops[0])?;
                let v = sel.to_f64_vec().first().copied().unwrap_or(0.0);
                // pred: true -> branch 0; s32 index: out of range -> last branch (XLA)
                let b = if sel.dtype() == statetensor_core::DType::Pred {
                    if v != 0.0 {
                        0
                    } else {
                        1
                    }
                } else if v < 0.0 || v as usize >= branches.len() {
                    branches.len() - 1
                } else {
                    v as usize
                };
                let arg = ops.swap_remove(b + 1);
                self.run(branches[b], vec![arg], count)
            }
        }
    }
}

fn pop(ops: &mut Vec<Value>) -> Result<Value> {
    ops.pop().ok_or_else(|| internal("missing operand"))
}

fn take0(ops: &mut [Value]) -> Result<Value> {
    ops.first_mut()
        .map(|v| std::mem::replace(v, Value::Tuple(Vec::new())))
        .ok_or_else(|| internal("missing operand"))
}

/// Start indices: one scalar operand per dimension, or (XLA's legacy form) one vector.
fn read_starts(ops: &[Value]) -> Result<Vec<i64>> {
    let mut starts = Vec::new();
    for v in ops {
        starts.extend(k::to_i64_vec(v.tensor()?));
    }
    Ok(starts)
}

fn value_bytes(v: &Value) -> u64 {
    match v {
        Value::Tensor(t) => t.size_bytes() as u64,
        Value::Tuple(vs) => vs.iter().map(value_bytes).sum(),
    }
}

/// Modelled work of one step: (operations, bytes read and written).
fn step_cost(step: &Step, ops: &[Value]) -> (u64, u64) {
    let out = step.ty.size_bytes() as u64;
    let out_elems = step.ty.as_array().map_or(0, |a| a.element_count() as u64);
    let ins: u64 = ops.iter().map(value_bytes).sum();
    match &step.op {
        Op::Constant(_)
        | Op::Tuple
        | Op::GetTupleElement(_)
        | Op::Identity
        | Op::Reshape
        | Op::AfterAll
        | Op::AddDependency => (0, 0),
        Op::Call(_) | Op::While { .. } | Op::Conditional(_) => (0, 0),
        Op::DynamicUpdateSlice => (0, 2 * ops.get(1).map_or(0, value_bytes)),
        Op::Scatter { .. } => {
            let n = ops.len().saturating_sub(1) / 2;
            let upd: u64 = ops.iter().skip(n + 1).map(value_bytes).sum();
            (upd, 2 * upd + ops.get(n).map_or(0, value_bytes))
        }
        Op::Dot(d) => {
            let (Some(Value::Tensor(l)), Some(Value::Tensor(r))) = (ops.first(), ops.get(1)) else {
                return (0, ins + out);
            };
            let k: u64 = d.lhs_contract.iter().map(|&x| l.dims()[x] as u64).product();
            let _ = r;
            (2 * out_elems * k, ins + out)
        }
        Op::Reduce { .. } | Op::TopK { .. } => {
            let n = ops.first().map_or(0, |v| {
                if let Value::Tensor(t) = v {
                    t.len() as u64
                } else {
                    0
                }
            });
            (n, ins + out)
        }
        Op::Convolution(c) => {
            // each output element sums kernel-window x input-features-per-group products
            let Some(Value::Tensor(r)) = ops.get(1) else {
                return (0, ins + out);
            };
            let taps: u64 = c.window.size.iter().product::<usize>() as u64;
            (2 * out_elems * taps * r.dims()[c.rhs_in] as u64, ins + out)
        }
        Op::ReduceWindow { window, .. } => (
            out_elems * window.size.iter().product::<usize>() as u64,
            ins + out,
        ),
        Op::SelectAndScatter { window, .. } => {
            // a comparison per window element of every source element
            let source = ops.get(1).map_or(0, |v| match v {
                Value::Tensor(t) => t.len() as u64,
                Value::Tuple(_) => 0,
            });
            (
                source * window.size.iter().product::<usize>() as u64,
                ins + out,
            )
        }
        Op::Sort { .. } => {
            let n = ops.first().map_or(0, |v| {
                if let Value::Tensor(t) = v {
                    t.len() as u64
                } else {
                    0
                }
            });
            (n * (64 - n.leading_zeros() as u64), ins + out)
        }
        Op::Fused(f) => (f.flops, f.bytes),
        Op::Unary(_)
        | Op::Binary(_)
        | Op::Compare(..)
        | Op::Select
        | Op::Clamp
        | Op::Convert(_)
        | Op::ReducePrecision { .. }
        | Op::Map(_) => (out_elems, ins + out),
        _ => (0, ins + out),
    }
}
