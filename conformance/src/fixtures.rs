//! The committed fixtures: HLO modules written by `tools/gen_fixtures.py` with JAX as the
//! oracle, each a directory holding `model.hlo`, `model.pb`, inputs, expected outputs after
//! every step and `meta.json` (tolerances, steps). Every test in the workspace finds them
//! here.

use statetensor_core::{packing, AliasMap, DType, HostTensor, LoadOptions};
use statetensor_hlo::{npy, Tensor};
use std::path::{Path, PathBuf};

/// The directory of fixture `name` (`fixture_path("")` is the directory of all fixtures).
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Every fixture's name, sorted.
pub fn fixture_names() -> Vec<String> {
    models_in("")
}

/// A module for two cores whose control flow goes apart: core 0 reaches one all-reduce,
/// core 1 another, which must stop the step with the core that found it named (XLA and the
/// Neuron runtime require every core to issue the same collectives in the same order).
pub const DIVERGING_COLLECTIVES: &str = r#"HloModule diverge, num_partitions=2

add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}

first {
  p1 = f32[4] parameter(0)
  ROOT r1 = f32[4] all-reduce(p1), channel_id=1, replica_groups={{0,1}}, use_global_device_ids=true, to_apply=add
}

second {
  p2 = f32[4] parameter(0)
  ROOT r2 = f32[4] all-reduce(p2), channel_id=2, replica_groups={{0,1}}, use_global_device_ids=true, to_apply=add
}

ENTRY main {
  x = f32[4] parameter(0)
  id = u32[] partition-id()
  zero = u32[] constant(0)
  is0 = pred[] compare(id, zero), direction=EQ
  ROOT c = f32[4] conditional(is0, x, x), true_computation=first, false_computation=second
}
"#;

/// The SPMD fixtures (`spmd/<name>`, written by tools/gen_spmd_fixtures.py): modules
/// partitioned for several cores, each value file holding every core's value along a
/// leading axis. Kept apart from [`fixture_names`], which one core runs.
pub fn spmd_fixture_names() -> Vec<String> {
    models_in("spmd")
}

/// The fixtures directly under `dir` (a directory holding `model.hlo`), named from the
/// fixtures directory, sorted.
fn models_in(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_path(dir))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().join("model.hlo").is_file())
                .filter_map(|e| e.file_name().into_string().ok())
                .map(|n| {
                    if dir.is_empty() {
                        n
                    } else {
                        format!("{dir}/{n}")
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// How many cores SPMD fixture `name` runs on (meta.json's `"cores"`).
pub fn spmd_cores(name: &str) -> usize {
    meta(name)["cores"]
        .as_u64()
        .unwrap_or_else(|| panic!("fixture {name}: meta.json has no \"cores\"")) as usize
}

/// Core `k`'s value in an SPMD fixture's file (every core's value along the leading axis).
pub fn spmd_npy(name: &str, file: &str, k: usize) -> Tensor {
    fixture_npy(name, file)
        .leading_slice(k)
        .unwrap_or_else(|e| panic!("fixture {name}: {file}: core {k}: {e}"))
}

/// How every core of SPMD fixture `name` loads: the alias map beside it and core k's
/// shard of each weight (meta.json's `"weights"`, sliced from `arg{p}.npy`).
pub fn spmd_load_options(name: &str) -> Vec<LoadOptions> {
    (0..spmd_cores(name))
        .map(|k| LoadOptions {
            aliases: fixture_aliases(name),
            weights: fixture_weights(name)
                .into_iter()
                .map(|p| {
                    (
                        p,
                        Some(host_tensor(&spmd_npy(name, &format!("arg{p}.npy"), k))),
                    )
                })
                .collect(),
            ..LoadOptions::default()
        })
        .collect()
}

/// A fixture's HLO text.
pub fn fixture_hlo(name: &str) -> String {
    let path = fixture_path(name).join("model.hlo");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

fn meta(name: &str) -> serde_json::Value {
    let path = fixture_path(name).join("meta.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// The parameter numbers listed under `key` in fixture `name`'s meta.json.
fn meta_params(name: &str, key: &str) -> Vec<usize> {
    meta(name)[key]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|v| v.as_u64())
                .map(|p| p as usize)
                .collect()
        })
        .unwrap_or_default()
}

/// The parameters fixture `name` feeds a new value every step (meta.json's `"feeds"`).
pub fn fixture_feeds(name: &str) -> Vec<usize> {
    meta_params(name, "feeds")
}

/// An npy file of fixture `name` (`arg0.npy`, `out2_1.npy`, ...). NumPy saves int4, uint4
/// and float8_e4m3fn alike (`<V1`); meta.json's `"dtypes"` names the file's type where it
/// is not what the header alone says.
pub fn fixture_npy(name: &str, file: &str) -> Tensor {
    let path = fixture_path(name).join(file);
    let read = match meta(name)["dtypes"][file].as_str() {
        Some(hint) => {
            let want = DType::from_hlo_name(hint)
                .unwrap_or_else(|| panic!("fixture {name}: meta.json dtypes: '{hint}'"));
            npy::read_file_as(&path, want)
        }
        None => npy::read_file(&path),
    };
    read.unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The value of parameter `p` of fixture `name` at `step`: slice `step` of `feed{p}.npy`
/// for a parameter fed a new value every step (meta.json's `"feeds"`), else `arg{p}.npy`.
pub fn fixture_arg(name: &str, p: usize, step: usize) -> Tensor {
    if !fixture_feeds(name).contains(&p) {
        return fixture_npy(name, &format!("arg{p}.npy"));
    }
    step_slice(&fixture_npy(name, &format!("feed{p}.npy")), step)
}

/// Slice `step` of `all` along its leading (step) axis.
fn step_slice(all: &Tensor, step: usize) -> Tensor {
    let dims = &all.dims()[1..];
    let per_step = all.len() / all.dims()[0];
    let (dtype, bytes) = (all.dtype(), all.to_le_bytes());
    let step_bytes = if dtype.is_packed() {
        // int4 is packed two to a byte: a step may start in the middle of one
        let mut values = vec![0u8; all.len()];
        packing::unpack_nibbles(dtype, &bytes, &mut values);
        let mut packed = vec![0u8; per_step.div_ceil(2)];
        packing::pack_nibbles(&values[step * per_step..(step + 1) * per_step], &mut packed);
        packed
    } else {
        let size = dtype.size_bytes() * per_step;
        bytes[step * size..(step + 1) * size].to_vec()
    };
    Tensor::from_le_bytes(dtype, dims, &step_bytes).expect("a slice of the feed")
}

/// The alias map a fixture keeps outside its HLO (meta.json's `"aliases"`, as torch-neuronx
/// keeps it beside the model), or `None` when the HLO header holds it.
pub fn fixture_aliases(name: &str) -> Option<AliasMap> {
    let path = fixture_path(name).join("meta.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    let meta: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    let pairs = meta.get("aliases")?.as_object()?;
    let map = AliasMap::from_pairs(pairs.iter().map(|(p, o)| {
        let p = p
            .parse::<usize>()
            .expect("meta.json aliases: a parameter number");
        let o = o.as_u64().expect("meta.json aliases: an output index") as usize;
        (p, o)
    }))
    .expect("meta.json aliases: a valid map");
    Some(map)
}

/// The parameters fixture `name` keeps resident as weights (meta.json's `"weights"`).
pub fn fixture_weights(name: &str) -> Vec<usize> {
    meta_params(name, "weights")
}

/// A host copy of a tensor.
pub fn host_tensor(t: &Tensor) -> HostTensor {
    HostTensor::new(t.dtype(), t.dims().to_vec(), t.to_le_bytes()).expect("a whole tensor")
}

/// How fixture `name` is loaded: the alias map beside it ([`fixture_aliases`]) and its
/// weights with their values ([`fixture_weights`]).
pub fn fixture_load_options(name: &str) -> LoadOptions {
    LoadOptions {
        aliases: fixture_aliases(name),
        weights: fixture_weights(name)
            .into_iter()
            .map(|p| (p, Some(host_tensor(&fixture_arg(name, p, 0)))))
            .collect(),
        ..LoadOptions::default()
    }
}

/// The alias map fixture `name` runs with: the one beside it, else its HLO header's
/// (`header`).
pub fn fixture_alias_map(name: &str, header: &AliasMap) -> AliasMap {
    fixture_aliases(name).unwrap_or_else(|| header.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A feed of s4[2,3]: step 1 starts in the middle of a packed byte.
    #[test]
    fn int4_feeds_are_sliced_by_elements() {
        let mut packed = [0u8; 3];
        packing::pack_nibbles(&[1, 2, 3, 0xc, 0xd, 7], &mut packed); // 1 2 3 | -4 -3 7
        let all = Tensor::from_le_bytes(DType::S4, &[2, 3], &packed).unwrap();
        assert_eq!(step_slice(&all, 0).to_f64_vec(), [1.0, 2.0, 3.0]);
        assert_eq!(step_slice(&all, 1).to_f64_vec(), [-4.0, -3.0, 7.0]);
        let f = Tensor::from_le_bytes(DType::F32, &[2, 1], &[0, 0, 128, 63, 0, 0, 0, 64]).unwrap();
        assert_eq!(step_slice(&f, 1).to_f64_vec(), [2.0]);
    }
}
