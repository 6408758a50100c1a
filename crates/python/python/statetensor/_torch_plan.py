"""How torch-neuronx numbers a traced module's parameters and which are state: plain Python,
so it is tested without torch-xla (on artifacts tools/gen_torch_fixtures.py wrote with it).

torch-xla numbers the HLO's parameters in the order it met the tensors while tracing. Before
the compiler, torch-neuronx renumbers them: the example inputs first (in call order), then the
state tensors in the order of ``input_output_aliases``, then every other parameter — module
parameters, buffers, and constants torch-xla lifted into parameters — in torch-xla's order.
statetensor keeps the HLO's own numbers (so nothing is rewritten) and names each parameter
``p{k}`` after its torch-neuronx number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence, Tuple


@dataclass(frozen=True)
class TracedParam:
    """One HLO parameter of a traced module: its number in the HLO, what it was (an example
    ``input``, a module ``parameter`` or ``buffer``, a lifted ``constant``), and which
    (the example input's position, or the module's name for the tensor)."""

    number: int
    kind: str
    index: int = -1
    name: str = ""


@dataclass(frozen=True)
class Plan:
    """The roles of a traced module's HLO parameters."""

    #: HLO parameter numbers in torch-neuronx's order (``order[k]`` is its ``p{k}``)
    order: Tuple[int, ...]
    #: for each example input, its HLO parameter (``None``: the graph does not read it)
    inputs: Tuple[object, ...]
    #: (HLO parameter, output index) of each state, in ``input_output_aliases`` order
    states: Tuple[Tuple[int, int], ...]
    #: HLO parameters that are resident weights (module parameters, buffers, constants)
    weights: Tuple[int, ...]

    def names(self) -> Dict[int, str]:
        """``{hlo_parameter: "p{k}"}``: torch-neuronx's name for each parameter."""
        return {number: f"p{k}" for k, number in enumerate(self.order)}


def plan(params: Sequence[TracedParam], n_inputs: int,
         aliases: Sequence[Tuple[str, int]]) -> Plan:
    """The plan for `params` (every HLO parameter, once) of a module traced with `n_inputs`
    example inputs and ``input_output_aliases`` given as ``(tensor name, output)`` pairs, in
    their order. A state must be a module parameter or buffer the graph reads."""
    numbers = sorted(p.number for p in params)
    if numbers != list(range(len(params))):
        raise ValueError(f"the traced parameters are numbered {numbers}; expected 0..{len(params) - 1}")
    by_name = {p.name: p for p in params if p.kind in ("parameter", "buffer")}
    inputs: List[object] = [None] * n_inputs
    for p in params:
        if p.kind == "input":
            if not 0 <= p.index < n_inputs:
                raise ValueError(f"parameter {p.number} is example input {p.index}; there are {n_inputs}")
            inputs[p.index] = p.number
    states: List[Tuple[int, int]] = []
    for name, output in aliases:
        p = by_name.get(name)
        if p is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise ValueError(
                f"input_output_aliases: the module tensor '{name}' is not read by the traced "
                f"graph (or is not a module parameter or buffer); those it reads are {known}")
        if any(number == p.number for number, _ in states):
            raise ValueError(f"input_output_aliases: '{name}' is given twice")
        states.append((p.number, int(output)))
    state_numbers = {number for number, _ in states}
    rest = [p.number for p in sorted(params, key=lambda p: p.number)
            if p.kind != "input" and p.number not in state_numbers]
    order = tuple([n for n in inputs if n is not None] + [n for n, _ in states] + rest)
    return Plan(order=order, inputs=tuple(inputs), states=tuple(states), weights=tuple(rest))


def params_from_json(entries: Sequence[Mapping]) -> List[TracedParam]:
    """`TracedParam`s from their JSON form (a generated artifact's ``trace.json``)."""
    return [TracedParam(int(e["number"]), e["kind"], int(e.get("index", -1)), e.get("name", ""))
            for e in entries]
