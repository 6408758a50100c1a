//! HLO text as XLA's parser reads it: free-form whitespace (the fixtures reflowed over many
//! lines are in fixtures.rs), computation attributes, and what is still refused.

use statetensor_core::{DType, ErrorKind};
use statetensor_hlo::{Program, Tensor};
use std::sync::Arc;

fn f32_tensor(dims: &[usize], v: &[f32]) -> Arc<Tensor> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Arc::new(Tensor::from_le_bytes(DType::F32, dims, &bytes).unwrap())
}

fn run_f32(text: &str, args: &[(&[usize], &[f32])]) -> Vec<f32> {
    let prog = Program::parse(text, "g.hlo").unwrap_or_else(|e| panic!("{e}\n{text}"));
    let args = args.iter().map(|(dims, v)| f32_tensor(dims, v)).collect();
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

/// XLA's parser takes a module without its `HloModule` line: the computations alone, the
/// entry being the one marked ENTRY or else the last. Such text also loads from a file's
/// bytes (it is told from a serialized proto by its characters).
#[test]
fn computations_without_the_module_header() {
    let marked = "add {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}\n\nENTRY e {\n  p = f32[3] parameter(0)\n  z = f32[] constant(0)\n  ROOT r = f32[] reduce(p, z), dimensions={0}, to_apply=add\n}\n";
    assert_eq!(run_f32(marked, &[(&[3], &[1., 2., 4.])]), [7.]);
    let last_is_entry = marked.replace("ENTRY e", "%e (p: f32[3]) -> f32[]");
    assert_eq!(run_f32(&last_is_entry, &[(&[3], &[1., 2., 4.])]), [7.]);
    let prog = Program::from_bytes(marked.as_bytes(), "dir/no_header.hlo").unwrap();
    assert_eq!(prog.name(), "no_header");
    assert_eq!(prog.params().len(), 1);
}

/// One instruction is a module too: its typed operands become parameters in the order they
/// first appear; an operand without its type cannot be a parameter and is named.
#[test]
fn a_single_instruction_is_a_module() {
    let text = "%r = f32[2]{0} subtract(f32[2]{0} %x, f32[2]{0} %y)";
    assert_eq!(
        run_f32(text, &[(&[2], &[5., 7.]), (&[2], &[1., 2.])]),
        [4., 5.]
    );
    let twice = "ROOT m = f32[2] multiply(f32[2] x, f32[2] x)";
    assert_eq!(run_f32(twice, &[(&[2], &[3., -2.])]), [9., 4.]);
    let e = Program::parse("r = f32[2] add(f32[2] x, y)", "g.hlo").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Parse);
    let msg = e.to_string();
    assert!(
        msg.contains("g.hlo:1:26") && msg.contains("operand 'y' needs its type"),
        "{msg}"
    );
    let e = Program::parse("r = f32[2] negate(f32[2] x) junk", "g.hlo").unwrap_err();
    assert!(e.to_string().contains("end of input"), "{e}");
}

/// An attribute the opcode does not take is refused where it stands, naming what the opcode
/// takes (XLA refuses it too: a misspelt `to_aply=` must not be ignored); so is an attribute
/// given twice. The attributes every instruction may carry are taken everywhere.
#[test]
fn unknown_and_repeated_attributes_are_refused() {
    let reduce = |attrs: &str| {
        format!("HloModule m\nadd {{\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}}\nENTRY e {{\n  p = f32[3] parameter(0)\n  z = f32[] constant(0)\n  ROOT r = f32[] reduce(p, z), {attrs}\n}}\n")
    };
    let ok = reduce("dimensions={0}, to_apply=add, metadata={op_name=\"x\"}, sharding={replicated}, frontend_attributes={}");
    assert_eq!(run_f32(&ok, &[(&[3], &[1., 2., 4.])]), [7.]);
    let e = Program::parse(&reduce("dimensions={0}, to_aply=add"), "g.hlo").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Parse);
    let msg = e.to_string();
    assert!(
        msg.contains("g.hlo:10:48")
            && msg.contains("reduce does not take attribute 'to_aply'")
            && msg.contains("dimensions")
            && msg.contains("to_apply"),
        "{msg}"
    );
    let e = Program::parse(
        &reduce("dimensions={0}, to_apply=add, dimensions={0}"),
        "g.hlo",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("attribute 'dimensions' is given twice"),
        "{e}"
    );
    let e = Program::parse(
        "HloModule m\nENTRY e {\n  p = f32[2] parameter(0)\n  ROOT n = f32[2] negate(p), dimensions={0}\n}\n",
        "g.hlo",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("negate does not take attribute 'dimensions'"),
        "{e}"
    );
}

/// Forms XLA accepts that were refused: `broadcast` of a scalar without `dimensions=`, and
/// `add`/`multiply` on pred (XLA:CPU computes them as or and and); subtract on pred stays
/// refused, as XLA refuses it.
#[test]
fn scalar_broadcast_and_pred_arithmetic() {
    let text =
        "HloModule m\nENTRY e {\n  s = f32[] parameter(0)\n  ROOT b = f32[2,3] broadcast(s)\n}\n";
    assert_eq!(run_f32(text, &[(&[], &[2.5])]), [2.5; 6]);
    let pred = |op: &str| {
        format!("HloModule m\nENTRY e {{\n  a = pred[4] parameter(0)\n  b = pred[4] parameter(1)\n  ROOT r = pred[4] {op}(a, b)\n}}\n")
    };
    let a = Arc::new(Tensor::from_le_bytes(DType::Pred, &[4], &[0, 0, 1, 1]).unwrap());
    let b = Arc::new(Tensor::from_le_bytes(DType::Pred, &[4], &[0, 1, 0, 1]).unwrap());
    for (op, want) in [("add", [0., 1., 1., 1.]), ("multiply", [0., 0., 0., 1.])] {
        let prog = Program::parse(&pred(op), "g.hlo").unwrap();
        let out = prog.execute(vec![a.clone(), b.clone()]).unwrap();
        assert_eq!(out[0].to_f64_vec(), want, "{op}");
    }
    let e = Program::parse(&pred("subtract"), "g.hlo").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidModel, "{e}");
}

/// A layout that is not an order of the array's dimensions is refused where it stands (it
/// decides how a `bitcast` between layouts reads the bytes).
#[test]
fn layouts_must_order_the_dimensions() {
    for layout in ["{0,0}", "{2,0}", "{0}", "{1,0,2}"] {
        let text = format!(
            "HloModule m\nENTRY e {{\n  p = f32[2,3]{layout} parameter(0)\n  ROOT n = f32[2,3] negate(p)\n}}\n"
        );
        let e = Program::parse(&text, "g.hlo").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Parse, "{layout}: {e}");
        assert!(
            e.to_string().contains("g.hlo:3:15")
                && e.to_string().contains("not an order of the 2 dimensions"),
            "{layout}: {e}"
        );
    }
}

/// A bitcast between layouts, as XLA's optimised modules write it, reinterprets the bytes
/// in layout order: here the [2,3] row-major bytes read as a [3,2] in column-major order
/// are the transpose.
#[test]
fn a_bitcast_between_layouts_reads_bytes_in_layout_order() {
    let text = "HloModule m\nENTRY e {\n  p = f32[2,3]{1,0} parameter(0)\n  ROOT b = f32[3,2]{0,1} bitcast(p)\n}\n";
    assert_eq!(
        run_f32(text, &[(&[2, 3], &[1., 2., 3., 4., 5., 6.])]),
        [1., 4., 2., 5., 3., 6.]
    );
}

/// An operand may be an instruction written inline (`tuple(x, (f32[], s32[]) tuple(a, b))`,
/// as XLA's parser takes it), with its own attributes and operands, nested, followed by more
/// operands or by the outer instruction's attributes.
#[test]
fn instructions_written_as_operands() {
    let text = "HloModule m\nENTRY e {\n  x = f32[3] parameter(0)\n  c = f32[] constant(2)\n  ROOT r = f32[3] add(f32[3] multiply(x, f32[3] broadcast(c), dimensions={}), x)\n}\n";
    assert_eq!(run_f32(text, &[(&[3], &[1., 2., 3.])]), [3., 6., 9.]);
    let text = "HloModule m\nadd {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}\nENTRY e {\n  x = f32[2,2] parameter(0)\n  ROOT r = f32[2] reduce(f32[2,2] negate(x), f32[] constant(0)), dimensions={1}, to_apply=add\n}\n";
    assert_eq!(run_f32(text, &[(&[2, 2], &[1., 2., 3., 4.])]), [-3., -7.]);
    let text = "HloModule m\nENTRY e {\n  x = f32[2] parameter(0)\n  ROOT t = (f32[2], (f32[2], f32[2])) tuple(x, (f32[2], f32[2]) tuple(f32[2] negate(x), x))\n}\n";
    let prog = Program::parse(text, "g.hlo").unwrap();
    assert_eq!(prog.outputs().len(), 3);
    // an inline operand still needs its opcode's parentheses
    let bad = "HloModule m\nENTRY e {\n  x = f32[2] parameter(0)\n  ROOT t = f32[2] add(f32[2] negate, x)\n}\n";
    let e = Program::parse(bad, "g.hlo").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Parse, "{e}");
}

/// Inline operands nested without end are a parse error, not a stack overflow.
#[test]
fn deeply_nested_inline_operands_are_refused() {
    let mut expr = "x".to_string();
    for _ in 0..10_000 {
        expr = format!("f32[2] negate({expr})");
    }
    let text = format!("HloModule m\nENTRY e {{\n  x = f32[2] parameter(0)\n  ROOT r = f32[2] negate({expr})\n}}\n");
    let e = Program::parse(&text, "g.hlo").unwrap_err();
    assert!(e.to_string().contains("nest deeper than"), "{e}");
}

/// Result types XLA's parser infers may be left out: elementwise ops, tuple,
/// get-tuple-element, compare, select, concatenate, pad, call and map, and instructions
/// written inline as operands without their type; what cannot be inferred is named.
#[test]
fn result_types_left_out_are_inferred() {
    let text = "HloModule m\nneg {\n  a = f32[] parameter(0)\n  ROOT n = negate(a)\n}\ntwice {\n  v = f32[2] parameter(0)\n  ROOT d = add(v, v)\n}\nENTRY e {\n  x = f32[2] parameter(0)\n  y = f32[2] parameter(1)\n  t = tuple(x, y)\n  a = get-tuple-element(t), index=1\n  s = add(x, a)\n  lt = compare(x, a), direction=LT\n  m = select(lt, s, x)\n  c = call(m), to_apply=twice\n  n = map(c), dimensions={0}, to_apply=neg\n  j = concatenate(n, x), dimensions={0}\n  z = f32[] constant(0)\n  ROOT p = pad(j, z), padding=1_2\n}\n";
    let prog = Program::parse(text, "g.hlo").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(prog.outputs()[0].type_string(), "f32[7]");
    // x=[1,5], y=[2,1]: s=[3,6]; lt=[T,F]; m=[3,5]; c=[6,10]; n=[-6,-10]
    assert_eq!(
        run_f32(text, &[(&[2], &[1., 5.]), (&[2], &[2., 1.])]),
        [0., -6., -10., 1., 5., 0., 0.]
    );
    let text = "HloModule m\nENTRY e {\n  a = f32[3] parameter(0)\n  b = f32[3] parameter(1)\n  ROOT r = f32[3] negate(add(add(a, b), b))\n}\n";
    assert_eq!(
        run_f32(text, &[(&[3], &[1., 2., 3.]), (&[3], &[1., 1., 1.])]),
        [-3., -4., -5.]
    );
    // a conversion's type is never inferred; a padding that overflows is refused, not a
    // panic, written with its type or without
    for (body, what) in [
        (
            "z = f32[] constant(0)\n  ROOT r = f32[4] pad(a, z), padding=9223372036854775807_1",
            "is invalid for dimension 0",
        ),
        ("ROOT r = stochastic-convert(a, a)", "'stochastic-convert'"),
        (
            "z = f32[] constant(0)\n  ROOT r = pad(a, z), padding=9223372036854775807_1",
            "does not fit",
        ),
    ] {
        let text = format!("HloModule m\nENTRY e {{\n  a = f32[4] parameter(0)\n  {body}\n}}\n");
        let e = Program::parse(&text, "g.hlo").unwrap_err();
        assert!(e.to_string().contains(what), "{e}");
    }
    // a type only the source can give is asked for, naming the instruction and opcode
    let text = "HloModule m\nENTRY e {\n  a = f32[4] parameter(0)\n  ROOT r = reshape(a)\n}\n";
    let e = Program::parse(text, "g.hlo").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("g.hlo:4:3")
            && msg.contains("'r' has no result type")
            && msg.contains("'reshape'"),
        "{msg}"
    );
}

/// The other result types XLA's parser infers (transpose, dot, reduce, reduce-window,
/// reverse, sort, while, conditional, scatter, get-dimension-size) are inferred by its
/// rules: the module with those types removed has the same signature and outputs.
#[test]
fn inferred_types_equal_the_types_written() {
    let typed = "HloModule m
add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
lt {
  p0 = f32[] parameter(0)
  p1 = f32[] parameter(1)
  ROOT c = pred[] compare(p0, p1), direction=LT
}
cond {
  st = (s32[], f32[2,3]) parameter(0)
  i = s32[] get-tuple-element(st), index=0
  n = s32[] constant(3)
  ROOT c = pred[] compare(i, n), direction=LT
}
body {
  st = (s32[], f32[2,3]) parameter(0)
  i = s32[] get-tuple-element(st), index=0
  v = f32[2,3] get-tuple-element(st), index=1
  one = s32[] constant(1)
  j = s32[] add(i, one)
  w = f32[2,3] add(v, v)
  ROOT r = (s32[], f32[2,3]) tuple(j, w)
}
yes {
  y = f32[3,2] parameter(0)
  ROOT n = f32[3,2] negate(y)
}
no {
  y = f32[3,2] parameter(0)
  ROOT n = f32[3,2] copy(y)
}
ENTRY e {
  x = f32[2,3] parameter(0)
  k = pred[] parameter(1)
  u = f32[1,3] parameter(2)
  t = f32[3,2] transpose(x), dimensions={1,0}
  d = f32[2,2] dot(x, t), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  bd = f32[2,3,3] dot(t, t), lhs_batch_dims={1}, rhs_batch_dims={1}, lhs_contracting_dims={}, rhs_contracting_dims={}
  z = f32[] constant(0)
  r = f32[2] reduce(x, z), dimensions={1}, to_apply=add
  rw = f32[2,2] reduce-window(x, z), window={size=1x2}, to_apply=add
  rv = f32[2,3] reverse(x), dimensions={1}
  s = f32[2,3] sort(x), dimensions={1}, to_apply=lt
  i0 = s32[] constant(0)
  init = (s32[], f32[2,3]) tuple(i0, x)
  w = (s32[], f32[2,3]) while(init), condition=cond, body=body
  c = f32[3,2] conditional(k, t, t), true_computation=yes, false_computation=no
  sz = s32[] get-dimension-size(x), dimensions={1}
  ix = s32[1,1] constant({{1}})
  sc = f32[2,3] scatter(x, ix, u), update_window_dims={1}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=add
  ROOT out = (f32[3,2], f32[2,2], f32[2,3,3], f32[2], f32[2,2], f32[2,3], f32[2,3], (s32[], f32[2,3]), f32[3,2], s32[], f32[2,3]) tuple(t, d, bd, r, rw, rv, s, w, c, sz, sc)
}
";
    let inferable = [
        "transpose",
        "dot",
        "reduce",
        "reduce-window",
        "reverse",
        "sort",
        "while",
        "conditional",
        "get-dimension-size",
        "scatter",
        "tuple",
    ];
    let untyped: String = typed
        .lines()
        .map(|line| {
            let cut = line.split_once(" = ").and_then(|(name, rhs)| {
                let at = inferable
                    .iter()
                    .find_map(|op| rhs.find(&format!(" {op}(")))?;
                Some(format!("{name} = {}\n", &rhs[at + 1..]))
            });
            cut.unwrap_or(format!("{line}\n"))
        })
        .collect();
    assert_eq!(untyped.matches(" = transpose(").count(), 1, "{untyped}");
    assert_eq!(untyped.matches(" = while(").count(), 1, "{untyped}");
    assert!(!untyped.contains("(s32[], f32[2,3]) tuple"), "{untyped}");
    let a = Program::parse(typed, "typed.hlo").unwrap_or_else(|e| panic!("{e}"));
    let b = Program::parse(&untyped, "untyped.hlo").unwrap_or_else(|e| panic!("{e}\n{untyped}"));
    assert_eq!(a.outputs(), b.outputs());
    let x: Vec<f32> = vec![3., -1., 2., 0.5, 4., -2.];
    let args = vec![
        f32_tensor(&[2, 3], &x),
        Arc::new(Tensor::from_le_bytes(DType::Pred, &[], &[1]).unwrap()),
        f32_tensor(&[1, 3], &[10., 20., 30.]),
    ];
    let (oa, ob) = (a.execute(args.clone()).unwrap(), b.execute(args).unwrap());
    for (k, (p, q)) in oa.iter().zip(&ob).enumerate() {
        assert_eq!(p.to_le_bytes(), q.to_le_bytes(), "output {k}");
    }
    // windows whose extents overflow, or of size 0, are refused with or without the type
    // written, never a panic; a callee that does not exist is named
    let add = "add {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}\n";
    // (a padding that crops more than the input leaves no window position: an empty result)
    let text = format!("HloModule m\n{add}ENTRY e {{\n  x = f32[3] parameter(0)\n  z = f32[] constant(0)\n  ROOT r = reduce-window(x, z), window={{size=1 pad=-9223372036854775808_0}}, to_apply=add\n}}\n");
    let prog = Program::parse(&text, "g.hlo").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(prog.outputs()[0].type_string(), "f32[0]");
    for window in [
        "size=1 stride=18446744073709551615",
        "size=1 lhs_dilate=4611686018427387904",
        "size=2 rhs_dilate=9223372036854775808",
        "size=1 pad=9000000000000000000_9000000000000000000",
        "size=0",
    ] {
        for ty in ["", "f32[3] "] {
            let text = format!("HloModule m\n{add}ENTRY e {{\n  x = f32[3] parameter(0)\n  z = f32[] constant(0)\n  ROOT r = {ty}reduce-window(x, z), window={{{window}}}, to_apply=add\n}}\n");
            assert!(Program::parse(&text, "g.hlo").is_err(), "{window} {ty}");
        }
    }
    let text = format!("HloModule m\n{add}ENTRY e {{\n  x = f32[3] parameter(0)\n  ROOT r = call(x, x), to_apply=ad\n}}\n");
    let e = Program::parse(&text, "g.hlo").unwrap_err();
    assert!(e.to_string().contains("no computation named 'ad'"), "{e}");
    // a scalar broadcast without dimensions= is a scalar (XLA: the sizes listed, then the
    // operand's dimensions); operands of two element types need the dot's type written
    let text = "HloModule m\nENTRY e {\n  a = f32[] parameter(0)\n  ROOT b = broadcast(a)\n}\n";
    assert_eq!(
        Program::parse(text, "g.hlo").unwrap().outputs()[0].type_string(),
        "f32[]"
    );
    let text = "HloModule m\nENTRY e {\n  a = f32[2] parameter(0)\n  b = bf16[2] parameter(1)\n  ROOT d = dot(a, b), lhs_contracting_dims={0}, rhs_contracting_dims={0}\n}\n";
    let e = Program::parse(text, "g.hlo").unwrap_err();
    assert!(e.to_string().contains("write the result type"), "{e}");
}

/// An operand written with an element type statetensor does not compute in is refused
/// for its type, not as a syntax error.
#[test]
fn an_unsupported_operand_type_is_named() {
    let text = "HloModule m\nENTRY e {\n  x = f32[2] parameter(0)\n  ROOT r = f32[2] real(c64[2] convert(x))\n}\n";
    let e = Program::parse(text, "g.hlo").unwrap_err();
    assert!(
        e.to_string().contains("g.hlo:4:24")
            && e.to_string().contains("unsupported element type 'c64'"),
        "{e}"
    );
}

/// `HloModule name:` (XLA's lexer takes the colon with the name), attributes after a
/// computation's closing brace, and a map's `dimensions`, which XLA's parser does not use
/// (a map maps every dimension), are accepted.
#[test]
fn other_forms_xla_accepts() {
    let text = "HloModule no_root:\nregion {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT r = f32[] add(a, b)\n}, execution_thread=\"parallel_thread\"\nENTRY e {\n  p = f32[2,2] parameter(0)\n  q = f32[2,2] map(p, p), dimensions={}, to_apply=region\n  z = f32[] constant(0)\n  r = f32[] reduce(q, z), dimensions={0,1}, to_apply=region\n}\n";
    // no ROOT: the last instruction is the root
    assert_eq!(run_f32(text, &[(&[2, 2], &[1., 2., 3., 4.])]), [20.]);
    // a computation written inline as an attribute value
    let text = "HloModule m\nENTRY e {\n  a = f32[2] parameter(0)\n  b = f32[2] parameter(1)\n  ROOT c = f32[2] call(a, b), to_apply={\n    x = f32[2] parameter(0)\n    y = f32[2] parameter(1)\n    ROOT s = subtract(x, y)\n  }\n}\n";
    assert_eq!(
        run_f32(text, &[(&[2], &[5., 1.]), (&[2], &[2., 3.])]),
        [3., -2.]
    );
    // two computations each with an instruction `c` holding one: named apart
    let text = "HloModule m\nother {\n  a = f32[2] parameter(0)\n  ROOT c = f32[2] call(a), to_apply={\n    x = f32[2] parameter(0)\n    ROOT n = negate(x)\n  }\n}\nENTRY e {\n  a = f32[2] parameter(0)\n  d = f32[2] call(a), to_apply=other\n  ROOT c = f32[2] call(d), to_apply={\n    x = f32[2] parameter(0)\n    ROOT s = add(x, x)\n  }\n}\n";
    assert_eq!(run_f32(text, &[(&[2], &[5., 1.])]), [-10., -2.]);
    // XLA's buffer type b(...) and custom-call's literal=TYPE VALUE parse (the custom-calls
    // themselves are backend kernels, refused as unsupported, not as bad text)
    for text in [
        "HloModule m\nENTRY e {\n  p = f32[4] parameter(0)\n  ROOT a = b(f32[4]) custom-call(p), custom_call_target=\"Pin\"\n}\n",
        "HloModule m\nENTRY e {\n  ROOT a = s32[] custom-call(), custom_call_target=\"foo\", literal=s32[] 1\n}\n",
    ] {
        let e = Program::parse(text, "g.hlo").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    }
}

/// XLA's legacy dynamic-slice and dynamic-update-slice take their start indices as one
/// vector operand (XLA's parser still accepts it); clamped as the scalar form is.
#[test]
fn legacy_start_index_vectors() {
    let text = "HloModule m\nENTRY e {\n  x = f32[2,3] parameter(0)\n  i = s32[2] constant({1, 5})\n  u = f32[1,2] constant({{7, 8}})\n  d = f32[2,3] dynamic-update-slice(x, u, i)\n  ROOT s = f32[1,2] dynamic-slice(d, i), dynamic_slice_sizes={1,2}\n}\n";
    // the column start 5 clamps to 1 in both
    assert_eq!(
        run_f32(text, &[(&[2, 3], &[0., 1., 2., 3., 4., 5.])]),
        [7., 8.]
    );
    let bad = "HloModule m\nENTRY e {\n  x = f32[2,3] parameter(0)\n  i = s32[3] constant({1, 5, 0})\n  ROOT s = f32[1,2] dynamic-slice(x, i), dynamic_slice_sizes={1,2}\n}\n";
    let e = Program::parse(bad, "g.hlo").unwrap_err();
    assert!(
        e.to_string().contains("takes 2 start index operands"),
        "{e}"
    );
}
