//! What a load takes beyond the program: the caller's alias map, parameter names and
//! resident weights — from the CLI's flags, a bundle's manifest or the Python package.

use crate::{AliasMap, HostTensor};
use std::collections::BTreeMap;

/// How a model is loaded beyond its program. The default is the program as it stands:
/// its own alias map, its own parameter names, no weights.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadOptions {
    /// Replaces the module's own alias map (torch-neuronx keeps the map outside the HLO).
    pub aliases: Option<AliasMap>,
    /// Names replacing the HLO's parameter names, by parameter number. State sets and
    /// resident weights are keyed by name, so two graphs (prefill and decode) whose HLO
    /// names differ can share them under one name.
    pub names: BTreeMap<usize, String>,
    /// Parameters that are resident weights, with their values. `None`: the weight is
    /// already resident on the device under the parameter's name (another model uploaded
    /// it) and is shared.
    pub weights: BTreeMap<usize, Option<HostTensor>>,
}

impl LoadOptions {
    /// Options that only replace the alias map.
    pub fn with_aliases(aliases: Option<AliasMap>) -> LoadOptions {
        LoadOptions {
            aliases,
            ..LoadOptions::default()
        }
    }

    /// The same options for a second model on the same device: every weight shared with
    /// the model that uploaded it rather than uploaded again.
    pub fn sharing_weights(&self) -> LoadOptions {
        LoadOptions {
            weights: self.weights.keys().map(|&p| (p, None)).collect(),
            ..self.clone()
        }
    }
}
