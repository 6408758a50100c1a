//! Collectives across the cores of an SPMD step: every op in its plain and async forms,
//! both spellings of replica groups, each group mode, the documented float order, and a
//! failing core stopping the others instead of leaving them waiting.

use statetensor_core::{DType, ErrorKind};
use statetensor_hlo::collective::DEFAULT_COLLECTIVE_TIMEOUT;
use statetensor_hlo::{Program, Tensor};
use std::sync::Arc;

/// Core k's `x` is `10k + i` for i in 0..8, made from partition-id inside the module, so
/// one module needs no per-core inputs.
const OPS: &str = r#"HloModule spmd_ops, num_partitions=4

add {
  a = s32[] parameter(0)
  b = s32[] parameter(1)
  ROOT s = s32[] add(a, b)
}

addf {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}

max_general {
  a = s32[] parameter(0)
  b = s32[] parameter(1)
  m = s32[] maximum(a, b)
  one = s32[] constant(1)
  ROOT r = s32[] add(m, one)
}

wrapped_rs {
  p = s32[8] parameter(0)
  ROOT rs = s32[2] reduce-scatter(p), channel_id=5, replica_groups={{0,1,2,3}}, use_global_device_ids=true, dimensions={0}, to_apply=add
}

ENTRY e {
  pid = u32[] partition-id()
  rid = u32[] replica-id()
  p = s32[] convert(pid)
  io = s32[8] iota(), iota_dimension=0
  pb = s32[8] broadcast(p), dimensions={}
  ten = s32[] constant(10)
  tb = s32[8] broadcast(ten), dimensions={}
  scaled = s32[8] multiply(pb, tb)
  x = s32[8] add(scaled, io)
  ar = s32[8] all-reduce(x), channel_id=1, replica_groups={{0,1},{2,3}}, use_global_device_ids=true, to_apply=add
  ag = s32[32] all-gather(x), channel_id=2, replica_groups=[1,4]<=[4], use_global_device_ids=true, dimensions={0}
  rss = ((s32[8]), s32[2], s32[]) async-start(x), calls=wrapped_rs
  rsu = ((s32[8]), s32[2], s32[]) async-update(rss)
  rs = s32[2] async-done(rsu)
  a2a = s32[8] all-to-all(x), channel_id=3, replica_groups={{0,1,2,3}}, dimensions={0}
  b0 = s32[2] slice(x), slice={[0:2]}
  b1 = s32[2] slice(x), slice={[2:4]}
  b2 = s32[2] slice(x), slice={[4:6]}
  b3 = s32[2] slice(x), slice={[6:8]}
  a2t = (s32[2], s32[2], s32[2], s32[2]) all-to-all(b0, b1, b2, b3), channel_id=6, replica_groups={}
  a2t1 = s32[2] get-tuple-element(a2t), index=1
  cp = s32[8] collective-permute(x), channel_id=4, source_target_pairs={{0,1},{1,2},{2,3}}
  ars = s32[8] all-reduce-start(x), channel_id=7, replica_groups=[2,2]<=[2,2]T(1,0), use_global_device_ids=true, to_apply=max_general
  ard = s32[8] all-reduce-done(ars)
  ags = (s32[8], s32[16]) all-gather-start(x), channel_id=8, replica_groups={{3,1},{2,0}}, use_global_device_ids=true, dimensions={0}
  agd = s32[16] all-gather-done(ags)
  cps = (s32[8], s32[8], u32[], u32[]) collective-permute-start(x), channel_id=9, source_target_pairs={{3,0}}
  cpd = s32[8] collective-permute-done(cps)
  bc = s32[8] collective-broadcast(x), channel_id=10, replica_groups={{1,0},{3,2}}
  fv = f32[4] constant({1e8, 1, -1e8, 1})
  fs = f32[1] dynamic-slice(fv, pid), dynamic_slice_sizes={1}
  fr = f32[1] all-reduce(fs), channel_id=11, replica_groups={}, use_global_device_ids=true, to_apply=addf
  ROOT t = (s32[8], s32[32], s32[2], s32[8], s32[2], s32[8], s32[8], s32[16], s32[8], s32[8], f32[1], u32[], u32[]) tuple(ar, ag, rs, a2a, a2t1, cp, ard, agd, cpd, bc, fr, rid, pid)
}
"#;

fn ints(t: &Tensor) -> Vec<i64> {
    t.to_f64_vec().into_iter().map(|v| v as i64).collect()
}

fn x(k: i64) -> Vec<i64> {
    (0..8).map(|i| 10 * k + i).collect()
}

#[test]
fn every_collective_gives_xla_results_on_four_cores() {
    let prog = Program::parse(OPS, "spmd_ops.hlo").unwrap();
    let topo = prog.topology(4).unwrap();
    assert_eq!((topo.replicas, topo.partitions), (1, 4));
    let outs = prog.execute_spmd(vec![vec![]; 4], topo, DEFAULT_COLLECTIVE_TIMEOUT);
    let sum = |a: &[i64], b: &[i64]| a.iter().zip(b).map(|(p, q)| p + q).collect::<Vec<_>>();
    let all: Vec<i64> = (0..4).flat_map(x).collect();
    let total = (0..4).map(x).reduce(|a, b| sum(&a, &b)).unwrap();
    for (k, out) in outs.into_iter().enumerate() {
        let (o, stats) = out.unwrap();
        let kk = k as i64;
        let pair = if k < 2 { [0, 1] } else { [2, 3] };
        assert_eq!(
            ints(&o[0]),
            sum(&x(pair[0]), &x(pair[1])),
            "all-reduce, core {k}"
        );
        assert_eq!(ints(&o[1]), all, "all-gather, core {k}");
        assert_eq!(
            ints(&o[2]),
            total[2 * k..2 * k + 2].to_vec(),
            "reduce-scatter"
        );
        let a2a: Vec<i64> = (0..4)
            .flat_map(|j| x(j)[2 * k..2 * k + 2].to_vec())
            .collect();
        assert_eq!(ints(&o[3]), a2a, "all-to-all, core {k}");
        // tuple all-to-all: element 1 is member 1's block k
        assert_eq!(
            ints(&o[4]),
            x(1)[2 * k..2 * k + 2].to_vec(),
            "tuple all-to-all"
        );
        let permuted = if k == 0 { vec![0; 8] } else { x(kk - 1) };
        assert_eq!(ints(&o[5]), permuted, "collective-permute, core {k}");
        // groups {0,2},{1,3}; the region is max(a, b) + 1, applied left to right
        let (g0, g1) = if k % 2 == 0 { (0, 2) } else { (1, 3) };
        let reduced: Vec<i64> = x(g0)
            .iter()
            .zip(x(g1))
            .map(|(a, b)| a.max(&b) + 1)
            .collect();
        assert_eq!(
            ints(&o[6]),
            reduced,
            "all-reduce-start with a general region"
        );
        let gathered: Vec<i64> = if k % 2 == 1 {
            [x(3), x(1)].concat()
        } else {
            [x(2), x(0)].concat()
        };
        assert_eq!(ints(&o[7]), gathered, "all-gather-start in group order");
        assert_eq!(ints(&o[8]), if k == 0 { x(3) } else { vec![0; 8] });
        assert_eq!(ints(&o[9]), if k < 2 { x(1) } else { x(3) }, "broadcast");
        // ((1e8 + 1) + -1e8) + 1 in f32, left to right in group order
        assert_eq!(o[10].to_f64_vec(), vec![1.0], "float order, core {k}");
        assert_eq!(ints(&o[11]), vec![0]);
        assert_eq!(ints(&o[12]), vec![kk]);
        assert_eq!(
            stats.collectives.len(),
            11,
            "core {k} took part in eleven collectives"
        );
    }
}

#[test]
fn groups_that_do_not_exist_on_the_cores_are_refused_before_a_step() {
    let prog = Program::parse(OPS, "spmd_ops.hlo").unwrap();
    let e = prog.topology(2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("num_partitions=4"), "{e}");
    // eight cores are two replicas of four partitions; the flattened groups leave 4..7 out
    let e = prog.topology(8).unwrap_err();
    assert!(e.to_string().contains("in no group"), "{e}");
    // one core: the module's groups need four
    let e = prog.execute(vec![]).unwrap_err();
    assert!(e.to_string().contains("run it on more cores"), "{e}");
}

const CROSS_REPLICA: &str = r#"HloModule cross_replica

add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}

ENTRY e {
  x = f32[2,2] parameter(0)
  r = u32[] replica-id()
  s = f32[2,2] all-reduce(x), replica_groups={}, to_apply=add
  g = f32[2,4] all-gather(x), replica_groups={{1,0}}, dimensions={1}
  ROOT t = (f32[2,2], f32[2,4], u32[]) tuple(s, g, r)
}
"#;

fn f32s(dims: &[usize], v: &[f64]) -> Arc<Tensor> {
    Arc::new(Tensor::from_f64s(DType::F32, dims, v).unwrap())
}

#[test]
fn a_module_without_channels_runs_its_cores_as_replicas() {
    let prog = Program::parse(CROSS_REPLICA, "cr.hlo").unwrap();
    let topo = prog.topology(2).unwrap();
    assert_eq!((topo.replicas, topo.partitions), (2, 1));
    let args = vec![
        vec![f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0])],
        vec![f32s(&[2, 2], &[10.0, 20.0, 30.0, 40.0])],
    ];
    let outs = prog.execute_spmd(args, topo, DEFAULT_COLLECTIVE_TIMEOUT);
    for (k, out) in outs.into_iter().enumerate() {
        let (o, _) = out.unwrap();
        assert_eq!(o[0].to_f64_vec(), vec![11.0, 22.0, 33.0, 44.0]);
        // replica 1's block first, along dimension 1
        assert_eq!(
            o[1].to_f64_vec(),
            vec![10.0, 20.0, 1.0, 2.0, 30.0, 40.0, 3.0, 4.0]
        );
        assert_eq!(o[2].to_f64_vec(), vec![k as f64]);
    }
}

#[test]
fn a_failing_core_stops_the_others_instead_of_leaving_them_waiting() {
    let prog = Program::parse(CROSS_REPLICA, "cr.hlo").unwrap();
    let topo = prog.topology(2).unwrap();
    let args = vec![
        vec![f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0])],
        vec![f32s(&[4], &[1.0, 2.0, 3.0, 4.0])],
    ];
    let outs = prog.execute_spmd(args, topo, DEFAULT_COLLECTIVE_TIMEOUT);
    assert_eq!(
        outs[1].as_ref().unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let e = outs[0].as_ref().unwrap_err().to_string();
    assert!(e.contains("core 1 failed"), "{e}");
}

/// The generated tensor-parallel decoder (`models::tp_kv_decoder`, what `bench
/// --sweep-tp` runs) on 4 cores, each with its heads' columns of wq/wk/wv and rows of wo,
/// gives the one-core layer's y step after step.
#[test]
fn the_generated_tp_decoder_on_four_cores_is_the_one_core_layer() {
    use statetensor_hlo::models::tp_kv_decoder;
    let (len, d, cores) = (8, 256, 4);
    let one = Program::parse(&tp_kv_decoder(len, d, 1).unwrap(), "tp1").unwrap();
    let four = Program::parse(&tp_kv_decoder(len, d, cores).unwrap(), "tp4").unwrap();
    assert!(
        tp_kv_decoder(len, 64, 2).is_none(),
        "one head does not split"
    );
    let topo = four.topology(cores).unwrap();
    let val =
        |i: usize, salt: usize| (((i * 7919 + salt * 104729) % 1000) as f64 / 1000.0 - 0.5) * 0.2;
    let w: Vec<Vec<f64>> = (1..5)
        .map(|p| (0..d * d).map(|i| val(i, p)).collect())
        .collect();
    // core k's columns of a [d, d] matrix, or its rows
    let cols = |m: &[f64], k: usize| -> Vec<f64> {
        let ds = d / cores;
        (0..d)
            .flat_map(|r| m[r * d + k * ds..r * d + (k + 1) * ds].to_vec())
            .collect()
    };
    let rows = |m: &[f64], k: usize| -> Vec<f64> {
        let ds = d / cores;
        m[k * ds * d..(k + 1) * ds * d].to_vec()
    };
    let hd = 64;
    let mut full_state = vec![
        f32s(&[len, d / hd, hd], &vec![0.0; len * d]),
        f32s(&[len, d / hd, hd], &vec![0.0; len * d]),
        Arc::new(Tensor::from_f64s(DType::S32, &[], &[0.0]).unwrap()),
    ];
    let ds = d / cores;
    let mut shard_state: Vec<Vec<Arc<Tensor>>> = (0..cores)
        .map(|_| {
            vec![
                f32s(&[len, ds / hd, hd], &vec![0.0; len * ds]),
                f32s(&[len, ds / hd, hd], &vec![0.0; len * ds]),
                Arc::new(Tensor::from_f64s(DType::S32, &[], &[0.0]).unwrap()),
            ]
        })
        .collect();
    for step in 0..3 {
        let x = f32s(&[d], &(0..d).map(|i| val(i, 10 + step)).collect::<Vec<_>>());
        let mut args = vec![x.clone()];
        args.extend(w.iter().map(|m| f32s(&[d, d], m)));
        args.extend(full_state.iter().cloned());
        let want = one.execute(args).unwrap();
        full_state = want[1..].to_vec();
        let per_core = (0..cores)
            .map(|k| {
                let mut a = vec![x.clone()];
                a.extend(w[..3].iter().map(|m| f32s(&[d, ds], &cols(m, k))));
                a.push(f32s(&[ds, d], &rows(&w[3], k)));
                a.extend(shard_state[k].iter().cloned());
                a
            })
            .collect();
        let outs = four.execute_spmd(per_core, topo, DEFAULT_COLLECTIVE_TIMEOUT);
        for (k, out) in outs.into_iter().enumerate() {
            let (o, stats) = out.unwrap();
            assert_eq!(stats.collectives.len(), 1, "one all-reduce a step");
            for (g, w) in o[0].to_f64_vec().iter().zip(want[0].to_f64_vec()) {
                assert!(
                    (g - w).abs() <= 1e-5 + 1e-4 * w.abs(),
                    "step {step} core {k}: {g} vs {w}"
                );
            }
            shard_state[k] = o[1..].to_vec();
        }
    }
}
