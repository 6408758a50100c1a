"""`statetensor.torch.trace`: what ``torch_neuronx.trace`` does up to the compiler, on the CPU.

::

    neuron_m = statetensor.torch.trace(m, x, input_output_aliases={m.cache[0]: 1})
    y, cache = neuron_m(x)                         # as the traced module returns them
    for c, p in zip(cache, neuron_m.parameters()):
        p.copy_(c)                                 # writes the state on the device

The module is lowered through torch-xla (``LoweringContext``, an HloModuleProto, as
torch-neuronx hands neuronx-cc); the tensors named in ``input_output_aliases`` become state
tensors updated in place from those outputs, and every other module parameter, buffer or
lifted constant a resident weight, uploaded once. Parameters are named ``p{k}`` after
torch-neuronx's numbering (example inputs, then states, then the rest; see ``_torch_plan``).

Calling the traced module returns what the module returns, aliased outputs included, as
torch-neuronx does. Those are read back from the device after the step (a device-to-host
copy of each state, counted in the report); a loop that does not look at them can call
``.step(*inputs)`` instead, which returns only the outputs that are not state.

Needs torch and torch-xla (``pip install 'statetensor[torch]'``; on PyPI torch's x86_64 wheel
is the CUDA build and needs its nvidia packages to import, even on a CPU-only machine — the
README says how).
"""

from __future__ import annotations

import copy
from typing import Any, Iterator, Mapping, Optional, Sequence, Tuple

import ml_dtypes
import numpy as np

from ._model import Model, load_native
from .errors import InvalidInputError
from ._torch_plan import Plan, TracedParam, plan


try:
    import torch
    import torch.utils._pytree as _pytree
except ImportError as e:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "statetensor.torch needs PyTorch and torch-xla: pip install 'statetensor[torch]' "
        "(see the README for a CPU-only machine)") from e


def _xla():
    try:
        import torch_xla
    except ImportError as e:
        raise ImportError(
            "statetensor.torch.trace lowers the module with torch-xla: pip install torch-xla "
            "(the release paired with your torch)") from e
    return torch_xla


def to_numpy(t: Any) -> np.ndarray:
    """A torch tensor (any device) as a NumPy array; bfloat16 as ml_dtypes.bfloat16."""
    if not isinstance(t, torch.Tensor):
        return np.asarray(t)
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.contiguous().numpy()


def to_torch(a: np.ndarray) -> "torch.Tensor":
    """A NumPy array as a torch tensor (bfloat16 from ml_dtypes.bfloat16)."""
    if a.dtype == np.dtype(ml_dtypes.bfloat16):
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


class StateTensor:
    """A state tensor of a traced module, on the device: ``copy_(src)`` writes it (no second
    host copy), ``numpy()`` / ``tensor()`` read it."""

    def __init__(self, model: Model, number: int):
        self._model, self.number = model, number
        self._param = model.params[number]

    @property
    def shape(self) -> "torch.Size":
        return torch.Size(self._param.shape)

    def copy_(self, src: Any) -> "StateTensor":
        """Overwrites the state on the device with `src` (a tensor or array of its type)."""
        self._model.write_state(self.number, to_numpy(src))
        return self

    def numpy(self) -> np.ndarray:
        return self._model.read_state(self.number)

    def tensor(self) -> "torch.Tensor":
        return to_torch(self.numpy())

    def __repr__(self) -> str:
        return f"StateTensor({self._param.name}: {self._param.type}, on {self._model.device})"


class TracedModule:
    """A traced module on a statetensor device: called like the module, with its state
    tensors resident (see the module docs)."""

    def __init__(self, model: Model, plan: Plan, out_spec: Any):
        self.model = model
        self.plan = plan
        self._out_spec = out_spec

    def step(self, *inputs: Any) -> Tuple["torch.Tensor", ...]:
        """One step; returns only the outputs that are not state, in output order."""
        if len(inputs) != len(self.plan.inputs):
            raise InvalidInputError(
                f"call: the traced module takes {len(self.plan.inputs)} input(s), got {len(inputs)}")
        by_number = {n: to_numpy(x) for n, x in zip(self.plan.inputs, inputs) if n is not None}
        arrays = [by_number[p.number] for p in self.model.inputs]
        return tuple(to_torch(a) for a in self.model(*arrays))

    def __call__(self, *inputs: Any) -> Any:
        """One step; returns what the module returns, state outputs read back from the device."""
        returned = iter(self.step(*inputs))
        flat = [StateTensor(self.model, o.state).tensor() if o.state is not None else next(returned)
                for o in self.model.outputs]
        return _pytree.tree_unflatten(flat, self._out_spec)

    def parameters(self) -> Iterator[StateTensor]:
        """The state tensors, in ``input_output_aliases`` order (as torch-neuronx's)."""
        for number, _ in self.plan.states:
            yield StateTensor(self.model, number)

    def report(self) -> dict:
        return self.model.report()

    def summary(self) -> str:
        return self.model.summary()


def _tensor_names(module: "torch.nn.Module") -> dict:
    names = {}
    for name, t in module.named_parameters(remove_duplicate=False):
        names.setdefault(id(t), ("parameter", name))
    for name, t in module.named_buffers(remove_duplicate=False):
        names.setdefault(id(t), ("buffer", name))
    return names


def lower(module: "torch.nn.Module", example_inputs: Sequence["torch.Tensor"]):
    """Lowers `module` on `example_inputs` with torch-xla: ``(HloModuleProto bytes,
    [TracedParam], {hlo_parameter: value}, output tree spec)``.

    Parameters are told apart by their device buffers, taken before the forward pass runs,
    so a buffer the module updates in place (a KV cache written with ``index_copy_``) is
    still recognised as the parameter it started as."""
    torch_xla = _xla()
    xla = torch_xla._XLAC
    dev = torch_xla.device()
    # For the trace: 0-d 0 and 1 stay parameters, not constants; and every tensor gets
    # device data of its own (the device-data cache shares one buffer between equal small
    # tensors, which would make a zero counter buffer indistinguishable from another zero).
    special, cached = xla._get_xla_handle_special_scalars(), xla._get_xla_enable_device_data_cache()
    xla._set_xla_handle_special_scalars(False)
    xla._set_xla_enable_device_data_cache(False)
    try:
        traced = copy.deepcopy(module).to(dev)
        xs = [x.to(dev) for x in example_inputs]
        torch_xla.sync()  # every tensor device data, with a buffer handle
        tensors = ([("input", i, "", x) for i, x in enumerate(xs)]
                   + [("parameter", -1, n, t) for n, t in traced.named_parameters(remove_duplicate=False)]
                   + [("buffer", -1, n, t) for n, t in traced.named_buffers(remove_duplicate=False)])
        by_handle = {}
        handles = xla._get_tensors_handle([t for *_, t in tensors])
        for (kind, index, name, _), handle in zip(tensors, handles):
            by_handle.setdefault(handle, (kind, index, name))
        with torch.no_grad():
            out = traced(*xs)
        flat, spec = _pytree.tree_flatten(out)
        ctx = xla.lowering.LoweringContext("PyLoweringContext")
        ctx.build(flat)
    finally:
        xla._set_xla_handle_special_scalars(special)
        xla._set_xla_enable_device_data_cache(cached)
    proto = ctx.hlo()
    values = {int(k): to_numpy(v) for k, v in ctx.parameter_id_tensor_mapping().items()}
    device_params = ctx.device_parameter_id_tensor_mapping()
    params = []
    for number, handle in zip(device_params.keys(), xla._get_tensors_handle(list(device_params.values()))):
        kind, index, name = by_handle.get(handle, ("constant", -1, ""))
        params.append(TracedParam(int(number), kind, index=index, name=name))
    return proto, sorted(params, key=lambda p: p.number), values, spec


def trace(module: "torch.nn.Module", example_inputs: Any,
          input_output_aliases: Optional[Mapping["torch.Tensor", int]] = None, *,
          backend: str = "sim", device: str = "inf2") -> TracedModule:
    """``torch_neuronx.trace(module, example_inputs, input_output_aliases=...)`` on a
    statetensor device (the simulator by default). `input_output_aliases` maps module
    tensors (parameters or buffers) to the output index that updates them, counting the
    flattened outputs of the module."""
    example = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    names = _tensor_names(module)
    aliases = []
    for t, out in (input_output_aliases or {}).items():
        if id(t) not in names:
            raise ValueError(
                "input_output_aliases: a key is not a parameter or buffer of the module "
                f"(a tensor of shape {tuple(t.shape)})")
        aliases.append((names[id(t)][1], int(out)))
    proto, params, values, spec = lower(module, example)
    try:
        p = plan(params, len(example), aliases)
    except ValueError as e:
        raise InvalidInputError(str(e)) from None
    native = load_native(
        proto, name=f"torch-xla({type(module).__name__})",
        aliases={n: out for n, out in p.states},
        weights={n: values[n] for n in p.weights}, names=p.names(),
        backend=backend, device=device)
    return TracedModule(Model(native, state_values={n: values[n] for n, _ in p.states}), p, spec)
