//! The test hook (not part of libnrt).

use super::*;

/// Test hook, not part of libnrt: sets the fault mode (the `STATETENSOR_EMU_FAULT` syntax;
/// null or "" clears it), restarting the execute count, and every core's HBM capacity in
/// bytes (0 keeps it). Lets one test process exercise what the environment variables configure.
///
/// # Safety
/// `fault` must be null or a C string.
#[no_mangle]
pub unsafe extern "C" fn statetensor_emu_configure(
    fault: *const c_char,
    hbm_bytes: u64,
) -> NRT_STATUS {
    let mut g = tri!(running());
    let parsed = match Fault::parse(&c_name(fault).unwrap_or_default()) {
        Ok(f) => f,
        Err(m) => {
            warn(&m);
            return NRT_INVALID;
        }
    };
    g.fault = parsed;
    g.executes = 0;
    if hbm_bytes > 0 {
        for hbm in &g.hbm {
            hbm.set_capacity(hbm_bytes);
        }
    }
    NRT_SUCCESS
}
