"""A sample of the corpus kept as fixtures: modules that matched XLA:CPU in a report, chosen
to cover as many opcodes, element types and custom-call targets as a few can, rerun on
fresh random inputs and written with XLA:CPU's outputs under
conformance/fixtures/xla_corpus/<module>/ (model.hlo as XLA's test wrote it, arg{p}.npy,
out0_{k}.npy, meta.json with the source, the XLA commit and each output's tolerance).
The Rust test crates/hlo/tests/engine/xla_corpus.rs runs every one of them."""
from __future__ import annotations

import json
import random
import re
import shutil
import tempfile
from pathlib import Path

from corpus.compare import FP8_TOL, TOLERANCES, load_as
from corpus.run import check_module
from corpus.xla import XlaWorker
from fixture_io import FixtureFiles

OPCODE = re.compile(r"=\s*(?:\([^=]*?\)|\S+)\s+([a-z][a-z0-9-]*)\(")
ELEMENT_TYPE = re.compile(r"\b(pred|[su](?:4|8|16|32|64)|bf16|f16|f32|f64|f8e\w+)\[")
CUSTOM_CALL = re.compile(r'custom_call_target="([^"]+)"')


def features(text: str) -> set[str]:
    """What a module exercises: its opcodes, element types and custom-call targets."""
    return ({"op:" + m for m in OPCODE.findall(text)} | {"type:" + m for m in ELEMENT_TYPE.findall(text)}
            | {"custom-call:" + m for m in CUSTOM_CALL.findall(text)})


def tolerance(dtype: str) -> tuple[float, float]:
    """(rtol, atol) for an output of element type `dtype`: what the corpus run used."""
    if not dtype.startswith(("f", "bf")):
        return 0.0, 0.0
    return TOLERANCES.get(dtype, FP8_TOL)


def choose(candidates: dict[str, str], count: int, seed: int) -> list[str]:
    """Up to `count` module names: greedily the one adding the most features not yet
    covered (the shorter text on ties), then, once nothing adds any, modules from source
    files not yet sampled."""
    covered: set[str] = set()
    chosen: list[str] = []
    feats = {n: features(t) for n, t in candidates.items()}
    left = sorted(candidates)
    while left and len(chosen) < count:
        best = max(left, key=lambda n: (len(feats[n] - covered), -len(candidates[n]), n))
        if not feats[best] - covered:
            break
        chosen.append(best)
        covered |= feats[best]
        left.remove(best)
    random.Random(seed).shuffle(left)
    sources = {n.rsplit("__", 1)[0] for n in chosen}
    for n in left:
        if len(chosen) >= count:
            break
        if n.rsplit("__", 1)[0] not in sources:
            chosen.append(n)
            sources.add(n.rsplit("__", 1)[0])
    return chosen


class Kept:
    """Writes one matching module as a fixture directory (called by check_module)."""

    def __init__(self, dest: Path, source: str, xla_commit: str | None):
        self.dest, self.source, self.xla_commit = dest, source, xla_commit
        self.written = False

    def write(self, module: Path, inputs, in_dtypes, out_dtypes, kinds, xla_out: Path) -> None:
        if self.dest.exists():
            shutil.rmtree(self.dest)
        self.dest.mkdir(parents=True)
        shutil.copyfile(module, self.dest / "model.hlo")
        files = FixtureFiles(self.dest)
        params = [(f, dt) for f, dt in zip(inputs, in_dtypes) if dt != "token"]
        for p, (f, dt) in enumerate(params):
            files.save(f"arg{p}.npy", load_as(Path(f), dt))
        outputs = {}
        for k, dt in enumerate(out_dtypes):
            if dt == "token" or kinds[k] == "token":
                continue
            file = f"out0_{len(outputs)}.npy"
            files.save(file, load_as(xla_out / f"xla_{k}.npy", dt))
            rtol, atol = tolerance(dt)
            outputs[file] = {"dtype": dt, "rtol": rtol, "atol": atol}
        files.write_meta({
            "steps": 1,
            "source": self.source,
            "xla_commit": self.xla_commit,
            "outputs": outputs,
            "tolerance": "XLA:CPU's outputs on these inputs (jaxlib); integers, pred and data "
                         "movement exact, floats within the corpus run's per-type tolerances",
        })
        self.written = True


def dir_bytes(d: Path) -> int:
    return sum(f.stat().st_size for f in d.iterdir())


def cmd_keep(args) -> None:
    import numpy as np
    report = json.loads(Path(args.report).read_text())
    modules_dir = Path(args.modules)
    index = json.loads((modules_dir / "index.json").read_text())
    candidates = {}
    for e in report["modules"]:
        if e["status"] != "match":
            continue
        text = (modules_dir / e["module"]).read_text()
        if len(text) <= args.max_kib * 1024:
            candidates[e["module"]] = text
    chosen = choose(candidates, args.count * 2, args.seed)  # spares for modules that do not fit
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    args.scratch = tempfile.mkdtemp(prefix="xla_keep_")
    args.max_mib = args.max_kib / 1024
    worker = XlaWorker(args.timeout)
    kept, skipped = [], []
    try:
        for i, name in enumerate(chosen):
            if len(kept) >= args.count:
                break
            src = index["modules"][name]
            source = f"{src['source']}:{src['line']}"
            dest = out / name.removeprefix("xla__").removesuffix(".hlo")
            keep = Kept(dest, source, index.get("xla_commit"))
            rec = check_module(modules_dir / name, args, worker, np.random.default_rng([args.seed, i]), keep)
            if not keep.written:
                skipped.append(f"{name}: {rec['status']} {rec.get('message', '')[:100]}")
            elif dir_bytes(dest) > args.max_kib * 1024:
                skipped.append(f"{name}: {dir_bytes(dest)} bytes of files, over {args.max_kib:g} KiB")
                shutil.rmtree(dest)
            else:
                kept.append((dest.name, source, sorted(features(candidates[name]))))
    finally:
        worker.stop()
        shutil.rmtree(args.scratch, ignore_errors=True)
    write_index(out, kept, report["meta"], args)
    print(f"kept {len(kept)} of {len(candidates)} matching modules in {out}")
    for s in skipped:
        print("  skipped", s)


def write_index(out: Path, kept, meta: dict, args) -> None:
    covered = sorted({f for _, _, fs in kept for f in fs})
    lines = [
        "# A sample of XLA's own test modules, with XLA:CPU's outputs",
        "",
        "Written by `python3 tools/xla_corpus.py keep` from a corpus report ("
        + (f"engine commit {meta['engine_commit'][:12]}, " if meta.get("engine_commit") else "")
        + f"XLA commit {(meta.get('xla_commit') or '?')[:12]}): "
        f"{len(kept)} modules that matched XLA:CPU, chosen to cover as many opcodes, element "
        "types and custom-call targets as they can, rerun on fresh random inputs. Each directory "
        "holds the module as XLA's test wrote it (`model.hlo`), its inputs (`arg{p}.npy`), "
        "XLA:CPU's outputs (`out0_{k}.npy`) and `meta.json` (source, per-output tolerance). "
        "`crates/hlo/tests/engine/xla_corpus.rs` runs them all.",
        "",
        f"Reproduce: `python3 tools/xla_corpus.py keep --report REPORT --count {args.count} "
        f"--max-kib {args.max_kib:g} --seed {args.seed}`.",
        "",
        "| fixture | source |",
        "|---|---|",
    ]
    lines += [f"| {name} | `{source}` |" for name, source, _ in sorted(kept)]
    lines += ["", "Opcodes, element types and custom-call targets in the kept modules' text (a few "
              "only in code the entry never reaches, which statetensor, like XLA, does not run): "
              + ", ".join(f"`{f}`" for f in covered), ""]
    (out / "README.md").write_text("\n".join(lines))
