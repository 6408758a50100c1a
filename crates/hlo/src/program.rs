//! [`Program`]: a parsed, checked and planned HLO module, ready to execute.

use crate::collective::{check_groups, CollectiveSite, Communicator, Rank, SpmdFacts, Topology};
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

/// The value of a parameter of type `ty`, from its arrays in depth-first order (a token is
/// an empty tuple: it carries no data).
fn rebuild(ty: &Type, leaves: &mut impl Iterator<Item = Arc<Tensor>>) -> Result<Value> {
    Ok(match ty {
        Type::Array(_) => Value::Tensor(leaves.next().ok_or_else(|| {
            Error::runtime("execute", "internal: fewer arguments than parameter arrays")
        })?),
        Type::Tuple(el) => Value::Tuple(
            el.iter()
                .map(|t| rebuild(t, leaves))
                .collect::<Result<_>>()?,
        ),
        Type::Token => Value::Tuple(Vec::new()),
    })
}

/// The arrays of a value, depth first.
fn flatten_value(v: Value, out: &mut Vec<Arc<Tensor>>) {
    match v {
        Value::Tensor(t) => out.push(t),
        Value::Tuple(vs) => vs.into_iter().for_each(|v| flatten_value(v, out)),
    }
}

/// An HLO module compiled for execution.
#[derive(Debug)]
pub struct Program {
    name: String,
    plans: Vec<Option<CompPlan>>,
    entry: usize,
    /// The arrays inside the entry's parameters, depth first (see [`Program::params`]).
    params: Vec<TensorSpec>,
    /// The entry's parameter types, to rebuild tuple parameters from their arrays.
    param_types: Vec<Type>,
    /// Where each of `params` sits: (entry parameter number, tuple indices inside it).
    param_leaves: Vec<(usize, Vec<usize>)>,
    /// Where each of `outputs` sits in the result: its tuple indices.
    output_paths: Vec<Vec<usize>>,
    /// The arrays inside the entry's result, depth first.
    outputs: Vec<TensorSpec>,
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
    /// Its collectives and what its header says about devices.
    spmd: SpmdFacts,
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
        // the signature is the arrays inside the parameters and the result, depth first:
        // a tuple parameter gives one parameter per array (named `p{0}`, `p{1,0}`, ...), a
        // nested result one output per array; tokens carry no data and are left out
        let mut params = Vec::new();
        let mut param_leaves = Vec::new();
        let mut param_types = Vec::with_capacity(entry.params.len());
        for (p, &i) in entry.params.iter().enumerate() {
            let instr = &entry.instrs[i];
            param_types.push(instr.ty.clone());
            for (path, a) in instr.ty.leaves() {
                // `p{1,0}`: braces cannot occur in an HLO name, so no leaf's name can be
                // another parameter's
                let name = if matches!(instr.ty, Type::Tuple(_)) {
                    let index: Vec<String> = path.iter().map(|k| k.to_string()).collect();
                    format!("{}{{{}}}", instr.name, index.join(","))
                } else {
                    instr.name.clone()
                };
                params.push(a.spec(name));
                param_leaves.push((p, path));
            }
        }
        let root = &entry.instrs[entry.root];
        let mut outputs = Vec::new();
        let mut output_paths = Vec::new();
        for (k, (path, a)) in root.ty.leaves().into_iter().enumerate() {
            outputs.push(a.spec(format!("output{k}")));
            output_paths.push(path);
        }
        let param_leaf = |p: usize, index: &[usize]| {
            param_leaves
                .iter()
                .position(|(q, path)| *q == p && path.as_slice() == index)
        };
        let mut aliases = AliasMap::new();
        let mut must_alias = Vec::new();
        for a in &module.aliases {
            let param = param_leaf(a.param, &a.param_index);
            let output = output_paths.iter().position(|path| *path == a.output_index);
            let (Some(param), Some(output)) = (param, output) else {
                return Err(Error::Alias {
                    param: format!("{} (shape index {:?})", a.param, a.param_index),
                    output: format!("{:?}", a.output_index),
                    reason: format!(
                        "{}: an alias joins an array inside a parameter to an array inside the result; parameter {} at {:?} and the result at {:?} must each name one (the result is {}, parameter {} is {})",
                        a.pos,
                        a.param,
                        a.param_index,
                        a.output_index,
                        root.ty,
                        a.param,
                        param_types
                            .get(a.param)
                            .map_or("missing".to_string(), |t| t.to_string())
                    ),
                });
            };
            aliases.insert(param, output)?;
            if a.must_alias {
                must_alias.push(param);
            }
        }
        aliases.validate(&params, &outputs)?;
        let mut buffer_donors = Vec::new();
        for (param, index, pos) in &module.buffer_donors {
            let Some(leaf) = param_leaf(*param, index) else {
                return Err(Error::invalid_model(
                    format!("{pos}: buffer_donor"),
                    format!(
                        "({param}, {index:?}) is not an array inside one of the {} parameters the entry takes",
                        param_types.len()
                    ),
                ));
            };
            buffer_donors.push(leaf);
        }
        let threaded = plans.iter().flatten().any(|p| p.parallel);
        let spmd = SpmdFacts::of(module, &plans);
        Ok(Program {
            name: module.name.clone(),
            plans,
            entry: module.entry,
            params,
            param_types,
            param_leaves,
            output_paths,
            outputs,
            aliases,
            must_alias,
            buffer_donors,
            threaded,
            split: Default::default(),
            spmd,
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

    /// Where parameter `p` of the signature sits in the module: the entry parameter's
    /// number and the tuple indices inside it (empty for an array parameter) — what an
    /// alias config's parameter and parameter shape index name.
    pub fn param_location(&self, p: usize) -> (usize, &[usize]) {
        let (number, path) = &self.param_leaves[p];
        (*number, path)
    }

    /// Where output `o` sits in the entry's result: its tuple indices (empty for an array
    /// result) — what an alias config's output shape index names.
    pub fn output_location(&self, o: usize) -> &[usize] {
        &self.output_paths[o]
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Entry parameters, by number (names as in the HLO): the arrays inside the entry's
    /// parameters, depth first — an array parameter is one, a tuple parameter `p` gives
    /// `p{0}`, `p{1}`, ... (`p{1,0}` inside a nested tuple), a token none.
    pub fn params(&self) -> &[TensorSpec] {
        &self.params
    }

    /// Outputs, by index (`output{K}`): the arrays inside the result, depth first.
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
            Some(pool) if self.threaded => self.split.run(pool, || self.run_entry(args)),
            _ => self.run_entry(args),
        }
    }

    /// The collectives, in module order (for `inspect`).
    pub fn collectives(&self) -> &[CollectiveSite] {
        &self.spmd.sites
    }

    /// The number of cores the module's header says it was compiled for (1 when it does not
    /// say), and the fewest cores its groups name.
    pub fn compiled_cores(&self) -> (usize, usize) {
        (self.spmd.compiled_cores(), self.spmd.min_cores)
    }

    /// How `cores` cores running this program are numbered, checked: every collective's
    /// groups exist on them and have the sizes its shapes need
    /// ([`crate::collective`] has the rules).
    pub fn topology(&self, cores: usize) -> Result<Topology> {
        let topo = self.spmd.topology(cores)?;
        check_groups(&self.plans, topo)?;
        Ok(topo)
    }

    /// Runs this core's part of an SPMD step on the calling thread, meeting the other cores
    /// (each on its own thread) at the collectives. A failure aborts the step for every
    /// core ([`Communicator::abort`]).
    pub fn execute_rank(
        &self,
        args: Vec<Arc<Tensor>>,
        rank: Rank<'_>,
    ) -> Result<(Vec<Arc<Tensor>>, ExecStats)> {
        let outcome = self
            .check_args(&args)
            .and_then(|()| self.run_entry_as(args, Some(rank)));
        if let Err(e) = &outcome {
            rank.comm.abort(rank.core, &e.to_string());
        }
        outcome
    }

    /// Runs one SPMD step: core k on `args[k]`, each core on its own thread. Returns each
    /// core's outputs and work, or its error (a core stopped by another's failure says so).
    pub fn execute_spmd(
        &self,
        args: Vec<Vec<Arc<Tensor>>>,
        topology: Topology,
        timeout: std::time::Duration,
    ) -> Vec<Result<(Vec<Arc<Tensor>>, ExecStats)>> {
        let comm = Communicator::new(args.len(), timeout);
        crate::collective::run_cores(&comm, args, |core, a, comm| {
            self.execute_rank(
                a,
                Rank {
                    core,
                    topology,
                    comm,
                },
            )
        })
    }

    fn run_entry(&self, args: Vec<Arc<Tensor>>) -> Result<(Vec<Arc<Tensor>>, ExecStats)> {
        self.run_entry_as(args, None)
    }

    fn run_entry_as(
        &self,
        args: Vec<Arc<Tensor>>,
        rank: Option<Rank<'_>>,
    ) -> Result<(Vec<Arc<Tensor>>, ExecStats)> {
        let mut ex = Executor {
            plans: &self.plans,
            stats: ExecStats::default(),
            rank,
            collective_seq: Default::default(),
        };
        let mut leaves = args.into_iter();
        let values = self
            .param_types
            .iter()
            .map(|t| rebuild(t, &mut leaves))
            .collect::<Result<Vec<_>>>()?;
        let out = ex.run(self.entry, values, true)?;
        let mut outs = Vec::with_capacity(self.outputs.len());
        flatten_value(out, &mut outs);
        if outs.len() != self.outputs.len() {
            return Err(Error::runtime(
                "execute",
                "internal: the result does not hold the outputs its type declares",
            ));
        }
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

    const TUPLES: &str = "HloModule t, input_output_alias={ {1,1}: (0, {1}, may-alias) }
ENTRY e {
  p = (f32[2], s32[], token[]) parameter(0)
  q = f32[3] parameter(1)
  x = f32[2] get-tuple-element(p), index=0
  n = s32[] get-tuple-element(p), index=1
  ROOT r = (f32[3], (f32[2], s32[])) tuple(q, (f32[2], s32[]) tuple(x, n))
}";

    #[test]
    fn tuples_flatten_to_their_arrays_with_aliases_at_shape_indices() {
        let p = Program::parse(TUPLES, "t").unwrap();
        let names: Vec<&str> = p.params().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["p{0}", "p{1}", "q"]);
        assert_eq!(p.outputs().len(), 3);
        assert_eq!(p.param_location(1), (0, &[1usize][..]));
        assert_eq!(p.output_location(2), &[1, 1]);
        assert_eq!(p.header_aliases().output_for(1), Some(2));
        // an alias must join arrays, not a tuple
        let bad = TUPLES.replace("{1,1}: (0, {1}", "{1}: (0, {1}");
        let e = Program::parse(&bad, "t").unwrap_err();
        assert!(e.to_string().contains("must each name one"), "{e}");
    }
}
