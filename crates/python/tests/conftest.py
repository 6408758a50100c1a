"""Shared fixtures: the repository's example models, and a helper that checks a failed call
left a model exactly as it was."""

import os
import pathlib

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
FIXTURES = REPO / "conformance" / "fixtures"


@pytest.fixture
def mlp_dir():
    """The walkthrough: y = cache * relu(x @ w + b); the cache (parameter 3) <- output 1."""
    return EXAMPLES / "mlp_cache"


def example_arg(d, p):
    return np.load(d / f"arg{p}.npy")


class Snapshot:
    """Every state of a model's selected set and its report's step and byte counts."""

    def __init__(self, model):
        self.model = model
        self.states = {s.name: model.read_state(s.number).copy() for s in model.states}
        r = model.report()
        self.counts = (r["steps"], r["bytes_h2d"] - self._reads(model), r["transfers_h2d"])

    @staticmethod
    def _reads(model):
        return 0

    def assert_unchanged(self):
        now = Snapshot(self.model)
        for name, value in self.states.items():
            np.testing.assert_array_equal(now.states[name], value, err_msg=name)
        assert now.counts == self.counts


@pytest.fixture
def unchanged():
    return Snapshot


@pytest.fixture
def emulator():
    """The libnrt emulator built by the test command (tools/test-python), or skip."""
    lib = os.environ.get("STATETENSOR_LIBNRT")
    if not lib or not os.path.exists(lib):
        pytest.skip("STATETENSOR_LIBNRT does not name the built libnrt emulator")
    return lib
