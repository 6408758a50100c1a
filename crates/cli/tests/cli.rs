//! The CLI contract (docs/architecture.md §9), through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_statetensor"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    bin()
        .current_dir(root())
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("statetensor-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Reads an f32 .npy the CLI wrote.
fn npy_f32(path: &Path) -> Vec<f32> {
    let t = statetensor_hlo::npy::read_file(path).unwrap();
    assert_eq!(
        t.dtype(),
        statetensor_core::DType::F32,
        "{}",
        path.display()
    );
    t.to_f64_vec().into_iter().map(|v| v as f32).collect()
}

fn write_npy_f32(path: &Path, dims: &[usize], v: &[f32]) {
    let values: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    let t =
        statetensor_hlo::Tensor::from_f64s(statetensor_core::DType::F32, dims, &values).unwrap();
    statetensor_hlo::npy::write_file(path, &t).unwrap();
}

#[test]
fn walkthrough_writes_outputs_and_report() {
    let out = tmpdir("walk");
    let o = run(&[
        "run",
        "examples/mlp_cache",
        "--steps",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("--json prints the report");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    for key in [
        "backend",
        "device",
        "steps",
        "bytes_h2d",
        "bytes_d2h",
        "bytes_d2d",
        "transfers_h2d",
        "transfers_d2h",
        "state_bytes",
        "hbm_peak_bytes",
        "hbm_capacity_bytes",
        "modelled_s",
        "wall_s",
    ] {
        assert!(report.get(key).is_some(), "report lacks {key}");
        assert!(file.get(key).is_some(), "report.json lacks {key}");
    }
    assert_eq!(report["backend"], "sim");
    assert_eq!(report["device"], "inf2");
    assert_eq!(report["steps"], 2);
    assert_eq!(report["state_bytes"], 12);
    // two steps of x (16 B) + w (48 B) + b (12 B) in, plus the initial cache from arg3.npy
    assert_eq!(report["bytes_h2d"], 2 * 76 + 12);
    assert_eq!(
        report["bytes_d2h"],
        2 * 12,
        "only output 0 comes back each step"
    );
    assert_eq!(
        npy_f32(&out.join("output_1.npy")),
        vec![2.0; 3],
        "the cache after two steps"
    );
    assert_eq!(npy_f32(&out.join("output_0.npy")).len(), 3);
}

#[test]
fn walkthrough_semantics_with_explicit_inputs() {
    let d = tmpdir("explicit");
    write_npy_f32(&d.join("x.npy"), &[4], &[1.0, 2.0, 0.5, 1.0]);
    write_npy_f32(&d.join("w.npy"), &[4, 3], &[0.5; 12]);
    write_npy_f32(&d.join("b.npy"), &[3], &[0.0; 3]);
    let hlo = root().join("examples/mlp_cache/model.hlo");
    let out = d.join("out");
    let o = run(&[
        "run",
        hlo.to_str().unwrap(),
        "--input",
        &format!("x={}", d.join("x.npy").display()),
        "--input",
        &format!("w.1={}", d.join("w.npy").display()),
        "--input",
        &format!("2={}", d.join("b.npy").display()),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        npy_f32(&out.join("output_0.npy")),
        vec![0.0; 3],
        "step 1: y = 0 * relu(...)"
    );
    assert_eq!(npy_f32(&out.join("output_1.npy")), vec![1.0; 3]);
    let o = run(&[
        "run",
        hlo.to_str().unwrap(),
        "--steps",
        "2",
        "--input",
        &format!("x={}", d.join("x.npy").display()),
        "--input",
        &format!("w={}", d.join("w.npy").display()),
        "--input",
        &format!("b={}", d.join("b.npy").display()),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        npy_f32(&out.join("output_0.npy")),
        vec![2.25; 3],
        "step 2: y = relu(fc(x))"
    );
    assert_eq!(npy_f32(&out.join("output_1.npy")), vec![2.0; 3]);
    let human = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        human.contains("without (state copied out and back)"),
        "{human}"
    );
}

#[test]
fn state_flag_and_alias_override() {
    let d = tmpdir("state");
    write_npy_f32(&d.join("c.npy"), &[3], &[10.0, 20.0, 30.0]);
    let o = run(&[
        "run",
        "examples/mlp_cache",
        "--state",
        &format!("cache={}", d.join("c.npy").display()),
        "--out",
        d.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(npy_f32(&d.join("output_1.npy")), vec![11.0, 21.0, 31.0]);
    // alias the cache to output 0 instead: output 1 is then returned, the cache becomes y
    let o = run(&[
        "run",
        "examples/mlp_cache",
        "--alias",
        "3=0",
        "--out",
        d.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["bytes_d2h"], 12);
}

#[test]
fn bad_input_exits_2_with_one_clear_message() {
    let d = tmpdir("bad");
    write_npy_f32(&d.join("wrong.npy"), &[5], &[0.0; 5]);
    std::fs::write(
        d.join("bad.hlo"),
        "HloModule m\nENTRY e {\n  p = f32[2] parameter(0)\n  ROOT n = f32[2] negate(q)\n}\n",
    )
    .unwrap();
    std::fs::write(d.join("junk.npy"), "not numpy").unwrap();
    let wrong = format!("x={}", d.join("wrong.npy").display());
    let junk = format!("x={}", d.join("junk.npy").display());
    let bad = d.join("bad.hlo");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["run", "examples/mlp_cache", "--input", &wrong],
            "f32[4]",
        ),
        (vec!["run", "examples/mlp_cache", "--input", &junk], "npy"),
        (
            vec!["run", "examples/mlp_cache", "--input", "nosuch=a.npy"],
            "nosuch",
        ),
        (
            vec!["run", "examples/mlp_cache", "--input", "cache=a.npy"],
            "use --state",
        ),
        (
            vec!["run", "examples/mlp_cache", "--state", "x=a.npy"],
            "use --input",
        ),
        (
            vec!["run", "examples/mlp_cache", "--alias", "1=1"],
            "types differ",
        ),
        (
            vec!["run", "examples/mlp_cache", "--alias", "3=1,0=1"],
            "output 1",
        ),
        (
            vec!["run", "examples/mlp_cache", "--device", "inf9"],
            "inf9",
        ),
        (vec!["run", bad.to_str().unwrap()], "bad.hlo:4:"),
        (vec!["run", "examples/no-such-model"], "does not exist"),
        (vec!["run", "examples/mlp_cache", "--steps", "0"], "steps"),
        (vec!["run", "examples/mlp_cache", "--bogus"], "bogus"),
        (vec!["inspect", "examples/mlp_cache", "--alias", "x"], "P=O"),
    ];
    for (args, needle) in cases {
        let o = run(&args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(needle), "{args:?}: stderr lacks '{needle}': {e}");
        assert!(!e.contains("panicked"), "{args:?}: {e}");
    }
    // a model dir without defaults: the missing input is named
    let bare = tmpdir("bare");
    std::fs::copy(
        root().join("examples/mlp_cache/model.hlo"),
        bare.join("model.hlo"),
    )
    .unwrap();
    let o = run(&["run", bare.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--input x.1=FILE.npy"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn inspect_shows_states_and_footprints() {
    let o = run(&["inspect", "examples/kv_decoder"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("k_cache.1") && s.contains("state, updated from output 1"),
        "{s}"
    );
    assert!(s.contains("trn2") && s.contains("fits"), "{s}");
    let o = run(&["inspect", "examples/kv_decoder", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state_bytes"], 2 * 8 * 16 * 4 + 4);
    assert_eq!(v["parameters"][7]["state_from_output"], 3);
}

/// `libnrt_emu.so` (built by the dev-dependency on the emulator).
fn emulator() -> PathBuf {
    nrt_emu::hook::built_library().expect("libnrt_emu.so was not built")
}

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
    assert!(String::from_utf8_lossy(&o.stdout).contains("visible NeuronCores: 1"));
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

#[test]
fn bench_compares_aliased_with_round_trip() {
    let o = run(&["bench", "examples/kv_decoder", "--steps", "3", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (a, r) = (&v["aliased"], &v["round_trip"]);
    let state = a["state_bytes"].as_u64().unwrap();
    assert_eq!(state, 2 * 8 * 16 * 4 + 4);
    for k in [
        "backend",
        "device",
        "steps",
        "bytes_h2d",
        "bytes_d2h",
        "modelled_s",
        "wall_s",
        "hbm_peak_bytes",
    ] {
        assert!(a.get(k).is_some() && r.get(k).is_some(), "{k}");
    }
    // the round trip moves every state out and back each step, on top of the same inputs and outputs
    assert_eq!(
        r["bytes_h2d"].as_u64().unwrap(),
        a["bytes_h2d"].as_u64().unwrap() + 3 * state
    );
    assert_eq!(
        r["bytes_d2h"].as_u64().unwrap(),
        a["bytes_d2h"].as_u64().unwrap() + 3 * state
    );
    assert!(r["modelled_s"].as_f64().unwrap() > a["modelled_s"].as_f64().unwrap());
    let o = run(&["bench", "examples/kv_decoder", "--steps", "2"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("round trip"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn calibrate_over_the_emulator_writes_a_usable_profile() {
    let d = tmpdir("calibrate");
    let prof = d.join("profile.json");
    let o = bin()
        .args([
            "calibrate",
            "--max-mib",
            "1",
            "--repeats",
            "3",
            "--out",
            prof.to_str().unwrap(),
        ])
        .env("STATETENSOR_LIBNRT", emulator())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&prof).unwrap()).unwrap();
    assert!(p["h2d_bytes_per_s"].as_f64().unwrap() > 0.0);
    assert!(p["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("residuals")));
    assert!(p["notes"].as_array().unwrap().iter().any(|n| n
        .as_str()
        .unwrap()
        .contains("execute overhead of a trivial model")));
    let o = run(&[
        "run",
        "examples/mlp_cache",
        "--device",
        prof.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["device"], "calibrated-inf2");
}

#[test]
fn sweep_writes_csv_and_svg() {
    let d = tmpdir("sweep");
    let o = run(&[
        "bench",
        "family:kv-decoder",
        "--sweep",
        "64:256",
        "--steps",
        "2",
        "--width",
        "32",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(d.join("sweep.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(8).map(|x| x.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        vec![64.0, 128.0, 256.0]
    );
    for r in &rows {
        assert_eq!(r[1], 2.0 * r[0] * 32.0 * 4.0 + 4.0, "state bytes");
        assert!(r[3] > r[2], "the round trip costs more per step");
        assert_eq!(
            r[5] - r[4],
            r[1],
            "the round trip writes the state every step"
        );
    }
    let svg = std::fs::read_to_string(d.join("sweep.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() == 2);
    let o = run(&["bench", "examples/mlp_cache", "--sweep", "10:1"]);
    assert_eq!(o.status.code(), Some(2));
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

/// A state given no initial value starts at zeros, and the report says which.
#[test]
fn states_that_start_at_zeros_are_named() {
    let d = "conformance/fixtures/mlp_cache";
    let args: Vec<String> = (0..3).map(|p| format!("{p}={d}/arg{p}.npy")).collect();
    let mut cmd = vec!["run".to_string(), format!("{d}/model.hlo")];
    for a in &args {
        cmd.push("--input".into());
        cmd.push(a.clone());
    }
    let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let o = run(&refs);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("started at zeros (no initial value given): cache.1"),
        "{text}"
    );
    let mut with_json = refs.clone();
    with_json.push("--json");
    let o = run(&with_json);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        report["states_started_at_zeros"],
        serde_json::json!(["cache.1"])
    );
    // given a value (here the directory's arg3.npy), nothing started at zeros
    let o = run(&["run", d, "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["states_started_at_zeros"], serde_json::json!([]));
}

/// A parameter donated by the header's `buffer_donor` (what torch-xla writes) but not
/// aliased is shown by inspect with the outputs it could alias.
#[test]
fn inspect_names_what_a_donated_parameter_could_alias() {
    let dir = tmpdir("donor");
    let file = dir.join("donor.hlo");
    std::fs::write(
        &file,
        "HloModule m, buffer_donor={ (1, {}) }\nENTRY e {\n  x = f32[2] parameter(0)\n  c = f32[3] parameter(1)\n  y = f32[2] multiply(x, x)\n  c2 = f32[3] negate(c)\n  ROOT t = (f32[2], f32[3]) tuple(y, c2)\n}\n",
    )
    .unwrap();
    let o = run(&["inspect", file.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["parameters"][1]["donated"], true);
    assert_eq!(
        v["parameters"][1]["could_alias_outputs"],
        serde_json::json!([1])
    );
    assert_eq!(v["parameters"][0]["donated"], false);
    let o = run(&["inspect", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("--alias 1=1"));
    // aliased, it is state and no longer a hint
    let o = run(&[
        "inspect",
        file.to_str().unwrap(),
        "--alias",
        "1=1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["parameters"][1]["state_from_output"], 1);
    assert_eq!(
        v["parameters"][1]["could_alias_outputs"],
        serde_json::Value::Null
    );
}

/// `got` holds JAX's `want` within the f32 fixtures' tolerance (rtol 2e-5, atol 1e-6).
fn assert_close_to_jax(got: &Path, want: &Path) {
    let g = statetensor_hlo::npy::read_file(got).unwrap().to_f64_vec();
    let w = statetensor_hlo::npy::read_file(want).unwrap().to_f64_vec();
    assert_eq!(g.len(), w.len(), "{}", got.display());
    for (a, b) in g.iter().zip(&w) {
        assert!(
            (a - b).abs() <= 1e-6 + 2e-5 * b.abs(),
            "{}: {g:?} vs {}: {w:?}",
            got.display(),
            want.display()
        );
    }
}

/// Runs `args` on `backend` (the driver over the emulator for "nrt").
fn run_on(backend: &str, args: &[&str]) -> Output {
    bin()
        .current_dir(root())
        .args(args)
        .args(["--backend", backend])
        .env("STATETENSOR_LIBNRT", emulator())
        .output()
        .expect("the binary runs")
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

/// A copy of fixture `name` holding only `model` (model.hlo or model.pb) and its values.
fn bundle_with(name: &str, model: &str, tag: &str) -> PathBuf {
    let src = root().join("conformance/fixtures").join(name);
    let dst = tmpdir(&format!("{name}-{tag}"));
    for e in std::fs::read_dir(&src).unwrap() {
        let f = e.unwrap().file_name().into_string().unwrap();
        if f == model || f.starts_with("arg") {
            std::fs::copy(src.join(&f), dst.join(&f)).unwrap();
        }
    }
    dst
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
