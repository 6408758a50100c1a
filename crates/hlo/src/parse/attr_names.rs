//! Which attributes each opcode takes, as XLA's text parser accepts them: an attribute an
//! opcode does not take is refused where it stands (XLA refuses it too, so a misspelt
//! `dimension=` or `to_aply=` is never silently ignored), naming what the opcode takes.
//!
//! Opcodes the table does not know are left to the planner, which refuses an unsupported
//! opcode by name; the table covers every opcode XLA's parser reads.

/// Attributes every instruction may carry.
const GENERIC: [&str; 8] = [
    "backend_config",
    "control-predecessors",
    "frontend_attributes",
    "metadata",
    "origin",
    "parameter_replication",
    "sharding",
    "statistics",
];

/// What an async wrapper (`X-start`) takes beyond the wrapped opcode's own attributes.
const ASYNC: [&str; 2] = ["async_execution_thread", "output_to_operand_aliasing"];

/// The opcode-specific attributes of `opcode`, or None for an opcode the table does not know.
fn specific(opcode: &str) -> Option<&'static [&'static str]> {
    Some(match opcode {
        "abs"
        | "ceil"
        | "count-leading-zeros"
        | "floor"
        | "imag"
        | "is-finite"
        | "negate"
        | "not"
        | "popcnt"
        | "real"
        | "round-nearest-afz"
        | "round-nearest-even"
        | "sign"
        | "copy"
        | "bitcast"
        | "opt-barrier"
        | "copy-done"
        | "all-gather-done"
        | "all-reduce-done"
        | "collective-permute-done"
        | "convert"
        | "bitcast-convert"
        | "add"
        | "subtract"
        | "multiply"
        | "divide"
        | "remainder"
        | "power"
        | "atan2"
        | "maximum"
        | "minimum"
        | "mulhi"
        | "and"
        | "or"
        | "xor"
        | "shift-left"
        | "shift-right-arithmetic"
        | "shift-right-logical"
        | "complex"
        | "stochastic-convert"
        | "select"
        | "clamp"
        | "add-dependency"
        | "after-all"
        | "tuple"
        | "parameter"
        | "constant"
        | "replica-id"
        | "partition-id"
        | "dynamic-update-slice"
        | "dynamic-reshape" => &[],
        "acos"
        | "acosh"
        | "asin"
        | "asinh"
        | "atanh"
        | "cbrt"
        | "cosine"
        | "cosh"
        | "erf"
        | "exponential"
        | "exponential-minus-one"
        | "log"
        | "log-plus-one"
        | "logistic"
        | "rsqrt"
        | "sine"
        | "sinh"
        | "sqrt"
        | "tan"
        | "tanh" => &["result_accuracy"],
        "iota" => &["iota_dimension"],
        "topk" => &["is_stable", "k", "largest"],
        "broadcast" | "transpose" | "reverse" | "concatenate" | "get-dimension-size"
        | "set-dimension-size" => &["dimensions"],
        "reshape" => &["inferred_dimension"],
        "slice" => &["slice"],
        "dynamic-slice" => &["dynamic_slice_sizes"],
        "pad" => &["padding"],
        "compare" => &["direction", "type"],
        "get-tuple-element" => &["index"],
        "reduce-precision" => &["exponent_bits", "mantissa_bits"],
        "reduce" => &["dimensions", "to_apply"],
        "reduce-window" => &["to_apply", "window"],
        "select-and-scatter" => &["scatter", "select", "window"],
        "map" => &["dimensions", "to_apply"],
        "sort" => &["dimensions", "is_stable", "to_apply"],
        "scan" => &[
            "dimensions",
            "is_associative",
            "is_reverse",
            "num_carries",
            "to_apply",
        ],
        "call" => &["is_composite", "to_apply"],
        "while" => &["body", "condition"],
        "conditional" => &[
            "branch_computations",
            "false_computation",
            "true_computation",
        ],
        "fusion" => &["calls", "kind", "output_to_operand_aliasing"],
        "custom-call" => &[
            "api_version",
            "batch_group_count",
            "called_computations",
            "custom_call_has_side_effect",
            "custom_call_target",
            "dim_labels",
            "feature_group_count",
            "literal",
            "operand_layout_constraints",
            "operand_precision",
            "output_to_operand_aliasing",
            "padding_type",
            "schedule",
            "to_apply",
            "window",
        ],
        "dot" | "scaled-dot" => &[
            "algorithm",
            "lhs_batch_dims",
            "lhs_contracting_dims",
            "operand_precision",
            "rhs_batch_dims",
            "rhs_contracting_dims",
        ],
        "ragged-dot" => &[
            "lhs_batch_dims",
            "lhs_contracting_dims",
            "lhs_ragged_dims",
            "operand_precision",
            "rhs_batch_dims",
            "rhs_contracting_dims",
            "rhs_group_dims",
        ],
        "convolution" => &[
            "algorithm",
            "batch_group_count",
            "convolution_kind",
            "dim_labels",
            "feature_group_count",
            "operand_precision",
            "sparsity_config",
            "window",
        ],
        "gather" => &[
            "collapsed_slice_dims",
            "index_vector_dim",
            "indices_are_sorted",
            "offset_dims",
            "operand_batching_dims",
            "slice_sizes",
            "start_index_map",
            "start_indices_batching_dims",
        ],
        "scatter" => &[
            "index_vector_dim",
            "indices_are_sorted",
            "input_batching_dims",
            "inserted_window_dims",
            "scatter_dims_to_operand_dims",
            "scatter_indices_batching_dims",
            "to_apply",
            "unique_indices",
            "update_window_dims",
        ],
        "fft" => &["fft_length", "fft_type"],
        "triangular-solve" => &["left_side", "lower", "transpose_a", "unit_diagonal"],
        "cholesky" => &["lower"],
        "batch-norm-training" | "batch-norm-inference" | "batch-norm-grad" => {
            &["epsilon", "feature_index"]
        }
        "rng" => &["distribution"],
        "rng-bit-generator" => &["algorithm"],
        "rng-get-and-update-state" => &["delta"],
        "infeed" => &["infeed_config"],
        "outfeed" => &["outfeed_config", "outfeed_shape"],
        "send" | "send-done" | "recv" | "recv-done" => &["channel_id", "is_host_transfer"],
        "copy-start" => &["cross_program_prefetch_index"],
        "domain" => &["domain"],
        "all-reduce" | "all-reduce-start" => &[
            "channel_id",
            "constrain_layout",
            "mode",
            "replica_groups",
            "to_apply",
            "use_global_device_ids",
        ],
        "reduce-scatter" => &[
            "channel_id",
            "constrain_layout",
            "dimensions",
            "mode",
            "replica_groups",
            "to_apply",
            "use_global_device_ids",
        ],
        "all-gather" | "all-gather-start" => &[
            "channel_id",
            "constrain_layout",
            "dimensions",
            "replica_groups",
            "use_global_device_ids",
        ],
        "all-to-all" => &[
            "channel_id",
            "constrain_layout",
            "dimensions",
            "replica_groups",
        ],
        "ragged-all-to-all" => &["channel_id", "dimensions", "replica_groups"],
        "collective-broadcast" => &["channel_id", "has_dynamic_root", "replica_groups"],
        "collective-permute" | "collective-permute-start" => {
            &["channel_id", "slice_sizes", "source_target_pairs"]
        }
        "async-start" | "async-update" => &[
            "async_execution_thread",
            "calls",
            "output_to_operand_aliasing",
        ],
        "async-done" => &["async_execution_thread", "calls"],
        _ => return None,
    })
}

/// Async forms of an opcode (`X-start`, `X-update`, `X-done`) that XLA reads as wrappers.
fn wrapped(opcode: &str) -> Option<(&str, bool)> {
    if let Some(op) = opcode.strip_suffix("-start") {
        return Some((op, true));
    }
    let op = opcode
        .strip_suffix("-update")
        .or_else(|| opcode.strip_suffix("-done"))?;
    Some((op, false))
}

/// Whether `opcode` takes attribute `name`; None when the opcode is not one the table knows
/// (the planner then names the opcode).
pub(super) fn takes(opcode: &str, name: &str) -> Option<bool> {
    if GENERIC.contains(&name) {
        return Some(true);
    }
    if let Some(own) = specific(opcode) {
        return Some(own.contains(&name));
    }
    let (op, start) = wrapped(opcode)?;
    let own = specific(op)?;
    Some(
        ASYNC.contains(&name) && (start || name == "async_execution_thread")
            || start && own.contains(&name),
    )
}

/// Everything `opcode` takes, sorted, for a message.
pub(super) fn allowed(opcode: &str) -> String {
    let mut all: Vec<&str> = GENERIC.to_vec();
    match (specific(opcode), wrapped(opcode)) {
        (Some(own), _) => all.extend(own),
        (None, Some((op, start))) => {
            if start {
                all.extend(specific(op).unwrap_or(&[]));
                all.extend(ASYNC);
            } else {
                all.push("async_execution_thread");
            }
        }
        (None, None) => {}
    }
    all.sort_unstable();
    all.dedup();
    all.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_specific_wrapped_and_unknown() {
        assert_eq!(takes("reduce", "metadata"), Some(true));
        assert_eq!(takes("reduce", "to_apply"), Some(true));
        assert_eq!(takes("reduce", "to_aply"), Some(false));
        assert_eq!(takes("add", "dimensions"), Some(false));
        assert_eq!(takes("exponential", "result_accuracy"), Some(true));
        assert_eq!(takes("abs", "result_accuracy"), Some(false));
        assert_eq!(takes("dot-start", "lhs_contracting_dims"), Some(true));
        assert_eq!(takes("dot-start", "async_execution_thread"), Some(true));
        assert_eq!(takes("dot-done", "lhs_contracting_dims"), Some(false));
        assert_eq!(takes("dot-done", "async_execution_thread"), Some(true));
        assert_eq!(takes("no-such-op", "x"), None);
        assert_eq!(
            allowed("compare"),
            "backend_config, control-predecessors, direction, frontend_attributes, metadata, origin, parameter_replication, sharding, statistics, type"
        );
        assert_eq!(takes("all-gather", "replica_groups"), Some(true));
        assert_eq!(takes("all-gather", "to_apply"), Some(false));
    }
}
