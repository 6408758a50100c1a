//! A model's signature: its parameters with their roles, its outputs and alias map, and
//! the checks every backend runs against it (inputs, initial values, attaching to a shared
//! state set).

use crate::{AliasMap, Error, HostTensor, LoadOptions, Result, StateInit, TensorSpec};
use std::collections::BTreeSet;

/// What a parameter is to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Supplied every execute; crosses host → device every step.
    Input,
    /// Resident and updated in place from this output.
    State {
        /// The output that updates it.
        output: usize,
    },
    /// Resident and read-only: uploaded once, shareable between models on a device.
    Weight,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Input => f.write_str("input"),
            Role::State { output } => write!(f, "state -> output {output}"),
            Role::Weight => f.write_str("weight"),
        }
    }
}

/// A model's interface: parameters, outputs, which parameters are state and which are
/// resident weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// Parameters by number.
    pub params: Vec<TensorSpec>,
    /// Outputs by index.
    pub outputs: Vec<TensorSpec>,
    /// State parameters and the outputs that update them (validated).
    pub aliases: AliasMap,
    /// Parameters that are resident weights (never state).
    pub weights: BTreeSet<usize>,
}

impl Signature {
    /// A signature whose alias map is validated against its parameters and outputs.
    pub fn new(
        params: Vec<TensorSpec>,
        outputs: Vec<TensorSpec>,
        aliases: AliasMap,
    ) -> Result<Signature> {
        aliases.validate(&params, &outputs)?;
        Ok(Signature {
            params,
            outputs,
            aliases,
            weights: BTreeSet::new(),
        })
    }

    /// The signature a load with `opts` gives a program whose parameters, outputs and own
    /// alias map (`header`) are these: `opts`' names replace the HLO's, its alias map
    /// replaces the header's, its weights are resident. Names must stay distinct (state
    /// sets and weights are keyed by them); a weight cannot be state; each weight's value,
    /// when given, must have the parameter's type.
    pub fn configure(
        mut params: Vec<TensorSpec>,
        outputs: Vec<TensorSpec>,
        header: &AliasMap,
        opts: &LoadOptions,
    ) -> Result<Signature> {
        let n = params.len();
        for (&p, name) in &opts.names {
            if p >= n {
                return Err(Error::invalid_input(
                    "name parameters",
                    format!("parameter {p} does not exist; the model has {n} parameters"),
                ));
            }
            if name.is_empty() {
                return Err(Error::invalid_input(
                    "name parameters",
                    format!("parameter {p} is given an empty name"),
                ));
            }
            params[p].name = name.clone();
        }
        for (i, a) in params.iter().enumerate() {
            if let Some(j) = params[..i].iter().position(|b| b.name == a.name) {
                return Err(Error::invalid_input(
                    "name parameters",
                    format!(
                        "parameters {j} and {i} are both named '{}'; names must be distinct",
                        a.name
                    ),
                ));
            }
        }
        let aliases = opts.aliases.clone().unwrap_or_else(|| header.clone());
        let mut sig = Signature::new(params, outputs, aliases)?;
        for (&p, value) in &opts.weights {
            let Some(spec) = sig.params.get(p) else {
                return Err(Error::invalid_input(
                    "weights",
                    format!("parameter {p} does not exist; the model has {n} parameters"),
                ));
            };
            if let Some(o) = sig.aliases.output_for(p) {
                return Err(Error::invalid_input(
                    "weights",
                    format!(
                        "parameter {p} ({}) is a state (updated from output {o}); a weight is read-only",
                        spec.name
                    ),
                ));
            }
            if let Some(v) = value {
                if v.dtype != spec.dtype || v.shape != spec.shape {
                    return Err(spec.wrong_argument("weights", p, &v.type_string()));
                }
            }
            sig.weights.insert(p);
        }
        Ok(sig)
    }

    /// What parameter `p` is.
    pub fn role(&self, p: usize) -> Role {
        match self.aliases.output_for(p) {
            Some(output) => Role::State { output },
            None if self.weights.contains(&p) => Role::Weight,
            None => Role::Input,
        }
    }

    /// Numbers of the parameters the caller supplies each execute (neither state nor
    /// weight), in order.
    pub fn input_params(&self) -> Vec<usize> {
        (0..self.params.len())
            .filter(|&p| self.role(p) == Role::Input)
            .collect()
    }

    /// Numbers of the resident weights, in order.
    pub fn weight_params(&self) -> Vec<usize> {
        self.weights.iter().copied().collect()
    }

    /// Total bytes of the resident weights.
    pub fn weight_bytes(&self) -> u64 {
        self.weights
            .iter()
            .map(|&p| self.params[p].size_bytes() as u64)
            .sum()
    }

    /// Numbers of the state parameters, in order.
    pub fn state_params(&self) -> Vec<usize> {
        (0..self.params.len())
            .filter(|&p| self.aliases.is_state(p))
            .collect()
    }

    /// Specs of the state parameters, in parameter order.
    pub fn state_specs(&self) -> impl Iterator<Item = &TensorSpec> + '_ {
        self.state_params()
            .into_iter()
            .map(move |p| &self.params[p])
    }

    /// Indices of the outputs returned to the host (not aliased), in order.
    pub fn returned_outputs(&self) -> Vec<usize> {
        (0..self.outputs.len())
            .filter(|&o| self.aliases.param_for(o).is_none())
            .collect()
    }

    /// The state parameter named `name`.
    pub fn state_param(&self, op: &str, name: &str) -> Result<usize> {
        self.state_params()
            .into_iter()
            .find(|&p| self.params[p].name == name)
            .ok_or_else(|| Error::NotFound {
                op: op.to_string(),
                what: "state".into(),
                name: name.to_string(),
                hint: format!(
                    "; the states are: {}",
                    self.state_params()
                        .iter()
                        .map(|&p| self.params[p].name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// Total bytes of the per-step inputs: what one execute stages host → device.
    pub fn input_bytes(&self) -> u64 {
        self.input_params()
            .iter()
            .map(|&p| self.params[p].size_bytes() as u64)
            .sum()
    }

    /// Total bytes of all state tensors.
    pub fn state_bytes(&self) -> u64 {
        self.state_params()
            .iter()
            .map(|&p| self.params[p].size_bytes() as u64)
            .sum()
    }

    /// Checks that this model may attach to an existing state set whose states `held`
    /// looks up by name: every state of this model must be there with its shape and dtype,
    /// and an attach cannot re-initialise the set. Both backends call this.
    pub fn check_attach<'a>(
        &self,
        op: &str,
        held: impl Fn(&str) -> Option<&'a TensorSpec>,
        init: &StateInit,
    ) -> Result<()> {
        for p in self.state_params() {
            let s = &self.params[p];
            match held(&s.name) {
                Some(have) if have.dtype == s.dtype && have.shape == s.shape => {}
                Some(have) => {
                    return Err(Error::invalid_input(
                        op,
                        format!(
                            "the set holds '{}' as {}, this model needs {}",
                            s.name,
                            have.type_string(),
                            s.type_string()
                        ),
                    ))
                }
                None => {
                    return Err(Error::invalid_input(
                        op,
                        format!(
                            "the set has no state '{}' ({}) that this model needs",
                            s.name,
                            s.type_string()
                        ),
                    ))
                }
            }
        }
        if *init != StateInit::Zeros {
            return Err(Error::invalid_input(
                op,
                "the set already exists; write its states instead of re-initialising it",
            ));
        }
        Ok(())
    }

    /// Checks initial values (each names a state of this model, with its type) and returns
    /// them by state name. Both backends call this.
    pub fn check_init_values<'a>(
        &self,
        op: &str,
        init: &'a StateInit,
    ) -> Result<std::collections::BTreeMap<String, &'a HostTensor>> {
        let mut out = std::collections::BTreeMap::new();
        if let StateInit::Values(values) = init {
            for (name, v) in values {
                let spec = &self.params[self.state_param(op, name)?];
                if v.dtype != spec.dtype || v.shape != spec.shape {
                    return Err(Error::invalid_input(
                        op,
                        format!(
                            "initial value of '{name}' is {}, the state is {}",
                            v.type_string(),
                            spec.type_string()
                        ),
                    ));
                }
                out.insert(name.clone(), v);
            }
        }
        Ok(out)
    }

    /// Checks execute inputs: one per input parameter (neither state nor weight), each with
    /// its dtype and shape.
    /// Both backends call this, so they reject bad inputs identically.
    pub fn check_inputs(&self, inputs: &[HostTensor]) -> Result<()> {
        let want = self.input_params();
        if inputs.len() != want.len() {
            return Err(Error::invalid_input(
                "execute",
                format!(
                    "expected {} inputs (the parameters that are neither state nor weight), got {}",
                    want.len(),
                    inputs.len()
                ),
            ));
        }
        for (t, &p) in inputs.iter().zip(&want) {
            let spec = &self.params[p];
            if t.dtype != spec.dtype || t.shape != spec.shape || t.data.len() != spec.size_bytes() {
                return Err(spec.wrong_argument("execute", p, &t.type_string()));
            }
        }
        Ok(())
    }
}
