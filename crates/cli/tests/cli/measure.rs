//! `bench`, `bench --sweep` and `calibrate`.

use crate::support::{bin, emulator, run, stderr, tmpdir};

#[test]
fn bench_compares_aliased_with_round_trip() {
    let o = run(&["bench", "examples/kv_decoder", "--steps", "3", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (a, r) = (&v["aliased"], &v["round_trip"]);
    let state = a["state_bytes"].as_u64().unwrap();
    assert_eq!(state, 2 * 8 * 16 * 4 + 4);
    for k in [
        "backend",
        "device",
        "steps",
        "bytes_h2d",
        "bytes_d2h",
        "modelled_s",
        "wall_s",
        "hbm_peak_bytes",
    ] {
        assert!(a.get(k).is_some() && r.get(k).is_some(), "{k}");
    }
    // the round trip moves every state out and back each step, on top of the same inputs and outputs
    assert_eq!(
        r["bytes_h2d"].as_u64().unwrap(),
        a["bytes_h2d"].as_u64().unwrap() + 3 * state
    );
    assert_eq!(
        r["bytes_d2h"].as_u64().unwrap(),
        a["bytes_d2h"].as_u64().unwrap() + 3 * state
    );
    assert!(r["modelled_s"].as_f64().unwrap() > a["modelled_s"].as_f64().unwrap());
    let o = run(&["bench", "examples/kv_decoder", "--steps", "2"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("round trip"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn calibrate_over_the_emulator_writes_a_usable_profile() {
    let d = tmpdir("calibrate");
    let prof = d.join("profile.json");
    let models = d.join("collectives");
    let o = bin()
        .args([
            "calibrate",
            "--max-mib",
            "1",
            "--repeats",
            "3",
            "--cores",
            "2",
            "--collective-models",
            models.to_str().unwrap(),
            "--out",
            prof.to_str().unwrap(),
        ])
        .env("STATETENSOR_LIBNRT", emulator())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&prof).unwrap()).unwrap();
    assert!(p["h2d_bytes_per_s"].as_f64().unwrap() > 0.0);
    assert!(p["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("residuals")));
    assert!(p["notes"].as_array().unwrap().iter().any(|n| n
        .as_str()
        .unwrap()
        .contains("execute overhead of a trivial model")));
    // the all-reduce over two cores (one inf2 chip) sets the on-chip figures
    let note = p["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .find(|n| n.contains("all-reduce over 2 cores"))
        .unwrap_or_else(|| panic!("no collective note: {}", p["notes"]));
    assert!(note.contains("chip_bytes_per_s"), "{note}");
    let inf2: serde_json::Value =
        serde_json::to_value(statetensor_open::DeviceProfile::inf2()).unwrap();
    assert!(p["chip_bytes_per_s"].as_f64().unwrap() > 0.0);
    assert_ne!(p["chip_bytes_per_s"], inf2["chip_bytes_per_s"]);
    assert_eq!(p["link_bytes_per_s"], inf2["link_bytes_per_s"]);
    // one bundle per size, 4 KiB to 1 MiB, for neuronx-cc to compile on hardware
    for n in [1024, 16384, 262144] {
        assert!(
            models
                .join(format!("all_reduce_f32_{n}/model.hlo"))
                .is_file(),
            "{n}"
        );
    }
    let o = run(&[
        "run",
        "examples/mlp_cache",
        "--device",
        prof.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["device"], "calibrated-inf2");
}

#[test]
fn sweep_writes_csv_and_svg() {
    let d = tmpdir("sweep");
    let o = run(&[
        "bench",
        "family:kv-decoder",
        "--sweep",
        "64:256",
        "--steps",
        "2",
        "--width",
        "32",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = sweep_rows(&d, 8);
    assert_eq!(
        rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        vec![64.0, 128.0, 256.0]
    );
    for r in &rows {
        assert_eq!(r[1], 2.0 * r[0] * 32.0 * 4.0 + 4.0, "state bytes");
        assert!(r[3] > r[2], "the round trip costs more per step");
        assert_eq!(
            r[5] - r[4],
            r[1],
            "the round trip writes the state every step"
        );
    }
    let svg = std::fs::read_to_string(d.join("sweep.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() == 2);
    let o = run(&["bench", "examples/mlp_cache", "--sweep", "10:1"]);
    assert_eq!(o.status.code(), Some(2));
}

/// The numeric columns (the first `columns`) of every row of `dir`/sweep.csv.
fn sweep_rows(dir: &std::path::Path, columns: usize) -> Vec<Vec<f64>> {
    let csv = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .take(columns)
                .map(|x| x.parse().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn sweep_tp_writes_aliased_and_round_trip_per_core_count() {
    let d = tmpdir("sweep-tp");
    let o = run(&[
        "bench",
        "family:kv-decoder",
        "--sweep-tp",
        "1:4",
        "--cache-len",
        "64",
        "--width",
        "256",
        "--device",
        "trn1",
        "--steps",
        "2",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = sweep_rows(&d, 9);
    assert_eq!(
        rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        vec![1.0, 2.0, 4.0]
    );
    for r in &rows {
        // the K and V caches split by heads, and the position on every core
        assert_eq!(
            r[1],
            2.0 * 64.0 * 256.0 * 4.0 / r[0] + 4.0,
            "state bytes per core"
        );
        assert!(r[3] > r[2], "round trip slower than aliased: {r:?}");
        // one all-reduce a step, none on one core
        assert_eq!(r[4] > 0.0, r[0] > 1.0, "collective time: {r:?}");
        // aliased: only the token in and y out on every core
        assert_eq!(r[5], r[0] * 256.0 * 4.0);
    }
    assert!(d.join("sweep.svg").is_file());
    // a point runs again on its own
    let p = d.join("models/tp2");
    let mut args: Vec<String> = [
        "bench",
        p.join("model.hlo").to_str().unwrap(),
        "--cores",
        "2",
    ]
    .map(String::from)
    .to_vec();
    args.extend([
        "--input".into(),
        format!("0={}", p.join("arg0.npy").display()),
    ]);
    for w in 1..5 {
        args.extend([
            "--weight".into(),
            format!("{w}={}", p.join(format!("arg{w}.npy")).display()),
        ]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&refs);
    assert!(o.status.success(), "{}", stderr(&o));
    // heads that do not split among the cores are refused, naming the width to use
    let o = run(&[
        "bench",
        "family:kv-decoder",
        "--sweep-tp",
        "1,8",
        "--width",
        "256",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--width 512"), "{}", stderr(&o));
}
