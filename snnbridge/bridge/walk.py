"""The graph walk: evaluate a prepared graph node by node in the reference's order, whoever computes the nodes.

The reference executor and the torch-based adapters (snnTorch, Norse) share this
walk and differ only in the per-node runners they hand it.  Feed-forward graphs
run layer by layer (each node once over all ``T`` steps), graphs with recurrent
edges step by step; both orders follow :mod:`snnbridge.bridge.semantics`
(zero delay along feed-forward edges, one step on recurrent edges, fan-in summed).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Protocol

import torch

from snnbridge.bridge import limits
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph
from snnbridge.bridge.inputs import Inputs, as_input_tensors, is_binary
from snnbridge.bridge.recording import Recording

_PASS_SPIKES = ("Output", "Input", "Flatten", "Delay")


class NodeRunner(Protocol):
    """What the walk needs of one node: ``neuron`` (has a membrane), ``init_state``, ``step``, ``over_time``."""

    neuron: bool

    def init_state(self, batch: int) -> Any: ...

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
        """One step on ``[B, *in]``: ``(output, new state, pre-reset membrane or None)``."""

    def over_time(self, x: torch.Tensor, want_v: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """All steps on ``[T, B, *in]``: ``(output [T, B, *out], membrane or None)``."""


def spike_valued(fg: FlatGraph, input_is_spikes: Mapping[str, bool] | None = None) -> dict[str, bool]:
    """Which nodes emit 0/1 spikes: spiking neurons, Threshold, and pass-through nodes fed by one of them."""
    flags: dict[str, bool] = {}
    for name in fg.order:
        kind = fg.type_of(name)
        if name in fg.inputs:
            flags[name] = bool((input_is_spikes or {}).get(name, False))
        elif kind in sem.SPIKING_TYPES:
            flags[name] = True
        elif kind in _PASS_SPIKES:
            ps = fg.preds[name]
            flags[name] = len(ps) == 1 and flags.get(ps[0], False)
        else:
            flags[name] = False
    return flags


def _spike_flags(fg: FlatGraph, xs: dict[str, torch.Tensor], keep: set[str]) -> dict[str, bool]:
    """Spike-valued flags; the inputs are scanned for 0/1 values only when a kept node depends on it."""
    lo = spike_valued(fg, {k: False for k in xs})
    hi = spike_valued(fg, {k: True for k in xs})
    if not any(lo[n] != hi[n] for n in keep):
        return lo
    return spike_valued(fg, {k: is_binary(v) for k, v in xs.items()})


def add_all(xs: list[torch.Tensor]) -> torch.Tensor:
    """Fan-in: the sum of the incoming values, left to right (the order every backend uses)."""
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def run_graph(fg: FlatGraph, runners: Mapping[str, NodeRunner], inputs: Inputs, record: Iterable[str] | None,
              membranes: bool, dtype: torch.dtype, device: torch.device | str, backend: str,
              layerwise: Callable | None = None) -> Recording:
    """Check ``inputs`` ``[T, B, *shape]``, walk the graph with ``runners`` and return the :class:`Recording`.

    ``record`` limits the kept nodes (default: all); ``membranes`` keeps neuron membranes too.
    ``layerwise`` replaces the layer-by-layer walk of feed-forward graphs (same signature as
    :func:`_layerwise`; the reference executor's event-driven walk, :mod:`snnbridge.bridge.sparse`).
    """
    record = None if record is None else list(record)
    limits.check_run_inputs(fg, inputs, dtype, membranes, record, backend)  # before anything is allocated
    xs = as_input_tensors(fg, inputs, dtype, device)
    keep = set(fg.order) if record is None else set(record)
    missing = keep - set(fg.order)
    if missing:
        raise KeyError(f"cannot record unknown node(s) {sorted(missing)}")
    flags = _spike_flags(fg, xs, keep)
    with torch.no_grad():
        if fg.is_recurrent:
            outs, mems = _stepwise(fg, runners, xs, keep, membranes, dtype, device)
        else:
            outs, mems = (layerwise or _layerwise)(fg, runners, xs, keep, membranes)
    outs = {k: (v > 0.5 if flags[k] and v.dtype != torch.bool else v) for k, v in outs.items()}
    return Recording(outs, mems, {n: fg.type_of(n) for n in fg.order}, fg.semantics.dt, backend, list(fg.order))


def _layerwise(fg, runners, xs, keep, membranes):
    consumers = {n: 0 for n in fg.order}
    for n in fg.order:
        for p in fg.preds[n]:
            consumers[p] += 1
    live: dict[str, torch.Tensor] = {}
    outs, mems = {}, {}
    for name in fg.order:
        x = xs[name] if name in fg.inputs else add_all([live[p] for p in fg.preds[name]])
        y, v = runners[name].over_time(x, membranes and name in keep)
        live[name] = y
        for p in fg.preds[name]:
            consumers[p] -= 1
            if consumers[p] == 0 and p not in keep:
                del live[p]
        if name in keep:
            outs[name] = y
            if v is not None:
                mems[name] = v
    return outs, mems


def _stepwise(fg, runners, xs, keep, membranes, dtype, device):
    T, B = next(iter(xs.values())).shape[:2]
    states = {n: runners[n].init_state(B) for n in fg.order}
    prev = {a: torch.zeros((B,) + fg.out_shapes[a], dtype=dtype, device=device) for a, _ in fg.recurrent}
    outs: dict[str, list] = {n: [] for n in fg.order if n in keep}
    mems: dict[str, list] = {n: [] for n in outs if membranes and runners[n].neuron}
    for t in range(T):
        cur: dict[str, torch.Tensor] = {}
        for name in fg.order:
            if name in fg.inputs:
                x = xs[name][t]
            else:
                x = add_all([prev[p] if (p, name) in fg.recurrent else cur[p] for p in fg.preds[name]])
            y, states[name], v = runners[name].step(x, states[name])
            cur[name] = y
            if name in outs:
                outs[name].append(y)
            if name in mems:
                mems[name].append(v)
        for a in prev:
            prev[a] = cur[a]
    return {k: torch.stack(v) for k, v in outs.items()}, {k: torch.stack(v) for k, v in mems.items()}
