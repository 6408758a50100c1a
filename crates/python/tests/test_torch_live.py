"""statetensor.torch.trace for real (torch and torch-xla installed; the torch lane,
tools/test-python-torch): traced modules step like eager PyTorch with their state resident."""

import importlib.util
import sys

import numpy as np
import pytest

from conftest import REPO

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("torch_xla") is None,
    reason="torch and torch-xla are not installed (the torch lane installs them)")

if importlib.util.find_spec("torch") is not None and importlib.util.find_spec("torch_xla") is not None:
    import torch

    import statetensor as st
    import statetensor.torch as stt

    sys.path.insert(0, str(REPO / "tools"))
    from gen_torch_fixtures import ClassicMLP, TwoInputsKV  # the modules the artifacts hold


def eager_steps(module, steps, aliases):
    """Eager outputs of each step, each aliased output copied into its tensor afterwards."""
    outs = []
    with torch.no_grad():
        for inputs in steps:
            flat = torch.utils._pytree.tree_leaves(module(*inputs))
            outs.append([o.clone() for o in flat])
            for t, k in aliases.items():
                t.copy_(flat[k])
    return outs


@pytest.mark.parametrize("make, steps, aliases", [
    (ClassicMLP, lambda: [(torch.rand(2),) for _ in range(3)],
     lambda m: {m.cache[0]: 1}),
    (TwoInputsKV, lambda: [(torch.randn(8), torch.tensor([k])) for k in range(4)],
     lambda m: {m.k_cache: 1, m.v_cache: 2, m.count: 3}),
])
def test_traced_modules_step_like_eager(make, steps, aliases):
    torch.manual_seed(0)
    module, inputs = make(), steps()
    traced = stt.trace(module, inputs[0], input_output_aliases=aliases(module))
    want = eager_steps(module, inputs, aliases(module))  # moves the module's state on
    for k, x in enumerate(inputs):
        got = torch.utils._pytree.tree_leaves(traced(*x))
        for j, (g, w) in enumerate(zip(got, want[k])):
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-6, msg=f"step {k} output {j}")
    assert [p.number for p in traced.parameters()] == [n for n, _ in traced.plan.states]
    report = traced.report()
    weights = report["weight_bytes"]
    assert weights > 0
    # weights crossed once, at load; per step only the inputs go in
    for s in report["per_step"]:
        assert s["bytes_h2d"] == sum(t.numel() * t.element_size() for t in inputs[0])


def test_copy_writes_the_state_on_the_device():
    torch.manual_seed(0)
    m = ClassicMLP()
    x = torch.rand(2)
    traced = stt.trace(m, x, input_output_aliases={m.cache[0]: 1})
    (p,) = traced.parameters()
    p.copy_(torch.full((2, 2), 5.0))
    y, cache = traced(x)
    torch.testing.assert_close(cache[0], torch.full((2, 2), 6.0))
    with torch.no_grad():
        torch.testing.assert_close(y, torch.full((2, 2), 5.0) * torch.relu(m.fc(x)))
    with pytest.raises(st.InvalidInputError, match=r"expects f32\[2,2\]"):
        p.copy_(torch.zeros(3))


def test_bad_aliases_say_what_was_wrong():
    m = ClassicMLP()
    with pytest.raises(ValueError, match="not a parameter or buffer of the module"):
        stt.trace(m, torch.rand(2), input_output_aliases={torch.zeros(2, 2): 1})
    with pytest.raises(st.AliasError):
        stt.trace(m, torch.rand(2), input_output_aliases={m.cache[0]: 5})  # no output 5
