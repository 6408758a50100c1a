//! The alias map and its validation (docs/architecture.md §2.2): the one implementation every backend uses.

use crate::{Error, Result, TensorSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One alias: parameter `param` is a state tensor, updated from output `output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AliasPair {
    /// Entry-computation parameter number.
    pub param: usize,
    /// Output index (tuple element of the root; 0 for a non-tuple root).
    pub output: usize,
}

/// Which parameters are state, and which output updates each.
///
/// Construction already enforces "each parameter and each output at most once"; shape, dtype
/// and range checks need the model's signature and happen in [`AliasMap::validate`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasMap {
    by_param: BTreeMap<usize, usize>,
}

impl AliasMap {
    /// An empty map: no state.
    pub fn new() -> AliasMap {
        AliasMap::default()
    }

    /// A map from `(param, output)` pairs; a parameter or an output named twice is an
    /// [`Error::Alias`].
    pub fn from_pairs(pairs: impl IntoIterator<Item = (usize, usize)>) -> Result<AliasMap> {
        let mut map = AliasMap::new();
        for (p, o) in pairs {
            map.insert(p, o)?;
        }
        Ok(map)
    }

    /// Adds one pair; a parameter or an output already mapped is an [`Error::Alias`].
    pub fn insert(&mut self, param: usize, output: usize) -> Result<()> {
        if let Some(&prev) = self.by_param.get(&param) {
            return Err(Error::Alias {
                param: param.to_string(),
                output: output.to_string(),
                reason: format!("parameter {param} is already updated from output {prev}; each parameter may alias at most one output"),
            });
        }
        if let Some(prev) = self.param_for(output) {
            return Err(Error::Alias {
                param: param.to_string(),
                output: output.to_string(),
                reason: format!("output {output} already updates parameter {prev}; each output may alias at most one parameter"),
            });
        }
        self.by_param.insert(param, output);
        Ok(())
    }

    /// The output that updates state parameter `param`.
    pub fn output_for(&self, param: usize) -> Option<usize> {
        self.by_param.get(&param).copied()
    }

    /// The state parameter that output `output` updates.
    pub fn param_for(&self, output: usize) -> Option<usize> {
        self.by_param
            .iter()
            .find(|(_, &o)| o == output)
            .map(|(&p, _)| p)
    }

    /// Whether `param` is a state parameter.
    pub fn is_state(&self, param: usize) -> bool {
        self.by_param.contains_key(&param)
    }

    /// Pairs in parameter order.
    pub fn pairs(&self) -> impl Iterator<Item = AliasPair> + '_ {
        self.by_param
            .iter()
            .map(|(&param, &output)| AliasPair { param, output })
    }

    /// Number of state parameters.
    pub fn len(&self) -> usize {
        self.by_param.len()
    }

    /// True when no parameter is state.
    pub fn is_empty(&self) -> bool {
        self.by_param.is_empty()
    }

    /// Checks the map against a model's signature: both sides exist, and each pair has
    /// identical shape and dtype. The first violation is an [`Error::Alias`] naming both
    /// sides and the reason.
    pub fn validate(&self, params: &[TensorSpec], outputs: &[TensorSpec]) -> Result<()> {
        for AliasPair { param, output } in self.pairs() {
            let p_label = params
                .get(param)
                .map(|s| format!("{param} ({})", s.name))
                .unwrap_or_else(|| param.to_string());
            let fail = |reason: String| Error::Alias {
                param: p_label.clone(),
                output: output.to_string(),
                reason,
            };
            let Some(p) = params.get(param) else {
                return Err(fail(format!(
                    "the model has {} parameters (0..{})",
                    params.len(),
                    params.len()
                )));
            };
            let Some(o) = outputs.get(output) else {
                return Err(fail(format!(
                    "the model has {} outputs (0..{})",
                    outputs.len(),
                    outputs.len()
                )));
            };
            if p.dtype != o.dtype || p.shape != o.shape {
                return Err(fail(format!(
                    "types differ: parameter is {}, output is {}; a state must keep its shape and dtype",
                    p.type_string(),
                    o.type_string()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, ErrorKind};

    fn sig() -> (Vec<TensorSpec>, Vec<TensorSpec>) {
        let params = vec![
            TensorSpec::new("x", DType::F32, vec![4]),
            TensorSpec::new("cache", DType::F32, vec![2, 4]),
            TensorSpec::new("pos", DType::S32, vec![]),
        ];
        let outputs = vec![
            TensorSpec::new("output0", DType::F32, vec![4]),
            TensorSpec::new("output1", DType::F32, vec![2, 4]),
            TensorSpec::new("output2", DType::S32, vec![]),
        ];
        (params, outputs)
    }

    #[test]
    fn valid_map() {
        let (p, o) = sig();
        let m = AliasMap::from_pairs([(1, 1), (2, 2)]).unwrap();
        m.validate(&p, &o).unwrap();
        assert_eq!(m.output_for(1), Some(1));
        assert_eq!(m.param_for(2), Some(2));
        assert!(!m.is_state(0));
    }

    #[test]
    fn duplicates_rejected() {
        assert_eq!(
            AliasMap::from_pairs([(1, 1), (1, 2)]).unwrap_err().kind(),
            ErrorKind::Alias
        );
        assert_eq!(
            AliasMap::from_pairs([(1, 1), (2, 1)]).unwrap_err().kind(),
            ErrorKind::Alias
        );
    }

    #[test]
    fn mismatches_rejected() {
        let (p, o) = sig();
        let e = AliasMap::from_pairs([(1, 0)])
            .unwrap()
            .validate(&p, &o)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Alias);
        assert!(e.to_string().contains("f32[2,4]"), "{e}");
        assert!(e.to_string().contains("f32[4]"), "{e}");
        let e = AliasMap::from_pairs([(1, 2)])
            .unwrap()
            .validate(&p, &o)
            .unwrap_err();
        assert!(e.to_string().contains("s32[]"), "{e}");
        let e = AliasMap::from_pairs([(7, 1)])
            .unwrap()
            .validate(&p, &o)
            .unwrap_err();
        assert!(e.to_string().contains("3 parameters"), "{e}");
        let e = AliasMap::from_pairs([(1, 9)])
            .unwrap()
            .validate(&p, &o)
            .unwrap_err();
        assert!(e.to_string().contains("3 outputs"), "{e}");
    }
}
