//! HLO text as XLA's parser reads it: free-form whitespace (the fixtures reflowed over many
//! lines are in fixtures.rs), computation attributes, and what is still refused.

use statetensor_core::{DType, ErrorKind};
use statetensor_hlo::{Program, Tensor};
use std::sync::Arc;

fn run_f32(text: &str, args: &[(&[usize], &[f32])]) -> Vec<f32> {
    let prog = Program::parse(text, "g.hlo").unwrap_or_else(|e| panic!("{e}\n{text}"));
    let args = args
        .iter()
        .map(|(dims, v)| {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            Arc::new(Tensor::from_le_bytes(DType::F32, dims, &bytes).unwrap())
        })
        .collect();
    let out = prog.execute(args).unwrap();
    out[0].to_f64_vec().iter().map(|&x| x as f32).collect()
}

/// Several instructions on one line, an instruction split inside its type, operands and
/// attribute list, and a computation's `{` on the line after its signature.
#[test]
fn instructions_need_no_line_of_their_own() {
    let text = "HloModule m\n\nadd {\n  a = f32[] parameter(0) b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}\n\nENTRY e (p: f32[2,3])\n  -> f32[2]\n{\n  p = f32[2,\n    3] parameter(0) z = f32[] constant(\n      0)\n  ROOT r = f32[2]{0}\n    reduce(\n      p,\n      z\n    )\n    ,\n    dimensions={\n      1\n    }\n    , to_apply=add\n}\n";
    assert_eq!(
        run_f32(text, &[(&[2, 3], &[1., 2., 3., 4., 5., 6.])]),
        [6., 15.]
    );
}

/// `, execution_thread="main"` after a computation's signature (XLA's printer writes it for
/// computations on other threads), and other computation attributes, are accepted.
#[test]
fn computation_attributes_are_accepted() {
    let text = "HloModule m\n\nadd (a: f32[], b: f32[]) -> f32[], execution_thread=\"main\" {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}\n\nENTRY e {\n  p = f32[3] parameter(0)\n  z = f32[] constant(0)\n  ROOT r = f32[] reduce(p, z), dimensions={0}, to_apply=add\n}\n";
    assert_eq!(run_f32(text, &[(&[3], &[1., 2., 4.])]), [7.]);
}

/// What follows an instruction must be its next attribute, the next instruction or the
/// computation's end; anything else is named with its position.
#[test]
fn junk_after_an_instruction_is_refused_where_it_stands() {
    let text =
        "HloModule m\nENTRY e {\n  p = f32[2] parameter(0)\n  ROOT r = f32[2] negate(p) ;\n}\n";
    let e = Program::parse(text, "g.hlo").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Parse);
    let msg = e.to_string();
    assert!(
        msg.contains("g.hlo:4:29") && msg.contains("after instruction 'r'") && msg.contains("';'"),
        "{msg}"
    );
}

/// Messages name an instruction as the source writes it: with XLA's `%` where the source
/// has one, without where it has none.
#[test]
fn messages_name_instructions_as_written() {
    for (p, r) in [("p", "r"), ("%p", "%r")] {
        let text = format!(
            "HloModule m\nENTRY e {{\n  {p} = f32[2] parameter(0)\n  ROOT {r} = f32[3] negate({p})\n}}\n"
        );
        let msg = Program::parse(&text, "g.hlo").unwrap_err().to_string();
        assert!(msg.contains(&format!(" {r} in e")), "{msg}");
        assert!(r.starts_with('%') || !msg.contains('%'), "{msg}");
    }
}
