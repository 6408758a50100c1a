//! `statetensor run`: the walkthrough, values and flags, the report, exit codes.

use crate::support::{bin, emulator, npy_f32, root, run, stderr, tmpdir, write_npy_f32};

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

/// int4 state through the CLI: `--state` reads an ml_dtypes int4 file (one value per byte)
/// into the packed state, and `--out` writes it back one value per byte, on both backends.
#[test]
fn int4_state_in_and_out() {
    let d = tmpdir("int4-state");
    let model = d.join("m.hlo");
    std::fs::write(
        &model,
        "HloModule m, input_output_alias={ {}: (0, {}, may-alias) }\nENTRY e {\n  s = s4[5] parameter(0)\n  one = s4[] constant(1)\n  b = s4[5] broadcast(one), dimensions={}\n  ROOT r = s4[5] add(s, b)\n}\n",
    )
    .unwrap();
    // np.save(np.array([1, -2, 7, -8, 3], ml_dtypes.int4)): '<V1', low nibbles
    let mut file = statetensor_hlo::npy::header_bytes(statetensor_core::DType::S4, &[5]);
    file.extend_from_slice(&[0x01, 0x0e, 0x07, 0x08, 0x03]);
    std::fs::write(d.join("state.npy"), &file).unwrap();
    for nrt in [false, true] {
        let out = d.join("out");
        let state = format!("0={}", d.join("state.npy").display());
        let mut cmd = bin();
        cmd.current_dir(root()).args([
            "run",
            model.to_str().unwrap(),
            "--state",
            &state,
            "--steps",
            "2",
            "--out",
            out.to_str().unwrap(),
        ]);
        if nrt {
            cmd.args(["--backend", "nrt"])
                .env("STATETENSOR_LIBNRT", emulator());
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let got = std::fs::read(out.join("output_0.npy")).unwrap();
        // +2 each, wrapping: [3, 0, -7, -6, 5]
        assert!(
            got.ends_with(&[0x03, 0x00, 0x09, 0x0a, 0x05]),
            "nrt {nrt}: {got:?}"
        );
        let t = statetensor_hlo::npy::read_file_as(
            &out.join("output_0.npy"),
            statetensor_core::DType::S4,
        )
        .unwrap();
        assert_eq!(t.to_f64_vec(), [3.0, 0.0, -7.0, -6.0, 5.0]);
    }
    // a byte that is no int4 value is refused, naming it
    let n = file.len();
    file[n - 1] = 0x13;
    std::fs::write(d.join("bad.npy"), &file).unwrap();
    let state = format!("0={}", d.join("bad.npy").display());
    let o = run(&["run", model.to_str().unwrap(), "--state", &state]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("element 4"), "{}", stderr(&o));
}
