"""How an output of statetensor's is compared with XLA:CPU's: exact for integers, pred and
data movement; floats within per-type tolerances, NaN equal to NaN."""
from __future__ import annotations

from pathlib import Path

from fixture_io import np_dtype


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
