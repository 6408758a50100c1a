//! `--backend nrt`: no runtime, the emulator against the simulator, alias maps from
//! outside the HLO and compiled bundles.

use crate::support::{assert_close_to_jax, bin, emulator, root, run, stderr, tmpdir};

#[test]
fn nrt_backend_without_a_runtime_is_a_clear_failure() {
    let o = bin()
        .current_dir(root())
        .args(["run", "examples/mlp_cache", "--backend", "nrt"])
        .env("STATETENSOR_LIBNRT", "/nonexistent/libnrt.so.1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("backend unavailable")
            && e.contains("/nonexistent/libnrt.so.1")
            && e.contains("STATETENSOR_LIBNRT"),
        "{e}"
    );
    let o = bin()
        .arg("probe")
        .env("STATETENSOR_LIBNRT", "/nonexistent/libnrt.so.1")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "probe exits 0 only when libnrt is usable"
    );
}

#[test]
fn nrt_backend_over_the_emulator_matches_the_simulator() {
    let lib = emulator();
    assert!(lib.exists(), "{} was not built", lib.display());
    let (sim_out, nrt_out) = (tmpdir("sim"), tmpdir("nrt"));
    let o = run(&[
        "run",
        "examples/kv_decoder",
        "--steps",
        "4",
        "--out",
        sim_out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sim: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = bin()
        .current_dir(root())
        .args([
            "run",
            "examples/kv_decoder",
            "--steps",
            "4",
            "--backend",
            "nrt",
            "--out",
            nrt_out.to_str().unwrap(),
            "--json",
        ])
        .env("STATETENSOR_LIBNRT", &lib)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let nrt: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(nrt["backend"], "nrt");
    // the driver measures time; the simulator models it, and each report says which
    assert_eq!(nrt["time_kind"], "measured");
    assert_eq!(sim["time_kind"], "modelled");
    for k in [
        "bytes_h2d",
        "bytes_d2h",
        "transfers_h2d",
        "transfers_d2h",
        "state_bytes",
    ] {
        assert_eq!(sim[k], nrt[k], "{k}");
    }
    for k in 0..4 {
        let f = format!("output_{k}.npy");
        assert_eq!(
            std::fs::read(sim_out.join(&f)).unwrap(),
            std::fs::read(nrt_out.join(&f)).unwrap(),
            "{f}"
        );
    }
    let o = bin()
        .arg("probe")
        .env("STATETENSOR_LIBNRT", &lib)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // an inf2.48xlarge's 24 cores unless STATETENSOR_EMU_CORES says
    assert!(String::from_utf8_lossy(&o.stdout).contains("visible NeuronCores: 24"));
    let o = bin()
        .arg("probe")
        .env("STATETENSOR_LIBNRT", &lib)
        .env("STATETENSOR_EMU_CORES", "2")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("visible NeuronCores: 2"));
    let o = bin()
        .arg("probe")
        .env("STATETENSOR_LIBNRT", &lib)
        .env("STATETENSOR_EMU_CORES", "none")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("STATETENSOR_EMU_CORES='none'"),
        "{}",
        stderr(&o)
    );
    let o = bin()
        .current_dir(root())
        .args(["inspect", "examples/kv_decoder", "--backend", "nrt"])
        .env("STATETENSOR_LIBNRT", &lib)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("[NEFF 'input5']"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// A model whose alias map is not in its HLO (torch-neuronx's shape) runs the same on the
/// simulator and on the driver when the map is given with --alias: the driver loads the
/// module with that map, never binding a state to an output the loaded model does not alias.
#[test]
fn an_alias_map_from_outside_the_hlo_is_the_same_on_both_backends() {
    let lib = emulator();
    let fixture = "conformance/fixtures/mlp_cache_external";
    let mut outs = Vec::new();
    for backend in ["sim", "nrt"] {
        let out = tmpdir(&format!("external-{backend}"));
        let o = bin()
            .current_dir(root())
            .args([
                "run",
                fixture,
                "--steps",
                "3",
                "--alias",
                "3=1",
                "--backend",
                backend,
            ])
            .args(["--out", out.to_str().unwrap(), "--json"])
            .env("STATETENSOR_LIBNRT", &lib)
            .output()
            .unwrap();
        assert!(o.status.success(), "{backend}: {}", stderr(&o));
        outs.push(out);
    }
    for k in 0..2 {
        let f = format!("output_{k}.npy");
        assert_eq!(
            std::fs::read(outs[0].join(&f)).unwrap(),
            std::fs::read(outs[1].join(&f)).unwrap(),
            "{f}"
        );
    }
    // and both agree with JAX stepping the model with the cache carried (3 steps)
    for k in 0..2 {
        assert_close_to_jax(
            &outs[1].join(format!("output_{k}.npy")),
            &root().join(fixture).join(format!("out2_{k}.npy")),
        );
    }
}

/// A compiled bundle's aliasing is fixed: an --alias that contradicts it is refused with
/// exit 2, naming the parameter and both outputs, before anything runs.
#[test]
fn an_alias_map_contradicting_a_compiled_bundle_is_refused() {
    let dir = tmpdir("neff-bundle");
    std::fs::copy(
        root().join("conformance/fixtures/swap/model.hlo"),
        dir.join("model.hlo"),
    )
    .unwrap();
    // stands in for neuronx-cc's output: the driver checks the map before loading it
    std::fs::write(dir.join("model.neff"), b"NEFF").unwrap();
    let o = bin()
        .args([
            "run",
            dir.to_str().unwrap(),
            "--backend",
            "nrt",
            "--alias",
            "0=1,1=0",
        ])
        .env("STATETENSOR_LIBNRT", emulator())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("0 (a.1)") && e.contains("output 1") && e.contains("output 0"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}
