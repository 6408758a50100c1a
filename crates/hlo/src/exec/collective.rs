//! Executing collectives: exchange the operands with the group ([`crate::collective`]),
//! then compute this core's result from every member's.

use super::{internal, Executor, Value};
use crate::collective::{CollectiveEvent, Contribution, Topology};
use crate::kernels as k;
use crate::plan::{CollectivePlan, Form, Packing, Reducer};
use crate::tensor::Tensor;
use statetensor_core::{Error, Result};
use std::sync::Arc;

impl<'p> Executor<'p> {
    /// This core's number and the topology (one core outside an SPMD step).
    pub(super) fn coordinates(&self) -> (usize, Topology) {
        self.rank
            .map_or((0, Topology::SINGLE), |r| (r.core, r.topology))
    }

    /// Runs one collective with `operands` (arrays) on this core.
    pub(super) fn collective(
        &mut self,
        plan: &CollectivePlan,
        operands: Vec<Arc<Tensor>>,
        count: bool,
    ) -> Result<Value> {
        let (core, topo) = self.coordinates();
        let op = plan.opcode();
        let fail = |m: String| Error::invalid_input("execute", format!("{op}: {m}"));
        let (group, source) = match &plan.form {
            Form::Permute(pairs) => {
                let (set, source) = pairs.route(core, topo).map_err(fail)?;
                (set, source)
            }
            _ => (plan.groups.participants(core, topo).map_err(fail)?, None),
        };
        let me = group
            .iter()
            .position(|&c| c == core)
            .ok_or_else(|| internal("a core is not in its own group"))?;
        let seq = {
            let n = self.collective_seq.entry(group.clone()).or_insert(0);
            *n += 1;
            *n - 1
        };
        let bytes_in: u64 = operands.iter().map(|t| t.size_bytes() as u64).sum();
        let all = match (group.len(), self.rank) {
            (1, _) => vec![operands.clone()],
            (_, Some(rank)) => {
                rank.comm
                    .exchange(op, &plan.site, &group, seq, me, operands.clone())?
            }
            (n, None) => {
                return Err(fail(format!(
                    "a group of {n} cores, but the program runs on one core"
                )))
            }
        };
        let results = self.combine(plan, &all, me, source, count)?;
        if count {
            // a permute moves data only from a source to its targets
            let group = match &plan.form {
                Form::Permute(p) => std::iter::once(core)
                    .chain(
                        p.pairs
                            .iter()
                            .filter(|&&(s, _)| s == me)
                            .map(|&(_, t)| group[t]),
                    )
                    .collect(),
                _ => group.clone(),
            };
            self.stats.collectives.push(CollectiveEvent {
                kind: plan.kind,
                group,
                bytes_in,
                bytes_out: results.iter().map(|t| t.size_bytes() as u64).sum(),
            });
        }
        let pack = |ts: Vec<Arc<Tensor>>, tuple: bool| -> Value {
            let mut vs: Vec<Value> = ts.into_iter().map(Value::Tensor).collect();
            if tuple || vs.len() != 1 {
                Value::Tuple(vs)
            } else {
                vs.remove(0)
            }
        };
        Ok(match &plan.packing {
            Packing::Plain => pack(results, plan.tuple),
            Packing::Started {
                operands_as_tuple,
                context,
            } => {
                let several = *operands_as_tuple || operands.len() > 1;
                let mut parts = vec![pack(operands, several), pack(results, plan.tuple)];
                parts.extend(
                    context
                        .iter()
                        .map(|a| Value::Tensor(Arc::new(Tensor::zeros(a.dtype, &a.dims)))),
                );
                Value::Tuple(parts)
            }
        })
    }

    /// This core's results from every member's contribution, in group order.
    fn combine(
        &mut self,
        plan: &CollectivePlan,
        all: &[Contribution],
        me: usize,
        source: Option<usize>,
        count: bool,
    ) -> Result<Vec<Arc<Tensor>>> {
        let n = plan.results.len();
        let g = all.len();
        let part = |member: usize, i: usize| -> Result<&Arc<Tensor>> {
            all.get(member)
                .and_then(|c| c.get(i))
                .ok_or_else(|| internal("a member contributed fewer operands"))
        };
        let block = |x: &Tensor, dim: usize, parts: usize, j: usize| -> Result<Tensor> {
            let len = x.dims()[dim];
            if len % parts != 0 {
                return Err(Error::invalid_input(
                    "execute",
                    format!(
                        "{}: dimension {dim} of {} does not split into {parts} equal blocks for a group of {parts} cores",
                        plan.opcode(),
                        x.spec("").type_string()
                    ),
                ));
            }
            let size = len / parts;
            let mut start = vec![0; x.dims().len()];
            let mut limit = x.dims().to_vec();
            start[dim] = j * size;
            limit[dim] = (j + 1) * size;
            Ok(k::slice(x, &start, &limit, &vec![1; start.len()]))
        };
        let mut out = Vec::with_capacity(n);
        match &plan.form {
            Form::AllReduce { comp, reducer } => {
                for i in 0..n {
                    out.push(Arc::new(
                        self.reduce_members(all, i, *comp, *reducer, count)?,
                    ));
                }
            }
            Form::ReduceScatter { dim, comp, reducer } => {
                for i in 0..n {
                    let whole = self.reduce_members(all, i, *comp, *reducer, count)?;
                    out.push(Arc::new(block(&whole, *dim, g, me)?));
                }
            }
            Form::AllGather { dim } => {
                for i in 0..n {
                    let parts: Vec<&Tensor> = (0..g)
                        .map(|m| part(m, i).map(|t| &**t))
                        .collect::<Result<_>>()?;
                    out.push(Arc::new(k::concatenate(&parts, *dim)));
                }
            }
            Form::AllToAll { dim: Some(dim) } => {
                let blocks: Vec<Tensor> = (0..g)
                    .map(|m| block(part(m, 0)?, *dim, g, me))
                    .collect::<Result<_>>()?;
                let refs: Vec<&Tensor> = blocks.iter().collect();
                out.push(Arc::new(k::concatenate(&refs, *dim)));
            }
            Form::AllToAll { dim: None } => {
                if n != g {
                    return Err(Error::invalid_input(
                        "execute",
                        format!("all-to-all of {n} operands needs a group of {n} cores, found {g}"),
                    ));
                }
                for m in 0..g {
                    out.push(part(m, me)?.clone());
                }
            }
            Form::Permute(_) => {
                for (i, r) in plan.results.iter().enumerate() {
                    out.push(match source {
                        Some(s) => part(s, i)?.clone(),
                        None => Arc::new(Tensor::zeros(r.dtype, &r.dims)),
                    });
                }
            }
            Form::Broadcast => {
                for i in 0..n {
                    out.push(part(0, i)?.clone());
                }
            }
        }
        Ok(out)
    }

    /// Operand `i` of every member combined left to right in group order.
    fn reduce_members(
        &mut self,
        all: &[Contribution],
        i: usize,
        comp: usize,
        reducer: Reducer,
        count: bool,
    ) -> Result<Tensor> {
        let mut members = all.iter().map(|c| {
            c.get(i)
                .ok_or_else(|| internal("a member contributed fewer operands"))
        });
        let first = members.next().ok_or_else(|| internal("an empty group"))??;
        let mut acc = (**first).clone();
        for x in members {
            let x = x?;
            if count {
                self.stats.flops += x.len() as u64;
            }
            acc = match reducer {
                Reducer::Binary(b) => k::binary(b, acc, x),
                _ => {
                    let (dtype, dims) = (acc.dtype(), acc.dims().to_vec());
                    let mut f = self.scalar_fn(comp);
                    k::map_elements(&[&acc, x], dtype, &dims, &mut f)?
                }
            };
        }
        Ok(acc)
    }
}
