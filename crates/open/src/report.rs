//! The run report: what `statetensor run` writes as `report.json` and prints, and what the
//! Python package's `Model.report()` returns — one definition, so the two never disagree.

use crate::{Backend, DeviceProfile};
use serde::Serialize;
use statetensor_core::{ShardedModel, StatefulModel, TransferLedger};

/// Totals over a run (docs/architecture.md §9). Field names are a contract: scripts read them.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The backend's name (`sim`, `nrt`).
    pub backend: String,
    /// The device: a profile's name, or the libnrt loaded.
    pub device: String,
    /// Executes counted.
    pub steps: u64,
    /// Bytes host -> device (from the load: weights and initial states included).
    pub bytes_h2d: u64,
    /// Bytes device -> host.
    pub bytes_d2h: u64,
    /// Bytes copied device -> device (state copies).
    pub bytes_d2d: u64,
    /// Transfers host -> device.
    pub transfers_h2d: u64,
    /// Transfers device -> host.
    pub transfers_d2h: u64,
    /// Bytes of one state set.
    pub state_bytes: u64,
    /// Peak device memory in use.
    pub hbm_peak_bytes: u64,
    /// Device memory capacity.
    pub hbm_capacity_bytes: u64,
    /// Total modelled (or, on libnrt, measured) time of the transfers and executes.
    pub modelled_s: f64,
    /// Wall time on this machine.
    pub wall_s: f64,
    /// How `modelled_s` and the per-step times were obtained: "modelled" by the simulator's
    /// cost model, or "measured" on the device (libnrt).
    pub time_kind: String,
    // fields beyond the contract's minimum
    /// The model's source (file or directory).
    pub model: String,
    /// Transfers device -> device.
    pub transfers_d2d: u64,
    /// Time in executes.
    pub execute_s: f64,
    /// Time in collectives with other cores (a model run by several; 0 on one core).
    pub collective_s: f64,
    /// Bytes sent to other cores by collectives.
    pub collective_bytes: u64,
    /// Bytes of `--feed` values sent each step (included in the host -> device figures).
    pub fed_bytes_per_step: u64,
    /// States that had no initial value and started at zeros.
    pub states_started_at_zeros: Vec<String>,
    /// Bytes of resident weights (`--weight`): uploaded once, when the model was loaded
    /// (in `run`'s host -> device total, which counts from the load; not in `bench`'s, which
    /// counts the steps only), then held in HBM beside the state.
    pub weight_bytes: u64,
    /// Per step: what crossed and the modelled time.
    pub per_step: Vec<StepReport>,
    /// The same steps without state tensors: every state copied out and back each step
    /// (an estimate from the cost model; `statetensor bench` measures it instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub without_state_tensors: Option<RoundTrip>,
    /// A model run by several cores: each core's figures (the totals above sum bytes and
    /// transfers over the cores; times are per step the slowest core's, as the cores run
    /// at once).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_core: Vec<CoreReport>,
}

/// One core's share of a run on several cores.
#[derive(Clone, Debug, Serialize)]
pub struct CoreReport {
    /// The core.
    pub core: usize,
    /// Bytes host -> device.
    pub bytes_h2d: u64,
    /// Bytes device -> host.
    pub bytes_d2h: u64,
    /// Collectives this core took part in.
    pub collectives: u64,
    /// Bytes it sent to other cores.
    pub collective_bytes: u64,
    /// Time in collectives.
    pub collective_s: f64,
    /// Time in executes (compute).
    pub execute_s: f64,
    /// Its total time since the load: transfers (the weight upload included, as in
    /// `bytes_h2d`), executes and collectives.
    pub modelled_s: f64,
    /// Bytes of its shard of one state set.
    pub state_bytes: u64,
    /// Bytes of its shard of the weights.
    pub weight_bytes: u64,
    /// Its peak memory in use.
    pub hbm_peak_bytes: u64,
    /// Its memory capacity.
    pub hbm_capacity_bytes: u64,
}

/// What one step moved, and its time.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    /// Bytes host -> device.
    pub bytes_h2d: u64,
    /// Bytes device -> host.
    pub bytes_d2h: u64,
    /// Transfers host -> device.
    pub transfers_h2d: u64,
    /// Transfers device -> host.
    pub transfers_d2h: u64,
    /// Modelled (or measured) time.
    pub modelled_s: f64,
}

/// The same run without state tensors (every state copied out and back each step).
#[derive(Clone, Debug, Serialize)]
pub struct RoundTrip {
    /// Bytes host -> device.
    pub bytes_h2d: u64,
    /// Bytes device -> host.
    pub bytes_d2h: u64,
    /// Transfers host -> device.
    pub transfers_h2d: u64,
    /// Transfers device -> host.
    pub transfers_d2h: u64,
    /// Modelled time.
    pub modelled_s: f64,
}

impl StepReport {
    /// A step of several cores run at once that moved their ledgers from `before` to
    /// `after` (core k's the k-th): bytes and transfers summed, the time the slowest core's.
    pub fn of_cores(before: &[TransferLedger], after: &[TransferLedger]) -> StepReport {
        let d: Vec<TransferLedger> = after.iter().zip(before).map(|(a, b)| *a - *b).collect();
        StepReport {
            bytes_h2d: d.iter().map(|l| l.h2d.bytes).sum(),
            bytes_d2h: d.iter().map(|l| l.d2h.bytes).sum(),
            transfers_h2d: d.iter().map(|l| l.h2d.transfers).sum(),
            transfers_d2h: d.iter().map(|l| l.d2h.transfers).sum(),
            modelled_s: d.iter().map(|l| l.total_seconds()).fold(0.0, f64::max),
        }
    }

    /// The step that moved the ledger by `d`.
    pub fn from_ledger(d: &TransferLedger) -> StepReport {
        StepReport {
            bytes_h2d: d.h2d.bytes,
            bytes_d2h: d.d2h.bytes,
            transfers_h2d: d.h2d.transfers,
            transfers_d2h: d.d2h.transfers,
            modelled_s: d.total_seconds(),
        }
    }
}

/// `1.5 KiB`, `12 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `91.3 µs`, `1.20 ms`, `2.500 s`.
pub fn seconds(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.3} s")
    }
}

/// `b / a` as `1.25x`, or `-` when `a` is zero.
pub fn ratio(a: f64, b: f64) -> String {
    if a > 0.0 {
        format!("{:.2}x", b / a)
    } else {
        "-".into()
    }
}

/// One table row: a left-aligned label and right-aligned cells of the given widths.
pub fn row(widths: &[usize], cells: &[String]) -> String {
    let mut line = String::from(" ");
    for (i, (w, c)) in widths.iter().zip(cells).enumerate() {
        if i == 0 {
            line.push_str(&format!(" {c:<w$}"));
        } else {
            line.push_str(&format!(" {c:>w$}"));
        }
    }
    line.push('\n');
    line
}

/// What a run was, beyond what the model's ledger knows.
#[derive(Clone, Debug)]
pub struct RunFacts {
    /// The backend.
    pub backend: Backend,
    /// The device as reports name it ([`crate::Device::describe`]).
    pub device: String,
    /// The cost model pricing the "without state tensors" estimate.
    pub profile: DeviceProfile,
    /// The model's source.
    pub model: String,
    /// Each step's transfers and time.
    pub per_step: Vec<StepReport>,
    /// Wall time so far.
    pub wall_s: f64,
    /// Bytes fed per step (a run's `--feed` values).
    pub fed_bytes_per_step: u64,
    /// States that had no initial value.
    pub states_started_at_zeros: Vec<String>,
}

impl Report {
    /// The report of `model`'s run so far: its ledger's totals since load, its memory, and
    /// the same steps without state tensors (every state read out and written back each
    /// step, priced by `facts.profile`).
    pub fn of_run(model: &dyn StatefulModel, facts: RunFacts) -> Report {
        let sig = model.signature();
        let total = model.ledger();
        let mem = model.memory();
        let steps = facts.per_step.len() as u64;
        let n = sig.state_params().len() as u64 * steps;
        let extra_s = state_round_trip_s(sig, &facts.profile) * steps as f64;
        Report {
            backend: model.backend().to_string(),
            device: facts.device,
            steps,
            bytes_h2d: total.h2d.bytes,
            bytes_d2h: total.d2h.bytes,
            bytes_d2d: total.d2d.bytes,
            transfers_h2d: total.h2d.transfers,
            transfers_d2h: total.d2h.transfers,
            state_bytes: sig.state_bytes(),
            hbm_peak_bytes: mem.peak,
            hbm_capacity_bytes: mem.capacity,
            modelled_s: total.total_seconds(),
            wall_s: facts.wall_s,
            time_kind: time_kind(facts.backend).into(),
            model: facts.model,
            transfers_d2d: total.d2d.transfers,
            execute_s: total.execute_seconds,
            collective_s: total.collective.seconds,
            collective_bytes: total.collective.bytes,
            fed_bytes_per_step: facts.fed_bytes_per_step,
            states_started_at_zeros: facts.states_started_at_zeros,
            weight_bytes: sig.weight_bytes(),
            without_state_tensors: Some(RoundTrip {
                bytes_h2d: total.h2d.bytes + sig.state_bytes() * steps,
                bytes_d2h: total.d2h.bytes + sig.state_bytes() * steps,
                transfers_h2d: total.h2d.transfers + n,
                transfers_d2h: total.d2h.transfers + n,
                modelled_s: total.total_seconds() + extra_s,
            }),
            per_step: facts.per_step,
            per_core: Vec::new(),
        }
    }

    /// The report of a run on several cores: bytes and transfers summed over the cores,
    /// memory the fullest core's, `execute_s` and `collective_s` the largest core's total,
    /// `modelled_s` the sum over steps of each step's slowest core (`facts.per_step`, from
    /// [`StepReport::of_cores`]), and each core's own figures — counted since the load, or
    /// since `since` (each core's ledger then). Without state tensors every core would copy
    /// its state shard out and back each step, the cores at once.
    pub fn of_sharded_run(
        model: &dyn ShardedModel,
        since: Option<&[TransferLedger]>,
        facts: RunFacts,
    ) -> Report {
        let mut ledgers = model.ledgers();
        if let Some(since) = since {
            for (l, s) in ledgers.iter_mut().zip(since) {
                *l = *l - *s;
            }
        }
        let memories = model.memories();
        let sig = model.core(0).signature();
        let cores = model.cores() as u64;
        let steps = facts.per_step.len() as u64;
        let sum = |f: &dyn Fn(&TransferLedger) -> u64| ledgers.iter().map(f).sum::<u64>();
        let max = |f: &dyn Fn(&TransferLedger) -> f64| ledgers.iter().map(f).fold(0.0, f64::max);
        let modelled: f64 = facts.per_step.iter().map(|s| s.modelled_s).sum();
        let round_trip_s = state_round_trip_s(sig, &facts.profile) * steps as f64;
        let n = sig.state_params().len() as u64 * steps * cores;
        let state_all = sig.state_bytes() * cores;
        let per_core = ledgers
            .iter()
            .zip(&memories)
            .enumerate()
            .map(|(k, (l, m))| CoreReport {
                core: k,
                bytes_h2d: l.h2d.bytes,
                bytes_d2h: l.d2h.bytes,
                collectives: l.collective.transfers,
                collective_bytes: l.collective.bytes,
                collective_s: l.collective.seconds,
                execute_s: l.execute_seconds,
                modelled_s: l.total_seconds(),
                state_bytes: sig.state_bytes(),
                weight_bytes: sig.weight_bytes(),
                hbm_peak_bytes: m.peak,
                hbm_capacity_bytes: m.capacity,
            })
            .collect();
        Report {
            backend: model.backend().to_string(),
            device: facts.device,
            steps,
            bytes_h2d: sum(&|l| l.h2d.bytes),
            bytes_d2h: sum(&|l| l.d2h.bytes),
            bytes_d2d: sum(&|l| l.d2d.bytes),
            transfers_h2d: sum(&|l| l.h2d.transfers),
            transfers_d2h: sum(&|l| l.d2h.transfers),
            state_bytes: state_all,
            hbm_peak_bytes: memories.iter().map(|m| m.peak).max().unwrap_or(0),
            hbm_capacity_bytes: memories.first().map_or(0, |m| m.capacity),
            modelled_s: modelled,
            wall_s: facts.wall_s,
            time_kind: time_kind(facts.backend).into(),
            model: facts.model,
            transfers_d2d: sum(&|l| l.d2d.transfers),
            execute_s: max(&|l| l.execute_seconds),
            collective_s: max(&|l| l.collective.seconds),
            collective_bytes: sum(&|l| l.collective.bytes),
            fed_bytes_per_step: facts.fed_bytes_per_step,
            states_started_at_zeros: facts.states_started_at_zeros,
            weight_bytes: sig.weight_bytes() * cores,
            without_state_tensors: Some(RoundTrip {
                bytes_h2d: sum(&|l| l.h2d.bytes) + state_all * steps,
                bytes_d2h: sum(&|l| l.d2h.bytes) + state_all * steps,
                transfers_h2d: sum(&|l| l.h2d.transfers) + n,
                transfers_d2h: sum(&|l| l.d2h.transfers) + n,
                modelled_s: modelled + round_trip_s,
            }),
            per_step: facts.per_step,
            per_core,
        }
    }

    /// The report as pretty-printed JSON (`report.json`).
    pub fn to_json(&self) -> statetensor_core::Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| statetensor_core::Error::runtime("report", e.to_string()))
    }

    /// The human-readable summary.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let Some(rt) = &self.without_state_tensors else {
            return out;
        };
        out.push_str(&format!(
            "totals over {} step(s), {} on {}:\n",
            self.steps, self.backend, self.device
        ));
        let w = [18, 24, 34, 13];
        let moved = |b: u64, n: u64| format!("{} ({n} transfers)", bytes(b));
        out.push_str(&row(
            &w,
            &[
                "".into(),
                "with state tensors".into(),
                "without (state copied out and back)".into(),
                "without/with".into(),
            ],
        ));
        out.push_str(&row(
            &w,
            &[
                "host -> device".into(),
                moved(self.bytes_h2d, self.transfers_h2d),
                moved(rt.bytes_h2d, rt.transfers_h2d),
                ratio(self.bytes_h2d as f64, rt.bytes_h2d as f64),
            ],
        ));
        out.push_str(&row(
            &w,
            &[
                "device -> host".into(),
                moved(self.bytes_d2h, self.transfers_d2h),
                moved(rt.bytes_d2h, rt.transfers_d2h),
                ratio(self.bytes_d2h as f64, rt.bytes_d2h as f64),
            ],
        ));
        out.push_str(&row(
            &w,
            &[
                format!("{} time", self.time_kind),
                seconds(self.modelled_s),
                if self.time_kind == "modelled" {
                    seconds(rt.modelled_s)
                } else {
                    format!("{} (estimated)", seconds(rt.modelled_s))
                },
                ratio(self.modelled_s, rt.modelled_s),
            ],
        ));
        if !self.states_started_at_zeros.is_empty() {
            out.push_str(&format!(
                "  started at zeros (no initial value given): {}\n",
                self.states_started_at_zeros.join(", ")
            ));
        }
        if self.fed_bytes_per_step > 0 {
            out.push_str(&format!(
                "  fed per step (--feed): {}\n",
                bytes(self.fed_bytes_per_step)
            ));
        }
        if !self.per_core.is_empty() {
            let w = [6, 12, 12, 26, 12, 12];
            out.push_str(&format!(
                "  per core ({} cores; time per step is the slowest core's):
",
                self.per_core.len()
            ));
            out.push_str(&row(
                &w,
                &[
                    "core".into(),
                    "HBM peak".into(),
                    "state".into(),
                    "collectives".into(),
                    "compute".into(),
                    format!("{} total", self.time_kind),
                ],
            ));
            // measured: the runtime runs the collectives inside each core's execute
            let measured = self.time_kind == "measured";
            for c in &self.per_core {
                out.push_str(&row(
                    &w,
                    &[
                        c.core.to_string(),
                        bytes(c.hbm_peak_bytes),
                        bytes(c.state_bytes),
                        if measured {
                            "in compute".into()
                        } else {
                            format!(
                                "{} ({}, {})",
                                c.collectives,
                                bytes(c.collective_bytes),
                                seconds(c.collective_s)
                            )
                        },
                        seconds(c.execute_s),
                        seconds(c.modelled_s),
                    ],
                ));
            }
        }
        if self.weight_bytes > 0 {
            out.push_str(&format!(
                "  weights resident: {}, uploaded once at load (in the host -> device total)\n",
                bytes(self.weight_bytes)
            ));
        }
        out.push_str(&format!(
            "  HBM peak {} of {} ({:.4}%); state {}; wall time {}\n",
            bytes(self.hbm_peak_bytes),
            bytes(self.hbm_capacity_bytes),
            100.0 * self.hbm_peak_bytes as f64 / self.hbm_capacity_bytes.max(1) as f64,
            bytes(self.state_bytes),
            seconds(self.wall_s)
        ));
        out
    }
}

/// Modelled seconds to copy every state of `sig` out to the host and back once, each state
/// its own transfer each way (what one step costs without state tensors).
fn state_round_trip_s(sig: &statetensor_core::Signature, p: &DeviceProfile) -> f64 {
    sig.state_params()
        .iter()
        .map(|&q| {
            let b = sig.params[q].size_bytes() as u64;
            p.h2d_seconds(b) + p.d2h_seconds(b)
        })
        .sum()
}

/// "measured" where the backend measures time (libnrt), "modelled" where it models it.
pub fn time_kind(backend: Backend) -> &'static str {
    if backend.measures_time() {
        "measured"
    } else {
        "modelled"
    }
}
