//! A tensor-parallel decoder on several simulated cores: JAX's outputs on every core and
//! step, weights resident per core, per-core ledgers with the collectives beside the
//! transfers, per-core capacity, and a core never executing alone.

use statetensor_conformance::{
    fixture_path, host_tensor, spmd_cores, spmd_load_options, spmd_npy, DIVERGING_COLLECTIVES,
};
use statetensor_core::{ErrorKind, HostTensor, ShardedModel, StateInit};
use statetensor_hlo::{Program, Tensor};
use statetensor_sim::{DeviceProfile, SimShardedModel};
use std::sync::Arc;

fn decoder(name: &str, profile: &DeviceProfile) -> (SimShardedModel, usize) {
    let text = std::fs::read_to_string(fixture_path(name).join("model.hlo")).unwrap();
    let program = Arc::new(Program::parse(&text, "model.hlo").unwrap());
    let cores = program.compiled_cores().0;
    assert_eq!(cores, spmd_cores(name));
    (
        SimShardedModel::load(profile, program, &spmd_load_options(name), cores).unwrap(),
        cores,
    )
}

#[test]
fn tensor_parallel_decoders_match_jax_with_their_cache_sharded_on_the_cores() {
    for name in ["spmd/tp4_decoder", "spmd/tp8_decoder"] {
        let (model, cores) = decoder(name, &DeviceProfile::trn1());
        model.create_state_set("seq", &[StateInit::Zeros]).unwrap();
        let x: Vec<Vec<HostTensor>> = (0..cores)
            .map(|k| vec![host_tensor(&spmd_npy(name, "arg0.npy", k))])
            .collect();
        let before = model.ledgers();
        for s in 0..4 {
            let outs = model.execute("seq", &x).unwrap();
            for (k, o) in outs.iter().enumerate() {
                let want = spmd_npy(name, &format!("out{s}_0.npy"), k).to_f64_vec();
                let got = Tensor::from_le_bytes(o[0].dtype, o[0].shape.dims(), &o[0].data)
                    .unwrap()
                    .to_f64_vec();
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 1e-5 + 2e-5 * w.abs(),
                        "{name} step {s} core {k}"
                    );
                }
            }
        }
        for (k, (after, before)) in model.ledgers().iter().zip(&before).enumerate() {
            let l = *after - *before;
            // per step only the token in and y out; the cache never crosses
            assert_eq!(l.h2d.bytes, 4 * 256, "{name} core {k}");
            assert_eq!(l.d2h.bytes, 4 * 256, "{name} core {k}");
            // two all-reduces a step, modelled over NeuronLink
            assert_eq!(l.collective.transfers, 8, "{name} core {k}");
            assert!(l.collective.bytes > 0 && l.collective.seconds > 0.0);
        }
        // every core's shard of the cache is JAX's after four steps
        let sig = model.core(0).signature().clone();
        for k in 0..cores {
            let cache = &sig.params[7];
            let mut buf = vec![0u8; cache.size_bytes()];
            model
                .core(k)
                .read_state("seq", &cache.name, 0, &mut buf)
                .unwrap();
            let got = Tensor::from_le_bytes(cache.dtype, cache.shape.dims(), &buf).unwrap();
            let want = spmd_npy(name, "out3_1.npy", k);
            for (g, w) in got.to_f64_vec().iter().zip(want.to_f64_vec()) {
                assert!(
                    (g - w).abs() <= 1e-5 + 2e-5 * w.abs(),
                    "{name} cache core {k}"
                );
            }
        }
        // per-core memory: the weights' and cache's shards, on each core alone
        let state_bytes = 2 * sig.params[7].size_bytes() as u64 + 4;
        for m in model.memories() {
            assert!(m.used >= state_bytes, "{name}: {m:?}");
        }
    }
}

#[test]
fn a_state_set_too_large_for_a_core_is_refused_naming_it_and_created_nowhere() {
    // room for the weights, not for the cache
    let (loaded, _) = decoder("spmd/tp4_decoder", &DeviceProfile::trn1());
    let mut small = DeviceProfile::trn1();
    small.hbm_bytes = loaded.core(0).memory().used + 1000;
    drop(loaded);
    let (model, cores) = decoder("spmd/tp4_decoder", &small);
    let e = model
        .create_state_set("seq", &[StateInit::Zeros])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfDeviceMemory);
    assert!(e.to_string().starts_with("core "), "{e}");
    for k in 0..cores {
        assert!(!model.core(k).has_state_set("seq"), "core {k}");
    }
}

#[test]
fn a_core_never_executes_alone_and_bad_inputs_stop_every_core_before_it_starts() {
    let (model, cores) = decoder("spmd/tp4_decoder", &DeviceProfile::trn1());
    model.create_state_set("seq", &[StateInit::Zeros]).unwrap();
    let x = host_tensor(&spmd_npy("spmd/tp4_decoder", "arg0.npy", 0));
    let e = model
        .core(1)
        .execute("seq", std::slice::from_ref(&x))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let mut inputs = vec![vec![x]; cores];
    inputs[2] = vec![HostTensor::new(statetensor_core::DType::F32, vec![3], vec![0; 12]).unwrap()];
    let before = model.ledgers();
    let e = model.execute("seq", &inputs).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("core 2"), "{e}");
    assert_eq!(model.ledgers(), before, "nothing ran");
    // the set is still usable
    inputs[2] = inputs[0].clone();
    model.execute("seq", &inputs).unwrap();
}

#[test]
fn a_sharded_state_set_snapshots_to_one_file_and_restores_every_core() {
    use statetensor_core::snapshot::{load_sharded_state_set, save_sharded_state_set};
    let name = "spmd/tp4_decoder";
    let (model, cores) = decoder(name, &DeviceProfile::trn1());
    model.create_state_set("seq", &[StateInit::Zeros]).unwrap();
    let x: Vec<Vec<HostTensor>> = (0..cores)
        .map(|k| vec![host_tensor(&spmd_npy(name, "arg0.npy", k))])
        .collect();
    model.execute("seq", &x).unwrap();
    let shards = |m: &SimShardedModel| -> Vec<Vec<u8>> {
        let sig = m.core(0).signature().clone();
        (0..cores)
            .flat_map(|k| {
                sig.state_specs()
                    .map(|s| {
                        let mut buf = Vec::new();
                        m.core(k).read_state_to("seq", &s.name, &mut buf).unwrap();
                        buf
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let saved = shards(&model);
    let mut file = Vec::new();
    save_sharded_state_set(&model, "seq", &mut file).unwrap();
    let header = String::from_utf8_lossy(&file[8..1200]).to_string();
    assert!(header.contains("core3/"), "{header}");
    model.execute("seq", &x).unwrap();
    assert_ne!(shards(&model), saved);
    load_sharded_state_set(&model, "seq", &mut file.as_slice(), "snap").unwrap();
    assert_eq!(shards(&model), saved, "every core's shards restored");
    // into a set that does not exist yet: created on every core
    load_sharded_state_set(&model, "other", &mut file.as_slice(), "snap").unwrap();
    for k in 0..cores {
        assert!(model.core(k).has_state_set("other"));
    }
    // a file cut short is refused and leaves no core half written
    let e =
        load_sharded_state_set(&model, "seq", &mut &file[..file.len() - 10], "cut").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("reset"), "{e}");
}

#[test]
fn a_permute_charges_the_sender_by_where_its_targets_are() {
    use statetensor_hlo::collective::CollectiveKind::CollectivePermute;
    let p = DeviceProfile::trn1();
    // a core no pair starts at sends nothing
    assert_eq!(p.collective_cost(CollectivePermute, &[3], 1024), (0, 0.0));
    // its chip's neighbour (2 cores a chip on trn1) is reached on the chip, another chip
    // over NeuronLink: one step each, the same bytes
    let (near_bytes, near) = p.collective_cost(CollectivePermute, &[0, 1], 1 << 20);
    let (far_bytes, far) = p.collective_cost(CollectivePermute, &[0, 2], 1 << 20);
    assert_eq!((near_bytes, far_bytes), (1 << 20, 1 << 20));
    assert!(
        (near - (p.collective_latency_s + (1u64 << 20) as f64 / p.chip_bytes_per_s)).abs() < 1e-12
    );
    assert!(
        (far - (p.collective_latency_s + (1u64 << 20) as f64 / p.link_bytes_per_s)).abs() < 1e-12
    );
    // two targets: twice the bytes, sent at once
    let (two, _) = p.collective_cost(CollectivePermute, &[0, 1, 2], 1 << 20);
    assert_eq!(two, 2 << 20);
}

#[test]
fn a_state_is_read_gathered_and_written_split_along_its_axis() {
    let name = "spmd/tp4_decoder";
    let (model, cores) = decoder(name, &DeviceProfile::trn1());
    model.create_state_set("seq", &[StateInit::Zeros]).unwrap();
    let x: Vec<Vec<HostTensor>> = (0..cores)
        .map(|k| vec![host_tensor(&spmd_npy(name, "arg0.npy", k))])
        .collect();
    for _ in 0..2 {
        model.execute("seq", &x).unwrap();
    }
    let cache = model.core(0).signature().params[7].name.clone();
    // the K cache by heads: [16, 2, 8] a core, [16, 8, 8] whole
    let whole = model.read_state_gathered("seq", &cache, 1).unwrap();
    assert_eq!(whole.shape.dims(), [16, 8, 8]);
    model.create_state_set("copy", &[StateInit::Zeros]).unwrap();
    model.write_state_split("copy", &cache, 1, &whole).unwrap();
    for k in 0..cores {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        model.core(k).read_state_to("seq", &cache, &mut a).unwrap();
        model.core(k).read_state_to("copy", &cache, &mut b).unwrap();
        assert_eq!(a, b, "core {k}'s shard");
    }
    // one core's shape where the whole is due is refused, and nothing is written
    let shard = HostTensor::new(whole.dtype, vec![16, 2, 8], vec![1; 16 * 2 * 8 * 4]).unwrap();
    let e = model
        .write_state_split("copy", &cache, 1, &shard)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("[16, 8, 8]"), "{e}");
    assert_eq!(model.read_state_gathered("copy", &cache, 1).unwrap(), whole);
}

/// Cores whose control flow goes apart (core 0 reaches one all-reduce, core 1 another)
/// stop the step: the error reported is the core that met the unlike collective, not the
/// core it stopped, whichever of the two arrives first.
#[test]
fn cores_that_reach_different_collectives_report_the_core_that_found_it() {
    let text = DIVERGING_COLLECTIVES;
    let program = Arc::new(Program::parse(text, "diverge.hlo").unwrap());
    let model =
        SimShardedModel::load(&DeviceProfile::trn1(), program, &[Default::default()], 2).unwrap();
    model.create_state_set("s", &[StateInit::Zeros]).unwrap();
    let x = HostTensor::new(statetensor_core::DType::F32, vec![4], vec![0; 16]).unwrap();
    for _ in 0..8 {
        let e = model
            .execute("s", &[vec![x.clone()], vec![x.clone()]])
            .unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.contains("where another core of its group reached"),
            "{shown}"
        );
        assert!(!shown.contains("the step was stopped"), "{shown}");
        model.reset("s").unwrap();
    }
}
