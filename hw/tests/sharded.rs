//! Several NeuronCores through the driver: the tensor-parallel decoders on the emulator's
//! cores (each core a model loaded with `nrt_load_collectives`) against JAX, a failing core
//! stopping the step and poisoning the set on every core, nothing run when one core
//! cannot, a core never executing alone, two models of one program side by side.

use crate::{configure, emulator, DEVICE_LOCK};
use statetensor_conformance::{
    fixture_hlo, host_tensor, spmd_cores, spmd_load_options, spmd_npy, DIVERGING_COLLECTIVES,
};
use statetensor_core::{ErrorKind, HostTensor, ShardedModel, StateInit};
use statetensor_hlo::{Bundle, Tensor};
use statetensor_hw::NrtShardedModel;

fn load(name: &str) -> NrtShardedModel {
    let bundle = Bundle::from_text(&fixture_hlo(name), name).unwrap();
    NrtShardedModel::load(
        Some(emulator().to_str().unwrap()),
        &bundle,
        &spmd_load_options(name),
        spmd_cores(name),
    )
    .unwrap()
}

/// Every core's token (its slice of `arg0.npy`).
fn tokens(name: &str) -> Vec<Vec<HostTensor>> {
    (0..spmd_cores(name))
        .map(|k| vec![host_tensor(&spmd_npy(name, "arg0.npy", k))])
        .collect()
}

/// The name of the model's first state (the KV cache's keys).
fn first_state(m: &NrtShardedModel) -> String {
    let sig = m.core(0).signature();
    sig.state_specs().next().expect("a state").name.clone()
}

fn assert_close(got: &HostTensor, want: &Tensor, what: &str) {
    let got = Tensor::from_le_bytes(got.dtype, got.shape.dims(), &got.data)
        .unwrap()
        .to_f64_vec();
    for (g, w) in got.iter().zip(&want.to_f64_vec()) {
        assert!((g - w).abs() <= 1e-5 + 2e-5 * w.abs(), "{what}: {g} vs {w}");
    }
}

/// Steps `m` once and checks every core's y against JAX's step `s`.
fn step_matches_jax(m: &NrtShardedModel, name: &str, set: &str, s: usize) {
    let outs = m.execute(set, &tokens(name)).unwrap();
    for (k, o) in outs.iter().enumerate() {
        let want = spmd_npy(name, &format!("out{s}_0.npy"), k);
        assert_close(&o[0], &want, &format!("{name} step {s} core {k}"));
    }
}

#[test]
fn tensor_parallel_decoders_match_jax_on_the_emulators_cores() {
    let _g = DEVICE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    for name in ["spmd/tp4_decoder", "spmd/tp8_decoder"] {
        let m = load(name);
        m.create_state_set("seq", &[StateInit::Zeros]).unwrap();
        let before = m.ledgers();
        for s in 0..4 {
            step_matches_jax(&m, name, "seq", s);
        }
        for (k, (after, before)) in m.ledgers().iter().zip(&before).enumerate() {
            let l = *after - *before;
            // per step only the token in and y out; the cache stays on the core
            assert_eq!(
                (l.h2d.bytes, l.d2h.bytes),
                (4 * 256, 4 * 256),
                "{name} core {k}"
            );
        }
        // every core's shard of the cache is JAX's after four steps
        let cache = m.core(0).signature().params[7].clone();
        for k in 0..m.cores() {
            let mut buf = vec![0u8; cache.size_bytes()];
            m.core(k)
                .read_state("seq", &cache.name, 0, &mut buf)
                .unwrap();
            let got = HostTensor::new(cache.dtype, cache.shape.dims().to_vec(), buf).unwrap();
            assert_close(
                &got,
                &spmd_npy(name, "out3_1.npy", k),
                &format!("{name} cache core {k}"),
            );
        }
    }
}

#[test]
fn a_failing_core_stops_the_step_and_poisons_the_set_on_every_core() {
    let _g = DEVICE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let name = "spmd/tp4_decoder";
    let m = load(name);
    m.create_state_set("seq", &[StateInit::Zeros]).unwrap();
    // the emulator's 3rd nrt_execute fails after a partial update: one core of step 1
    configure("fail_execute:3", 0);
    let e = m.execute("seq", &tokens(name)).unwrap_err();
    configure("", 0);
    // the failing core's own error (the injected NRT_EXEC_COMPLETED_WITH_ERR), not the
    // NRT_EXEC_HW_ERR_COLLECTIVES of a core it stopped, and the core named
    assert!(
        matches!(
            e,
            statetensor_core::Error::Runtime {
                status: Some(1004),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("core "),
        "the failing core is named: {e}"
    );
    // the cores that finished the step are out of step with the one that did not: the set
    // is poisoned on every core until it is reset
    let state = first_state(&m);
    for k in 0..m.cores() {
        let mut b = [0u8; 4];
        let e = m.core(k).read_state("seq", &state, 0, &mut b);
        assert_eq!(
            e.map_err(|e| e.kind()),
            Err(ErrorKind::Poisoned),
            "core {k}"
        );
    }
    let e = m.execute("seq", &tokens(name)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Poisoned);
    m.reset("seq").unwrap();
    step_matches_jax(&m, name, "seq", 0);
}

#[test]
fn a_set_missing_on_one_core_runs_no_core() {
    let _g = DEVICE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let name = "spmd/tp4_decoder";
    let m = load(name);
    m.core(0)
        .create_state_set("half", StateInit::Zeros)
        .unwrap();
    let before = m.core(0).ledger();
    let e = m.execute("half", &tokens(name)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("core 1"), "{e}");
    let l = m.core(0).ledger() - before;
    assert_eq!((l.h2d.bytes, l.executes), (0, 0), "core 0 ran nothing");
    // and core 0's set is usable: nothing was poisoned
    let mut b = [0u8; 4];
    m.core(0)
        .read_state("half", &first_state(&m), 0, &mut b)
        .unwrap();
    // reset, copy and drop of the set act on every core or on none
    for e in [
        m.reset("half").unwrap_err(),
        m.copy_state_set("half", "copy").unwrap_err(),
        m.drop_state_set("half").unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("core 1"), "{e}");
    }
    assert!(m.core(0).has_state_set("half"));
    assert!(!m.core(0).has_state_set("copy"));
}

#[test]
fn a_core_never_executes_alone() {
    let _g = DEVICE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let name = "spmd/tp4_decoder";
    let m = load(name);
    m.create_state_set("seq", &[StateInit::Zeros]).unwrap();
    let e = m.core(2).execute("seq", &tokens(name)[2]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("core 2 of a model run by 4"), "{e}");
}

#[test]
fn two_models_of_one_program_run_side_by_side() {
    let _g = DEVICE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let name = "spmd/tp4_decoder";
    let (a, b) = (load(name), load(name));
    a.create_state_set("seq", &[StateInit::Zeros]).unwrap();
    b.create_state_set("seq", &[StateInit::Zeros]).unwrap();
    // each meets only its own cores: b a step behind a, both JAX's
    step_matches_jax(&a, name, "seq", 0);
    step_matches_jax(&a, name, "seq", 1);
    step_matches_jax(&b, name, "seq", 0);
    step_matches_jax(&a, name, "seq", 2);
    step_matches_jax(&b, name, "seq", 1);
}

/// An all-reduce over every core, whatever their number.
const ALL_CORES_SUM: &str =
    "HloModule all_cores_sum, entry_computation_layout={(f32[4]{0})->f32[4]{0}}

add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}

ENTRY main {
  x = f32[4]{0} parameter(0)
  ROOT r = f32[4]{0} all-reduce(x), replica_groups={}, to_apply=add
}
";

#[test]
fn any_core_count_the_runtime_sees_runs_and_more_are_refused() {
    let _g = DEVICE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let bundle = Bundle::from_text(ALL_CORES_SUM, "all_cores_sum").unwrap();
    let lib = emulator();
    let lib = lib.to_str().unwrap();
    let m = NrtShardedModel::load(Some(lib), &bundle, &[Default::default()], 24).unwrap();
    m.create_state_set("s", &[StateInit::Zeros]).unwrap();
    let inputs: Vec<Vec<HostTensor>> = (0..24)
        .map(|k| {
            vec![HostTensor::new(
                statetensor_core::DType::F32,
                vec![4],
                [k as f32; 4].iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
            .unwrap()]
        })
        .collect();
    let outs = m.execute("s", &inputs).unwrap();
    let sum: f32 = (0..24).map(|k| k as f32).sum();
    for o in &outs {
        assert_eq!(
            o[0].data,
            [sum; 4]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
        );
    }
    drop(m);
    // the emulator has 24 (an inf2.48xlarge)
    let e = NrtShardedModel::load(Some(lib), &bundle, &[Default::default()], 28).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("24 NeuronCores"), "{e}");
    // too few for the decoder's collectives: refused before anything loads
    let name = "spmd/tp4_decoder";
    let bundle = Bundle::from_text(&fixture_hlo(name), name).unwrap();
    let e =
        NrtShardedModel::load(Some(lib), &bundle, &spmd_load_options(name)[..1], 2).unwrap_err();
    assert!(e.to_string().contains("multiple of 4"), "{e}");
}

/// Cores whose control flow goes apart stop the step on the emulator too: the core that
/// met the unlike collective returns its own status and the other
/// `NRT_EXEC_HW_ERR_COLLECTIVES`, so the driver reports the core that found it.
#[test]
fn cores_that_reach_different_collectives_report_the_core_that_found_it() {
    let _g = DEVICE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let bundle = Bundle::from_text(DIVERGING_COLLECTIVES, "diverge").unwrap();
    let lib = emulator();
    let m = NrtShardedModel::load(
        Some(lib.to_str().unwrap()),
        &bundle,
        &[Default::default()],
        2,
    )
    .unwrap();
    m.create_state_set("s", &[StateInit::Zeros]).unwrap();
    let x = HostTensor::new(statetensor_core::DType::F32, vec![4], vec![0; 16]).unwrap();
    for _ in 0..8 {
        let e = m
            .execute("s", &[vec![x.clone()], vec![x.clone()]])
            .unwrap_err();
        let shown = e.to_string();
        assert!(!shown.contains("1200"), "a stopped core's status: {shown}");
        m.reset("s").unwrap();
    }
}
