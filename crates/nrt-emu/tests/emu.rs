//! The emulator's C ABI, checked from C: a program compiled with the system C compiler
//! drives libnrt_emu.so the way the runtime developer guide's sample does.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/<profile>/`, where cargo put libnrt_emu.so next to this test's deps directory.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

#[test]
fn c_program_runs_a_state_in_place() {
    let dir = target_dir();
    let lib = dir.join("libnrt_emu.so");
    assert!(lib.exists(), "{} was not built", lib.display());
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/state_in_place.c");
    let exe = dir.join("state_in_place_c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Werror", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg(format!("-L{}", dir.display()))
        .arg("-lnrt_emu")
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        .output()
        .unwrap_or_else(|e| panic!("the C compiler '{cc}' must be installed: {e}"));
    assert!(
        out.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../hlo/tests/fixtures/mlp_cache/model.hlo");
    let run = Command::new(&exe)
        .arg(&model)
        .env_remove("STATETENSOR_EMU_FAULT")
        .output()
        .expect("the C program runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "C program failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("step 2: y = 2.25 2.25 2.25, cache = 2 2 2"),
        "{stdout}"
    );
    assert!(stdout.ends_with("ok\n"), "{stdout}");
}
