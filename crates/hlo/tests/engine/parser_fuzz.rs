//! The parser and planner never panic, whatever the text: mutated fixtures and random text
//! either load or fail with a located error; what loads also executes without panicking.

use proptest::prelude::*;
use statetensor_core::ErrorKind;
use statetensor_hlo::{ir::Module, parse::parse_module, Program, Tensor};
use std::sync::{Arc, OnceLock};

fn corpus() -> &'static Vec<String> {
    static C: OnceLock<Vec<String>> = OnceLock::new();
    C.get_or_init(|| {
        let dir = statetensor_conformance::fixture_path("");
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flat_map(|e| {
                let p = e.unwrap().path();
                ["model.hlo", "compiled.hlo"]
                    .into_iter()
                    .filter_map(move |f| std::fs::read_to_string(p.join(f)).ok())
            })
            .collect();
        v.sort();
        v
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    Duplicate { at: usize, len: usize },
    Truncate { at: usize },
    ReplaceDigit { at: usize, digit: char },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let pos = any::<usize>();
    prop_oneof![
        (pos, 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (pos, "[{}()\\[\\],=:%\\n \"a-z0-9._/*<>-]{1,12}")
            .prop_map(|(at, text)| Mutation::Insert { at, text }),
        (pos, 1usize..80).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        pos.prop_map(|at| Mutation::Truncate { at }),
        (pos, proptest::char::range('0', '9'))
            .prop_map(|(at, digit)| Mutation::ReplaceDigit { at, digit }),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let b = text.as_bytes();
    let clampi = |at: usize| if b.is_empty() { 0 } else { at % b.len() };
    let mut out = b.to_vec();
    match m {
        Mutation::Delete { at, len } => {
            let s = clampi(*at);
            out.drain(s..(s + len).min(b.len()));
        }
        Mutation::Insert { at, text } => {
            let s = clampi(*at);
            out.splice(s..s, text.bytes());
        }
        Mutation::Duplicate { at, len } => {
            let s = clampi(*at);
            let piece = b[s..(s + len).min(b.len())].to_vec();
            out.splice(s..s, piece);
        }
        Mutation::Truncate { at } => out.truncate(clampi(*at)),
        Mutation::ReplaceDigit { at, digit } => {
            // change a number (shapes, indices, constants) somewhere at or after `at`
            let s = clampi(*at);
            if let Some(k) = (s..b.len()).chain(0..s).find(|&k| b[k].is_ascii_digit()) {
                out[k] = *digit as u8;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Executes a loaded module on zeros when it is small and loop-free (a fuzzed while loop
/// may never end): whatever loads must also run without panicking.
pub(crate) fn execute_if_small(prog: &Program, module: &Module) {
    let bytes: usize = module
        .computations
        .iter()
        .flat_map(|c| &c.instrs)
        .map(|i| i.ty.size_bytes())
        .sum();
    let loops = module
        .computations
        .iter()
        .flat_map(|c| &c.instrs)
        .any(|i| i.opcode == "while");
    if bytes < (64 << 20) && !loops {
        let args = prog
            .params()
            .iter()
            .map(|p| Arc::new(Tensor::zeros(p.dtype, p.shape.dims())))
            .collect();
        let _ = prog.execute(args);
    }
}

/// Loads the text; if it loads and is small and loop-free, executes it on zeros.
fn exercise(text: &str) {
    match Program::parse(text, "fuzz.hlo") {
        Ok(prog) => {
            let module = parse_module(text, "fuzz.hlo").expect("parsed once already");
            execute_if_small(&prog, &module);
        }
        Err(e) => {
            if e.kind() == ErrorKind::Parse {
                assert!(
                    e.to_string().contains("fuzz.hlo:"),
                    "parse error without a location: {e}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::cases(384), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fixtures_never_panic(k in any::<usize>(), ms in proptest::collection::vec(mutation(), 1..4)) {
        let c = corpus();
        let mut text = c[k % c.len()].clone();
        for m in &ms {
            text = apply(&text, m);
        }
        exercise(&text);
    }

    #[test]
    fn random_text_never_panics(body in "[ -~\\n]{0,300}") {
        exercise(&format!("HloModule m\n{body}"));
        exercise(&body);
    }

    #[test]
    fn random_instructions_never_panic(
        ty in "(f32|s32|pred|bf16|u8|token)\\[[0-9,]{0,6}\\]",
        opc in "(add|reshape|broadcast|dot|gather|scatter|slice|pad|reduce|sort|transpose|dynamic-slice|concatenate|iota|convert|select|tuple|get-tuple-element|call|while|conditional|custom-call|reduce-window|bitcast-convert|constant)",
        attrs in "(, [a-z_]{1,12}=[{}0-9,\\[\\]:x_a-z]{0,16}){0,3}",
    ) {
        let text = format!("HloModule m\nr {{\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT c = f32[] add(a, b)\n}}\nENTRY e {{\n  p = f32[2,3] parameter(0)\n  q = s32[] parameter(1)\n  ROOT x = {ty} {opc}(p, q){attrs}\n}}\n");
        exercise(&text);
    }
}

#[test]
fn unsupported_ops_are_named_with_their_line() {
    let text = "HloModule m\nENTRY e {\n  p = f32[4] parameter(0)\n  ROOT c = f32[4] custom-call(p), custom_call_target=\"Sharding\"\n}\n";
    let e = Program::parse(text, "m.hlo").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(
        e.to_string().contains("line 4") && e.to_string().contains("custom-call"),
        "{e}"
    );
    let text = "HloModule m\nENTRY e {\n  p = f32[4] parameter(0)\n  ROOT c = f32[4] rng(p, p), distribution=rng_uniform\n}\n";
    let e = Program::parse(text, "m.hlo").unwrap_err();
    assert!(e.to_string().contains("opcode 'rng'"), "{e}");
}

#[test]
fn type_errors_name_the_instruction_and_both_types() {
    let text = "HloModule m\nENTRY e {\n  p = f32[4] parameter(0)\n  q = s32[4] parameter(1)\n  ROOT c = f32[4] add(p, q)\n}\n";
    let e = Program::parse(text, "m.hlo").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidModel);
    let msg = e.to_string();
    assert!(
        msg.contains("line 5")
            && msg.contains(" c in e")
            && msg.contains("f32[4]")
            && msg.contains("s32[4]"),
        "{msg}"
    );
    let text =
        "HloModule m\nENTRY e {\n  p = f32[4] parameter(0)\n  ROOT c = f32[5] negate(p)\n}\n";
    let e = Program::parse(text, "m.hlo").unwrap_err();
    assert!(
        e.to_string()
            .contains("produces f32[4], but the instruction declares f32[5]"),
        "{e}"
    );
}

#[test]
fn partial_and_mismatched_aliases_are_rejected() {
    let base = |alias: &str| {
        format!("HloModule m, input_output_alias={alias}\nENTRY e {{\n  p = f32[4] parameter(0)\n  q = s32[] parameter(1)\n  ROOT t = (f32[4], s32[]) tuple(p, q)\n}}\n")
    };
    for bad in [
        "{ {0}: (0, {1}, may-alias) }",
        "{ {1}: (0, {}, may-alias) }",
        "{ {0}: (7, {}) }",
        "{ {0}: (0, {}), {0}: (1, {}) }",
    ] {
        let e = Program::parse(&base(bad), "m.hlo").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Alias, "{bad}: {e}");
    }
    assert!(Program::parse(
        &base("{ {0}: (0, {}, must-alias), {1}: (1, {}, may-alias) }"),
        "m.hlo"
    )
    .is_ok());
}

#[test]
fn entry_layout_must_match_the_entry_computation() {
    let text = |layout: &str| {
        format!("HloModule m, entry_computation_layout={layout}\nENTRY e {{\n  p = f32[4]{{0}} parameter(0)\n  ROOT n = f32[4]{{0}} negate(p)\n}}\n")
    };
    assert!(Program::parse(&text("{(f32[4]{0})->f32[4]{0}}"), "m.hlo").is_ok());
    let e = Program::parse(&text("{(f32[5]{0})->f32[4]{0}}"), "m.hlo").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidModel);
    assert!(
        e.to_string().contains("f32[5]") && e.to_string().contains("line 1"),
        "{e}"
    );
}
