#!/usr/bin/env python3
"""Measure the statetensor HLO engine against XLA:CPU on the HLO modules of XLA's own tests.

Subcommands
-----------
extract   Pull every HLO module out of a fetched XLA git directory into ``modules/``:
          ``.hlo`` files (split at lit's ``// -----`` separators) and C++ raw-string
          literals (``R"(...)"``, ``R"hlo(...)hlo"``, any delimiter) that contain ``ENTRY``.
          Identical texts are written once.  ``modules/index.json`` maps each written
          file to its source path, its ordinal in that file and the line it starts on.

run       For each module (all, or a random sample with ``--limit``):
            1. XLA's parser must accept it (modules it rejects are negative tests or
               templates with ``$placeholders``: status ``xla_rejects``, not counted);
            2. ``statetensor inspect MODEL --json``: accept / ``refuse`` (exit 2, first
               line of the message) / ``crash`` (other exit code or a signal) / ``timeout``;
            3. accepted modules get random inputs for every entry parameter leaf and are
               run by ``statetensor run MODEL --input P=FILE.npy ... --out DIR`` and by
               XLA:CPU (jaxlib, PJRT); the outputs are compared leaf by leaf:
               ``match`` / ``mismatch`` / ``st_error`` (statetensor's run failed with
               exit 2 or 1) / ``st_crash`` / ``st_timeout`` / ``xla_error`` (XLA could
               not compile or run it; not counted against statetensor).  Also:
               ``near_miss`` (floats outside rtol/atol but within NEAR_MISS of the
               output's largest magnitude: summation order), ``both_timeout``
               (statetensor timed out and XLA:CPU hangs too: an infinite loop),
               ``infinite_loop`` (statetensor timed out on a module with a `while`
               whose condition is `constant(true)`; XLA may fold such a loop away),
               ``xla_unreliable`` (a mismatch in a module with bitcasts between layouts,
               which the StableHLO path cannot express), ``too_big`` (not run: inputs
               or outputs over --max-mib).
          XLA runs in a separate worker process (a CHECK failure in XLA aborts the process;
          a hang is killed at the timeout) that is restarted when it dies.  XLA:CPU gets
          the module through StableHLO (jaxlib compiles nothing else), so before compiling
          the worker drops ``input_output_alias`` (PJRT flattens tuples), turns
          ``fusion`` into ``call`` (XLA:CPU refuses fusions it did not make) and, when no
          bitcast involves a non-row-major layout, ``bitcast`` into ``reshape``; each
          module's ``xla_rewrites`` says which were applied.
          All children run under ``nice``.  Writes ``report.json`` and prints a summary.

summary   Print the summary of an existing ``report.json`` again.

keep      Keep a sample of a report's matching modules as fixtures with XLA:CPU's outputs
          (conformance/fixtures/xla_corpus/, run by the Rust tests): chosen to cover as
          many opcodes, element types and custom-call targets as possible, each rerun on
          fresh inputs and kept only if it still matches and its files stay small.

Typical use (an XLA git checkout or mirror, e.g. a clone of openxla/xla; needs
``pip install jax`` and ``cargo build --release -p statetensor-cli``)::

    python3 tools/xla_corpus.py extract --xla-git PATH/TO/xla/.git --rev main
    python3 tools/xla_corpus.py run --limit 600 --seed 1 --timeout 10
    python3 tools/xla_corpus.py summary
    python3 tools/xla_corpus.py keep --count 100

The modules and the report go to target/xla_corpus/; the code is in tools/corpus/.

Comparison rules: integers, pred and data movement exactly; floats with
``|st - xla| <= atol + rtol * |xla|`` (f64: 1e-12/1e-12, f32: 1e-5/1e-6, f16: 2e-3/1e-3,
bf16: 1.6e-2/1e-2, FP8: one step of their mantissa), NaN equal to NaN, infinities equal
by sign.  Complex values compare their real and imaginary parts.

Input values: floats standard normal; signed integers uniform in [-3, 3]; unsigned in
[0, 5]; pred random.  Integer parameters used as indices (gather, dynamic-slice) may be
out of range: both engines clamp per XLA's semantics, so such modules still compare; a
module whose inputs drive a loop bound may run long and hit the timeout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from corpus import DEFAULT_BIN, DEFAULT_KEEP, DEFAULT_MODULES, DEFAULT_REPORT
from corpus.extract import cmd_extract
from corpus.keep import cmd_keep
from corpus.report import cmd_summary
from corpus.run import cmd_run
from corpus.xla import xla_worker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{extract,run,summary,keep}")
    e = sub.add_parser("extract", help="extract HLO modules from an XLA git directory")
    e.add_argument("--xla-git", required=True, help="git directory of an XLA checkout or mirror")
    e.add_argument("--rev", default="main", help="revision to read (default: main)")
    e.add_argument("--out", default=str(DEFAULT_MODULES), help="where to write the modules")
    e.set_defaults(func=cmd_extract)

    r = sub.add_parser("run", help="run statetensor and XLA:CPU over the modules")
    r.add_argument("--modules", default=str(DEFAULT_MODULES), help="extracted modules (default: modules/)")
    r.add_argument("--limit", type=int, default=0, help="random sample of N modules (default: all)")
    r.add_argument("--seed", type=int, default=0, help="sample and input seed")
    r.add_argument("--timeout", type=float, default=10.0, help="seconds per statetensor command")
    r.add_argument("--bin", type=Path, default=DEFAULT_BIN, help="statetensor binary")
    r.add_argument("--only", help="regex on module file names")
    r.add_argument("--max-mib", type=float, default=256,
                   help="skip running modules whose inputs or outputs exceed this (default 256)")
    r.add_argument("--report", default=str(DEFAULT_REPORT), help="where to write the report (default: report.json)")
    r.add_argument("-v", "--verbose", action="store_true", help="one line per module")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("summary", help="print the summary of a report.json")
    s.add_argument("--report", default=str(DEFAULT_REPORT))
    s.set_defaults(func=cmd_summary)

    k = sub.add_parser("keep", help="keep a sample of matching modules as fixtures with XLA's outputs")
    k.add_argument("--report", default=str(DEFAULT_REPORT), help="a report of `run` (default: report.json)")
    k.add_argument("--modules", default=str(DEFAULT_MODULES), help="extracted modules (default: modules/)")
    k.add_argument("--out", default=str(DEFAULT_KEEP), help="fixture directory (replaced)")
    k.add_argument("--count", type=int, default=100, help="how many modules to keep (default 100)")
    k.add_argument("--max-kib", type=float, default=48, help="largest module text and files per fixture")
    k.add_argument("--seed", type=int, default=0, help="input seed and order of the filler modules")
    k.add_argument("--timeout", type=float, default=10.0, help="seconds per statetensor command")
    k.add_argument("--bin", type=Path, default=DEFAULT_BIN, help="statetensor binary")
    k.set_defaults(func=cmd_keep)

    w = sub.add_parser("_xla-worker")  # internal: the XLA worker process
    w.set_defaults(func=lambda a: xla_worker())

    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
