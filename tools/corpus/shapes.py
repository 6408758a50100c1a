"""Shapes as XLA prints them in entry_computation_layout, their array leaves, and the
random inputs the comparison feeds them."""
from __future__ import annotations

import re

from fixture_io import np_dtype


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
