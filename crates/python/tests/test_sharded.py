"""statetensor.load(..., cores=N): a tensor-parallel decoder (the TP-4 SPMD fixture, JAX's
per-device module) on four cores — JAX's outputs step by step on the simulator and on the
driver over the emulator's cores, the KV cache read and written per core and whole along
the heads axis, sharded snapshots, the per-core report, and clear errors."""

import json
import os

import numpy as np
import pytest

import statetensor as st
from conftest import FIXTURES

TP4 = FIXTURES / "spmd" / "tp4_decoder"
META = json.loads((TP4 / "meta.json").read_text())


def arg(p):
    return np.load(TP4 / f"arg{p}.npy")


def out(step, k):
    return np.load(TP4 / f"out{step}_{k}.npy")


def load(**kw):
    # each weight with a leading axis of 4: core k gets its shard
    return st.load(TP4, cores=4, weights={p: arg(p) for p in META["weights"]}, device="trn1", **kw)


def close(got, want, what):
    np.testing.assert_allclose(got, want, rtol=META["rtol"], atol=META["atol"], err_msg=what)


@pytest.mark.parametrize("backend", ["sim", "nrt"])
def test_a_tp4_decoder_matches_jax_on_every_core(backend):
    if backend == "nrt" and not os.environ.get("STATETENSOR_LIBNRT"):
        pytest.skip("the driver needs STATETENSOR_LIBNRT (tools/test-python sets the emulator)")
    m = load(backend=backend)
    assert isinstance(m, st.ShardedModel) and m.cores == 4 and m.backend == backend
    x = arg(0)  # [4, 64]: every core's token
    for s in range(META["steps"]):
        (y,) = m(x)
        assert y.shape == (4, 64)
        close(y, out(s, 0), f"y at step {s}")
    # core k's shard of the K cache is JAX's, and the whole cache is the shards by heads
    close(m.read_state(7, core=2), out(3, 1)[2], "core 2's K cache shard")
    whole = m.read_state(7, axis=1)
    assert whole.shape == (16, 8, 8)
    close(whole, np.concatenate(list(out(3, 1)), axis=1), "the whole K cache")
    np.testing.assert_array_equal(m.read_state(9), [4, 4, 4, 4])
    report = m.report()
    assert len(report["per_core"]) == 4
    for step in report["per_step"]:
        # only every core's token in and y out
        assert (step["bytes_h2d"], step["bytes_d2h"]) == (4 * 256, 4 * 256)


def test_a_state_written_whole_and_restored_from_a_snapshot(tmp_path):
    m = load()
    m(arg(0))
    snap = tmp_path / "seq.safetensors"
    m.snapshot(snap)
    whole = m.read_state(7, axis=1)
    m.write_state(7, np.zeros_like(whole), axis=1)
    assert not m.read_state(7, core=3).any()
    m.write_state(7, whole, axis=1)
    np.testing.assert_array_equal(m.read_state(7, axis=1), whole)
    m.reset()
    m.restore(snap)
    (y,) = m(arg(0))
    close(y, out(1, 0), "y after restoring step 1's state")
    # one value for every core: every shard equal
    m.write_state(9, np.int32(0))
    np.testing.assert_array_equal(m.read_state(9), [0, 0, 0, 0])


def test_bad_shapes_are_clear_errors_and_change_nothing():
    m = load()
    with pytest.raises(st.InvalidInputError, match=r"\[4, 64\]"):
        m(np.zeros((3, 64), np.float32))
    with pytest.raises(st.InvalidInputError, match=r"\[16, 8, 8\]"):
        m.write_state(7, np.zeros((16, 2, 8), np.float32), axis=1)
    with pytest.raises(st.InvalidInputError, match="core 4"):
        m.read_state(7, core=4)
    with pytest.raises(st.InvalidInputError):
        st.load(TP4, cores=2, weights={p: arg(p) for p in META["weights"]})
    (y,) = m(arg(0))
    close(y, out(0, 0), "y after the refused calls")


@pytest.mark.parametrize("backend", ["sim", "nrt"])
def test_names_rename_parameters_on_every_core(backend):
    if backend == "nrt" and not os.environ.get("STATETENSOR_LIBNRT"):
        pytest.skip("the driver needs STATETENSOR_LIBNRT (tools/test-python sets the emulator)")
    m = load(names={7: "k_cache", 9: "position"}, backend=backend)
    named = {p.number: p.name for p in m.states}
    assert (named[7], named[9]) == ("k_cache", "position")
    m(arg(0))
    np.testing.assert_array_equal(m.read_state("position"), [1, 1, 1, 1])
    close(m.read_state("k_cache", core=1), out(0, 1)[1], "core 1's k_cache after step 0")
    with pytest.raises(st.InvalidInputError, match="names.*parameter 99 does not exist"):
        load(names={99: "nothing"})
