"""The PyTorch front's plain-Python part, on modules traced by torch-xla
(tools/gen_torch_fixtures.py): torch-neuronx's parameter order, states and weights, and the
traced graph stepped on the simulator against eager PyTorch. No torch needed."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

import statetensor as st
from conftest import REPO
from statetensor._torch_plan import TracedParam, params_from_json, plan

ARTIFACTS = REPO / "crates" / "python" / "tests" / "torch_artifacts"


def artifact(name):
    d = ARTIFACTS / name
    meta = json.loads((d / "trace.json").read_text())
    return d, meta, dict(np.load(d / "values.npz"))


@pytest.mark.parametrize("name", ["classic_mlp", "two_inputs_kv"])
def test_traced_graphs_step_like_eager_pytorch(name):
    d, meta, values = artifact(name)
    p = plan(params_from_json(meta["params"]), meta["n_inputs"], meta["aliases"])
    assert list(p.order) == meta["neuron_order"]
    model = st.load(d / "model.pb", aliases=dict(p.states),
                    weights={n: values[f"param{n}"] for n in p.weights}, names=p.names(),
                    states={n: values[f"param{n}"] for n, _ in p.states})
    # every parameter named after its torch-neuronx number, and of the role the plan says
    assert [q.name for q in model.params] == [p.names()[q.number] for q in model.params]
    assert {q.number for q in model.states} == {n for n, _ in p.states}
    assert {q.number for q in model.weights} == set(p.weights)
    for k in range(meta["steps"]):
        inputs = {p.inputs[i]: values[f"step{k}_input{i}"] for i in range(meta["n_inputs"])}
        returned = iter(model(*[inputs[q.number] for q in model.inputs]))
        for j, o in enumerate(model.outputs):
            got = model.read_state(o.state) if o.state is not None else next(returned)
            np.testing.assert_allclose(got, values[f"step{k}_output{j}"], rtol=1e-5, atol=1e-6,
                                       err_msg=f"step {k} output {j}")
    # per step only the example inputs and the non-state outputs crossed
    step = model.report()["per_step"][-1]
    assert step["bytes_h2d"] == sum(values[f"step0_input{i}"].nbytes for i in range(meta["n_inputs"]))


def test_classic_walkthrough_is_numbered_as_torch_neuronx_numbers_it():
    # torch-xla numbers fc.bias, fc.weight, x, cache.0 in that order (with a lifted scalar
    # constant before them when XLA_NO_SPECIAL_SCALARS=1, which statetensor.torch sets);
    # torch-neuronx's order: the example input, then the state, then the rest in torch-xla's
    _, meta, _ = artifact("classic_mlp")
    params = params_from_json(meta["params"])
    number = {(q.kind, q.name or str(q.index)): q.number for q in params}
    bias, weight = number[("parameter", "fc.bias")], number[("parameter", "fc.weight")]
    x, cache = number[("input", "0")], number[("parameter", "cache.0")]
    assert bias < weight < x < cache
    p = plan(params, 1, [("cache.0", 1)])
    names = p.names()
    assert (names[x], names[cache]) == ("p0", "p1")
    assert int(names[bias][1:]) < int(names[weight][1:])
    assert p.states == ((cache, 1),) and p.inputs == (x,)
    assert set(p.weights) == {q.number for q in params} - {x, cache}


def test_plan_errors_name_the_tensor():
    params = [TracedParam(0, "input", index=0), TracedParam(1, "parameter", name="w"),
              TracedParam(2, "buffer", name="cache")]
    with pytest.raises(ValueError, match="'nope' is not read by the traced graph.*cache, w"):
        plan(params, 1, [("nope", 1)])
    with pytest.raises(ValueError, match="given twice"):
        plan(params, 1, [("cache", 1), ("cache", 2)])
    with pytest.raises(ValueError, match="numbered"):
        plan(params[1:], 1, [])
    # an example input the graph never reads has no parameter
    assert plan(params[1:] + [TracedParam(0, "constant")], 2, []).inputs == (None, None)


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_without_torch_the_front_says_what_to_install():
    r = subprocess.run([sys.executable, "-c", "import statetensor.torch"], capture_output=True, text=True)
    assert r.returncode != 0
    assert "pip install 'statetensor[torch]'" in r.stderr
