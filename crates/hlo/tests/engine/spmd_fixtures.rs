//! Modules XLA's SPMD partitioner wrote for N devices (tools/gen_spmd_fixtures.py), run by
//! N cores over several steps with each core's state carried as its device keeps it, must
//! give every core JAX's outputs — as HLO text and as an HloModuleProto (whose missing
//! module config the engine makes up from the partition ids it reads).

use crate::fixtures::assert_close;
use statetensor_conformance::{fixture_npy, fixture_path, spmd_fixture_names};
use statetensor_hlo::collective::DEFAULT_COLLECTIVE_TIMEOUT;
use statetensor_hlo::{Program, Tensor};
use std::sync::Arc;

fn run(name: &str, prog: &Program) -> Result<(), String> {
    let dir = fixture_path(name);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    let cores = meta["cores"].as_u64().unwrap() as usize;
    let steps = meta["steps"].as_u64().unwrap() as usize;
    let (rtol, atol) = (
        meta["rtol"].as_f64().unwrap(),
        meta["atol"].as_f64().unwrap(),
    );
    let aliases: Vec<(usize, usize)> = meta["aliases"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(p, o)| (p.parse().unwrap(), o.as_u64().unwrap() as usize))
        .collect();
    let topo = prog.topology(cores).map_err(|e| e.to_string())?;
    assert_eq!(topo.cores(), cores);
    let stacked: Vec<Tensor> = (0..prog.params().len())
        .map(|p| fixture_npy(name, &format!("arg{p}.npy")))
        .collect();
    let mut args: Vec<Vec<Arc<Tensor>>> = (0..cores)
        .map(|k| {
            stacked
                .iter()
                .map(|t| Arc::new(t.leading_slice(k).unwrap()))
                .collect()
        })
        .collect();
    for s in 0..steps {
        let outs = prog.execute_spmd(args.clone(), topo, DEFAULT_COLLECTIVE_TIMEOUT);
        for (k, out) in outs.into_iter().enumerate() {
            let (o, stats) = out.map_err(|e| format!("{name} step {s} core {k}: {e}"))?;
            if name.contains("decoder") {
                // an all-reduce after attention and one after the MLP
                assert_eq!(stats.collectives.len(), 2, "{name} core {k}");
            }
            for (i, got) in o.iter().enumerate() {
                let want = fixture_npy(name, &format!("out{s}_{i}.npy"))
                    .leading_slice(k)
                    .unwrap();
                assert_close(
                    &format!("{name} step {s} core {k} output {i}"),
                    got,
                    &want,
                    rtol,
                    atol,
                )?;
            }
            for &(p, o_idx) in &aliases {
                args[k][p] = o[o_idx].clone();
            }
        }
    }
    Ok(())
}

#[test]
fn partitioned_modules_match_jax_on_every_core_and_step() {
    for name in spmd_fixture_names() {
        let name = name.as_str();
        let text = std::fs::read_to_string(fixture_path(name).join("model.hlo")).unwrap();
        let prog = Program::parse(&text, "model.hlo").unwrap();
        assert_eq!(
            prog.compiled_cores().0,
            if name.contains("tp8") { 8 } else { 4 }
        );
        run(name, &prog).unwrap();
    }
}

#[test]
fn partitioned_modules_match_jax_from_their_hlo_module_proto() {
    for name in spmd_fixture_names() {
        let name = name.as_str();
        let bytes = std::fs::read(fixture_path(name).join("model.pb")).unwrap();
        let prog = Program::from_bytes(&bytes, "model.pb").unwrap();
        run(name, &prog).unwrap();
    }
}
