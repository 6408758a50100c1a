"""`statetensor.jax.trace`: a JAX step function as a stateful statetensor model.

JAX's way of saying "this argument is state, update it in place" is donation
(``jax.jit(f, donate_argnums=...)``): XLA then aliases each donated argument to an output
of the same type, and that alias map is in the HloModuleProto JAX lowers — which is what
statetensor loads. So::

    model = statetensor.jax.trace(step, params, x, cache, donate_argnums=(2,), weights=(0,))
    (y,) = model(x)            # cache stays on the device, params are resident
    model.read_state("cache")  # the cache after the step

Arguments are numbered as JAX flattens them (each pytree leaf one parameter, in order).
The example values of donated (state) arguments become the state's initial values; those of
``weights`` arguments are uploaded once as resident weights; the model is then called with
the remaining arguments, in order, as pytrees like the example ones.
"""

from __future__ import annotations

import warnings

from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ._model import Model, load_native
from .errors import InvalidInputError

try:
    import jax as _jax
except ImportError as e:  # pragma: no cover - exercised only without JAX
    raise ImportError(
        "statetensor.jax needs JAX: pip install jax (or pip install 'statetensor[jax]')") from e


def _argnums(value: Union[int, Iterable[int], None], n: int, what: str) -> Tuple[int, ...]:
    if value is None:
        return ()
    nums = (value,) if isinstance(value, int) else tuple(value)
    for a in nums:
        if not isinstance(a, int) or not -n <= a < n:
            raise InvalidInputError(
                f"{what}: {a!r} is not an argument number of a function given {n} argument(s)")
    return tuple(sorted({a % n for a in nums}))


def _as_jax_value(value: Any) -> np.ndarray:
    """`value` as JAX would pass it to the jitted function: with JAX's dtype canonicalisation
    (float64 to float32 unless x64 is enabled, Python numbers to 32-bit types)."""
    return np.asarray(_jax.numpy.asarray(value))


def hlo_module_proto(lowered: Any) -> bytes:
    """The serialized HloModuleProto of a `jax.jit(...).lower(...)` result."""
    try:
        return lowered.compiler_ir("hlo").as_serialized_hlo_module_proto()
    except (AttributeError, ValueError, TypeError, NotImplementedError) as e:
        raise RuntimeError(
            "this JAX version does not give the lowered module as HLO "
            f"(lowered.compiler_ir('hlo') failed: {e}); statetensor.jax needs a JAX "
            "that does (0.4.30 and later do)") from e


def _warn_ambiguous_donation(sig: Mapping[str, Any]) -> None:
    """Warns where a donated argument's type is also that of a returned output: XLA ties
    each donated buffer to the first free output of its type, which need not be the updated
    state the function means (donation is buffer reuse, not a state map)."""
    outputs = sig["outputs"]
    for p, prm in enumerate(sig["params"]):
        if prm["role"] != "state":
            continue
        returned = [k for k, o in enumerate(outputs) if o["type"] == prm["type"] and o["state"] is None]
        if returned:
            warnings.warn(
                f"donated argument leaf {p} ({prm['name']}, {prm['type']}) is updated from output "
                f"{prm['output']} (JAX's choice: the first free output of its type), and output(s) "
                f"{returned} of the same type are returned; if one of those is the new state, name "
                "it with aliases={argnum: output_index}", UserWarning, stacklevel=3)


class JaxModel(Model):
    """A :class:`Model` traced from a JAX function: called with the function's non-state,
    non-weight arguments (pytrees, like the example ones), in order."""

    def __init__(self, native, *, call_args: Sequence[int], arg_trees: Sequence[Any],
                 state_values: Mapping[int, Any]):
        super().__init__(native, state_values=state_values)
        self.call_argnums = tuple(call_args)
        self._arg_trees = list(arg_trees)

    def __call__(self, *args: Any, **kwargs: Any) -> Tuple[np.ndarray, ...]:
        if kwargs:
            return super().__call__(*args, **kwargs)
        if len(args) != len(self.call_argnums):
            raise InvalidInputError(
                f"call: {len(args)} argument(s) given; the traced function takes "
                f"{len(self.call_argnums)} here (its arguments {list(self.call_argnums)}: the "
                "ones neither donated nor weights)")
        leaves = []
        for a, arg in zip(self.call_argnums, args):
            flat, tree = _jax.tree_util.tree_flatten(arg)
            if tree != self._arg_trees[a]:
                raise InvalidInputError(
                    f"call: argument {a} has the structure {tree}; the trace took {self._arg_trees[a]}")
            leaves.extend(_as_jax_value(v) for v in flat)
        return super().__call__(*leaves)


def trace(fn: Callable, *example_args: Any, donate_argnums: Union[int, Iterable[int]] = (),
          aliases: Optional[Mapping[int, int]] = None,
          weights: Union[int, Iterable[int], None] = None, backend: str = "sim",
          device: str = "inf2", **load_kw: Any) -> JaxModel:
    """Lowers `fn` with JAX and loads it with its donated arguments as state.

    - `donate_argnums`: the state arguments (JAX's donation alias map: each donated leaf is
      updated in place from the output XLA aliased it to).
    - `aliases`: ``{argnum: output_index}`` (flattened output index) replacing JAX's map;
      each such argument must be a single array.
    - `weights`: argument numbers whose example values are resident weights.
    - `backend`, `device` and other keywords as :func:`statetensor.load`.
    """
    n = len(example_args)
    donated = _argnums(donate_argnums, n, "donate_argnums")
    weight_args = _argnums(weights, n, "weights")
    alias_args = _argnums(list((aliases or {}).keys()), n, "aliases")
    both = set(weight_args) & (set(donated) | set(alias_args))
    if both:
        raise InvalidInputError(f"weights: argument(s) {sorted(both)} are state, not weights")
    trees, firsts, counts = [], [], []
    first = 0
    for a in example_args:
        leaves, tree = _jax.tree_util.tree_flatten(a)
        trees.append(tree)
        firsts.append(first)
        counts.append(len(leaves))
        first += len(leaves)
    lowered = _jax.jit(fn, donate_argnums=donated, keep_unused=True).lower(*example_args)
    proto = hlo_module_proto(lowered)
    flat_aliases: Optional[Dict[int, int]] = None
    if aliases is not None:
        flat_aliases = {}
        for a, out in aliases.items():
            a %= n
            if counts[a] != 1:
                raise InvalidInputError(
                    f"aliases: argument {a} holds {counts[a]} arrays; an alias names one")
            flat_aliases[firsts[a]] = int(out)
    leaves = [_as_jax_value(v) for v in _jax.tree_util.tree_leaves(example_args)]
    weight_values = {p: leaves[p]
                     for a in weight_args for p in range(firsts[a], firsts[a] + counts[a])}
    state_args = alias_args if aliases is not None else donated
    state_values = {p: leaves[p]
                    for a in state_args for p in range(firsts[a], firsts[a] + counts[a])}
    name = getattr(fn, "__name__", "fn")
    native = load_native(proto, name=f"jax.jit({name})", aliases=flat_aliases,
                         weights=weight_values, backend=backend, device=device, **load_kw)
    states = {p for p, prm in enumerate(native.signature()["params"]) if prm["role"] == "state"}
    lost = sorted(set(state_values) - states)
    if lost:
        raise InvalidInputError(
            f"donate_argnums: parameter(s) {lost} were donated but XLA aliased them to no "
            "output (no output has the same shape and dtype); return the updated state, or "
            "name its output with aliases={argnum: output_index}")
    if aliases is None:
        _warn_ambiguous_donation(native.signature())
    call_args = [a for a in range(n) if a not in state_args and a not in weight_args]
    return JaxModel(native, call_args=call_args, arg_trees=trees, state_values=state_values)
