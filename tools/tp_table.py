#!/usr/bin/env python3
"""The README's tensor-parallel table: one decoder layer of a Llama-2-7B-sized model
(hidden 4096, 32 heads of 128, MLP 11008, f32, a 4096-token KV cache) partitioned by JAX
for TP = 1, 2, 4, 8 cores, each run through `statetensor bench --cores N` on a device
profile: state bytes per core, modelled time per token with state tensors (the cache
resident and sharded) and with round trips (every core's cache shard copied out and back
each token), and the collectives' share.

The weights and cache are zeros: the simulator's cost model prices bytes and operations,
not values. Needs JAX (8 host devices are forced) and a built statetensor binary.

Run: python3 tools/tp_table.py [--device trn1] [--bin target/release/statetensor] [--steps 1]
(modelled time does not change from step to step; the debug binary takes minutes per TP)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax import shard_map  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spmd_models import DECODER_IN, DECODER_OUT, make_tp_decoder  # noqa: E402

jax.config.update("jax_platforms", "cpu")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
D, H, HD, F, S = 4096, 32, 128, 11008, 4096
# f32: XLA:CPU's compiled module computes bf16 dots in f32 by converting every bf16 weight
# each step (which neuronx-cc would not do), and the module before its passes copies every
# parameter; in f32 the compiled module is the layer as written
DTYPE = np.float32


def shapes():
    t = DTYPE
    return [((D,), t), ((D, D), t), ((D, D), t), ((D, D), t), ((D, D), t),
            ((D, F), t), ((F, D), t), ((S, H, HD), t), ((S, H, HD), t), ((), np.int32)]


def bundle(tp, directory):
    """Writes the layer partitioned for `tp` cores (model.hlo) and every parameter's
    per-core zeros (arg{p}.npy with a leading axis of tp) into `directory`."""
    mesh = Mesh(np.array(jax.devices()[:tp]), ("tp",))
    f = shard_map(make_tp_decoder(HD, S), mesh=mesh, in_specs=DECODER_IN, out_specs=DECODER_OUT,
                  check_vma=False)
    args = [jax.ShapeDtypeStruct(s, d, sharding=NamedSharding(mesh, spec))
            for (s, d), spec in zip(shapes(), DECODER_IN)]
    compiled = jax.jit(f, donate_argnums=(7, 8, 9), keep_unused=True).lower(*args).compile()
    with open(os.path.join(directory, "model.hlo"), "w") as fh:
        fh.write(compiled.as_text())
    for p, ((s, d), spec) in enumerate(zip(shapes(), DECODER_IN)):
        local = list(s)
        for axis, name in enumerate(spec):
            if name == "tp":
                local[axis] //= tp
        np.save(os.path.join(directory, f"arg{p}.npy"), np.zeros([tp] + local, d))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="trn1")
    ap.add_argument("--bin", default=None)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--tp", default="1,2,4,8")
    a = ap.parse_args()
    binary = a.bin or next((os.path.join(ROOT, "target", b, "statetensor") for b in ("release", "debug")
                            if os.path.exists(os.path.join(ROOT, "target", b, "statetensor"))), None)
    if binary is None:
        sys.exit("build statetensor first: cargo build --release -p statetensor-cli")
    print(f"| TP | state per core | collectives per token | with state tensors | with round trips | round trip / resident |")
    print("|---:|---:|---:|---:|---:|---:|")
    for tp in [int(t) for t in a.tp.split(",")]:
        with tempfile.TemporaryDirectory() as d:
            bundle(tp, d)
            weights = [f"--weight={p}={d}/arg{p}.npy" for p in range(1, 7)]
            cmd = [binary, "bench", d, "--cores", str(tp), "--device", a.device, "--steps", str(a.steps),
                   "--json", *weights]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"TP {tp}: {out.stderr}")
            r = json.loads(out.stdout)
        al, rt = r["aliased"], r["round_trip"]
        n = al["steps"]
        state = al["state_bytes"] // tp
        coll = al.get("collective_s", 0.0) / n
        print(f"| {tp} | {state / 2**20:.1f} MiB | {coll * 1e6:.1f} µs | {al['modelled_s'] / n * 1e3:.3f} ms "
              f"| {rt['modelled_s'] / n * 1e3:.3f} ms | {rt['modelled_s'] / al['modelled_s']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
