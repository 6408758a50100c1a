//! The alias contract, written once and run against every backend: each backend's test
//! crate implements [`Harness`] and instantiates the suite with [`crate::contract_tests!`] — the
//! simulator in `sim/tests`, the libnrt driver in `hw/tests` (over the emulator, or over
//! real libnrt when `STATETENSOR_LIBNRT` names it).
//!
//! A test that needs what a backend cannot offer (fault injection or a chosen capacity on
//! real hardware) says so on stderr and checks nothing else; on the simulator and the
//! emulator every test runs in full.

use crate::fixtures::{
    fixture_arg, fixture_feeds, fixture_load_options, fixture_names, fixture_path, host_tensor,
};
use statetensor_core::{
    snapshot, AliasMap, DType, Error, ErrorKind, HostTensor, LoadOptions, Result, StateInit,
    StatefulModel,
};
use std::sync::Arc;

/// Loads a committed fixture (by name, see [`crate::fixture_path`]) on a device.
pub type Loader = Box<dyn Fn(&str, &LoadOptions) -> Result<Box<dyn StatefulModel>>>;

/// A fresh device of one backend.
pub struct ContractDevice {
    /// Loads a fixture on this device.
    pub loader: Loader,
    /// Makes execute number `call` from now on (any model on the device) fail after a
    /// partial state update; 0 disarms. `None` where faults cannot be injected.
    pub arm_fail_execute: Option<Box<dyn Fn(u64)>>,
    /// Held for the device's lifetime (a backend whose device is process-wide serialises
    /// its tests with it).
    pub guard: Option<Box<dyn std::any::Any>>,
}

impl ContractDevice {
    /// Loads fixture `name` as it stands.
    pub fn load(&self, name: &str) -> Result<Box<dyn StatefulModel>> {
        (self.loader)(name, &LoadOptions::default())
    }

    /// Loads fixture `name` with `opts`.
    pub fn load_with(&self, name: &str, opts: &LoadOptions) -> Result<Box<dyn StatefulModel>> {
        (self.loader)(name, opts)
    }

    /// Loads fixture `name` with `aliases` replacing its own alias map.
    pub fn load_aliased(
        &self,
        name: &str,
        aliases: Option<AliasMap>,
    ) -> Result<Box<dyn StatefulModel>> {
        (self.loader)(name, &LoadOptions::with_aliases(aliases))
    }
}

/// How a backend's devices are made.
pub trait Harness {
    /// The backend as messages name it.
    fn name(&self) -> String;
    /// A fresh device with the backend's default capacity.
    fn device(&self) -> ContractDevice;
    /// A fresh device of `bytes` of HBM; `None` where the capacity is fixed (hardware).
    fn device_with_capacity(&self, bytes: u64) -> Option<ContractDevice>;
    /// True on real hardware, which loads only fixtures whose NEFF was compiled.
    fn is_hardware(&self) -> bool {
        false
    }
}

/// Says on stderr that `test` does not apply to this backend, and why.
fn not_applicable(h: &dyn Harness, test: &str, why: &str) {
    eprintln!("contract: {test} does not apply to {}: {why}", h.name());
}

/// The fault hook of `d`, or `None` after saying the test does not apply.
fn fault_hook<'a>(h: &dyn Harness, d: &'a ContractDevice, test: &str) -> Option<&'a dyn Fn(u64)> {
    let hook = d.arm_fail_execute.as_deref();
    if hook.is_none() {
        not_applicable(h, test, "faults cannot be injected");
    }
    hook
}

/// An f32 host tensor (also used by the simulator-specific tests).
pub fn f32s(dims: &[usize], v: &[f32]) -> HostTensor {
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

fn mlp_inputs() -> Vec<HostTensor> {
    vec![
        f32s(&[4], &[1.0, 2.0, 0.5, 1.0]),
        f32s(&[4, 3], &[0.5; 12]),
        f32s(&[3], &[0.0; 3]),
    ]
}

fn zero_inputs(m: &dyn StatefulModel) -> Vec<HostTensor> {
    let sig = m.signature();
    sig.input_params()
        .iter()
        .map(|&p| HostTensor::zeros(&sig.params[p]))
        .collect()
}

/// `y = cache * relu(fc(x))`, output 1 = cache + 1 aliased to the cache: step 1 gives
/// y = 0 and cache = 1, step 2 y = relu(fc(x)) and cache = 2.
pub fn walkthrough_two_steps(h: &dyn Harness) {
    let d = h.device();
    let m = d.load("mlp_cache").unwrap();
    m.create_state_set("s", StateInit::Zeros).unwrap();
    let y1 = m.execute("s", &mlp_inputs()).unwrap();
    assert_eq!(as_f32(&y1[0]), vec![0.0; 3]);
    assert_eq!(read_f32(&*m, "s", "cache.1"), vec![1.0; 3]);
    let y2 = m.execute("s", &mlp_inputs()).unwrap();
    assert_eq!(as_f32(&y2[0]), vec![2.25; 3]);
    assert_eq!(read_f32(&*m, "s", "cache.1"), vec![2.0; 3]);
}

/// Only user inputs go host→device and only returned outputs come back; no state byte
/// crosses during execute.
pub fn state_never_crosses_during_execute(h: &dyn Harness) {
    let d = h.device();
    let m = d.load("kv_decoder").unwrap();
    m.create_state_set("s", StateInit::Zeros).unwrap();
    let sig = m.signature().clone();
    let inputs = zero_inputs(&*m);
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
        assert_eq!((d.d2d.bytes, d.executes), (0, 1));
        assert_eq!(d.h2d.transfers, inputs.len() as u64);
    }
    let mut pos = [0u8; 4];
    m.read_state("s", "pos.1", 0, &mut pos).unwrap();
    assert_eq!(i32::from_le_bytes(pos), 3);
}

/// An alias override is validated with both sides named; a valid one changes what is state.
pub fn alias_override_is_validated(h: &dyn Harness) {
    let d = h.device();
    let e = d
        .load_aliased("mlp_cache", Some(AliasMap::from_pairs([(1, 1)]).unwrap()))
        .err()
        .expect("a bad override is rejected");
    assert_eq!(e.kind(), ErrorKind::Alias);
    assert!(
        e.to_string().contains("w.1") && e.to_string().contains("f32[4,3]"),
        "{e}"
    );
    let m = d
        .load_aliased("mlp_cache", Some(AliasMap::from_pairs([(3, 0)]).unwrap()))
        .unwrap();
    assert_eq!(m.signature().returned_outputs(), vec![1]);
}

/// Two states that swap every step; the other output reads both old values.
pub fn swap_keeps_functional_semantics(h: &dyn Harness) {
    let d = h.device();
    let m = d.load("swap").unwrap();
    let (a, b) = (f32s(&[3, 2], &[1.0; 6]), f32s(&[3, 2], &[2.0; 6]));
    m.create_state_set(
        "s",
        StateInit::Values(vec![("a.1".into(), a), ("b.1".into(), b)]),
    )
    .unwrap();
    let out = m.execute("s", &[]).unwrap();
    assert_eq!(as_f32(&out[0]), vec![4.0; 6]);
    assert_eq!(read_f32(&*m, "s", "a.1"), vec![2.0; 6]);
    assert_eq!(read_f32(&*m, "s", "b.1"), vec![1.0; 6]);
    m.execute("s", &[]).unwrap();
    assert_eq!(read_f32(&*m, "s", "a.1"), vec![1.0; 6]);
    m.reset("s").unwrap();
    assert_eq!(
        read_f32(&*m, "s", "b.1"),
        vec![2.0; 6],
        "reset restores the initial values"
    );
}

/// A failed execute poisons its state set (every later use says which call failed) until
/// reset; other sets are untouched.
pub fn failed_execute_poisons_only_its_set(h: &dyn Harness) {
    let d = h.device();
    let Some(arm_fail_execute) = fault_hook(h, &d, "failed_execute_poisons_only_its_set") else {
        return;
    };
    let m = d.load("mlp_cache").unwrap();
    m.create_state_set("a", StateInit::Zeros).unwrap();
    m.create_state_set("b", StateInit::Zeros).unwrap();
    m.execute("b", &mlp_inputs()).unwrap();
    arm_fail_execute(1);
    assert_eq!(
        m.execute("a", &mlp_inputs()).unwrap_err().kind(),
        ErrorKind::Runtime
    );
    arm_fail_execute(0);
    for r in [
        m.execute("a", &mlp_inputs()).map(|_| ()),
        m.read_state("a", "cache.1", 0, &mut [0u8; 4]),
        m.write_state("a", "cache.1", 0, &[0u8; 4]),
    ] {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Poisoned, "{e}");
        assert!(e.to_string().contains("execute"), "{e}");
    }
    assert_eq!(
        read_f32(&*m, "b", "cache.1"),
        vec![1.0; 3],
        "other sets are untouched"
    );
    m.execute("b", &mlp_inputs()).unwrap();
    m.reset("a").unwrap();
    assert_eq!(read_f32(&*m, "a", "cache.1"), vec![0.0; 3]);
    m.execute("a", &mlp_inputs()).unwrap();
    assert_eq!(read_f32(&*m, "a", "cache.1"), vec![1.0; 3]);
}

/// Restoring a snapshot (a device-side copy) clears poisoning.
pub fn restore_clears_poisoning(h: &dyn Harness) {
    let d = h.device();
    let Some(arm_fail_execute) = fault_hook(h, &d, "restore_clears_poisoning") else {
        return;
    };
    let m = d.load("mlp_cache").unwrap();
    m.create_state_set("a", StateInit::Zeros).unwrap();
    m.execute("a", &mlp_inputs()).unwrap();
    m.copy_state_set("a", "snap").unwrap();
    arm_fail_execute(1);
    assert!(m.execute("a", &mlp_inputs()).is_err());
    arm_fail_execute(0);
    let before = m.ledger();
    m.copy_state_set("snap", "a").unwrap();
    let dl = m.ledger() - before;
    assert_eq!(
        (dl.d2d.bytes, dl.h2d.bytes, dl.d2h.bytes),
        (12, 0, 0),
        "a device-side copy"
    );
    assert_eq!(read_f32(&*m, "a", "cache.1"), vec![1.0; 3]);
}

/// Exceeding device memory is OutOfDeviceMemory with the numbers, and leaves memory and
/// the ledger as they were.
pub fn out_of_device_memory_changes_nothing(h: &dyn Harness) {
    let Some(d) = h.device_with_capacity(4096) else {
        not_applicable(
            h,
            "out_of_device_memory_changes_nothing",
            "the device's capacity is fixed",
        );
        return;
    };
    let small = d.load("ring_buffer").unwrap();
    small.create_state_set("s", StateInit::Zeros).unwrap();
    let big = d.load("kv_decoder").unwrap();
    let wide = HostTensor::new(DType::F32, vec![8, 16], vec![0; 512]).unwrap();
    let (mem, ledger) = (big.memory(), big.ledger());
    let mut sets = 0;
    let e = loop {
        match big.create_state_set(
            &format!("t{sets}"),
            StateInit::Values(vec![("k_cache.1".into(), wide.clone())]),
        ) {
            Ok(()) => sets += 1,
            Err(e) => break e,
        }
        assert!(sets < 100, "capacity is never reached");
    };
    assert_eq!(e.kind(), ErrorKind::OutOfDeviceMemory, "{e}");
    match &e {
        Error::OutOfDeviceMemory {
            requested,
            free,
            capacity,
            ..
        } => {
            assert!(requested > free, "{e}");
            assert!(*capacity >= 4096 || *capacity == 0, "{e}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        big.memory().used,
        mem.used + sets * (1028 + 512),
        "the failed call allocated nothing"
    );
    assert_eq!(
        (big.ledger() - ledger).h2d.bytes,
        sets * 512,
        "the failed call moved nothing"
    );
}

/// HBM a fixture's load itself takes on a fresh device (constants, the loaded program).
fn load_cost(h: &dyn Harness, name: &str) -> u64 {
    let d = h.device();
    let base = d.load("ring_buffer").unwrap();
    let before = base.memory().used;
    let m = d.load(name).unwrap();
    m.memory().used - before
}

/// Weights are resident: uploaded once at load (counted once, host → device), charged to
/// HBM, never moved per step, shared by a second model that names them and freed with the
/// last model using them; loads that give a resident weight again, or omit one nobody
/// uploaded, or give it the wrong type, are clear errors that change nothing.
pub fn weights_are_resident_uploaded_once_and_shared(h: &dyn Harness) {
    let name = "mlp_cache_weights";
    let opts = fixture_load_options(name);
    let weight_bytes = 4 * (12 + 3);
    let cost = load_cost(h, name);
    let d = h.device();
    let base = d.load("ring_buffer").unwrap();
    let used = || base.memory().used;
    let start = used();
    let a = d.load_with(name, &opts).unwrap();
    assert_eq!(a.signature().weight_params(), vec![1, 2]);
    assert_eq!(a.signature().input_params(), vec![0]);
    let up = a.ledger();
    assert_eq!(
        (up.h2d.bytes, up.h2d.transfers),
        (weight_bytes, 2),
        "each weight crosses once, at load"
    );
    assert_eq!(
        used() - start,
        cost + weight_bytes,
        "weights are charged to HBM"
    );
    // a second graph over the same weights: nothing uploaded, nothing charged again
    let b = d.load_with(name, &opts.sharing_weights()).unwrap();
    assert_eq!(
        b.ledger().h2d.bytes,
        0,
        "shared weights are not uploaded again"
    );
    assert_eq!(
        used() - start,
        2 * cost + weight_bytes,
        "shared weights are charged once"
    );
    // giving a resident weight again: refused, nothing moves
    let e = d.load_with(name, &opts).map(|_| ()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("already resident"), "{e}");
    assert_eq!(
        used() - start,
        2 * cost + weight_bytes,
        "a refused load charges nothing"
    );
    // the weights stay while a model uses them: b runs on after a is gone
    drop(a);
    assert_eq!(
        used() - start,
        cost + weight_bytes,
        "the weights outlive the uploader"
    );
    // b computes what the same graph computes with the weights given every step
    let plain = d.load(name).unwrap();
    plain.create_state_set("p", StateInit::Zeros).unwrap();
    b.create_state_set("t", StateInit::Zeros).unwrap();
    let x = host_tensor(&fixture_arg(name, 0, 0));
    let all: Vec<HostTensor> = (0..3)
        .map(|p| host_tensor(&fixture_arg(name, p, 0)))
        .collect();
    for step in 0..3 {
        let before = b.ledger();
        let y = b.execute("t", std::slice::from_ref(&x)).unwrap();
        let delta = b.ledger() - before;
        assert_eq!(
            delta.h2d.bytes, 16,
            "step {step}: only x crosses host->device"
        );
        assert_eq!(y, plain.execute("p", &all).unwrap(), "step {step}");
    }
    let before = used();
    drop(b);
    assert!(
        before - used() >= cost + weight_bytes,
        "the last model's drop frees the weights: {} -> {}",
        before,
        used()
    );
}

/// Loads that omit a weight nobody uploaded, give a weight the wrong type, or make a state
/// a weight are clear errors that charge nothing.
pub fn bad_weights_are_clear_errors(h: &dyn Harness) {
    let name = "mlp_cache_weights";
    let opts = fixture_load_options(name);
    let d = h.device();
    let base = d.load("ring_buffer").unwrap();
    let before = base.memory().used;
    let e = d
        .load_with(name, &opts.sharing_weights())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("has no value"), "{e}");
    let mut wrong = opts.clone();
    wrong.weights.insert(2, Some(f32s(&[4], &[0.0; 4])));
    let e = d.load_with(name, &wrong).map(|_| ()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("expects f32[3]"), "{e}");
    let mut state_weight = opts.clone();
    state_weight.weights.insert(3, Some(f32s(&[3], &[0.0; 3])));
    let e = d.load_with(name, &state_weight).map(|_| ()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("is a state"), "{e}");
    assert_eq!(base.memory().used, before, "refused loads charge nothing");
    assert_eq!(base.ledger().h2d.bytes, 0);
}

/// Weights and state share the device's capacity: weights that do not fit fail the load,
/// and state that does not fit beside the weights fails the create — both
/// OutOfDeviceMemory, both leaving memory and the ledger as they were.
pub fn weights_and_state_share_capacity(h: &dyn Harness) {
    let name = "kv_decoder_weights";
    let opts = fixture_load_options(name);
    let weight_bytes = 4 * 16 * 16 * 4;
    let state_bytes = 2 * 8 * 16 * 4 + 4;
    let cost = load_cost(h, name) + load_cost(h, "ring_buffer");
    // room for the models, not for their weights
    let Some(d) = h.device_with_capacity(cost + weight_bytes - 1) else {
        not_applicable(
            h,
            "weights_and_state_share_capacity",
            "the capacity is fixed",
        );
        return;
    };
    let base = d.load("ring_buffer").unwrap();
    let before = base.memory().used;
    let e = d.load_with(name, &opts).map(|_| ()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfDeviceMemory, "{e}");
    assert_eq!(base.memory().used, before, "the failed load holds nothing");
    drop((base, d));
    // room for the weights, not for the state beside them
    let d = h
        .device_with_capacity(cost + weight_bytes + state_bytes - 1)
        .expect("capacity was chosen above");
    let _base = d.load("ring_buffer").unwrap();
    let m = d.load_with(name, &opts).unwrap();
    let (mem, ledger) = (m.memory(), m.ledger());
    let e = m.create_state_set("s", StateInit::Zeros).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfDeviceMemory, "{e}");
    assert_eq!(m.memory().used, mem.used, "the failed create holds nothing");
    assert_eq!(m.ledger(), ledger, "the failed create moved nothing");
}

/// State sets are isolated; models on one device share a set by name when their states
/// agree, and are refused when they do not.
pub fn state_sets_are_isolated_and_shareable(h: &dyn Harness) {
    let d = h.device();
    let a = d.load("mlp_cache").unwrap();
    let b = d.load("mlp_cache").unwrap();
    a.create_state_set("shared", StateInit::Zeros).unwrap();
    b.create_state_set("shared", StateInit::Zeros).unwrap();
    a.execute("shared", &mlp_inputs()).unwrap();
    b.execute("shared", &mlp_inputs()).unwrap();
    assert_eq!(read_f32(&*a, "shared", "cache.1"), vec![2.0; 3]);
    a.create_state_set("other", StateInit::Zeros).unwrap();
    assert_eq!(read_f32(&*a, "other", "cache.1"), vec![0.0; 3]);
    let kv = d.load("kv_decoder").unwrap();
    assert_eq!(
        kv.create_state_set("shared", StateInit::Zeros)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    a.drop_state_set("other").unwrap();
    assert_eq!(
        a.execute("other", &mlp_inputs()).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// Bad inputs and names are clear errors that poison nothing.
pub fn bad_inputs_are_clear_errors(h: &dyn Harness) {
    let d = h.device();
    let m = d.load("mlp_cache").unwrap();
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
        m.execute("s", &mlp_inputs()[..2]).unwrap_err().kind(),
        ErrorKind::InvalidInput
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
    assert_eq!(
        m.write_state("s", "cache.1", u64::MAX, &[0; 4])
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    m.execute("s", &mlp_inputs()).unwrap();
}

/// A state set or state that does not exist is NotFound, and the error names what does.
pub fn missing_names_are_not_found_with_what_exists(h: &dyn Harness) {
    let d = h.device();
    let m = d.load("mlp_cache").unwrap();
    let e = m.execute("nope", &mlp_inputs()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("no state sets exist"), "{e}");
    m.create_state_set("s1", StateInit::Zeros).unwrap();
    m.create_state_set("s0", StateInit::Zeros).unwrap();
    let e = m.reset("nope").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("s0, s1"), "{e}");
    let e = m.read_state("s0", "nope", 0, &mut [0u8; 4]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("cache.1"), "{e}");
}

/// Whole-tensor and byte-range access outside a state's bytes is refused, with the range
/// and the size.
pub fn byte_ranges_outside_a_state_are_refused(h: &dyn Harness) {
    let d = h.device();
    let m = d.load("mlp_cache").unwrap();
    m.create_state_set("s", StateInit::Zeros).unwrap();
    for (offset, len) in [(9u64, 4usize), (12, 1), (u64::MAX, 1)] {
        let mut buf = vec![0u8; len];
        for e in [
            m.read_state("s", "cache.1", offset, &mut buf).unwrap_err(),
            m.write_state("s", "cache.1", offset, &buf).unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert!(e.to_string().contains("12 bytes"), "{e}");
        }
    }
    assert_eq!(read_f32(&*m, "s", "cache.1"), vec![0.0; 3]);
}

/// Whole-tensor and byte-range access.
pub fn byte_range_access(h: &dyn Harness) {
    let d = h.device();
    let m = d.load("mlp_cache").unwrap();
    m.create_state_set("s", StateInit::Zeros).unwrap();
    m.write_state("s", "cache.1", 4, &7f32.to_le_bytes())
        .unwrap();
    assert_eq!(read_f32(&*m, "s", "cache.1"), vec![0.0, 7.0, 0.0]);
    let mut two = [0u8; 2];
    m.read_state("s", "cache.1", 6, &mut two).unwrap();
    assert_eq!(two, [0xe0, 0x40]);
}

/// Two threads on two sets both finish; two threads on one set never race (each call
/// succeeds or is Busy).
pub fn threads_two_sets_work_one_set_is_busy(h: &dyn Harness) {
    let d = h.device();
    let m: Arc<dyn StatefulModel> = Arc::from(d.load("mlp_cache").unwrap());
    m.create_state_set("a", StateInit::Zeros).unwrap();
    m.create_state_set("b", StateInit::Zeros).unwrap();
    let run = |set: &'static str, n: usize, busy_ok: bool| {
        let m = m.clone();
        std::thread::spawn(move || {
            let mut ok = 0;
            for _ in 0..n {
                match m.execute(set, &mlp_inputs()) {
                    Ok(_) => ok += 1,
                    Err(e) if busy_ok => assert_eq!(e.kind(), ErrorKind::Busy),
                    Err(e) => panic!("{e}"),
                }
            }
            ok
        })
    };
    let (ta, tb) = (run("a", 30, false), run("b", 30, false));
    assert_eq!((ta.join().unwrap(), tb.join().unwrap()), (30, 30));
    assert_eq!(read_f32(&*m, "a", "cache.1"), vec![30.0; 3]);
    let (t1, t2) = (run("a", 100, true), run("a", 100, true));
    let ok = t1.join().unwrap() + t2.join().unwrap();
    assert_eq!(read_f32(&*m, "a", "cache.1"), vec![30.0 + ok as f32; 3]);
}

/// A state set saved to a safetensors file and loaded into another set is identical; a
/// truncated file resets the set rather than leaving it half-written.
pub fn snapshot_file_round_trip(h: &dyn Harness) {
    let d = h.device();
    let m = d.load("kv_decoder").unwrap();
    m.create_state_set("s", StateInit::Zeros).unwrap();
    m.write_state("s", "k_cache.1", 0, &[1, 2, 3, 4, 5])
        .unwrap();
    m.write_state("s", "pos.1", 0, &9i32.to_le_bytes()).unwrap();
    let mut file = Vec::new();
    snapshot::save_state_set(&*m, "s", &mut file).unwrap();
    snapshot::load_state_set(&*m, "t", &mut file.as_slice(), "mem").unwrap();
    for state in ["k_cache.1", "v_cache.1", "pos.1"] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        m.read_state_to("s", state, &mut a).unwrap();
        m.read_state_to("t", state, &mut b).unwrap();
        assert_eq!(a, b, "{state}");
    }
    m.write_state("t", "pos.1", 0, &5i32.to_le_bytes()).unwrap();
    let cut = &file[..file.len() - 3];
    assert_eq!(
        snapshot::load_state_set(&*m, "t", &mut &cut[..], "cut")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let mut pos = [9u8; 4];
    m.read_state("t", "pos.1", 0, &mut pos).unwrap();
    assert_eq!(pos, [0; 4]);
}

/// int4 state (packed two to a byte on the device) is saved one value per byte as I8/U8, as
/// safetensors has no int4 type, reads back the same, and a value outside s4's range in
/// the file is refused (and the set reset, never left half-written).
pub fn int4_state_snapshot_round_trip(h: &dyn Harness) {
    let d = h.device();
    let m = d
        .load_with("int4_linear", &fixture_load_options("int4_linear"))
        .unwrap();
    m.create_state_set("s", StateInit::Zeros).unwrap();
    m.write_state("s", "step.1", 0, &[0x0d]).unwrap(); // s4 -3
    m.write_state("s", "slot.1", 0, &[0x0e]).unwrap(); // u4 14
    let mut file = Vec::new();
    snapshot::save_state_set(&*m, "s", &mut file).unwrap();
    let text = String::from_utf8_lossy(&file);
    assert!(
        text.contains(r#""step.1":{"data_offsets":"#) && text.contains(r#""dtype":"I8""#),
        "{text}"
    );
    let data = &file[file.len() - 2..];
    // in name order: slot.1 (u4 14), then step.1 (s4 -3, sign-extended)
    assert_eq!(data, [0x0e, 0xfd], "one value per byte");
    snapshot::load_state_set(&*m, "t", &mut file.as_slice(), "mem").unwrap();
    for state in ["acc.1", "step.1", "slot.1"] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        m.read_state_to("s", state, &mut a).unwrap();
        m.read_state_to("t", state, &mut b).unwrap();
        assert_eq!(a, b, "{state}");
    }
    let n = file.len();
    file[n - 1] = 9; // no s4 value
    let e = snapshot::load_state_set(&*m, "u", &mut file.as_slice(), "mem").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("outside s4's range"), "{e}");
}

/// Every committed fixture's outputs, step by step with state carried on the device, match
/// JAX's within the fixture's tolerance.
pub fn fixtures_match_jax_through_the_backend(h: &dyn Harness) {
    let d = h.device();
    let names = fixture_names();
    assert!(
        names.len() >= 39,
        "the committed fixtures: found {}",
        names.len()
    );
    for name in &names {
        let name = name.as_str();
        let dir = fixture_path(name);
        // a fixture whose alias map is kept beside it loads with that map as the override;
        // its weights are uploaded once, at load
        let m = match d.load_with(name, &fixture_load_options(name)) {
            Ok(m) => m,
            // real hardware loads only fixtures whose NEFF compiled; everything else loads all
            Err(e) if h.is_hardware() && e.kind() == ErrorKind::BackendUnavailable => {
                not_applicable(h, &format!("fixture {name}"), &e.to_string());
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        let sig = m.signature().clone();
        let arg = |p: usize| fixture_arg(name, p, 0);
        let host = host_tensor;
        let init: Vec<(String, HostTensor)> = sig
            .state_params()
            .iter()
            .map(|&p| (sig.params[p].name.clone(), host(&arg(p))))
            .collect();
        m.create_state_set(name, StateInit::Values(init)).unwrap();
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
        let steps = meta["steps"].as_u64().unwrap() as usize;
        // the fixture's own tolerance: exact where it says 0 (integers, data movement)
        let (rtol, atol) = (
            meta["rtol"].as_f64().unwrap(),
            meta["atol"].as_f64().unwrap(),
        );
        let mut inputs: Vec<HostTensor> =
            sig.input_params().iter().map(|&p| host(&arg(p))).collect();
        let fed = fixture_feeds(name);
        for s in 0..steps {
            // inputs fed a new value every step take slice s; the others stay
            for (slot, &p) in sig.input_params().iter().enumerate() {
                if fed.contains(&p) {
                    inputs[slot] = host(&fixture_arg(name, p, s));
                }
            }
            let before = m.ledger();
            let outs = m.execute(name, &inputs).unwrap();
            let step_h2d: u64 = inputs.iter().map(|h| h.data.len() as u64).sum();
            assert_eq!(
                (m.ledger() - before).h2d.bytes,
                step_h2d,
                "{name} step {s}: only the inputs cross host->device (weights are resident)"
            );
            for (i, &o) in sig.returned_outputs().iter().enumerate() {
                let want = crate::fixtures::fixture_npy(name, &format!("out{s}_{o}.npy"));
                let got = statetensor_hlo::Tensor::from_le_bytes(
                    outs[i].dtype,
                    outs[i].shape.dims(),
                    &outs[i].data,
                )
                .unwrap();
                let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
                let close = g.iter().zip(&w).all(|(a, b)| {
                    a == b || (a - b).abs() <= atol + rtol * b.abs() || (a.is_nan() && b.is_nan())
                });
                assert!(
                    close && g.len() == w.len(),
                    "{name} step {s} output {o}: {g:?} vs {w:?}"
                );
            }
        }
    }
}

/// Instantiates every contract test for a harness expression.
#[macro_export]
macro_rules! contract_tests {
    ($harness:expr) => {
        $crate::contract_tests!($harness; walkthrough_two_steps, state_never_crosses_during_execute, alias_override_is_validated,
            swap_keeps_functional_semantics, failed_execute_poisons_only_its_set, restore_clears_poisoning,
            out_of_device_memory_changes_nothing, state_sets_are_isolated_and_shareable, bad_inputs_are_clear_errors,
            byte_range_access, byte_ranges_outside_a_state_are_refused,
            missing_names_are_not_found_with_what_exists, threads_two_sets_work_one_set_is_busy, snapshot_file_round_trip, int4_state_snapshot_round_trip,
            weights_are_resident_uploaded_once_and_shared, bad_weights_are_clear_errors,
            weights_and_state_share_capacity,
            fixtures_match_jax_through_the_backend);
    };
    ($harness:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                $crate::contract::$name(&$harness)
            }
        )*
    };
}
