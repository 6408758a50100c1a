//! Layer 2: every libnrt call, one Rust function each, grouped by area, with `NRT_STATUS`
//! turned into `Result` (the C function's name and the raw status in the error).
//!
//! These functions take the runtime's raw handles and are `unsafe` where a handle or
//! pointer must be valid; the `safe` layer above owns the handles and is the only
//! caller. No other module calls into [`crate::sys`]'s function table.

pub mod model;
pub mod runtime;
pub mod tensor;
pub mod tensor_set;

use crate::sys::{status_name, NrtLib, NRT_STATUS, NRT_SUCCESS};
use statetensor_core::{Error, Result};
use std::ffi::CStr;
use std::os::raw::c_char;

/// `Ok(())` for `NRT_SUCCESS`; otherwise [`Error::Runtime`] naming `function`, with the raw
/// status and the runtime's own description when it has `nrt_get_status_as_str`.
pub fn check(lib: &NrtLib, function: &str, status: NRT_STATUS) -> Result<()> {
    if status == NRT_SUCCESS {
        return Ok(());
    }
    let described = lib.nrt_get_status_as_str.and_then(|f| {
        // SAFETY: the function takes any status value and returns a static C string or null.
        let p = unsafe { f(status) };
        // SAFETY: a non-null result is a NUL-terminated static string owned by the runtime.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    });
    let name = described.unwrap_or_else(|| status_name(status).to_string());
    Err(Error::Runtime {
        function: function.to_string(),
        status: Some(status as i64),
        message: format!("failed with status {status} ({name})"),
    })
}

/// A fixed-size, NUL-padded C character array as a Rust string.
fn c_chars(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
