//! Runtime-wide functions: init, close, version, core counts, status strings, memory.

use super::*;

/// `NRT_STATUS nrt_init(nrt_framework_type_t framework, const char *fw_version, const char *fal_version)`.
///
/// Reads `STATETENSOR_EMU_NAMES`, `STATETENSOR_EMU_CORES`, `STATETENSOR_EMU_HBM_BYTES`
/// (each core's) and `STATETENSOR_EMU_FAULT`.
#[no_mangle]
pub extern "C" fn nrt_init(
    _framework: c_int,
    _fw_version: *const c_char,
    _fal_version: *const c_char,
) -> NRT_STATUS {
    let names = match std::env::var("STATETENSOR_EMU_NAMES").as_deref() {
        Err(_) | Ok("") | Ok("torch") => Naming::Torch,
        Ok("nkipy") => Naming::Nkipy,
        Ok(other) => {
            warn(&format!(
                "STATETENSOR_EMU_NAMES='{other}': expected torch or nkipy"
            ));
            return NRT_INVALID;
        }
    };
    let cores = match emulated_cores() {
        Ok(n) => n,
        Err(m) => {
            warn(&m);
            return NRT_INVALID;
        }
    };
    let capacity = match std::env::var("STATETENSOR_EMU_HBM_BYTES") {
        Err(_) => INF2_CORE_HBM_BYTES,
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                warn(&format!(
                    "STATETENSOR_EMU_HBM_BYTES='{v}': expected a byte count"
                ));
                return NRT_INVALID;
            }
        },
    };
    let fault = match Fault::parse(&std::env::var("STATETENSOR_EMU_FAULT").unwrap_or_default()) {
        Ok(f) => f,
        Err(m) => {
            warn(&m);
            return NRT_INVALID;
        }
    };
    let mut g = emu();
    if g.life == Life::Running {
        return NRT_SUCCESS;
    }
    *g = Emu {
        life: Life::Running,
        hbm: (0..cores).map(|_| Hbm::new(capacity)).collect(),
        names,
        fault,
        executes: 0,
        tensors: BTreeSet::new(),
        models: BTreeSet::new(),
        sets: BTreeSet::new(),
        worlds: BTreeMap::new(),
        next_world: 0,
    };
    NRT_SUCCESS
}

/// `void nrt_close()`.
#[no_mangle]
pub extern "C" fn nrt_close() {
    let mut g = emu();
    if g.life == Life::Running {
        g.life = Life::Closed;
    }
}

/// `NRT_STATUS nrt_get_version(nrt_version_t *ver, size_t size)`.
///
/// # Safety
/// `ver` must point to `size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn nrt_get_version(ver: *mut nrt_version_t, size: usize) -> NRT_STATUS {
    if ver.is_null() || size < std::mem::size_of::<nrt_version_t>() {
        return NRT_INVALID;
    }
    let mut v = nrt_version_t {
        rt_major: 2,
        rt_minor: 28,
        rt_patch: 0,
        rt_maintenance: 0,
        rt_detail: [0; 128],
        git_hash: [0; 64],
    };
    fill_c(
        &mut v.rt_detail,
        concat!("statetensor-nrt-emu ", env!("CARGO_PKG_VERSION")),
    );
    fill_c(&mut v.git_hash, "emulator");
    // SAFETY: the caller provides at least size_of::<nrt_version_t>() writable bytes (checked above).
    unsafe { ver.write_unaligned(v) };
    NRT_SUCCESS
}

/// The number of emulated cores: `STATETENSOR_EMU_CORES`, or [`DEFAULT_EMULATED_CORES`].
fn emulated_cores() -> Result<usize, String> {
    match std::env::var("STATETENSOR_EMU_CORES") {
        Err(_) => Ok(DEFAULT_EMULATED_CORES),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=1024).contains(&n) => Ok(n),
            _ => Err(format!(
                "STATETENSOR_EMU_CORES='{v}': expected a number of NeuronCores from 1 to 1024"
            )),
        },
    }
}

/// Cores before `nrt_init` (from the environment) and after (what it set up).
fn core_count() -> u32 {
    let g = emu();
    match g.life {
        Life::Running => g.hbm.len() as u32,
        _ => emulated_cores().unwrap_or(DEFAULT_EMULATED_CORES) as u32,
    }
}

fn write_count(out: *mut u32, n: u32) -> NRT_STATUS {
    if out.is_null() {
        return NRT_INVALID;
    }
    // SAFETY: non-null pointer to a u32 the caller owns.
    unsafe { out.write_unaligned(n) };
    NRT_SUCCESS
}

/// `NRT_STATUS nrt_get_total_nc_count(uint32_t *nc_count)` (callable before nrt_init).
///
/// # Safety
/// `count` must point to a writable `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn nrt_get_total_nc_count(count: *mut u32) -> NRT_STATUS {
    write_count(count, core_count())
}

/// `NRT_STATUS nrt_get_total_vnc_count(uint32_t *vnc_count)` (callable before nrt_init).
///
/// # Safety
/// `count` must point to a writable `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn nrt_get_total_vnc_count(count: *mut u32) -> NRT_STATUS {
    write_count(count, core_count())
}

/// `NRT_STATUS nrt_get_visible_nc_count(uint32_t *nc_count)`.
///
/// # Safety
/// `count` must point to a writable `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn nrt_get_visible_nc_count(count: *mut u32) -> NRT_STATUS {
    let n = tri!(running()).hbm.len() as u32;
    write_count(count, n)
}

/// `NRT_STATUS nrt_get_visible_vnc_count(uint32_t *vnc_count)`.
///
/// # Safety
/// `count` must point to a writable `uint32_t`.
#[no_mangle]
pub unsafe extern "C" fn nrt_get_visible_vnc_count(count: *mut u32) -> NRT_STATUS {
    let n = tri!(running()).hbm.len() as u32;
    write_count(count, n)
}

/// `const char *nrt_get_status_as_str(NRT_STATUS status)`.
#[no_mangle]
pub extern "C" fn nrt_get_status_as_str(status: NRT_STATUS) -> *const c_char {
    status_name(status).as_ptr() as *const c_char
}

/// `NRT_STATUS nrt_get_vnc_memory_stats(uint32_t vnc, nrt_vnc_memory_stats_t *stats, size_t stats_size_in, size_t *stats_size_out)`.
///
/// # Safety
/// `stats` must point to `stats_size_in` writable bytes; `stats_size_out` may be null or
/// point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn nrt_get_vnc_memory_stats(
    vnc: u32,
    stats: *mut nrt_vnc_memory_stats_t,
    size_in: usize,
    size_out: *mut usize,
) -> NRT_STATUS {
    let g = tri!(running());
    if stats.is_null() || size_in < std::mem::size_of::<nrt_vnc_memory_stats_t>() {
        return NRT_INVALID;
    }
    let Some(hbm) = g.hbm(vnc as usize) else {
        return NRT_INVALID;
    };
    let r = hbm.report();
    // SAFETY: the caller provides size_in >= size_of::<nrt_vnc_memory_stats_t>() writable bytes.
    unsafe {
        stats.write_unaligned(nrt_vnc_memory_stats_t {
            bytes_used: r.used as usize,
            bytes_limit: r.capacity as usize,
        })
    };
    if !size_out.is_null() {
        // SAFETY: non-null pointer to a writable size_t, per the contract above.
        unsafe { size_out.write_unaligned(std::mem::size_of::<nrt_vnc_memory_stats_t>()) };
    }
    NRT_SUCCESS
}
