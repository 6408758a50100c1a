//! What only the simulator models exactly: HBM charges for constants, state and staging,
//! and device profiles.

use statetensor_conformance::contract::f32s;
use statetensor_conformance::fixture_hlo as fixture;
use statetensor_core::{ErrorKind, HostTensor, StateInit, StatefulModel};
use statetensor_sim::{DeviceProfile, SimDevice, SimModel};
use std::sync::Arc;

/// `y = cache * relu(fc(x))`; output 1 = cache + 1 aliased to the cache.
fn mlp(device: &Arc<SimDevice>) -> SimModel {
    SimModel::load(
        device,
        &fixture("mlp_cache"),
        "mlp_cache.hlo",
        &Default::default(),
    )
    .unwrap()
}

fn mlp_inputs() -> Vec<HostTensor> {
    vec![
        f32s(&[4], &[1.0, 2.0, 0.5, 1.0]),
        f32s(&[4, 3], &[0.5; 12]),
        f32s(&[3], &[0.0; 3]),
    ]
}

#[test]
fn out_of_device_memory_leaves_the_ledger_as_it_was() {
    let small = DeviceProfile {
        hbm_bytes: 1000,
        ..DeviceProfile::inf2()
    };
    let device = SimDevice::new(small);
    let m = SimModel::load(
        &device,
        &fixture("ring_buffer"),
        "rb.hlo",
        &Default::default(),
    )
    .unwrap();
    m.create_state_set("s", StateInit::Zeros).unwrap();
    let before_mem = m.memory();
    let before = m.ledger();
    let big = SimModel::load(
        &device,
        &fixture("kv_decoder"),
        "kv.hlo",
        &Default::default(),
    )
    .unwrap();
    let used_before = big.memory().used;
    assert_eq!(
        used_before,
        before_mem.used + big.constant_bytes(),
        "constants are charged at load"
    );
    let e = big.create_state_set("t", StateInit::Zeros).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfDeviceMemory);
    match e {
        statetensor_core::Error::OutOfDeviceMemory {
            requested,
            free,
            capacity,
            ..
        } => {
            assert_eq!(requested, 2 * 8 * 16 * 4 + 4);
            assert_eq!(capacity, 1000);
            assert_eq!(free, 1000 - used_before);
        }
        other => panic!("{other}"),
    }
    assert_eq!(m.memory().used, used_before);
    assert_eq!(m.ledger(), before);
}

#[test]
fn execute_staging_is_charged_and_released() {
    let device = SimDevice::new(DeviceProfile::inf2());
    let m = mlp(&device);
    m.create_state_set("s", StateInit::Zeros).unwrap();
    let used = m.memory().used;
    m.execute("s", &mlp_inputs()).unwrap();
    assert_eq!(m.memory().used, used);
    assert!(m.memory().peak >= used + m.execute_footprint());
    // a device too small for the staging: OOM, the set is not poisoned, the ledger unchanged
    let tight = SimDevice::new(DeviceProfile {
        hbm_bytes: 12 + 10,
        ..DeviceProfile::inf2()
    });
    let m = mlp(&tight);
    m.create_state_set("s", StateInit::Zeros).unwrap();
    let before = m.ledger();
    assert_eq!(
        m.execute("s", &mlp_inputs()).unwrap_err().kind(),
        ErrorKind::OutOfDeviceMemory
    );
    assert_eq!(m.ledger(), before);
    assert_eq!(m.memory().used, 12 + m.constant_bytes());
}

#[test]
fn profiles_and_overrides() {
    let p = DeviceProfile::from_json(r#"{"base": "trn2", "h2d_bytes_per_s": 1e9}"#, "mine.json")
        .unwrap();
    assert_eq!(p.hbm_bytes, DeviceProfile::trn2().hbm_bytes);
    assert_eq!(p.h2d_bytes_per_s, 1e9);
    assert!(DeviceProfile::from_json(r#"{"hbm_byte": 1}"#, "typo.json").is_err());
    assert!(DeviceProfile::from_json(r#"{"peak_flops": -1}"#, "neg.json").is_err());
    assert!(DeviceProfile::resolve("inf3").is_err());
    let inf2 = DeviceProfile::inf2();
    assert!((inf2.h2d_seconds(12 << 30) - (1.0 + inf2.transfer_latency_s)).abs() < 1e-9);
    assert!(inf2.notes.iter().any(|n| n.contains("assumption")));
}
