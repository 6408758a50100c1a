#!/usr/bin/env python3
"""A threaded step against the same step on one thread: `statetensor run` of the benchmark
models (tools/compare_xla.py's decoder layer at medium size, its greedy LM, its flax CNN)
with the engine's default pool and with `RAYON_NUM_THREADS=1`, the two alternated round by
round so that the machine's drift falls on both alike; per-step time from two runs of
different lengths (parsing, planning and loading cancel out; the best of three each), the
median of the rounds.

Run from the repository root after `cargo build --release -p statetensor-cli`:
    python3 tools/compare_threads.py [--busy] [--rounds 7] [--only medium,lm,cnn]

`--busy` runs one competing busy process (a spinning Python loop) beside every measurement.
STATETENSOR_BIN names another build of the CLI.
"""
import argparse
import os
import statistics
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_xla as cx  # noqa: E402
from models import decoder_args, decoder_lm_args  # noqa: E402


def bundle_medium(d):
    dim, heads, s = cx.SIZES["medium"]
    cx.decoder_bundle(d, "medium", decoder_args(np.random.default_rng(0), dim, heads, s))
    return 20, 170


def bundle_lm(d):
    cx.lm_bundle(d, decoder_lm_args(np.random.default_rng(7), **cx.LM))
    return 10, 110


def bundle_cnn(d):
    from flax_models import cnn

    step, args, aliases, _ = cnn(np.random.default_rng(3), **cx.CNN)
    cx.cnn_bundle(d, step, args, aliases)
    return 20, 120


BUNDLES = {"medium": bundle_medium, "lm": bundle_lm, "cnn": bundle_cnn}


def per_step_ms(d, threads, n1, n2):
    env = dict(os.environ)
    env.pop("RAYON_NUM_THREADS", None)
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
    return cx.time_statetensor_dir(d, n1, n2, env=env) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--busy", action="store_true", help="run a competing busy process beside every measurement")
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds per model")
    ap.add_argument("--only", default="medium,lm,cnn", help="comma-separated models")
    opts = ap.parse_args()
    if not os.path.exists(cx.BIN):
        sys.exit(f"build the CLI first: cargo build --release -p statetensor-cli ({cx.BIN} is missing)")
    with cx.busy_process(opts.busy) as busy:
        print(f"{os.cpu_count()} CPUs" + ("; one busy process beside" if busy else "")
              + f"; medians of {opts.rounds} alternating rounds, ms per step")
        print(f"{'model':<8} {'pool':>9} {'1 thread':>9} {'ratio':>7}")
        for name in opts.only.split(","):
            with tempfile.TemporaryDirectory() as d:
                n1, n2 = BUNDLES[name](d)
                pool, one = [], []
                for r in range(opts.rounds):
                    order = [(pool, None), (one, 1)]
                    for times, threads in (order if r % 2 == 0 else order[::-1]):
                        times.append(per_step_ms(d, threads, n1, n2))
                p, o = statistics.median(pool), statistics.median(one)
                print(f"{name:<8} {p:>9.3f} {o:>9.3f} {p / o:>6.2f}x")


if __name__ == "__main__":
    main()
