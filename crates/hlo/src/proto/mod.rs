//! `HloModuleProto` input: the serialized module torch-neuronx and JAX hand `neuronx-cc`,
//! read into the same IR as the text parser produces, so the planner checks it the same way.
//!
//! Design choices:
//! - **One IR, one validation.** The proto is decoded (prost messages in `messages.rs`) and converted
//!   instruction by instruction into [`Module`]: types from shapes, operands from ids,
//!   called computations by name, and the attributes the planner reads spelled as HLO text
//!   spells them (`dimensions={1}`, `window={size=2x2 ...}`; a collective's groups in
//!   `collective.rs`). Everything after that — type
//!   checks, alias validation, planning — is the text path's code.
//! - **Full constants.** A constant's `LiteralProto` is decoded to a tensor directly (the
//!   text printer elides large constants; the proto never does), reordered to row-major
//!   when its layout says otherwise.
//! - **Never a panic.** Truncated or malformed bytes are a parse error naming the file;
//!   ids that point nowhere, negative sizes and element types statetensor does not execute
//!   are errors naming the instruction.

mod collective;
mod messages;

use crate::ir::{AliasEntry, ArrayType, Attr, Computation, Instr, Literal, Module, Pos, Type};
use crate::Tensor;
use messages::{
    primitive, HloComputationProto, HloInstructionProto, LiteralProto, ShapeProto, MAY_ALIAS,
};
use prost::Message;
use statetensor_core::{AliasMap, DType, Error, Location, Result};
use std::collections::HashMap;
use std::sync::Arc;

/// Whether `bytes` are HLO text rather than a serialized proto: UTF-8 whose first word (after
/// blank lines and `//` comments) is `HloModule`, or UTF-8 without control characters other
/// than tabs and line breaks (a module written without its header, or one instruction). A
/// serialized `HloModuleProto` always holds such bytes: its field tags and lengths are small
/// numbers (the name's tag is 0x0a, and every shape's element type and dimension count
/// follow as bytes below 0x20).
pub fn is_hlo_text(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let header = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("//"))
        .is_some_and(|l| l.starts_with("HloModule"));
    header
        || bytes
            .iter()
            .all(|&b| b >= 0x20 && b != 0x7f || matches!(b, b'\t' | b'\n' | b'\r'))
}

fn parse_error(file: &str, message: impl Into<String>) -> Error {
    Error::Parse {
        location: Location {
            file: file.to_string(),
            line: 0,
            column: 0,
        },
        message: message.into(),
    }
}

/// A decoded `HloModuleProto`, not yet checked.
pub struct Decoded(messages::HloModuleProto);

/// Decodes the wire format of a serialized `HloModuleProto`.
pub fn decode(bytes: &[u8], file: &str) -> Result<Decoded> {
    messages::HloModuleProto::decode(bytes)
        .map(Decoded)
        .map_err(|e| {
            parse_error(
                file,
                format!(
                    "not a serialized HloModuleProto ({} bytes): {e}",
                    bytes.len()
                ),
            )
        })
}

/// Decodes a serialized `HloModuleProto` into the parser's IR.
pub fn parse_module_proto(bytes: &[u8], file: &str) -> Result<Module> {
    to_module(decode(bytes, file)?, file)
}

/// A decoded module in the parser's IR.
pub fn to_module(decoded: Decoded, file: &str) -> Result<Module> {
    let m = decoded.0;
    if m.computations.is_empty() {
        return Err(parse_error(
            file,
            "the HloModuleProto holds no computations",
        ));
    }
    let mut names_by_id: HashMap<i64, String> = HashMap::new();
    for c in &m.computations {
        if names_by_id.insert(c.id, c.name.clone()).is_some() {
            return Err(parse_error(
                file,
                format!("two computations have id {}", c.id),
            ));
        }
    }
    let computations = m
        .computations
        .iter()
        .map(|c| computation(c, &names_by_id))
        .collect::<Result<Vec<_>>>()?;
    let entry = if !m.entry_computation_name.is_empty() {
        computations
            .iter()
            .position(|c| c.name == m.entry_computation_name)
            .ok_or_else(|| {
                parse_error(
                    file,
                    format!(
                        "the entry computation '{}' is not among the module's computations",
                        m.entry_computation_name
                    ),
                )
            })?
    } else {
        m.computations
            .iter()
            .position(|c| c.id == m.entry_computation_id)
            .unwrap_or(computations.len() - 1)
    };
    let mut aliases = Vec::new();
    for e in m.input_output_alias.iter().flat_map(|a| &a.entries) {
        aliases.push(AliasEntry {
            output_index: indices(&e.output_shape_index, "input_output_alias output index")?,
            param: index(e.parameter_number, "input_output_alias parameter")?,
            param_index: indices(
                &e.parameter_shape_index,
                "input_output_alias parameter index",
            )?,
            must_alias: e.kind == messages::MUST_ALIAS,
            pos: Pos::PROTO,
        });
    }
    let mut buffer_donors = Vec::new();
    for d in m.buffer_donor.iter().flat_map(|b| &b.entries) {
        buffer_donors.push((
            index(d.parameter_number, "buffer_donor parameter")?,
            indices(&d.parameter_shape_index, "buffer_donor parameter index")?,
            Pos::PROTO,
        ));
    }
    let entry_layout = match &m.host_program_shape {
        Some(ps) if ps.result.is_some() => Some((
            ps.parameters
                .iter()
                .map(|s| shape_type(s, "host_program_shape"))
                .collect::<Result<Vec<_>>>()?,
            shape_type(ps.result.as_ref().expect("checked"), "host_program_shape")?,
            Pos::PROTO,
        )),
        _ => None,
    };
    Ok(Module {
        name: m.name,
        file: file.to_string(),
        computations,
        entry,
        aliases,
        buffer_donors,
        entry_layout,
        // an HloModuleProto does not carry its module config
        devices: crate::ir::DeviceCounts::default(),
    })
}

fn invalid(context: &str, message: impl Into<String>) -> Error {
    Error::invalid_model(format!("HloModuleProto: {context}"), message)
}

fn index(v: i64, what: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| invalid(what, format!("{v} is negative")))
}

fn indices(v: &[i64], what: &str) -> Result<Vec<usize>> {
    v.iter().map(|&x| index(x, what)).collect()
}

fn dtype(t: i32, what: &str) -> Result<DType> {
    use primitive::*;
    Ok(match t {
        PRED => DType::Pred,
        S4 => DType::S4,
        U4 => DType::U4,
        S8 => DType::S8,
        S16 => DType::S16,
        S32 => DType::S32,
        S64 => DType::S64,
        U8 => DType::U8,
        U16 => DType::U16,
        U32 => DType::U32,
        U64 => DType::U64,
        F16 => DType::F16,
        BF16 => DType::BF16,
        F32 => DType::F32,
        F64 => DType::F64,
        F8E4M3FN => DType::F8E4M3FN,
        F8E5M2 => DType::F8E5M2,
        other => {
            return Err(Error::Unsupported {
                context: format!("HloModuleProto: {what}"),
                what: format!("element type {} ({other})", primitive::other_name(other)),
            })
        }
    })
}

fn shape_type(s: &ShapeProto, what: &str) -> Result<Type> {
    Ok(match s.element_type {
        primitive::TUPLE => Type::Tuple(
            s.tuple_shapes
                .iter()
                .map(|e| shape_type(e, what))
                .collect::<Result<_>>()?,
        ),
        primitive::TOKEN => Type::Token,
        t => {
            let dtype = dtype(t, what)?;
            let dims = indices(&s.dimensions, &format!("{what}: dimension"))?;
            let bytes = dims
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .and_then(|c| c.checked_mul(dtype.size_bytes()));
            if bytes.is_none() {
                return Err(invalid(
                    what,
                    format!("array type {dtype}{dims:?} is too large: its byte size overflows"),
                ));
            }
            Type::Array(ArrayType { dtype, dims })
        }
    })
}

/// `{1,2,3}`.
fn list<T: std::fmt::Display>(v: &[T]) -> String {
    let items: Vec<String> = v.iter().map(T::to_string).collect();
    format!("{{{}}}", items.join(","))
}

/// `AxBxC`.
fn by(v: impl Iterator<Item = i64>) -> String {
    v.map(|x| x.to_string()).collect::<Vec<_>>().join("x")
}

fn computation(c: &HloComputationProto, names: &HashMap<i64, String>) -> Result<Computation> {
    let mut by_id: HashMap<i64, usize> = HashMap::new();
    for (k, i) in c.instructions.iter().enumerate() {
        if by_id.insert(i.id, k).is_some() {
            return Err(invalid(
                &c.name,
                format!("two instructions have id {}", i.id),
            ));
        }
    }
    let mut instrs = Vec::with_capacity(c.instructions.len());
    let mut params: Vec<Option<usize>> = Vec::new();
    for (k, i) in c.instructions.iter().enumerate() {
        let what = format!("{} in {}", i.name, c.name);
        let instr = instruction(i, &what, &c.instructions, &by_id, names)?;
        if let Some(p) = instr.parameter_number {
            if params.len() <= p {
                params.resize(p + 1, None);
            }
            if params[p].replace(k).is_some() {
                return Err(invalid(&what, format!("a second parameter({p})")));
            }
        }
        instrs.push(instr);
    }
    let params = params
        .into_iter()
        .enumerate()
        .map(|(p, k)| k.ok_or_else(|| invalid(&c.name, format!("parameter({p}) is missing"))))
        .collect::<Result<Vec<_>>>()?;
    let root = match by_id.get(&c.root_id) {
        Some(&r) => r,
        None if instrs.is_empty() => {
            return Err(invalid(&c.name, "the computation has no instructions"))
        }
        None => {
            return Err(invalid(
                &c.name,
                format!("the root id {} names no instruction", c.root_id),
            ))
        }
    };
    Ok(Computation {
        name: c.name.clone(),
        instrs,
        root,
        params,
        pos: Pos::PROTO,
    })
}

fn instruction(
    i: &HloInstructionProto,
    what: &str,
    all: &[HloInstructionProto],
    by_id: &HashMap<i64, usize>,
    names: &HashMap<i64, String>,
) -> Result<Instr> {
    let shape = i
        .shape
        .as_ref()
        .ok_or_else(|| invalid(what, "the instruction has no shape"))?;
    let ty = shape_type(shape, what)?;
    let operands = i
        .operand_ids
        .iter()
        .map(|id| {
            by_id.get(id).copied().ok_or_else(|| {
                invalid(
                    what,
                    format!("operand id {id} names no instruction of the computation"),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let called = i
        .called_computation_ids
        .iter()
        .map(|id| {
            names.get(id).map(|n| format!("%{n}")).ok_or_else(|| {
                invalid(
                    what,
                    format!("called computation id {id} names no computation"),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // a conditional on a pred names its branches true/false, on an s32 by index
    let pred_selector = operands.first().is_some_and(|&k| {
        all[k]
            .shape
            .as_ref()
            .is_some_and(|s| s.element_type == primitive::PRED)
    });
    let attrs = attributes(i, what, &called, pred_selector)?;
    let literal = match (i.opcode.as_str(), &i.literal) {
        ("constant", Some(l)) => Some(Literal::Value(Arc::new(literal(l, what)?))),
        ("constant", None) => return Err(invalid(what, "a constant without a literal")),
        _ => None,
    };
    // an array's layout, kept for bitcasts between layouts: a permutation of its dims
    let layout = match (&ty, i.shape.as_ref().and_then(|s| s.layout.as_ref())) {
        (Type::Array(a), Some(l)) if !l.minor_to_major.is_empty() => {
            let rank = a.dims.len();
            let order: Vec<usize> = l
                .minor_to_major
                .iter()
                .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
                .collect();
            if !crate::ir::is_permutation(&order, rank) {
                return Err(invalid(
                    what,
                    format!(
                        "layout {:?} is not an order of the {rank} dimensions",
                        l.minor_to_major
                    ),
                ));
            }
            Some(order)
        }
        _ => None,
    };
    let parameter_number = (i.opcode == "parameter")
        .then(|| index(i.parameter_number, what))
        .transpose()?;
    Ok(Instr {
        name: i.name.clone(),
        ty,
        opcode: i.opcode.clone(),
        operands,
        attrs,
        literal,
        parameter_number,
        pos: Pos::PROTO,
        percent: false,
        layout,
    })
}

/// One operand's `dim_labels` (`b01f`, `01io`) from its dimension numbers: the two named
/// axes and the spatial ones by digit. None unless they name each axis once.
fn conv_labels(a: i64, b: i64, spatial: &[i64], names: [char; 2]) -> Option<String> {
    let rank = spatial.len() + 2;
    if spatial.len() > 10 {
        return None;
    }
    let mut labels = vec![None; rank];
    let axes = [a, b].into_iter().chain(spatial.iter().copied());
    let marks = names
        .into_iter()
        .chain((0..spatial.len()).map(|d| (b'0' + d as u8) as char));
    for (axis, mark) in axes.zip(marks) {
        let slot = labels.get_mut(usize::try_from(axis).ok()?)?;
        if slot.replace(mark).is_some() {
            return None;
        }
    }
    labels.into_iter().collect()
}

/// The attributes the planner reads, spelled as HLO text spells them.
fn attributes(
    i: &HloInstructionProto,
    what: &str,
    called: &[String],
    pred_selector: bool,
) -> Result<Vec<Attr>> {
    let mut attrs = Vec::new();
    let mut add = |name: &str, value: String| {
        attrs.push(Attr {
            name: name.to_string(),
            value,
            pos: Pos::PROTO,
        })
    };
    let opcode = i.opcode.as_str();
    match opcode {
        "get-tuple-element" => add("index", i.tuple_index.to_string()),
        "iota" => match i.dimensions[..] {
            [d] => add("iota_dimension", d.to_string()),
            _ => return Err(invalid(what, "iota needs exactly one dimension")),
        },
        "broadcast" | "transpose" | "reverse" | "reduce" | "concatenate" | "sort" | "map" => {
            add("dimensions", list(&i.dimensions))
        }
        _ if !i.dimensions.is_empty() => add("dimensions", list(&i.dimensions)),
        _ => {}
    }
    if opcode == "slice" {
        let parts: Vec<String> = i
            .slice_dimensions
            .iter()
            .map(|s| format!("[{}:{}:{}]", s.start, s.limit, s.stride))
            .collect();
        add("slice", format!("{{{}}}", parts.join(", ")));
    }
    if opcode == "dynamic-slice" {
        add("dynamic_slice_sizes", list(&i.dynamic_slice_sizes));
    }
    if let Some(p) = &i.padding_config {
        let dims: Vec<String> = p
            .dimensions
            .iter()
            .map(|d| {
                format!(
                    "{}_{}_{}",
                    d.edge_padding_low, d.edge_padding_high, d.interior_padding
                )
            })
            .collect();
        add("padding", dims.join("x"));
    }
    if let Some(w) = &i.window {
        let d = &w.dimensions;
        let text = if d.is_empty() {
            "{}".to_string()
        } else {
            // dilations are 1 when a producer leaves them unset
            let one = |x: i64| if x == 0 { 1 } else { x };
            let pads: Vec<String> = d
                .iter()
                .map(|x| format!("{}_{}", x.padding_low, x.padding_high))
                .collect();
            let mut t = format!(
                "{{size={} stride={} pad={} lhs_dilate={} rhs_dilate={}",
                by(d.iter().map(|x| x.size)),
                by(d.iter().map(|x| x.stride)),
                pads.join("x"),
                by(d.iter().map(|x| one(x.base_dilation))),
                by(d.iter().map(|x| one(x.window_dilation))),
            );
            if d.iter().any(|x| x.window_reversal) {
                t.push_str(&format!(
                    " rhs_reversal={}",
                    by(d.iter().map(|x| x.window_reversal as i64))
                ));
            }
            t.push('}');
            t
        };
        add("window", text);
    }
    if let Some(n) = &i.dot_dimension_numbers {
        for (name, v) in [
            ("lhs_batch_dims", &n.lhs_batch_dimensions),
            ("lhs_contracting_dims", &n.lhs_contracting_dimensions),
            ("rhs_batch_dims", &n.rhs_batch_dimensions),
            ("rhs_contracting_dims", &n.rhs_contracting_dimensions),
        ] {
            if !v.is_empty() {
                add(name, list(v));
            }
        }
    }
    if let Some(n) = &i.convolution_dimension_numbers {
        let labels = [
            (
                n.input_batch_dimension,
                n.input_feature_dimension,
                &n.input_spatial_dimensions,
                ['b', 'f'],
            ),
            (
                n.kernel_input_feature_dimension,
                n.kernel_output_feature_dimension,
                &n.kernel_spatial_dimensions,
                ['i', 'o'],
            ),
            (
                n.output_batch_dimension,
                n.output_feature_dimension,
                &n.output_spatial_dimensions,
                ['b', 'f'],
            ),
        ]
        .map(|(a, b, spatial, names)| conv_labels(a, b, spatial, names));
        match labels {
            [Some(l), Some(r), Some(o)] => add("dim_labels", format!("{l}_{r}->{o}")),
            _ => {
                return Err(invalid(
                    what,
                    "convolution dimension numbers that do not name each axis once (or more than 10 spatial dimensions)",
                ))
            }
        }
    }
    if opcode == "convolution" {
        for (name, count) in [
            ("feature_group_count", i.feature_group_count),
            ("batch_group_count", i.batch_group_count),
        ] {
            // 0 is unset: one group
            if !(0..=1).contains(&count) {
                add(name, count.to_string());
            }
        }
    }
    if let Some(n) = &i.gather_dimension_numbers {
        add("offset_dims", list(&n.offset_dims));
        add("collapsed_slice_dims", list(&n.collapsed_slice_dims));
        add("start_index_map", list(&n.start_index_map));
        add("index_vector_dim", n.index_vector_dim.to_string());
        add("operand_batching_dims", list(&n.operand_batching_dims));
        add(
            "start_indices_batching_dims",
            list(&n.start_indices_batching_dims),
        );
        add("slice_sizes", list(&i.gather_slice_sizes));
    }
    if let Some(n) = &i.scatter_dimension_numbers {
        add("update_window_dims", list(&n.update_window_dims));
        add("inserted_window_dims", list(&n.inserted_window_dims));
        add(
            "scatter_dims_to_operand_dims",
            list(&n.scatter_dims_to_operand_dims),
        );
        add("index_vector_dim", n.index_vector_dim.to_string());
        add("input_batching_dims", list(&n.input_batching_dims));
        add(
            "scatter_indices_batching_dims",
            list(&n.scatter_indices_batching_dims),
        );
    }
    if i.indices_are_sorted {
        add("indices_are_sorted", "true".into());
    }
    if i.unique_indices {
        add("unique_indices", "true".into());
    }
    if opcode == "compare" {
        add("direction", i.comparison_direction.clone());
        if !i.comparison_type.is_empty() {
            add("type", i.comparison_type.clone());
        }
    }
    if !i.custom_call_target.is_empty() {
        add(
            "custom_call_target",
            format!("\"{}\"", i.custom_call_target),
        );
    }
    if !i.fusion_kind.is_empty() {
        add("kind", i.fusion_kind.clone());
    }
    if i.is_stable {
        add("is_stable", "true".into());
    }
    if opcode == "topk" {
        add("k", i.k.to_string());
        add("largest", i.largest.to_string());
    }
    if opcode == "rng-bit-generator" {
        // xla_data.proto's RandomAlgorithm
        let algorithm = match i.rng_algorithm {
            0 => "rng_default",
            1 => "rng_three_fry",
            2 => "rng_philox",
            other => {
                return Err(invalid(
                    what,
                    format!(
                        "rng_algorithm {other}: expected 0 (default), 1 (three-fry) or 2 (philox)"
                    ),
                ))
            }
        };
        add("algorithm", algorithm.to_string());
    }
    if opcode == "reduce-precision" {
        add("exponent_bits", i.exponent_bits.to_string());
        add("mantissa_bits", i.mantissa_bits.to_string());
    }
    collective::collective_attributes(i, &mut add);
    // called computations, under the attribute each opcode names them with
    match (opcode, called) {
        (_, []) => {}
        ("async-start", [c]) => add("calls", c.clone()),
        ("fusion", [c]) => add("calls", c.clone()),
        // XLA lists a while's body first, then its condition
        ("while", [body, cond]) => {
            add("condition", cond.clone());
            add("body", body.clone());
        }
        ("conditional", [on_true, on_false]) if pred_selector => {
            add("true_computation", on_true.clone());
            add("false_computation", on_false.clone());
        }
        ("conditional", branches) => add("branch_computations", list(branches)),
        ("select-and-scatter", [select, scatter]) => {
            add("select", select.clone());
            add("scatter", scatter.clone());
        }
        ("custom-call", cs) => add("called_computations", list(cs)),
        (_, [c]) => add("to_apply", c.clone()),
        (_, cs) => {
            return Err(invalid(
                what,
                format!("{opcode} calls {} computations, expected one", cs.len()),
            ))
        }
    }
    Ok(attrs)
}

/// A constant's value, row-major.
fn literal(l: &LiteralProto, what: &str) -> Result<Tensor> {
    let shape = l
        .shape
        .as_ref()
        .ok_or_else(|| invalid(what, "a literal without a shape"))?;
    let Type::Array(ty) = shape_type(shape, what)? else {
        return Err(Error::Unsupported {
            context: format!("HloModuleProto: {what}"),
            what: "a tuple or token literal".into(),
        });
    };
    fn le<T: Copy, const N: usize>(v: &[T], f: fn(T) -> [u8; N]) -> Vec<u8> {
        v.iter().flat_map(|&x| f(x)).collect()
    }
    let (bytes, field): (Vec<u8>, &str) = match ty.dtype {
        DType::Pred => (l.preds.iter().map(|&b| b as u8).collect(), "preds"),
        DType::S4 => (l.s4s.clone(), "s4s"),
        DType::U4 => (l.u4s.clone(), "u4s"),
        DType::S8 => (l.s8s.clone(), "s8s"),
        DType::U8 => (l.u8s.clone(), "u8s"),
        DType::S16 => (l.s16s.clone(), "s16s"),
        DType::U16 => (l.u16s.clone(), "u16s"),
        DType::F16 => (l.f16s.clone(), "f16s"),
        DType::BF16 => (l.bf16s.clone(), "bf16s"),
        DType::S32 => (le(&l.s32s, i32::to_le_bytes), "s32s"),
        DType::S64 => (le(&l.s64s, i64::to_le_bytes), "s64s"),
        DType::U32 => (le(&l.u32s, u32::to_le_bytes), "u32s"),
        DType::U64 => (le(&l.u64s, u64::to_le_bytes), "u64s"),
        DType::F32 => (le(&l.f32s, f32::to_le_bytes), "f32s"),
        DType::F64 => (le(&l.f64s, f64::to_le_bytes), "f64s"),
        DType::F8E4M3FN => (l.f8e4m3fns.clone(), "f8e4m3fns"),
        DType::F8E5M2 => (l.f8e5m2s.clone(), "f8e5m2s"),
    };
    let size = ty.dtype.size_bytes();
    let n = ty.element_count();
    if bytes.len() != n * size {
        return Err(invalid(
            what,
            format!(
                "a literal of type {ty} needs {n} values in '{field}', found {}",
                bytes.len() / size
            ),
        ));
    }
    let order = shape.layout.as_ref().map(|l| l.minor_to_major.as_slice());
    let bytes = row_major(bytes, &ty.dims, order.unwrap_or(&[]), size, what)?;
    if ty.dtype.is_packed() {
        // one value per byte in the literal (its low nibble, as ml_dtypes stores int4)
        statetensor_core::packing::check_int4_values(ty.dtype, &bytes, 0, true, what)?;
        let mut packed = vec![0; ty.dtype.packed_bytes(n)];
        statetensor_core::packing::pack_nibbles(&bytes, &mut packed);
        return Tensor::from_le_bytes(ty.dtype, &ty.dims, &packed);
    }
    Tensor::from_le_bytes(ty.dtype, &ty.dims, &bytes)
}

/// Elements stored in the layout `minor_to_major` (fastest-varying dimension first),
/// reordered row-major. An empty layout, or the row-major one, is returned as it is.
fn row_major(
    bytes: Vec<u8>,
    dims: &[usize],
    minor_to_major: &[i64],
    size: usize,
    what: &str,
) -> Result<Vec<u8>> {
    let rank = dims.len();
    let row_major_order = (0..rank as i64).rev();
    if minor_to_major.is_empty() || minor_to_major.iter().copied().eq(row_major_order) {
        return Ok(bytes);
    }
    let mut seen = vec![false; rank];
    for &d in minor_to_major {
        match usize::try_from(d).ok().filter(|&d| d < rank) {
            Some(d) if !seen[d] => seen[d] = true,
            _ => {
                return Err(invalid(
                    what,
                    format!(
                        "layout {minor_to_major:?} is not a permutation of the {rank} dimensions"
                    ),
                ))
            }
        }
    }
    if seen.iter().any(|s| !s) {
        return Err(invalid(
            what,
            format!("layout {minor_to_major:?} is not a permutation of the {rank} dimensions"),
        ));
    }
    // the stride of each dimension in the stored order
    let mut stride = vec![0usize; rank];
    let mut step = 1;
    for &d in minor_to_major {
        stride[d as usize] = step;
        step *= dims[d as usize];
    }
    let n: usize = dims.iter().product();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = vec![0usize; rank];
    for _ in 0..n {
        let at: usize = idx.iter().zip(&stride).map(|(i, s)| i * s).sum();
        out.extend_from_slice(&bytes[at * size..(at + 1) * size]);
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < dims[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    Ok(out)
}

/// The serialized module `bytes` with its `input_output_alias` replaced by `aliases`
/// (`may-alias`; each pair at the shape indices `program` — this module — gives its
/// parameter and output, `{o}` in a tuple root, `{}` for an array), as
/// [`crate::with_alias_header`] does for text: what the emulator's "compile" of a proto
/// loads, so the runtime's model aliases exactly the pairs the states are bound to. Every
/// other field is kept byte for byte.
pub fn with_proto_aliases(
    bytes: &[u8],
    aliases: &AliasMap,
    program: &crate::Program,
    file: &str,
) -> Result<Vec<u8>> {
    use prost::encoding::{decode_key, decode_varint, encode_key, encode_varint, WireType};
    const INPUT_OUTPUT_ALIAS: u32 = 8;
    let mut rest = bytes;
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let truncated =
        |e: prost::DecodeError| parse_error(file, format!("not a serialized HloModuleProto: {e}"));
    while !rest.is_empty() {
        let start = rest;
        let (tag, wire) = decode_key(&mut rest).map_err(truncated)?;
        let len = match wire {
            WireType::Varint => {
                decode_varint(&mut rest).map_err(truncated)?;
                0
            }
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            WireType::LengthDelimited => decode_varint(&mut rest).map_err(truncated)? as usize,
            _ => {
                return Err(parse_error(
                    file,
                    "not a serialized HloModuleProto: group fields",
                ))
            }
        };
        if len > rest.len() {
            return Err(parse_error(
                file,
                "not a serialized HloModuleProto: truncated",
            ));
        }
        rest = &rest[len..];
        if tag != INPUT_OUTPUT_ALIAS {
            out.extend_from_slice(&start[..start.len() - rest.len()]);
        }
    }
    let entries = aliases
        .pairs()
        .map(|pair| {
            let (param, index) = program.param_location(pair.param);
            let ints = |v: &[usize]| v.iter().map(|&k| k as i64).collect();
            messages::AliasEntryProto {
                output_shape_index: ints(program.output_location(pair.output)),
                parameter_number: param as i64,
                parameter_shape_index: ints(index),
                kind: MAY_ALIAS,
            }
        })
        .collect();
    let map = messages::HloInputOutputAliasProto { entries };
    if !map.entries.is_empty() {
        encode_key(INPUT_OUTPUT_ALIAS, WireType::LengthDelimited, &mut out);
        encode_varint(map.encoded_len() as u64, &mut out);
        map.encode_raw(&mut out);
    }
    Ok(out)
}
