"""What the tools that write fixtures or run modules on XLA:CPU share.

- `np_dtype`: the NumPy dtype (ml_dtypes' for bf16, FP8 and int4) of an XLA element type.
- `FixtureFiles`: writes a fixture's .npy files and meta.json. NumPy saves ml_dtypes' int4,
  uint4 and float8_e4m3fn alike ('<V1'), so the files holding int4 or uint4 are named in
  meta.json's "dtypes" (the Rust readers take a '<V1' file without a hint as
  float8_e4m3fn).
- `without_header_aliases`: a module's text without its header's `input_output_alias`.
- `xla_cpu_executable`: XLA:CPU's executable for HLO text, through jaxlib (HLO text ->
  XLA's parser -> StableHLO -> PJRT compile), the only way jaxlib compiles a module.

Imports of numpy, ml_dtypes and jax are deferred to the functions that need them, so that
a tool whose other subcommands need none of them (xla_corpus.py extract) runs without.
"""
from __future__ import annotations

import json
import os


def np_dtype(xla: str):
    """The NumPy dtype of XLA element type `xla` (`f32`, `bf16`, `s4`, ...)."""
    import ml_dtypes
    import numpy as np
    table = {
        "pred": np.bool_, "s8": np.int8, "s16": np.int16, "s32": np.int32, "s64": np.int64,
        "u8": np.uint8, "u16": np.uint16, "u32": np.uint32, "u64": np.uint64,
        "f16": np.float16, "f32": np.float32, "f64": np.float64,
        "bf16": ml_dtypes.bfloat16, "c64": np.complex64, "c128": np.complex128,
        "s4": ml_dtypes.int4, "u4": ml_dtypes.uint4, "s2": ml_dtypes.int2, "u2": ml_dtypes.uint2,
        "f8e4m3fn": ml_dtypes.float8_e4m3fn, "f8e5m2": ml_dtypes.float8_e5m2,
        "f8e4m3": ml_dtypes.float8_e4m3, "f8e3m4": ml_dtypes.float8_e3m4,
        "f8e4m3fnuz": ml_dtypes.float8_e4m3fnuz, "f8e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
        "f8e4m3b11fnuz": ml_dtypes.float8_e4m3b11fnuz, "f8e8m0fnu": ml_dtypes.float8_e8m0fnu,
        "f4e2m1fn": ml_dtypes.float4_e2m1fn,
    }
    if xla not in table:
        raise ValueError(f"no numpy dtype for {xla}")
    return np.dtype(table[xla])


def npy_hint(dtype) -> str | None:
    """The XLA name meta.json's "dtypes" gives a file of NumPy dtype `dtype` (int4 and
    uint4, which NumPy saves as '<V1' like float8_e4m3fn), or None when the file's header
    says it."""
    import ml_dtypes
    import numpy as np
    return {np.dtype(ml_dtypes.int4): "s4", np.dtype(ml_dtypes.uint4): "u4"}.get(np.dtype(dtype))


class FixtureFiles:
    """The files of one fixture directory: `save` writes an array as .npy and remembers
    the ones that need a dtype hint; `write_meta` writes meta.json with those hints."""

    def __init__(self, directory: str):
        self.dir = str(directory)
        self.hints: dict[str, str] = {}

    def save(self, file: str, arr) -> None:
        import numpy as np
        arr = np.asarray(arr)
        np.save(os.path.join(self.dir, file), arr, allow_pickle=False)
        hint = npy_hint(arr.dtype)
        if hint:
            self.hints[file] = hint

    def write_meta(self, meta: dict) -> None:
        meta = dict(meta)
        if self.hints:
            meta["dtypes"] = dict(sorted(self.hints.items()))
        with open(os.path.join(self.dir, "meta.json"), "w") as fh:
            json.dump(meta, fh, indent=1, sort_keys=True)
            fh.write("\n")


def header_alias_span(text: str) -> tuple[int, int] | None:
    """Where `, input_output_alias={...}` (its leading comma and spaces included) sits in
    the module header (the `HloModule` line), or None; text elsewhere (a comment of a lit
    test, say) is not looked at."""
    start = len(text) - len(text.lstrip())
    if not text.startswith("HloModule", start):
        return None
    line_end = text.find("\n", start)
    at = text.find("input_output_alias=", start, len(text) if line_end < 0 else line_end)
    if at < 0:
        return None
    start = at
    while start > 0 and text[start - 1] in " \t\n,":
        start -= 1
    depth = 0
    for end in range(text.index("{", at), len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            return start, end + 1
    raise ValueError("input_output_alias={ is not closed")


def without_header_aliases(text: str) -> str:
    """`text` without its header's input_output_alias. PJRT flattens tuple parameters and
    results, so an alias at a shape index inside a tuple no longer exists there; aliasing
    does not change what a step computes."""
    span = header_alias_span(text)
    return text if span is None else text[:span[0]] + text[span[1]:]


def xla_cpu_executable(text: str):
    """XLA:CPU's loaded executable for HLO `text` (aliases dropped; its parameters and
    results are the arrays and tokens inside the module's, flattened)."""
    import jax
    from jax._src.lib import _jax, hlo
    module = hlo.hlo_module_from_text(without_header_aliases(text))
    stablehlo = _jax.mlir.hlo_to_stablehlo(module.as_serialized_hlo_module_proto())
    devices = jax.devices("cpu")[:1]
    return devices[0].client.compile_and_load(stablehlo, devices)
