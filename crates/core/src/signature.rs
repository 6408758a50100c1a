//! A model's signature: its parameters, outputs and alias map, and the checks every backend
//! runs against it (inputs, initial values, attaching to a shared state set).

use crate::{AliasMap, Error, HostTensor, Result, StateInit, TensorSpec};

/// A model's interface: parameters, outputs and which parameters are state.
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    /// Parameters by number.
    pub params: Vec<TensorSpec>,
    /// Outputs by index.
    pub outputs: Vec<TensorSpec>,
    /// State parameters and the outputs that update them (validated).
    pub aliases: AliasMap,
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
        })
    }

    /// Numbers of the parameters the caller supplies each execute (non-state), in order.
    pub fn input_params(&self) -> Vec<usize> {
        (0..self.params.len())
            .filter(|&p| !self.aliases.is_state(p))
            .collect()
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

    /// Total bytes of the non-state parameters: what one execute stages host → device.
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

    /// Checks execute inputs: one per non-state parameter, each with its dtype and shape.
    /// Both backends call this, so they reject bad inputs identically.
    pub fn check_inputs(&self, inputs: &[HostTensor]) -> Result<()> {
        let want = self.input_params();
        if inputs.len() != want.len() {
            return Err(Error::invalid_input(
                "execute",
                format!(
                    "expected {} inputs (the non-state parameters), got {}",
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
