//! State sets to and from files in the safetensors format, streamed: each state tensor goes
//! between the device and the file in bounded chunks, never as a second full host copy.
//!
//! Works over any [`StatefulModel`], so the simulator and the driver write the same files.
//! safetensors has no int4 type: an `s4`/`u4` state is written as `I8`/`U8`, one value per
//! byte, and range-checked when read back.

use crate::{packing, DType, Error, Result, ShardedModel, StatefulModel, TensorSpec, STREAM_CHUNK};
use std::io::{Read, Write};

fn st_dtype(d: DType) -> &'static str {
    match d {
        DType::Pred => "BOOL",
        // safetensors has no int4 type: one value per byte, in the 8-bit type
        DType::S4 => "I8",
        DType::U4 => "U8",
        DType::S8 => "I8",
        DType::S16 => "I16",
        DType::S32 => "I32",
        DType::S64 => "I64",
        DType::U8 => "U8",
        DType::U16 => "U16",
        DType::U32 => "U32",
        DType::U64 => "U64",
        DType::F16 => "F16",
        DType::BF16 => "BF16",
        DType::F32 => "F32",
        DType::F64 => "F64",
        // the safetensors format's names for the FP8 formats
        DType::F8E4M3FN => "F8_E4M3",
        DType::F8E5M2 => "F8_E5M2",
    }
}

/// Bytes a state takes in the file: its wire size, except int4, one value per byte.
fn file_bytes(spec: &TensorSpec) -> u64 {
    if spec.dtype.is_packed() {
        spec.shape.element_count() as u64
    } else {
        spec.size_bytes() as u64
    }
}

/// Streams state `spec` of `set` to `w` as a file holds it: its wire bytes, except int4,
/// one value per byte — its low nibble with `nibbles` (how NumPy saves `ml_dtypes.int4`),
/// else sign-extended for `s4` (an `I8` tensor, as safetensors holds it).
pub fn write_state_values(
    model: &dyn StatefulModel,
    set: &str,
    spec: &TensorSpec,
    w: &mut dyn Write,
    nibbles: bool,
) -> Result<()> {
    if !spec.dtype.is_packed() {
        return model.read_state_to(set, &spec.name, w).map(|_| ());
    }
    packing::stream_unpacked(
        if nibbles { DType::U4 } else { spec.dtype },
        spec.shape.element_count(),
        STREAM_CHUNK,
        |off, buf| model.read_state(set, &spec.name, off as u64, buf),
        |values| {
            w.write_all(values)
                .map_err(|e| Error::io("read state", &spec.name, e))
        },
    )
}

/// Streams state `spec` of `set` from `r` holding it as [`write_state_values`] writes it
/// (int4 range-checked; with `nibbles`, a low-nibble byte is accepted too).
pub fn read_state_values(
    model: &dyn StatefulModel,
    set: &str,
    spec: &TensorSpec,
    r: &mut dyn Read,
    nibbles: bool,
) -> Result<()> {
    if !spec.dtype.is_packed() {
        return model.write_state_from(set, &spec.name, r).map(|_| ());
    }
    let count = spec.shape.element_count();
    let what = format!("write state '{}'", spec.name);
    packing::stream_packed(
        spec.dtype,
        count,
        STREAM_CHUNK,
        nibbles,
        &what,
        |done, values| {
            r.read_exact(values).map_err(|e| {
                Error::invalid_input(
                    &what,
                    format!("needs {count} values; the source ended after {done}: {e}"),
                )
            })
        },
        |off, packed| model.write_state(set, &spec.name, off as u64, packed),
    )
}

/// One tensor of a snapshot: its name in the file, the model holding it (a core, for a
/// sharded model) and its spec.
struct Entry<'a> {
    name: String,
    model: &'a dyn StatefulModel,
    spec: &'a TensorSpec,
}

/// Every state of `model`, named by state (or `{prefix}{state}`), in name order.
fn entries<'a>(model: &'a dyn StatefulModel, prefix: &str) -> Vec<Entry<'a>> {
    let sig = model.signature();
    let mut v: Vec<Entry<'a>> = sig
        .state_params()
        .iter()
        .map(|&p| Entry {
            name: format!("{prefix}{}", sig.params[p].name),
            model,
            spec: &sig.params[p],
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// The tensors of a sharded model's snapshot: core k's shard of state `s` is `core{k}/{s}`.
fn sharded_entries(model: &dyn ShardedModel) -> Vec<Entry<'_>> {
    (0..model.cores())
        .flat_map(|k| entries(model.core(k), &format!("core{k}/")))
        .collect()
}

/// Writes every state of `set` as a safetensors file (tensors named by state, in name order).
pub fn save_state_set(model: &dyn StatefulModel, set: &str, w: &mut dyn Write) -> Result<u64> {
    save_entries(&entries(model, ""), set, None, w)
}

/// Writes every core's shard of every state of `set` as one safetensors file: core k's
/// shard of state `s` as `core{k}/{s}` (the metadata says how many cores).
pub fn save_sharded_state_set(
    model: &dyn ShardedModel,
    set: &str,
    w: &mut dyn Write,
) -> Result<u64> {
    save_entries(&sharded_entries(model), set, Some(model.cores()), w)
}

fn save_entries(
    entries: &[Entry<'_>],
    set: &str,
    cores: Option<usize>,
    w: &mut dyn Write,
) -> Result<u64> {
    let mut header = serde_json::Map::new();
    let mut meta = serde_json::Map::new();
    meta.insert("format".into(), "statetensor state set".into());
    meta.insert("state_set".into(), set.into());
    if let Some(n) = cores {
        meta.insert("cores".into(), n.to_string().into());
    }
    header.insert("__metadata__".into(), serde_json::Value::Object(meta));
    let mut off = 0u64;
    for e in entries {
        let size = file_bytes(e.spec);
        header.insert(
            e.name.clone(),
            serde_json::json!({"dtype": st_dtype(e.spec.dtype), "shape": e.spec.shape.dims(), "data_offsets": [off, off + size]}),
        );
        off += size;
    }
    let mut text = serde_json::to_string(&serde_json::Value::Object(header))
        .map_err(|e| Error::runtime("save state set", e.to_string()))?;
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let io = |e: std::io::Error| Error::io("save state set", set, e);
    w.write_all(&(text.len() as u64).to_le_bytes())
        .map_err(io)?;
    w.write_all(text.as_bytes()).map_err(io)?;
    for e in entries {
        write_state_values(e.model, set, e.spec, w, false)?;
    }
    w.flush().map_err(io)?;
    Ok(8 + text.len() as u64 + off)
}

/// Reads a safetensors file written by [`save_state_set`] (or any file holding exactly the
/// model's states) into `set`, creating it if needed. The header is checked in full before
/// any data is written; if the data then ends early the set is reset, so it never holds a
/// mix of old and new values.
pub fn load_state_set(
    model: &dyn StatefulModel,
    set: &str,
    r: &mut dyn Read,
    what: &str,
) -> Result<()> {
    load_entries(
        &entries(model, ""),
        set,
        r,
        what,
        || model.create_state_set(set, crate::StateInit::Zeros),
        || {
            let _ = model.reset(set);
        },
    )
}

/// Reads a file written by [`save_sharded_state_set`] into `set` on every core, creating it
/// where needed: checked in full before any data is written; if the data then ends early
/// every core's set is reset.
pub fn load_sharded_state_set(
    model: &dyn ShardedModel,
    set: &str,
    r: &mut dyn Read,
    what: &str,
) -> Result<()> {
    let init = [crate::StateInit::Zeros];
    load_entries(
        &sharded_entries(model),
        set,
        r,
        what,
        || {
            if (0..model.cores()).all(|k| model.core(k).has_state_set(set)) {
                Ok(())
            } else {
                model.create_state_set(set, &init)
            }
        },
        || {
            let _ = model.reset(set);
        },
    )
}

fn load_entries(
    entries: &[Entry<'_>],
    set: &str,
    r: &mut dyn Read,
    what: &str,
    create: impl FnOnce() -> Result<()>,
    reset: impl Fn(),
) -> Result<()> {
    let bad = |m: String| Error::invalid_input(format!("load state set from '{what}'"), m);
    let mut len = [0u8; 8];
    r.read_exact(&mut len)
        .map_err(|_| bad("file is shorter than a safetensors header".into()))?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        return Err(bad(format!(
            "header of {len} bytes is implausibly large: not a safetensors file"
        )));
    }
    let mut text = vec![0u8; len as usize];
    r.read_exact(&mut text)
        .map_err(|_| bad("file ends inside its header".into()))?;
    let header: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("header is not JSON: {e}")))?;
    let obj = header
        .as_object()
        .ok_or_else(|| bad("header is not a JSON object".into()))?;
    let mut plan: Vec<(u64, u64, usize)> = Vec::new();
    for (name, entry) in obj.iter().filter(|(k, _)| *k != "__metadata__") {
        let Some(i) = entries.iter().position(|e| &e.name == name) else {
            let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            return Err(bad(format!(
                "'{name}' is not a state of this model (its states: {})",
                names.join(", ")
            )));
        };
        let spec = entries[i].spec;
        let dtype = entry["dtype"].as_str().unwrap_or("");
        let shape: Option<Vec<usize>> = entry["shape"].as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_u64().map(|x| x as usize))
                .collect()
        });
        if dtype != st_dtype(spec.dtype) || shape.as_deref() != Some(spec.shape.dims()) {
            return Err(bad(format!(
                "'{name}' is {dtype}{:?} in the file, the state is {}",
                shape.unwrap_or_default(),
                spec.type_string()
            )));
        }
        let offs: Vec<u64> = entry["data_offsets"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
            .unwrap_or_default();
        match offs[..] {
            [a, b] if b >= a && b - a == file_bytes(spec) => plan.push((a, b, i)),
            _ => {
                return Err(bad(format!(
                    "'{name}' has data_offsets {offs:?}; expected {} bytes",
                    file_bytes(spec)
                )))
            }
        }
    }
    for (i, e) in entries.iter().enumerate() {
        if !plan.iter().any(|&(_, _, j)| j == i) {
            return Err(bad(format!(
                "the file has no tensor for state '{}'",
                e.name
            )));
        }
    }
    plan.sort();
    let mut at = 0u64;
    for (a, b, _) in &plan {
        if *a != at {
            return Err(bad(format!(
                "tensor data is not contiguous at byte {a} (expected {at})"
            )));
        }
        at = *b;
    }
    // creates the set, or attaches to it when it exists (it is then overwritten whole)
    create()?;
    for &(_, _, i) in &plan {
        let e = &entries[i];
        if let Err(err) = read_state_values(e.model, set, e.spec, r, false) {
            reset();
            return Err(bad(format!("{err}; the state set was reset")));
        }
    }
    Ok(())
}
