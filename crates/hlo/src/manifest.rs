//! `statetensor.json`: what a frontend writes beside a model to say what each parameter is.
//!
//! ```json
//! {
//!   "format": 1,
//!   "parameters": [
//!     {"role": "input",  "name": "x",       "value": "x.npy"},
//!     {"role": "state",  "name": "k_cache", "output": 1, "value": "k_cache.npy"},
//!     {"role": "weight", "name": "wq",      "value": "weights/wq.npy"}
//!   ]
//! }
//! ```
//!
//! One entry per entry-computation parameter, in parameter order. `role` is `input`
//! (supplied every step), `state` (aliased to `output`, resident, updated in place) or
//! `weight` (resident, read-only, uploaded once). `name` replaces the HLO's parameter name
//! (state sets and weights are keyed by it). `value` is a `.npy` file relative to the
//! bundle directory: an input's default value, a state's initial value, a weight's value
//! (required for weights). The manifest's states are the model's alias map (the HLO
//! header's is not used; `--alias` still overrides it), which is what torch-neuronx needs:
//! its HLO has no alias header, its parameters are the inputs, then the states in alias
//! order, then the weights. Anything else in the file is an error, not ignored.

use crate::npy;
use statetensor_core::{AliasMap, Error, HostTensor, LoadOptions, Result, TensorSpec};
use std::path::{Path, PathBuf};

/// The manifest file a bundle directory may hold.
pub const BUNDLE_MANIFEST: &str = "statetensor.json";

/// What a parameter is, as the manifest says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestRole {
    /// Supplied every step.
    Input,
    /// Resident, updated in place from this output.
    State(usize),
    /// Resident and read-only.
    Weight,
}

/// One parameter's entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestParam {
    /// Its role.
    pub role: ManifestRole,
    /// A name replacing the HLO's.
    pub name: Option<String>,
    /// Its value file, resolved against the bundle directory.
    pub value: Option<PathBuf>,
}

/// A bundle's `statetensor.json`, checked against the model's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// One entry per parameter, in order.
    pub params: Vec<ManifestParam>,
    /// The alias map its states make.
    pub aliases: AliasMap,
}

impl Manifest {
    /// Reads and checks `dir/statetensor.json` against the model's `params`; `None` when
    /// the directory has none.
    pub fn read(dir: &Path, params: &[TensorSpec]) -> Result<Option<Manifest>> {
        let path = dir.join(BUNDLE_MANIFEST);
        if !path.is_file() {
            return Ok(None);
        }
        let what = path.display().to_string();
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::io("read manifest", &what, e))?;
        Manifest::parse(&text, dir, params, &what).map(Some)
    }

    /// Parses manifest `text` (from `what`), resolving value files against `dir`.
    pub fn parse(text: &str, dir: &Path, params: &[TensorSpec], what: &str) -> Result<Manifest> {
        let bad = |message: String| Error::invalid_input(format!("manifest {what}"), message);
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let top = v
            .as_object()
            .ok_or_else(|| bad("expected an object with \"parameters\"".into()))?;
        for key in top.keys() {
            if key != "format" && key != "parameters" {
                return Err(bad(format!(
                    "unknown key \"{key}\" (expected \"format\" and \"parameters\")"
                )));
            }
        }
        if let Some(f) = top.get("format") {
            if f.as_u64() != Some(1) {
                return Err(bad(format!("format {f} is not supported (expected 1)")));
            }
        }
        let entries = top
            .get("parameters")
            .and_then(|p| p.as_array())
            .ok_or_else(|| bad("\"parameters\" must be a list, one entry per parameter".into()))?;
        if entries.len() != params.len() {
            return Err(bad(format!(
                "lists {} parameters; the model has {} ({})",
                entries.len(),
                params.len(),
                params
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut out = Vec::with_capacity(entries.len());
        let mut aliases = AliasMap::new();
        for (p, e) in entries.iter().enumerate() {
            let bad_entry = |m: String| bad(format!("parameter {p} ({}): {m}", params[p].name));
            let obj = e
                .as_object()
                .ok_or_else(|| bad_entry("expected an object with \"role\"".into()))?;
            for key in obj.keys() {
                if !["role", "name", "output", "value"].contains(&key.as_str()) {
                    return Err(bad_entry(format!(
                        "unknown key \"{key}\" (expected role, name, output, value)"
                    )));
                }
            }
            let text_field = |k: &str| -> Result<Option<String>> {
                match obj.get(k) {
                    None => Ok(None),
                    Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                    Some(other) => Err(bad_entry(format!(
                        "\"{k}\" must be a non-empty string, found {other}"
                    ))),
                }
            };
            let output = match obj.get("output") {
                None => None,
                Some(o) => Some(o.as_u64().ok_or_else(|| {
                    bad_entry(format!("\"output\" must be an output index, found {o}"))
                })? as usize),
            };
            let role = match (text_field("role")?.as_deref(), output) {
                (Some("input"), None) => ManifestRole::Input,
                (Some("weight"), None) => ManifestRole::Weight,
                (Some("state"), Some(o)) => {
                    aliases.insert(p, o)?;
                    ManifestRole::State(o)
                }
                (Some("state"), None) => {
                    return Err(bad_entry(
                        "a state needs \"output\": the output that updates it".into(),
                    ))
                }
                (Some(r @ ("input" | "weight")), Some(_)) => {
                    return Err(bad_entry(format!(
                        "\"output\" is for states; this parameter is an {r}"
                    )))
                }
                (r, _) => {
                    return Err(bad_entry(format!(
                        "\"role\" must be \"input\", \"state\" or \"weight\", found {}",
                        r.map_or("nothing".to_string(), |r| format!("\"{r}\""))
                    )))
                }
            };
            let value = text_field("value")?.map(|f| dir.join(f));
            if let Some(f) = &value {
                if !f.is_file() {
                    return Err(bad_entry(format!(
                        "value file '{}' does not exist",
                        f.display()
                    )));
                }
            }
            if role == ManifestRole::Weight && value.is_none() {
                return Err(bad_entry("a weight needs \"value\": its .npy file".into()));
            }
            out.push(ManifestParam {
                role,
                name: text_field("name")?,
                value,
            });
        }
        Ok(Manifest {
            params: out,
            aliases,
        })
    }

    /// The load options the manifest gives: its alias map, names and weights — each
    /// weight's value read and checked against its parameter when `read_values`, else
    /// `None` (enough to know the roles).
    pub fn load_options(&self, params: &[TensorSpec], read_values: bool) -> Result<LoadOptions> {
        let mut opts = LoadOptions::with_aliases(Some(self.aliases.clone()));
        for (p, m) in self.params.iter().enumerate() {
            if let Some(n) = &m.name {
                opts.names.insert(p, n.clone());
            }
            if m.role == ManifestRole::Weight {
                let value = match (&m.value, read_values) {
                    (Some(file), true) => Some(read_value(file, p, &params[p])?),
                    _ => None,
                };
                opts.weights.insert(p, value);
            }
        }
        Ok(opts)
    }
}

/// The value of parameter `p` (`spec`) in npy file `file`, which must hold its type.
pub fn read_value(file: &Path, p: usize, spec: &TensorSpec) -> Result<HostTensor> {
    let what = file.display().to_string();
    let (mut r, h) = npy::open(file, "open")?;
    if !h.reads_as(spec.dtype) || h.dims != spec.shape.dims() {
        return Err(spec.wrong_argument(
            &format!("read '{what}'"),
            p,
            &format!("{}{:?}", h.dtype, h.dims),
        ));
    }
    npy::read_host_value(&mut r, spec, &what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use statetensor_core::{DType, ErrorKind};

    fn params() -> Vec<TensorSpec> {
        vec![
            TensorSpec::new("Arg_0.1", DType::F32, vec![2]),
            TensorSpec::new("Arg_1.2", DType::F32, vec![2]),
            TensorSpec::new("Arg_2.3", DType::F32, vec![2, 2]),
        ]
    }

    fn parse(text: &str) -> Result<Manifest> {
        // value files resolve against the directory; Cargo.toml stands in for one that exists
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        Manifest::parse(text, dir, &params(), "statetensor.json")
    }

    #[test]
    fn roles_names_and_the_alias_map() {
        let m = parse(
            r#"{"format": 1, "parameters": [
                {"role": "input", "name": "x"},
                {"role": "state", "output": 1},
                {"role": "weight", "name": "w", "value": "Cargo.toml"}]}"#,
        )
        .unwrap();
        assert_eq!(m.params[1].role, ManifestRole::State(1));
        assert_eq!(m.aliases, AliasMap::from_pairs([(1, 1)]).unwrap());
        let opts = m.load_options(&params(), false).unwrap();
        assert_eq!(opts.names.get(&0).map(String::as_str), Some("x"));
        assert_eq!(opts.weights.get(&2), Some(&None));
        assert_eq!(opts.aliases, Some(m.aliases.clone()));
    }

    #[test]
    fn every_mistake_is_named() {
        for (text, says) in [
            ("[]", "expected an object"),
            (
                "{\"parameters\": [], \"extra\": 1}",
                "unknown key \"extra\"",
            ),
            ("{\"format\": 2, \"parameters\": []}", "format 2"),
            (
                "{\"parameters\": [{\"role\": \"input\"}]}",
                "lists 1 parameters; the model has 3",
            ),
            (
                r#"{"parameters": [{"role": "input"}, {"role": "state"}, {"role": "input"}]}"#,
                "a state needs \"output\"",
            ),
            (
                r#"{"parameters": [{"role": "input", "output": 0}, {"role": "input"}, {"role": "input"}]}"#,
                "\"output\" is for states",
            ),
            (
                r#"{"parameters": [{"role": "inptu"}, {"role": "input"}, {"role": "input"}]}"#,
                "must be \"input\", \"state\" or \"weight\"",
            ),
            (
                r#"{"parameters": [{"role": "input"}, {"role": "input"}, {"role": "weight"}]}"#,
                "a weight needs \"value\"",
            ),
            (
                r#"{"parameters": [{"role": "input", "value": "nope.npy"}, {"role": "input"}, {"role": "input"}]}"#,
                "does not exist",
            ),
            (
                r#"{"parameters": [{"role": "input", "nmae": "x"}, {"role": "input"}, {"role": "input"}]}"#,
                "unknown key \"nmae\"",
            ),
            ("not json", "not valid JSON"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{text}: {e}");
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
        // two states updated from one output
        let e = parse(
            r#"{"parameters": [{"role": "state", "output": 0}, {"role": "state", "output": 0}, {"role": "input"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Alias, "{e}");
    }
}
