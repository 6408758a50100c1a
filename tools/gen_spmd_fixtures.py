#!/usr/bin/env python3
"""Writes the SPMD fixtures: modules partitioned for N devices, run by N simulated cores,
with JAX (N host devices, --xla_force_host_platform_device_count) as the oracle.

Each fixture is a directory under conformance/fixtures/spmd/<name>/ (apart from the one-core
fixtures, which every single-core test runs) holding:
  model.hlo      the per-device module XLA's SPMD partitioner wrote for a shard_map step
                 (jax.jit(...).lower(...).compile().as_text(): `num_partitions=N` in its
                 header, the collectives explicit), with the state aliases in its header
  model.pb       the same module as a serialized HloModuleProto (no module config: the
                 engine reads its cores as partitions because it uses partition ids)
  arg{p}.npy     every parameter's initial value per core, along a leading axis of N
                 (core k's value at [k]; a replicated value is repeated)
  out{s}_{k}.npy output k after step s per core, along a leading axis of N
  meta.json      cores, steps, tolerance, aliases ({param: output}), weights (the
                 parameters kept resident, each core its own shard)

Run: python3 tools/gen_spmd_fixtures.py [NAME...]  (needs `pip install jax`). CI never runs
this; the files it writes are committed.
"""
import os
import shutil
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax, shard_map  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import FixtureFiles, header_alias_span  # noqa: E402
from spmd_models import DECODER_IN, DECODER_OUT, make_tp_decoder  # noqa: E402

jax.config.update("jax_platforms", "cpu")

ONLY = set(sys.argv[1:])
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance", "fixtures", "spmd")
rng = np.random.default_rng(20261130)

# f32 arithmetic: XLA:CPU approximates transcendentals and reassociates sums, and its
# all-reduce may add the cores' partial sums in another order than statetensor's
# documented left-to-right group order.
F32 = dict(rtol=2e-5, atol=1e-5, why="f32: XLA:CPU approximates transcendentals; all-reduce order differs")
EXACT = dict(rtol=0.0, atol=0.0, why="integer and data-movement results are exact")


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def per_core(arr, n):
    """Core k's value of a global array placed with its sharding: stacked along axis 0."""
    shards = sorted(arr.addressable_shards, key=lambda s: s.device.id)
    assert len(shards) == n
    return np.stack([np.asarray(s.data) for s in shards])


def alias_map(text):
    """{param: output} from the compiled module's input_output_alias header."""
    span = header_alias_span(text)
    if span is None:
        return {}
    body = text[span[0]:span[1]]
    out = {}
    import re
    for m in re.finditer(r"\{(\d*)\}:\s*\((\d+),", body):
        out[int(m.group(2))] = int(m.group(1) or 0)
    return out


def spmd_fixture(name, f, args, in_specs, out_specs, donate, tol, steps, n, weights=()):
    if ONLY and name not in ONLY:
        return
    mesh = Mesh(np.array(jax.devices()[:n]), ("tp",))
    sf = shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    jf = jax.jit(sf, donate_argnums=donate, keep_unused=True)
    placed = [jax.device_put(a, NamedSharding(mesh, s)) for a, s in zip(args, in_specs)]
    compiled = jf.lower(*placed).compile()
    text = compiled.as_text()
    aliases = alias_map(text)
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    files = FixtureFiles(d)
    with open(os.path.join(d, "model.hlo"), "w") as fh:
        fh.write(text)
    modules = compiled.runtime_executable().hlo_modules()
    with open(os.path.join(d, "model.pb"), "wb") as fh:
        fh.write(modules[0].as_serialized_hlo_module_proto())
    for p, a in enumerate(placed):
        files.save(f"arg{p}.npy", per_core(a, n))
    cur = placed
    for s in range(steps):
        # donation consumes the inputs: run on copies, keep the outputs as the next state
        outs = jf(*[jnp.copy(c) if p in donate else c for p, c in enumerate(cur)])
        outs = jax.tree_util.tree_leaves(outs)
        for k, o in enumerate(outs):
            files.save(f"out{s}_{k}.npy", per_core(o, n))
        cur = list(cur)
        for p, o in aliases.items():
            cur[p] = outs[o]
    files.write_meta({
        "cores": n, "steps": steps, "rtol": tol["rtol"], "atol": tol["atol"], "tolerance": tol["why"],
        "aliases": {str(p): o for p, o in sorted(aliases.items())},
        **({"weights": list(weights)} if weights else {}),
    })
    print(f"{name}: {n} cores, {len(text.splitlines())} lines, aliases {aliases}, {steps} step(s)")


# --- every collective JAX's shard_map writes, on four cores -------------------------------

def collectives(x, w, c):
    y = x @ w
    s = lax.psum(y, "tp")
    g = lax.all_gather(x, "tp", tiled=True)
    rs = lax.psum_scatter(y, "tp", scatter_dimension=1, tiled=True)
    pp = lax.ppermute(x, "tp", perm=[(i, (i + 1) % 4) for i in range(4)])
    a2a = lax.all_to_all(y, "tp", 1, 0, tiled=True)
    i = lax.axis_index("tp")
    mx = lax.pmax(c, "tp")
    return s, g, rs, pp, a2a, c + i, mx


spmd_fixture(
    "collectives", collectives,
    [randn(2, 8), randn(8, 8), np.arange(4, dtype=np.int32) * 3],
    (P(None, "tp"), P("tp", None), P("tp")),
    (P(), P(), P(None, "tp"), P(None, "tp"), P("tp"), P("tp"), P()),
    donate=(2,), tol=F32, steps=2, n=4)


# --- a tensor-parallel decoder layer with a sharded KV cache -------------------------------

D, H, HD, F, S = 64, 8, 8, 128, 16
tp_decoder = make_tp_decoder(HD, S)


def decoder_args():
    return [randn(D), randn(D, D) * 0.2, randn(D, D) * 0.2, randn(D, D) * 0.2, randn(D, D) * 0.2,
            randn(D, F) * 0.2, randn(F, D) * 0.2,
            np.zeros((S, H, HD), np.float32), np.zeros((S, H, HD), np.float32), np.int32(0)]


for cores in (4, 8):
    spmd_fixture(f"tp{cores}_decoder", tp_decoder, decoder_args(), DECODER_IN, DECODER_OUT,
                 donate=(7, 8, 9), tol=F32, steps=4, n=cores, weights=range(1, 7))
