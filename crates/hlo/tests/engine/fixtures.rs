//! Every fixture JAX wrote (tools/gen_fixtures.py) must match: outputs of every step, with
//! aliased state carried between steps as a device would keep it.

use statetensor_conformance::{
    fixture_alias_map, fixture_arg, fixture_feeds, fixture_names, fixture_npy, fixture_path,
};
use statetensor_core::DType;
use statetensor_hlo::{Program, Tensor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Meta {
    steps: usize,
    rtol: f64,
    atol: f64,
}

fn meta(dir: &Path) -> Meta {
    let text = std::fs::read_to_string(dir.join("meta.json")).expect("meta.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("meta.json parses");
    Meta {
        steps: v["steps"].as_u64().expect("steps") as usize,
        rtol: v["rtol"].as_f64().expect("rtol"),
        atol: v["atol"].as_f64().expect("atol"),
    }
}

/// Compares within `rtol`/`atol` (floats; NaN matches NaN, infinities match exactly) or
/// exactly (everything else).
pub fn assert_close(
    what: &str,
    got: &Tensor,
    want: &Tensor,
    rtol: f64,
    atol: f64,
) -> Result<(), String> {
    if got.dtype() != want.dtype() || got.dims() != want.dims() {
        return Err(format!(
            "{what}: got {}{:?}, want {}{:?}",
            got.dtype(),
            got.dims(),
            want.dtype(),
            want.dims()
        ));
    }
    if !got.dtype().is_float() || (rtol == 0.0 && atol == 0.0) {
        let (g, w) = (got.to_le_bytes(), want.to_le_bytes());
        if g != w {
            // NaN payloads may differ; compare values for floats
            if got.dtype().is_float() {
                let same = got
                    .to_f64_vec()
                    .iter()
                    .zip(want.to_f64_vec())
                    .all(|(a, b)| a == &b || (a.is_nan() && b.is_nan()));
                if same {
                    return Ok(());
                }
            }
            return Err(format!(
                "{what}: not identical\n got  {got:?}\n want {want:?}"
            ));
        }
        return Ok(());
    }
    for (i, (a, b)) in got
        .to_f64_vec()
        .into_iter()
        .zip(want.to_f64_vec())
        .enumerate()
    {
        let ok = if a.is_nan() || b.is_nan() {
            a.is_nan() && b.is_nan()
        } else if a.is_infinite() || b.is_infinite() {
            a == b
        } else {
            (a - b).abs() <= atol + rtol * b.abs()
        };
        if !ok {
            return Err(format!("{what}: element {i}: got {a}, want {b} (rtol {rtol}, atol {atol})\n got  {got:?}\n want {want:?}"));
        }
    }
    Ok(())
}

/// Runs one fixture's model (HLO text or HloModuleProto) for all its steps; returns the
/// outputs of every step, or the first mismatch with JAX's.
fn run_fixture(dir: &Path, model: &str) -> Result<Vec<Vec<Arc<Tensor>>>, String> {
    let bytes = std::fs::read(dir.join(model)).map_err(|e| e.to_string())?;
    run_fixture_bytes(dir, model, &bytes)
}

/// Like [`run_fixture`], with the model's bytes given (a variant of its file).
fn run_fixture_bytes(
    dir: &Path,
    model: &str,
    bytes: &[u8],
) -> Result<Vec<Vec<Arc<Tensor>>>, String> {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let m = meta(dir);
    let prog = Program::from_bytes(bytes, model).map_err(|e| format!("{name}/{model}: {e}"))?;
    let mut steps = Vec::new();
    let mut args: Vec<Arc<Tensor>> = (0..prog.params().len())
        .map(|p| Arc::new(fixture_arg(&name, p, 0)))
        .collect();
    let aliases = fixture_alias_map(&name, prog.header_aliases());
    let fed = fixture_feeds(&name);
    for s in 0..m.steps {
        // a parameter fed a new value every step takes slice s; state carries
        for &p in &fed {
            args[p] = Arc::new(fixture_arg(&name, p, s));
        }
        let outs = prog
            .execute(args.clone())
            .map_err(|e| format!("{name}/{model} step {s}: {e}"))?;
        for (k, got) in outs.iter().enumerate() {
            let want = fixture_npy(&name, &format!("out{s}_{k}.npy"));
            assert_close(
                &format!("{name}/{model} step {s} output {k}"),
                got,
                &want,
                m.rtol,
                m.atol,
            )?;
        }
        for pair in aliases.pairs() {
            args[pair.param] = outs[pair.output].clone();
        }
        steps.push(outs);
    }
    Ok(steps)
}

fn fixture_dirs() -> Vec<PathBuf> {
    fixture_names().iter().map(|n| fixture_path(n)).collect()
}

#[test]
fn every_jax_fixture_matches() {
    let dirs = fixture_dirs();
    assert!(
        dirs.len() >= 35,
        "expected the committed fixtures, found {}",
        dirs.len()
    );
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| run_fixture(d, "model.hlo").err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n\n")
    );
}

/// The same HLO text laid out as XLA's parser also accepts it: outside strings, every run
/// of spaces becomes a line break and a tab, and a line break follows every ','. Operands,
/// attribute lists, types, literals and signatures then run over many lines.
fn reflow(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let (mut in_string, mut escaped, mut spaces) = (false, false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
            continue;
        }
        if c == ' ' {
            spaces = true;
            continue;
        }
        if spaces {
            out.push_str("\n\t");
            spaces = false;
        }
        out.push(c);
        match c {
            '"' => in_string = true,
            ',' => out.push('\n'),
            _ => {}
        }
    }
    out
}

/// HLO text is free-form: every fixture, reflowed over many lines, still matches JAX.
#[test]
fn every_fixture_reflowed_over_many_lines_matches() {
    let dirs = fixture_dirs();
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            let text = std::fs::read_to_string(d.join("model.hlo")).unwrap();
            let reflowed = reflow(&text);
            assert!(reflowed.lines().count() > 2 * text.lines().count());
            run_fixture_bytes(d, "model.hlo (reflowed)", reflowed.as_bytes()).err()
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} reflowed fixtures fail:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n\n")
    );
}

/// Every fixture's serialized HloModuleProto (what neuronx-cc compiles) is the same model
/// as its text: same parameters, outputs, alias map and donors, and bit-identical outputs
/// at every step.
#[test]
fn every_fixture_proto_matches_its_text() {
    let dirs = fixture_dirs();
    let mut failures = Vec::new();
    for d in &dirs {
        let name = d.file_name().unwrap().to_string_lossy().to_string();
        let read = |f: &str| {
            let bytes = std::fs::read(d.join(f)).unwrap();
            Program::from_bytes(&bytes, f).unwrap_or_else(|e| panic!("{name}/{f}: {e}"))
        };
        let (text, proto) = (read("model.hlo"), read("model.pb"));
        assert_eq!(text.params(), proto.params(), "{name}");
        assert_eq!(text.outputs(), proto.outputs(), "{name}");
        assert_eq!(text.header_aliases(), proto.header_aliases(), "{name}");
        assert_eq!(text.buffer_donors(), proto.buffer_donors(), "{name}");
        assert_eq!(
            text.must_alias_params(),
            proto.must_alias_params(),
            "{name}"
        );
        assert_eq!(text.constant_bytes(), proto.constant_bytes(), "{name}");
        match (run_fixture(d, "model.hlo"), run_fixture(d, "model.pb")) {
            (Ok(t), Ok(p)) => {
                for (s, (a, b)) in t.iter().zip(&p).enumerate() {
                    for (k, (x, y)) in a.iter().zip(b).enumerate() {
                        if x.to_le_bytes() != y.to_le_bytes() {
                            failures.push(format!(
                                "{name} step {s} output {k}: text {x:?}, proto {y:?}"
                            ));
                        }
                    }
                }
            }
            (_, Err(e)) | (Err(e), _) => failures.push(e),
        }
    }
    assert!(
        dirs.len() >= 40,
        "expected the committed fixtures, found {}",
        dirs.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_xla_optimised_dump_matches() {
    let mut ran = 0;
    let mut failures = Vec::new();
    for d in fixture_dirs() {
        if d.join("compiled.hlo").exists() {
            ran += 1;
            if let Err(e) = run_fixture(&d, "compiled.hlo").map(drop) {
                failures.push(e);
            }
        }
    }
    assert!(
        ran >= 30,
        "expected XLA-optimised dumps for most fixtures, found {ran}"
    );
    assert!(
        failures.is_empty(),
        "{} of {ran} optimised dumps differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn stateful_fixtures_declare_their_aliases() {
    for (name, pairs) in [
        ("kv_decoder", vec![(5, 1), (6, 2), (7, 3)]),
        ("swap", vec![(0, 0), (1, 1)]),
        ("multi_reader", vec![(1, 1), (2, 4)]),
        ("bf16_state", vec![(1, 1)]),
        ("counters", vec![(1, 0), (2, 1), (3, 2)]),
        ("ring_buffer", vec![(1, 1), (2, 2)]),
        ("mlp_cache", vec![(3, 1)]),
    ] {
        let text = statetensor_conformance::fixture_hlo(name);
        let prog = Program::parse(&text, name).unwrap();
        let got: Vec<(usize, usize)> = prog
            .header_aliases()
            .pairs()
            .map(|p| (p.param, p.output))
            .collect();
        assert_eq!(got, pairs, "{name}");
    }
    let text = statetensor_conformance::fixture_hlo("bf16_state");
    assert_eq!(
        Program::parse(&text, "x").unwrap().params()[1].dtype,
        DType::BF16
    );
}
