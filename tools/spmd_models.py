"""Models for SPMD runs, shared by tools/gen_spmd_fixtures.py (small, with JAX's outputs)
and tools/tp_table.py (deployment-sized, for the cost model): a Megatron-style
tensor-parallel decoder layer with its KV cache sharded by heads."""
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import PartitionSpec as P


def rmsnorm(x):
    return x * lax.rsqrt(jnp.mean(x * x) + 1e-6)


def make_tp_decoder(hd, s):
    """One token through a decoder layer on this core's heads and MLP columns (run under
    shard_map over the axis "tp"): column-parallel q/k/v and w1, row-parallel wo and w2, an
    all-reduce after attention and after the MLP. The KV cache [s, heads, hd] holds this
    core's heads; `pos` counts tokens."""

    def tp_decoder(x, wq, wk, wv, wo, w1, w2, k_cache, v_cache, pos):
        heads = k_cache.shape[1]
        h = rmsnorm(x)
        q = (h @ wq).reshape(heads, hd)
        k = (h @ wk).reshape(heads, hd)
        v = (h @ wv).reshape(heads, hd)
        k_cache = lax.dynamic_update_slice(k_cache, k[None].astype(k_cache.dtype), (pos, 0, 0))
        v_cache = lax.dynamic_update_slice(v_cache, v[None].astype(v_cache.dtype), (pos, 0, 0))
        scores = jnp.einsum("hd,shd->hs", q, k_cache) / np.float32(np.sqrt(hd)).astype(q.dtype)
        scores = jnp.where(jnp.arange(s)[None, :] <= pos, scores, -jnp.inf)
        p = jax.nn.softmax(scores, axis=-1)
        a = jnp.einsum("hs,shd->hd", p, v_cache).reshape(heads * hd)
        x = x + lax.psum(a @ wo, "tp")
        m = jax.nn.gelu(rmsnorm(x) @ w1) @ w2
        y = x + lax.psum(m, "tp")
        return y, k_cache, v_cache, pos + 1

    return tp_decoder


# how the decoder's parameters and outputs are sharded over "tp"
DECODER_IN = (P(), P(None, "tp"), P(None, "tp"), P(None, "tp"), P("tp", None), P(None, "tp"), P("tp", None),
              P(None, "tp", None), P(None, "tp", None), P())
DECODER_OUT = (P(), P(None, "tp", None), P(None, "tp", None), P())
