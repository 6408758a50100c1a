//! `statetensor probe`: is libnrt loadable, its version, the NeuronCores it sees. Hardware
//! only, so it names the driver directly.

use crate::output::emit;

/// Prints what libnrt reports; a missing or unusable runtime is the error.
pub(crate) fn probe(json: bool) -> statetensor_core::Result<()> {
    let info = statetensor_hw::probe(None)?;
    if json {
        let v = serde_json::json!({"library": info.path, "version": info.version, "visible_cores": info.visible_cores});
        return emit(&format!("{v}\n"));
    }
    emit(&format!(
        "libnrt: {}\nruntime version: {}\nvisible NeuronCores: {}\n",
        info.path,
        info.version
            .as_deref()
            .unwrap_or("not reported (older runtime)"),
        info.visible_cores
    ))
}
