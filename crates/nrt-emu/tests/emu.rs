//! The emulator's C ABI, checked from C: a program compiled with the system C compiler
//! drives libnrt_emu.so the way the runtime developer guide's sample does.

#![allow(unsafe_code)] // it drives the C ABI directly, as a C host would

use std::path::Path;
use std::process::Command;

/// Compiles `tests/c/{name}.c` against the built `libnrt_emu.so`; returns the program.
fn compile_c(name: &str, extra: &[&str]) -> std::path::PathBuf {
    let lib = nrt_emu::hook::built_library().expect("libnrt_emu.so was not built");
    let dir = lib.parent().expect("a directory").to_path_buf();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/c/{name}.c"));
    let exe = dir.join(format!("{name}_c"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg(format!("-L{}", dir.display()))
        .arg("-lnrt_emu")
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("the C compiler '{cc}' must be installed: {e}"));
    assert!(
        out.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Runs a compiled C program on `arg`; returns its stdout, asserting it succeeded.
fn run_c(exe: &Path, arg: &Path) -> String {
    let run = Command::new(exe)
        .arg(arg)
        .env_remove("STATETENSOR_EMU_FAULT")
        .env_remove("STATETENSOR_EMU_CORES")
        .output()
        .expect("the C program runs");
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        run.status.success(),
        "C program failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.ends_with("ok\n"), "{stdout}");
    stdout
}

#[test]
fn c_program_runs_a_state_in_place() {
    let exe = compile_c("state_in_place", &[]);
    let model = statetensor_conformance::fixture_path("mlp_cache").join("model.hlo");
    let stdout = run_c(&exe, &model);
    assert!(
        stdout.contains("step 2: y = 2.25 2.25 2.25, cache = 2 2 2"),
        "{stdout}"
    );
}

/// Four ranks loaded with `nrt_load_collectives`, each executing on its own thread, meet
/// at their all-reduce step after step.
#[test]
fn c_program_runs_four_ranks_meeting_at_an_all_reduce() {
    let exe = compile_c("collectives", &["-pthread"]);
    let model = exe.with_extension("hlo");
    std::fs::write(
        &model,
        "HloModule all_cores_sum, entry_computation_layout={(f32[4]{0})->f32[4]{0}}\n\nadd {\n  a = f32[] parameter(0)\n  b = f32[] parameter(1)\n  ROOT s = f32[] add(a, b)\n}\n\nENTRY main {\n  x = f32[4]{0} parameter(0)\n  ROOT r = f32[4]{0} all-reduce(x), replica_groups={}, to_apply=add\n}\n",
    )
    .unwrap();
    let stdout = run_c(&exe, &model);
    assert!(
        stdout.contains("step 2: every rank has the sum"),
        "{stdout}"
    );
}

/// Binding one tensor as the input and output of a pair the model does not alias is the
/// hazard hardware shows: the output is written before the input is read. The emulator
/// reproduces it (and warns); binding an aliased pair is safe.
#[test]
fn unaliased_shared_tensor_is_a_hazard() {
    use nrt_emu::emu::*;
    use std::ffi::CString;
    use std::os::raw::c_void;
    let model_text =
        std::fs::read(statetensor_conformance::fixture_path("swap").join("model.hlo")).unwrap();
    // swap: outputs (b, a, a*2+b); a -> output 0, b -> output 1 are aliased, output 2 is not
    let run = |bind_a_to_output2: bool| -> Vec<f32> {
        // SAFETY: every pointer passed below is a live local or a handle the emulator returned.
        unsafe {
            assert_eq!(nrt_init(1, std::ptr::null(), std::ptr::null()), 0);
            let mut m = std::ptr::null_mut();
            assert_eq!(
                nrt_load(
                    model_text.as_ptr() as *const c_void,
                    model_text.len(),
                    0,
                    -1,
                    &mut m
                ),
                0
            );
            let (mut ins, mut outs) = (std::ptr::null_mut(), std::ptr::null_mut());
            assert_eq!(nrt_allocate_tensor_set(&mut ins), 0);
            assert_eq!(nrt_allocate_tensor_set(&mut outs), 0);
            let alloc = |v: f32| {
                let mut t = std::ptr::null_mut();
                assert_eq!(nrt_tensor_allocate(0, 0, 24, std::ptr::null(), &mut t), 0);
                let data: Vec<u8> = [v; 6].iter().flat_map(|x| x.to_le_bytes()).collect();
                assert_eq!(
                    nrt_tensor_write(t, data.as_ptr() as *const c_void, 0, 24),
                    0
                );
                t
            };
            let (a, b, o2) = (alloc(1.0), alloc(2.0), alloc(0.0));
            let add = |set: *mut c_void, name: &str, t: *mut c_void| {
                let n = CString::new(name).unwrap();
                assert_eq!(nrt_add_tensor_to_tensor_set(set, n.as_ptr(), t), 0);
            };
            add(ins, "input0", a);
            add(ins, "input1", b);
            add(outs, "output0", a);
            add(outs, "output1", b);
            add(outs, "output2", if bind_a_to_output2 { a } else { o2 });
            assert_eq!(nrt_execute(m, ins, outs), 0);
            let mut got = [0u8; 24];
            let target = if bind_a_to_output2 { a } else { o2 };
            assert_eq!(
                nrt_tensor_read(target, got.as_mut_ptr() as *mut c_void, 0, 24),
                0
            );
            nrt_destroy_tensor_set(&mut ins);
            nrt_destroy_tensor_set(&mut outs);
            for mut t in [a, b, o2] {
                nrt_tensor_free(&mut t);
            }
            assert_eq!(nrt_unload(m), 0);
            got.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }
    };
    // safe binding: output 2 = a*2 + b from the old values = 4
    assert_eq!(run(false), vec![4.0; 6]);
    // hazard: output 2 lands in a's buffer before a is read, so the result is not 4
    assert_ne!(run(true), vec![4.0; 6]);
}
