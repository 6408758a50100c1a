"""Model families shared by the fixture generator and the speed comparison against XLA."""
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def mlp_cache(x, w, b, cache):
    """The state-tensor walkthrough: y = cache * relu(fc(x)); output 1 = cache + 1."""
    y = cache * jax.nn.relu(x @ w + b)
    return y, cache + 1.0


def decoder_layer(x, ln1, wq, wk, wv, wo, ln2, w1, w2, k_cache, v_cache, pos):
    """A pre-norm transformer decoder layer for one token with a per-head KV cache."""
    h, s, dh = k_cache.shape

    def rms(v, g):
        return v * lax.rsqrt(jnp.mean(v * v) + 1e-6) * g

    a = rms(x, ln1)
    q = (a @ wq).reshape(h, dh)
    k = (a @ wk).reshape(h, 1, dh)
    v = (a @ wv).reshape(h, 1, dh)
    k_cache = lax.dynamic_update_slice(k_cache, k, (jnp.int32(0), pos, jnp.int32(0)))
    v_cache = lax.dynamic_update_slice(v_cache, v, (jnp.int32(0), pos, jnp.int32(0)))
    scores = jnp.einsum("hd,hsd->hs", q, k_cache) / np.float32(np.sqrt(dh))
    scores = jnp.where(jnp.arange(s)[None, :] <= pos, scores, -jnp.inf)
    p = jax.nn.softmax(scores, axis=-1)
    attn = jnp.einsum("hs,hsd->hd", p, v_cache).reshape(h * dh)
    x = x + attn @ wo
    m = rms(x, ln2)
    x = x + jax.nn.gelu(m @ w1, approximate=True) @ w2
    return x, k_cache, v_cache, pos + 1


def decoder_args(rng, d, heads, s):
    dh = d // heads
    sc = np.float32(1.0 / np.sqrt(d))
    def randn(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    def w(*shape):
        return (randn(*shape) * sc).astype(np.float32)

    return [randn(d), np.ones(d, np.float32), w(d, d), w(d, d), w(d, d), w(d, d), np.ones(d, np.float32),
            w(d, 4 * d), w(4 * d, d), np.zeros((heads, s, dh), np.float32), np.zeros((heads, s, dh), np.float32),
            np.int32(0)]


def _layer_norm(v, scale, bias):
    mean = jnp.mean(v)
    c = v - mean
    return c * lax.rsqrt(jnp.mean(c * c) + 1e-6) * scale + bias


def _rms_norm(v, g):
    return v * lax.rsqrt(jnp.mean(v * v) + 1e-6) * g


LM_LAYER_WEIGHTS = 9  # ln1, wq, wk, wv, wo, ln2 scale, ln2 bias, w1, w2


def decoder_lm(*args):
    """Greedy decoding, one token per call, as a flax decoder lowers it: an embedding looked
    up with `jnp.take` (a gather), per layer RMSNorm and attention decode over that layer's
    KV cache, LayerNorm and a GELU MLP, a final RMSNorm, logits from the tied embedding
    (`h @ E.T`, flax's `Embed.attend`: a dot over a transpose) and the argmax (a variadic
    reduce with a comparator region).

    Parameters, torch-neuronx style: weights (embedding, final norm, then nine per layer),
    then the states: the current token, every layer's K cache, every layer's V cache, the
    position. Outputs: the next token, then the states' new values in the same order.
    """
    emb, ln_f = args[0], args[1]
    nl = (len(args) - 4) // (LM_LAYER_WEIGHTS + 2)
    layers = [args[2 + LM_LAYER_WEIGHTS * i: 2 + LM_LAYER_WEIGHTS * (i + 1)] for i in range(nl)]
    rest = args[2 + LM_LAYER_WEIGHTS * nl:]
    token, k_caches, v_caches, pos = rest[0], rest[1:1 + nl], rest[1 + nl:1 + 2 * nl], rest[1 + 2 * nl]
    x = jnp.take(emb, token, axis=0)
    new_k, new_v = [], []
    for (ln1, wq, wk, wv, wo, ln2s, ln2b, w1, w2), kc, vc in zip(layers, k_caches, v_caches):
        h, s, dh = kc.shape
        a = _rms_norm(x, ln1)
        q = (a @ wq).reshape(h, dh)
        kc = lax.dynamic_update_slice(kc, (a @ wk).reshape(h, 1, dh), (jnp.int32(0), pos, jnp.int32(0)))
        vc = lax.dynamic_update_slice(vc, (a @ wv).reshape(h, 1, dh), (jnp.int32(0), pos, jnp.int32(0)))
        scores = jnp.einsum("hd,hsd->hs", q, kc) / np.float32(np.sqrt(dh))
        scores = jnp.where(jnp.arange(s)[None, :] <= pos, scores, -jnp.inf)
        p = jax.nn.softmax(scores, axis=-1)
        x = x + jnp.einsum("hs,hsd->hd", p, vc).reshape(h * dh) @ wo
        m = _layer_norm(x, ln2s, ln2b)
        x = x + jax.nn.gelu(m @ w1, approximate=True) @ w2
        new_k.append(kc)
        new_v.append(vc)
    logits = _rms_norm(x, ln_f) @ emb.T
    nxt = jnp.argmax(logits).astype(jnp.int32)
    return (nxt, nxt, *new_k, *new_v, pos + 1)


def decoder_lm_args(rng, vocab, d, heads, s, layers):
    """Random weights and empty caches for `decoder_lm`; the first token is 1."""
    dh = d // heads
    sc = np.float32(1.0 / np.sqrt(d))

    def w(*shape):
        return (rng.standard_normal(shape) * sc).astype(np.float32)

    ones, zeros = np.ones(d, np.float32), np.zeros(d, np.float32)
    args = [(rng.standard_normal((vocab, d))).astype(np.float32), ones]
    for _ in range(layers):
        args += [ones, w(d, d), w(d, d), w(d, d), w(d, d), ones, zeros, w(d, 4 * d), w(4 * d, d)]
    cache = np.zeros((heads, s, dh), np.float32)
    args += [np.int32(1)] + [cache] * (2 * layers) + [np.int32(0)]
    return args


def decoder_lm_aliases(layers):
    """{param: output} for `decoder_lm`: the token and caches and position are state."""
    first_state = 2 + LM_LAYER_WEIGHTS * layers
    return {first_state + i: 1 + i for i in range(2 * layers + 2)}
