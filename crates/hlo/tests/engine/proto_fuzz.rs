//! The HloModuleProto reader never panics: mutated and truncated fixture protos either
//! load or fail with a clear error; what loads also executes without panicking.

use proptest::prelude::*;
use statetensor_core::ErrorKind;
use statetensor_hlo::{proto::parse_module_proto, Program};
use std::sync::OnceLock;

fn corpus() -> &'static Vec<Vec<u8>> {
    static C: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    C.get_or_init(|| {
        let mut v: Vec<Vec<u8>> = statetensor_conformance::fixture_names()
            .iter()
            .filter_map(|n| {
                std::fs::read(statetensor_conformance::fixture_path(n).join("model.pb")).ok()
            })
            .collect();
        v.sort();
        v
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Delete { at: usize, len: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Duplicate { at: usize, len: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let pos = any::<usize>();
    prop_oneof![
        (pos, 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (pos, any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (pos, 1usize..24).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (pos, proptest::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (pos, 1usize..64).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        pos.prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(b: &[u8], m: &Mutation) -> Vec<u8> {
    let at = |x: usize| if b.is_empty() { 0 } else { x % b.len() };
    let mut out = b.to_vec();
    match m {
        Mutation::Flip { at: x, bit } if !b.is_empty() => out[at(*x)] ^= 1 << bit,
        Mutation::Set { at: x, byte } if !b.is_empty() => out[at(*x)] = *byte,
        Mutation::Delete { at: x, len } => {
            let s = at(*x);
            out.drain(s..(s + len).min(b.len()));
        }
        Mutation::Insert { at: x, bytes } => {
            let s = at(*x);
            out.splice(s..s, bytes.iter().copied());
        }
        Mutation::Duplicate { at: x, len } => {
            let s = at(*x);
            let piece = b[s..(s + len).min(b.len())].to_vec();
            out.splice(s..s, piece);
        }
        Mutation::Truncate { at: x } => out.truncate(at(*x)),
        _ => {}
    }
    out
}

/// Loads the bytes; if they load and are small and loop-free, executes on zeros.
fn exercise(bytes: &[u8]) {
    match Program::from_bytes(bytes, "fuzz.pb") {
        Ok(prog) => {
            if let Ok(module) = parse_module_proto(bytes, "fuzz.pb") {
                crate::parser_fuzz::execute_if_small(&prog, &module);
            }
        }
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::Parse
                    | ErrorKind::InvalidModel
                    | ErrorKind::Unsupported
                    | ErrorKind::Alias
            ),
            "{e}"
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::cases(384), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fixture_protos_never_panic(k in any::<usize>(), ms in proptest::collection::vec(mutation(), 1..4)) {
        let c = corpus();
        let mut bytes = c[k % c.len()].clone();
        for m in &ms {
            bytes = apply(&bytes, m);
        }
        exercise(&bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        exercise(&bytes);
    }
}

#[test]
fn every_truncation_of_a_proto_is_an_error_or_a_smaller_valid_module() {
    let pb = &corpus()[0];
    for n in 0..pb.len() {
        exercise(&pb[..n]);
    }
}

#[test]
fn malformed_protos_are_parse_errors_naming_the_file() {
    let e = Program::from_bytes(&[0x0a, 0xff, 0xff], "bad.pb").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Parse);
    let msg = e.to_string();
    assert!(
        msg.contains("bad.pb") && msg.contains("HloModuleProto"),
        "{msg}"
    );
    // a module without computations
    let e = Program::from_bytes(&[0x0a, 0x01, b'm'], "empty.pb").unwrap_err();
    assert!(e.to_string().contains("no computations"), "{e}");
}
