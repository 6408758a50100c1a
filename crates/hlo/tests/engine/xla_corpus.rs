//! A sample of XLA's own test modules (conformance/fixtures/xla_corpus/, kept by
//! `tools/xla_corpus.py keep` from a corpus run) must give XLA:CPU's outputs on the inputs
//! kept beside them: integers, pred and data movement exactly, floats within each output's
//! tolerance in meta.json (the corpus run's per-type tolerances).

use crate::fixtures::assert_close;
use statetensor_conformance::{fixture_npy, fixture_path};
use statetensor_hlo::Program;
use std::sync::Arc;

/// Every kept module's name relative to the fixtures directory (`xla_corpus/<module>`).
fn kept_modules() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_path("xla_corpus"))
        .expect("conformance/fixtures/xla_corpus")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("model.hlo").is_file())
        .map(|e| format!("xla_corpus/{}", e.file_name().to_string_lossy()))
        .collect();
    names.sort();
    names
}

/// Runs one kept module on its inputs and compares every output with XLA:CPU's.
fn check(name: &str) -> Result<usize, String> {
    let dir = fixture_path(name);
    let text = std::fs::read_to_string(dir.join("model.hlo")).map_err(|e| e.to_string())?;
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("meta.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("{name}/meta.json: {e}"))?;
    let source = meta["source"].as_str().unwrap_or("?");
    let prog = Program::parse(&text, "model.hlo").map_err(|e| format!("{name} ({source}): {e}"))?;
    let args = (0..prog.params().len())
        .map(|p| Arc::new(fixture_npy(name, &format!("arg{p}.npy"))))
        .collect();
    let outs = prog
        .execute(args)
        .map_err(|e| format!("{name} ({source}): {e}"))?;
    let expected = meta["outputs"]
        .as_object()
        .ok_or_else(|| format!("{name}/meta.json: no \"outputs\""))?;
    if outs.len() != expected.len() {
        return Err(format!(
            "{name} ({source}): {} outputs, XLA:CPU gave {}",
            outs.len(),
            expected.len()
        ));
    }
    for (k, got) in outs.iter().enumerate() {
        let file = format!("out0_{k}.npy");
        let tol = &expected[&file];
        let (rtol, atol) = (
            tol["rtol"].as_f64().unwrap_or(0.0),
            tol["atol"].as_f64().unwrap_or(0.0),
        );
        let want = fixture_npy(name, &file);
        assert_close(
            &format!("{name} ({source}) output {k}"),
            got,
            &want,
            rtol,
            atol,
        )?;
    }
    Ok(outs.len())
}

#[test]
fn kept_xla_test_modules_match_xla_cpu() {
    let names = kept_modules();
    assert!(
        names.len() >= 80,
        "expected the kept sample of XLA's test modules, found {}",
        names.len()
    );
    let mut outputs = 0;
    let failures: Vec<String> = names
        .iter()
        .filter_map(|n| match check(n) {
            Ok(k) => {
                outputs += k;
                None
            }
            Err(e) => Some(e),
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} kept modules differ from XLA:CPU:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n\n")
    );
    assert!(outputs >= names.len(), "{outputs} outputs compared");
}
