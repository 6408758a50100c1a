"""`ShardedModel`: one SPMD model run by several cores, each holding its shard of the
weights and of every state set, stepped together."""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Tuple, Union

import numpy as np

from . import _native
from ._model import DEFAULT_STATE_SET, ParamRef, _StateSets, _as_array, native_load_args
from .errors import InvalidInputError


class ShardedModel(_StateSets):
    """A stateful model run by several cores at once (tensor parallelism): every call
    steps every core on the selected state set, the cores meeting at the collectives.

    ``model(*inputs)`` takes each input as the parameter's own shape (every core the same)
    or with a leading axis of :attr:`cores` (core k its slice k), and returns the non-state
    outputs with a leading axis of :attr:`cores`. A state is read and written per core
    (``core=k``), whole along the axis it is sharded on (``axis=a``), or stacked.
    """

    @property
    def cores(self) -> int:
        """The number of cores."""
        return self._native.cores

    def __repr__(self) -> str:
        return (f"<statetensor.ShardedModel on {self.cores} {self.backend} cores: "
                f"{len(self.inputs)} input(s), {len(self.states)} state(s); "
                f"state set '{self._state_set}'>")

    def __call__(self, *args: Any) -> Tuple[np.ndarray, ...]:
        """One step on every core; returns the non-state outputs, each ``[cores, ...]``."""
        inputs = self.inputs
        if len(args) != len(inputs):
            raise InvalidInputError(
                f"call: {len(args)} input(s) given; the model takes {len(inputs)}: "
                + ", ".join(f"{p.name} {p.type}" for p in inputs))
        out = self._native.execute(self._state_set, [_as_array(v, p) for v, p in zip(args, inputs)])
        returned = [o for o in self.outputs if o.state is None]
        return tuple(
            np.stack([np.frombuffer(out[k][i], dtype=o.dtype).reshape(o.shape)
                      for k in range(self.cores)])
            for i, o in enumerate(returned))

    def read_state(self, p: ParamRef, *, core: Optional[int] = None, axis: Optional[int] = None,
                   state_set: Optional[str] = None) -> np.ndarray:
        """State `p`: core `core`'s shard; or every core's shard gathered along `axis` (the
        whole state, as it is sharded); or, with neither, stacked along a new leading axis."""
        q = self._state(p, "read_state")
        name = state_set or self._state_set

        def shard(k: int) -> np.ndarray:
            b = self._native.read_state(name, q.number, k)
            return np.frombuffer(b, dtype=q.dtype).reshape(q.shape)
        if core is not None:
            if axis is not None:
                raise InvalidInputError("read_state: give core= or axis=, not both")
            return shard(core)
        shards = [shard(k) for k in range(self.cores)]
        if axis is None:
            return np.stack(shards)
        if not 0 <= axis < len(q.shape):
            raise InvalidInputError(
                f"read_state: axis {axis} of state {q.name} ({q.type}), which has {len(q.shape)} axes")
        return np.concatenate(shards, axis=axis)

    def write_state(self, p: ParamRef, value: Any, *, core: Optional[int] = None,
                    axis: Optional[int] = None, state_set: Optional[str] = None) -> None:
        """Overwrites state `p`: core `core`'s shard with `value`; or every core's with its
        block of the whole `value` along `axis`; or, with neither, from `value` as a call
        takes an input (its own shape for every core, or a leading axis of the cores).
        Shapes are checked before any core is written."""
        q = self._state(p, "write_state")
        name = state_set or self._state_set
        if core is not None:
            if axis is not None:
                raise InvalidInputError("write_state: give core= or axis=, not both")
            self._native.write_state(name, q.number, core, _as_array(value, q))
            return
        if axis is None:
            self._native.write_state(name, q.number, None, _as_array(value, q))
        else:
            a = np.asarray(value)
            whole = list(q.shape)
            if not 0 <= axis < len(whole):
                raise InvalidInputError(
                    f"write_state: axis {axis} of state {q.name} ({q.type}), which has {len(whole)} axes")
            whole[axis] *= self.cores
            if list(a.shape) != whole or a.dtype != q.dtype:
                raise InvalidInputError(
                    f"write_state: state {q.name} is {q.type} on each core, so the whole state "
                    f"along axis {axis} is {q.dtype}{whole}; got {a.dtype}{list(a.shape)}")
            # every core's block, then each written: the whole was checked first
            for k, s in enumerate(np.split(a, self.cores, axis=axis)):
                self._native.write_state(name, q.number, k, np.ascontiguousarray(s))



def load_sharded(source: Union[str, os.PathLike, bytes], cores: int, *,
                 aliases: Optional[Mapping[ParamRef, int]] = None,
                 weights: Optional[Mapping[ParamRef, Any]] = None, backend: str = "sim",
                 device: str = "inf2", names: Optional[Mapping[ParamRef, str]] = None,
                 states: Optional[Mapping[ParamRef, Any]] = None,
                 state_set: str = DEFAULT_STATE_SET) -> ShardedModel:
    """:func:`statetensor.load` with ``cores=``."""
    if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
        raise InvalidInputError(f"load: cores={cores!r}: expected a positive number of cores")
    native = _native.NativeShardedModel.load(
        *native_load_args(source, None, aliases, weights, names), backend, device, cores)
    return ShardedModel(native, state_set=state_set, state_values=states)
