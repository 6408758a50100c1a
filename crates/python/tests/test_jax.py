"""statetensor.jax.trace: JAX steps with donated state, stepped on the simulator, match JAX."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax import lax

import statetensor as st
import statetensor.jax as sj

jax.config.update("jax_platforms", "cpu")


def decoder_step(params, x, k_cache, v_cache, pos):
    """One token through single-head attention over a KV cache, then an MLP; the caches and
    the position are state."""
    d = x.shape[0]
    q, k, v = x @ params["wq"], x @ params["wk"], x @ params["wv"]
    k_cache = lax.dynamic_update_slice(k_cache, k[None, :], (pos, 0))
    v_cache = lax.dynamic_update_slice(v_cache, v[None, :], (pos, 0))
    s = k_cache.shape[0]
    scores = jnp.where(jnp.arange(s) <= pos, k_cache @ q / np.float32(np.sqrt(d)), -jnp.inf)
    attn = jax.nn.softmax(scores) @ v_cache
    h = x + attn
    y = h + jax.nn.gelu(h @ params["w1"]) @ params["w2"]
    return y, k_cache, v_cache, pos + 1


def decoder_args(d=16, s=8, seed=0):
    rng = np.random.default_rng(seed)
    f = lambda *shape: (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)
    params = {"wq": f(d, d), "wk": f(d, d), "wv": f(d, d), "w1": f(d, 2 * d), "w2": f(2 * d, d)}
    return params, f(d), np.zeros((s, d), np.float32), np.zeros((s, d), np.float32), np.int32(0)


def test_kv_decoder_matches_jax_over_several_steps():
    params, x, kc, vc, pos = decoder_args()
    model = sj.trace(decoder_step, params, x, kc, vc, pos, donate_argnums=(2, 3, 4), weights=(0,))
    assert [p.role for p in model.params].count("weight") == 5
    assert [s.name for s in model.states] == ["k_cache.1", "v_cache.1", "pos.1"] or len(model.states) == 3
    step = jax.jit(decoder_step)
    state = (kc, vc, pos)
    rng = np.random.default_rng(1)
    for t in range(6):
        xt = rng.standard_normal(x.shape).astype(np.float32)
        (y,) = model(xt)
        want_y, *state = step(params, xt, *state)
        np.testing.assert_allclose(y, want_y, rtol=2e-5, atol=2e-5)
    for got, want in zip(model.states, state):
        np.testing.assert_allclose(model.read_state(got.number), np.asarray(want), rtol=2e-5, atol=2e-5)
    assert int(model.read_state(model.states[2].number)) == 6
    report = model.report()
    # per step only the token's vector goes in and y comes out; weights and caches stay
    for s in report["per_step"]:
        assert s["bytes_h2d"] == x.nbytes and s["bytes_d2h"] == x.nbytes
    assert report["weight_bytes"] == sum(v.nbytes for v in params.values())


def test_donated_example_values_are_the_initial_state():
    def count(x, c):
        return c + x, x * c

    with pytest.warns(UserWarning, match="aliases="):
        m = sj.trace(count, np.float32(2), np.float32(10), donate_argnums=1)
    # JAX reuses a donated buffer for the first output of its type: output 0, c + x
    assert m.states[0].output == 0
    (y,) = m(np.float32(3))
    assert float(y) == 30 and float(m.read_state(1)) == 13


def test_ambiguous_donation_is_settled_by_aliases():
    def count(x, c):
        return x * c, c + x

    m = sj.trace(count, np.float32(2), np.float32(10), aliases={1: 1})
    (y,) = m(np.float32(3))
    assert float(y) == 30 and float(m.read_state(1)) == 13


def test_bf16_state_adds_up_like_jax():
    def accumulate(x, acc):
        acc = acc + x.astype(jnp.bfloat16)
        return acc.astype(jnp.float32).sum(), acc

    x = np.linspace(-1, 1, 64, dtype=np.float32)
    acc = np.zeros(64, ml_dtypes.bfloat16)
    m = sj.trace(accumulate, x, acc, donate_argnums=(1,))
    assert m.states[0].dtype == np.dtype(ml_dtypes.bfloat16)
    want = acc
    for _ in range(3):
        (s,) = m(x)
        want_s, want = jax.jit(accumulate)(x, want)
    np.testing.assert_array_equal(m.read_state(1), np.asarray(want))
    np.testing.assert_allclose(s, want_s, rtol=1e-6)


def test_aliases_override_donation():
    def f(x, a, b):
        return a + x, b * 2, a  # output 2 could alias a, output 0 could alias a too

    m = sj.trace(f, np.ones(3, np.float32), np.zeros(3, np.float32), np.ones(3, np.float32),
                 aliases={1: 0, 2: 1})
    assert [(s.number, s.output) for s in m.states] == [(1, 0), (2, 1)]
    (a_before,) = m(np.ones(3, np.float32))
    np.testing.assert_array_equal(a_before, [0, 0, 0])  # output 2: `a` before the step
    np.testing.assert_array_equal(m.read_state(1), [1, 1, 1])
    np.testing.assert_array_equal(m.read_state(2), [2, 2, 2])


def test_bad_traces_say_what_was_wrong():
    def no_state_out(x, c):
        return x + c.sum()

    with pytest.raises(st.InvalidInputError, match="aliased them to no output"):
        sj.trace(no_state_out, np.ones(2, np.float32), np.ones(3, np.float32), donate_argnums=1)
    with pytest.raises(st.InvalidInputError, match="not an argument number"):
        sj.trace(no_state_out, np.ones(2, np.float32), np.ones(3, np.float32), donate_argnums=5)
    with pytest.raises(st.InvalidInputError, match="are state, not weights"):
        sj.trace(lambda x, c: (x, c + 1), np.ones(2, np.float32), np.ones(2, np.float32),
                 donate_argnums=1, weights=1)


def test_calls_are_checked_against_the_trace():
    params, x, kc, vc, pos = decoder_args()
    model = sj.trace(decoder_step, params, x, kc, vc, pos, donate_argnums=(2, 3, 4), weights=(0,))
    with pytest.raises(st.InvalidInputError, match="2 argument"):
        model(x, x)
    with pytest.raises(st.InvalidInputError, match=r"expects f32\[16\], got f32\[8\]"):
        model(x[:8])
    with pytest.raises(st.InvalidInputError, match="structure"):
        model([x])
