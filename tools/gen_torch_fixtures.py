#!/usr/bin/env python3
"""Traces PyTorch modules with torch-xla (as statetensor.torch.trace does) and writes what the
torch front's plain-Python part is tested on without torch-xla:
crates/python/tests/torch_artifacts/<name>/{model.pb, trace.json, values.npz}.

- model.pb: the HloModuleProto torch-xla's LoweringContext gives (what torch-neuronx hands
  neuronx-cc);
- trace.json: every HLO parameter (number; example input, module parameter or buffer, or
  lifted constant), the module's input_output_aliases by tensor name, and torch-neuronx's
  order as this script computes it independently (by tensor identity);
- values.npz: each parameter's value, the example inputs of each step and eager PyTorch's
  outputs of each step (the state copied back into the module after each, as the walkthrough
  does with p.copy_(c)).

Run in an environment with torch and torch-xla (see the README's torch lane):
    PJRT_DEVICE=CPU python tools/gen_torch_fixtures.py
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils._pytree as pytree

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "python", "python"))
from statetensor.torch import lower, to_numpy  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "python", "tests", "torch_artifacts")


class ClassicMLP(nn.Module):
    """The state-tensor walkthrough's module: a cache in a ParameterList, no cache input."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.cache = nn.ParameterList([nn.Parameter(torch.zeros((2, 2)), requires_grad=False)])

    def forward(self, x):
        x = F.relu(self.fc(x))
        for p in self.cache:
            x = p * x
        return x, [p + 1 for p in self.cache]


class TwoInputsKV(nn.Module):
    """Two inputs (a token vector and a position), a KV cache pair written with index_copy_,
    a running count buffer as state, a scale buffer that is not state, and a Python scalar."""

    def __init__(self, d=8, s=4):
        super().__init__()
        self.proj = nn.Linear(d, 2 * d, bias=False)
        self.register_buffer("k_cache", torch.zeros(s, d))
        self.register_buffer("v_cache", torch.zeros(s, d))
        self.register_buffer("count", torch.zeros(()))
        self.register_buffer("scale", torch.full((d,), 0.5))

    def forward(self, x, pos):
        k, v = self.proj(x).chunk(2)
        k_cache = self.k_cache.index_copy(0, pos, k[None])
        v_cache = self.v_cache.index_copy(0, pos, v[None])
        attn = torch.softmax(k_cache @ x * 0.125, dim=0) @ v_cache
        return attn * self.scale, k_cache, v_cache, self.count + 1.0


def trace_one(name, module, steps, aliases):
    torch.manual_seed(0)
    eager = module
    names = {id(t): n for n, t in list(eager.named_parameters(remove_duplicate=False)) + list(eager.named_buffers(remove_duplicate=False))}
    alias_names = [(names[id(t)], out) for t, out in aliases(eager).items()]
    proto, params, values, _ = lower(eager, steps[0])
    # torch-neuronx's order, computed here by tensor identity
    order = ([p.number for p in sorted((p for p in params if p.kind == "input"), key=lambda p: p.index)]
             + [next(p.number for p in params if p.name == n) for n, _ in alias_names])
    order += [p.number for p in sorted(params, key=lambda p: p.number) if p.number not in order]
    arrays = {f"param{n}": v for n, v in values.items()}
    for k, inputs in enumerate(steps):
        for i, x in enumerate(inputs):
            arrays[f"step{k}_input{i}"] = to_numpy(x)
        with torch.no_grad():
            out = pytree.tree_leaves(eager(*inputs))
            for j, o in enumerate(out):
                arrays[f"step{k}_output{j}"] = to_numpy(o)
            tensors = dict(list(eager.named_parameters(remove_duplicate=False)) + list(eager.named_buffers(remove_duplicate=False)))
            for n, o in alias_names:
                tensors[n].copy_(out[o])
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.pb"), "wb") as f:
        f.write(proto)
    np.savez(os.path.join(d, "values.npz"), **arrays)
    meta = {
        "module": type(module).__name__,
        "n_inputs": len(steps[0]),
        "steps": len(steps),
        "outputs": len(out),
        "params": [{"number": p.number, "kind": p.kind, "index": p.index, "name": p.name} for p in params],
        "aliases": alias_names,
        "neuron_order": order,
        "torch": torch.__version__,
    }
    with open(os.path.join(d, "trace.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print("wrote", d)


def main():
    torch.manual_seed(0)
    trace_one("classic_mlp", ClassicMLP(), [(torch.rand(2),) for _ in range(3)],
              lambda m: {c: 1 + i for i, c in enumerate(m.cache)})
    torch.manual_seed(1)
    trace_one("two_inputs_kv", TwoInputsKV(),
              [(torch.randn(8), torch.tensor([k])) for k in range(4)],
              lambda m: {m.k_cache: 1, m.v_cache: 2, m.count: 3})


if __name__ == "__main__":
    main()
