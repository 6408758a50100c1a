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

    /// Checks that this map is the one a compiled model was built with (`compiled`): a
    /// compiled model's aliasing is fixed, so a state bound to an output the model does not
    /// alias would read its input after the output overwrote it. The first difference is an
    /// [`Error::Alias`] naming the parameter and both outputs.
    pub fn check_same_as_compiled(&self, compiled: &AliasMap, params: &[TensorSpec]) -> Result<()> {
        let label = |p: usize| {
            params
                .get(p)
                .map(|s| format!("{p} ({})", s.name))
                .unwrap_or_else(|| p.to_string())
        };
        let show = |o: Option<usize>| o.map_or("no output".to_string(), |o| format!("output {o}"));
        let mut params_seen: Vec<usize> = self.pairs().map(|a| a.param).collect();
        params_seen.extend(compiled.pairs().map(|a| a.param));
        params_seen.sort_unstable();
        params_seen.dedup();
        for p in params_seen {
            let (want, have) = (self.output_for(p), compiled.output_for(p));
            if want != have {
                return Err(Error::Alias {
                    param: label(p),
                    output: show(want),
                    reason: format!(
                        "the compiled model aliases this parameter to {}; its aliasing is fixed when it is compiled (recompile it with this alias map, or drop the override)",
                        show(have)
                    ),
                });
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

    #[test]
    fn a_map_must_match_the_compiled_one() {
        let ps = vec![
            TensorSpec::new("x", DType::F32, vec![2]),
            TensorSpec::new("c", DType::F32, vec![2]),
        ];
        let compiled = AliasMap::from_pairs([(1, 1)]).unwrap();
        assert!(compiled.check_same_as_compiled(&compiled, &ps).is_ok());
        let other = AliasMap::from_pairs([(1, 0)]).unwrap();
        let e = other.check_same_as_compiled(&compiled, &ps).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Alias);
        let msg = e.to_string();
        assert!(
            msg.contains("1 (c)") && msg.contains("output 0") && msg.contains("output 1"),
            "{msg}"
        );
        let none = AliasMap::new();
        assert!(none.check_same_as_compiled(&compiled, &ps).is_err());
        assert!(compiled.check_same_as_compiled(&none, &ps).is_err());
    }
}
