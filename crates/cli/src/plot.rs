//! The sweep's SVG plot.

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
