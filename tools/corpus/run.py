"""One module through statetensor's CLI and XLA:CPU: the report entry that says what
happened (see xla_corpus.py's docstring for the statuses)."""
from __future__ import annotations

import json
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from corpus import REPO
from corpus.compare import NEAR_MISS, compare, load_as
from corpus.report import print_summary
from corpus.shapes import leaf_bytes, leaves, make_input
from corpus.xla import XlaWorker


def run_st(cmd: list[str], timeout: float):
    """Run a statetensor command under nice: (kind, rc, stdout, stderr).

    kind: 'ok' (exit 0), 'refuse' (exit 2), 'error' (exit 1), 'crash' (other exit code,
    a signal, or a Rust panic message), 'timeout'.
    """
    try:
        p = subprocess.run(["nice", "-n", "10", *cmd], capture_output=True, text=True,
                           timeout=timeout, errors="replace", start_new_session=True)
    except subprocess.TimeoutExpired as e:
        return "timeout", None, "", (e.stderr or b"").decode("utf-8", "replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
    if "panicked at" in p.stderr:
        return "crash", p.returncode, p.stdout, p.stderr
    kind = {0: "ok", 2: "refuse", 1: "error"}.get(p.returncode, "crash")
    return kind, p.returncode, p.stdout, p.stderr


def first_line(stderr: str) -> str:
    lines = [l.strip() for l in stderr.strip().splitlines() if l.strip()]
    return lines[0] if lines else ""


def crash_message(rc, stderr: str) -> str:
    if rc is not None and rc < 0:
        try:
            sig = signal.Signals(-rc).name
        except ValueError:
            sig = str(-rc)
        head = f"signal {sig}"
    else:
        head = f"exit {rc}"
    panic = next((l for l in stderr.splitlines() if "panicked at" in l), None)
    if panic:
        idx = stderr.splitlines().index(panic)
        rest = stderr.splitlines()[idx + 1: idx + 2]
        return f"{head}: {panic.strip()} {' '.join(rest).strip()}"[:400]
    return f"{head}: {first_line(stderr)}"[:400]


def check_module(path: Path, args, worker: XlaWorker, rng, keep=None) -> dict:
    """Everything for one module; returns its report entry. With `keep` (a `Kept`), a
    module that matches is written as a fixture there: its inputs and XLA's outputs."""
    import numpy as np
    rec = {"module": path.name}
    t0 = time.monotonic()

    # (a) XLA's parser
    r = worker.request({"op": "parse", "hlo": str(path)}, args.timeout)
    if not r.get("ok"):
        if r.get("timeout") or r.get("died"):
            # XLA's parser crashing or hanging (a segfault on a negative parser test)
            # is a rejection too.
            rec.update(status="xla_rejects", message="XLA's parser crashed or hung: " + r["error"])
        else:
            rec.update(status="xla_rejects", message=r["error"].splitlines()[0][:300])
        return rec
    params, result = r["params"], r["result"]
    if r.get("layout_bitcasts"):
        rec["layout_bitcasts"] = r["layout_bitcasts"]
    if r.get("infinite_loops"):
        rec["infinite_loops"] = r["infinite_loops"]
    param_leaves = [l for p in params for l in leaves(p)]

    # (b) statetensor inspect
    kind, rc, out, err = run_st([str(args.bin), "inspect", str(path), "--json"], args.timeout)
    if kind == "timeout":
        rec.update(status="timeout", message=f"inspect: no answer in {args.timeout:g} s")
        return rec
    if kind == "crash":
        rec.update(status="crash", message="inspect: " + crash_message(rc, err))
        return rec
    if kind in ("refuse", "error"):
        rec.update(status="refuse" if kind == "refuse" else "inspect_error",
                   message=first_line(err)[:300], exit=rc)
        return rec
    try:
        info = json.loads(out)
    except json.JSONDecodeError:
        rec.update(status="inspect_error", message="inspect --json printed no JSON")
        return rec

    st_params = info.get("parameters", [])
    data_leaves = [l for l in param_leaves if l[1] != "token"]
    if len(st_params) != len(data_leaves):
        rec.update(status="signature_differs",
                   message=f"statetensor lists {len(st_params)} parameters, XLA {len(data_leaves)} leaves")
        return rec

    # (c) inputs, both runs, comparison (skipped when inputs or outputs are too big here)
    size = max(leaf_bytes(param_leaves), leaf_bytes(list(leaves(result))))
    if size > args.max_mib * 2**20:
        rec.update(status="too_big", message=f"inputs or outputs take {size / 2**20:.0f} MiB")
        return rec
    work = Path(tempfile.mkdtemp(prefix="xc_", dir=args.scratch))
    try:
        inputs, st_flags, dtypes = [], [], []
        j = 0
        for k, leaf in enumerate(param_leaves):
            if leaf[1] == "token":
                inputs.append(None)
                dtypes.append("token")
                continue
            arr = make_input(rng, leaf)
            f = work / f"in_{k}.npy"
            np.save(f, arr)
            inputs.append(str(f))
            dtypes.append(leaf[1])
            role = st_params[j].get("role", "input")
            flag = "--state" if role == "state" else "--weight" if role == "weight" else "--input"
            st_flags += [flag, f"{j}={f}"]
            j += 1
        rec["params"] = [l[1] + "[" + ",".join(l[2]) + "]" for l in param_leaves]
        if any(l[1].startswith(("s", "u")) for l in data_leaves):
            rec["int_params"] = True
        xla_out = work / "xla"
        xla_out.mkdir()
        st_out = work / "st"
        t1 = time.monotonic()
        kind, rc, out, err = run_st([str(args.bin), "run", str(path), *st_flags, "--out", str(st_out), "--json"],
                                    args.timeout)
        rec["st_seconds"] = round(time.monotonic() - t1, 2)
        xla_req = {"op": "run", "hlo": str(path), "inputs": inputs, "dtypes": dtypes, "out": str(xla_out),
                   "layout_bitcasts": rec.get("layout_bitcasts", 0)}
        if kind == "timeout" and rec.get("infinite_loops"):
            rec.update(status="infinite_loop",
                       message=f"run: no answer in {args.timeout:g} s; while condition(s) "
                               f"{', '.join(rec['infinite_loops'])} are constant(true)")
            return rec
        if kind == "timeout":
            # An infinite loop (a `while` whose condition is `true`, or reads a random
            # pred) hangs XLA as well: then it is no finding about statetensor.
            t1 = time.monotonic()
            r = worker.request(xla_req, args.timeout * 2)
            rec["xla_seconds"] = round(time.monotonic() - t1, 2)
            if r.get("timeout"):
                rec.update(status="both_timeout",
                           message=f"statetensor > {args.timeout:g} s and XLA:CPU > {2 * args.timeout:g} s")
            else:
                rec.update(status="st_timeout",
                           message=f"run: no answer in {args.timeout:g} s; XLA:CPU "
                                   + (f"finished in {rec['xla_seconds']:.1f} s" if r.get("ok")
                                      else "failed: " + r["error"].splitlines()[0][:150]))
            return rec
        if kind == "crash":
            rec.update(status="st_crash", message="run: " + crash_message(rc, err))
            return rec
        if kind != "ok":
            rec.update(status="st_error", message=first_line(err)[:300], exit=rc)
            return rec
        t1 = time.monotonic()
        r = worker.request(xla_req, args.timeout * 3)
        rec["xla_seconds"] = round(time.monotonic() - t1, 2)
        if r.get("rewrites"):
            rec["xla_rewrites"] = r["rewrites"]
        if not r.get("ok"):
            rec.update(status="xla_error", message=r["error"].splitlines()[0][:300])
            return rec
        out_dtypes = [l[1] for l in leaves(result)]
        kinds = r["outputs"]
        st_k = 0
        mismatches = []
        for k, dt in enumerate(out_dtypes):
            if dt == "token" or (k < len(kinds) and kinds[k] == "token"):
                continue
            st_file = st_out / f"output_{st_k}.npy"
            if not st_file.exists():
                mismatches.append({"output": st_k, "error": "statetensor wrote no output file"})
                st_k += 1
                continue
            ok, msg, rel = compare(dt, load_as(st_file, dt), load_as(xla_out / f"xla_{k}.npy", dt))
            if not ok:
                mismatches.append({"output": st_k, "dtype": dt, "error": msg, "rel_to_scale": rel})
            st_k += 1
        extra = sorted(st_out.glob("output_*.npy"))
        if len(extra) != st_k:
            mismatches.append({"output": None, "error": f"statetensor wrote {len(extra)} outputs, XLA has {st_k}"})
        if mismatches and all(m.get("rel_to_scale") is not None
                              and m["rel_to_scale"] <= NEAR_MISS.get(m["dtype"], 0.0) for m in mismatches):
            rec.update(status="near_miss",
                       message=f"output {mismatches[0]['output']}: {mismatches[0]['error']}",
                       mismatches=mismatches)
        elif mismatches and rec.get("layout_bitcasts"):
            rec.update(status="xla_unreliable",
                       message=f"{rec['layout_bitcasts']} bitcast(s) between layouts, which the StableHLO "
                               f"path runs as reshapes; output {mismatches[0]['output']}: {mismatches[0]['error']}",
                       mismatches=mismatches)
        elif mismatches:
            rec.update(status="mismatch", message=f"output {mismatches[0]['output']}: {mismatches[0]['error']}",
                       mismatches=mismatches)
        else:
            rec.update(status="match", message=f"{st_k} outputs")
            if keep is not None:
                keep.write(path, inputs, dtypes, out_dtypes, kinds, xla_out)
        return rec
    finally:
        rec["seconds"] = round(time.monotonic() - t0, 2)
        shutil.rmtree(work, ignore_errors=True)


def cmd_run(args) -> None:
    import numpy as np
    modules_dir = Path(args.modules)
    index = json.loads((modules_dir / "index.json").read_text())
    names = sorted(index["modules"])
    if args.only:
        names = [n for n in names if re.search(args.only, n)]
    if args.limit and args.limit < len(names):
        names = sorted(random.Random(args.seed).sample(names, args.limit))
    args.scratch = tempfile.mkdtemp(prefix="xla_corpus_")
    worker = XlaWorker(args.timeout)
    entries = []
    started = time.monotonic()
    report_path = Path(args.report)
    meta = {"xla_commit": index.get("xla_commit"), "binary": str(args.bin),
            "engine_commit": subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                                            capture_output=True, text=True).stdout.strip() or None,
            "seed": args.seed, "limit": args.limit, "timeout": args.timeout,
            "corpus_size": len(index["modules"])}
    try:
        for i, name in enumerate(names):
            rng = np.random.default_rng([args.seed, i])
            rec = check_module(modules_dir / name, args, worker, rng)
            src = index["modules"][name]
            rec["source"] = f"{src['source']}:{src['line']}"
            entries.append(rec)
            if args.verbose:
                print(f"[{i + 1}/{len(names)}] {rec['status']:<12} {name} {rec.get('message', '')[:100]}",
                      flush=True)
            if (i + 1) % 25 == 0 or i + 1 == len(names):
                meta["seconds"] = round(time.monotonic() - started, 1)
                report_path.write_text(json.dumps({"meta": meta, "modules": entries}, indent=1))
    finally:
        worker.stop()
        shutil.rmtree(args.scratch, ignore_errors=True)
        meta["seconds"] = round(time.monotonic() - started, 1)
        report_path.write_text(json.dumps({"meta": meta, "modules": entries}, indent=1))
    print_summary(meta, entries)
