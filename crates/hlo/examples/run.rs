//! Runs a bundled model for a few steps, carrying its state tensors, and prints what each
//! step returns.
//!
//! `cargo run --release -p statetensor-hlo --example run -- examples/mlp_cache 2`
//!
//! The directory holds `model.hlo` and `arg{P}.npy` for every parameter; state parameters
//! (the header's `input_output_alias`) are fed back from their aliased outputs each step.

use statetensor_hlo::{npy, Program, Tensor};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let dir = PathBuf::from(argv.next().unwrap_or_else(|| "examples/mlp_cache".into()));
    let steps: usize = match argv.next().map(|s| s.parse()) {
        None => 2,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("run: the step count must be a whole number");
            return ExitCode::from(2);
        }
    };
    match run(&dir, steps) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("run: {e}");
            ExitCode::from(if e.kind().is_user_error() { 2 } else { 1 })
        }
    }
}

fn run(dir: &std::path::Path, steps: usize) -> statetensor_core::Result<()> {
    let path = dir.join("model.hlo");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| statetensor_core::Error::io("read", path.display().to_string(), e))?;
    let prog = Program::parse(&text, &path.display().to_string())?;
    let aliases = prog.header_aliases().clone();
    println!(
        "model {} ({} parameters, {} outputs)",
        prog.name(),
        prog.params().len(),
        prog.outputs().len()
    );
    for (p, spec) in prog.params().iter().enumerate() {
        let role = aliases.output_for(p).map_or("input".to_string(), |o| {
            format!("state, updated from output {o}")
        });
        println!("  parameter {p} {spec} ({role})");
    }
    let mut args: Vec<Arc<Tensor>> = (0..prog.params().len())
        .map(|p| npy::read_file(&dir.join(format!("arg{p}.npy"))).map(Arc::new))
        .collect::<statetensor_core::Result<_>>()?;
    for s in 0..steps {
        let outs = prog.execute(args.clone())?;
        println!("step {}:", s + 1);
        for (k, o) in outs.iter().enumerate() {
            let vals = o.to_f64_vec();
            let shown: Vec<String> = vals.iter().take(8).map(|v| format!("{v:.4}")).collect();
            let more = if vals.len() > 8 {
                format!(", ... ({} values)", vals.len())
            } else {
                String::new()
            };
            let role = aliases.param_for(k).map_or(String::new(), |p| {
                format!(" -> state {}", prog.params()[p].name)
            });
            println!(
                "  output {k}{role}: {}{:?} [{}{more}]",
                o.dtype(),
                o.dims(),
                shown.join(", ")
            );
        }
        for pair in aliases.pairs() {
            args[pair.param] = outs[pair.output].clone();
        }
    }
    Ok(())
}
