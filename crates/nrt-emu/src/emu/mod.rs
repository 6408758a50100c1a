//! The emulator: its process-wide state (this module) and the exported libnrt functions,
//! one file per area of the C API.
//!
//! | module | libnrt functions |
//! |---|---|
//! | `runtime` | `nrt_init`, `nrt_close`, version, core counts, status strings, memory statistics |
//! | `model` | `nrt_load`, `nrt_unload`, model tensor information |
//! | `tensor` | tensor allocate, free, read, write, copy, memset |
//! | `tensor_set` | tensor sets: allocate, destroy, add, get |
//! | `execute` | `nrt_execute`: the bound tensors through the HLO engine, with hazards and faults |
//! | `collectives` | `nrt_load_collectives`: the models of one SPMD program, one per global device id, meeting at the collectives |
//! | `hooks` | the test hook (not libnrt): fault mode and capacity at run time |

use crate::abi::*;
use statetensor_core::{stem, AliasMap, TensorSpec};
use statetensor_core::{Hbm, INF2_CORE_HBM_BYTES};
use statetensor_hlo::{Program, Tensor};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::{Arc, Mutex, MutexGuard};

/// I/O naming convention of emulated NEFFs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Naming {
    /// torch-neuronx: `input{p}` and `output{o}`.
    Torch,
    /// nkipy / newer neuronx-cc: `{name}.must_alias_input` for an aliased parameter and
    /// `{name}` for its aliased output; other parameters by name, other outputs `output{o}`.
    Nkipy,
}

/// Faults `STATETENSOR_EMU_FAULT` injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `fail_execute:N`: execute call N (1-based) writes its first aliased output, then
    /// fails with `NRT_EXEC_COMPLETED_WITH_ERR`.
    FailExecute(u64),
    /// `lost_write`: aliased outputs are silently not written back.
    LostWrite,
    /// `hazard`: every aliased state is written before it is read.
    Hazard,
}

impl Fault {
    fn parse(s: &str) -> Result<Option<Fault>, String> {
        match s.trim() {
            "" | "none" => Ok(None),
            "lost_write" => Ok(Some(Fault::LostWrite)),
            "hazard" => Ok(Some(Fault::Hazard)),
            other => match other.strip_prefix("fail_execute:").map(str::parse) {
                Some(Ok(n)) if n > 0 => Ok(Some(Fault::FailExecute(n))),
                _ => Err(format!("STATETENSOR_EMU_FAULT='{other}': expected fail_execute:N (N >= 1), lost_write, hazard or none")),
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Uninitialized,
    Running,
    Closed,
}

/// The bytes of one allocation, and how many times they have been written; slices share
/// it.
struct Buffer {
    bytes: Vec<u8>,
    version: u64,
}

impl Buffer {
    /// The bytes, to write: every writer comes through here, so the version says whether a
    /// decoded copy is still current.
    fn write(&mut self) -> &mut [u8] {
        self.version += 1;
        &mut self.bytes
    }
}

type Storage = Arc<Mutex<Buffer>>;

fn new_storage(size: usize) -> Storage {
    Arc::new(Mutex::new(Buffer {
        bytes: vec![0u8; size],
        version: 0,
    }))
}

/// A tensor's contents as the engine reads them, with the storage version it was decoded
/// at: an execute reads an unchanged weight or state without decoding its bytes again, as
/// the real runtime reads device memory in place.
type Decoded = Mutex<Option<(u64, Arc<Tensor>)>>;

struct EmuTensor {
    storage: Storage,
    offset: usize,
    size: usize,
    /// The core whose HBM holds it (`None` for host tensors).
    core: Option<usize>,
    /// Bytes charged to that core's HBM (0 for host tensors and slices).
    charged: u64,
    decoded: Arc<Decoded>,
}

/// A loaded model. Executes hold their own reference, so the runtime's lock is not held
/// while the engine runs: the cores of an SPMD program execute at once.
struct EmuModel {
    program: Arc<Program>,
    input_names: Vec<String>,
    output_names: Vec<String>,
    aliases: AliasMap,
    /// The core it was loaded on, charged for its constants.
    core: usize,
    charged: u64,
    /// Its place in an SPMD program, when loaded with `nrt_load_collectives`.
    rank: Option<collectives::Seat>,
    /// Held by each execute from binding to the last write: two executes of one model
    /// (from two threads) run one after the other, as on one NeuronCore's queue.
    running: Mutex<()>,
}

/// A model handle points to one of these (`Box<ModelHandle>`).
type ModelHandle = Arc<EmuModel>;

struct Emu {
    life: Life,
    /// One ledger per emulated NeuronCore.
    hbm: Vec<Hbm>,
    names: Naming,
    fault: Option<Fault>,
    executes: u64,
    tensors: BTreeSet<usize>,
    models: BTreeSet<usize>,
    sets: BTreeSet<usize>,
    worlds: BTreeMap<u64, collectives::World>,
    next_world: u64,
}

static EMU: Mutex<Emu> = Mutex::new(Emu {
    life: Life::Uninitialized,
    hbm: Vec::new(),
    names: Naming::Torch,
    fault: None,
    executes: 0,
    tensors: BTreeSet::new(),
    models: BTreeSet::new(),
    sets: BTreeSet::new(),
    worlds: BTreeMap::new(),
    next_world: 0,
});

/// How many NeuronCores the emulator has unless `STATETENSOR_EMU_CORES` says: an
/// inf2.48xlarge's 24 (12 chips of 2), each with [`INF2_CORE_HBM_BYTES`].
pub const DEFAULT_EMULATED_CORES: usize = 24;

type TensorSet = HashMap<String, usize>;

fn emu() -> MutexGuard<'static, Emu> {
    EMU.lock().unwrap_or_else(|p| p.into_inner())
}

fn warn(msg: &str) {
    eprintln!("[nrt-emu] {msg}");
}

/// The running emulator, or the status libnrt returns outside nrt_init..nrt_close.
fn running() -> Result<MutexGuard<'static, Emu>, NRT_STATUS> {
    let g = emu();
    match g.life {
        Life::Running => Ok(g),
        Life::Uninitialized => Err(NRT_UNINITIALIZED),
        Life::Closed => Err(NRT_CLOSED),
    }
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(status) => return status,
        }
    };
}

fn lock_storage(s: &Storage) -> MutexGuard<'_, Buffer> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

impl Emu {
    fn tensor(&self, h: *const c_void) -> Result<&EmuTensor, NRT_STATUS> {
        if h.is_null() || !self.tensors.contains(&(h as usize)) {
            return Err(NRT_INVALID_HANDLE);
        }
        // SAFETY: registered handles are live `Box<EmuTensor>` pointers created by
        // nrt_tensor_allocate*/unregistered before they are freed; the global lock is held.
        Ok(unsafe { &*(h as *const EmuTensor) })
    }

    fn model(&self, h: *const c_void) -> Result<&ModelHandle, NRT_STATUS> {
        if h.is_null() || !self.models.contains(&(h as usize)) {
            return Err(NRT_INVALID_HANDLE);
        }
        // SAFETY: registered model handles are live `Box<ModelHandle>` pointers (made by
        // `load_model`, unregistered by nrt_unload before the box is freed).
        Ok(unsafe { &*(h as *const ModelHandle) })
    }

    fn set(&self, h: *const c_void) -> Result<&TensorSet, NRT_STATUS> {
        if h.is_null() || !self.sets.contains(&(h as usize)) {
            return Err(NRT_INVALID_HANDLE);
        }
        // SAFETY: registered set handles are live `Box<TensorSet>` pointers.
        Ok(unsafe { &*(h as *const TensorSet) })
    }

    #[allow(clippy::mut_from_ref)]
    fn set_mut(&mut self, h: *mut c_void) -> Result<&mut TensorSet, NRT_STATUS> {
        if h.is_null() || !self.sets.contains(&(h as usize)) {
            return Err(NRT_INVALID_HANDLE);
        }
        // SAFETY: as `set`; `&mut self` proves exclusive access through the global lock.
        Ok(unsafe { &mut *(h as *mut TensorSet) })
    }

    /// The HBM of core `vnc`, as libnrt numbers the visible cores; `None` past the last.
    fn hbm(&self, vnc: usize) -> Option<&Hbm> {
        self.hbm.get(vnc)
    }

    /// The core a load or allocation names: -1 is the first (libnrt: "first free"), a
    /// core past the last is `NRT_INVALID`.
    fn core(&self, vnc: i64) -> Result<usize, NRT_STATUS> {
        match vnc {
            -1 => Ok(0),
            v if v >= 0 && (v as usize) < self.hbm.len() => Ok(v as usize),
            v => {
                warn(&format!(
                    "NeuronCore {v} does not exist: the emulator has {} (STATETENSOR_EMU_CORES)",
                    self.hbm.len()
                ));
                Err(NRT_INVALID)
            }
        }
    }
}

fn io_names(
    naming: Naming,
    params: &[TensorSpec],
    outputs: usize,
    aliases: &AliasMap,
) -> (Vec<String>, Vec<String>) {
    match naming {
        Naming::Torch => (
            (0..params.len()).map(|p| format!("input{p}")).collect(),
            (0..outputs).map(|o| format!("output{o}")).collect(),
        ),
        Naming::Nkipy => {
            let inputs = params
                .iter()
                .enumerate()
                .map(|(p, s)| {
                    if aliases.is_state(p) {
                        format!("{}.must_alias_input", stem(&s.name))
                    } else {
                        stem(&s.name).to_string()
                    }
                })
                .collect();
            let outs = (0..outputs)
                .map(|o| match aliases.param_for(o) {
                    Some(p) => stem(&params[p].name).to_string(),
                    None => format!("output{o}"),
                })
                .collect();
            (inputs, outs)
        }
    }
}

/// Copies a Rust string into a fixed C buffer, NUL-terminated and truncated.
fn fill_c(buf: &mut [c_char], s: &str) {
    let n = s.len().min(buf.len() - 1);
    for (d, &b) in buf.iter_mut().zip(&s.as_bytes()[..n]) {
        *d = b as c_char;
    }
    buf[n] = 0;
}

/// A C string argument as a Rust string; `None` for null or not UTF-8.
pub(crate) fn c_name(name: *const c_char) -> Option<String> {
    if name.is_null() {
        return None;
    }
    // SAFETY: callers pass a NUL-terminated C string (the libnrt contract).
    unsafe { CStr::from_ptr(name) }
        .to_str()
        .ok()
        .map(str::to_string)
}

// the exported functions, after the macros and helpers they use
mod collectives;
mod execute;
mod hooks;
mod model;
mod runtime;
mod tensor;
mod tensor_set;

pub use collectives::*;
pub use execute::*;
pub use hooks::*;
pub use model::*;
pub use runtime::*;
pub use tensor::*;
pub use tensor_set::*;
