//! Generated models: HLO text for a state-size parameter, so the savings can be measured
//! over a range of state sizes (`statetensor bench --sweep`, the savings benchmarks).

/// A single-token attention step over a KV cache of `len` rows of width `d` (f32): project
/// x to q, k, v; write k and v at `pos` (in place); attend over rows `<= pos`; return y and
/// `pos + 1`. Parameters: x, wq, wk, wv (inputs), k_cache, v_cache, pos (state).
pub fn kv_decoder(len: usize, d: usize) -> String {
    format!(
        r#"HloModule kv_decoder_{len}, input_output_alias={{ {{1}}: (4, {{}}, must-alias), {{2}}: (5, {{}}, must-alias), {{3}}: (6, {{}}, must-alias) }}

max {{
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT m = f32[] maximum(a, b)
}}

add {{
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}}

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
