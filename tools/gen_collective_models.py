#!/usr/bin/env python3
"""Writes the all-reduce models `statetensor calibrate --cores N` times, as HloModuleProtos
neuronx-cc compiles: for each size, DIR/all_reduce_f32_{n}/model.pb holds the per-device
module XLA's SPMD partitioner writes for `psum` of f32[n] over N devices (a cross-partition
all-reduce, num_partitions=N). calibrate reads model.pb before its own model.hlo, and loads
model.neff when one is compiled beside it:

    python3 tools/gen_collective_models.py --cores 8 --max-mib 64 coll8
    for m in coll8/*/; do neuronx-cc compile $m/model.pb --framework XLA --target trn1 --output $m/model.neff; done
    statetensor calibrate --base trn1 --cores 8 --collective-models coll8 --out trn1-link.json

The sizes are calibrate's: 4 KiB, then x4, up to --max-mib (at most 64 MiB).
"""
import argparse
import os

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("out", help="directory of the bundles (calibrate's --collective-models)")
ap.add_argument("--cores", type=int, required=True)
ap.add_argument("--max-mib", type=int, default=256)
args = ap.parse_args()

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={args.cores}"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax, shard_map  # noqa: E402
from jax.sharding import Mesh, PartitionSpec as P  # noqa: E402

jax.config.update("jax_platforms", "cpu")
mesh = Mesh(jax.devices()[: args.cores], ("i",))

size = 4096
while size <= min(args.max_mib << 20, 64 << 20):
    n = size // 4
    f = jax.jit(shard_map(lambda x: lax.psum(x, "i"), mesh=mesh, in_specs=P("i"), out_specs=P("i")))
    compiled = f.lower(jnp.zeros((n * args.cores,), jnp.float32)).compile()
    d = os.path.join(args.out, f"all_reduce_f32_{n}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.pb"), "wb") as fh:
        fh.write(compiled.runtime_executable().hlo_modules()[0].as_serialized_hlo_module_proto())
    print(f"{d}/model.pb: all-reduce of f32[{n}] over {args.cores} devices")
    size *= 4
