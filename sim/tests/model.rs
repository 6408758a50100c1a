//! The alias contract (DESIGN §2) on the simulator.

use statetensor_core::{AliasMap, DType, ErrorKind, HostTensor, StateInit, StatefulModel};
use statetensor_sim::{snapshot, DeviceProfile, Fault, SimDevice, SimModel};
use std::sync::Arc;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../crates/hlo/tests/fixtures/{name}/model.hlo",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn f32s(dims: &[usize], v: &[f32]) -> HostTensor {
    HostTensor::new(
        DType::F32,
        dims.to_vec(),
        v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    )
    .unwrap()
}

fn as_f32(h: &HostTensor) -> Vec<f32> {
    h.data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn read_f32(m: &dyn StatefulModel, set: &str, state: &str) -> Vec<f32> {
    let mut out = Vec::new();
    m.read_state_to(set, state, &mut out).unwrap();
    out.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// `y = cache * relu(fc(x))`; output 1 = cache + 1 aliased to the cache.
fn mlp(device: &Arc<SimDevice>) -> SimModel {
    SimModel::load(device, &fixture("mlp_cache"), "mlp_cache.hlo", None).unwrap()
}

fn mlp_inputs() -> Vec<HostTensor> {
    vec![
        f32s(&[4], &[1.0, 2.0, 0.5, 1.0]),
        f32s(&[4, 3], &[0.5; 12]),
        f32s(&[3], &[0.0; 3]),
    ]
}

#[test]
fn walkthrough_two_steps() {
    let device = SimDevice::new(DeviceProfile::inf2());
    let m = mlp(&device);
    m.create_state_set("s", StateInit::Zeros).unwrap();
    let y1 = m.execute("s", &mlp_inputs()).unwrap();
    assert_eq!(as_f32(&y1[0]), vec![0.0; 3]);
    assert_eq!(read_f32(&m, "s", "cache.1"), vec![1.0; 3]);
    let y2 = m.execute("s", &mlp_inputs()).unwrap();
    assert_eq!(as_f32(&y2[0]), vec![2.25; 3]); // relu(0.5 * 4.5) with cache 1
    assert_eq!(read_f32(&m, "s", "cache.1"), vec![2.0; 3]);
}

#[test]
fn state_never_crosses_during_execute() {
    let device = SimDevice::new(DeviceProfile::inf2());
    let m = SimModel::load(&device, &fixture("kv_decoder"), "kv.hlo", None).unwrap();
    m.create_state_set("s", StateInit::Zeros).unwrap();
    let sig = m.signature().clone();
    let inputs: Vec<HostTensor> = sig
        .input_params()
        .iter()
        .map(|&p| {
            HostTensor::new(
                sig.params[p].dtype,
                sig.params[p].shape.dims().to_vec(),
                vec![0; sig.params[p].size_bytes()],
            )
            .unwrap()
        })
        .collect();
    let in_bytes: u64 = inputs.iter().map(|h| h.data.len() as u64).sum();
    let out_bytes: u64 = sig
        .returned_outputs()
        .iter()
        .map(|&o| sig.outputs[o].size_bytes() as u64)
        .sum();
    for _ in 0..3 {
        let before = m.ledger();
        m.execute("s", &inputs).unwrap();
        let d = m.ledger() - before;
        assert_eq!(d.h2d.bytes, in_bytes, "only user inputs go host->device");
        assert_eq!(
            d.d2h.bytes, out_bytes,
            "only returned outputs go device->host"
        );
        assert_eq!(d.d2d.bytes, 0);
        assert_eq!(d.executes, 1);
        assert!(d.execute_seconds > 0.0 && d.h2d.seconds > 0.0);
    }
    let mut pos = [0u8; 4];
    m.read_state("s", "pos.1", 0, &mut pos).unwrap();
    assert_eq!(i32::from_le_bytes(pos), 3);
}

#[test]
fn alias_override_is_validated_with_both_sides_named() {
    let device = SimDevice::new(DeviceProfile::inf2());
    let text = fixture("mlp_cache");
    let bad = AliasMap::from_pairs([(1, 1)]).unwrap(); // w f32[4,3] -> output f32[3]
    let e = SimModel::load(&device, &text, "m.hlo", Some(bad)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Alias);
    assert!(
        e.to_string().contains("w.1") && e.to_string().contains("f32[4,3]"),
        "{e}"
    );
    // overriding with output 0 (same type as the cache) is valid and changes what is state
    let m = SimModel::load(
        &device,
        &text,
        "m.hlo",
        Some(AliasMap::from_pairs([(3, 0)]).unwrap()),
    )
    .unwrap();
    assert_eq!(m.signature().returned_outputs(), vec![1]);
}

#[test]
fn swap_and_multi_reader_keep_functional_semantics() {
    let device = SimDevice::new(DeviceProfile::inf2());
    let m = SimModel::load(&device, &fixture("swap"), "swap.hlo", None).unwrap();
    let a = f32s(&[3, 2], &[1.0; 6]);
    let b = f32s(&[3, 2], &[2.0; 6]);
    m.create_state_set(
        "s",
        StateInit::Values(vec![("a.1".into(), a), ("b.1".into(), b)]),
    )
    .unwrap();
    let out = m.execute("s", &[]).unwrap();
    assert_eq!(as_f32(&out[0]), vec![4.0; 6]); // a*2 + b from the old values
    assert_eq!(read_f32(&m, "s", "a.1"), vec![2.0; 6]);
    assert_eq!(read_f32(&m, "s", "b.1"), vec![1.0; 6]);
}

#[test]
fn failed_execute_poisons_only_its_set_until_reset() {
    let device = SimDevice::new(DeviceProfile::inf2());
    let m = mlp(&device);
    m.create_state_set("a", StateInit::Zeros).unwrap();
    m.create_state_set("b", StateInit::Zeros).unwrap();
    m.execute("b", &mlp_inputs()).unwrap(); // call 1
    m.inject_fault(Fault::FailExecute { call: 1 });
    let e = m.execute("a", &mlp_inputs()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Runtime);
    for r in [
        m.execute("a", &mlp_inputs()).map(|_| ()),
        m.read_state("a", "cache.1", 0, &mut [0u8; 4]),
        m.write_state("a", "cache.1", 0, &[0u8; 4]),
    ] {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Poisoned);
        assert!(e.to_string().contains("execute #1"), "{e}");
    }
    assert_eq!(
        read_f32(&m, "b", "cache.1"),
        vec![1.0; 3],
        "other sets are untouched"
    );
    m.execute("b", &mlp_inputs()).unwrap();
    m.reset("a").unwrap();
    assert_eq!(read_f32(&m, "a", "cache.1"), vec![0.0; 3]);
    m.execute("a", &mlp_inputs()).unwrap();
    assert_eq!(read_f32(&m, "a", "cache.1"), vec![1.0; 3]);
}

#[test]
fn restore_clears_poisoning() {
    let device = SimDevice::new(DeviceProfile::inf2());
    let m = mlp(&device);
    m.create_state_set("a", StateInit::Zeros).unwrap();
    m.execute("a", &mlp_inputs()).unwrap();
    m.copy_state_set("a", "snap").unwrap();
    m.inject_fault(Fault::FailExecute { call: 1 });
    assert!(m.execute("a", &mlp_inputs()).is_err());
    let before = m.ledger();
    m.copy_state_set("snap", "a").unwrap();
    let d = m.ledger() - before;
    assert_eq!(
        (d.d2d.bytes, d.h2d.bytes, d.d2h.bytes),
        (12, 0, 0),
        "a device-side copy"
    );
    assert_eq!(read_f32(&m, "a", "cache.1"), vec![1.0; 3]);
}

#[test]
fn out_of_device_memory_leaves_the_ledger_as_it_was() {
    let small = DeviceProfile {
        hbm_bytes: 1000,
        ..DeviceProfile::inf2()
    };
    let device = SimDevice::new(small);
    let m = SimModel::load(&device, &fixture("ring_buffer"), "rb.hlo", None).unwrap();
    m.create_state_set("s", StateInit::Zeros).unwrap();
    let before_mem = m.memory();
    let before = m.ledger();
    let big = SimModel::load(&device, &fixture("kv_decoder"), "kv.hlo", None).unwrap();
    let used_before = big.memory().used;
    assert_eq!(
        used_before,
        before_mem.used + big.weight_bytes(),
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
    assert_eq!(m.memory().used, 12 + m.weight_bytes());
}

#[test]
fn state_sets_are_isolated_and_shareable_between_models() {
    let device = SimDevice::new(DeviceProfile::inf2());
    let a = mlp(&device);
    let b = mlp(&device);
    a.create_state_set("shared", StateInit::Zeros).unwrap();
    b.create_state_set("shared", StateInit::Zeros).unwrap(); // attaches
    a.execute("shared", &mlp_inputs()).unwrap();
    b.execute("shared", &mlp_inputs()).unwrap();
    assert_eq!(read_f32(&a, "shared", "cache.1"), vec![2.0; 3]);
    a.create_state_set("other", StateInit::Zeros).unwrap();
    assert_eq!(read_f32(&a, "other", "cache.1"), vec![0.0; 3]);
    // a model whose states differ cannot attach
    let kv = SimModel::load(&device, &fixture("kv_decoder"), "kv.hlo", None).unwrap();
    assert_eq!(
        kv.create_state_set("shared", StateInit::Zeros)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn bad_inputs_and_names_are_clear_errors() {
    let device = SimDevice::new(DeviceProfile::inf2());
    let m = mlp(&device);
    m.create_state_set("s", StateInit::Zeros).unwrap();
    let mut inputs = mlp_inputs();
    inputs[1] = f32s(&[3, 4], &[0.0; 12]);
    let e = m.execute("s", &inputs).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains("w.1")
            && e.to_string().contains("f32[4,3]")
            && e.to_string().contains("f32[3,4]"),
        "{e}"
    );
    assert_eq!(
        m.execute("nope", &mlp_inputs()).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        m.read_state("s", "w.1", 0, &mut [0; 4]).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        m.read_state("s", "cache.1", 10, &mut [0; 4])
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    // nothing above poisoned the set
    m.execute("s", &mlp_inputs()).unwrap();
}

#[test]
fn byte_range_access() {
    let device = SimDevice::new(DeviceProfile::inf2());
    let m = mlp(&device);
    m.create_state_set("s", StateInit::Zeros).unwrap();
    m.write_state("s", "cache.1", 4, &7f32.to_le_bytes())
        .unwrap();
    assert_eq!(read_f32(&m, "s", "cache.1"), vec![0.0, 7.0, 0.0]);
    let mut two = [0u8; 2];
    m.read_state("s", "cache.1", 6, &mut two).unwrap();
    assert_eq!(two, [0xe0, 0x40]);
}

#[test]
fn two_threads_two_sets_run_together_one_set_is_busy() {
    let device = SimDevice::new(DeviceProfile::inf2());
    let m = Arc::new(mlp(&device));
    m.create_state_set("a", StateInit::Zeros).unwrap();
    m.create_state_set("b", StateInit::Zeros).unwrap();
    let handles: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|set| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    m.execute(set, &mlp_inputs()).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(read_f32(&*m, "a", "cache.1"), vec![50.0; 3]);
    assert_eq!(read_f32(&*m, "b", "cache.1"), vec![50.0; 3]);
    // the same set from two threads: every call either succeeds or is Busy; none races
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                let mut ok = 0;
                for _ in 0..200 {
                    match m.execute("a", &mlp_inputs()) {
                        Ok(_) => ok += 1,
                        Err(e) => assert_eq!(e.kind(), ErrorKind::Busy),
                    }
                }
                ok
            })
        })
        .collect();
    let ok: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(read_f32(&*m, "a", "cache.1"), vec![50.0 + ok as f32; 3]);
}

#[test]
fn snapshot_file_round_trip() {
    let device = SimDevice::new(DeviceProfile::inf2());
    let m = SimModel::load(&device, &fixture("kv_decoder"), "kv.hlo", None).unwrap();
    m.create_state_set("s", StateInit::Zeros).unwrap();
    m.write_state("s", "k_cache.1", 0, &[1, 2, 3, 4, 5])
        .unwrap();
    m.write_state("s", "pos.1", 0, &9i32.to_le_bytes()).unwrap();
    let mut file = Vec::new();
    snapshot::save_state_set(&m, "s", &mut file).unwrap();
    snapshot::load_state_set(&m, "t", &mut file.as_slice(), "mem").unwrap();
    for state in ["k_cache.1", "v_cache.1", "pos.1"] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        m.read_state_to("s", state, &mut a).unwrap();
        m.read_state_to("t", state, &mut b).unwrap();
        assert_eq!(a, b, "{state}");
    }
    // a truncated file resets the set rather than leaving it half-written
    m.write_state("t", "pos.1", 0, &5i32.to_le_bytes()).unwrap();
    let cut = &file[..file.len() - 3];
    let e = snapshot::load_state_set(&m, "t", &mut &cut[..], "cut").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let mut pos = [9u8; 4];
    m.read_state("t", "pos.1", 0, &mut pos).unwrap();
    assert_eq!(pos, [0; 4]);
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
