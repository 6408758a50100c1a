//! `statetensor`: run, inspect and measure stateful Neuron models (the contract is in the README and docs/architecture.md).
//!
//! Exit codes: 0 success; 2 bad usage or bad input (one message on stderr naming the
//! parameter, file or line and what was expected); 1 any other failure. Never a panic.

mod bench;
mod calibrate;
mod cores;
mod inspect;
mod model_args;
mod output;
mod plot;
mod probe;
mod progress;
mod run;
mod sweep;
mod values;

use statetensor_open::report;

use clap::{Parser, Subcommand};
use statetensor_core::{Error, ErrorKind};
use std::process::ExitCode;

/// Develop, test and measure state tensors for AWS Neuron without a Neuron machine.
#[derive(Parser, Debug)]
#[command(name = "statetensor", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Execute a model for N steps, carrying its state tensors on the device, and report
    /// what crossed host<->device, the modelled time and HBM use.
    Run(run::RunArgs),
    /// Show a model's parameters, outputs, aliases, state bytes and HBM footprint per device.
    Inspect(inspect::InspectArgs),
    /// Run a model two ways — aliased (state stays on the device) and round trip (state
    /// copied to the host and back every step) — and compare per step.
    Bench(bench::BenchArgs),
    /// (Driver backend) Measure host<->device transfers and execute overhead through libnrt,
    /// fit latency + bandwidth, and write a device profile for --device.
    Calibrate(calibrate::CalibrateArgs),
    /// Is libnrt loadable: where from, the runtime version, visible NeuronCores (exit 0 only
    /// when usable).
    Probe {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn exit_code(e: &Error) -> u8 {
    // files and paths are the user's input too
    if e.kind().is_user_error() || e.kind() == ErrorKind::Io {
        2
    } else {
        1
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Inspect(a) => inspect::inspect(a),
        Command::Probe { json } => probe::probe(json),
        Command::Bench(a) => match (a.sweep.clone(), a.sweep_tp.clone()) {
            (Some(lengths), _) => sweep::sweep(&a, &lengths),
            (None, Some(cores)) => sweep::sweep_tp(&a, &cores),
            (None, None) => bench::bench(a),
        },
        Command::Calibrate(a) => calibrate::calibrate(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("statetensor: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}
