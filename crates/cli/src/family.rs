//! Built-in model families for `statetensor bench --sweep`: HLO text generated for a
//! state-size parameter.

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

/// `128:32768` (doubling from the first to the last) or `128,1024,4096`.
pub fn parse_sizes(spec: &str) -> Option<Vec<usize>> {
    if let Some((a, b)) = spec.split_once(':') {
        let (mut a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if a == 0 || a > b {
            return None;
        }
        let mut v = Vec::new();
        while a <= b {
            v.push(a);
            a *= 2;
        }
        return Some(v);
    }
    let v: Option<Vec<usize>> = spec
        .split(',')
        .map(|s| s.trim().parse().ok().filter(|&n: &usize| n > 0))
        .collect();
    v.filter(|v| !v.is_empty())
}

/// A log-log SVG plot of time per step against state size, one line per series.
pub fn svg(title: &str, xs: &[f64], series: &[(&str, &str, Vec<f64>)]) -> String {
    let (w, h, m) = (720.0, 440.0, 70.0);
    let lx = |v: f64| v.max(1e-30).log10();
    let all: Vec<f64> = series.iter().flat_map(|s| s.2.iter().copied()).collect();
    let (x0, x1) = (
        lx(xs.iter().cloned().fold(f64::MAX, f64::min)),
        lx(xs.iter().cloned().fold(0.0, f64::max)),
    );
    let (y0, y1) = (
        lx(all.iter().cloned().fold(f64::MAX, f64::min)).floor(),
        lx(all.iter().cloned().fold(0.0, f64::max)).ceil(),
    );
    let px = |v: f64| m + (lx(v) - x0) / (x1 - x0).max(1e-9) * (w - 2.0 * m);
    let py = |v: f64| h - m - (lx(v) - y0) / (y1 - y0).max(1e-9) * (h - 2.0 * m);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="24" text-anchor="middle" font-size="15">{title}</text>
<line x1="{m}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{m}" y1="{m}" x2="{m}" y2="{}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">state size (bytes, log scale)</text>
<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">time per step (s, log scale)</text>
"#,
        w / 2.0,
        h - m,
        w - m,
        h - m,
        h - m,
        w / 2.0,
        h - 20.0,
        h / 2.0,
        h / 2.0
    );
    for &x in xs {
        s.push_str(&format!(
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            px(x),
            h - m + 16.0,
            crate::report::bytes(x as u64)
        ));
        s.push('\n');
    }
    let mut e = y0;
    while e <= y1 {
        let v = 10f64.powf(e);
        s.push_str(&format!(r##"<text x="{}" y="{:.1}" text-anchor="end">1e{}</text><line x1="{m}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#ddd"/>"##, m - 6.0, py(v) + 4.0, e, py(v), w - m, py(v)));
        s.push('\n');
        e += 1.0;
    }
    for (i, (name, color, ys)) in series.iter().enumerate() {
        let pts: Vec<String> = xs
            .iter()
            .zip(ys)
            .map(|(&x, &y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        s.push_str(&format!(
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        ));
        for p in &pts {
            let (a, b) = p.split_once(',').unwrap_or(("0", "0"));
            s.push_str(&format!(
                r#"<circle cx="{a}" cy="{b}" r="3" fill="{color}"/>"#
            ));
        }
        s.push_str(&format!(
            r#"<text x="{}" y="{}" fill="{color}">{name}</text>"#,
            m + 10.0,
            m + 16.0 * (i as f64 + 1.0)
        ));
        s.push('\n');
    }
    s.push_str("</svg>\n");
    s
}
