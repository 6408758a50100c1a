"""statetensor.torch.trace for real (torch and torch-xla installed; the torch lane,
tools/test-python-torch): traced modules step like eager PyTorch with their state resident."""

import importlib.util
import sys

import numpy as np
import pytest

from conftest import REPO

torch = pytest.importorskip("torch", reason="the torch lane (tools/test-python-torch) installs torch")
pytest.importorskip("torch_xla", reason="the torch lane (tools/test-python-torch) installs torch-xla")

import statetensor as st  # noqa: E402
import statetensor.torch as stt  # noqa: E402

sys.path.insert(0, str(REPO / "tools"))
from gen_torch_fixtures import ClassicMLP, TwoInputsKV  # noqa: E402  the modules the artifacts hold


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


def llama_static_cache_decoder(max_len=16):
    """A tiny transformers Llama whose static KV cache (keys, values and each layer's
    position counter) lives in module buffers, so it can be traced as state."""
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.cache_utils import StaticCache

    cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    lm = LlamaForCausalLM(cfg).eval()
    head_dim = cfg.hidden_size // cfg.num_attention_heads

    class StaticCacheDecoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lm = lm
            for i in range(cfg.num_hidden_layers):
                shape = (1, cfg.num_key_value_heads, max_len, head_dim)
                self.register_buffer(f"k{i}", torch.zeros(shape))
                self.register_buffer(f"v{i}", torch.zeros(shape))
                self.register_buffer(f"len{i}", torch.tensor(0))

        def forward(self, input_ids, position):
            cache = StaticCache(config=cfg, max_cache_len=max_len)
            for i, layer in enumerate(cache.layers):
                layer.keys, layer.values = getattr(self, f"k{i}"), getattr(self, f"v{i}")
                layer.cumulative_length = getattr(self, f"len{i}")
                layer.device = layer.keys.device
                layer.batch_size, layer.num_heads = 1, cfg.num_key_value_heads
                layer.k_head_dim = layer.v_head_dim = head_dim
                layer.is_initialized = True
            out = self.lm(input_ids=input_ids, past_key_values=cache, cache_position=position,
                          use_cache=True)
            n = cfg.num_hidden_layers
            return (out.logits, *[getattr(self, f"k{i}") for i in range(n)],
                    *[getattr(self, f"v{i}") for i in range(n)],
                    *[getattr(self, f"len{i}") for i in range(n)])

    return StaticCacheDecoder(), cfg.num_hidden_layers


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed")
def test_transformers_decoder_with_a_static_kv_cache_matches_eager():
    import copy

    decoder, n = llama_static_cache_decoder()
    eager = copy.deepcopy(decoder)
    tokens = [5, 17, 99, 3, 42]
    first = (torch.tensor([[tokens[0]]]), torch.tensor([0]))
    aliases = {}
    for i in range(n):
        aliases[getattr(decoder, f"k{i}")] = 1 + i
        aliases[getattr(decoder, f"v{i}")] = 1 + n + i
        aliases[getattr(decoder, f"len{i}")] = 1 + 2 * n + i
    traced = stt.trace(decoder, first, input_output_aliases=aliases)
    assert len(list(traced.parameters())) == 3 * n
    for t, tok in enumerate(tokens):
        ids, pos = torch.tensor([[tok]]), torch.tensor([t])
        (logits,) = traced.step(ids, pos)
        with torch.no_grad():
            want = eager(ids, pos)[0]
        torch.testing.assert_close(logits, want, rtol=1e-4, atol=1e-5, msg=f"token {t}")
    report = traced.report()
    assert report["weight_bytes"] >= sum(p.numel() * 4 for p in decoder.lm.parameters()) // 2
    # per step: the token (and its position, where the graph reads it) in, the logits out;
    # the weights and the caches stay on the device
    read = sum(int(np.prod(p.shape)) * p.dtype.itemsize for p in traced.model.inputs)
    assert 8 <= read <= 16
    for s in report["per_step"]:
        assert s["bytes_h2d"] == read and s["bytes_d2h"] == 128 * 4
