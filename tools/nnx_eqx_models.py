"""Stateful models written with flax's nnx API and with equinox, as their users hand them
over: each is a step function over flat arrays — inputs, then the state leaves, then the
weights — that returns its outputs followed by the new state, with the alias map that says
which parameter each new state feeds (as tools/flax_models.py does for linen).

- `greedy_decoder`: an nnx decoder (Embed, RMSNorm, decode-mode MultiHeadAttention over its
  KV cache, LayerNorm, GELU MLP, tied `Embed.attend`) that picks the next token with argmax
  on the device; the token and the caches are state, so a step feeds the next.
- `rnn_scan`: nnx.RNN over an LSTM cell — a scan over a sequence chunk — its carry in state.
- `eqx_batchnorm`: an equinox MLP with `eqx.nn.BatchNorm`, its statistics in `eqx.nn.State`.

Needs `pip install flax equinox` (the fixture generator imports this module only for these
fixtures)."""
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def _flat(tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return [np.asarray(x) for x in leaves], treedef


class GreedyDecoder(nnx.Module):
    def __init__(self, vocab, d, heads, rngs):
        self.embed = nnx.Embed(vocab, d, rngs=rngs)
        self.norm1 = nnx.RMSNorm(d, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(num_heads=heads, in_features=d, qkv_features=d,
                                           decode=True, rngs=rngs)
        self.norm2 = nnx.LayerNorm(d, rngs=rngs)
        self.up = nnx.Linear(d, 2 * d, rngs=rngs)
        self.down = nnx.Linear(2 * d, d, rngs=rngs)

    def __call__(self, token):
        h = self.embed(token)
        h = h + self.attn(self.norm1(h))
        h = h + self.down(nnx.gelu(self.up(self.norm2(h))))
        logits = self.embed.attend(h)[:, -1]
        return logits, jnp.argmax(logits, axis=-1).astype(jnp.int32)[:, None]


def greedy_decoder(rng, vocab=64, d=32, heads=4, batch=2, cache=8):
    """(step, args, aliases, weights): args are the token [batch, 1], the cache leaves, the
    weights; outputs are the logits, the next token (fed back to the token), the caches."""
    model = GreedyDecoder(vocab, d, heads, nnx.Rngs(0))
    model.attn.init_cache((batch, cache, d))
    graphdef, params, state = nnx.split(model, nnx.Param, nnx.Cache)
    param_leaves, param_def = _flat(params)
    state_leaves, state_def = _flat(state)
    ns = len(state_leaves)

    def step(token, *leaves):
        s = jax.tree_util.tree_unflatten(state_def, leaves[:ns])
        p = jax.tree_util.tree_unflatten(param_def, leaves[ns:])
        m = nnx.merge(graphdef, p, s)
        logits, nxt = m(token)
        _, _, new = nnx.split(m, nnx.Param, nnx.Cache)
        return (logits, nxt, *jax.tree_util.tree_leaves(new))

    token = rng.integers(0, vocab, (batch, 1)).astype(np.int32)
    args = [token, *state_leaves, *param_leaves]
    aliases = {0: 1, **{1 + k: 2 + k for k in range(ns)}}
    weights = list(range(1 + ns, len(args)))
    return step, args, aliases, weights


def rnn_scan(rng, batch=3, time=5, features=6, hidden=12):
    """(step, args, aliases, weights): a chunk x [batch, time, features] through nnx.RNN
    (LSTM cell) from the carry (c, h), which the step returns for the next chunk."""
    rnn = nnx.RNN(nnx.LSTMCell(features, hidden, rngs=nnx.Rngs(1)), return_carry=True)
    # nnx.RNN also keeps an rng stream; this step does not draw from it
    graphdef, params, rest = nnx.split(rnn, nnx.Param, ...)
    param_leaves, param_def = _flat(params)

    def step(x, c, h, *leaves):
        m = nnx.merge(graphdef, jax.tree_util.tree_unflatten(param_def, leaves), rest)
        (c, h), y = m(x, initial_carry=(c, h))
        return y, c, h

    x = rng.standard_normal((batch, time, features)).astype(np.float32)
    c = np.zeros((batch, hidden), np.float32)
    h = np.zeros((batch, hidden), np.float32)
    return step, [x, c, h, *param_leaves], {1: 1, 2: 2}, list(range(3, 3 + len(param_leaves)))


class EqxNet(eqx.Module):
    lin1: eqx.nn.Linear
    bn: eqx.nn.BatchNorm
    lin2: eqx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.lin1 = eqx.nn.Linear(8, 16, key=k1)
        self.bn = eqx.nn.BatchNorm(16, axis_name="batch", momentum=0.9)
        self.lin2 = eqx.nn.Linear(16, 4, key=k2)

    def __call__(self, x, state):
        x, state = self.bn(jax.nn.relu(self.lin1(x)), state)
        return self.lin2(x), state


def eqx_batchnorm(rng, batch=6):
    """(step, args, aliases, weights): a batch through the equinox MLP in training mode;
    BatchNorm's running statistics (eqx.nn.State) are the state."""
    model, state = eqx.nn.make_with_state(EqxNet)(jax.random.key(2))
    params, static = eqx.partition(model, eqx.is_array)
    param_leaves, param_def = _flat(params)
    state_leaves, state_def = _flat(state)
    ns = len(state_leaves)

    def step(x, *leaves):
        s = jax.tree_util.tree_unflatten(state_def, leaves[:ns])
        m = eqx.combine(jax.tree_util.tree_unflatten(param_def, leaves[ns:]), static)
        y, s = jax.vmap(m, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(x, s)
        return (y, *jax.tree_util.tree_leaves(s))

    x = rng.standard_normal((batch, 8)).astype(np.float32)
    args = [x, *state_leaves, *param_leaves]
    aliases = {1 + k: 1 + k for k in range(ns)}
    return step, args, aliases, list(range(1 + ns, len(args)))
