#!/usr/bin/env python3
"""Writes the example notebooks under examples/ (their cells are kept here, as code, so they
are reviewed like code; run this after editing them). The notebooks are committed without
outputs; crates/python/tests/test_notebooks.py executes them."""
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def notebook(cells):
    return {
        "cells": [
            {"cell_type": kind, "metadata": {}, "source": text.strip("\n").splitlines(True),
             **({"execution_count": None, "outputs": []} if kind == "code" else {})}
            for kind, text in cells
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


JAX = [
    ("markdown", """
# State tensors from JAX, without a Neuron machine

The state-tensor walkthrough: a small layer whose `cache` lives on the device. In JAX the
state is a *donated* argument — `jax.jit(step, donate_argnums=...)` tells XLA to update it in
place — and `statetensor.jax.trace` turns that into a state tensor: it stays in the
(simulated) NeuronCore's HBM between calls, and only `x` and `y` cross PCIe.
"""),
    ("code", """
import jax
import jax.numpy as jnp
import numpy as np

import statetensor
import statetensor.jax

jax.config.update("jax_platforms", "cpu")


def mlp(params, x, cache):
    y = cache * jax.nn.relu(params["w"] @ x + params["b"])
    return y, cache + 1


rng = np.random.default_rng(0)
params = {"w": rng.random((2, 2), dtype=np.float32), "b": rng.random(2, dtype=np.float32)}
x = rng.random(2, dtype=np.float32)
cache = np.zeros((2, 2), np.float32)
"""),
    ("markdown", """
Trace it. Argument 2, the cache, is state, updated from output 1 — `aliases={2: 1}`, as
`input_output_aliases` says it to `torch_neuronx.trace`. (`donate_argnums=2` would let XLA
choose: it ties a donated buffer to the first output of its type, here `y`, and
`statetensor.jax.trace` warns when that choice is open.) Argument 0, the weights, is
resident: uploaded once. The model is then called with `x` alone.
"""),
    ("code", """
model = statetensor.jax.trace(mlp, params, x, cache, aliases={2: 1}, weights=0)
model
"""),
    ("code", """
(y,) = model(x)
print(y)
print("cache after the first call:", model.read_state("cache"))
"""),
    ("code", """
(y,) = model(x)
print(y)
print("cache after the second call:", model.read_state("cache"))
"""),
    ("markdown", """
What crossed host↔device, against the same steps with the cache copied out and back each
step (what a model without state tensors does):
"""),
    ("code", """
print(model.summary())
report = model.report()
print("per step, host -> device:", [s["bytes_h2d"] for s in report["per_step"]], "bytes")
"""),
    ("markdown", """
## A KV-cache decoder

One attention layer over a KV cache with greedy decoding: the caches and the position are
state, the weights resident; each step takes a token and returns the next one, chosen by an
argmax on the device.
"""),
    ("code", """
from jax import lax

VOCAB, D, S = 64, 32, 16


def decode_step(w, token, k_cache, v_cache, pos):
    h = w["embed"][token]
    q, k, v = h @ w["wq"], h @ w["wk"], h @ w["wv"]
    k_cache = lax.dynamic_update_slice(k_cache, k[None, :], (pos, 0))
    v_cache = lax.dynamic_update_slice(v_cache, v[None, :], (pos, 0))
    scores = jnp.where(jnp.arange(S) <= pos, k_cache @ q / np.sqrt(D).astype(np.float32), -jnp.inf)
    h = h + jax.nn.softmax(scores) @ v_cache
    logits = h @ w["embed"].T
    return jnp.argmax(logits).astype(jnp.int32), k_cache, v_cache, pos + 1


w = {name: (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)
     for name, shape in [("embed", (VOCAB, D)), ("wq", (D, D)), ("wk", (D, D)), ("wv", (D, D))]}
state0 = (np.zeros((S, D), np.float32), np.zeros((S, D), np.float32), np.int32(0))
# the token and the position are both int32 scalars: name each state's output, or XLA's
# donation would tie the position to the first int32 output, the token
decoder = statetensor.jax.trace(decode_step, w, np.int32(1), *state0,
                                aliases={2: 1, 3: 2, 4: 3}, weights=0)

tokens, token = [], np.int32(1)
for _ in range(10):
    (token,) = decoder(token)
    tokens.append(int(token))

# the same loop in JAX
jax_tokens, jax_token, jax_state = [], np.int32(1), state0
step = jax.jit(decode_step)
for _ in range(10):
    jax_token, *jax_state = step(w, jax_token, *jax_state)
    jax_tokens.append(int(jax_token))

print("statetensor:", tokens)
print("JAX:        ", jax_tokens)
print("position state:", decoder.read_state("pos"))
"""),
    ("code", """
print(decoder.summary())
"""),
]

TORCH = [
    ("markdown", """
# State tensor tracing/inference — with statetensor in place of torch-neuronx

The classic state-tensor walkthrough, cell for cell, with one change: the model is traced with
`statetensor.torch.trace` instead of `torch_neuronx.trace`, so it runs on statetensor's
simulated NeuronCore on any machine (torch and torch-xla installed; no Neuron device). The
cache is a state tensor: it stays in the device's HBM, updated in place by each call.
"""),
    ("code", """
import torch
import torch.nn as nn
import torch.nn.functional as F

class MLP(nn.Module):
  def __init__(self):
      super(MLP, self).__init__()
      ## Dummy linear layer
      self.fc = nn.Linear(2, 2)
      ## Special set of tensors that will transformed into state tensors
      self.cache = nn.ParameterList(
        [
            nn.Parameter(torch.zeros((2,2), dtype=torch.float32), requires_grad=False)
        ]
    )
  def forward(self, x):
      x = F.relu(self.fc(x))
      for p in self.cache:
          x = p * x
      cache = [p + 1 for p in self.cache]
      return x, cache
"""),
    ("markdown", "### Warm up"),
    ("code", """
m = MLP()
x = torch.rand((2), dtype=torch.float32)
y,cache = m(x)
y,cache
"""),
    ("markdown", """
### Trace

`idx=1` because the output element 0 is `x`: the cache is output 1.
"""),
    ("code", """
import statetensor.torch

idx=1 #
aliases = {c:idx+i for i,c in enumerate(m.cache)}
neuron_m = statetensor.torch.trace(m, x, input_output_aliases=aliases)
"""),
    ("markdown", """
### Warm up the traced model

The cache starts at zeros, so `y` is zeros and the cache comes back as ones.
"""),
    ("code", """
y,cache = neuron_m(x)
print(y,cache)
"""),
    ("markdown", "### Update state tensor"),
    ("code", """
for c,p in zip(cache, neuron_m.parameters()):
    p.copy_(c)
"""),
    ("markdown", """
### Invoke the model again

Now `y` is `relu(fc(x))` times a cache of ones, and the cache comes back as twos.
"""),
    ("code", """
y,cache = neuron_m(x)
print(y,cache)
"""),
    ("markdown", """
### What crossed host↔device

Reading the aliased output back (`cache` above) is a device-to-host copy each call, counted
here; `neuron_m.step(x)` returns only `y` and leaves the cache on the device.
"""),
    ("code", """
print(neuron_m.summary())
"""),
]

if __name__ == "__main__":
    for name, cells in [("state_tensors_jax.ipynb", JAX), ("state_tensors_torch.ipynb", TORCH)]:
        path = os.path.join(ROOT, "examples", name)
        with open(path, "w") as f:
            json.dump(notebook(cells), f, indent=1)
            f.write("\n")
        print("wrote", path)
