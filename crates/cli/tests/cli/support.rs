//! What every CLI test uses: the binary, the repository root, scratch directories, npy
//! files, the emulator and comparisons with JAX's outputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_statetensor"))
}

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn run(args: &[&str]) -> Output {
    bin()
        .current_dir(root())
        .args(args)
        .output()
        .expect("the binary runs")
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("statetensor-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Reads an f32 .npy the CLI wrote.
pub(crate) fn npy_f32(path: &Path) -> Vec<f32> {
    let t = statetensor_hlo::npy::read_file(path).unwrap();
    assert_eq!(
        t.dtype(),
        statetensor_core::DType::F32,
        "{}",
        path.display()
    );
    t.to_f64_vec().into_iter().map(|v| v as f32).collect()
}

pub(crate) fn write_npy_f32(path: &Path, dims: &[usize], v: &[f32]) {
    let values: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    let t =
        statetensor_hlo::Tensor::from_f64s(statetensor_core::DType::F32, dims, &values).unwrap();
    statetensor_hlo::npy::write_file(path, &t).unwrap();
}

/// `libnrt_emu.so` (built by the dev-dependency on the emulator).
pub(crate) fn emulator() -> PathBuf {
    nrt_emu::hook::built_library().expect("libnrt_emu.so was not built")
}

/// `got` holds JAX's `want` within the f32 fixtures' tolerance (rtol 2e-5, atol 1e-6).
pub(crate) fn assert_close_to_jax(got: &Path, want: &Path) {
    let g = statetensor_hlo::npy::read_file(got).unwrap().to_f64_vec();
    let w = statetensor_hlo::npy::read_file(want).unwrap().to_f64_vec();
    assert_eq!(g.len(), w.len(), "{}", got.display());
    for (a, b) in g.iter().zip(&w) {
        assert!(
            (a - b).abs() <= 1e-6 + 2e-5 * b.abs(),
            "{}: {g:?} vs {}: {w:?}",
            got.display(),
            want.display()
        );
    }
}

/// Runs `args` on `backend` (the driver over the emulator for "nrt").
pub(crate) fn run_on(backend: &str, args: &[&str]) -> Output {
    bin()
        .current_dir(root())
        .args(args)
        .args(["--backend", backend])
        .env("STATETENSOR_LIBNRT", emulator())
        .output()
        .expect("the binary runs")
}

/// A copy of fixture `name` holding only `model` (model.hlo or model.pb) and its values.
pub(crate) fn bundle_with(name: &str, model: &str, tag: &str) -> PathBuf {
    let src = root().join("conformance/fixtures").join(name);
    let dst = tmpdir(&format!("{name}-{tag}"));
    for e in std::fs::read_dir(&src).unwrap() {
        let f = e.unwrap().file_name().into_string().unwrap();
        if f == model || f.starts_with("arg") {
            std::fs::copy(src.join(&f), dst.join(&f)).unwrap();
        }
    }
    dst
}
