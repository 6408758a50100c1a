//! Tuples, calls and control flow: tuple, get-tuple-element, call and fusion, while,
//! conditional; tokens (`after-all`, `add-dependency`), which order side effects and carry
//! no data — a token is an empty value, so a module that threads them runs as it would
//! without them.

use super::{called_names, operand_checks, scalar, Op, Planner};
use crate::ir::{ArrayType, Instr, Type};
use statetensor_core::{DType, Result};

impl<'a> Planner<'a> {
    /// Plans a tuple, call or control-flow op.
    pub(super) fn control_op(&self, instr: &Instr, ots: &[&Type]) -> Result<(Op, Type)> {
        operand_checks!(self, instr, ots => opc, want, arr, declared, same_dims);
        Ok(match opc {
            "tuple" => (
                Op::Tuple,
                Type::Tuple(ots.iter().map(|t| (*t).clone()).collect()),
            ),
            "after-all" => {
                if let Some(t) = ots.iter().find(|t| !matches!(t, Type::Token)) {
                    return self.err(instr, format!("after-all joins tokens, found {t}"));
                }
                (Op::AfterAll, Type::Token)
            }
            "add-dependency" => {
                want(2)?;
                if !matches!(ots[1], Type::Token) {
                    return self.err(
                        instr,
                        format!(
                            "add-dependency's second operand must be a token, found {}",
                            ots[1]
                        ),
                    );
                }
                (Op::AddDependency, ots[0].clone())
            }
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
            _ => return self.misrouted(instr, "control"),
        })
    }

    pub(super) fn check_args(
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
}
