//! Models as users hand them over: feeds, resident weights, HloModuleProto files,
//! bundle manifests.

use crate::support::{assert_close_to_jax, bundle_with, root, run, run_on, stderr, tmpdir};
use std::path::PathBuf;

/// A decoder fed a different token each step with --feed matches JAX stepping it with the
/// caches carried; the report counts the fed bytes, and a feed with too few values for
/// --steps is refused before anything runs.
#[test]
fn feed_gives_each_step_its_own_value() {
    let fixture = "conformance/fixtures/kv_decoder_fed";
    let out = tmpdir("feed");
    let feed = format!("{fixture}/feed0.npy");
    let o = run(&[
        "run",
        fixture,
        "--feed",
        &format!("x={feed}"),
        "--steps",
        "6",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["fed_bytes_per_step"], 64);
    for k in 0..4 {
        assert_close_to_jax(
            &out.join(format!("output_{k}.npy")),
            &root().join(fixture).join(format!("out5_{k}.npy")),
        );
    }
    // the same value every step (--input) is a different run: step 6 differs
    let same = tmpdir("feed-same");
    let o = run(&[
        "run",
        fixture,
        "--steps",
        "6",
        "--out",
        same.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(
        std::fs::read(same.join("output_0.npy")).unwrap(),
        std::fs::read(out.join("output_0.npy")).unwrap()
    );
    // six values cannot feed seven steps; a feed of the wrong shape names what it expected
    let o = run(&[
        "run",
        fixture,
        "--feed",
        &format!("x={feed}"),
        "--steps",
        "7",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("N >= 7"), "{}", stderr(&o));
    let o = run(&["run", fixture, "--feed", &format!("x={fixture}/arg0.npy")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("one value per step"), "{}", stderr(&o));
    // a state cannot be fed
    let o = run(&["run", fixture, "--feed", &format!("k_cache={feed}")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("a state parameter"), "{}", stderr(&o));
}

/// A decoder laid out as torch-neuronx lays it out (inputs, states, weights; the alias map
/// beside it) with its weights given as `--weight` and a token fed each step: on both
/// backends it matches JAX, uploads the weights once, moves only the token per step, and
/// its HBM peak holds weights and state.
#[test]
fn weights_are_uploaded_once_and_stay_resident() {
    let fixture = "conformance/fixtures/kv_decoder_weights";
    let weights: Vec<String> = (4..8)
        .map(|p| format!("{p}={fixture}/arg{p}.npy"))
        .collect();
    for backend in ["sim", "nrt"] {
        let out = tmpdir(&format!("weights-{backend}"));
        let feed = format!("0={fixture}/feed0.npy");
        let mut args = vec![
            "run",
            fixture,
            "--alias",
            "1=1,2=2,3=3",
            "--feed",
            &feed,
            "--steps",
            "5",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ];
        for w in &weights {
            args.extend(["--weight", w.as_str()]);
        }
        let o = run_on(backend, &args);
        assert!(o.status.success(), "{backend}: {}", stderr(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let weight_bytes = 4 * 16 * 16 * 4;
        let state_bytes = 2 * 8 * 16 * 4 + 4;
        assert_eq!(report["weight_bytes"], weight_bytes, "{backend}");
        for (i, st) in report["per_step"].as_array().unwrap().iter().enumerate() {
            assert_eq!(
                st["bytes_h2d"], 64,
                "{backend} step {i}: only the token crosses"
            );
            assert_eq!(st["transfers_h2d"], 1, "{backend} step {i}");
        }
        // the weights once, the initial states once (the bundle's arg{P}.npy), the tokens
        let total = report["bytes_h2d"].as_u64().unwrap();
        assert_eq!(total, weight_bytes + state_bytes + 5 * 64, "{backend}");
        let peak = report["hbm_peak_bytes"].as_u64().unwrap();
        assert!(peak >= weight_bytes + state_bytes, "{backend}: peak {peak}");
        for k in 0..4 {
            assert_close_to_jax(
                &out.join(format!("output_{k}.npy")),
                &root().join(fixture).join(format!("out4_{k}.npy")),
            );
        }
    }
    // a weight given per step, a state given as a weight, a weight of the wrong shape: exit 2
    let state_as_weight = format!("1={fixture}/arg1.npy");
    for (extra, says) in [
        (["--input", weights[0].as_str()], "resident weight"),
        (["--weight", state_as_weight.as_str()], "is a state"),
    ] {
        let mut args = vec!["run", fixture, "--alias", "1=1,2=2,3=3"];
        args.extend(["--weight", weights[0].as_str()]);
        args.extend(extra);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }
    let o = run(&["run", fixture, "--weight", &format!("4={fixture}/arg1.npy")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("expected shape [16, 16]"),
        "{}",
        stderr(&o)
    );
}

/// A serialized HloModuleProto (what neuronx-cc compiles) runs exactly as its text does, on
/// both backends, as a bundle's model.pb or as a file; inspect reads it; a damaged proto is
/// exit 2 naming the file.
#[test]
fn hlo_module_protos_run_like_their_text() {
    for (name, alias) in [("kv_decoder", None), ("mlp_cache_external", Some("3=1"))] {
        let text = bundle_with(name, "model.hlo", "text");
        let proto = bundle_with(name, "model.pb", "proto");
        for backend in ["sim", "nrt"] {
            let outs: Vec<PathBuf> = [&text, &proto]
                .iter()
                .map(|dir| {
                    let out = dir.join(format!("out-{backend}"));
                    let mut args = vec!["run", dir.to_str().unwrap(), "--steps", "3"];
                    args.extend(["--out", out.to_str().unwrap()]);
                    if let Some(a) = alias {
                        args.extend(["--alias", a]);
                    }
                    let o = run_on(backend, &args);
                    assert!(o.status.success(), "{name} {backend}: {}", stderr(&o));
                    out
                })
                .collect();
            for e in std::fs::read_dir(&outs[0]).unwrap() {
                let f = e.unwrap().file_name();
                if f.to_string_lossy().starts_with("output_") {
                    assert_eq!(
                        std::fs::read(outs[0].join(&f)).unwrap(),
                        std::fs::read(outs[1].join(&f)).unwrap(),
                        "{name} {backend} {f:?}"
                    );
                }
            }
        }
        let o = run(&[
            "inspect",
            proto.join("model.pb").to_str().unwrap(),
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(v["model"].as_str().unwrap().ends_with("model.pb"), "{v}");
    }
    let pb = std::fs::read(root().join("conformance/fixtures/kv_decoder/model.pb")).unwrap();
    let cut = tmpdir("cut").join("model.pb");
    std::fs::write(&cut, &pb[..pb.len() / 2]).unwrap();
    let o = run(&["run", cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("HloModuleProto") && stderr(&o).contains("model.pb"),
        "{}",
        stderr(&o)
    );
}

/// A bundle with a manifest (statetensor.json, as a frontend writes it for the
/// torch-neuronx layout: inputs, states in alias order, weights) runs with no flags but the
/// feed: roles, names, the alias map, initial states and weights all come from it, on both
/// backends, matching JAX; inspect shows the roles; with a compiled model.neff, an --alias
/// contradicting the manifest's map is exit 2, and the manifest's own map is not.
#[test]
fn a_manifest_says_what_each_parameter_is() {
    let fixture = "conformance/fixtures/kv_decoder_weights";
    let feed = format!("x={fixture}/feed0.npy");
    for backend in ["sim", "nrt"] {
        let out = tmpdir(&format!("manifest-{backend}"));
        let args = ["run", fixture, "--feed", &feed, "--steps", "5", "--json"];
        let o = run_on(
            backend,
            &[&args[..], &["--out", out.to_str().unwrap()]].concat(),
        );
        assert!(o.status.success(), "{backend}: {}", stderr(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["weight_bytes"], 4 * 16 * 16 * 4, "{backend}");
        assert_eq!(report["per_step"][4]["bytes_h2d"], 64, "{backend}");
        assert_eq!(report["states_started_at_zeros"], serde_json::json!([]));
        for k in 0..4 {
            assert_close_to_jax(
                &out.join(format!("output_{k}.npy")),
                &root().join(fixture).join(format!("out4_{k}.npy")),
            );
        }
    }
    let o = run(&["inspect", fixture, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let roles: Vec<&str> = v["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["input", "state", "state", "state", "weight", "weight", "weight", "weight"]
    );
    assert_eq!(v["parameters"][1]["name"], "k_cache");
    assert_eq!(v["weight_bytes"], 4 * 16 * 16 * 4);
    // a compiled bundle: the NEFF was compiled with the manifest's map
    let dir = tmpdir("manifest-neff");
    for e in std::fs::read_dir(root().join(fixture)).unwrap() {
        let f = e.unwrap().file_name();
        std::fs::copy(root().join(fixture).join(&f), dir.join(&f)).unwrap();
    }
    std::fs::write(dir.join("model.neff"), b"NEFF").unwrap();
    let o = run_on(
        "nrt",
        &["run", dir.to_str().unwrap(), "--alias", "1=2,2=1,3=3"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("output 2") && stderr(&o).contains("output 1"),
        "{}",
        stderr(&o)
    );
    // the manifest's own map passes the check; the emulator then refuses the stand-in NEFF
    let o = run_on("nrt", &["run", dir.to_str().unwrap(), "--feed", &feed]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("nrt_load") && !stderr(&o).contains("alias"),
        "{}",
        stderr(&o)
    );
}
