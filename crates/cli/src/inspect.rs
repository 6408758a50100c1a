//! `statetensor inspect`: parameters and their roles, outputs, aliases, and the HBM
//! footprint on each built-in device.

use crate::model_args::{parse_aliases, parse_backend};
use crate::report::bytes;
use clap::Args;
use statetensor_core::{Error, LoadOptions, Result, Role};
use statetensor_open::{Backend, Bundle, Device, DeviceProfile};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// An HLO text file, or a directory holding model.hlo (and model.neff).
    model: PathBuf,
    /// Also load the model through libnrt and show the NEFF I/O name of each parameter and output.
    #[arg(long, default_value = "sim", value_parser = parse_backend())]
    backend: Backend,
    /// State parameter P is updated from output O (replaces the module's alias map).
    #[arg(long = "alias", value_name = "P=O[,P=O...]")]
    aliases: Vec<String>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

pub fn inspect(a: InspectArgs) -> Result<()> {
    let bundle = Bundle::open(&a.model)?;
    let program = bundle.program();
    let overrides = LoadOptions::with_aliases(parse_aliases(&a.aliases, &bundle.params())?);
    // roles from the flags over the manifest over the HLO; weights' values are not read
    let opts = bundle.load_options(&overrides, false)?;
    let sig = program.signature(&opts)?;
    // what every backend charges to HBM: constants and resident weights once, staging for
    // one execute's inputs and its peak temporaries, and each state set
    let (resident_bytes, execute_bytes) = (
        program.constant_bytes() + sig.weight_bytes(),
        sig.input_bytes() + program.peak_temp_bytes(),
    );
    // with --backend nrt: how the NEFF's I/O names bind to the HLO's parameters and outputs
    let neff_names =
        Device::open(a.backend, &DeviceProfile::inf2())?.io_names(&bundle, &overrides)?;
    let sig = &sig;
    let mut devices = Vec::new();
    for name in ["inf2", "trn1", "trn2"] {
        let p = DeviceProfile::builtin(name).expect("built-in profile");
        let need = resident_bytes + sig.state_bytes() + execute_bytes;
        devices.push(serde_json::json!({
            "device": name,
            "hbm_capacity_bytes": p.hbm_bytes,
            "footprint_bytes": need,
            "fits": need <= p.hbm_bytes,
            "state_sets_that_fit": (p.hbm_bytes.saturating_sub(resident_bytes + execute_bytes)) / sig.state_bytes().max(1),
        }));
    }
    let params: Vec<serde_json::Value> = sig
        .params
        .iter()
        .enumerate()
        .map(|(i, s)| serde_json::json!({"index": i, "name": s.name, "type": s.type_string(), "bytes": s.size_bytes(), "role": match sig.role(i) { Role::Input => "input", Role::State { .. } => "state", Role::Weight => "weight" }, "state_from_output": sig.aliases.output_for(i), "donated": program.buffer_donors().contains(&i), "could_alias_outputs": (program.buffer_donors().contains(&i) && !sig.aliases.is_state(i)).then(|| program.alias_candidates(i, &sig.aliases)), "neff_name": neff_names.as_ref().map(|n| n.0[i].clone())}))
        .collect();
    let outputs: Vec<serde_json::Value> = sig
        .outputs
        .iter()
        .enumerate()
        .map(|(k, s)| serde_json::json!({"index": k, "type": s.type_string(), "bytes": s.size_bytes(), "updates_state": sig.aliases.param_for(k), "neff_name": neff_names.as_ref().map(|n| n.1[k].clone())}))
        .collect();
    let (compiled_cores, min_cores) = program.compiled_cores();
    let collectives: Vec<serde_json::Value> = program
        .collectives()
        .iter()
        .map(|c| serde_json::json!({"computation": c.computation, "instruction": c.instruction, "opcode": c.opcode, "groups": c.groups, "ids": c.ids}))
        .collect();
    if a.json {
        let v = serde_json::json!({
            "cores": {"compiled_for": compiled_cores, "fewest": min_cores},
            "collectives": collectives,
            "model": bundle.source().to_string(),
            "name": program.name(),
            "parameters": params,
            "outputs": outputs,
            "state_bytes": sig.state_bytes(),
            "weight_bytes": sig.weight_bytes(),
            "constant_bytes": program.constant_bytes(),
            "execute_staging_bytes": execute_bytes,
            "devices": devices,
        });
        let json = serde_json::to_string_pretty(&v)
            .map_err(|e| Error::runtime("inspect", e.to_string()))?;
        return crate::output::emit(&format!("{json}\n"));
    }
    let mut out = format!(
        "model {} ({})\nparameters:\n",
        program.name(),
        bundle.source()
    );
    for (i, s) in sig.params.iter().enumerate() {
        let role = match sig.role(i) {
            Role::State { output } => format!("state, updated from output {output}"),
            Role::Weight => "weight, resident (uploaded once)".to_string(),
            Role::Input => match donated_hint(program, &sig.aliases, i) {
                Some(hint) => format!("input; {hint}"),
                None => "input".to_string(),
            },
        };
        let neff = neff_names
            .as_ref()
            .map_or(String::new(), |n| format!("  [NEFF '{}']", n.0[i]));
        out.push_str(&format!(
            "  {i:>3}  {:<24} {:<20} {:>10}  {role}{neff}\n",
            s.name,
            s.type_string(),
            bytes(s.size_bytes() as u64)
        ));
    }
    out.push_str("outputs:\n");
    for (k, s) in sig.outputs.iter().enumerate() {
        let role = sig
            .aliases
            .param_for(k)
            .map_or("returned to the host".to_string(), |p| {
                format!("updates state {p} ({}) in place", sig.params[p].name)
            });
        let neff = neff_names
            .as_ref()
            .map_or(String::new(), |n| format!("  [NEFF '{}']", n.1[k]));
        out.push_str(&format!(
            "  {k:>3}  {:<20} {:>10}  {role}{neff}\n",
            s.type_string(),
            bytes(s.size_bytes() as u64)
        ));
    }
    out.push_str(&format!(
        "state: {} in {} tensor(s); weights {} in {} tensor(s); constants {}; execute staging and temporaries {}\n",
        bytes(sig.state_bytes()),
        sig.state_params().len(),
        bytes(sig.weight_bytes()),
        sig.weight_params().len(),
        bytes(program.constant_bytes()),
        bytes(execute_bytes)
    ));
    if !program.collectives().is_empty() || compiled_cores > 1 {
        out.push_str(&format!(
            "SPMD: compiled for {compiled_cores} core(s), its groups need at least {min_cores} (run with --cores N; every figure here is per core)\n"
        ));
        for c in program.collectives() {
            out.push_str(&format!(
                "  {:<26} {:<26} groups {} ({} ids) in {}\n",
                c.opcode, c.instruction, c.groups, c.ids, c.computation
            ));
        }
    }
    out.push_str("HBM footprint (constants and weights + one state set + execute staging):\n");
    for d in &devices {
        out.push_str(&format!(
            "  {:<5} {} of {}: {} ({} state sets fit)\n",
            d["device"].as_str().unwrap_or(""),
            bytes(d["footprint_bytes"].as_u64().unwrap_or(0)),
            bytes(d["hbm_capacity_bytes"].as_u64().unwrap_or(0)),
            if d["fits"].as_bool().unwrap_or(false) {
                "fits"
            } else {
                "does NOT fit"
            },
            d["state_sets_that_fit"]
        ));
    }
    crate::output::emit(&out)
}

/// For a parameter the header's `buffer_donor` donates but no alias makes state: what it
/// could be aliased to, and how.
pub(crate) fn donated_hint(
    program: &statetensor_hlo::Program,
    aliases: &statetensor_core::AliasMap,
    p: usize,
) -> Option<String> {
    if !program.buffer_donors().contains(&p) || aliases.is_state(p) {
        return None;
    }
    let candidates = program.alias_candidates(p, aliases);
    Some(match candidates.first() {
        None => "donated (buffer_donor) but no output of its type is free to alias it".into(),
        Some(&o) => format!(
            "donated (buffer_donor) but not aliased: it could be state updated from output {} (--alias {p}={o})",
            candidates
                .iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    })
}
