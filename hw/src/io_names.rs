//! Matching the NEFF's I/O tensor names to HLO parameters and outputs.
//!
//! `nrt_get_model_tensor_info` lists the NEFF's inputs and outputs by name. Each HLO
//! parameter and output is matched to one of them: first by an explicit `bindings.json` in
//! the bundle, then by convention — `input{p}` / `output{o}` as torch-neuronx writes them,
//! `{name}.must_alias_input` for a state as newer compilers write it, the plain HLO name and
//! that name without its `.N` suffix. Sizes must agree with the HLO.

use crate::result::model::IoInfo;
use statetensor_core::{resolve_param, stem, Error, Result, Signature, TensorSpec};
use std::collections::HashMap;
use std::path::Path;

/// The file in a bundle directory that names NEFF tensors explicitly.
pub const BINDINGS_FILE: &str = "bindings.json";

/// Explicit NEFF names from `bindings.json`: `{"inputs": {"P": "name"}, "outputs": {"O":
/// "name"}}` (P a parameter number or HLO name, O an output index).
#[derive(Clone, Debug, Default)]
pub struct ExplicitNames {
    inputs: HashMap<usize, String>,
    outputs: HashMap<usize, String>,
}

impl ExplicitNames {
    /// Reads `bindings.json` from `dir`; none there is no explicit names.
    pub fn read(dir: &Path, params: &[TensorSpec]) -> Result<ExplicitNames> {
        let path = dir.join(BINDINGS_FILE);
        let mut names = ExplicitNames::default();
        if !path.exists() {
            return Ok(names);
        }
        let what = path.display().to_string();
        let op = format!("bindings '{what}'");
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::io("read bindings", &what, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::invalid_input(&op, e.to_string()))?;
        let bad = |m: String| Error::invalid_input(&op, m);
        let as_name = |k: &str, name: &serde_json::Value, side: &str| {
            name.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(format!("{side} '{k}' must map to a string")))
        };
        for (k, name) in v["inputs"].as_object().into_iter().flatten() {
            let p = resolve_param(&op, k, params)?;
            names.inputs.insert(p, as_name(k, name, "input")?);
        }
        for (k, name) in v["outputs"].as_object().into_iter().flatten() {
            let o = k
                .parse::<usize>()
                .map_err(|_| bad(format!("output '{k}' is not an output index")))?;
            names.outputs.insert(o, as_name(k, name, "output")?);
        }
        Ok(names)
    }
}

/// The NEFF names bound to each parameter and each output of `sig`, in order.
pub fn resolve(
    sig: &Signature,
    io: &[IoInfo],
    explicit: &ExplicitNames,
) -> Result<(Vec<String>, Vec<String>)> {
    let mut inputs = Vec::new();
    for (p, s) in sig.params.iter().enumerate() {
        let mut c: Vec<String> = explicit.inputs.get(&p).cloned().into_iter().collect();
        c.push(format!("input{p}"));
        if sig.aliases.is_state(p) {
            c.push(format!("{}.must_alias_input", s.name));
            c.push(format!("{}.must_alias_input", stem(&s.name)));
        }
        c.push(s.name.clone());
        c.push(stem(&s.name).to_string());
        let what = format!("parameter {p} ({})", s.name);
        inputs.push(find(io, true, &c, s.size_bytes(), &what)?);
    }
    let mut outputs = Vec::new();
    for (o, s) in sig.outputs.iter().enumerate() {
        let mut c: Vec<String> = explicit.outputs.get(&o).cloned().into_iter().collect();
        c.push(format!("output{o}"));
        if let Some(p) = sig.aliases.param_for(o) {
            c.push(sig.params[p].name.clone());
            c.push(stem(&sig.params[p].name).to_string());
        }
        outputs.push(find(io, false, &c, s.size_bytes(), &format!("output {o}"))?);
    }
    Ok((inputs, outputs))
}

/// The first of `candidates` the NEFF has on that side, checked for size.
fn find(
    io: &[IoInfo],
    input: bool,
    candidates: &[String],
    size: usize,
    what: &str,
) -> Result<String> {
    for c in candidates {
        if let Some(info) = io.iter().find(|i| i.input == input && &i.name == c) {
            if info.size != size {
                return Err(Error::invalid_input(
                    format!("bind {what}"),
                    format!(
                        "NEFF tensor '{}' is {} bytes, the HLO says {size}",
                        info.name, info.size
                    ),
                ));
            }
            return Ok(info.name.clone());
        }
    }
    let available: Vec<&str> = io
        .iter()
        .filter(|i| i.input == input)
        .map(|i| i.name.as_str())
        .collect();
    Err(Error::invalid_input(
        format!("bind {what}"),
        format!(
            "no NEFF {} named {candidates:?}; the NEFF has {available:?} (map it in {BINDINGS_FILE})",
            if input { "input" } else { "output" },
        ),
    ))
}
