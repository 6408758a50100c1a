//! Layer 1: libnrt's C types, constants and one function table, resolved once.
//!
//! Types follow the headers exactly (docs/architecture.md §12); tests assert sizes and field
//! offsets. Symbols that only newer runtimes export are `Option`s.

#![allow(non_camel_case_types, missing_docs)]

use libloading::Library;
use std::os::raw::{c_char, c_int, c_void};

pub type NRT_STATUS = c_int;
pub const NRT_SUCCESS: NRT_STATUS = 0;
pub const NRT_FAILURE: NRT_STATUS = 1;
pub const NRT_INVALID: NRT_STATUS = 2;
pub const NRT_INVALID_HANDLE: NRT_STATUS = 3;
pub const NRT_RESOURCE: NRT_STATUS = 4;
pub const NRT_TIMEOUT: NRT_STATUS = 5;
pub const NRT_HW_ERROR: NRT_STATUS = 6;
pub const NRT_QUEUE_FULL: NRT_STATUS = 7;
pub const NRT_LOAD_NOT_ENOUGH_NC: NRT_STATUS = 9;
pub const NRT_UNSUPPORTED_NEFF_VERSION: NRT_STATUS = 10;
pub const NRT_FAIL_HOST_MEM_ALLOC: NRT_STATUS = 11;
pub const NRT_UNINITIALIZED: NRT_STATUS = 13;
pub const NRT_CLOSED: NRT_STATUS = 14;
pub const NRT_QUEUE_EMPTY: NRT_STATUS = 15;
pub const NRT_EXEC_UNIT_UNRECOVERABLE: NRT_STATUS = 101;
pub const NRT_EXEC_BAD_INPUT: NRT_STATUS = 1002;
pub const NRT_EXEC_COMPLETED_WITH_NUM_ERR: NRT_STATUS = 1003;
pub const NRT_EXEC_COMPLETED_WITH_ERR: NRT_STATUS = 1004;
pub const NRT_EXEC_NC_BUSY: NRT_STATUS = 1005;
pub const NRT_EXEC_OOB: NRT_STATUS = 1006;
pub const NRT_COLL_PENDING: NRT_STATUS = 1100;
pub const NRT_EXEC_HW_ERR_COLLECTIVES: NRT_STATUS = 1200;
pub const NRT_EXEC_HW_ERR_HBM_UE: NRT_STATUS = 1201;
pub const NRT_EXEC_HW_ERR_NC_UE: NRT_STATUS = 1202;
pub const NRT_EXEC_HW_ERR_DMA_ABORT: NRT_STATUS = 1203;
pub const NRT_EXEC_SW_NQ_OVERFLOW: NRT_STATUS = 1204;
pub const NRT_EXEC_HW_ERR_REPAIRABLE_HBM_UE: NRT_STATUS = 1205;
pub const NRT_NETWORK_PROXY_FAILURE: NRT_STATUS = 1206;

/// The name of a status code (for messages; unknown codes are failures too).
pub fn status_name(s: NRT_STATUS) -> &'static str {
    match s {
        NRT_SUCCESS => "NRT_SUCCESS",
        NRT_FAILURE => "NRT_FAILURE",
        NRT_INVALID => "NRT_INVALID",
        NRT_INVALID_HANDLE => "NRT_INVALID_HANDLE",
        NRT_RESOURCE => "NRT_RESOURCE",
        NRT_TIMEOUT => "NRT_TIMEOUT",
        NRT_HW_ERROR => "NRT_HW_ERROR",
        NRT_QUEUE_FULL => "NRT_QUEUE_FULL",
        NRT_LOAD_NOT_ENOUGH_NC => "NRT_LOAD_NOT_ENOUGH_NC",
        NRT_UNSUPPORTED_NEFF_VERSION => "NRT_UNSUPPORTED_NEFF_VERSION",
        NRT_FAIL_HOST_MEM_ALLOC => "NRT_FAIL_HOST_MEM_ALLOC",
        NRT_UNINITIALIZED => "NRT_UNINITIALIZED",
        NRT_CLOSED => "NRT_CLOSED",
        NRT_QUEUE_EMPTY => "NRT_QUEUE_EMPTY",
        NRT_EXEC_UNIT_UNRECOVERABLE => "NRT_EXEC_UNIT_UNRECOVERABLE",
        NRT_EXEC_BAD_INPUT => "NRT_EXEC_BAD_INPUT",
        NRT_EXEC_COMPLETED_WITH_NUM_ERR => "NRT_EXEC_COMPLETED_WITH_NUM_ERR",
        NRT_EXEC_COMPLETED_WITH_ERR => "NRT_EXEC_COMPLETED_WITH_ERR",
        NRT_EXEC_NC_BUSY => "NRT_EXEC_NC_BUSY",
        NRT_EXEC_OOB => "NRT_EXEC_OOB",
        NRT_COLL_PENDING => "NRT_COLL_PENDING",
        NRT_EXEC_HW_ERR_COLLECTIVES => "NRT_EXEC_HW_ERR_COLLECTIVES",
        NRT_EXEC_HW_ERR_HBM_UE => "NRT_EXEC_HW_ERR_HBM_UE",
        NRT_EXEC_HW_ERR_NC_UE => "NRT_EXEC_HW_ERR_NC_UE",
        NRT_EXEC_HW_ERR_DMA_ABORT => "NRT_EXEC_HW_ERR_DMA_ABORT",
        NRT_EXEC_SW_NQ_OVERFLOW => "NRT_EXEC_SW_NQ_OVERFLOW",
        NRT_EXEC_HW_ERR_REPAIRABLE_HBM_UE => "NRT_EXEC_HW_ERR_REPAIRABLE_HBM_UE",
        NRT_NETWORK_PROXY_FAILURE => "NRT_NETWORK_PROXY_FAILURE",
        _ => "unknown NRT_STATUS",
    }
}

/// `nrt_tensor_placement_t`.
pub const NRT_TENSOR_PLACEMENT_DEVICE: c_int = 0;
pub const NRT_TENSOR_PLACEMENT_HOST: c_int = 1;
pub const NRT_TENSOR_PLACEMENT_VIRTUAL: c_int = 2;
/// `nrt_framework_type_t`.
pub const NRT_FRAMEWORK_TYPE_INVALID: c_int = 0;
pub const NRT_FRAMEWORK_TYPE_NO_FW: c_int = 1;
pub const NRT_FRAMEWORK_TYPE_TENSORFLOW: c_int = 2;
pub const NRT_FRAMEWORK_TYPE_PYTORCH: c_int = 3;
pub const NRT_FRAMEWORK_TYPE_MXNET: c_int = 4;
/// `nrt_tensor_usage_t`.
pub const NRT_TENSOR_USAGE_INPUT: c_int = 0;
pub const NRT_TENSOR_USAGE_OUTPUT: c_int = 1;

/// `nrt_dtype_t` as the 2.7 headers number it (sequential).
pub mod dtype_v2_7 {
    pub const UNKNOWN: i32 = 0;
    pub const FLOAT32: i32 = 1;
    pub const FLOAT16: i32 = 2;
    pub const BFLOAT16: i32 = 3;
    pub const INT8: i32 = 4;
    pub const UINT8: i32 = 5;
    pub const INT16: i32 = 6;
    pub const UINT16: i32 = 7;
    pub const INT32: i32 = 8;
    pub const UINT32: i32 = 9;
    pub const INT64: i32 = 10;
    pub const UINT64: i32 = 11;
}

/// `nrt_dtype_t` as the 2.28 headers number it (hardware codes). The driver never trusts
/// either numbering: dtypes come from the HLO.
pub mod dtype_v2_28 {
    pub const INVALID: i32 = 0x0;
    pub const UINT64: i32 = 0x1;
    pub const INT8: i32 = 0x2;
    pub const UINT8: i32 = 0x3;
    pub const INT16: i32 = 0x4;
    pub const UINT16: i32 = 0x5;
    pub const BFLOAT16: i32 = 0x6;
    pub const FLOAT16: i32 = 0x7;
    pub const INT32: i32 = 0x8;
    pub const UINT32: i32 = 0x9;
    pub const FLOAT32: i32 = 0xA;
    pub const FP32R: i32 = 0xB;
    pub const INT64: i32 = 0xC;
    pub const FP8_E3: i32 = 0xD;
    pub const FP8_E4: i32 = 0xE;
    pub const FP8_E5: i32 = 0xF;
}

pub const NRT_TENSOR_NAME_MAX: usize = 256;

/// Opaque `nrt_model_t`.
#[repr(C)]
pub struct nrt_model_t {
    _private: [u8; 0],
}

/// Opaque `nrt_tensor_t`.
#[repr(C)]
pub struct nrt_tensor_t {
    _private: [u8; 0],
}

/// `typedef void nrt_tensor_set_t`.
pub type nrt_tensor_set_t = c_void;

/// `nrt_tensor_info_t`.
#[repr(C)]
pub struct nrt_tensor_info_t {
    pub name: [c_char; NRT_TENSOR_NAME_MAX],
    pub usage: c_int,
    pub size: usize,
    pub dtype: c_int,
    pub shape: *mut u32,
    pub ndim: u32,
}

/// `nrt_tensor_info_array_t` (flexible array member).
#[repr(C)]
pub struct nrt_tensor_info_array_t {
    pub tensor_count: u64,
    pub tensor_array: [nrt_tensor_info_t; 0],
}

/// `nrt_version_t` (224 bytes).
#[repr(C)]
pub struct nrt_version_t {
    pub rt_major: u64,
    pub rt_minor: u64,
    pub rt_patch: u64,
    pub rt_maintenance: u64,
    pub rt_detail: [c_char; 128],
    pub git_hash: [c_char; 64],
}

/// `nrt_vnc_memory_stats_t` (2.28).
#[repr(C)]
pub struct nrt_vnc_memory_stats_t {
    pub bytes_used: usize,
    pub bytes_limit: usize,
}

/// The functions the driver calls, copied out of the library, which the table owns so the
/// pointers live exactly as long as it.
pub struct NrtLib {
    pub nrt_init: unsafe extern "C" fn(c_int, *const c_char, *const c_char) -> NRT_STATUS,
    pub nrt_close: unsafe extern "C" fn(),
    pub nrt_load:
        unsafe extern "C" fn(*const c_void, usize, i32, i32, *mut *mut nrt_model_t) -> NRT_STATUS,
    pub nrt_unload: unsafe extern "C" fn(*mut nrt_model_t) -> NRT_STATUS,
    pub nrt_get_model_tensor_info:
        unsafe extern "C" fn(*mut nrt_model_t, *mut *mut nrt_tensor_info_array_t) -> NRT_STATUS,
    pub nrt_free_model_tensor_info:
        unsafe extern "C" fn(*mut nrt_tensor_info_array_t) -> NRT_STATUS,
    pub nrt_tensor_allocate: unsafe extern "C" fn(
        c_int,
        c_int,
        usize,
        *const c_char,
        *mut *mut nrt_tensor_t,
    ) -> NRT_STATUS,
    pub nrt_tensor_free: unsafe extern "C" fn(*mut *mut nrt_tensor_t),
    pub nrt_tensor_read:
        unsafe extern "C" fn(*const nrt_tensor_t, *mut c_void, usize, usize) -> NRT_STATUS,
    pub nrt_tensor_write:
        unsafe extern "C" fn(*mut nrt_tensor_t, *const c_void, usize, usize) -> NRT_STATUS,
    pub nrt_tensor_copy: unsafe extern "C" fn(
        *const nrt_tensor_t,
        usize,
        *mut nrt_tensor_t,
        usize,
        usize,
    ) -> NRT_STATUS,
    pub nrt_tensor_memset: unsafe extern "C" fn(*mut nrt_tensor_t, u64, c_int, usize) -> NRT_STATUS,
    pub nrt_tensor_get_size: unsafe extern "C" fn(*const nrt_tensor_t) -> usize,
    pub nrt_allocate_tensor_set: unsafe extern "C" fn(*mut *mut nrt_tensor_set_t) -> NRT_STATUS,
    pub nrt_destroy_tensor_set: unsafe extern "C" fn(*mut *mut nrt_tensor_set_t),
    pub nrt_add_tensor_to_tensor_set:
        unsafe extern "C" fn(*mut nrt_tensor_set_t, *const c_char, *mut nrt_tensor_t) -> NRT_STATUS,
    pub nrt_get_tensor_from_tensor_set: unsafe extern "C" fn(
        *mut nrt_tensor_set_t,
        *const c_char,
        *mut *mut nrt_tensor_t,
    ) -> NRT_STATUS,
    pub nrt_execute: unsafe extern "C" fn(
        *mut nrt_model_t,
        *const nrt_tensor_set_t,
        *mut nrt_tensor_set_t,
    ) -> NRT_STATUS,
    pub nrt_get_total_nc_count: unsafe extern "C" fn(*mut u32) -> NRT_STATUS,
    pub nrt_get_visible_nc_count: unsafe extern "C" fn(*mut u32) -> NRT_STATUS,
    // optional: newer runtimes only, or only needed for several cores
    pub nrt_load_collectives: Option<
        unsafe extern "C" fn(
            *const c_void,
            usize,
            i32,
            i32,
            u32,
            u32,
            *mut *mut nrt_model_t,
        ) -> NRT_STATUS,
    >,
    pub nrt_get_version: Option<unsafe extern "C" fn(*mut nrt_version_t, usize) -> NRT_STATUS>,
    pub nrt_get_status_as_str: Option<unsafe extern "C" fn(NRT_STATUS) -> *const c_char>,
    pub nrt_get_vnc_memory_stats: Option<
        unsafe extern "C" fn(u32, *mut nrt_vnc_memory_stats_t, usize, *mut usize) -> NRT_STATUS,
    >,
    pub nrt_get_visible_vnc_count: Option<unsafe extern "C" fn(*mut u32) -> NRT_STATUS>,
    _lib: Library,
}

impl NrtLib {
    /// Opens the library at `path` and resolves every required symbol; a missing one is an
    /// error naming it.
    pub fn open(path: &str) -> Result<NrtLib, String> {
        // SAFETY: loading runs the library's initialisers; libnrt (and the emulator) are
        // ordinary shared libraries without unsound initialisation requirements.
        let lib = unsafe { Library::new(path) }.map_err(|e| e.to_string())?;
        macro_rules! req {
            ($name:ident) => {{
                // SAFETY: the symbol is declared with libnrt's exact C signature (sys types),
                // and the pointer is stored next to the Library that keeps it valid.
                let s = unsafe { lib.get(concat!(stringify!($name), "\0").as_bytes()) };
                *s.map_err(|_| format!("symbol {} is missing", stringify!($name)))?
            }};
        }
        macro_rules! opt {
            ($name:ident) => {{
                // SAFETY: as for required symbols; absent ones stay None.
                let s = unsafe { lib.get(concat!(stringify!($name), "\0").as_bytes()) };
                s.ok().map(|s| *s)
            }};
        }
        Ok(NrtLib {
            nrt_init: req!(nrt_init),
            nrt_close: req!(nrt_close),
            nrt_load: req!(nrt_load),
            nrt_unload: req!(nrt_unload),
            nrt_get_model_tensor_info: req!(nrt_get_model_tensor_info),
            nrt_free_model_tensor_info: req!(nrt_free_model_tensor_info),
            nrt_tensor_allocate: req!(nrt_tensor_allocate),
            nrt_tensor_free: req!(nrt_tensor_free),
            nrt_tensor_read: req!(nrt_tensor_read),
            nrt_tensor_write: req!(nrt_tensor_write),
            nrt_tensor_copy: req!(nrt_tensor_copy),
            nrt_tensor_memset: req!(nrt_tensor_memset),
            nrt_tensor_get_size: req!(nrt_tensor_get_size),
            nrt_allocate_tensor_set: req!(nrt_allocate_tensor_set),
            nrt_destroy_tensor_set: req!(nrt_destroy_tensor_set),
            nrt_add_tensor_to_tensor_set: req!(nrt_add_tensor_to_tensor_set),
            nrt_get_tensor_from_tensor_set: req!(nrt_get_tensor_from_tensor_set),
            nrt_execute: req!(nrt_execute),
            nrt_get_total_nc_count: req!(nrt_get_total_nc_count),
            nrt_get_visible_nc_count: req!(nrt_get_visible_nc_count),
            nrt_load_collectives: opt!(nrt_load_collectives),
            nrt_get_version: opt!(nrt_get_version),
            nrt_get_status_as_str: opt!(nrt_get_status_as_str),
            nrt_get_vnc_memory_stats: opt!(nrt_get_vnc_memory_stats),
            nrt_get_visible_vnc_count: opt!(nrt_get_visible_vnc_count),
            _lib: lib,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_the_headers() {
        assert_eq!(offset_of!(nrt_tensor_info_t, name), 0);
        assert_eq!(offset_of!(nrt_tensor_info_t, usage), 256);
        assert_eq!(offset_of!(nrt_tensor_info_t, size), 264);
        assert_eq!(offset_of!(nrt_tensor_info_t, dtype), 272);
        assert_eq!(offset_of!(nrt_tensor_info_t, shape), 280);
        assert_eq!(offset_of!(nrt_tensor_info_t, ndim), 288);
        assert_eq!(size_of::<nrt_tensor_info_t>(), 296);
        assert_eq!(offset_of!(nrt_tensor_info_array_t, tensor_array), 8);
        assert_eq!(size_of::<nrt_version_t>(), 224);
        assert_eq!(offset_of!(nrt_version_t, rt_detail), 32);
        assert_eq!(offset_of!(nrt_version_t, git_hash), 160);
        assert_eq!(size_of::<nrt_vnc_memory_stats_t>(), 16);
    }

    #[test]
    fn status_values_match_the_header() {
        assert_eq!(
            (
                NRT_UNINITIALIZED,
                NRT_CLOSED,
                NRT_EXEC_OOB,
                NRT_NETWORK_PROXY_FAILURE
            ),
            (13, 14, 1006, 1206)
        );
        assert_eq!(status_name(4), "NRT_RESOURCE");
        assert_eq!(status_name(12345), "unknown NRT_STATUS");
        assert_eq!((dtype_v2_7::BFLOAT16, dtype_v2_28::BFLOAT16), (3, 6));
    }
}
