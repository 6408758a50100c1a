//! `statetensor inspect`: roles, footprints, donors.

use crate::support::{run, stderr, tmpdir};

#[test]
fn inspect_shows_states_and_footprints() {
    let o = run(&["inspect", "examples/kv_decoder"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("k_cache.1") && s.contains("state, updated from output 1"),
        "{s}"
    );
    assert!(s.contains("trn2") && s.contains("fits"), "{s}");
    let o = run(&["inspect", "examples/kv_decoder", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state_bytes"], 2 * 8 * 16 * 4 + 4);
    assert_eq!(v["parameters"][7]["state_from_output"], 3);
}

/// A parameter donated by the header's `buffer_donor` (what torch-xla writes) but not
/// aliased is shown by inspect with the outputs it could alias.
#[test]
fn inspect_names_what_a_donated_parameter_could_alias() {
    let dir = tmpdir("donor");
    let file = dir.join("donor.hlo");
    std::fs::write(
        &file,
        "HloModule m, buffer_donor={ (1, {}) }\nENTRY e {\n  x = f32[2] parameter(0)\n  c = f32[3] parameter(1)\n  y = f32[2] multiply(x, x)\n  c2 = f32[3] negate(c)\n  ROOT t = (f32[2], f32[3]) tuple(y, c2)\n}\n",
    )
    .unwrap();
    let o = run(&["inspect", file.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["parameters"][1]["donated"], true);
    assert_eq!(
        v["parameters"][1]["could_alias_outputs"],
        serde_json::json!([1])
    );
    assert_eq!(v["parameters"][0]["donated"], false);
    let o = run(&["inspect", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("--alias 1=1"));
    // aliased, it is state and no longer a hint
    let o = run(&[
        "inspect",
        file.to_str().unwrap(),
        "--alias",
        "1=1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["parameters"][1]["state_from_output"], 1);
    assert_eq!(
        v["parameters"][1]["could_alias_outputs"],
        serde_json::Value::Null
    );
}
