"""The example notebooks run, cell by cell, and show what their text says they show. A
notebook whose framework is not installed is skipped."""

import contextlib
import importlib.util
import io
import json
import os

import numpy as np
import pytest

from conftest import EXAMPLES


def run_notebook(path):
    """Executes every code cell in order in one namespace (as a kernel would, from the
    notebook's directory); returns the namespace and each cell's printed output."""
    nb = json.loads(path.read_text())
    namespace, printed = {"__name__": "__main__"}, []
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile("".join(cell["source"]), str(path), "exec"), namespace)
            printed.append(out.getvalue())
    finally:
        os.chdir(cwd)
    return namespace, printed


def needs(module):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


def test_jax_walkthrough_and_decoder():
    needs("jax")
    ns, printed = run_notebook(EXAMPLES / "state_tensors_jax.ipynb")
    text = "".join(printed)
    assert "cache after the first call: [[1. 1.]\n [1. 1.]]" in text
    assert "cache after the second call: [[2. 2.]\n [2. 2.]]" in text
    np.testing.assert_array_equal(ns["y"], np.asarray(ns["mlp"](ns["params"], ns["x"], np.ones((2, 2), np.float32))[0]))
    assert ns["tokens"] == ns["jax_tokens"]
    assert int(ns["decoder"].read_state("pos")) == 10
    assert "with state tensors" in text


def test_torch_walkthrough_prints_what_the_original_prints():
    needs("torch")
    needs("torch_xla")
    import torch

    ns, printed = run_notebook(EXAMPLES / "state_tensors_torch.ipynb")
    m, x = ns["m"], ns["x"]
    # after the first call: y zeros, cache ones
    first = printed[3]
    assert "tensor([[0., 0.],\n        [0., 0.]]) [tensor([[1., 1.],\n        [1., 1.]])]" in first
    # after copying the cache back and calling again: y = relu(fc(x)) * 1, cache twos
    y, cache = ns["y"], ns["cache"]
    with torch.no_grad():
        want = torch.relu(m.fc(x)) * torch.ones(2, 2)
    torch.testing.assert_close(y, want)
    torch.testing.assert_close(cache[0], torch.full((2, 2), 2.0))
    assert "with state tensors" in printed[-1]
