//! Generated models: HLO text for a state-size parameter, so the savings can be measured
//! over a range of state sizes (`statetensor bench --sweep`, the savings benchmarks).

/// The reduction regions the generated models use: `max` and `add` over f32.
const REDUCERS: &str = "max {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT m = f32[] maximum(a, b)
}

add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}
";

/// A single-token attention step over a KV cache of `len` rows of width `d` (f32): project
/// x to q, k, v; write k and v at `pos` (in place); attend over rows `<= pos`; return y and
/// `pos + 1`. Parameters: x, wq, wk, wv (inputs), k_cache, v_cache, pos (state).
pub fn kv_decoder(len: usize, d: usize) -> String {
    format!(
        r#"HloModule kv_decoder_{len}, input_output_alias={{ {{1}}: (4, {{}}, must-alias), {{2}}: (5, {{}}, must-alias), {{3}}: (6, {{}}, must-alias) }}

{REDUCERS}
ENTRY step {{
  x = f32[{d}] parameter(0)
  wq = f32[{d},{d}] parameter(1)
  wk = f32[{d},{d}] parameter(2)
  wv = f32[{d},{d}] parameter(3)
  k_cache = f32[{len},{d}] parameter(4)
  v_cache = f32[{len},{d}] parameter(5)
  pos = s32[] parameter(6)
  q = f32[{d}] dot(x, wq), lhs_contracting_dims={{0}}, rhs_contracting_dims={{0}}
  k = f32[{d}] dot(x, wk), lhs_contracting_dims={{0}}, rhs_contracting_dims={{0}}
  v = f32[{d}] dot(x, wv), lhs_contracting_dims={{0}}, rhs_contracting_dims={{0}}
  k_row = f32[1,{d}] reshape(k)
  v_row = f32[1,{d}] reshape(v)
  zero = s32[] constant(0)
  k_new = f32[{len},{d}] dynamic-update-slice(k_cache, k_row, pos, zero)
  v_new = f32[{len},{d}] dynamic-update-slice(v_cache, v_row, pos, zero)
  scores = f32[{len}] dot(k_new, q), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}
  idx = s32[{len}] iota(), iota_dimension=0
  posb = s32[{len}] broadcast(pos), dimensions={{}}
  live = pred[{len}] compare(idx, posb), direction=LE
  ninf = f32[] constant(-inf)
  ninfb = f32[{len}] broadcast(ninf), dimensions={{}}
  masked = f32[{len}] select(live, scores, ninfb)
  mx = f32[] reduce(masked, ninf), dimensions={{0}}, to_apply=max
  mxb = f32[{len}] broadcast(mx), dimensions={{}}
  shifted = f32[{len}] subtract(masked, mxb)
  e = f32[{len}] exponential(shifted)
  fzero = f32[] constant(0)
  total = f32[] reduce(e, fzero), dimensions={{0}}, to_apply=add
  totalb = f32[{len}] broadcast(total), dimensions={{}}
  p = f32[{len}] divide(e, totalb)
  y = f32[{d}] dot(p, v_new), lhs_contracting_dims={{0}}, rhs_contracting_dims={{0}}
  one = s32[] constant(1)
  pos_next = s32[] add(pos, one)
  ROOT out = (f32[{d}], f32[{len},{d}], f32[{len},{d}], s32[]) tuple(y, k_new, v_new, pos_next)
}}
"#
    )
}

/// Head size of [`tp_kv_decoder`]: 64, or the whole width when it is narrower.
pub fn tp_head_dim(d: usize) -> usize {
    d.min(64)
}

/// One step of a Megatron-style tensor-parallel attention layer of width `d` over a
/// `len`-token cache, run by `cores` cores (`replica_count={cores}`): each core holds
/// `heads / cores` heads — its columns of wq/wk/wv (f32[d, d/cores], parameters 1-3), its
/// rows of wo (f32[d/cores, d], parameter 4), its heads' slice of the K and V caches
/// (f32[len, heads/cores, head_dim], states 5 and 6, aliased to outputs 1 and 2) — and the
/// position (state 7); x (parameter 0) is every core's. Its output y is all-reduced, the
/// one collective of the step. `None` when the heads (`d / 64`, or one head narrower than
/// 64) do not divide among the cores.
pub fn tp_kv_decoder(len: usize, d: usize, cores: usize) -> Option<String> {
    let hd = tp_head_dim(d);
    let heads = d / hd;
    if cores == 0 || d % hd != 0 || heads % cores != 0 {
        return None;
    }
    let hpc = heads / cores;
    let ds = hpc * hd;
    Some(format!(
        r#"HloModule tp_kv_decoder_{len}_{d}_tp{cores}, replica_count={cores}, input_output_alias={{ {{1}}: (5, {{}}, must-alias), {{2}}: (6, {{}}, must-alias), {{3}}: (7, {{}}, must-alias) }}

{REDUCERS}
ENTRY step {{
  x = f32[{d}] parameter(0)
  wq = f32[{d},{ds}] parameter(1)
  wk = f32[{d},{ds}] parameter(2)
  wv = f32[{d},{ds}] parameter(3)
  wo = f32[{ds},{d}] parameter(4)
  k_cache = f32[{len},{hpc},{hd}] parameter(5)
  v_cache = f32[{len},{hpc},{hd}] parameter(6)
  pos = s32[] parameter(7)
  q = f32[{ds}] dot(x, wq), lhs_contracting_dims={{0}}, rhs_contracting_dims={{0}}
  k = f32[{ds}] dot(x, wk), lhs_contracting_dims={{0}}, rhs_contracting_dims={{0}}
  v = f32[{ds}] dot(x, wv), lhs_contracting_dims={{0}}, rhs_contracting_dims={{0}}
  qh = f32[{hpc},{hd}] reshape(q)
  k_row = f32[1,{hpc},{hd}] reshape(k)
  v_row = f32[1,{hpc},{hd}] reshape(v)
  zero = s32[] constant(0)
  k_new = f32[{len},{hpc},{hd}] dynamic-update-slice(k_cache, k_row, pos, zero, zero)
  v_new = f32[{len},{hpc},{hd}] dynamic-update-slice(v_cache, v_row, pos, zero, zero)
  scores = f32[{hpc},{len}] dot(qh, k_new), lhs_batch_dims={{0}}, lhs_contracting_dims={{1}}, rhs_batch_dims={{1}}, rhs_contracting_dims={{2}}
  idx = s32[{hpc},{len}] iota(), iota_dimension=1
  posb = s32[{hpc},{len}] broadcast(pos), dimensions={{}}
  live = pred[{hpc},{len}] compare(idx, posb), direction=LE
  ninf = f32[] constant(-inf)
  ninfb = f32[{hpc},{len}] broadcast(ninf), dimensions={{}}
  masked = f32[{hpc},{len}] select(live, scores, ninfb)
  mx = f32[{hpc}] reduce(masked, ninf), dimensions={{1}}, to_apply=max
  mxb = f32[{hpc},{len}] broadcast(mx), dimensions={{0}}
  shifted = f32[{hpc},{len}] subtract(masked, mxb)
  e = f32[{hpc},{len}] exponential(shifted)
  fzero = f32[] constant(0)
  total = f32[{hpc}] reduce(e, fzero), dimensions={{1}}, to_apply=add
  totalb = f32[{hpc},{len}] broadcast(total), dimensions={{0}}
  p = f32[{hpc},{len}] divide(e, totalb)
  yh = f32[{hpc},{hd}] dot(p, v_new), lhs_batch_dims={{0}}, lhs_contracting_dims={{1}}, rhs_batch_dims={{1}}, rhs_contracting_dims={{0}}
  ys = f32[{ds}] reshape(yh)
  part = f32[{d}] dot(ys, wo), lhs_contracting_dims={{0}}, rhs_contracting_dims={{0}}
  y = f32[{d}] all-reduce(part), replica_groups={{}}, to_apply=add
  one = s32[] constant(1)
  pos_next = s32[] add(pos, one)
  ROOT out = (f32[{d}], f32[{len},{hpc},{hd}], f32[{len},{hpc},{hd}], s32[]) tuple(y, k_new, v_new, pos_next)
}}
"#
    ))
}
