//! `statetensor run`: the walkthrough, values and flags, the report, exit codes.

use crate::support::{npy_f32, root, run, stderr, tmpdir, write_npy_f32};

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
