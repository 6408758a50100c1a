//! State updates happen in place when that is safe, and copies happen exactly when the
//! functional semantics need them.

use statetensor_core::DType;
use statetensor_hlo::{Program, Tensor};
use std::sync::Arc;

const ROWS: usize = 4096;
const COLS: usize = 256; // 4 MiB of f32 state

fn dus_model(extra_reader_after: bool, return_old: bool) -> String {
    let reader = if extra_reader_after {
        // text order puts the old-state reader after the update: the scheduler must hoist it
        "  u = f32[4096,256] dynamic-update-slice(s, row, i, z)\n  zero = f32[] constant(0)\n  total = f32[] reduce(s, zero), dimensions={0,1}, to_apply=add\n"
    } else {
        "  u = f32[4096,256] dynamic-update-slice(s, row, i, z)\n  zero = f32[] constant(0)\n  total = f32[] reduce(u, zero), dimensions={0,1}, to_apply=add\n"
    };
    let root = if return_old {
        "  ROOT t = (f32[], f32[4096,256], f32[4096,256]) tuple(total, u, s)\n"
    } else {
        "  ROOT t = (f32[], f32[4096,256]) tuple(total, u)\n"
    };
    format!(
        "HloModule dus, input_output_alias={{ {{1}}: (1, {{}}, may-alias) }}\n\nadd {{\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT c = f32[] add(a, b)\n}}\n\nENTRY e {{\n  x = f32[256] parameter(0)\n  s = f32[4096,256] parameter(1)\n  i = s32[] parameter(2)\n  z = s32[] constant(0)\n  row = f32[1,256] reshape(x)\n{reader}{root}}}\n"
    )
}

fn args(state: Tensor) -> (Arc<Tensor>, Arc<Tensor>, Arc<Tensor>) {
    let x = Tensor::from_le_bytes(DType::F32, &[COLS], &[0, 0, 128, 63].repeat(COLS)).unwrap(); // ones
    let i = Tensor::from_le_bytes(DType::S32, &[], &7i32.to_le_bytes()).unwrap();
    (Arc::new(x), Arc::new(state), Arc::new(i))
}

fn row_sum(t: &Tensor, row: usize) -> f64 {
    t.to_f64_vec()[row * COLS..(row + 1) * COLS].iter().sum()
}

#[test]
fn donated_state_is_updated_in_place() {
    let prog = Program::parse(&dus_model(false, false), "dus.hlo").unwrap();
    let (x, s, i) = args(Tensor::zeros(DType::F32, &[ROWS, COLS]));
    let addr = s.buffer_addr();
    let out = prog.execute(vec![x, s, i]).unwrap();
    assert_eq!(out[1].buffer_addr(), addr, "the state buffer was copied");
    assert_eq!(row_sum(&out[1], 7), COLS as f64);
    assert_eq!(out[0].to_f64_vec(), vec![COLS as f64]);
}

#[test]
fn readers_of_the_old_state_run_before_the_update() {
    let prog = Program::parse(&dus_model(true, false), "dus.hlo").unwrap();
    let (x, s, i) = args(Tensor::zeros(DType::F32, &[ROWS, COLS]));
    let addr = s.buffer_addr();
    let out = prog.execute(vec![x, s, i]).unwrap();
    assert_eq!(
        out[0].to_f64_vec(),
        vec![0.0],
        "the reader saw the new state"
    );
    assert_eq!(
        out[1].buffer_addr(),
        addr,
        "the update was not done in place"
    );
    assert_eq!(row_sum(&out[1], 7), COLS as f64);
}

#[test]
fn old_value_still_needed_forces_a_copy() {
    let prog = Program::parse(&dus_model(false, true), "dus.hlo").unwrap();
    let (x, s, i) = args(Tensor::zeros(DType::F32, &[ROWS, COLS]));
    let out = prog.execute(vec![x, s, i]).unwrap();
    assert_ne!(out[1].buffer_addr(), out[2].buffer_addr());
    assert_eq!(row_sum(&out[1], 7), COLS as f64);
    assert_eq!(row_sum(&out[2], 7), 0.0, "the old state was overwritten");
}

#[test]
fn a_buffer_the_caller_keeps_is_never_modified() {
    let prog = Program::parse(&dus_model(false, false), "dus.hlo").unwrap();
    let (x, s, i) = args(Tensor::zeros(DType::F32, &[ROWS, COLS]));
    let kept = s.clone();
    let out = prog.execute(vec![x, s, i]).unwrap();
    assert_ne!(out[1].buffer_addr(), kept.buffer_addr());
    assert_eq!(row_sum(&kept, 7), 0.0);
    assert_eq!(row_sum(&out[1], 7), COLS as f64);
}

#[test]
fn swapped_states_move_without_copies() {
    let text = "HloModule swap, input_output_alias={ {0}: (0, {}, may-alias), {1}: (1, {}, may-alias) }\nENTRY e {\n  a = f32[1024] parameter(0)\n  b = f32[1024] parameter(1)\n  s = f32[1024] add(a, b)\n  ROOT t = (f32[1024], f32[1024], f32[1024]) tuple(b, a, s)\n}\n";
    let prog = Program::parse(text, "swap.hlo").unwrap();
    let a = Arc::new(Tensor::zeros(DType::F32, &[1024]));
    let mut b = Tensor::zeros(DType::F32, &[1024]);
    b.write_bytes(0, &2f32.to_le_bytes()).unwrap();
    let b = Arc::new(b);
    let (aa, ba) = (a.buffer_addr(), b.buffer_addr());
    let out = prog.execute(vec![a, b]).unwrap();
    assert_eq!(out[0].buffer_addr(), ba);
    assert_eq!(out[1].buffer_addr(), aa);
    assert_eq!(out[0].to_f64_vec()[0], 2.0);
    assert_eq!(out[1].to_f64_vec()[0], 0.0);
    assert_eq!(out[2].to_f64_vec()[0], 2.0);
}

#[test]
fn scatter_into_a_donated_state_is_in_place() {
    let text = "HloModule sc\nset {\n  a = f32[] parameter(0)\n  ROOT b = f32[] parameter(1)\n}\nENTRY e {\n  s = f32[1000,8] parameter(0)\n  i = s32[2,1] parameter(1)\n  u = f32[2,8] parameter(2)\n  ROOT r = f32[1000,8] scatter(s, i, u), update_window_dims={1}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=set\n}\n";
    let prog = Program::parse(text, "sc.hlo").unwrap();
    let s = Arc::new(Tensor::zeros(DType::F32, &[1000, 8]));
    let addr = s.buffer_addr();
    let i =
        Arc::new(Tensor::from_le_bytes(DType::S32, &[2, 1], &[3, 0, 0, 0, 9, 0, 0, 0]).unwrap());
    let u =
        Arc::new(Tensor::from_le_bytes(DType::F32, &[2, 8], &[0, 0, 128, 63].repeat(16)).unwrap());
    let out = prog.execute(vec![s, i, u]).unwrap();
    assert_eq!(out[0].buffer_addr(), addr);
    let v = out[0].to_f64_vec();
    assert_eq!(v[3 * 8..4 * 8].iter().sum::<f64>(), 8.0);
    assert_eq!(v[9 * 8], 1.0);
    assert_eq!(v.iter().sum::<f64>(), 16.0);
}
