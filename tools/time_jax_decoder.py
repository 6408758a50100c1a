#!/usr/bin/env python3
"""Times XLA:CPU (through JAX) on the decoder-layer step the criterion benchmark
`hlo/decoder_step/*` runs, with the KV cache donated so XLA also updates it in place.

Run: python3 tools/time_jax_decoder.py   (needs `pip install jax`)
"""
import time

import jax
import numpy as np

from models import decoder_args, decoder_layer

jax.config.update("jax_platforms", "cpu")

SIZES = {"small": (256, 4, 256), "medium": (512, 8, 1024), "large": (1024, 16, 2048)}

for name, (d, heads, s) in SIZES.items():
    args = [jax.device_put(a) for a in decoder_args(np.random.default_rng(0), d, heads, s)]
    step = jax.jit(decoder_layer, donate_argnums=(9, 10, 11))
    state = tuple(args[9:])
    weights = args[:9]

    def run(n, state):
        for _ in range(n):
            out = step(*weights, *state)
            state = (out[1], out[2], out[3] % s)
        jax.block_until_ready(state)
        return state

    state = run(5, state)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        state = run(40, state)
        best = min(best, (time.perf_counter() - t) / 40)
    print(f"decoder_step/{name}: d={d} heads={heads} cache={s}: {best * 1e3:.3f} ms per step (XLA:CPU via JAX {jax.__version__})")
