"""XLA:CPU as the oracle: a worker process (a CHECK failure in XLA aborts the process; a
compile can hang) serving parse and run requests, and the rewrites of XLA's optimised
forms that XLA:CPU will not compile from text."""
from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from pathlib import Path

from corpus.shapes import entry_signature
from fixture_io import np_dtype, without_header_aliases, xla_cpu_executable

#: the script whose `_xla-worker` subcommand runs `xla_worker`
SCRIPT = Path(__file__).resolve().parent.parent / "xla_corpus.py"


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
    from jax._src.lib import hlo
    devices = jax.devices("cpu")[:1]
    out = sys.stdout
    sys.stdout = sys.stderr  # keep library chatter off the protocol stream
    for line in sys.stdin:
        req = json.loads(line)
        try:
            text = without_header_aliases(Path(req["hlo"]).read_text())
            module = hlo.hlo_module_from_text(text)
            if req["op"] == "parse":
                printed = module.to_string()
                params, result = entry_signature(printed)
                resp = {"ok": True, "params": params, "result": result,
                        "layout_bitcasts": layout_bitcasts(printed),
                        "infinite_loops": constant_true_conditions(printed)}
            else:
                rewritten, rewrites = unfuse_for_xla(text, req.get("layout_bitcasts", 0) == 0)
                exe = None
                if rewrites:
                    try:
                        exe = xla_cpu_executable(rewritten)
                    except Exception:  # noqa: BLE001 - the module as written gets its chance
                        rewrites = []
                if exe is None:
                    exe = xla_cpu_executable(text)
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
                    except Exception as e:  # noqa: BLE001 - a token has no data to read
                        if "token" not in str(e).lower():
                            raise  # XLA failed running the module: an xla_error
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
            ["nice", "-n", "10", sys.executable, str(SCRIPT), "_xla-worker"],
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
