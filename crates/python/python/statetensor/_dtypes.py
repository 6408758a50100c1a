"""NumPy dtypes for the engine's element types (ml_dtypes for bfloat16, float8 and int4)."""

from __future__ import annotations

import ml_dtypes
import numpy as np


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype the native module calls `name`: NumPy's own name for it, or the
    ml_dtypes type of that name (bfloat16, float8_e4m3fn, float8_e5m2, int4, uint4)."""
    extended = getattr(ml_dtypes, name, None)
    return np.dtype(extended if extended is not None else name)
