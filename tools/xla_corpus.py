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

Typical use (an XLA git checkout or mirror, e.g. a clone of openxla/xla; needs
``pip install jax`` and ``cargo build --release -p statetensor-cli``)::

    python3 tools/xla_corpus.py extract --xla-git PATH/TO/xla/.git --rev main
    python3 tools/xla_corpus.py run --limit 600 --seed 1 --timeout 10
    python3 tools/xla_corpus.py summary

The modules and the report go to target/xla_corpus/.

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
import collections
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# the extracted corpus and reports live under target/ (not committed)
HERE = REPO / "target" / "xla_corpus"
DEFAULT_MODULES = HERE / "modules"
DEFAULT_REPORT = HERE / "report.json"
DEFAULT_BIN = Path(os.environ.get("STATETENSOR_BIN", REPO / "target/release/statetensor"))

# --------------------------------------------------------------------------------------
# extract
# --------------------------------------------------------------------------------------

#: C++ raw string literal: R"delim( ... )delim"
RAW_STRING = re.compile(r'R"([A-Za-z0-9_]{0,16})\((.*?)\)\1"', re.S)
#: Raw-string delimiters that never hold HLO text.
NON_HLO_DELIMS = {"pb", "mlir", "json", "html", "proto", "cc", "py"}
#: lit's split-input-file separator in .hlo tests.
LIT_SPLIT = re.compile(r"^//\s*-{5,}.*$", re.M)
SOURCE_EXTS = (".hlo", ".cc", ".h")


def sanitize(path: str) -> str:
    """A source path as one file-name component: 'xla/a/b_test.cc' -> 'xla__a__b_test.cc'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", path.replace("/", "__"))


def looks_like_hlo(text: str) -> bool:
    """A module or a computation list: has an ENTRY computation (or an HloModule header)."""
    return bool(re.search(r"(^|\s)ENTRY\s", text)) or text.lstrip().startswith("HloModule")


def modules_in(path: str, data: str):
    """Yield (line, text) for every HLO module in a source file's text."""
    if path.endswith(".hlo"):
        pos = 0
        for part in LIT_SPLIT.split(data):
            line = data.count("\n", 0, data.find(part, pos)) + 1 if part else 1
            pos += len(part)
            if looks_like_hlo(part):
                yield line, part.strip() + "\n"
        return
    for m in RAW_STRING.finditer(data):
        if m.group(1).lower() in NON_HLO_DELIMS:
            continue
        body = m.group(2)
        if looks_like_hlo(body):
            yield data.count("\n", 0, m.start()) + 1, body.strip() + "\n"


def git_blobs(git_dir: str, rev: str, paths: list[str]):
    """Yield (path, text) for each path at rev, read through one `git cat-file --batch`."""
    proc = subprocess.Popen(["git", "-C", git_dir, "cat-file", "--batch"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    for p in paths:
        proc.stdin.write(f"{rev}:{p}\n".encode())
        proc.stdin.flush()
        header = proc.stdout.readline().split()
        if len(header) < 3 or header[1] != b"blob":
            continue
        size = int(header[2])
        data = proc.stdout.read(size)
        proc.stdout.read(1)  # trailing newline
        yield p, data.decode("utf-8", "replace")
    proc.stdin.close()
    proc.wait()


def cmd_extract(args) -> None:
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    listing = subprocess.run(["git", "-C", args.xla_git, "ls-tree", "-r", "--name-only", args.rev],
                             check=True, capture_output=True, text=True).stdout.split("\n")
    paths = [p for p in listing if p.startswith("xla/") and p.endswith(SOURCE_EXTS)]
    commit = subprocess.run(["git", "-C", args.xla_git, "rev-parse", args.rev],
                            check=True, capture_output=True, text=True).stdout.strip()
    seen: dict[str, str] = {}
    index = {}
    dupes = files_with = 0
    for path, data in git_blobs(args.xla_git, args.rev, paths):
        if path.endswith((".cc", ".h")) and "ENTRY" not in data:
            continue
        n = 0
        for line, text in modules_in(path, data):
            if text in seen:
                dupes += 1
                continue
            name = f"{sanitize(path)}__{n}.hlo"
            n += 1
            seen[text] = name
            (out / name).write_text(text)
            index[name] = {"source": path, "ordinal": n - 1, "line": line}
        files_with += n > 0
    (out / "index.json").write_text(json.dumps({"xla_commit": commit, "modules": index}, indent=1))
    print(f"{len(index)} modules from {files_with} files ({dupes} duplicates skipped) "
          f"of {len(paths)} scanned at {commit[:12]} -> {out}")


# --------------------------------------------------------------------------------------
# shapes (XLA's entry_computation_layout, as printed by XLA)
# --------------------------------------------------------------------------------------

def parse_shape(s: str, i: int = 0):
    """Parse one XLA shape at s[i:]; returns (shape, next index).

    A shape is ('tuple', [shapes]) or ('array', dtype, [dims]); layouts are skipped.
    """
    while s[i] == " ":
        i += 1
    if s[i] == "(":
        i += 1
        elems = []
        while True:
            while s[i] == " ":
                i += 1
            if s[i] == ")":
                return ("tuple", elems), i + 1
            shape, i = parse_shape(s, i)
            elems.append(shape)
            while s[i] == " ":
                i += 1
            if s[i] == ",":
                i += 1
    m = re.compile(r"([a-z0-9]+)\[([^\]]*)\]").match(s, i)
    if not m:
        raise ValueError(f"cannot parse shape at {s[i:i + 40]!r}")
    dtype = m.group(1)
    dims = [d.strip() for d in m.group(2).split(",") if d.strip()]
    i = m.end()
    if i < len(s) and s[i] == "{":  # layout, may nest braces
        depth = 0
        while True:
            depth += {"{": 1, "}": -1}.get(s[i], 0)
            i += 1
            if depth == 0:
                break
    return ("array", dtype, dims), i


def leaves(shape):
    """Depth-first array leaves of a shape (tokens included, as ('array','token',[]))."""
    if shape[0] == "tuple":
        for e in shape[1]:
            yield from leaves(e)
    else:
        yield shape


def entry_signature(printed: str):
    """(parameter shapes, result shape) from XLA's printed module header."""
    m = re.search(r"entry_computation_layout=\{", printed)
    if not m:
        raise ValueError("no entry_computation_layout in printed module")
    params, i = parse_shape(printed, m.end())
    assert printed[i:i + 2] == "->", printed[i:i + 20]
    result, _ = parse_shape(printed, i + 2)
    return params[1], result


# --------------------------------------------------------------------------------------
# dtypes, inputs, comparison
# --------------------------------------------------------------------------------------

def np_dtype(xla: str):
    import numpy as np
    import ml_dtypes
    table = {
        "pred": np.bool_, "s8": np.int8, "s16": np.int16, "s32": np.int32, "s64": np.int64,
        "u8": np.uint8, "u16": np.uint16, "u32": np.uint32, "u64": np.uint64,
        "f16": np.float16, "f32": np.float32, "f64": np.float64,
        "bf16": ml_dtypes.bfloat16, "c64": np.complex64, "c128": np.complex128,
        "s4": ml_dtypes.int4, "u4": ml_dtypes.uint4, "s2": ml_dtypes.int2, "u2": ml_dtypes.uint2,
        "f8e4m3fn": ml_dtypes.float8_e4m3fn, "f8e5m2": ml_dtypes.float8_e5m2,
        "f8e4m3": ml_dtypes.float8_e4m3, "f8e3m4": ml_dtypes.float8_e3m4,
        "f8e4m3fnuz": ml_dtypes.float8_e4m3fnuz, "f8e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
        "f8e4m3b11fnuz": ml_dtypes.float8_e4m3b11fnuz, "f8e8m0fnu": ml_dtypes.float8_e8m0fnu,
        "f4e2m1fn": ml_dtypes.float4_e2m1fn,
    }
    if xla not in table:
        raise ValueError(f"no numpy dtype for {xla}")
    return np.dtype(table[xla])


TOLERANCES = {  # dtype -> (rtol, atol)
    "f64": (1e-12, 1e-12), "c128": (1e-12, 1e-12),
    "f32": (1e-5, 1e-6), "c64": (1e-5, 1e-6),
    "f16": (2e-3, 1e-3), "bf16": (1.6e-2, 1e-2),
}
FP8_TOL = (0.13, 0.02)
#: A float mismatch whose worst error is at most this fraction of the output's largest
#: magnitude is reported as `near_miss` (summation order in a long reduction or dot),
#: not `mismatch`.
NEAR_MISS = {"f64": 1e-10, "f32": 1e-4, "c64": 1e-4, "c128": 1e-10, "f16": 1e-2, "bf16": 2e-2}


def dims_of(shape):
    """Static dims of an array leaf; bounded dynamic dims '<=N' use their bound."""
    return [1 if d == "?" else int(d.lstrip("<=")) for d in shape[2]]


def leaf_bytes(leaf_list) -> int:
    """Total bytes of array leaves (tokens and unknown dtypes count 0 and 8 per element)."""
    total = 0
    for leaf in leaf_list:
        if leaf[1] == "token":
            continue
        n = 1
        for d in dims_of(leaf):
            n *= d
        try:
            total += n * np_dtype(leaf[1]).itemsize
        except ValueError:
            total += n * 8
    return total


def make_input(rng, shape):
    import numpy as np
    dtype = shape[1]
    dims = dims_of(shape)
    if dtype == "pred":
        return rng.random(dims) < 0.5
    dt = np_dtype(dtype)
    if dtype.startswith("s"):
        return rng.integers(-3, 4, size=dims).astype(dt)
    if dtype.startswith("u"):
        return rng.integers(0, 6, size=dims).astype(dt)
    if dtype.startswith("c"):
        return (rng.standard_normal(dims) + 1j * rng.standard_normal(dims)).astype(dt)
    return rng.standard_normal(dims).astype(dt)


def compare(dtype: str, st, xla):
    """(ok, description of the worst element, max error / the output's largest magnitude).

    The last value is None for exact types and inf where NaN/infinity patterns differ;
    it tells rounding-order noise in a large sum (tiny against the output's scale) from
    a wrong result.
    """
    import numpy as np
    if st.shape != xla.shape:
        return False, f"shape {list(st.shape)} vs XLA {list(xla.shape)}", None
    if st.size == 0:
        return True, "", None
    if dtype.startswith("c"):
        part = {"c64": "f32", "c128": "f64"}[dtype]
        r1 = compare(part, st.real, xla.real)
        r2 = compare(part, st.imag, xla.imag)
        return (r1 if not r1[0] else r2)
    is_float = dtype.startswith(("f", "bf"))
    if not is_float:
        bad = st != xla
        if not bad.any():
            return True, "", None
        k = int(np.argmax(bad.reshape(-1)))
        return False, (f"{int(bad.sum())}/{bad.size} elements differ, first at flat {k}: "
                       f"{st.reshape(-1)[k]} vs XLA {xla.reshape(-1)[k]}"), None
    rtol, atol = TOLERANCES.get(dtype, FP8_TOL)
    a = st.astype(np.float64)
    b = xla.astype(np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    same = (a == b) | both_nan
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a - b)
        close = err <= atol + rtol * np.abs(b)
    ok = same | (close & np.isfinite(a) & np.isfinite(b))
    if ok.all():
        return True, "", None
    bad = ~ok
    err = np.where(bad, np.where(np.isnan(err), np.inf, err), 0.0)
    k = int(np.argmax(err.reshape(-1)))
    finite = np.abs(b[np.isfinite(b)])
    scale = float(finite.max()) if finite.size else 0.0
    rel = float(err.reshape(-1)[k]) / scale if scale > 0 else float("inf")
    return False, (f"{int(bad.sum())}/{bad.size} elements off, max |err| {err.reshape(-1)[k]:.3g} "
                   f"(= {rel:.2g} x max|XLA| {scale:.3g}) at flat {k}: "
                   f"{float(a.reshape(-1)[k])!r} vs XLA {float(b.reshape(-1)[k])!r}"), rel


def load_as(path: Path, dtype: str):
    """Load an .npy and reinterpret it as XLA dtype (bf16 is saved as V2, FP8 as V1/f1)."""
    import numpy as np
    arr = np.load(path, allow_pickle=False)
    want = np_dtype(dtype)
    if arr.dtype != want and arr.dtype.itemsize == want.itemsize:
        arr = arr.view(want)
    return arr


# --------------------------------------------------------------------------------------
# XLA worker (separate process: XLA CHECK failures abort, compiles can hang)
# --------------------------------------------------------------------------------------

ALIAS_ATTR = re.compile(r",?\s*input_output_alias=\{")


def strip_alias(text: str) -> str:
    """Remove `input_output_alias={...}` (balanced braces) from the HloModule header line."""
    if not text.lstrip().startswith("HloModule"):
        return text
    m = ALIAS_ATTR.search(text)
    if not m or "\n" in text[: m.start()].lstrip():
        return text
    i, depth = m.end() - 1, 0
    while i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
        if depth == 0:
            break
    return text[: m.start()] + text[i:]


INSTR_LINE = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(\S+)\s+([\w\-]+)\((.*)$")


def layout_bitcasts(printed: str) -> int:
    """How many bitcasts in XLA's printed module involve a non-row-major layout.

    HLO's bitcast reinterprets bytes in layout order, so between layouts it is a
    transpose; StableHLO has no layouts and hlo_to_stablehlo turns it into a reshape.
    XLA:CPU's answer through this path is then not XLA's semantics of the HLO.
    (XLA prints operands without their shapes, so an operand's shape is looked up
    from its defining line in the same computation.)
    """
    def non_default(shape: str) -> bool:
        m = re.match(r"[a-z0-9]+\[([^\]]*)\](?:\{([0-9,]*))?", shape)
        if not m or not m.group(2):
            return False
        rank = len([d for d in m.group(1).split(",") if d.strip()])
        return [int(x) for x in m.group(2).split(",") if x] != list(range(rank - 1, -1, -1))

    count, shapes = 0, {}
    for line in printed.splitlines():
        if re.match(r"^(?:ENTRY )?%?[\w.\-]+ \(", line):
            shapes = {}
            continue
        m = INSTR_LINE.match(line)
        if not m:
            continue
        name, shape, opcode, rest = m.groups()
        shapes[name] = shape
        if opcode == "bitcast":
            operand = re.match(r"\s*(?:\S+\s+)?%?([\w.\-]+)\)", rest)
            op_shape = shapes.get(operand.group(1), "") if operand else ""
            if non_default(shape) or non_default(op_shape):
                count += 1
    return count


def constant_true_conditions(printed: str) -> list[str]:
    """Names of while conditions in XLA's printed module whose ROOT is `constant(true)`."""
    roots, current = {}, None
    for line in printed.splitlines():
        m = re.match(r"^(?:ENTRY )?%?([\w.\-]+) \(", line)
        if m:
            current = m.group(1)
        elif current and line.strip().startswith("ROOT "):
            roots[current] = line
    conds = set(re.findall(r"condition=%?([\w.\-]+)", printed))
    return sorted(c for c in conds if re.search(r"pred\[\][^=]*constant\(true\)", roots.get(c, "")))


FUSION_OP = re.compile(r"(\s)fusion\(")
FUSION_KIND = re.compile(r",\s*kind=k\w+")


def unfuse_for_xla(text: str, bitcasts_as_reshapes: bool):
    """Rewrite XLA's post-optimisation forms that XLA:CPU will not compile from text.

    `fusion(...), kind=kX, calls=C` becomes `call(...), to_apply=C` (a fusion computes
    its computation, as a call does; XLA:CPU refuses fusions without backend configs),
    and when no bitcast involves a non-row-major layout, `bitcast(` becomes `reshape(`
    (XLA's layout assignment refuses bitcasts before it runs).  Returns the text and
    the list of rewrites made; the caller falls back to the text as written when the
    rewritten one does not compile.
    """
    rewrites = []
    if FUSION_OP.search(text):
        text = FUSION_OP.sub(r"\1call(", text)
        text = FUSION_KIND.sub("", text)
        text = re.sub(r"\bcalls=", "to_apply=", text)
        rewrites.append("fusion->call")
    if bitcasts_as_reshapes and re.search(r"\sbitcast\(", text):
        text = re.sub(r"(\s)bitcast\(", r"\1reshape(", text)
        rewrites.append("bitcast->reshape")
    return text, rewrites


def xla_worker() -> None:
    """Serve requests, one JSON object per line on stdin, answers on stdout.

    {"op": "parse", "hlo": PATH} -> {"ok": true, "params": [...], "result": ...}
    {"op": "run", "hlo": PATH, "inputs": [NPY or null for a token], "out": DIR}
        -> {"ok": true, "outputs": [dtype or "token", ...]}   (files DIR/xla_K.npy)
    Errors: {"ok": false, "error": "..."}.
    """
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import numpy as np
    import jax
    jax.config.update("jax_enable_x64", True)
    from jax._src.lib import _jax, hlo
    devices = jax.devices("cpu")[:1]
    out = sys.stdout
    sys.stdout = sys.stderr  # keep library chatter off the protocol stream
    for line in sys.stdin:
        req = json.loads(line)
        try:
            text = strip_alias(Path(req["hlo"]).read_text())
            module = hlo.hlo_module_from_text(text)
            if req["op"] == "parse":
                printed = module.to_string()
                params, result = entry_signature(printed)
                resp = {"ok": True, "params": params, "result": result,
                        "layout_bitcasts": layout_bitcasts(printed),
                        "infinite_loops": constant_true_conditions(printed)}
            else:
                def compile_text(t):
                    m = hlo.hlo_module_from_text(t)
                    sh = _jax.mlir.hlo_to_stablehlo(m.as_serialized_hlo_module_proto())
                    return devices[0].client.compile_and_load(sh, devices)
                rewritten, rewrites = unfuse_for_xla(text, req.get("layout_bitcasts", 0) == 0)
                exe = None
                if rewrites:
                    try:
                        exe = compile_text(rewritten)
                    except Exception:  # noqa: BLE001 - the module as written gets its chance
                        rewrites = []
                if exe is None:
                    exe = compile_text(text)
                args = [np.zeros((0,), bool) if p is None else np.load(p, allow_pickle=False)
                        for p in req["inputs"]]
                dts = req["dtypes"]
                args = [a.view(np_dtype(d)) if d not in (None, "token") and a.dtype != np_dtype(d)
                        and a.dtype.itemsize == np_dtype(d).itemsize else a
                        for a, d in zip(args, dts)]
                outs = exe.execute([jax.device_put(a, devices[0]) for a in args])
                kinds = []
                for k, o in enumerate(outs):
                    try:
                        v = np.asarray(o)
                    except Exception:
                        kinds.append("token")
                        continue
                    np.save(Path(req["out"]) / f"xla_{k}.npy", v)
                    kinds.append(str(v.dtype))
                resp = {"ok": True, "outputs": kinds, "rewrites": rewrites}
        except Exception as e:  # noqa: BLE001 - reported to the caller
            resp = {"ok": False, "error": f"{type(e).__name__}: {e}"[:2000]}
        out.write(json.dumps(resp) + "\n")
        out.flush()


class XlaWorker:
    """Parent-side handle of the worker process, with per-request timeouts."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.proc = None

    def _start(self):
        self.proc = subprocess.Popen(
            ["nice", "-n", "10", sys.executable, __file__, "_xla-worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def request(self, req: dict, timeout: float | None = None) -> dict:
        """Send one request; on timeout or death the worker is restarted."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
            timeout = (timeout or self.timeout) + 30  # first request pays jax's import
        timeout = timeout or self.timeout
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.stop()
            return {"ok": False, "timeout": True, "error": f"XLA timed out after {timeout:.0f} s"}
        line = self.proc.stdout.readline()
        if not line:
            rc = self.proc.wait()
            self.proc = None
            return {"ok": False, "died": True, "error": f"XLA worker died (exit {rc})"}
        return json.loads(line)


# --------------------------------------------------------------------------------------
# statetensor
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------

def check_module(path: Path, args, worker: XlaWorker, rng) -> dict:
    """Everything for one module; returns its report entry."""
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


# --------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------

def refusal_key(msg: str) -> str:
    """Group refusal messages: drop file:line:col, instruction names, numbers; first ~60 chars."""
    m = re.sub(r"^statetensor:\s*", "", msg)
    m = re.sub(r"\S+\.hlo(:\d+)*:?\s*", "", m)
    m = re.sub(r"\bline \d+(:\d+)?:?\s*", "", m)
    m = re.sub(r"^[\w.%-]+ in [\w.%-]+:\s*", "", m)  # "<instr> in <computation>: "
    parts = re.split(r"('[^']*')", m)  # quoted names (opcodes, types) are kept as written
    m = "".join(p if p.startswith("'") else re.sub(r"\d+", "N", p) for p in parts)
    return m[:60]


def print_summary(meta: dict, entries: list[dict]) -> None:
    counts = collections.Counter(e["status"] for e in entries)
    parsed = [e for e in entries if e["status"] != "xla_rejects"]
    print(f"\n== {len(entries)} modules sampled of {meta.get('corpus_size')} "
          f"(seed {meta.get('seed')}, timeout {meta.get('timeout')} s, {meta.get('seconds')} s total)")
    print(f"   XLA's parser accepts {len(parsed)}; rejects {counts['xla_rejects']} (negative tests, templates)")
    order = ["match", "near_miss", "mismatch", "xla_unreliable", "st_error", "st_crash", "st_timeout",
             "both_timeout", "infinite_loop", "xla_error", "too_big",
             "signature_differs",
             "refuse", "inspect_error", "crash", "timeout", "xla_rejects"]
    print("\n status              count   % of XLA-parsed")
    for s in order + sorted(set(counts) - set(order)):
        if counts[s]:
            pct = "" if s == "xla_rejects" else f"{100 * counts[s] / max(1, len(parsed)):6.1f}"
            print(f"  {s:<18} {counts[s]:5d}   {pct}")
    accepted = len(parsed) - counts["refuse"] - counts["crash"] - counts["timeout"] - counts["inspect_error"]
    print(f"\n  inspect accepts {accepted}/{len(parsed)} = {100 * accepted / max(1, len(parsed)):.1f}%;"
          f" of those run and compared: {counts['match']} match, {counts['near_miss']} near miss,"
          f" {counts['mismatch']} mismatch")

    refusals = collections.Counter(refusal_key(e["message"]) for e in entries if e["status"] == "refuse")
    print(f"\n top refusals ({sum(refusals.values())} refused, {len(refusals)} kinds)")
    for msg, n in refusals.most_common(30):
        print(f"  {n:5d}  {msg}")

    def listing(title, statuses):
        rows = [e for e in entries if e["status"] in statuses]
        if rows:
            print(f"\n {title} ({len(rows)})")
            for e in rows:
                print(f"  [{e['status']}] {e['source']}  ({e['module']})\n      {e.get('message', '')}")

    listing("crashes and timeouts", {"crash", "timeout", "st_crash", "st_timeout"})
    listing("timeouts where XLA:CPU hangs too, or a while condition is constant(true)",
            {"both_timeout", "infinite_loop"})
    listing("not compared: XLA's answer through StableHLO is not XLA's semantics", {"xla_unreliable"})
    for status, title in (("mismatch", "mismatches"),
                          ("near_miss", "near misses (outside rtol/atol, within NEAR_MISS of the output's scale)")):
        rows = [e for e in entries if e["status"] == status]
        if rows:
            print(f"\n {title} ({len(rows)})")
            for e in rows:
                print(f"  {e['source']}  ({e['module']})")
                for m in e["mismatches"][:4]:
                    print(f"      output {m['output']} {m.get('dtype', '')}: {m['error']}")
    listing("statetensor run errors", {"st_error", "inspect_error", "signature_differs"})
    xe = collections.Counter(e["message"][:90] for e in entries if e["status"] == "xla_error")
    if xe:
        print(f"\n XLA errors ({sum(xe.values())})")
        for msg, n in xe.most_common(10):
            print(f"  {n:5d}  {msg}")


def cmd_summary(args) -> None:
    rep = json.loads(Path(args.report).read_text())
    print_summary(rep["meta"], rep["modules"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{extract,run,summary}")
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

    w = sub.add_parser("_xla-worker")  # internal: the XLA worker process
    w.set_defaults(func=lambda a: xla_worker())

    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
