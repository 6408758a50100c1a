//! The conformance suite: random scenarios on the simulator, the libnrt driver over the
//! emulator, and the functional reference, compared trace by trace; then random scenarios
//! on the SPMD fixtures run by several cores, the simulator's against the driver's over
//! the emulator's cores. Prints one summary line each. `PROPTEST_CASES` sets the
//! one-core scenario count (default 160), `SHARDED_CASES` the several-core count
//! (default 24); shrunk failures are kept in `conformance/tests/suite.regressions` (and
//! `sharded.regressions`) and replayed first.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use statetensor_conformance::{
    diverge, run, run_sharded, scenario_strategy, sharded_scenario_strategy, spmd_cores,
    spmd_fixture_names, spmd_load_options, Op, Outcome, Reference, Scenario, KNOWN_DIFFERENCES,
};
use statetensor_conformance::{fixture_hlo, fixture_load_options};
use statetensor_core::StateInit;
use statetensor_open::{load_sharded, load_sharded_nrt, Backend, Bundle, Device, DeviceProfile};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `libnrt_emu.so`, built by the dev-dependency on the emulator.
fn emulator() -> String {
    nrt_emu::hook::built_library()
        .expect("libnrt_emu.so was not built")
        .display()
        .to_string()
}

/// The emulator's test hook: fault mode ("" for none).
fn set_fault(fault: &str) {
    nrt_emu::hook::configure(&emulator(), fault, 0).expect("the emulator's test hook");
}

/// Traces of one scenario on the simulator, the driver over the emulator, and the reference.
fn traces(sc: &Scenario) -> [statetensor_conformance::Trace; 3] {
    // the HLO text only: a model.neff compiled into the fixture directory is for hardware
    let bundle = Bundle::from_text(&fixture_hlo(&sc.model), &sc.model).expect("fixture");
    let opts = fixture_load_options(&sc.model);
    let on = |device: Device| {
        // the second model shares the first one's weights, as NxD's two graphs do
        let (a, b) = (
            device.load(&bundle, &opts).unwrap(),
            device.load(&bundle, &opts.sharing_weights()).unwrap(),
        );
        run(&*a, &*b, sc)
    };
    let sim = on(Device::open(Backend::Sim, &DeviceProfile::inf2()).unwrap());
    let nrt = on(Device::nrt_library(&emulator()).expect("the driver loads the emulator"));
    let reference = Reference::new(bundle.program().clone(), &opts)
        .unwrap()
        .run(sc);
    [sim, nrt, reference]
}

fn first_divergence(sc: &Scenario) -> Option<String> {
    let [sim, nrt, reference] = traces(sc);
    diverge("sim", &sim, "nrt-emu", &nrt, sc, true)
        .or_else(|| diverge("sim", &sim, "reference", &reference, sc, false))
        .or_else(|| diverge("nrt-emu", &nrt, "reference", &reference, sc, false))
}

/// Traces of one scenario on a model run by several cores: the simulator's and the
/// driver's over the emulator's cores.
fn sharded_traces(sc: &Scenario) -> [statetensor_conformance::Trace; 2] {
    let bundle = Bundle::from_text(&fixture_hlo(&sc.model), &sc.model).expect("fixture");
    let (opts, cores) = (spmd_load_options(&sc.model), spmd_cores(&sc.model));
    let sim = load_sharded(Backend::Sim, &DeviceProfile::trn1(), &bundle, &opts, cores)
        .expect("the simulator loads the SPMD fixture");
    let nrt = load_sharded_nrt(&emulator(), &bundle, &opts, cores)
        .expect("the driver loads the SPMD fixture on the emulator's cores");
    [run_sharded(&*sim, sc), run_sharded(&*nrt, sc)]
}

fn first_sharded_divergence(sc: &Scenario) -> Option<String> {
    let [sim, nrt] = sharded_traces(sc);
    diverge("sim", &sim, "nrt-emu", &nrt, sc, true)
}

fn cases(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `cases` random scenarios from `strategy`, failures kept in `regressions`; returns
/// (scenarios, operations, divergences).
fn random_suite(
    strategy: impl Strategy<Value = Scenario>,
    cases: u32,
    regressions: &'static str,
    divergence: fn(&Scenario) -> Option<String>,
) -> (usize, usize, usize) {
    let scenarios = AtomicUsize::new(0);
    let ops = AtomicUsize::new(0);
    let config = Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |sc| {
        scenarios.fetch_add(1, Ordering::Relaxed);
        ops.fetch_add(sc.len(), Ordering::Relaxed);
        match divergence(&sc) {
            None => Ok(()),
            Some(d) => Err(TestCaseError::fail(d)),
        }
    });
    let divergences = match result {
        Ok(()) => 0,
        Err(proptest::test_runner::TestError::Fail(reason, scenario)) => {
            eprintln!(
                "conformance: divergence: {reason}\nconformance: minimal scenario: {scenario:?}"
            );
            1
        }
        Err(e) => {
            eprintln!("conformance: {e}");
            1
        }
    };
    (scenarios.into_inner(), ops.into_inner(), divergences)
}

/// A set created with values, then three executes.
fn three_steps(model: &str) -> Scenario {
    Scenario {
        model: model.into(),
        ops: vec![
            Op::Create {
                set: 0,
                init: Some(7),
            },
            Op::Execute {
                set: 0,
                seed: 1,
                second_model: false,
            },
            Op::Execute {
                set: 0,
                seed: 2,
                second_model: false,
            },
            Op::Execute {
                set: 0,
                seed: 3,
                second_model: false,
            },
        ],
    }
}

/// Fixed scenarios for testing the tests: each emulator fault mode must make them diverge.
fn probe_scenarios() -> Vec<Scenario> {
    ["mlp_cache", "swap", "kv_decoder", "counters"]
        .map(three_steps)
        .to_vec()
}

/// Shrunk failures the suite found, kept as named scenarios (proptest also replays
/// `tests/suite.regressions` when it has recorded one).
fn regressions() -> Vec<(&'static str, Scenario)> {
    vec![(
        // the driver's second model kept its binding (and the old state tensors) for a set
        // that the first model dropped and the second re-created
        "stale binding after another model dropped the set",
        Scenario {
            model: "mlp_cache".into(),
            ops: vec![
                Op::Create { set: 0, init: None },
                Op::Execute {
                    set: 1,
                    seed: 0,
                    second_model: true,
                },
                Op::Drop { set: 1 },
                Op::Execute {
                    set: 1,
                    seed: 0,
                    second_model: true,
                },
            ],
        },
    )]
}

/// Each known difference must still hold.
fn known_differences_hold() -> Result<(), String> {
    assert_eq!(
        KNOWN_DIFFERENCES.len(),
        2,
        "update this check with the list"
    );
    // 1. device memory between executes: the driver keeps staging, the simulator does not
    let bundle = Bundle::from_text(&fixture_hlo("mlp_cache"), "mlp_cache").unwrap();
    let sim = Device::open(Backend::Sim, &DeviceProfile::inf2())
        .and_then(|d| d.load(&bundle, &Default::default()))
        .unwrap();
    let nrt = Device::nrt_library(&emulator())
        .and_then(|d| d.load(&bundle, &Default::default()))
        .unwrap();
    let mut grow = Vec::new();
    for m in [&*sim, &*nrt] {
        m.create_state_set("k", StateInit::Zeros).unwrap();
        let before = m.memory().used;
        m.execute("k", &statetensor_conformance::inputs_for(m.signature(), 1))
            .unwrap();
        grow.push(m.memory().used - before);
    }
    let staging = 16 + 48 + 12 + 12; // x, w, b in; y out
    if grow != [0, staging] {
        return Err(format!(
            "known difference '{}' no longer holds: memory growth sim/nrt = {grow:?}",
            KNOWN_DIFFERENCES[0].what
        ));
    }
    // 2. seconds: modelled vs measured — they differ unless both happen to be equal
    let (s, n) = (sim.ledger().execute_seconds, nrt.ledger().execute_seconds);
    if s == n {
        return Err(format!(
            "known difference '{}' no longer holds: both report {s} s",
            KNOWN_DIFFERENCES[1].what
        ));
    }
    Ok(())
}

fn main() {
    let mut passed = 0;
    let mut failed = 0;
    let mut check = |name: &str, ok: bool, detail: String| {
        if ok {
            passed += 1;
        } else {
            failed += 1;
            eprintln!("FAILED {name}: {detail}");
        }
    };

    let (n, ops, div) = random_suite(
        scenario_strategy(),
        cases("PROPTEST_CASES", 160),
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/suite.regressions"),
        first_divergence,
    );
    println!("conformance: {n} scenarios, {ops} operations, backends compared: sim, nrt-emu (driver over libnrt_emu.so), reference; {div} divergences");
    check(
        "random scenarios agree",
        div == 0,
        "see the divergence above".into(),
    );

    let models = spmd_fixture_names();
    let (n, ops, div) = random_suite(
        sharded_scenario_strategy(models.clone()),
        cases("SHARDED_CASES", 24),
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sharded.regressions"),
        first_sharded_divergence,
    );
    println!("conformance: {n} sharded scenarios on {} ({ops} operations, every core's shards compared), backends compared: sim, nrt-emu (driver over libnrt_emu.so's cores); {div} divergences", models.join(", "));
    check(
        "random sharded scenarios agree",
        div == 0 && n > 0,
        "see the divergence above".into(),
    );

    for (name, sc) in regressions() {
        let d = first_divergence(&sc);
        check(
            &format!("regression: {name}"),
            d.is_none(),
            d.unwrap_or_default(),
        );
    }

    let probes = probe_scenarios();
    let clean: Vec<String> = probes.iter().filter_map(first_divergence).collect();
    check(
        "probe scenarios agree without faults",
        clean.is_empty(),
        clean.join("; "),
    );
    let sharded_probes: Vec<Scenario> = spmd_fixture_names()
        .iter()
        .map(|m| three_steps(m))
        .collect();
    let clean: Vec<String> = sharded_probes
        .iter()
        .filter_map(first_sharded_divergence)
        .collect();
    check(
        "sharded probe scenarios agree without faults",
        clean.is_empty(),
        clean.join("; "),
    );
    // and they run: every operation succeeds on every core (a suite comparing two
    // backends that both fail would agree too)
    let failing: Vec<String> = sharded_probes
        .iter()
        .filter(|sc| {
            sharded_traces(sc).iter().any(|t| {
                t.events
                    .iter()
                    .any(|e| !matches!(e.outcome, Outcome::Ok(_)))
            })
        })
        .map(|sc| sc.model.clone())
        .collect();
    check(
        "sharded probe scenarios run on both backends",
        failing.is_empty(),
        format!("an operation failed on {failing:?}"),
    );
    for fault in ["fail_execute:2", "lost_write", "hazard"] {
        set_fault(fault);
        let found: Vec<String> = probes.iter().filter_map(first_divergence).collect();
        // the fault's execute count restarts for every scenario: each must see it
        let sharded: Vec<String> = sharded_probes
            .iter()
            .filter_map(|sc| {
                set_fault(fault);
                first_sharded_divergence(sc)
            })
            .collect();
        set_fault("");
        println!(
            "conformance: emulator fault '{fault}': {} of {} probe scenarios diverge, {} of {} sharded ones",
            found.len(),
            probes.len(),
            sharded.len(),
            sharded_probes.len()
        );
        check(
            &format!("fault '{fault}' is detected"),
            !found.is_empty(),
            "no scenario diverged".into(),
        );
        // (a hazard on a core of an SPMD program is refused, NRT_INVALID, rather than
        // replayed: there the check is that the refusal is seen)
        check(
            &format!("fault '{fault}' is detected on several cores"),
            sharded.len() == sharded_probes.len(),
            format!(
                "only {} of {} sharded scenarios diverged",
                sharded.len(),
                sharded_probes.len()
            ),
        );
    }

    let known = known_differences_hold();
    check(
        "known differences still hold",
        known.is_ok(),
        known.err().unwrap_or_default(),
    );

    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
