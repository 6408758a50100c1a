#!/usr/bin/env python3
"""Fixtures from hand-written HLO text, with XLA:CPU (through jaxlib) as the oracle.

JAX emits only part of HLO: `map`, a variadic `scatter`, a `select-and-scatter` whose
regions are not max pooling's, or an rng-bit-generator with a three-word Philox state are
never lowered from Python code. Such modules are written here as HLO text, compiled by
XLA:CPU exactly as given (parsed by XLA's own parser, converted to StableHLO, compiled)
and run on the inputs below; the outputs are written as a fixture in the layout
tools/gen_fixtures.py writes (model.hlo, model.pb, arg*.npy, out{step}_{k}.npy,
meta.json), so the Rust fixture tests check statetensor against XLA on them.

    pip install jax          # jaxlib 0.10 was used
    python3 tools/xla_cases.py [name ...]
"""
import os
import re
import shutil
import sys

import ml_dtypes
import numpy as np
import jax

jax.config.update("jax_enable_x64", True)
from jax._src.lib import hlo  # noqa: E402

from fixture_io import FixtureFiles, xla_cpu_executable  # noqa: E402

ONLY = set(sys.argv[1:])
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance", "fixtures")
rng = np.random.default_rng(20261129)


TOKEN = object()  # an argument that is a token: XLA takes an empty buffer, the fixture none


def compile_text(text):
    """The module as XLA's parser reads and prints it (names made unique across
    computations), as a serialized HloModuleProto, and XLA:CPU's executable for it (whose
    parameters and results are the arrays and tokens inside the module's, flattened)."""
    module = hlo.hlo_module_from_text(text)
    return module.to_string(), module.as_serialized_hlo_module_proto(), xla_cpu_executable(text)


def header_aliases(text):
    """{parameter: output} from the module header's input_output_alias (whole parameters of
    a tuple result: `{o}: (p, {}, ...)`); aliases inside tuples need `carry=`."""
    at = text.find("input_output_alias=")
    if at < 0:
        return {}
    start = text.index("{", at)
    depth = 0
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            break
    body = text[start + 1:end]
    pairs = re.findall(r"\{([\d,]*)\}:\s*\((\d+),\s*\{([\d,]*)\}", body)
    aliases = {}
    for output, param, param_index in pairs:
        if param_index or "," in output:
            raise ValueError(f"alias {{{output}}}: ({param}, {{{param_index}}}) is inside a tuple: give carry=")
        aliases[int(param)] = int(output or 0)
    return aliases


EXACT = dict(rtol=0.0, atol=0.0, why="XLA:CPU ran this module; every output exact")
F32 = dict(rtol=2e-7, atol=1e-6, why="XLA:CPU contracts a*a-b into one fused multiply-add (one rounding)")


def case(name, text, args, steps=1, tol=EXACT, carry=None):
    """Writes fixture `name`: `text` run by XLA:CPU on `args` (the arrays inside the
    parameters, depth first; TOKEN for a token) for `steps` steps, aliased outputs fed back
    to their parameters between steps — `carry` ({array parameter: array output}, counted
    as the fixture counts them: tokens left out) when the aliases sit inside tuples, else the
    header's. model.hlo is the module as XLA prints it, so that it and model.pb name every
    instruction alike."""
    if ONLY and name not in ONLY:
        return
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    printed, proto, exe = compile_text(text)
    with open(os.path.join(d, "model.hlo"), "w") as fh:
        fh.write(printed)
    with open(os.path.join(d, "model.pb"), "wb") as fh:
        fh.write(proto)
    arrays = [np.asarray(a) for a in args if a is not TOKEN]
    files = FixtureFiles(d)
    for p, a in enumerate(arrays):
        files.save(f"arg{p}.npy", a)
    aliases = header_aliases(printed) if carry is None else carry
    cur = list(arrays)
    for s in range(steps):
        it = iter(cur)
        buffers = [np.zeros((0,), np.bool_) if a is TOKEN else next(it) for a in args]
        results = exe.execute([jax.device_put(b) for b in buffers])
        outs = []
        for o in results:
            try:
                outs.append(np.asarray(o))
            except jax.errors.JaxRuntimeError as e:  # a token: no data
                if "token" not in str(e):
                    raise
        for k, o in enumerate(outs):
            files.save(f"out{s}_{k}.npy", o)
        for p, o in aliases.items():
            cur[p] = outs[o]
    meta = {"steps": steps, "rtol": tol["rtol"], "atol": tol["atol"], "tolerance": tol["why"],
            "no_compiled": "hand-written HLO: XLA:CPU's optimised dump is not kept"}
    files.write_meta(meta)
    print(f"{name}: {steps} step(s), {len(outs)} output(s)")


case("map_general", """HloModule map_general, entry_computation_layout={(f32[3,4]{1,0}, f32[3,4]{1,0}, s32[5]{0}, s32[5]{0}, s32[5]{0})->(f32[3,4]{1,0}, s32[5]{0}, f32[5]{0}, f32[3,4]{1,0})}

square_minus {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  aa = f32[] multiply(a, a)
  ROOT r = f32[] subtract(aa, b)
}

pick {
  x = s32[] parameter(0)
  y = s32[] parameter(1)
  z = s32[] parameter(2)
  gt = pred[] compare(x, y), direction=GT
  ROOT r = s32[] select(gt, z, y)
}

to_float {
  x = s32[] parameter(0)
  half = f32[] constant(0.5)
  f = f32[] convert(x)
  ROOT r = f32[] multiply(f, half)
}

add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT r = f32[] add(a, b)
}

ENTRY main {
  a = f32[3,4]{1,0} parameter(0)
  b = f32[3,4]{1,0} parameter(1)
  i = s32[5]{0} parameter(2)
  j = s32[5]{0} parameter(3)
  k = s32[5]{0} parameter(4)
  m1 = f32[3,4]{1,0} map(a, b), dimensions={0,1}, to_apply=square_minus
  m2 = s32[5]{0} map(i, j, k), dimensions={0}, to_apply=pick
  m3 = f32[5]{0} map(i), dimensions={0}, to_apply=to_float
  m4 = f32[3,4]{1,0} map(a, b), dimensions={0,1}, to_apply=add
  ROOT t = (f32[3,4]{1,0}, s32[5]{0}, f32[5]{0}, f32[3,4]{1,0}) tuple(m1, m2, m3, m4)
}
""", [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32),
      np.array([3, -1, 7, 0, 9], np.int32), np.array([2, 5, 7, -4, 10], np.int32),
      np.array([100, 200, 300, 400, 500], np.int32)], tol=F32)

# A variadic scatter keeping, per slot, the (value, id) pair with the larger value: duplicate
# indices combine in update order; an index past the end is skipped.
case("scatter_variadic", """HloModule scatter_variadic, entry_computation_layout={(f32[5]{0}, s32[5]{0}, s32[6,1]{1,0}, f32[6]{0}, s32[6]{0})->(f32[5]{0}, s32[5]{0})}

keep_larger {
  v0 = f32[] parameter(0)
  i0 = s32[] parameter(1)
  v1 = f32[] parameter(2)
  i1 = s32[] parameter(3)
  gt = pred[] compare(v1, v0), direction=GT
  v = f32[] select(gt, v1, v0)
  i = s32[] select(gt, i1, i0)
  ROOT r = (f32[], s32[]) tuple(v, i)
}

ENTRY main {
  values = f32[5]{0} parameter(0)
  ids = s32[5]{0} parameter(1)
  at = s32[6,1]{1,0} parameter(2)
  new_values = f32[6]{0} parameter(3)
  new_ids = s32[6]{0} parameter(4)
  ROOT s = (f32[5]{0}, s32[5]{0}) scatter(values, ids, at, new_values, new_ids), update_window_dims={}, inserted_window_dims={0}, scatter_dims_to_operand_dims={0}, index_vector_dim=1, to_apply=keep_larger
}
""", [np.array([0.5, -1.0, 2.0, 0.0, 3.0], np.float32), np.array([0, 1, 2, 3, 4], np.int32),
      np.array([[1], [3], [1], [9], [0], [3]], np.int32),
      np.array([0.25, 1.5, 4.0, 100.0, 0.75, 1.0], np.float32), np.array([10, 11, 12, 13, 14, 15], np.int32)])

# select-and-scatter with regions max pooling's gradient does not use: a minimum (LE) with
# overlapping windows and padding, a selection by magnitude that is no single comparison
# (interpreted), an integer maximum with a `maximum` scatter, and replacement.
case("select_and_scatter_regions", """HloModule select_and_scatter_regions, entry_computation_layout={(f32[2,7,5]{2,1,0}, f32[2,4,3]{2,1,0}, f32[6,6]{1,0}, f32[3,3]{1,0}, s32[8]{0}, s32[4]{0})->(f32[2,7,5]{2,1,0}, f32[6,6]{1,0}, s32[8]{0}, f32[6,6]{1,0})}

le {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT r = pred[] compare(a, b), direction=LE
}

by_magnitude {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  aa = f32[] abs(a)
  ab = f32[] abs(b)
  ROOT r = pred[] compare(aa, ab), direction=GE
}

gt_s32 {
  a = s32[] parameter(0)
  b = s32[] parameter(1)
  ROOT r = pred[] compare(a, b), direction=GT
}

add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT r = f32[] add(a, b)
}

mul {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT r = f32[] multiply(a, b)
}

max_s32 {
  a = s32[] parameter(0)
  b = s32[] parameter(1)
  ROOT r = s32[] maximum(a, b)
}

replace {
  a = f32[] parameter(0)
  ROOT b = f32[] parameter(1)
}

ENTRY main {
  x = f32[2,7,5]{2,1,0} parameter(0)
  src = f32[2,4,3]{2,1,0} parameter(1)
  y = f32[6,6]{1,0} parameter(2)
  ysrc = f32[3,3]{1,0} parameter(3)
  n = s32[8]{0} parameter(4)
  nsrc = s32[4]{0} parameter(5)
  zero = f32[] constant(0)
  one = f32[] constant(1)
  izero = s32[] constant(-5)
  a = f32[2,7,5]{2,1,0} select-and-scatter(x, src, zero), window={size=1x3x3 stride=1x2x2 pad=0_0x1_1x1_1}, select=le, scatter=add
  b = f32[6,6]{1,0} select-and-scatter(y, ysrc, one), window={size=2x2 stride=2x2}, select=by_magnitude, scatter=mul
  c = s32[8]{0} select-and-scatter(n, nsrc, izero), window={size=3 stride=2 pad=1_0}, select=gt_s32, scatter=max_s32
  d = f32[6,6]{1,0} select-and-scatter(y, ysrc, zero), window={size=3x3 stride=2x2 pad=0_1x0_1}, select=le, scatter=replace
  ROOT t = (f32[2,7,5]{2,1,0}, f32[6,6]{1,0}, s32[8]{0}, f32[6,6]{1,0}) tuple(a, b, c, d)
}
""", [np.round(rng.standard_normal((2, 7, 5)) * 4).astype(np.float32),  # rounded: ties to select among
      rng.standard_normal((2, 4, 3)).astype(np.float32),
      np.round(rng.standard_normal((6, 6)) * 3).astype(np.float32), rng.standard_normal((3, 3)).astype(np.float32),
      np.array([4, -2, 4, 7, 1, 7, 0, 3], np.int32), np.array([10, -20, 30, 40], np.int32)])

# Philox with a three-word state (key, counter low, counter high), which lax.rng_bit_generator
# cannot express: the counter's carry into the high word, u32 and u64 bits, and the state
# carried across steps as a device keeps it (aliased).
case("rng_philox_state3", """HloModule rng_philox_state3, input_output_alias={ {0}: (0, {}, may-alias) }, entry_computation_layout={(u64[3]{0})->(u64[3]{0}, u32[3,5]{1,0}, u64[3]{0})}

ENTRY main {
  s = u64[3]{0} parameter(0)
  r = (u64[3]{0}, u32[3,5]{1,0}) rng-bit-generator(s), algorithm=rng_philox
  state1 = u64[3]{0} get-tuple-element(r), index=0
  bits = u32[3,5]{1,0} get-tuple-element(r), index=1
  r2 = (u64[3]{0}, u64[3]{0}) rng-bit-generator(state1), algorithm=rng_default
  state2 = u64[3]{0} get-tuple-element(r2), index=0
  wide = u64[3]{0} get-tuple-element(r2), index=1
  ROOT t = (u64[3]{0}, u32[3,5]{1,0}, u64[3]{0}) tuple(state2, bits, wide)
}
""", [np.array([0x0123456789ABCDEF, 2**64 - 7, 41], np.uint64)], steps=3)

# Tuple parameters and nested tuple results, flattened to their arrays (depth first) for
# the signature; aliases at shape indices inside the tuples ({1,0} of the result is the
# parameter's {1,1}); tokens threaded through after-all and add-dependency, carrying no data.
case("tuples_and_tokens", """HloModule tuples_and_tokens, input_output_alias={ {0}: (1, {}, may-alias), {1,0}: (0, {1,1}, may-alias), {1,1}: (0, {1,0}, may-alias) }

ENTRY main {
  p = (f32[2], (s32[], f32[3])) parameter(0)
  c = f32[2] parameter(1)
  tok = token[] parameter(2)
  x = f32[2] get-tuple-element(p), index=0
  inner = (s32[], f32[3]) get-tuple-element(p), index=1
  n = s32[] get-tuple-element(inner), index=0
  v = f32[3] get-tuple-element(inner), index=1
  one = s32[] constant(1)
  n1 = s32[] add(n, one)
  half = f32[3] constant({0.5, 2, -1})
  v1 = f32[3] multiply(v, half)
  c1 = f32[2] add(c, x)
  t2 = token[] after-all(tok)
  t3 = token[] after-all()
  t4 = token[] after-all(t2, t3)
  c2 = f32[2] add-dependency(c1, t4)
  ROOT r = (f32[2], (f32[3], s32[]), token[]) tuple(c2, (f32[3], s32[]) tuple(v1, n1), t4)
}
""", [np.array([1.5, -2.0], np.float32), np.array(5, np.int32), np.array([1.0, 2.0, 3.0], np.float32),
      np.array([10.0, 20.0], np.float32), TOKEN],
     steps=3, carry={3: 0, 2: 1, 1: 2})

# reduce-window with an init that is not the region's identity, over padding and input
# dilation: XLA folds only the positions inside the (dilated) input, so the init counts
# once per window, not once per padded position; a window of padding alone gives the
# init. One-op regions (run natively), a region that must be interpreted, a variadic one.
case("reduce_window_init", """HloModule reduce_window_init

add {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  ROOT s = f32[] add(a, b)
}

add_twice {
  a = f32[] parameter(0)
  b = f32[] parameter(1)
  c = f32[] add(a, b)
  ROOT s = f32[] add(c, b)
}

mul_s32 {
  a = s32[] parameter(0)
  b = s32[] parameter(1)
  ROOT m = s32[] multiply(a, b)
}

sum_and_count {
  a = f32[] parameter(0)
  n = s32[] parameter(1)
  x = f32[] parameter(2)
  k = s32[] parameter(3)
  s = f32[] add(a, x)
  c = s32[] add(n, k)
  ROOT t = (f32[], s32[]) tuple(s, c)
}

ENTRY main {
  x = f32[4,2] parameter(0)
  y = s32[5] parameter(1)
  ones = s32[4,2] parameter(2)
  hundred = f32[] constant(100)
  three = s32[] constant(3)
  zero = s32[] constant(0)
  a = f32[2,2] reduce-window(x, hundred), window={size=5x1 stride=3x1 pad=2_2x0_0}, to_apply=add
  b = f32[6,2] reduce-window(x, hundred), window={size=2x1 stride=1x1 lhs_dilate=2x1}, to_apply=add
  c = f32[4,2] reduce-window(x, hundred), window={size=3x2 stride=2x1 pad=2_3x0_1}, to_apply=add_twice
  d = s32[4] reduce-window(y, three), window={size=3 stride=2 pad=2_3}, to_apply=mul_s32
  e = (f32[4,3], s32[4,3]) reduce-window(x, ones, hundred, zero), window={size=2x2 stride=1x1 pad=1_0x1_1}, to_apply=sum_and_count
  e0 = f32[4,3] get-tuple-element(e), index=0
  e1 = s32[4,3] get-tuple-element(e), index=1
  ROOT t = (f32[2,2], f32[6,2], f32[4,2], s32[4], f32[4,3], s32[4,3]) tuple(a, b, c, d, e0, e1)
}
""", [np.arange(8, dtype=np.float32).reshape(4, 2) + 1, np.array([2, -1, 3, 1, -2], np.int32),
      np.ones((4, 2), np.int32)])

# int4 as XLA computes it: arithmetic wraps modulo 16, the bit operations see four bits,
# float-to-int4 converts saturate, int-to-int4 converts wrap, bitcast-convert reads a byte's
# low nibble first; an s4 counter kept as state wraps from 7 to -8.
_s4 = np.array([-8, -7, -3, -2, -1, 0, 1, 2, 3, 5, 6, 7, -8, 7, -1, 4], ml_dtypes.int4)
_t4 = np.array([-1, 3, 2, -2, 0, 0, 5, -8, 1, 7, 3, 1, 0, 7, -1, -3], ml_dtypes.int4)
_u4 = np.array([0, 1, 2, 3, 7, 8, 9, 14, 15, 5, 6, 12, 0, 15, 10, 11], ml_dtypes.uint4)
_v4 = np.array([3, 0, 1, 2, 15, 3, 4, 2, 1, 0, 7, 5, 9, 15, 2, 8], ml_dtypes.uint4)
case("int4_ops", """HloModule int4_ops, input_output_alias={ {0}: (4, {}, may-alias) }

add_s4 {
  a = s4[] parameter(0)
  b = s4[] parameter(1)
  ROOT r = s4[] add(a, b)
}

less_s4 {
  a = s4[] parameter(0)
  b = s4[] parameter(1)
  ROOT r = pred[] compare(a, b), direction=LT
}

ENTRY main {
  a = s4[16] parameter(0)
  b = s4[16] parameter(1)
  c = u4[16] parameter(2)
  d = u4[16] parameter(3)
  counter = s4[] parameter(4)
  bytes = u8[4] parameter(5)
  f = f32[8] parameter(6)
  wide = s32[8] parameter(7)
  one = s4[] constant(1)
  counter_next = s4[] add(counter, one)
  add = s4[16] add(a, b)
  sub = s4[16] subtract(a, b)
  mul = s4[16] multiply(a, b)
  div = s4[16] divide(a, b)
  rem = s4[16] remainder(a, b)
  and = s4[16] and(a, b)
  or = s4[16] or(a, b)
  xor = s4[16] xor(a, b)
  not = s4[16] not(a)
  neg = s4[16] negate(a)
  abs = s4[16] abs(a)
  sign = s4[16] sign(a)
  pop = s4[16] popcnt(a)
  clz = s4[16] count-leading-zeros(a)
  shl = s4[16] shift-left(a, b)
  srl = s4[16] shift-right-logical(a, b)
  sra = s4[16] shift-right-arithmetic(a, b)
  max = s4[16] maximum(a, b)
  min = s4[16] minimum(a, b)
  lt = pred[16] compare(a, b), direction=LT
  uadd = u4[16] add(c, d)
  usub = u4[16] subtract(c, d)
  umul = u4[16] multiply(c, d)
  udiv = u4[16] divide(c, d)
  urem = u4[16] remainder(c, d)
  unot = u4[16] not(c)
  upop = u4[16] popcnt(c)
  uclz = u4[16] count-leading-zeros(c)
  ushl = u4[16] shift-left(c, d)
  usrl = u4[16] shift-right-logical(c, d)
  usra = u4[16] shift-right-arithmetic(c, d)
  ugt = pred[16] compare(c, d), direction=GT
  to_f32 = f32[16] convert(a)
  from_f32 = s4[8] convert(f)
  ufrom_f32 = u4[8] convert(f)
  to_s32 = s32[16] convert(a)
  from_s32 = s4[8] convert(wide)
  u_to_s = s4[16] convert(c)
  s_to_u = u4[16] convert(a)
  nibbles = u4[4,2] bitcast-convert(bytes)
  pairs = s4[8,2] reshape(a)
  packed = s8[8] bitcast-convert(pairs)
  zero = s4[] constant(0)
  total = s4[] reduce(a, zero), dimensions={0}, to_apply=add_s4
  square = s4[4,4] reshape(b)
  flipped = s4[4,4] transpose(square), dimensions={1,0}
  joined = s4[32] concatenate(a, b), dimensions={0}
  part = s4[5] slice(a), slice={[3:13:2]}
  seven = s4[] constant(7)
  padded = s4[20] pad(a, seven), padding=2_2
  back = s4[16] reverse(b), dimensions={0}
  iota = s4[16] iota(), iota_dimension=0
  listed = s4[4] constant({-8, -1, 0, 7})
  sorted = s4[16] sort(a), dimensions={0}, to_apply=less_s4
  ROOT t = (s4[], s4[16], s4[16], s4[16], s4[16], s4[16], s4[16], s4[16], s4[16], s4[16], s4[16], s4[16], s4[16], s4[16], s4[16], s4[16], s4[16], s4[16], s4[16], s4[16], pred[16], u4[16], u4[16], u4[16], u4[16], u4[16], u4[16], u4[16], u4[16], u4[16], u4[16], u4[16], pred[16], f32[16], s4[8], u4[8], s32[16], s4[8], s4[16], u4[16], u4[4,2], s8[8], s4[], s4[4,4], s4[32], s4[5], s4[20], s4[16], s4[16], s4[4], s4[16]) tuple(counter_next, add, sub, mul, div, rem, and, or, xor, not, neg, abs, sign, pop, clz, shl, srl, sra, max, min, lt, uadd, usub, umul, udiv, urem, unot, upop, uclz, ushl, usrl, usra, ugt, to_f32, from_f32, ufrom_f32, to_s32, from_s32, u_to_s, s_to_u, nibbles, packed, total, flipped, joined, part, padded, back, iota, listed, sorted)
}
""", [_s4, _t4, _u4, _v4, np.array(5, ml_dtypes.int4), np.array([0x12, 0xef, 0x80, 0x7f], np.uint8),
      np.array([100.0, -9.5, np.nan, 3.7, -3.7, 7.5, -8.0, 15.9], np.float32),
      np.array([7, 8, 15, 16, -9, -8, 255, -129], np.int32)], steps=5)
