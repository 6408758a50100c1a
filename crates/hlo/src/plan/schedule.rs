//! Dependency order, the schedule (other readers of a buffer before its in-place update),
//! last uses, and the finished plan of a computation.

use super::{fuse, rewrite, CompPlan, Op, Planner, Step};
use crate::ir::Type;
use statetensor_core::Result;
use std::collections::BTreeSet;

impl<'a> Planner<'a> {
    pub(super) fn plan(&self) -> Result<CompPlan> {
        let comp = self.comp;
        let n = comp.instrs.len();
        let mut ops: Vec<Option<Op>> = vec![None; n];
        let mut parallel = false;
        // Type-check in dependency order (operands may be printed after their users).
        let mut order = self.topo_order()?;
        for &i in &order {
            let instr = &comp.instrs[i];
            if instr.opcode == "parameter" {
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
            parallel |= op.may_split(&ty, &operand_types);
            ops[i] = Some(op);
        }
        let mut operands: Vec<Vec<usize>> =
            comp.instrs.iter().map(|x| x.operands.clone()).collect();
        rewrite::fold_transposes_into_dots(&mut ops, &mut operands);
        rewrite::keep_live(&mut order, &operands, comp.root);
        let types: Vec<&Type> = comp.instrs.iter().map(|x| &x.ty).collect();
        fuse::fuse_elementwise(&mut ops, &mut operands, &types, &order, comp.root);
        rewrite::keep_live(&mut order, &operands, comp.root);
        let schedule = self.schedule(&order, &ops, &operands);
        // last use of every slot in schedule order
        let mut last_use = vec![None; n];
        for (si, &i) in schedule.iter().enumerate() {
            for (k, &o) in operands[i].iter().enumerate() {
                last_use[o] = Some((si, k));
            }
        }
        let mut steps = Vec::with_capacity(schedule.len());
        for (si, &i) in schedule.iter().enumerate() {
            let instr = &comp.instrs[i];
            let take = operands[i]
                .iter()
                .enumerate()
                .map(|(k, &o)| o != comp.root && last_use[o] == Some((si, k)))
                .collect();
            steps.push(Step {
                op: ops[i]
                    .take()
                    .expect("every scheduled instruction was planned"),
                operands: std::mem::take(&mut operands[i]),
                take,
                out: i,
                dead: last_use[i].is_none() && i != comp.root,
                ty: instr.ty.clone(),
                name: instr.written_name(),
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
            parallel,
        })
    }

    /// Instructions reachable from the root, operands before users (parameters included).
    pub(super) fn topo_order(&self) -> Result<Vec<usize>> {
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
                            format!("operand cycle through {}", comp.instrs[o].written_name()),
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
    pub(super) fn schedule(
        &self,
        order: &[usize],
        ops: &[Option<Op>],
        operands: &[Vec<usize>],
    ) -> Vec<usize> {
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
            for &o in &operands[i] {
                readers_left[o] += 1;
                if !is_param(o) && seen.insert(o) {
                    pending_ops[i] += 1;
                    users[o].push(i);
                }
            }
        }
        let destructive = |i: usize| ops[i].as_ref().is_some_and(Op::updates_in_place);
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
                    !(destructive(i) && operands[i].first().is_some_and(|&o| readers_left[o] > 1))
                })
                .or_else(|| ready.iter().next().copied())
                .expect("ready is not empty");
            ready.remove(&pick);
            out.push(pick);
            for &o in &operands[pick] {
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
}
