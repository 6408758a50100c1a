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
