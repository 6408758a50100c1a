//! [`Program`]: a parsed, checked and planned HLO module, ready to execute.

use crate::exec::{ExecStats, Executor, Value};
use crate::ir::{Module, Type};
use crate::plan::{compile, CompPlan};
use crate::tensor::Tensor;
use statetensor_core::{AliasMap, Error, LoadOptions, Result, Signature, TensorSpec};
use std::sync::Arc;

/// The IR of a model stored as HLO text or as a serialized `HloModuleProto`
/// ([`Program::from_bytes`]), and whether it was text.
pub(crate) fn parse_model(bytes: &[u8], file: &str) -> Result<(Module, bool)> {
    let text = std::str::from_utf8(bytes).ok();
    if let Some(text) = text.filter(|_| crate::proto::is_hlo_text(bytes)) {
        return Ok((crate::parse::parse_module(text, file)?, true));
    }
    match (crate::proto::decode(bytes, file), text) {
        (Ok(m), _) => Ok((crate::proto::to_module(m, file)?, false)),
        // text that does not start as HLO text does: the text parser says what it expected
        (Err(_), Some(text)) => Ok((crate::parse::parse_module(text, file)?, true)),
        (Err(e), None) => Err(e),
    }
}

/// An HLO module compiled for execution.
#[derive(Debug)]
pub struct Program {
    name: String,
    plans: Vec<Option<CompPlan>>,
    entry: usize,
    params: Vec<TensorSpec>,
    outputs: Vec<TensorSpec>,
    tuple_root: bool,
    aliases: AliasMap,
    must_alias: Vec<usize>,
    /// Parameters the header's `buffer_donor` donates.
    buffer_donors: Vec<usize>,
    /// Whether some kernel may split its work across threads ([`crate::plan::Op::may_split`]);
    /// only then does a step move to the engine's pool. A step that cannot use a second
    /// thread would only pay for the hand-over to a pool thread and back, which costs more
    /// than a whole step of a small model.
    threaded: bool,
    /// Whether threaded steps start helpers, measured as they run.
    split: crate::pool::SplitChoice,
}

impl Program {
    /// Parses, checks and plans HLO text; `file` names it in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Program> {
        Program::from_module(&crate::parse::parse_module(text, file)?)
    }

    /// Parses, checks and plans a model as it is stored: HLO text (UTF-8 starting with
    /// `HloModule`) or a serialized `HloModuleProto`. Bytes that are neither get the error
    /// of the format they look most like.
    pub fn from_bytes(bytes: &[u8], file: &str) -> Result<Program> {
        Program::from_module(&parse_model(bytes, file)?.0)
    }

    /// Checks and plans a parsed module.
    pub fn from_module(module: &Module) -> Result<Program> {
        let plans = compile(module)?;
        let entry = module.entry();
        if let Some((params, result, pos)) = &module.entry_layout {
            let actual: Vec<Type> = entry
                .params
                .iter()
                .map(|&i| entry.instrs[i].ty.clone())
                .collect();
            let root = &entry.instrs[entry.root].ty;
            if params != &actual || result != root {
                let show = |v: &[Type]| {
                    v.iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Err(Error::invalid_model(
                    format!("{pos}: entry_computation_layout"),
                    format!(
                        "the header says ({})->{result}, but {} takes ({}) and returns {root}",
                        show(params),
                        entry.name,
                        show(&actual)
                    ),
                ));
            }
        }
        let mut params = Vec::with_capacity(entry.params.len());
        for (p, &i) in entry.params.iter().enumerate() {
            let instr = &entry.instrs[i];
            match &instr.ty {
                Type::Array(a) => params.push(a.spec(instr.name.clone())),
                other => {
                    return Err(Error::Unsupported {
                        context: format!("{}: parameter {p} of {}", instr.pos, entry.name),
                        what: format!("entry parameter of type {other} (only arrays)"),
                    })
                }
            }
        }
        let root = &entry.instrs[entry.root];
        let (outputs, tuple_root) = match &root.ty {
            Type::Array(a) => (vec![a.spec("output0")], false),
            Type::Tuple(el) => {
                let mut outs = Vec::new();
                for (k, t) in el.iter().enumerate() {
                    match t {
                        Type::Array(a) => outs.push(a.spec(format!("output{k}"))),
                        other => {
                            return Err(Error::Unsupported {
                                context: format!("{}: root of {}", root.pos, entry.name),
                                what: format!(
                                    "output {k} of type {other} (only arrays, not nested tuples)"
                                ),
                            })
                        }
                    }
                }
                (outs, true)
            }
            Type::Token => {
                return Err(Error::Unsupported {
                    context: entry.name.clone(),
                    what: "token result".into(),
                });
            }
        };
        let mut aliases = AliasMap::new();
        let mut must_alias = Vec::new();
        for a in &module.aliases {
            let whole = a.param_index.is_empty()
                && (if tuple_root {
                    a.output_index.len() == 1
                } else {
                    a.output_index.is_empty()
                });
            let output = a.output_index.first().copied().unwrap_or(0);
            if !whole {
                return Err(Error::Alias {
                    param: format!("{} (shape index {:?})", a.param, a.param_index),
                    output: format!("{:?}", a.output_index),
                    reason: format!(
                        "{}: only whole-tensor aliases are supported: output {{o}} of a tuple root (or {{}} of an array root) and parameter index {{}}",
                        a.pos
                    ),
                });
            }
            aliases.insert(a.param, output)?;
            if a.must_alias {
                must_alias.push(a.param);
            }
        }
        aliases.validate(&params, &outputs)?;
        let mut buffer_donors = Vec::new();
        for (param, index, pos) in &module.buffer_donors {
            if *param >= params.len() || !index.is_empty() {
                return Err(Error::invalid_model(
                    format!("{pos}: buffer_donor"),
                    format!(
                        "({param}, {index:?}) is not a whole parameter of the {} the entry takes",
                        params.len()
                    ),
                ));
            }
            buffer_donors.push(*param);
        }
        let threaded = plans.iter().flatten().any(|p| p.parallel);
        Ok(Program {
            name: module.name.clone(),
            plans,
            entry: module.entry,
            params,
            outputs,
            tuple_root,
            aliases,
            must_alias,
            buffer_donors,
            threaded,
            split: Default::default(),
        })
    }

    /// The signature a model of this program runs with when loaded with `opts`: the
    /// caller's alias map when given (torch-neuronx keeps the map outside the HLO), else
    /// the header's; the caller's names and weights; validated
    /// ([`Signature::configure`]).
    pub fn signature(&self, opts: &LoadOptions) -> Result<Signature> {
        Signature::configure(
            self.params.clone(),
            self.outputs.clone(),
            &self.aliases,
            opts,
        )
    }

    /// Parameters the header's `buffer_donor` donates (torch-xla writes it for a donated
    /// buffer). A donor that is not aliased is not state: [`Program::alias_candidates`]
    /// names the outputs it could be aliased to.
    pub fn buffer_donors(&self) -> &[usize] {
        &self.buffer_donors
    }

    /// Outputs that parameter `p` could be aliased to: same type, and not aliased already
    /// by `aliases`.
    pub fn alias_candidates(&self, p: usize, aliases: &AliasMap) -> Vec<usize> {
        let Some(spec) = self.params.get(p) else {
            return Vec::new();
        };
        (0..self.outputs.len())
            .filter(|&o| {
                let out = &self.outputs[o];
                out.dtype == spec.dtype && out.shape == spec.shape && aliases.param_for(o).is_none()
            })
            .collect()
    }

    /// Whether the entry computation returns a tuple (outputs are its elements) rather than
    /// one array (output 0).
    pub fn has_tuple_root(&self) -> bool {
        self.tuple_root
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Entry parameters, by number (names as in the HLO).
    pub fn params(&self) -> &[TensorSpec] {
        &self.params
    }

    /// Outputs, by index (`output{K}`).
    pub fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    /// The module header's `input_output_alias`, validated.
    pub fn header_aliases(&self) -> &AliasMap {
        &self.aliases
    }

    /// Bytes of constants baked into the module (weights, tables): device memory a compiled
    /// model holds while loaded.
    pub fn constant_bytes(&self) -> u64 {
        self.plans
            .iter()
            .flatten()
            .flat_map(|p| &p.steps)
            .filter(|s| matches!(s.op, crate::plan::Op::Constant(_)))
            .map(|s| s.ty.size_bytes() as u64)
            .sum()
    }

    /// Peak bytes of temporaries one execute of the entry holds at once (outputs included,
    /// parameters excluded), following the schedule: buffers are freed after their last
    /// reader, and in-place updates and reshapes reuse their operand's buffer.
    pub fn peak_temp_bytes(&self) -> u64 {
        let Some(plan) = self.plans.get(self.entry).and_then(|p| p.as_ref()) else {
            return 0;
        };
        let params: std::collections::HashSet<usize> =
            plan.params.iter().flatten().copied().collect();
        let mut live = vec![0u64; plan.nslots];
        let (mut now, mut peak) = (0u64, 0u64);
        for step in &plan.steps {
            let size = step.ty.size_bytes() as u64;
            let reuses = matches!(
                step.op,
                crate::plan::Op::DynamicUpdateSlice
                    | crate::plan::Op::Scatter { .. }
                    | crate::plan::Op::Unary(_)
                    | crate::plan::Op::Binary(_)
                    | crate::plan::Op::Reshape
                    | crate::plan::Op::Identity
            ) && step.take.first() == Some(&true);
            let aliases_operand = matches!(
                step.op,
                crate::plan::Op::Tuple
                    | crate::plan::Op::GetTupleElement(_)
                    | crate::plan::Op::Constant(_)
            );
            let fresh = if reuses || aliases_operand { 0 } else { size };
            now += fresh;
            peak = peak.max(now);
            // a reused buffer moves from the operand's slot to this one
            if reuses {
                let from = step.operands[0];
                live[step.out] = live[from];
                live[from] = 0;
            } else {
                live[step.out] = fresh;
            }
            for (k, &o) in step.operands.iter().enumerate() {
                if step.take[k] && !params.contains(&o) && !(reuses && k == 0) {
                    if aliases_operand {
                        // a tuple (or element) takes over its operands' buffers
                        live[step.out] += live[o];
                    } else {
                        now = now.saturating_sub(live[o]);
                    }
                    live[o] = 0;
                }
            }
            if step.dead {
                now = now.saturating_sub(live[step.out]);
                live[step.out] = 0;
            }
        }
        peak
    }

    /// Parameters the header marks `must-alias`.
    pub fn must_alias_params(&self) -> &[usize] {
        &self.must_alias
    }

    /// Executes the entry computation. Arguments are moved in: a buffer the caller holds no
    /// other reference to may be updated in place and returned as an output.
    pub fn execute(&self, args: Vec<Arc<Tensor>>) -> Result<Vec<Arc<Tensor>>> {
        self.execute_with_stats(args).map(|(o, _)| o)
    }

    /// Like [`Program::execute`], also returning the work done.
    pub fn execute_with_stats(
        &self,
        args: Vec<Arc<Tensor>>,
    ) -> Result<(Vec<Arc<Tensor>>, ExecStats)> {
        self.check_args(&args)?;
        match crate::pool::engine_pool() {
            Some(pool) if self.threaded => pool.install(|| self.split.run(|| self.run_entry(args))),
            _ => self.run_entry(args),
        }
    }

    fn run_entry(&self, args: Vec<Arc<Tensor>>) -> Result<(Vec<Arc<Tensor>>, ExecStats)> {
        let mut ex = Executor {
            plans: &self.plans,
            stats: ExecStats::default(),
        };
        let out = ex.run(
            self.entry,
            args.into_iter().map(Value::Tensor).collect(),
            true,
        )?;
        let outs = match (out, self.tuple_root) {
            (Value::Tensor(t), false) => vec![t],
            (Value::Tuple(vs), true) => vs
                .into_iter()
                .map(|v| match v {
                    Value::Tensor(t) => Ok(t),
                    Value::Tuple(_) => {
                        Err(Error::runtime("execute", "internal: nested tuple output"))
                    }
                })
                .collect::<Result<_>>()?,
            _ => {
                return Err(Error::runtime(
                    "execute",
                    "internal: root value does not match the root type",
                ))
            }
        };
        Ok((outs, ex.stats))
    }

    /// Checks argument count, dtypes and shapes against the entry's parameters.
    pub fn check_args(&self, args: &[Arc<Tensor>]) -> Result<()> {
        if args.len() != self.params.len() {
            return Err(Error::invalid_input(
                "execute",
                format!(
                    "{} takes {} arguments, got {}",
                    self.name,
                    self.params.len(),
                    args.len()
                ),
            ));
        }
        for (p, (spec, a)) in self.params.iter().zip(args).enumerate() {
            if a.dtype() != spec.dtype || a.dims() != spec.shape.dims() {
                return Err(spec.wrong_argument("execute", p, &a.spec("").type_string()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DONOR: &str = "HloModule m, buffer_donor={ (1, {}) }
ENTRY e {
  x = f32[2] parameter(0)
  c = f32[2] parameter(1)
  y = f32[2] multiply(x, c)
  c2 = f32[2] add(c, x)
  ROOT t = (f32[2], f32[2]) tuple(y, c2)
}";

    #[test]
    fn buffer_donors_are_read_and_name_what_they_could_alias() {
        let p = Program::parse(DONOR, "m").unwrap();
        assert_eq!(p.buffer_donors(), &[1]);
        assert!(p.header_aliases().is_empty());
        assert_eq!(p.alias_candidates(1, p.header_aliases()), vec![0, 1]);
        let taken = AliasMap::from_pairs([(0, 0)]).unwrap();
        assert_eq!(p.alias_candidates(1, &taken), vec![1]);
        let bad = DONOR.replace("(1, {})", "(5, {})");
        let e = Program::parse(&bad, "m").unwrap_err();
        assert!(e.to_string().contains("buffer_donor"), "{e}");
    }
}
