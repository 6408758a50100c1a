#!/usr/bin/env python3
"""Simulator speed against XLA's CPU backend on the same HLO: a transformer decoder-layer
step (tools/models.py) at three sizes, KV cache carried as state.

- XLA:CPU: jax.jit(decoder_layer, donate_argnums=<cache, pos>), best of 5 timed loops.
- statetensor: `statetensor run` of benches/models/decoder_<size>.hlo (the same lowering)
  with the same inputs, weights resident and the caches and position state (a manifest), wall time per step from two runs (N1 and N2 steps), so parsing,
  planning and loading cancel out.

Then greedy decoding with a language model (benches/models/decoder_lm.hlo: two layers, a
vocabulary of 8,192, the argmax on the device, the next token kept as state), per token:
JAX's jitted step with the states donated, against `statetensor run` of a bundle whose
manifest makes the weights resident and the token, caches and position state.

Then a dispatch-bound step, examples/mlp_cache (a 4x3 layer with a 3-element cache): the
time of one jitted JAX call, which is JAX's per-call dispatch, against one `statetensor run`
step.

Run from the repository root after `cargo build --release -p statetensor-cli`:
    python3 tools/compare_xla.py [--busy] [--only small,medium,large,lm,cnn,dispatch]

STATETENSOR_BIN names another build of the CLI (to compare two builds in one sitting).
`--busy` runs one competing busy process (a spinning Python loop) beside every measurement,
as CI, a parallel `cargo test` or a notebook beside a build would.
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import (  # noqa: E402
    decoder_args, decoder_layer, decoder_lm, decoder_lm_aliases, decoder_lm_args, mlp_cache)

jax.config.update("jax_platforms", "cpu")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BIN = os.environ.get("STATETENSOR_BIN", os.path.join(ROOT, "target", "release", "statetensor"))
SIZES = {"small": (256, 4, 256), "medium": (512, 8, 1024), "large": (1024, 16, 2048)}
LM = dict(vocab=8192, d=512, heads=8, s=1024, layers=2)  # as tools/gen_fixtures.py writes it


@contextlib.contextmanager
def busy_process(enabled):
    """One competing busy process (a spinning Python loop) while the block runs, if `enabled`;
    yields whether one runs."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if enabled else None
    try:
        yield busy is not None
    finally:
        if busy:
            busy.kill()


def best_per_step(run, state, warm, steps):
    """Best of five timed loops of `steps` calls of `run(n, state) -> state`, after `warm`."""
    state = run(warm, state)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        state = run(steps, state)
        best = min(best, (time.perf_counter() - t) / steps)
    return best


def time_xla(args, s):
    step = jax.jit(decoder_layer, donate_argnums=(9, 10, 11))
    dev = [jax.device_put(a) for a in args]
    weights, state = dev[:9], tuple(dev[9:])

    def run(n, state):
        for _ in range(n):
            out = step(*weights, *state)
            state = (out[1], out[2], out[3] % s)
        jax.block_until_ready(state)
        return state

    return best_per_step(run, state, warm=5, steps=40)


def time_statetensor_dir(d, n1, n2, env=None):
    """Wall time per step of `statetensor run` on model directory `d` (in environment `env`,
    default this process's)."""

    def wall(n):
        best = float("inf")
        for _ in range(3):
            out = subprocess.run([BIN, "run", d, "--steps", str(n), "--json"], check=True, capture_output=True, text=True,
                                 env=env)
            best = min(best, json.loads(out.stdout)["wall_s"])
        return best

    return (wall(n2) - wall(n1)) / (n2 - n1)


def write_bundle(d, model, args, roles, text=None):
    """A bundle in `d`: benches/models/`model` (or the HLO `text`), every argument as
    argP.npy, and a manifest giving parameter P the role `roles(P)` ({"role": ...} plus
    "output" for a state)."""
    if text is None:
        with open(os.path.join(ROOT, "benches", "models", model)) as fh:
            text = fh.read()
    with open(os.path.join(d, "model.hlo"), "w") as fh:
        fh.write(text)
    params = []
    for p, a in enumerate(args):
        np.save(os.path.join(d, f"arg{p}.npy"), np.asarray(a))
        params.append(dict(roles(p), value=f"arg{p}.npy"))
    with open(os.path.join(d, "statetensor.json"), "w") as fh:
        json.dump({"format": 1, "parameters": params}, fh)


def manifest_roles(aliases, inputs=()):
    """Parameter roles as JAX holds them: donated ones state, `inputs` fed per call, the
    rest weights (resident, as JAX keeps them on its device between calls)."""
    def role(p):
        if p in aliases:
            return {"role": "state", "output": aliases[p]}
        return {"role": "input" if p in inputs else "weight"}
    return role


def decoder_bundle(d, name, args):
    """The decoder layer as a bundle in `d`: x an input, the weights resident, the caches and
    position state."""
    write_bundle(d, f"decoder_{name}.hlo", args, manifest_roles({9: 1, 10: 2, 11: 3}, inputs=(0,)))


def time_statetensor(name, args, s):
    """`statetensor run` of the decoder layer."""
    with tempfile.TemporaryDirectory() as d:
        decoder_bundle(d, name, args)
        return time_statetensor_dir(d, 10, min(s - 1, 110))


def time_xla_lm(args):
    aliases = decoder_lm_aliases(LM["layers"])
    first = min(aliases)
    step = jax.jit(decoder_lm, donate_argnums=tuple(aliases))
    dev = [jax.device_put(a) for a in args]
    weights, state = dev[:first], tuple(dev[first:])

    def run(n, state):
        for _ in range(n):
            state = step(*weights, *state)[1:]
        jax.block_until_ready(state)
        return state

    return best_per_step(run, state, warm=5, steps=40)


def lm_bundle(d, args):
    """The LM as a bundle in `d`: weights resident, the token and caches state."""
    write_bundle(d, "decoder_lm.hlo", args, manifest_roles(decoder_lm_aliases(LM["layers"])))


def time_statetensor_lm(args):
    """`statetensor run` of the LM."""
    with tempfile.TemporaryDirectory() as d:
        lm_bundle(d, args)
        return time_statetensor_dir(d, 10, 110)


CNN = dict(batch=8, size=32, features=(32, 64))


def time_cnn():
    """A training-mode step of flax's linen CNN (tools/flax_models.py: Conv 3x3 -> BatchNorm
    with its statistics in state -> relu -> avg_pool -> grouped strided Conv -> Dense) on a
    batch of 8 32x32 images: JAX's jitted step with the statistics donated, against
    `statetensor run` of the same lowering, weights resident, the statistics state."""
    from flax_models import cnn

    step, args, aliases, weights = cnn(np.random.default_rng(3), **CNN)
    first = min(aliases)
    n_state = len(aliases)
    jitted = jax.jit(step, donate_argnums=tuple(aliases))
    dev = [jax.device_put(a) for a in args]
    x, state, params = dev[:first], tuple(dev[first:first + n_state]), dev[first + n_state:]

    def run(n, state):
        for _ in range(n):
            state = jitted(*x, *state, *params)[-n_state:]
        jax.block_until_ready(state)
        return state

    xla = best_per_step(run, state, warm=3, steps=20)
    with tempfile.TemporaryDirectory() as d:
        cnn_bundle(d, step, args, aliases)
        return xla, time_statetensor_dir(d, 3, 23)


def cnn_bundle(d, step, args, aliases):
    """The CNN step as a bundle in `d`: images an input, the weights resident, the statistics
    state. The manifest gives the states and their outputs; the HLO needs no alias header."""
    import jax

    text = jax.jit(step, keep_unused=True).lower(*args).as_text(dialect="hlo")
    write_bundle(d, None, args, manifest_roles(aliases, inputs=range(min(aliases))), text=text)


def time_dispatch():
    """Per-step time of the tiny walkthrough model: JAX's jitted call against statetensor."""
    d = os.path.join(ROOT, "examples", "mlp_cache")
    x, w, b, cache = (np.load(os.path.join(d, f"arg{p}.npy")) for p in range(4))
    step = jax.jit(mlp_cache, donate_argnums=(3,))
    x, w, b, cache = (jax.device_put(a) for a in (x, w, b, cache))

    def run(n, cache):
        for _ in range(n):
            _, cache = step(x, w, b, cache)
        jax.block_until_ready(cache)
        return cache

    return best_per_step(run, cache, warm=100, steps=2000), time_statetensor_dir(d, 1000, 21000)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--busy", action="store_true", help="run a competing busy process beside every measurement")
    ap.add_argument("--only", default="small,medium,large,lm,cnn,dispatch", help="comma-separated rows to run")
    opts = ap.parse_args()
    rows = set(opts.only.split(","))
    if not os.path.exists(BIN):
        sys.exit(f"build the CLI first: cargo build --release -p statetensor-cli ({BIN} is missing)")
    with busy_process(opts.busy) as busy:
        print(f"XLA:CPU via JAX {jax.__version__}; {os.cpu_count()} CPUs" + ("; one busy process beside" if busy else ""))
        print(f"{'size':<8} {'XLA:CPU':>12} {'statetensor':>12} {'ratio':>7}")
        for name, (d, heads, s) in SIZES.items():
            if name not in rows:
                continue
            args = decoder_args(np.random.default_rng(0), d, heads, s)
            x = time_xla(args, s)
            st = time_statetensor(name, args, s)
            print(f"{name:<8} {x * 1e3:>10.3f}ms {st * 1e3:>10.3f}ms {st / x:>6.2f}x")
        if "lm" in rows:
            args = decoder_lm_args(np.random.default_rng(7), **LM)
            x = time_xla_lm(args)
            st = time_statetensor_lm(args)
            print(f"{'lm':<8} {x * 1e3:>10.3f}ms {st * 1e3:>10.3f}ms {st / x:>6.2f}x  (per token, greedy, vocabulary {LM['vocab']})")
        if "cnn" in rows:
            x, st = time_cnn()
            print(f"{'cnn':<8} {x * 1e3:>10.3f}ms {st * 1e3:>10.3f}ms {st / x:>6.2f}x  (flax linen CNN, batch {CNN['batch']}, {CNN['size']}x{CNN['size']}, training-mode BatchNorm)")
        if "dispatch" in rows:
            x, st = time_dispatch()
            print(f"dispatch-bound step (examples/mlp_cache): JAX call {x * 1e6:.1f}us, statetensor step {st * 1e6:.1f}us, {st / x:.2f}x")


if __name__ == "__main__":
    main()
