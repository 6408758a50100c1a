"""Stateful models written with flax's own layers (linen), as users hand them over: each is
a step function over flat arrays — inputs, then the state leaves, then the weights — that
returns its outputs followed by the new state leaves, with the alias map that says which
parameter each new state feeds.

Needs `pip install flax` (the fixture generator imports this module only for these
fixtures)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class CNN(nn.Module):
    """Conv -> BatchNorm (batch statistics in state) -> relu -> avg_pool -> a grouped
    strided Conv -> Dense: the linen CNN of the issue."""

    features: tuple = (8, 16)

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(self.features[0], (3, 3))(x)
        x = nn.BatchNorm(use_running_average=False, momentum=0.9)(x)
        x = nn.relu(x)
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = nn.Conv(self.features[1], (3, 3), strides=(2, 2), padding="VALID",
                    feature_group_count=self.features[0])(x)
        x = x.reshape((x.shape[0], -1))
        return nn.Dense(10)(x)


class RecurrentCells(nn.Module):
    """An LSTM and a GRU cell stepped once per call, their carries in state."""

    @nn.compact
    def __call__(self, lstm_carry, gru_carry, x):
        lstm_carry, y1 = nn.OptimizedLSTMCell(16)(lstm_carry, x)
        gru_carry, y2 = nn.GRUCell(16)(gru_carry, x)
        return lstm_carry, gru_carry, jnp.concatenate([y1, y2], -1)


class DecodeAttention(nn.Module):
    """linen's MultiHeadDotProductAttention in decode mode: one token per call, its KV
    cache (and the cache index) in the `cache` collection."""

    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        return nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=32, decode=True,
                                               dtype=self.dtype, param_dtype=self.dtype)(x)


def stateful_step(module, variables, state_collection, example_inputs, method=None):
    """The flat step of `module.apply` with `state_collection` mutable: (step, args,
    aliases, weights). args are the example inputs, the state leaves, then the weight
    leaves; outputs are the module's outputs, then the new state leaves."""
    state = variables[state_collection]
    params = variables["params"]
    state_leaves, state_def = jax.tree_util.tree_flatten(state)
    param_leaves, param_def = jax.tree_util.tree_flatten(params)
    n_in, n_state = len(example_inputs), len(state_leaves)

    def step(*args):
        inputs = args[:n_in]
        state = jax.tree_util.tree_unflatten(state_def, args[n_in:n_in + n_state])
        params = jax.tree_util.tree_unflatten(param_def, args[n_in + n_state:])
        out, new = module.apply({"params": params, state_collection: state}, *inputs,
                                mutable=[state_collection], method=method)
        outs = jax.tree_util.tree_leaves(out)
        return (*outs, *jax.tree_util.tree_leaves(new[state_collection]))

    n_out = len(jax.tree_util.tree_leaves(jax.eval_shape(
        lambda: module.apply(variables, *example_inputs, mutable=[state_collection])[0])))
    aliases = {n_in + k: n_out + k for k in range(n_state)}
    weights = list(range(n_in + n_state, n_in + n_state + len(param_leaves)))
    args = [*example_inputs, *state_leaves, *param_leaves]
    return step, [np.asarray(a) for a in args], aliases, weights


def cnn(rng, batch=4, size=12, features=(8, 16)):
    x = rng.standard_normal((batch, size, size, 3)).astype(np.float32)
    m = CNN(features=features)
    variables = m.init(jax.random.key(0), x)
    return stateful_step(m, variables, "batch_stats", [x])


def decode_attention(rng, dtype):
    m = DecodeAttention(dtype=dtype)
    x = rng.standard_normal((2, 1, 32)).astype(dtype)
    # the cache is sized by the example passed to init: 6 positions
    variables = m.init(jax.random.key(1), jnp.zeros((2, 6, 32), dtype))
    variables = {"params": variables["params"], "cache": variables["cache"]}
    return stateful_step(m, variables, "cache", [x])


def recurrent(rng):
    m = RecurrentCells()
    x = rng.standard_normal((3, 8)).astype(np.float32)
    lstm = nn.OptimizedLSTMCell(16).initialize_carry(jax.random.key(2), (3, 8))
    gru = nn.GRUCell(16).initialize_carry(jax.random.key(3), (3, 8))
    variables = m.init(jax.random.key(4), lstm, gru, x)

    # the carries are state parameters the caller keeps (not a flax collection): inputs
    # x, then the carries, then the weights; outputs y, then the new carries
    param_leaves, param_def = jax.tree_util.tree_flatten(variables["params"])

    def step(x, c, h, g, *params):
        p = jax.tree_util.tree_unflatten(param_def, params)
        (c, h), g, y = m.apply({"params": p}, (c, h), g, x)
        return y, c, h, g

    args = [x, *[np.asarray(a) for a in lstm], np.asarray(gru), *param_leaves]
    return step, [np.asarray(a) for a in args], {1: 1, 2: 2, 3: 3}, list(range(4, 4 + len(param_leaves)))
