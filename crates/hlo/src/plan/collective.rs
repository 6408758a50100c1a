//! Collectives and the ops of SPMD programs: `all-reduce`, `all-gather`, `reduce-scatter`,
//! `all-to-all`, `collective-permute`, `collective-broadcast`, their async `-start`/`-done`
//! forms, the generic `async-start`/`async-update`/`async-done` around any computation,
//! `replica-id` and `partition-id` ([`crate::collective`] holds the semantics).
//!
//! The group size of a `{}` group depends on how many cores run the program, which is
//! known only when it runs; what the shapes require of it (all-gather's result is the
//! operand times the group size along its dimension) is kept in [`CollectivePlan::group_size`]
//! and checked for every core before a step starts ([`crate::Program::topology`]).

use super::{Op, Planner, Reducer};
use crate::collective::{
    parse_replica_groups, CollectiveKind, DeviceGroups, GroupMode, PermutePairs,
};
use crate::ir::{ArrayType, Instr, Type};
use statetensor_core::Result;

/// What a collective computes from its group's contributions.
#[derive(Clone, Debug)]
pub(crate) enum Form {
    /// Combine the members' operands with the region, left to right in group order.
    AllReduce { comp: usize, reducer: Reducer },
    /// Concatenate the members' operands along `dim`.
    AllGather { dim: usize },
    /// All-reduce, then keep this member's block along `dim`.
    ReduceScatter {
        dim: usize,
        comp: usize,
        reducer: Reducer,
    },
    /// Array form (`Some(d)`): block j of the operand along d goes to member j, received
    /// blocks concatenated along d in member order. Tuple form (`None`): operand j goes to
    /// member j, result i came from member i.
    AllToAll { dim: Option<usize> },
    /// Each target receives its source's operands; a core no pair targets gets zeros.
    Permute(PermutePairs),
    /// Every member receives the first member's operands.
    Broadcast,
}

/// How a collective packs its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Packing {
    /// The results alone (the plain ops, and a `-start` that returns only them).
    Plain,
    /// A `-start` op's tuple: (operands, results, context arrays filled with zeros). The
    /// operands are one array, a tuple of several, or (the async sugar) always a tuple.
    Started {
        operands_as_tuple: bool,
        context: Vec<ArrayType>,
    },
}

/// A collective, planned.
#[derive(Clone, Debug)]
pub(crate) struct CollectivePlan {
    pub kind: CollectiveKind,
    pub form: Form,
    /// The groups (unused by a permute, which routes by its pairs).
    pub groups: DeviceGroups,
    /// The group size the shapes require, when they fix one.
    pub group_size: Option<usize>,
    /// The result types, one per operand.
    pub results: Vec<ArrayType>,
    /// The results are returned as a tuple (several operands, or a one-element tuple).
    pub tuple: bool,
    pub packing: Packing,
    /// The instruction and its computation, which every member of a meeting must share.
    pub site: String,
}

impl CollectivePlan {
    /// The HLO opcode, for messages.
    pub(crate) fn opcode(&self) -> &'static str {
        self.kind.opcode()
    }
}

fn tuple_or_one(types: &[ArrayType]) -> Type {
    match types {
        [one] => Type::Array(one.clone()),
        many => Type::Tuple(many.iter().cloned().map(Type::Array).collect()),
    }
}

impl<'a> Planner<'a> {
    /// Plans `replica-id`, `partition-id` and the collectives.
    pub(super) fn collective_op(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        let opc = instr.opcode.as_str();
        match opc {
            "replica-id" | "partition-id" => {
                if !ots.is_empty() {
                    return self.err(instr, format!("{opc} takes no operands"));
                }
                let op = if opc == "replica-id" {
                    Op::ReplicaId
                } else {
                    Op::PartitionId
                };
                return Ok((op, super::scalar(statetensor_core::DType::U32)));
            }
            "all-reduce-done"
            | "all-gather-done"
            | "collective-permute-done"
            | "reduce-scatter-done"
            | "all-to-all-done"
            | "async-done" => {
                // the start's result itself, or element 1 of its (operands, result, ...)
                return match ots {
                    [t] if **t == instr.ty => Ok((Op::Identity, instr.ty.clone())),
                    [Type::Tuple(parts)] if parts.len() >= 2 && parts[1] == instr.ty => {
                        Ok((Op::GetTupleElement(1), parts[1].clone()))
                    }
                    _ => self.err(
                        instr,
                        format!(
                            "{opc} takes what its -start op returns: {} itself, or a tuple holding it second",
                            instr.ty
                        ),
                    ),
                };
            }
            "async-update" | "reduce-scatter-update" | "all-to-all-update" => {
                return match ots {
                    [t] => Ok((Op::Identity, (*t).clone())),
                    _ => self.err(instr, format!("{opc} takes one operand")),
                }
            }
            "async-start" => return self.async_start(instr, ots),
            _ => {}
        }
        let (base, started) = match opc.strip_suffix("-start") {
            Some(base) => (base, true),
            None => (opc, false),
        };
        if base == "collective-permute" && instr.attr("slice_sizes").is_some() {
            return Err(statetensor_core::Error::Unsupported {
                context: super::ctx(self.comp, instr),
                what: "collective-permute with slice_sizes (the in-place form that writes slices of its input into an output buffer)".into(),
            });
        }
        if base == "collective-broadcast"
            && instr
                .attr("has_dynamic_root")
                .is_some_and(|a| a.value.trim() == "true")
        {
            return Err(statetensor_core::Error::Unsupported {
                context: super::ctx(self.comp, instr),
                what: "collective-broadcast with has_dynamic_root=true (a root chosen at run time)"
                    .into(),
            });
        }
        let mut operands = Vec::with_capacity(ots.len());
        for (k, t) in ots.iter().enumerate() {
            operands.push(
                self.array(instr, t, &format!("operand {k} of {opc}"))?
                    .clone(),
            );
        }
        if operands.is_empty() {
            return self.err(instr, format!("{opc} needs at least one operand"));
        }
        // as XLA's text parser reads it, any channel_id (0 too) is a channel; a proto's
        // non-positive channel_id is no channel, and the proto reader leaves it out
        let channel = match instr.attr("channel_id") {
            Some(a) if a.value.trim().parse::<i64>().is_ok() => true,
            Some(a) => {
                return self.err(instr, format!("channel_id={}: expected a number", a.value))
            }
            None => false,
        };
        let global = match instr.attr("use_global_device_ids") {
            Some(a) => match a.value.trim() {
                "true" => Some(true),
                "false" => Some(false),
                v => {
                    return self.err(
                        instr,
                        format!("use_global_device_ids={v}: expected true or false"),
                    )
                }
            },
            None => None,
        };
        // all-reduce, all-gather and reduce-scatter have the attribute (false when absent)
        let has_global_attr = matches!(base, "all-reduce" | "all-gather" | "reduce-scatter");
        let global = if has_global_attr {
            Some(global.unwrap_or(false))
        } else {
            global
        };
        let mode = match GroupMode::of(channel, global) {
            Ok(m) => m,
            Err(m) => return self.err(instr, m),
        };
        let groups = match instr.attr("replica_groups") {
            Some(a) => match parse_replica_groups(&a.value) {
                Some(g) => g,
                None => {
                    return self.err(
                        instr,
                        format!(
                            "replica_groups={}: expected {{{{0,1}},{{2,3}}}}, {{}}, the iota form [G,S]<=[dims]T(perm) or mesh['a'=2,'b'=2] {{'b'}}",
                            a.value
                        ),
                    )
                }
            },
            None => Vec::new(),
        };
        if groups.iter().any(Vec::is_empty) {
            return self.err(instr, "replica_groups holds an empty group");
        }
        let groups = DeviceGroups { mode, groups };
        let (declared, packing) = self.started_packing(instr, started, &operands)?;
        let tuple = matches!(declared, Type::Tuple(_));
        let declared: Vec<ArrayType> = match (&declared, operands.len()) {
            (Type::Array(a), 1) => vec![a.clone()],
            (Type::Tuple(parts), n) if parts.len() == n => parts
                .iter()
                .map(|t| self.array(instr, t, &format!("a result of {opc}")).cloned())
                .collect::<Result<_>>()?,
            (t, n) => return self.err(instr, format!("{opc} of {n} operand(s) cannot return {t}")),
        };
        let (kind, form, group_size) = match base {
            "all-reduce" => {
                let comp = self.reduction(instr, &operands)?;
                self.same_types(instr, &operands, &declared)?;
                let reducer = self.reducer(comp);
                (
                    CollectiveKind::AllReduce,
                    Form::AllReduce { comp, reducer },
                    None,
                )
            }
            "reduce-scatter" | "all-gather" => {
                let dim = match self.usize_list(instr, "dimensions")?[..] {
                    [d] => d,
                    _ => {
                        return self.err(
                            instr,
                            format!("{opc} needs one dimension in dimensions={{d}}"),
                        )
                    }
                };
                if declared.len() != operands.len() {
                    return self.err(instr, format!("{opc} returns one result per operand"));
                }
                let mut size = None;
                for (k, (x, r)) in operands.iter().zip(&declared).enumerate() {
                    let ok_rank = dim < x.dims.len() && x.dims.len() == r.dims.len();
                    let others_equal =
                        ok_rank && (0..x.dims.len()).all(|d| d == dim || x.dims[d] == r.dims[d]);
                    let (whole, part) = if base == "all-gather" {
                        (r.dims.get(dim), x.dims.get(dim))
                    } else {
                        (x.dims.get(dim), r.dims.get(dim))
                    };
                    let fits = match (whole, part) {
                        (Some(&w), Some(&p)) if p > 0 => w % p == 0 && w >= p,
                        (Some(&w), Some(&p)) => w == p,
                        _ => false,
                    };
                    if !others_equal || x.dtype != r.dtype || !fits {
                        return self.err(
                            instr,
                            format!(
                                "{opc} dimensions={{{dim}}}: operand {k} {x} cannot give {r} (the {} must be a whole multiple of the {} along dimension {dim}, every other dimension equal)",
                                if base == "all-gather" { "result" } else { "operand" },
                                if base == "all-gather" { "operand" } else { "result" },
                            ),
                        );
                    }
                    if let Some(g) = whole.zip(part).and_then(|(w, p)| w.checked_div(*p)) {
                        if size.is_some_and(|s| s != g) {
                            return self.err(
                                instr,
                                format!("{opc}: the operands imply different group sizes"),
                            );
                        }
                        size = Some(g);
                    }
                }
                if base == "all-gather" {
                    (CollectiveKind::AllGather, Form::AllGather { dim }, size)
                } else {
                    let comp = self.reduction(instr, &operands)?;
                    let reducer = self.reducer(comp);
                    (
                        CollectiveKind::ReduceScatter,
                        Form::ReduceScatter { dim, comp, reducer },
                        size,
                    )
                }
            }
            "all-to-all" => {
                let dims = self.opt_usize_list(instr, "dimensions")?;
                match (&dims[..], operands.len()) {
                    ([d], 1) => {
                        let x = &operands[0];
                        if *d >= x.dims.len() {
                            return self.err(instr, format!("all-to-all dimensions={{{d}}} out of range for {x}"));
                        }
                        self.same_types(instr, &operands, &declared)?;
                        (CollectiveKind::AllToAll, Form::AllToAll { dim: Some(*d) }, None)
                    }
                    ([], n) => {
                        if operands.iter().any(|x| x != &operands[0]) {
                            return self.err(instr, "all-to-all of several operands needs them all of one type");
                        }
                        self.same_types(instr, &operands, &declared)?;
                        (CollectiveKind::AllToAll, Form::AllToAll { dim: None }, Some(n))
                    }
                    _ => return self.err(instr, "all-to-all takes dimensions={d} with one operand, or no dimensions with one operand per group member"),
                }
            }
            "collective-permute" => {
                let text = match instr.attr("source_target_pairs") {
                    Some(a) => a.value.clone(),
                    None => "{}".to_string(),
                };
                let pairs = match parse_replica_groups(&text) {
                    Some(list) if list.iter().all(|p| p.len() == 2) => {
                        list.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>()
                    }
                    _ => {
                        return self.err(
                            instr,
                            format!("source_target_pairs={text}: expected {{{{0,1}},{{1,2}}}}"),
                        )
                    }
                };
                let mut targets: Vec<usize> = pairs.iter().map(|p| p.1).collect();
                targets.sort_unstable();
                if targets.windows(2).any(|w| w[0] == w[1]) {
                    return self.err(instr, format!("source_target_pairs={text}: a target appears twice (a core receives from one source)"));
                }
                self.same_types(instr, &operands, &declared)?;
                let mode = if channel {
                    GroupMode::CrossPartition
                } else {
                    GroupMode::CrossReplica
                };
                (
                    CollectiveKind::CollectivePermute,
                    Form::Permute(PermutePairs { mode, pairs }),
                    None,
                )
            }
            "collective-broadcast" => {
                self.same_types(instr, &operands, &declared)?;
                (CollectiveKind::CollectiveBroadcast, Form::Broadcast, None)
            }
            _ => return self.misrouted(instr, "collective"),
        };
        let plan = CollectivePlan {
            kind,
            form,
            groups,
            group_size,
            results: declared,
            tuple,
            packing,
            site: format!("{} in {}", instr.written_name(), self.comp.name),
        };
        Ok((Op::Collective(std::sync::Arc::new(plan)), instr.ty.clone()))
    }

    /// A `-start` op's result is (operands, result, context...) — the operands one array,
    /// a tuple of several, or always a tuple (the async sugar) — or the result alone, as
    /// the plain op returns it. Returns the result type and how to pack it.
    fn started_packing(
        &self,
        instr: &Instr,
        started: bool,
        operands: &[ArrayType],
    ) -> Result<(Type, Packing)> {
        let plain = (instr.ty.clone(), Packing::Plain);
        let Type::Tuple(parts) = &instr.ty else {
            return Ok(plain);
        };
        if !started || parts.len() < 2 {
            return Ok(plain);
        }
        let as_tuple = Type::Tuple(operands.iter().cloned().map(Type::Array).collect());
        let operands_as_tuple = if parts[0] == tuple_or_one(operands) {
            false
        } else if parts[0] == as_tuple {
            true
        } else {
            return Ok(plain);
        };
        let context = parts[2..]
            .iter()
            .map(|t| {
                self.array(instr, t, &format!("a context element of {}", instr.opcode))
                    .cloned()
            })
            .collect::<Result<_>>()?;
        Ok((
            parts[1].clone(),
            Packing::Started {
                operands_as_tuple,
                context,
            },
        ))
    }

    /// The `to_apply` region of an all-reduce or reduce-scatter: one binary region applied
    /// to each operand, so every operand has its element type.
    fn reduction(&self, instr: &Instr, operands: &[ArrayType]) -> Result<usize> {
        let dtype = operands[0].dtype;
        if let Some(x) = operands.iter().find(|x| x.dtype != dtype) {
            return self.err(
                instr,
                format!(
                    "{}: operands of one reduction must share an element type, found {} and {}",
                    instr.opcode, operands[0], x
                ),
            );
        }
        match self.combining_region(instr, &[dtype]) {
            // a one-op region typed for another float type (an f32 `max` over bf16 values)
            // is that op on the operands' type, as XLA's tests write it
            Err(_) if dtype.is_float() => {
                let comp = self.comp_attr(instr, "to_apply")?;
                let p = self.plan_of(comp);
                let region_float = p.root_ty.as_array().is_some_and(|a| a.dtype.is_float());
                match self.reducer(comp) {
                    Reducer::Binary(_) if region_float => Ok(comp),
                    _ => self.combining_region(instr, &[dtype]),
                }
            }
            other => other,
        }
    }

    fn same_types(
        &self,
        instr: &Instr,
        operands: &[ArrayType],
        results: &[ArrayType],
    ) -> Result<()> {
        if operands != results {
            let show = |v: &[ArrayType]| {
                v.iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return self.err(
                instr,
                format!(
                    "{} returns its operands' types ({}), declared ({})",
                    instr.opcode,
                    show(operands),
                    show(results)
                ),
            );
        }
        Ok(())
    }

    /// `async-start(operands), calls=c`: runs `c` and returns ((operands), c's result,
    /// context...), the context arrays filled with zeros.
    fn async_start(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        let comp = self.comp_attr(instr, "calls")?;
        let p = self.plan_of(comp);
        self.check_args(instr, &p.param_types, ots, &p.name)?;
        let Type::Tuple(parts) = &instr.ty else {
            return self.err(
                instr,
                format!(
                    "async-start returns ((operands), result, context...), found {}",
                    instr.ty
                ),
            );
        };
        let operands = Type::Tuple(ots.iter().map(|t| (*t).clone()).collect());
        if parts.len() < 2 || parts[0] != operands || parts[1] != p.root_ty {
            return self.err(
                instr,
                format!(
                    "async-start calling '{}' returns ({operands}, {}, context...), declared {}",
                    p.name, p.root_ty, instr.ty
                ),
            );
        }
        let context = parts[2..]
            .iter()
            .map(|t| {
                self.array(instr, t, "an async-start context element")
                    .cloned()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((Op::AsyncStart { comp, context }, instr.ty.clone()))
    }
}
