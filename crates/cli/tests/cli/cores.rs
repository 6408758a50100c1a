//! `run --cores N` and `inspect` on SPMD modules: per-core values from files with a leading
//! axis of N, outputs written with that axis, JAX's results on every core, the per-core
//! report, and clear refusals.

use crate::support::{root, run, run_on, stderr, tmpdir, write_npy_f32};

const TP4: &str = "conformance/fixtures/spmd/tp4_decoder";

fn weights(dir: &str) -> Vec<String> {
    (1..7)
        .flat_map(|p| ["--weight".to_string(), format!("{p}={dir}/arg{p}.npy")])
        .collect()
}

fn close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() <= 1e-5 + 2e-5 * b.abs(), "{what}: {a} vs {b}");
    }
}

#[test]
fn a_tensor_parallel_decoder_runs_on_four_cores_and_matches_jax() {
    let out = tmpdir("tp4");
    let dir = root().join(TP4);
    let d = dir.to_str().unwrap();
    let mut args: Vec<String> = ["run", d, "--cores", "4", "--device", "trn1", "--steps", "4"]
        .map(String::from)
        .to_vec();
    args.extend(weights(d));
    args.extend([
        "--out".into(),
        out.to_str().unwrap().into(),
        "--json".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&refs);
    assert!(o.status.success(), "{}", stderr(&o));
    // every output, state outputs included, with a leading axis of 4: JAX's after step 4
    for k in 0..4 {
        let got = statetensor_hlo::npy::read_file(&out.join(format!("output_{k}.npy"))).unwrap();
        let want = statetensor_hlo::npy::read_file(&dir.join(format!("out3_{k}.npy"))).unwrap();
        assert_eq!(got.dims(), want.dims(), "output {k}");
        assert_eq!(got.dims()[0], 4);
        close(
            &got.to_f64_vec(),
            &want.to_f64_vec(),
            &format!("output {k}"),
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let per_core = report["per_core"].as_array().expect("per-core figures");
    assert_eq!(per_core.len(), 4);
    for c in per_core {
        assert_eq!(c["collectives"], 8, "two all-reduces a step");
        assert!(c["collective_s"].as_f64().unwrap() > 0.0);
        assert_eq!(c["state_bytes"], 2 * 1024 + 4);
        assert!(c["hbm_peak_bytes"].as_u64().unwrap() >= 2 * 1024 + 4);
    }
    // per step only the token in and y out on each core
    for s in report["per_step"].as_array().unwrap() {
        assert_eq!(s["bytes_h2d"], 4 * 256);
        assert_eq!(s["bytes_d2h"], 4 * 256);
    }
    assert!(report["collective_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_value_without_the_cores_axis_goes_to_every_core_and_a_wrong_shape_is_named() {
    let dir = root().join(TP4);
    let d = dir.to_str().unwrap();
    let tmp = tmpdir("tp4-values");
    // one token for every core: the replicated x
    let x: Vec<f32> = (0..64).map(|i| (i as f32 * 0.1).sin()).collect();
    let one = tmp.join("x.npy");
    write_npy_f32(&one, &[64], &x);
    let mut args: Vec<String> = ["run", d, "--cores", "4", "--input"]
        .map(String::from)
        .to_vec();
    args.push(format!("0={}", one.display()));
    args.extend(weights(d));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&refs);
    assert!(o.status.success(), "{}", stderr(&o));
    // three slices for four cores
    let bad = tmp.join("x3.npy");
    write_npy_f32(&bad, &[3, 64], &[x.clone(), x.clone(), x].concat());
    args[5] = format!("0={}", bad.display());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&refs);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("--input") && e.contains("[4, 64]") && e.contains("[3, 64]"),
        "{e}"
    );
}

#[test]
fn an_spmd_module_on_too_few_cores_is_refused_with_exit_2() {
    let d = root().join(TP4);
    let d = d.to_str().unwrap();
    let o = run(&["run", d, "--cores", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("4"), "{}", stderr(&o));
    // the bundle's model.pb carries no module config: its groups need more cores
    let o = run(&["run", d]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("more cores"), "{}", stderr(&o));
    // the text's header says num_partitions=4
    let o = run(&["run", &format!("{d}/model.hlo")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("multiple of 4 cores"), "{}", stderr(&o));
    // the driver checks the same before it loads anything
    let o = run_on("nrt", &["run", d, "--cores", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("more cores"), "{}", stderr(&o));
}

#[test]
fn the_driver_runs_the_decoder_on_the_emulators_cores_as_the_simulator_does() {
    let dir = root().join(TP4);
    let d = dir.to_str().unwrap();
    let outs: Vec<_> = ["sim", "nrt"]
        .iter()
        .map(|backend| {
            let out = tmpdir(&format!("tp4-{backend}"));
            let mut args: Vec<String> = ["run", d, "--cores", "4", "--steps", "4", "--json"]
                .map(String::from)
                .to_vec();
            args.extend(weights(d));
            args.extend(["--out".into(), out.to_str().unwrap().into()]);
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = run_on(backend, &refs);
            assert!(o.status.success(), "{backend}: {}", stderr(&o));
            let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(report["backend"], *backend);
            assert_eq!(report["per_core"].as_array().map(Vec::len), Some(4));
            out
        })
        .collect();
    for k in 0..4 {
        let file = format!("output_{k}.npy");
        let want = statetensor_hlo::npy::read_file(&dir.join(format!("out3_{k}.npy"))).unwrap();
        let sim = statetensor_hlo::npy::read_file(&outs[0].join(&file)).unwrap();
        let nrt = statetensor_hlo::npy::read_file(&outs[1].join(&file)).unwrap();
        // one engine behind both: the same bits; and JAX's within f32 tolerance
        assert_eq!(sim.to_le_bytes(), nrt.to_le_bytes(), "{file}");
        close(&nrt.to_f64_vec(), &want.to_f64_vec(), &file);
    }
}

#[test]
fn inspect_lists_the_collectives_and_their_groups() {
    let d = root().join("conformance/fixtures/spmd/collectives/model.hlo");
    let o = run(&["inspect", d.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["cores"]["compiled_for"], 4);
    let ops: Vec<&str> = v["collectives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["opcode"].as_str().unwrap())
        .collect();
    for want in [
        "all-reduce",
        "all-gather",
        "reduce-scatter",
        "collective-permute",
        "all-to-all",
    ] {
        assert!(ops.contains(&want), "{ops:?} lacks {want}");
    }
    let permute = v["collectives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["opcode"] == "collective-permute")
        .unwrap();
    assert_eq!(permute["groups"], "{{0,1},{1,2},{2,3},{3,0}}");
    assert_eq!(permute["ids"], "partition");
}

#[test]
fn bench_on_four_cores_puts_the_state_shards_round_trip_beside_aliasing() {
    let dir = root().join(TP4);
    let d = dir.to_str().unwrap();
    let mut args: Vec<String> = ["bench", d, "--cores", "4", "--steps", "3", "--json"]
        .map(String::from)
        .to_vec();
    args.extend(weights(d));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&refs);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (a, r) = (&v["aliased"], &v["round_trip"]);
    // each step every core copies its 2,052 bytes of state out and back
    let shards = 3 * 4 * (2 * 1024 + 4);
    assert_eq!(a["bytes_h2d"], 3 * 4 * 256);
    assert_eq!(
        r["bytes_h2d"].as_u64().unwrap(),
        a["bytes_h2d"].as_u64().unwrap() + shards
    );
    assert_eq!(
        r["bytes_d2h"].as_u64().unwrap(),
        a["bytes_d2h"].as_u64().unwrap() + shards
    );
    assert!(r["modelled_s"].as_f64().unwrap() > a["modelled_s"].as_f64().unwrap());
    assert_eq!(a["per_core"].as_array().unwrap().len(), 4);
}

/// `--state-axis`: the KV caches given and written whole, split by heads (axis 1) among
/// the cores; a run picks up where the last one stopped from its whole caches.
#[test]
fn states_sharded_along_a_declared_axis_are_read_and_written_whole() {
    let dir = root().join(TP4);
    let d = dir.to_str().unwrap();
    let base = |out: &std::path::Path| -> Vec<String> {
        let mut args: Vec<String> = ["run", d, "--cores", "4", "--steps", "2"]
            .map(String::from)
            .to_vec();
        args.extend(weights(d));
        args.extend(["--state-axis", "7=1", "--state-axis", "8=1"].map(String::from));
        args.extend(["--out".into(), out.to_str().unwrap().into()]);
        args
    };
    // core k's heads [2k, 2k+2) of the whole [16, 8, 8] cache are its [16, 2, 8] shard
    let assert_whole = |got: &std::path::Path, want: &str| {
        let got = statetensor_hlo::npy::read_file(got).unwrap();
        let file = want;
        let want = statetensor_hlo::npy::read_file(&dir.join(file)).unwrap();
        assert_eq!(got.dims(), [16, 8, 8]);
        let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
        for k in 0..4 {
            for s in 0..16 {
                for h in 0..2 {
                    for e in 0..8 {
                        let a = g[(s * 8 + 2 * k + h) * 8 + e];
                        let b = w[((k * 16 + s) * 2 + h) * 8 + e];
                        assert!((a - b).abs() <= 1e-5 + 2e-5 * b.abs(), "{file}: core {k}");
                    }
                }
            }
        }
    };
    let first = tmpdir("state-axis-1");
    let args = base(&first);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&refs);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_whole(&first.join("output_1.npy"), "out1_1.npy");
    assert_whole(&first.join("output_2.npy"), "out1_2.npy");
    // two more steps from the whole caches (and every core's position) are JAX's steps 3, 4
    let second = tmpdir("state-axis-2");
    let mut args = base(&second);
    for (p, o) in [(7, 1), (8, 2), (9, 3)] {
        args.extend([
            "--state".into(),
            format!("{p}={}", first.join(format!("output_{o}.npy")).display()),
        ]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&refs);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_whole(&second.join("output_1.npy"), "out3_1.npy");
    let y = statetensor_hlo::npy::read_file(&second.join("output_0.npy")).unwrap();
    let want = statetensor_hlo::npy::read_file(&dir.join("out3_0.npy")).unwrap();
    close(&y.to_f64_vec(), &want.to_f64_vec(), "y after four steps");
    // a shard-shaped file where the whole state is declared, and no --cores, are refused
    let mut args = base(&tmpdir("state-axis-bad"));
    args.extend([
        "--state".into(),
        format!("7={}", dir.join("arg7.npy").display()),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&refs);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("[16, 8, 8]"), "{}", stderr(&o));
    let o = run(&["run", "examples/kv_decoder", "--state-axis", "4=0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--cores"), "{}", stderr(&o));
}
