#!/usr/bin/env python3
"""Compares two trees of `statetensor run --out` results, fixture by fixture:
SIM_DIR/<fixture>/ against HW_DIR/<fixture>/. Byte and transfer counts in report.json must
be equal; every output_K.npy must match within the fixture's tolerance (its meta.json),
loosened by --rtol for hardware numerics. Exits 1 on any mismatch, listing each.

Usage: python3 tools/compare_outputs.py out/sim out/nrt [--rtol 1e-2]
"""
import argparse
import json
import os
import sys

import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance", "fixtures")
COUNTS = ["bytes_h2d", "bytes_d2h", "transfers_h2d", "transfers_d2h", "state_bytes"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sim")
    ap.add_argument("hw")
    ap.add_argument("--rtol", type=float, default=1e-2, help="extra relative tolerance for hardware numerics")
    a = ap.parse_args()
    bad = []
    names = sorted(n for n in os.listdir(a.hw) if os.path.isdir(os.path.join(a.hw, n)))
    for name in names:
        s, h = os.path.join(a.sim, name), os.path.join(a.hw, name)
        rs, rh = (json.load(open(os.path.join(d, "report.json"))) for d in (s, h))
        for k in COUNTS:
            if rs[k] != rh[k]:
                bad.append(f"{name}: {k} sim {rs[k]} vs hw {rh[k]}")
        meta = json.load(open(os.path.join(FIXTURES, name, "meta.json")))
        rtol, atol = meta["rtol"] + a.rtol, meta["atol"] + a.rtol * 1e-3
        for f in sorted(x for x in os.listdir(s) if x.startswith("output_")):
            x, y = np.load(os.path.join(s, f)), np.load(os.path.join(h, f))
            if x.dtype.kind == "V":  # bf16 saved as raw bits
                x, y = (v.view(np.uint16).astype(np.uint32) << 16 for v in (x, y))
                x, y = x.view(np.float32), y.view(np.float32)
            if x.shape != y.shape or not np.allclose(x.astype(np.float64), y.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True):
                bad.append(f"{name}/{f}: max |diff| {np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))}")
    for b in bad:
        print(b)
    print(f"{len(names)} fixtures compared, {len(bad)} mismatches")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
