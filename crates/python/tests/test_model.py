"""statetensor.load and Model: steps, state, state sets, snapshots, the report, and errors
that leave the model as it was."""

import threading

import ml_dtypes
import numpy as np
import pytest

import statetensor as st
from conftest import FIXTURES, example_arg


def mlp_reference(x, w, b, cache):
    return cache * np.maximum(x @ w + b, 0), cache + 1


def load_mlp(d, **kw):
    return st.load(d / "model.hlo", weights={"w": example_arg(d, 1), "b": example_arg(d, 2)}, **kw)


def test_steps_match_reference_and_state_stays_on_device(mlp_dir):
    m = load_mlp(mlp_dir)
    x, w, b = (example_arg(mlp_dir, p) for p in range(3))
    assert [p.name for p in m.inputs] == ["x.1"]
    assert [(s.name, s.output) for s in m.states] == [("cache.1", 1)]
    cache = np.zeros(3, np.float32)
    m.write_state("cache", cache + 1)
    cache = cache + 1
    for _ in range(3):
        (y,) = m(x)
        want_y, cache = mlp_reference(x, w, b, cache)
        np.testing.assert_allclose(y, want_y, rtol=1e-6)
        np.testing.assert_array_equal(m.read_state("cache"), cache)
    report = m.report()
    assert report["steps"] == 3
    # per step only x (16 bytes) goes in and y (12 bytes) comes out: the cache and the
    # weights stay on the device
    for step in report["per_step"]:
        assert (step["bytes_h2d"], step["bytes_d2h"]) == (16, 12)
    assert report["weight_bytes"] == 60
    rt = report["without_state_tensors"]
    assert rt["bytes_h2d"] == report["bytes_h2d"] + 3 * 12
    assert "with state tensors" in m.summary()


def test_outputs_are_writable_numpy_arrays(mlp_dir):
    m = load_mlp(mlp_dir)
    (y,) = m(example_arg(mlp_dir, 0))
    y += 1  # a fresh array the caller owns
    s = m.read_state(3)
    np.testing.assert_array_equal(s, [1, 1, 1])
    s[:] = 7  # the caller's copy; the state on the device is untouched
    np.testing.assert_array_equal(m.read_state(3), [1, 1, 1])


def test_inputs_by_keyword_and_python_numbers(mlp_dir):
    m = load_mlp(mlp_dir)
    x = example_arg(mlp_dir, 0)
    m.write_state(3, [2.0, 2.0, 2.0])
    (a,) = m(x=x)
    m.write_state(3, [2.0, 2.0, 2.0])
    (b,) = m(x.tolist())
    np.testing.assert_array_equal(a, b)


def test_state_sets_copy_reset_drop_and_snapshots(mlp_dir, tmp_path):
    m = load_mlp(mlp_dir)
    x = example_arg(mlp_dir, 0)
    m.create_state_set("b", {"cache": np.full(3, 5, np.float32)}, select=True)
    m(x)
    np.testing.assert_array_equal(m.read_state("cache"), [6, 6, 6])
    np.testing.assert_array_equal(m.read_state("cache", state_set="default"), [0, 0, 0])
    m.copy_state_set("b", "c")
    m.reset()  # back to the values "b" was created with
    np.testing.assert_array_equal(m.read_state("cache"), [5, 5, 5])
    np.testing.assert_array_equal(m.read_state("cache", state_set="c"), [6, 6, 6])
    path = tmp_path / "c.safetensors"
    assert m.snapshot(path, state_set="c") > 0
    m.select_state_set("default")
    m.restore(path)
    np.testing.assert_array_equal(m.read_state("cache"), [6, 6, 6])
    m.drop_state_set("c")
    with pytest.raises(st.NotFoundError):
        m.select_state_set("c")
    with pytest.raises(st.InvalidInputError):
        m.drop_state_set("default")  # the selected one


def test_hlo_module_proto_file_and_bytes_load_alike():
    d = FIXTURES / "kv_decoder_weights"
    from_file = st.load(d / "model.pb")
    from_bytes = st.load((d / "model.pb").read_bytes())
    assert from_file.params == from_bytes.params
    assert from_file.outputs == from_bytes.outputs


@pytest.mark.parametrize("bad, why", [
    (lambda x: x.astype(np.float64), "expects f32[4], got f64[4]"),
    (lambda x: x[:3], "expects f32[4], got f32[3]"),
    (lambda x: np.stack([x, x])[:, 0], "not C-contiguous"),
    (lambda x: x.astype(">f4"), "big-endian"),
    (lambda x: x.astype(ml_dtypes.bfloat16), "got bf16[4]"),
])
def test_bad_inputs_raise_and_leave_the_model_as_it_was(mlp_dir, unchanged, bad, why):
    m = load_mlp(mlp_dir)
    x = example_arg(mlp_dir, 0)
    m.write_state("cache", [3.0, 4.0, 5.0])
    before = unchanged(m)
    with pytest.raises(ValueError, match=why.replace("[", r"\[").replace("]", r"\]")) as e:
        m(bad(x))
    assert isinstance(e.value, st.InvalidInputError)
    before.assert_unchanged()


def test_call_arity_names_and_types_are_checked(mlp_dir, unchanged):
    m = load_mlp(mlp_dir)
    x = example_arg(mlp_dir, 0)
    before = unchanged(m)
    with pytest.raises(st.InvalidInputError, match="missing input"):
        m()
    with pytest.raises(st.InvalidInputError, match="2 inputs given"):
        m(x, x)
    with pytest.raises(st.InvalidInputError, match="no parameter 'y'"):
        m(y=x)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        m(object())
    before.assert_unchanged()


def test_unknown_or_non_state_names_and_bad_state_values(mlp_dir, unchanged):
    m = load_mlp(mlp_dir)
    m.write_state("cache", [1.0, 2.0, 3.0])
    before = unchanged(m)
    with pytest.raises(st.InvalidInputError, match="no parameter 'nope'"):
        m.read_state("nope")
    with pytest.raises(st.InvalidInputError, match="is an input, not a state"):
        m.write_state("x", np.zeros(4, np.float32))
    with pytest.raises(st.InvalidInputError, match=r"expects f32\[3\], got f32\[2\]"):
        m.write_state("cache", np.zeros(2, np.float32))
    with pytest.raises(st.InvalidInputError, match="not C-contiguous"):
        m.write_state("cache", np.zeros(6, np.float32)[::2])
    with pytest.raises(st.NotFoundError):
        m.read_state("cache", state_set="nope")
    before.assert_unchanged()


def test_bad_snapshot_restores_nothing(mlp_dir, tmp_path, unchanged):
    m = load_mlp(mlp_dir)
    m.write_state("cache", [1.0, 2.0, 3.0])
    before = unchanged(m)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(st.InvalidInputError, match="not JSON"):
        m.restore(bad)
    with pytest.raises(OSError):
        m.restore(tmp_path / "missing.safetensors")
    before.assert_unchanged()


def test_load_errors_name_what_was_wrong(mlp_dir, tmp_path):
    with pytest.raises(st.InvalidInputError, match="not a backend"):
        load_mlp(mlp_dir, backend="gpu")
    with pytest.raises(st.InvalidInputError, match="neither a built-in profile"):
        load_mlp(mlp_dir, device="inf9")
    with pytest.raises(st.AliasError):
        st.load(mlp_dir / "model.hlo", aliases={"cache": 0, "x": 1})
    with pytest.raises(st.InvalidInputError, match=r"expects f32\[4,3\]"):
        st.load(mlp_dir / "model.hlo", weights={"w": np.zeros((3, 4), np.float32)})
    bad = tmp_path / "bad.hlo"
    bad.write_text("HloModule m\nENTRY e {\n  ROOT x = f32[] parameter(0\n}\n")
    with pytest.raises(st.errors.ParseError, match=r"bad.hlo:4:1: expected .\)"):
        st.load(bad)


def test_out_of_device_memory_carries_the_numbers(mlp_dir, tmp_path):
    profile = tmp_path / "tiny.json"
    profile.write_text('{"base": "inf2", "name": "tiny", "hbm_bytes": 64}')
    with pytest.raises(st.OutOfDeviceMemory) as e:
        load_mlp(mlp_dir, device=str(profile))
    assert isinstance(e.value, MemoryError)
    assert e.value.capacity == 64 and e.value.requested > e.value.free


def test_aliases_from_outside_the_module(mlp_dir):
    # the same module with its header map replaced: the cache updated from output 1
    m = st.load(mlp_dir / "model.hlo", aliases={3: 1},
                weights={1: example_arg(mlp_dir, 1), 2: example_arg(mlp_dir, 2)})
    assert [(s.number, s.output) for s in m.states] == [(3, 1)]
    # no aliases at all: every parameter is an input and both outputs come back
    m = st.load(mlp_dir / "model.hlo", aliases={})
    assert len(m.inputs) == 4 and len(m.returned) == 2


def test_the_gil_is_released_while_a_step_runs(tmp_path):
    n = 512
    text = f"""HloModule big
ENTRY e {{
  a = f32[{n},{n}] parameter(0)
  b = f32[{n},{n}] parameter(1)
  d = f32[{n},{n}] dot(a, b), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}
  e = f32[{n},{n}] dot(d, b), lhs_contracting_dims={{1}}, rhs_contracting_dims={{0}}
  ROOT t = (f32[{n},{n}]) tuple(e)
}}
"""
    (tmp_path / "big.hlo").write_text(text)
    m = st.load(tmp_path / "big.hlo")
    a = np.ones((n, n), np.float32)
    ticks = 0
    done = threading.Event()

    def step():
        m(a, a)
        done.set()

    t = threading.Thread(target=step)
    t.start()
    while not done.wait(0.001):
        ticks += 1  # runs only while the step has let go of the GIL
    t.join()
    assert ticks > 10


def test_driver_over_the_emulator_matches_the_simulator(mlp_dir, emulator):
    x = example_arg(mlp_dir, 0)
    results = []
    for backend in ("sim", "nrt"):
        m = load_mlp(mlp_dir, backend=backend)
        m.write_state("cache", [1.0, 2.0, 3.0])
        ys = [m(x)[0] for _ in range(3)]
        results.append((ys, m.read_state("cache")))
        assert m.backend == backend
    for a, b in zip(results[0][0], results[1][0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_int4_and_bf16_states_round_trip_as_ml_dtypes(tmp_path):
    (tmp_path / "m.hlo").write_text("""HloModule m, input_output_alias={ {0}: (0, {}, may-alias), {1}: (1, {}, may-alias) }
ENTRY e {
  s = s4[4] parameter(0)
  b = bf16[3] parameter(1)
  n = s4[4] negate(s)
  one = bf16[] constant(1)
  ones = bf16[3] broadcast(one), dimensions={}
  c = bf16[3] add(b, ones)
  ROOT t = (s4[4], bf16[3]) tuple(n, c)
}
""")
    m = st.load(tmp_path / "m.hlo")
    m.write_state(0, np.array([1, -2, 3, -4], dtype=ml_dtypes.int4))
    m.write_state(1, np.array([0.5, 255, -3], dtype=ml_dtypes.bfloat16))
    assert m() == ()
    s = m.read_state(0)
    assert s.dtype == np.dtype(ml_dtypes.int4)
    np.testing.assert_array_equal(s.astype(np.int8), [-1, 2, -3, 4])
    np.testing.assert_array_equal(m.read_state(1).astype(np.float32), [1.5, 256, -2])
    with pytest.raises(st.InvalidInputError, match=r"expects s4\[4\], got s8\[4\]"):
        m.write_state(0, np.zeros(4, np.int8))


def test_review_cases_raise_and_leave_the_model_as_it_was(mlp_dir, unchanged, tmp_path):
    m = load_mlp(mlp_dir)
    x = example_arg(mlp_dir, 0)
    m.write_state("cache", [1.0, 2.0, 3.0])
    m.create_state_set("other")
    # an ndarray subclass is read as the plain array it views; a masked array is refused
    class Tagged(np.ndarray):
        pass
    m.select_state_set("other")
    (y_sub,) = m(x.view(Tagged))
    m.reset("other")
    (y_plain,) = m(x)
    np.testing.assert_array_equal(y_sub, y_plain)
    m.select_state_set("default")
    before = unchanged(m)
    with pytest.raises(st.InvalidInputError, match="masked array"):
        m(np.ma.masked_array(x, mask=[0, 1, 0, 0]))
    with pytest.raises(TypeError, match="not a subclass"):
        m._native.execute("default", [x.view(Tagged)])
    with pytest.raises(st.InvalidInputError, match="no parameter '-1'"):
        m.read_state(-1)
    with pytest.raises(st.InvalidInputError, match="already exists"):
        m.create_state_set("other")
    with pytest.raises(st.InvalidInputError, match="given twice"):
        m.create_state_set("third", {"cache": [1.0, 1.0, 1.0], 3: [2.0, 2.0, 2.0]})
    with pytest.raises(st.InvalidInputError, match="without changing kind"):
        m.write_state("cache", [1j, 2j, 3j])
    with pytest.raises(st.NotFoundError):
        m.select_state_set("missing")
    before.assert_unchanged()


def test_int4_values_out_of_range_write_nothing(tmp_path):
    (tmp_path / "m.hlo").write_text("""HloModule m, input_output_alias={ {}: (0, {}, may-alias) }
ENTRY e {
  s = s4[4] parameter(0)
  ROOT n = s4[4] negate(s)
}
""")
    m = st.load(tmp_path / "m.hlo")
    m.write_state(0, np.array([1, 2, 3, 4], dtype=ml_dtypes.int4))
    bad = np.array([1, 2, 3, 0x70], dtype=np.uint8).view(ml_dtypes.int4)
    with pytest.raises(st.InvalidInputError):
        m.write_state(0, bad)
    np.testing.assert_array_equal(m.read_state(0).astype(np.int8), [1, 2, 3, 4])
    with pytest.raises(st.InvalidInputError, match="without changing kind"):
        m.write_state(0, [1.5, 0, 0, 0])
    with pytest.raises(st.InvalidInputError, match="range"):
        m.write_state(0, [100, 0, 0, 0])
