//! Finding and loading libnrt at run time: the candidates, the variable that overrides them,
//! and the process-wide registry that initialises each library once (`nrt_init` reserves
//! the visible NeuronCores for the process; calling it again is an error).

use crate::result;
use crate::safe::Runtime;
use crate::sys::NrtLib;
use statetensor_core::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The environment variable naming the libnrt to load.
pub const LIBNRT_ENV: &str = "STATETENSOR_LIBNRT";

/// The libraries tried, in order, when no path is given.
pub fn candidates() -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(p) = std::env::var(LIBNRT_ENV) {
        if !p.is_empty() {
            v.push(p);
        }
    }
    v.push("libnrt.so.1".into());
    v.push("/opt/aws/neuron/lib/libnrt.so.1".into());
    v
}

fn runtimes() -> &'static Mutex<HashMap<String, Arc<Runtime>>> {
    static R: OnceLock<Mutex<HashMap<String, Arc<Runtime>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Runtime {
    /// Loads libnrt from `path`, or searches [`candidates`]; `nrt_init` runs once per
    /// library per process. Missing libraries and symbols are `BackendUnavailable`, listing
    /// every path tried and how to choose another.
    pub fn open(path: Option<&str>) -> Result<Arc<Runtime>> {
        let tried: Vec<String> = match path {
            Some(p) => vec![p.to_string()],
            None => candidates(),
        };
        let mut map = runtimes().lock().unwrap_or_else(|p| p.into_inner());
        let mut failures = Vec::new();
        for p in &tried {
            if let Some(rt) = map.get(p) {
                return Ok(rt.clone());
            }
            match NrtLib::open(p) {
                Ok(lib) => {
                    result::runtime::init(&lib)?;
                    let rt = Arc::new(Runtime {
                        lib,
                        path: p.clone(),
                    });
                    map.insert(p.clone(), rt.clone());
                    return Ok(rt);
                }
                Err(e) => failures.push(format!("{p}: {e}")),
            }
        }
        Err(Error::BackendUnavailable {
            what: "libnrt".into(),
            reason: format!(
                "could not load the Neuron runtime; tried {}. Set {LIBNRT_ENV} to the library (for example target/debug/libnrt_emu.so for the emulator), or install aws-neuronx-runtime-lib and add /opt/aws/neuron/lib to LD_LIBRARY_PATH",
                failures.join("; ")
            ),
        })
    }
}
