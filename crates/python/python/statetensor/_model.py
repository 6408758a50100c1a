"""`Model`: a stateful model loaded on a device, stepped from Python."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._dtypes import numpy_dtype
from .errors import InvalidInputError, NotFoundError

ParamRef = Union[int, str]
"""A parameter: its number, its HLO name (``x.1``) or that name without ``.N`` (``x``)."""

DEFAULT_STATE_SET = "default"


@dataclass(frozen=True)
class Param:
    """A parameter of the model: number, name, dtype, shape, role and, for a state, the
    output that updates it."""

    number: int
    name: str
    dtype: np.dtype
    shape: Tuple[int, ...]
    role: str  # "input", "state" or "weight"
    type: str  # as HLO prints it: f32[4,3]
    output: Optional[int] = None


@dataclass(frozen=True)
class Output:
    """An output of the model: index, dtype, shape and the state parameter it updates."""

    index: int
    dtype: np.dtype
    shape: Tuple[int, ...]
    state: Optional[int] = None


def _as_array(value: Any, param: Param) -> np.ndarray:
    """`value` as an array for `param`: NumPy arrays pass as they are (checked by the engine,
    never silently converted; a subclass as the plain array it views); Python numbers and
    lists take the parameter's dtype when that loses nothing but float rounding; other
    array-likes (a JAX array, a CPU torch tensor through ``__array__``) keep their own."""
    if isinstance(value, np.ma.MaskedArray):
        raise InvalidInputError(
            f"parameter {param.number} ({param.name}): a masked array; pass a.filled(...)")
    if isinstance(value, np.ndarray):
        return value if type(value) is np.ndarray else np.asarray(value)
    if isinstance(value, (bool, int, float, list, tuple)):
        return _convert(value, param)
    if hasattr(value, "__array__"):
        return np.asarray(value)
    raise TypeError(
        f"parameter {param.number} ({param.name}): expected a numpy.ndarray (or a number, list "
        f"or array-like), got {type(value).__name__}")


def _convert(value: Any, param: Param) -> np.ndarray:
    """A Python number or list as `param`'s dtype; an error where that would change its kind
    (a float to an integer) or its value (an integer out of range)."""
    def bad(why: str) -> InvalidInputError:
        return InvalidInputError(
            f"parameter {param.number} ({param.name}): {value!r} is not a {param.type} value: {why}")
    try:
        src = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise bad(str(e)) from None
    # ml_dtypes' types report kind "V", so integral-ness is by name for int4/uint4
    integral = param.dtype.kind in "iub" or param.dtype.name in ("int4", "uint4")
    if src.dtype.kind not in ("iub" if integral else "iubf"):
        raise bad(f"{src.dtype} values do not convert to {param.dtype} without changing kind "
                  "(pass an array of that dtype)")
    try:
        out = src.astype(param.dtype)
    except (ValueError, OverflowError, TypeError) as e:
        raise bad(str(e)) from None
    if integral and not np.array_equal(out.astype(np.int64), src.astype(np.int64)):
        raise bad(f"out of {param.dtype}'s range")
    return out


def signature_of(native: Any) -> Tuple[Tuple[Param, ...], Tuple[Output, ...]]:
    """A native model's parameters and outputs."""
    sig = native.signature()
    params = tuple(
        Param(i, p["name"], numpy_dtype(p["dtype"]), tuple(p["shape"]), p["role"],
              p["type"], p.get("output"))
        for i, p in enumerate(sig["params"]))
    outputs = tuple(
        Output(k, numpy_dtype(o["dtype"]), tuple(o["shape"]), o["state"])
        for k, o in enumerate(sig["outputs"]))
    return params, outputs


class _StateSets:
    """What a model on one core and a model on several share: its parameters by role, and
    its state sets — the selected one, created, selected, reset, copied, dropped,
    snapshotted and restored through the native model — and its report."""

    _native: Any
    _state_set: str
    params: Tuple[Param, ...]
    outputs: Tuple[Output, ...]

    def __init__(self, native: Any, *, state_set: str = DEFAULT_STATE_SET,
                 state_values: Optional[Mapping[ParamRef, Any]] = None):
        self._native = native
        self.params, self.outputs = signature_of(native)
        self._state_set = state_set
        self.create_state_set(state_set, state_values)

    @property
    def backend(self) -> str:
        """``sim`` or ``nrt``."""
        return self._native.backend

    @property
    def inputs(self) -> Tuple[Param, ...]:
        """The parameters a call takes, in order."""
        return tuple(p for p in self.params if p.role == "input")

    @property
    def states(self) -> Tuple[Param, ...]:
        """The state parameters (resident, updated in place each step)."""
        return tuple(p for p in self.params if p.role == "state")

    @property
    def weights(self) -> Tuple[Param, ...]:
        """The resident weights (uploaded once at load)."""
        return tuple(p for p in self.params if p.role == "weight")

    @property
    def returned(self) -> Tuple[Output, ...]:
        """The outputs a call returns (those not aliased to state), in order."""
        return tuple(o for o in self.outputs if o.state is None)

    def _state(self, p: ParamRef, op: str) -> Param:
        """State `p`, resolved by the engine's one rule for parameter references."""
        return self.params[self._native.state_number(op, p)]

    @property
    def state_set(self) -> str:
        """The state set calls step."""
        return self._state_set

    def create_state_set(self, name: str, values: Optional[Mapping[ParamRef, Any]] = None, *,
                         select: bool = False) -> None:
        """Creates state set `name`, which must not exist yet: zeros, or `values` by state
        (states not named start at zeros; on several cores each value is the state's
        shape for every core, or has a leading axis of the cores)."""
        states = [(self._state(p, "create_state_set"), v) for p, v in (values or {}).items()]
        pairs = [(q.number, _as_array(v, q)) for q, v in states]
        self._native.create_state_set(name, pairs)
        if select:
            self._state_set = name

    def select_state_set(self, name: str) -> None:
        """Makes calls step state set `name` (which must exist: create it first)."""
        if not self._native.has_state_set(name):
            raise NotFoundError(f"select_state_set: no state set named '{name}'")
        self._state_set = name

    def reset(self, name: Optional[str] = None) -> None:
        """Zeros a state set (default: the selected one), or restores its initial values."""
        self._native.reset(name or self._state_set)

    def copy_state_set(self, src: str, dst: str) -> None:
        """Copies state set `src` into `dst` on the device (creating `dst` if needed)."""
        self._native.copy_state_set(src, dst)

    def drop_state_set(self, name: str) -> None:
        """Frees state set `name`'s device memory."""
        if name == self._state_set:
            raise InvalidInputError(
                f"drop_state_set: '{name}' is the selected state set; select another first")
        self._native.drop_state_set(name)

    def snapshot(self, path: Union[str, os.PathLike], state_set: Optional[str] = None) -> int:
        """Writes every state of a state set to a safetensors file (whole or not at all);
        returns its size in bytes."""
        return self._native.save_state_set(state_set or self._state_set, os.fspath(path))

    def restore(self, path: Union[str, os.PathLike], state_set: Optional[str] = None) -> None:
        """Reads a snapshot into a state set (creating it if needed); the file is checked
        whole before anything is written."""
        self._native.load_state_set(state_set or self._state_set, os.fspath(path))

    # -- what it cost -------------------------------------------------------------------------

    def report(self) -> Dict[str, Any]:
        """Totals since load, with the fields of the CLI's report.json: bytes and transfers
        each way, modelled (or, on libnrt, measured) time, HBM peak and capacity, state and
        weight bytes, per-step figures, and the same steps without state tensors."""
        return json.loads(self._native.report_json())

    def summary(self) -> str:
        """The report as the CLI prints it: with and without state tensors side by side."""
        return self._native.report_text()


class Model(_StateSets):
    """A stateful model on a device: state tensors stay resident, grouped in named state
    sets (one per sequence or conversation); every call steps the selected set.

    Calling the model runs one step: ``model(*inputs)`` takes the input parameters in
    order (or by name as keywords) and returns the outputs not aliased to state, in output
    order, as a tuple of NumPy arrays. The state outputs stay on the device; read them with
    :meth:`read_state`.
    """

    # -- what the model is ------------------------------------------------------------------

    @property
    def device(self) -> str:
        """The device profile's name, or the libnrt in use."""
        return self._native.device

    def __repr__(self) -> str:
        def show(ps):
            return ", ".join(f"{p.name} {p.type}" for p in ps) or "none"
        return (f"<statetensor.Model on {self.backend} ({self.device}): inputs {show(self.inputs)}; "
                f"states {show(self.states)}; {len(self.weights)} weight(s); "
                f"state set '{self._state_set}'>")

    # -- stepping -----------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Tuple[np.ndarray, ...]:
        """One step on the selected state set; returns the non-state outputs in order."""
        arrays = self._bind(args, kwargs)
        out = self._native.execute(self._state_set, arrays)
        return tuple(np.frombuffer(b, dtype=o.dtype).reshape(o.shape)
                     for b, o in zip(out, self.returned))

    def _bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list:
        inputs = self.inputs
        if len(args) > len(inputs):
            raise InvalidInputError(
                f"call: {len(args)} inputs given; the model takes {len(inputs)}: "
                + ", ".join(f"{p.name} {p.type}" for p in inputs))
        values: list = list(args) + [None] * (len(inputs) - len(args))
        given = [i < len(args) for i in range(len(inputs))]
        for key, value in kwargs.items():
            i = self._input_slot(key, inputs)
            if given[i]:
                raise InvalidInputError(f"call: input {inputs[i].name} is given twice")
            values[i], given[i] = value, True
        missing = [p.name for p, g in zip(inputs, given) if not g]
        if missing:
            raise InvalidInputError(
                f"call: missing input(s) {', '.join(missing)}; the model takes "
                + ", ".join(f"{p.name} {p.type}" for p in inputs))
        return [_as_array(v, p) for v, p in zip(values, inputs)]

    def _input_slot(self, key: str, inputs: Sequence[Param]) -> int:
        number = self._native.param_number("call", key)
        for i, p in enumerate(inputs):
            if p.number == number:
                return i
        raise InvalidInputError(
            f"call: '{key}' is not an input; the inputs are {', '.join(p.name for p in inputs)}")

    # -- state --------------------------------------------------------------------------------

    def read_state(self, p: ParamRef, *, state_set: Optional[str] = None) -> np.ndarray:
        """The whole of state `p` (number or name), copied from the device once."""
        q = self._state(p, "read_state")
        b = self._native.read_state(state_set or self._state_set, q.number)
        return np.frombuffer(b, dtype=q.dtype).reshape(q.shape)

    def write_state(self, p: ParamRef, value: Any, *, state_set: Optional[str] = None) -> None:
        """Overwrites the whole of state `p` with `value` (its exact dtype and shape; a
        number or list takes the state's dtype)."""
        q = self._state(p, "write_state")
        self._native.write_state(state_set or self._state_set, q.number, _as_array(value, q))


def load_native(source: Union[str, os.PathLike, bytes], *, name: Optional[str] = None,
                aliases: Optional[Mapping[ParamRef, int]] = None,
                weights: Optional[Mapping[ParamRef, Any]] = None, backend: str = "sim",
                device: str = "inf2",
                names: Optional[Mapping[ParamRef, str]] = None) -> "_native.NativeModel":
    """The native model :func:`load` wraps (the framework front ends wrap it themselves)."""
    return _native.NativeModel.load(*native_load_args(source, name, aliases, weights, names),
                                    backend, device)


def native_load_args(source: Union[str, os.PathLike, bytes], name: Optional[str],
                     aliases: Optional[Mapping[ParamRef, int]],
                     weights: Optional[Mapping[ParamRef, Any]],
                     names: Optional[Mapping[ParamRef, str]]) -> tuple:
    """The arguments both native loads take first: the source (a path, or the bytes of an
    HloModuleProto), the name errors show it by, the alias, weight and name pairs."""
    if isinstance(source, (bytes, bytearray)):
        source, shown = bytes(source), name or "<HloModuleProto bytes>"
    else:
        source = os.fspath(source)
        shown = name or source
    return (source, shown,
            None if aliases is None else list(aliases.items()),
            [(p, v if isinstance(v, np.ndarray) else np.asarray(v))
             for p, v in (weights or {}).items()],
            list((names or {}).items()))


def load(path: Union[str, os.PathLike, bytes], aliases: Optional[Mapping[ParamRef, int]] = None,
         weights: Optional[Mapping[ParamRef, Any]] = None, backend: str = "sim",
         device: str = "inf2", *, names: Optional[Mapping[ParamRef, str]] = None,
         states: Optional[Mapping[ParamRef, Any]] = None,
         state_set: str = DEFAULT_STATE_SET, cores: Optional[int] = None) -> Any:
    """Loads a model and creates its first state set.

    With `cores`, an SPMD model (tensor-parallel, with collectives) is loaded on that many
    cores and a :class:`ShardedModel` is returned; each weight and state value is then the
    parameter's own shape (every core the same) or has a leading axis of `cores` (core k
    its slice k).

    - `path`: an HLO text file, a serialized HloModuleProto (``.pb``), a bundle directory,
      or the bytes of an HloModuleProto.
    - `aliases`: ``{param: output_index}``, replacing the module's own alias map (what
      ``torch_neuronx.trace``'s ``input_output_aliases`` says).
    - `weights`: ``{param: array}``: resident weights, uploaded once.
    - `backend`: ``"sim"`` (the simulator) or ``"nrt"`` (libnrt: hardware, or the emulator
      named by ``$STATETENSOR_LIBNRT``); `device`: ``inf2``, ``trn1``, ``trn2`` or a JSON
      profile file.
    - `names`: ``{param: name}`` overriding parameter names; `states`: initial values of
      the first state set (default zeros); `state_set`: its name.
    """
    if cores is not None:
        from ._sharded import load_sharded
        return load_sharded(path, cores, aliases=aliases, weights=weights, backend=backend,
                            device=device, names=names, states=states, state_set=state_set)
    native = load_native(path, aliases=aliases, weights=weights, backend=backend,
                         device=device, names=names)
    return Model(native, state_set=state_set, state_values=states)
