//! The C types of libnrt exactly as `nrt/nrt.h`, `nrt/nrt_experimental.h`,
//! `nrt/nrt_status.h` and `nrt/nrt_version.h` define them (facts in docs/architecture.md §12).
//! The emulator and the driver share nothing but this ABI: the driver has its own copy in
//! `statetensor-hw::sys`, so each side is checked against the headers independently.

#![allow(non_camel_case_types, missing_docs)]

use std::os::raw::{c_char, c_int};

pub type NRT_STATUS = c_int;
pub const NRT_SUCCESS: NRT_STATUS = 0;
pub const NRT_FAILURE: NRT_STATUS = 1;
pub const NRT_INVALID: NRT_STATUS = 2;
pub const NRT_INVALID_HANDLE: NRT_STATUS = 3;
pub const NRT_RESOURCE: NRT_STATUS = 4;
pub const NRT_TIMEOUT: NRT_STATUS = 5;
pub const NRT_UNINITIALIZED: NRT_STATUS = 13;
pub const NRT_CLOSED: NRT_STATUS = 14;
pub const NRT_EXEC_COMPLETED_WITH_ERR: NRT_STATUS = 1004;
pub const NRT_EXEC_HW_ERR_COLLECTIVES: NRT_STATUS = 1200;

pub const NRT_TENSOR_PLACEMENT_DEVICE: c_int = 0;
pub const NRT_TENSOR_PLACEMENT_HOST: c_int = 1;
pub const NRT_TENSOR_PLACEMENT_VIRTUAL: c_int = 2;

pub const NRT_TENSOR_USAGE_INPUT: c_int = 0;
pub const NRT_TENSOR_USAGE_OUTPUT: c_int = 1;

pub const NRT_TENSOR_NAME_MAX: usize = 256;

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

/// `nrt_tensor_info_array_t` (a flexible array member follows `tensor_count`).
#[repr(C)]
pub struct nrt_tensor_info_array_t {
    pub tensor_count: u64,
    pub tensor_array: [nrt_tensor_info_t; 0],
}

/// `nrt_version_t`.
#[repr(C)]
pub struct nrt_version_t {
    pub rt_major: u64,
    pub rt_minor: u64,
    pub rt_patch: u64,
    pub rt_maintenance: u64,
    pub rt_detail: [c_char; 128],
    pub git_hash: [c_char; 64],
}

/// `nrt_vnc_memory_stats_t`.
#[repr(C)]
pub struct nrt_vnc_memory_stats_t {
    pub bytes_used: usize,
    pub bytes_limit: usize,
}

/// 2.28 `nrt_dtype_t` numbering (what the emulator reports; the driver does not trust it).
pub fn dtype_code(d: statetensor_core::DType) -> c_int {
    use statetensor_core::DType::*;
    match d {
        U64 => 0x1,
        S8 => 0x2,
        U8 | Pred => 0x3,
        S16 => 0x4,
        U16 => 0x5,
        BF16 => 0x6,
        F16 => 0x7,
        S32 => 0x8,
        U32 => 0x9,
        F32 => 0xA,
        S64 => 0xC,
        // no nrt code: NRT_DTYPE_UNKNOWN (int4 tensors are packed bytes to the runtime)
        F64 | S4 | U4 => 0x0,
        F8E4M3FN => 0xE,
        F8E5M2 => 0xF,
    }
}

/// The status name, as `nrt_get_status_as_str` reports it.
pub fn status_name(s: NRT_STATUS) -> &'static [u8] {
    match s {
        0 => b"NRT_SUCCESS\0",
        1 => b"NRT_FAILURE\0",
        2 => b"NRT_INVALID\0",
        3 => b"NRT_INVALID_HANDLE\0",
        4 => b"NRT_RESOURCE\0",
        5 => b"NRT_TIMEOUT\0",
        6 => b"NRT_HW_ERROR\0",
        7 => b"NRT_QUEUE_FULL\0",
        9 => b"NRT_LOAD_NOT_ENOUGH_NC\0",
        10 => b"NRT_UNSUPPORTED_NEFF_VERSION\0",
        13 => b"NRT_UNINITIALIZED\0",
        14 => b"NRT_CLOSED\0",
        1002 => b"NRT_EXEC_BAD_INPUT\0",
        1004 => b"NRT_EXEC_COMPLETED_WITH_ERR\0",
        1200 => b"NRT_EXEC_HW_ERR_COLLECTIVES\0",
        _ => b"NRT_UNKNOWN_STATUS\0",
    }
}
