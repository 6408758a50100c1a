#!/usr/bin/env python3
"""Writes the HLO fixtures statetensor's tests run, with JAX as the oracle.

Each fixture is a directory under conformance/fixtures/<name>/ holding:
  model.hlo      JAX's lowered HLO text (jax.jit(f).lower(...).as_text(dialect="hlo"))
  model.pb       the same module as a serialized HloModuleProto with the same alias map,
                 the input `neuronx-cc compile --framework XLA` takes (hardware lane)
  compiled.hlo   XLA:CPU's optimised module text (fusions, bitcasts, %-names, debug sections),
                 unless meta.json says why not
  arg{p}.npy     the initial value of every parameter
  out{s}_{k}.npy output k after step s (state outputs included)
  meta.json      steps, tolerance (rtol/atol; 0 = exact) and why that tolerance

Stateful fixtures state their alias map in the HLO header's input_output_alias; step s+1
feeds each aliased output back into its parameter, exactly as a device keeps the state
resident. The `*_external` fixtures keep the map out of the HLO, as torch-neuronx does (its
HLO has no alias header; the map lives in the NEFF's metadata): meta.json's "aliases"
({param: output}) holds it, and the tests pass it as the caller's override.

Run: python3 tools/gen_fixtures.py [NAME...]  (needs `pip install jax`); with names, only
those fixtures are written (the random values of every fixture stay the same). CI never runs
this; the files it writes are committed.
"""
import json
import os
import shutil
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fixture_io import FixtureFiles, header_alias_span
from models import decoder_args, decoder_layer, decoder_lm, decoder_lm_aliases, decoder_lm_args, mlp_cache

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platforms", "cpu")

try:
    import ml_dtypes  # noqa: F401  (bfloat16 numpy dtype)
except ImportError:  # pragma: no cover
    sys.exit("needs ml_dtypes (installed with jax)")

ONLY = set(sys.argv[1:])
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance", "fixtures")
rng = np.random.default_rng(20261128)

# Tolerances. Integer and data-movement results must match exactly. XLA:CPU evaluates f32
# transcendental functions (exp, log, tanh, ...) with its own polynomial approximations and
# may reassociate reductions and GEMMs, so f32 arithmetic is compared at a relative 2e-5
# (~170 ulps; a wrong op is off by far more) with an absolute floor for values near zero.
# f16 and bf16 results are rounded from f32; a 1-ulp difference in the f32 intermediate can
# flip the rounding, so they allow one ulp of their own type (2^-10 and 2^-7 relative).
EXACT = dict(rtol=0.0, atol=0.0, why="integer and data-movement results are exact")
F32 = dict(rtol=2e-5, atol=1e-6, why="f32 arithmetic: XLA:CPU approximates transcendentals and reassociates sums")
F64 = dict(rtol=1e-12, atol=1e-14, why="f64 arithmetic: libm vs XLA's implementations differ in the last ulps")
F16 = dict(rtol=2 ** -10, atol=2 ** -14, why="f16: one ulp of the f16 result (rounding of an f32 intermediate may flip)")
BF16 = dict(rtol=2 ** -7, atol=2 ** -14, why="bf16: one ulp of the bf16 result (rounding of an f32 intermediate may flip)")
# A bf16 model of many instructions: XLA:CPU computes bf16 ops in f32 and then drops the
# convert pairs between them (its float-normalization and simplify-fp-conversions passes), so
# some intermediates stay f32 where the module rounds each instruction to bf16, as
# statetensor does. One intermediate rounding flipped moves an output by a few bf16 ulps of
# the outputs' scale (~1 here), not of the element: atol 2^-6 (4 ulps at 1.0).
BF16_MODEL = dict(rtol=2 ** -7, atol=2 ** -6,
                  why="bf16 model: XLA:CPU keeps some intermediates in f32; a few bf16 ulps of the output scale")


def with_aliases(text, aliases, must):
    """Sets the module header's input_output_alias to `aliases` ({param: output}).

    JAX picks its own pairing for donated buffers (the first output of matching shape); a
    state-tensor model states its pairing explicitly, as torch-neuronx's
    input_output_aliases does, so the fixture writes the header itself.
    """
    lines = text.split("\n")
    head = lines[0]
    span = header_alias_span(head)
    if span is not None:
        head = head[:span[0]] + head[span[1]:]
    if aliases:
        kind = "must-alias" if must else "may-alias"
        entries = ", ".join(f"{{{o}}}: ({p}, {{}}, {kind})" for p, o in sorted(aliases.items()))
        name_end = head.index(",") if "," in head else len(head)
        head = head[:name_end] + f", input_output_alias={{ {entries} }}" + head[name_end:]
    lines[0] = head
    return "\n".join(lines)


def _varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _read_varint(b, i):
    """The varint at b[i:], and the index after it."""
    v = shift = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return v, i


def _fields(b):
    """Top-level (field number, raw bytes of the whole field) of a protobuf message."""
    i, out = 0, []
    while i < len(b):
        start = i
        key, i = _read_varint(b, i)
        wire = key & 7
        if wire == 0:
            _, i = _read_varint(b, i)
        elif wire == 2:
            n, i = _read_varint(b, i)
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"wire type {wire}")
        out.append((key >> 3, b[start:i]))
    return out


def proto_with_aliases(pb, aliases, must):
    """The serialized HloModuleProto `pb` with its input_output_alias (field 8) replaced by
    `aliases` ({param: output}), as with_aliases does for the text. Entry fields:
    output_shape_index = 1 (packed), parameter_number = 2, kind = 4 (MAY_ALIAS 1, MUST_ALIAS 2)."""
    body = b"".join(raw for num, raw in _fields(pb) if num != 8)
    entries = b""
    for p, o in sorted(aliases.items()):
        idx = _varint(o)
        e = b"\x0a" + _varint(len(idx)) + idx + b"\x10" + _varint(p) + b"\x20" + _varint(2 if must else 1)
        entries += b"\x0a" + _varint(len(e)) + e
    if aliases:
        body += b"\x42" + _varint(len(entries)) + entries
    return body


def fixture(name, f, args, tol, steps=1, aliases=None, must=False, compiled=True, external=False, feeds=None,
            weights=None, manifest_names=None):
    """Lowers f, runs it `steps` times carrying aliased state, writes the fixture. With
    `external`, the HLO carries no alias map and meta.json does. `feeds` ({param: values
    along a leading step axis}) gives a parameter a new value every step: written as
    feed{p}.npy and listed in meta.json's "feeds" (arg{p}.npy holds step 0's value).
    `weights` (parameter numbers) are resident weights, listed in meta.json's "weights"
    (their values are arg{p}.npy). `manifest_names` (one name per parameter) also writes
    statetensor.json, the bundle manifest a frontend writes: each parameter's role, that
    name and its value file."""
    if ONLY and name not in ONLY:
        return
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    files = FixtureFiles(d)
    args = [np.asarray(a) for a in args]
    aliases = aliases or {}
    in_hlo = {} if external else aliases
    jf = jax.jit(f, keep_unused=True)
    lowered = jf.lower(*args)
    text = with_aliases(lowered.as_text(dialect="hlo"), in_hlo, must)
    with open(os.path.join(d, "model.hlo"), "w") as fh:
        fh.write(text)
    # the same module as a serialized HloModuleProto, what neuronx-cc compiles (hardware lane)
    pb = proto_with_aliases(lowered.compiler_ir("hlo").as_serialized_hlo_module_proto(), in_hlo, must)
    with open(os.path.join(d, "model.pb"), "wb") as fh:
        fh.write(pb)
    meta = {"steps": steps, "rtol": tol["rtol"], "atol": tol["atol"], "tolerance": tol["why"]}
    if external:
        meta["aliases"] = {str(p): o for p, o in sorted(aliases.items())}
    if weights:
        meta["weights"] = sorted(weights)
    feeds = {p: np.asarray(v) for p, v in (feeds or {}).items()}
    if feeds:
        meta["feeds"] = sorted(feeds)
        for p, v in feeds.items():
            files.save(f"feed{p}.npy", v)
    if compiled is True:
        with open(os.path.join(d, "compiled.hlo"), "w") as fh:
            fh.write(with_aliases(lowered.compile().as_text(), in_hlo, must))
    else:
        meta["no_compiled"] = compiled
    for p, a in enumerate(args):
        files.save(f"arg{p}.npy", a)
    cur = list(args)
    for s in range(steps):
        for p, v in feeds.items():
            cur[p] = v[s]
        outs = jax.jit(f, keep_unused=True)(*cur)
        outs = [np.asarray(o) for o in jax.tree_util.tree_leaves(outs)]
        for k, o in enumerate(outs):
            files.save(f"out{s}_{k}.npy", o)
        for p, o in aliases.items():
            cur[p] = outs[o]
    files.write_meta(meta)
    if manifest_names:
        params = []
        for p, n in enumerate(manifest_names):
            if p in aliases:
                params.append({"role": "state", "name": n, "output": aliases[p], "value": f"arg{p}.npy"})
            elif p in (weights or []):
                params.append({"role": "weight", "name": n, "value": f"arg{p}.npy"})
            else:
                params.append({"role": "input", "name": n, "value": f"arg{p}.npy"})
        with open(os.path.join(d, "statetensor.json"), "w") as fh:
            json.dump({"format": 1, "parameters": params}, fh, indent=1)
            fh.write("\n")
    print(f"{name}: {len(text.splitlines())} lines, {steps} step(s)")


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def randi(lo, hi, *shape, dtype=np.int32):
    return rng.integers(lo, hi, size=shape).astype(dtype)


# ---------------------------------------------------------------- elementwise, float
def unary_f(x, p):
    return (
        jnp.abs(x), -x, jnp.sign(x), jnp.exp(x), jnp.expm1(x), jnp.log(p), jnp.log1p(p),
        jnp.sqrt(p), lax.rsqrt(p), jnp.cbrt(x), jnp.tanh(x), jax.nn.sigmoid(x), jnp.sin(x),
        jnp.cos(x), jnp.tan(x * 0.3), jnp.floor(x), jnp.ceil(x), jnp.round(x),
        lax.round(x, lax.RoundingMethod.AWAY_FROM_ZERO), jnp.isfinite(x / (p - p)),
    )


halves = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.0, -0.0], np.float32)
xs = np.concatenate([randn(24) * 2, halves])
ps = np.abs(randn(32)) + 0.05
for dt, tol in [(np.float32, F32), (np.float64, F64), (np.float16, F16), (jnp.bfloat16, BF16)]:
    fixture(f"unary_{np.dtype(dt).name}", unary_f, [xs.astype(dt), ps.astype(dt)], tol)


def binary_f(a, b):
    return (
        a + b, a - b, a * b, a / b, jnp.fmod(a, b), jnp.power(jnp.abs(a), b), jnp.maximum(a, b),
        jnp.minimum(a, b), jnp.arctan2(a, b), a < b, a <= b, a == b, a != b, a > b, a >= b,
        jnp.where(a > b, a, b), lax.clamp(jnp.asarray(-0.5, a.dtype), a, jnp.asarray(0.5, a.dtype)),
    )


for dt, tol in [(np.float32, F32), (np.float64, F64), (np.float16, F16), (jnp.bfloat16, BF16)]:
    a = randn(6, 5).astype(dt)
    b = (randn(6, 5) + 0.1).astype(dt)
    b[0, 0] = a[0, 0]  # an equal pair for EQ/LE/GE
    fixture(f"binary_{np.dtype(dt).name}", binary_f, [a, b], tol)


def nan_f(a, b):
    # NaN propagation through max/min, comparisons with NaN, total-order sort
    return jnp.maximum(a, b), jnp.minimum(a, b), a < b, a != b, jnp.sort(a)


nan_a = np.array([np.nan, 1.0, -np.inf, 0.0, -0.0, 2.0, np.inf, -1.0], np.float32)
nan_b = np.array([1.0, np.nan, 0.0, -0.0, 0.0, 3.0, np.nan, -np.inf], np.float32)
fixture("nan_semantics_f32", nan_f, [nan_a, nan_b], EXACT)


# ---------------------------------------------------------------- elementwise, integer
def int_f(a, b, s):
    return (
        a + b, a - b, a * b, lax.div(a, b), lax.rem(a, b), jnp.maximum(a, b), jnp.minimum(a, b),
        a & b, a | b, a ^ b, ~a, lax.shift_left(a, s), lax.shift_right_arithmetic(a, s),
        lax.shift_right_logical(a, s), lax.population_count(a), lax.clz(a), a < b, a == b,
        a >= b, jnp.where(a < b, a, b), lax.clamp(a.dtype.type(-3) if jnp.issubdtype(a.dtype, jnp.signedinteger) else a.dtype.type(3), a, a.dtype.type(50)),
    )


def int_signed_f(a, b, s):
    return int_f(a, b, s) + (jnp.abs(a), -a, jnp.sign(a))


for dt in [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]:
    info = np.iinfo(dt)
    a = rng.integers(info.min, info.max, size=20, dtype=dt, endpoint=True)
    b = rng.integers(info.min, info.max, size=20, dtype=dt, endpoint=True)
    a[:4] = [info.min, info.max, 7, 0]
    b[:4] = [-1 if info.min < 0 else 3, 0, 0, 5]  # MIN/-1, x/0, x%0
    bits = np.iinfo(dt).bits
    s = rng.integers(0, bits + 3, size=20).astype(dt)  # includes shifts >= bit width
    f = int_signed_f if info.min < 0 else int_f
    fixture(f"int_{np.dtype(dt).name}", f, [a, b, s], EXACT)


def pred_f(a, b):
    return a & b, a | b, a ^ b, ~a, a == b, a != b, jnp.where(a, 1, 2).astype(np.int32), a.astype(np.float32), jnp.all(a), jnp.any(b)


fixture("pred_ops", pred_f, [rng.random(12) < 0.5, rng.random(12) < 0.5], EXACT)


# ---------------------------------------------------------------- conversions
def convert_f(x, i, u, h):
    out = []
    for dt in [np.int8, np.int32, np.int64, np.uint8, np.uint32, np.float16, jnp.bfloat16, np.float64, np.bool_]:
        out.append(x.astype(dt))
    for dt in [np.int8, np.int16, np.uint16, np.float32, np.float16, np.bool_]:
        out.append(i.astype(dt))
    out.append(u.astype(np.int32))
    out.append(u.astype(np.float32))
    out.append(h.astype(np.float32))
    out.append(lax.bitcast_convert_type(x, np.uint32))
    out.append(lax.bitcast_convert_type(x, np.uint16))  # f32[8] -> u16[8,2]
    out.append(lax.bitcast_convert_type(lax.bitcast_convert_type(x, np.uint16), np.float32))
    out.append(lax.bitcast_convert_type(h, np.int16))
    return tuple(out)


cx = np.array([-1.7, 2.5, 3.49, 130.0, -200.5, 70000.0, 1e-3, -0.0], np.float32)
ci = np.array([-129, 300, 65537, -1, 0, 127, 70000, -40000], np.int32)
cu = np.array([0, 1, 2**31, 2**32 - 1, 5, 77, 2**31 - 1, 100], np.uint32)
ch = np.array([0.1, -2.0, 65504.0, 6e-8, -0.0, 1.5, 3.0, 1000.0], np.float16)
fixture("convert", convert_f, [cx, ci, cu, ch], EXACT)


# ---------------------------------------------------------------- data movement
def movement_f(x, i):
    y = x.reshape(4, 3, 2)
    return (
        lax.iota(np.int32, 5), lax.broadcasted_iota(np.float32, (2, 3), 1),
        jnp.broadcast_to(x[0], (3, 6)), lax.broadcast_in_dim(x[:, :1], (4, 2, 6), (0, 2)),
        y, jnp.transpose(y, (2, 0, 1)), x[1:4:2, ::3], lax.slice(x, (0, 1), (4, 6), (3, 2)),
        lax.dynamic_slice(x, (i, i + 1), (2, 3)), lax.dynamic_slice(x, (i + 10, i - 6), (2, 3)),
        lax.dynamic_update_slice(x, jnp.ones((2, 2), x.dtype), (i, i + 4)),
        jnp.concatenate([x, x * 2, x[:, :1]], axis=1),
        lax.pad(x, np.float32(-1), [(1, 2, 0), (-1, 1, 2)]),
        lax.rev(x, (0, 1)), lax.rev(x, (1,)),
    )


fixture("movement", movement_f, [randn(4, 6), np.int32(1)], EXACT)


def gather_f(x, idx, idx2):
    return (
        x[idx], x[:, idx], jnp.take_along_axis(x, idx2, axis=1), x[idx, idx],
        x[jnp.array([-1, 9], np.int32)],  # negative and out-of-range (clamped)
    )


fixture("gather", gather_f, [randn(5, 4), np.array([0, 3, 1], np.int32), randi(0, 4, 5, 2)], EXACT)


def gather_batched_f(x, idx):
    return jax.vmap(lambda a, i: a[i])(x, idx)


fixture("gather_batched", gather_batched_f, [randn(3, 5, 2), randi(0, 5, 3, 4)], EXACT)


def scatter_f(x, idx, u):
    return (
        x.at[idx].set(u), x.at[idx].add(u), x.at[idx].max(u), x.at[idx].min(u), x.at[idx].mul(u),
        x.at[jnp.array([1, 7, -9], np.int32)].add(1.0),  # out-of-range updates are dropped
        x.at[:, 1].set(0.5), x.at[idx, 2].add(10.0),
    )


fixture("scatter", scatter_f, [randn(6, 3), np.array([0, 2, 2, 5], np.int32), randn(4, 3)], F32)


def scatter_int_f(x, idx, u):
    return x.at[idx].add(u), x.at[idx].set(u), x.at[idx].max(u)


fixture("scatter_s32", scatter_int_f, [randi(-9, 9, 5, 2), np.array([4, 0, 4], np.int32), randi(-9, 9, 3, 2)], EXACT)


# ---------------------------------------------------------------- reductions, sort
def reduce_f(x, i):
    return (
        x.sum(), x.sum(0), x.sum((0, 2)), x.max(1), x.min(), jnp.prod(x[0], 1), jnp.argmax(x, 1),
        jnp.argmin(x.reshape(-1)), i.sum(1), i.max(), (i > 0).all(1), (i > 3).any(), jnp.mean(x, -1),
    )


fixture("reduce", reduce_f, [randn(3, 4, 5), randi(-5, 5, 4, 6)], F32)


def reduce_window_f(x, i):
    return (
        lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"),
        lax.reduce_window(x, 0.0, lax.add, (1, 3, 3, 1), (1, 1, 1, 1), "SAME"),
        lax.reduce_window(x, 0.0, lax.add, (1, 2, 2, 1), (1, 1, 1, 1), [(0, 0), (1, 2), (0, 1), (0, 0)],
                          base_dilation=(1, 2, 1, 1), window_dilation=(1, 1, 2, 1)),
        lax.reduce_window(i, np.int32(0), lax.add, (3,), (2,), "VALID"),
        jnp.cumsum(i.astype(np.float32)),
    )


fixture("reduce_window", reduce_window_f, [randn(2, 6, 5, 3), randi(-9, 9, 9)], F32)


def sort_f(x, k, v):
    return jnp.sort(x), jnp.sort(x, axis=0), lax.sort((k, v), num_keys=1), jnp.argsort(k), jnp.sort(k)[::-1]


fixture("sort", sort_f, [randn(4, 7), randi(0, 5, 9), randn(9)], EXACT)


def top_k_f(x, xi, y):
    """lax.top_k (the `topk` op; XLA's compiled module carries a `TopK` custom-call with a
    total-order comparator on the float's bits), on rows with NaNs of both signs, both
    zeros, infinities and ties; on integers with ties; and top-k as sort-then-slice."""
    v, i = lax.top_k(x, 4)
    vi, ii = lax.top_k(xi, 3)
    return v, i, vi, ii, jnp.sort(y, axis=-1)[..., ::-1][..., :3], jnp.argsort(y, axis=-1)[..., :2]


special = np.array([np.nan, -np.nan, 0.0, -0.0, np.inf, -np.inf, 1.0, 1.0, -1.0, 2.0], np.float32)
fixture("top_k", top_k_f, [rng.permutation(np.tile(special, 3)).reshape(3, 10), randi(-3, 3, 2, 9),
                           np.concatenate([randn(2, 5), np.zeros((2, 2), np.float32)], axis=1)], EXACT)


# ---------------------------------------------------------------- dot
def dot_f(a, b, c, v):
    return (
        a @ b, jnp.einsum("bij,bjk->bik", c, c.transpose(0, 2, 1)), v @ v, a @ v[:5],
        jnp.einsum("ij,kj->ik", a, a), jnp.einsum("bij,jk->bik", c[:, :, :5], b),
    )


fixture("dot", dot_f, [randn(4, 5), randn(5, 6), randn(3, 4, 6), randn(5)], F32,
        compiled="XLA:CPU's optimised module calls oneDNN/XNNPACK GEMMs through custom-call")


def dot_mixed_f(a, b, i, j):
    return (
        jnp.matmul(a, b, preferred_element_type=np.float32), a @ b, i @ j,
        lax.dot_general(i.astype(np.int8), j.astype(np.int8), (((1,), (0,)), ((), ())), preferred_element_type=np.int32),
    )


fixture("dot_mixed", dot_mixed_f, [randn(3, 8).astype(jnp.bfloat16), randn(8, 2).astype(jnp.bfloat16),
                                    randi(-20, 20, 3, 4), randi(-20, 20, 4, 5)], BF16,
        compiled="XLA:CPU's optimised module calls oneDNN/XNNPACK GEMMs through custom-call")


def dot_f64_f(a, b):
    return a @ b, jnp.einsum("ij,ij->i", a, a)


fixture("dot_f64", dot_f64_f, [randn(3, 4, dtype=np.float64), randn(4, 2, dtype=np.float64)], F64,
        compiled="XLA:CPU's optimised module calls GEMMs through custom-call")


# ---------------------------------------------------------------- control flow
def control_f(x, n, k):
    def body(i, acc):
        return acc * 0.5 + jnp.sin(acc) + i.astype(acc.dtype)

    a = lax.fori_loop(0, n, body, x)
    b = lax.cond(n > 3, lambda v: v * 2.0, lambda v: v - 1.0, x)
    c = lax.switch(k, [lambda v: v + 1.0, lambda v: v * v, lambda v: -v], x)
    d = lax.switch(k + 5, [lambda v: v + 1.0, lambda v: v * v, lambda v: -v], x)  # clamped index
    w = lax.while_loop(lambda s: s[0] < 100, lambda s: (s[0] * 3 + 1, s[1] + 1), (n, np.int32(0)))
    return a, b, c, d, w[0], w[1]


fixture("control_flow", control_f, [randn(4), np.int32(5), np.int32(1)], F32)


# ---------------------------------------------------------------- stateful, multi-step
def kv_decoder(x, wq, wk, wv, wo, k_cache, v_cache, pos):
    """One decoder step: project x, write K/V at `pos`, attend over positions <= pos."""
    q, k, v = x @ wq, x @ wk, x @ wv
    k_cache = lax.dynamic_update_slice(k_cache, k[None, :], (pos, jnp.int32(0)))
    v_cache = lax.dynamic_update_slice(v_cache, v[None, :], (pos, jnp.int32(0)))
    scores = (k_cache @ q) / np.float32(np.sqrt(q.shape[0]))
    mask = jnp.arange(k_cache.shape[0]) <= pos
    scores = jnp.where(mask, scores, -jnp.inf)
    p = jax.nn.softmax(scores)
    y = jnp.tanh((p @ v_cache) @ wo) + x
    return y, k_cache, v_cache, pos + 1


D, S = 16, 8
fixture("kv_decoder", kv_decoder,
        [randn(D), randn(D, D) * 0.3, randn(D, D) * 0.3, randn(D, D) * 0.3, randn(D, D) * 0.3,
         np.zeros((S, D), np.float32), np.zeros((S, D), np.float32), np.int32(0)],
        F32, steps=5, aliases={5: 1, 6: 2, 7: 3}, must=True)


def swap(a, b):
    """Two states that swap every step; output 2 reads both old values."""
    return b, a, a * 2.0 + b


fixture("swap", swap, [randn(3, 2), randn(3, 2)], F32, steps=3, aliases={0: 0, 1: 1})


def multi_reader(x, s, i):
    """A state read by several consumers, one of them after its in-place update is computed."""
    total = s.sum()
    s2 = lax.dynamic_update_slice(s, x[None, :], (i, jnp.int32(0)))
    scaled = s * 2.0  # reads the old state
    return total, s2, scaled, s2.sum(0), i + 1


fixture("multi_reader", multi_reader, [randn(4), randn(5, 4), np.int32(0)], F32, steps=4, aliases={1: 1, 2: 4})


def bf16_state(x, acc):
    """A bf16 accumulator: every step rounds to bf16."""
    acc = acc + x * jnp.asarray(0.1, jnp.bfloat16)
    return acc.astype(np.float32).sum(), acc


fixture("bf16_state", bf16_state, [randn(8).astype(jnp.bfloat16), np.ones(8, jnp.bfloat16)], BF16, steps=6, aliases={1: 1})


def counters(step, c32, c8, c64):
    """Integer counters: s32 step count, a wrapping u8, an s64 accumulator."""
    return c32 + 1, c8 + np.uint8(100), c64 + step.astype(np.int64) * c32.astype(np.int64), c32 * 2


fixture("counters", counters, [np.int32(3), np.int32(0), np.uint8(0), np.int64(2**40)], EXACT, steps=5, aliases={1: 0, 2: 1, 3: 2})


def ring_buffer(x, buf, idx):
    """Writes x at idx mod N; reads the mean of the window."""
    n = buf.shape[0]
    buf = lax.dynamic_update_slice(buf, x[None, :], (idx % n, jnp.int32(0)))
    return buf.mean(0), buf, idx + 1


fixture("ring_buffer", ring_buffer, [randn(3), np.zeros((4, 3), np.float32), np.int32(0)], F32, steps=7, aliases={1: 1, 2: 2})


fixture("mlp_cache", mlp_cache, [np.abs(randn(4)), np.abs(randn(4, 3)), randn(3) * 0.1, np.zeros(3, np.float32)], F32, steps=2, aliases={3: 1})


# ---------------------------------------------------------------- decoder layer (benchmarks)
DECODER_ALIASES = {9: 1, 10: 2, 11: 3}
fixture("decoder_layer", decoder_layer, decoder_args(rng, 32, 4, 16), F32, steps=4, aliases=DECODER_ALIASES, must=True)

# Benchmark models: HLO text only (inputs are generated by the benchmarks).
BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benches", "models")
os.makedirs(BENCH, exist_ok=True)
for name, (d, heads, s) in {"small": (256, 4, 256), "medium": (512, 8, 1024), "large": (1024, 16, 2048)}.items():
    if ONLY:
        decoder_args(rng, d, heads, s)  # the same random stream for what follows
        continue
    lowered = jax.jit(decoder_layer, keep_unused=True).lower(*decoder_args(rng, d, heads, s))
    with open(os.path.join(BENCH, f"decoder_{name}.hlo"), "w") as fh:
        fh.write(with_aliases(lowered.as_text(dialect="hlo"), DECODER_ALIASES, True))
    print(f"benches/models/decoder_{name}.hlo: d={d} heads={heads} cache={s}")

# A greedy-decoding language model (benchmarks and tools/compare_xla.py): two layers, a
# vocabulary of 8,192, the next token chosen on the device and kept as state.
LM = dict(vocab=8192, d=512, heads=8, s=1024, layers=2)
if not ONLY or "decoder_lm" in ONLY:
    lm_args = decoder_lm_args(np.random.default_rng(7), **LM)
    lowered = jax.jit(decoder_lm, keep_unused=True).lower(*lm_args)
    with open(os.path.join(BENCH, "decoder_lm.hlo"), "w") as fh:
        fh.write(with_aliases(lowered.as_text(dialect="hlo"), decoder_lm_aliases(LM["layers"]), True))
    print("benches/models/decoder_lm.hlo: " + ", ".join(f"{k}={v}" for k, v in LM.items()))

# ---------------------------------------------------------------- bundled examples
# The README's walkthrough models: the HLO plus the value of every parameter.
EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
for name in [] if ONLY else ["mlp_cache", "kv_decoder"]:
    dst = os.path.join(EXAMPLES, name)
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    src = os.path.join(ROOT, name)
    for f in sorted(os.listdir(src)):
        if f == "model.hlo" or f.startswith("arg"):
            shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    print(f"examples/{name}")

# ---------------------------------------------------------------- alias maps outside the HLO
# torch-neuronx's HLO has no input_output_alias header: the map is given beside the model
# (`input_output_aliases=`, the NEFF's metadata). These fixtures carry it in meta.json.
fixture("mlp_cache_external", mlp_cache,
        [np.abs(randn(4)), np.abs(randn(4, 3)), randn(3) * 0.1, np.zeros(3, np.float32)],
        F32, steps=3, aliases={3: 1}, external=True)
fixture("swap_external", swap, [randn(3, 2), randn(3, 2)], F32, steps=3, aliases={0: 0, 1: 1}, external=True)
fixture("kv_decoder_external", kv_decoder,
        [randn(D), randn(D, D) * 0.3, randn(D, D) * 0.3, randn(D, D) * 0.3, randn(D, D) * 0.3,
         np.zeros((S, D), np.float32), np.zeros((S, D), np.float32), np.int32(0)],
        F32, steps=5, aliases={5: 1, 6: 2, 7: 3}, external=True)

# ---------------------------------------------------------------- a new input every step
# A decode loop: the token embedding changes every step (`--feed`), the caches carry.
XS = randn(6, D)
fixture("kv_decoder_fed", kv_decoder,
        [XS[0], randn(D, D) * 0.3, randn(D, D) * 0.3, randn(D, D) * 0.3, randn(D, D) * 0.3,
         np.zeros((S, D), np.float32), np.zeros((S, D), np.float32), np.int32(0)],
        F32, steps=6, aliases={5: 1, 6: 2, 7: 3}, must=True, feeds={0: XS})

# ---------------------------------------------------------------- resident weights
# Weights loaded once and kept on the device (`--weight`). The torch-neuronx layout: inputs
# first, then the states in the order of input_output_aliases, then the weights; the alias
# map beside the model; a new token every step.
fixture("mlp_cache_weights", mlp_cache,
        [np.abs(randn(4)), np.abs(randn(4, 3)), randn(3) * 0.1, np.zeros(3, np.float32)],
        F32, steps=3, aliases={3: 1}, weights=[1, 2])


def kv_decoder_torch_layout(x, k_cache, v_cache, pos, wq, wk, wv, wo):
    return kv_decoder(x, wq, wk, wv, wo, k_cache, v_cache, pos)


XT = randn(5, D)
fixture("kv_decoder_weights", kv_decoder_torch_layout,
        [XT[0], np.zeros((S, D), np.float32), np.zeros((S, D), np.float32), np.int32(0),
         randn(D, D) * 0.3, randn(D, D) * 0.3, randn(D, D) * 0.3, randn(D, D) * 0.3],
        F32, steps=5, aliases={1: 1, 2: 2, 3: 3}, external=True, feeds={0: XT}, weights=[4, 5, 6, 7],
        manifest_names=["x", "k_cache", "v_cache", "pos", "wq", "wk", "wv", "wo"])

# ---------------------------------------------------------------- convolution
# lax.conv_general_dilated in the layouts, windows and groupings real models lower to: flax's
# NHWC/HWIO, torch's NCHW/OIHW, strides, asymmetric and negative padding, input dilation (a
# transposed convolution), kernel dilation (atrous), depthwise (feature groups), the weight
# gradient of a grouped convolution (batch groups), 1-D and 3-D, and integer and low-precision
# types. Their own random stream, so adding them moves no other fixture's values.
crng = np.random.default_rng(20261129)


def crandn(*shape, dtype=np.float32):
    return crng.standard_normal(shape).astype(dtype)


def conv(x, w, strides, padding, dn, lhs_dil=None, rhs_dil=None, groups=1, batch_groups=1, pet=None):
    return lax.conv_general_dilated(x, w, strides, padding, lhs_dilation=lhs_dil, rhs_dilation=rhs_dil,
                                    dimension_numbers=dn, feature_group_count=groups,
                                    batch_group_count=batch_groups, preferred_element_type=pet)


def conv_f32_f(nhwc, hwio, nchw, oihw, dw, ncw, oiw, x3, w3, bg_x, bg_w):
    return (
        conv(nhwc, hwio, (1, 1), "SAME", ("NHWC", "HWIO", "NHWC")),
        conv(nchw, oihw, (2, 1), [(1, 0), (2, 1)], ("NCHW", "OIHW", "NCHW"), rhs_dil=(2, 1)),
        conv(nhwc, hwio, (1, 2), [(-1, 2), (1, -1)], ("NHWC", "HWIO", "NHWC")),
        conv(nhwc, hwio, (1, 1), [(2, 2), (1, 1)], ("NHWC", "HWIO", "NHWC"), lhs_dil=(2, 3)),
        conv(nhwc, dw, (1, 1), "SAME", ("NHWC", "HWIO", "NHWC"), groups=4),
        conv(ncw, oiw, (3,), [(2, 1)], ("NCH", "OIH", "NCH"), rhs_dil=(2,)),
        conv(x3, w3, (1, 2, 1), "VALID", ("NDHWC", "DHWIO", "NDHWC")),
        conv(bg_x, bg_w, (1, 1), "VALID", ("NHWC", "HWIO", "NHWC"), batch_groups=2),
        conv(nchw, oihw, (1, 1), "VALID", ("NCHW", "OIHW", "NHWC")),
    )


fixture("conv_f32", conv_f32_f,
        [crandn(2, 7, 6, 4), crandn(3, 2, 4, 5), crandn(2, 3, 9, 8), crandn(6, 3, 3, 2),
         crandn(3, 3, 1, 8), crandn(2, 4, 11), crandn(5, 4, 3),
         crandn(1, 4, 5, 6, 2), crandn(2, 2, 3, 2, 3), crandn(4, 5, 5, 3), crandn(2, 2, 3, 6)], F32)


def conv_int_f(x8, w8, x, w):
    return (
        conv(x8, w8, (1, 1), "SAME", ("NHWC", "HWIO", "NHWC"), pet=jnp.int32),
        conv(x, w, (2, 1), [(1, 1), (0, 2)], ("NCHW", "OIHW", "NCHW"), groups=2),
    )


fixture("conv_int", conv_int_f,
        [crng.integers(-128, 128, (2, 5, 5, 3)).astype(np.int8), crng.integers(-128, 128, (3, 3, 3, 4)).astype(np.int8),
         crng.integers(-1000, 1000, (1, 4, 6, 5)).astype(np.int32), crng.integers(-1000, 1000, (4, 2, 2, 3)).astype(np.int32)],
        EXACT)


def conv_bf16_f(xb, wb):
    return (
        conv(xb, wb, (1, 1), "SAME", ("NHWC", "HWIO", "NHWC")),
        conv(xb, wb, (2, 2), "VALID", ("NHWC", "HWIO", "NHWC"), pet=jnp.float32),
    )


fixture("conv_bf16", conv_bf16_f,
        [crandn(2, 6, 6, 8).astype(jnp.bfloat16), (crandn(3, 3, 8, 4) * 0.3).astype(jnp.bfloat16)], BF16)
fixture("conv_f16", lambda xh, wh: conv(xh, wh, (1, 1), [(1, 2), (0, 1)], ("NCHW", "OIHW", "NCHW")),
        [crandn(2, 3, 5, 6).astype(np.float16), (crandn(4, 3, 2, 2) * 0.5).astype(np.float16)], F16)
fixture("conv_f64", lambda xd, wd: conv(xd, wd, (1, 1), "SAME", ("NHWC", "HWIO", "NHWC"), rhs_dil=(2, 1)),
        [crandn(2, 5, 6, 3).astype(np.float64), crandn(3, 2, 3, 4).astype(np.float64)], F64)

# ---------------------------------------------------------------- flax layers
# Models written with flax's own layers, state in flax's collections: the linen CNN with
# BatchNorm statistics in state, linen's decode-mode attention with its KV cache (f32 and
# bf16), an LSTM and a GRU carry. Weights resident, a new input every step.
if not ONLY or ONLY & {"flax_cnn", "flax_decode_attention", "flax_decode_attention_bf16", "flax_recurrent"}:
    import flax_models

    frng = np.random.default_rng(20261130)
    step, args, aliases, weights = flax_models.cnn(frng)
    fixture("flax_cnn", step, args, F32, steps=3, aliases=aliases, weights=weights,
            feeds={0: frng.standard_normal((3, *args[0].shape)).astype(np.float32)})
    for name, dtype, tol in [("flax_decode_attention", np.float32, F32),
                             ("flax_decode_attention_bf16", jnp.bfloat16, BF16_MODEL)]:
        step, args, aliases, weights = flax_models.decode_attention(frng, dtype)
        fixture(name, step, args, tol, steps=4, aliases=aliases, weights=weights,
                feeds={0: frng.standard_normal((4, *args[0].shape)).astype(dtype)})
    step, args, aliases, weights = flax_models.recurrent(frng)
    fixture("flax_recurrent", step, args, F32, steps=4, aliases=aliases, weights=weights,
            feeds={0: frng.standard_normal((4, *args[0].shape)).astype(np.float32)})

# ---------------------------------------------------------------- erf
# lax.erf (the `erf` opcode; torch's exact nn.GELU lowers to it through torch-xla) in every
# float type, alone and in torch-xla's GELU form. f32 matches XLA:CPU bit for bit: inputs skip
# subnormals (XLA flushes them) and 3.7439212 <= |x| < 3.8325069, where XLA's vector and
# scalar emitters saturate differently (statetensor follows the scalar one, which a GELU takes).
erng = np.random.default_rng(20261201)


def erf_inputs(n):
    x = np.concatenate([np.linspace(-6, 6, 2001), erng.standard_normal(n) * 2, 10.0 ** erng.uniform(-30, 1, n),
                        -(10.0 ** erng.uniform(-30, 1, n)), [0.0, -0.0, np.inf, -np.inf, np.nan, 3.7, -3.7, 3.9, 40.0]])
    band = (np.abs(x) >= 3.7439) & (np.abs(x) < 3.8326)
    return x[~band]


def erf_f(x32, x16, xb):
    gelu = x32 * np.float32(0.5) * (lax.erf(x32 * np.float32(0.70710677)) + np.float32(1.0))
    return lax.erf(x32), gelu, lax.erf(x16), lax.erf(xb)


_x = erf_inputs(3000)
fixture("erf", erf_f, [_x.astype(np.float32), _x.astype(np.float16), _x.astype(jnp.bfloat16)],
        dict(rtol=0.0, atol=0.0, why="erf: XLA:CPU's f32 approximation reproduced bit for bit"))
fixture("erf_f64", lax.erf, [_x.astype(np.float64)], F64)

# ---------------------------------------------------------------- rng-bit-generator
# lax.rng_bit_generator with each algorithm (rng_default is Philox on XLA:CPU), its u64[2]
# state kept on the device as a state tensor (aliased) and stepped: bits of every unsigned
# width, scalar, odd and rank-3 shapes (ThreeFry's split dimension), a counter that wraps.
def rng_bits_f(k_tf, k_ph, k_def):
    outs = []

    def gen(key, alg, shapes):
        for shape, dtype in shapes:
            key, bits = lax.rng_bit_generator(key, shape, dtype=dtype, algorithm=alg)
            outs.append(bits)
        return key

    k_tf = gen(k_tf, lax.RandomAlgorithm.RNG_THREE_FRY,
               [((8,), np.uint32), ((3, 3), np.uint32), ((2, 3, 5), np.uint8), ((), np.uint64), ((5,), np.uint16)])
    k_ph = gen(k_ph, lax.RandomAlgorithm.RNG_PHILOX,
               [((8,), np.uint32), ((3, 3), np.uint64), ((7,), np.uint8), ((), np.uint32), ((2, 5), np.uint16)])
    k_def = gen(k_def, lax.RandomAlgorithm.RNG_DEFAULT, [((4, 3), np.uint32), ((5,), np.uint64)])
    return (k_tf, k_ph, k_def, *outs)


fixture("rng_bit_generator", rng_bits_f,
        [np.array([1, 2], np.uint64), np.array([0x2A00000000, 2 ** 64 - 5], np.uint64),
         np.array([0xDEADBEEF, 0], np.uint64)],
        EXACT, steps=3, aliases={0: 0, 1: 1, 2: 2})

# ---------------------------------------------------------------- reduce-precision
# lax.reduce_precision to bf16, f16, fp8 (e4m3, e5m2) and odd formats, from every float type;
# inputs cover rounding ties, overflow and underflow of the narrow format, infinities, zeros
# and NaNs with payloads (kept as XLA keeps them).
prng = np.random.default_rng(20261130)


def rp_inputs(dtype, bits):
    n = 1500
    raw = prng.integers(0, 2 ** bits, n, dtype=np.uint64).astype({16: np.uint16, 32: np.uint32, 64: np.uint64}[bits])
    vals = np.concatenate([raw.view(dtype).astype(np.float64),
                           prng.standard_normal(n) * 10.0 ** prng.uniform(-8, 8, n),
                           [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 448.0, 464.0,
                            57344.0, 65504.0, 65520.0, 2 ** -14, 2 ** -15, 2 ** -7, 3e38]])
    with np.errstate(over="ignore", invalid="ignore"):
        return vals.astype(dtype)


def reduce_precision_f(x32, x64, x16, xb):
    outs = []
    for x in (x32, x64):
        for e, m in [(8, 7), (5, 10), (4, 3), (5, 2), (8, 0), (2, 1), (11, 20)]:
            outs.append(lax.reduce_precision(x, exponent_bits=e, mantissa_bits=m))
    for x in (x16, xb):
        for e, m in [(4, 3), (5, 2), (8, 3)]:
            outs.append(lax.reduce_precision(x, exponent_bits=e, mantissa_bits=m))
    return tuple(outs)


fixture("reduce_precision", reduce_precision_f,
        [rp_inputs(np.float32, 32), rp_inputs(np.float64, 64), rp_inputs(np.float16, 16),
         rp_inputs(np.float32, 32).astype(jnp.bfloat16)],
        dict(rtol=0.0, atol=0.0, why="reduce-precision is exact bit manipulation"))

# ---------------------------------------------------------------- select-and-scatter
# The gradient of max pooling (what jax.grad of lax.reduce_window max, flax's nn.max_pool,
# lowers to): select-and-scatter with a GE select and an add scatter; overlapping windows
# with padding, and ties (repeated values) where the first maximum of a window wins.
srng = np.random.default_rng(20261131)


def max_pool_grad_f(x, g):
    def pool(v, window, strides, padding):
        return lax.reduce_window(v, -np.inf, lax.max, window, strides, padding)

    _, vjp = jax.vjp(lambda v: pool(v, (1, 3, 3, 1), (1, 2, 2, 1), "SAME"), x)
    _, vjp2 = jax.vjp(lambda v: pool(v, (1, 2, 2, 1), (1, 2, 2, 1), "VALID"), x)
    g2 = g[:, :4, :4, :]
    return vjp(g)[0], vjp2(g2)[0]


_xp = np.round(srng.standard_normal((2, 8, 8, 3)) * 2).astype(np.float32)
fixture("select_and_scatter", max_pool_grad_f,
        [_xp, srng.standard_normal((2, 4, 4, 3)).astype(np.float32)], F32)

# ---------------------------------------------------------------- FP8
# f8e4m3fn (trn2's FP8) and f8e5m2: converts from f32 across every binade, ties, subnormals,
# overflow (to NaN in e4m3fn, which has no infinity; to infinity in e5m2) and NaN; converts
# back and between the formats; elementwise arithmetic in FP8; an FP8 matrix product
# accumulated in f32 (what a quantised layer runs) and a sum of FP8 values.
f8rng = np.random.default_rng(20261202)


def f8_inputs(n):
    e4 = np.array([float(v) for v in np.arange(256, dtype=np.uint8).view(jnp.float8_e4m3fn)], np.float64)
    e5 = np.array([float(v) for v in np.arange(256, dtype=np.uint8).view(jnp.float8_e5m2)], np.float64)
    grid = np.concatenate([e4, e5])
    grid = grid[np.isfinite(grid)]
    mids = (np.sort(grid)[1:] + np.sort(grid)[:-1]) / 2  # ties between neighbours
    x = np.concatenate([grid, mids, f8rng.standard_normal(n) * 10.0 ** f8rng.uniform(-6, 5, n),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 448.0, 464.0, 465.0, 480.0, 500.0,
                         57344.0, 61440.0, 61441.0, 1e6, -1e6, 2.0 ** -10, 2.0 ** -9, 3 * 2.0 ** -10,
                         2.0 ** -17, 2.0 ** -16, 3 * 2.0 ** -17]])
    with np.errstate(over="ignore", invalid="ignore"):
        return x.astype(np.float32)


def float8_f(x, a4, b4, a5, w4):
    e4, e5 = jnp.float8_e4m3fn, jnp.float8_e5m2
    q4, q5 = x.astype(e4), x.astype(e5)
    return (q4, q5, q4.astype(np.float32), q5.astype(jnp.bfloat16), q4.astype(e5), q5.astype(e4),
            a4 + b4, a4 * b4, jnp.maximum(a4, b4), a5 - a5[::-1],
            lax.dot_general(a4.reshape(8, 16), w4, (((1,), (0,)), ((), ())), preferred_element_type=np.float32),
            jnp.sum(a4.reshape(8, 16).astype(np.float32), axis=1))


_x8 = f8_inputs(2000)
_a4 = (f8rng.standard_normal(128) * 4).astype(jnp.float8_e4m3fn)
_b4 = (f8rng.standard_normal(128) * 4).astype(jnp.float8_e4m3fn)
_a5 = (f8rng.standard_normal(128) * 100).astype(jnp.float8_e5m2)
_w4 = (f8rng.standard_normal((16, 8))).astype(jnp.float8_e4m3fn)
fixture("float8", float8_f, [_x8, _a4, _b4, _a5, _w4], F32)

# ---------------------------------------------------------------- nnx and equinox models
# tools/nnx_eqx_models.py (needs flax and equinox): an nnx decoder that picks its next token
# with argmax on the device and feeds it back through state with its KV cache; nnx.RNN
# scanning an LSTM cell over sequence chunks, its carry in state; an equinox MLP whose
# BatchNorm statistics are eqx.nn.State. Weights resident.
if not ONLY or ONLY & {"nnx_greedy_decoder", "nnx_rnn_scan", "eqx_batchnorm"}:
    import nnx_eqx_models

    nrng = np.random.default_rng(20261203)
    step, args, aliases, weights = nnx_eqx_models.greedy_decoder(nrng)
    fixture("nnx_greedy_decoder", step, args, F32, steps=6, aliases=aliases, weights=weights)
    step, args, aliases, weights = nnx_eqx_models.rnn_scan(nrng)
    fixture("nnx_rnn_scan", step, args, F32, steps=3, aliases=aliases, weights=weights,
            feeds={0: nrng.standard_normal((3, *args[0].shape)).astype(np.float32)})
    step, args, aliases, weights = nnx_eqx_models.eqx_batchnorm(nrng)
    fixture("eqx_batchnorm", step, args, F32, steps=3, aliases=aliases, weights=weights,
            feeds={0: nrng.standard_normal((3, *args[0].shape)).astype(np.float32)})


# int4 weight-only quantisation as JAX writes it: s4 weights (resident) with a bf16
# per-channel scale, dequantised and contracted in f32; an s4 step counter and a u4 ring
# slot kept as state wrap modulo 16 as they advance; the u4 codes of the output re-quantised.
def int4_linear(x, w4, scale, acc, step, slot):
    w = w4.astype(jnp.bfloat16) * scale
    y = jnp.dot(x.astype(jnp.bfloat16), w, preferred_element_type=jnp.float32)
    codes = jnp.clip(jnp.round(y * 2 + 8), 0, 15).astype(jnp.uint4)
    return y, acc + y, step + jnp.int4(3), slot + jnp.uint4(5), codes


i4rng = np.random.default_rng(44)
fixture("int4_linear", int4_linear,
        [i4rng.standard_normal((2, 32)).astype(np.float32),
         i4rng.integers(-8, 8, (32, 16)).astype(jnp.int4),
         (i4rng.random(16) * 0.1 + 0.02).astype(jnp.bfloat16),
         np.zeros((2, 16), np.float32), np.array(5, jnp.int4), np.array(9, jnp.uint4)],
        F32, steps=4, aliases={3: 1, 4: 2, 5: 3}, weights=[1, 2],
        feeds={0: i4rng.standard_normal((4, 2, 32)).astype(np.float32)})
