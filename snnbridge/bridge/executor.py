"""The reference executor: runs any supported NIR graph with :mod:`~snnbridge.bridge.semantics`, batched in torch.

Feed-forward graphs run layer by layer (each stateless node once over all
``T·B`` frames, each neuron node as a loop over ``T``); graphs with recurrent
edges run step by step.  Both orders compute the same values.

``strategy`` selects how a feed-forward graph is evaluated (:data:`~snnbridge.bridge.sparse.STRATEGIES`):
``dense`` (default) is the node-by-node arithmetic every torch adapter shares (dense BLAS/oneDNN kernels);
``fused`` keeps the dense kernels and fuses each neuron's update over time (same values);
``auto`` also replaces a synaptic layer by event-driven additions where its measured input density makes
that cheaper, and ``event`` wherever possible (:mod:`snnbridge.bridge.sparse`).  Event-driven sums add the
same terms in another order, so membranes may differ from ``dense`` in the last bits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import nir
import numpy as np
import torch

from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph, prepare
from snnbridge.bridge.inputs import Inputs
from snnbridge.bridge.recording import Recording
from snnbridge.bridge.sparse import STRATEGIES, CostModel, FastWalk, LayerStats
from snnbridge.bridge.walk import run_graph, spike_valued

__all__ = ["ReferenceExecutor", "run_reference", "spike_valued"]

def initial_state(zeros: torch.Tensor, c: sem.TensorCoefficients, options: sem.NeuronOptions) -> sem.NeuronState:
    """A neuron node's state before step 0 (``[B, *shape]``): :func:`~snnbridge.bridge.semantics.initial_values`."""
    v, i = sem.initial_values(options, zeros)
    return sem.NeuronState(v, i if c.syn_decay is not None else None)


class _Node:
    """One node's constants (cast once) and its step/over-time evaluation."""

    def __init__(self, fg: FlatGraph, name: str, dtype: torch.dtype, device) -> None:
        self.name = name
        self.node = fg.nodes[name]
        self.kind = fg.type_of(name)
        self.shape = fg.in_shapes[name]
        self.reset = fg.node_reset[name]
        self.options = fg.options(name) if self.kind in sem.NEURON_TYPES else None
        self.params = {}
        for p in ("weight", "bias", "scale", "threshold"):
            v = getattr(self.node, p, None)
            if v is not None and isinstance(v, (np.ndarray, float, int)):
                self.params[p] = torch.as_tensor(np.asarray(v, dtype=np.float64), dtype=dtype, device=device)
        if self.kind == "Threshold" and fg.threshold_compare(name) == "inclusive":
            self.params["threshold"] = sem.inclusive_threshold(self.params["threshold"])
        if self.kind == "Affine" and self.params["bias"].dim() == 0:
            self.params["bias"] = self.params["bias"].expand(self.params["weight"].shape[0]).clone()
        self.coeff = None
        if self.kind in sem.NEURON_TYPES:
            self.coeff = sem.TensorCoefficients.of(fg.coefficients(name), dtype, device)
        self.delay = None
        if self.kind == "Delay":
            d = torch.as_tensor(sem.delay_steps(self.node, fg.semantics), device=device)
            self.delay = d.expand(self.shape) if d.dim() == 0 or d.numel() == 1 else d.reshape(self.shape)
        self.dtype, self.device = dtype, device

    @property
    def stateful(self) -> bool:
        return self.coeff is not None or self.delay is not None

    @property
    def neuron(self) -> bool:
        return self.coeff is not None

    def init_state(self, B: int):
        z = torch.zeros((B,) + tuple(self.shape), dtype=self.dtype, device=self.device)
        if self.coeff is not None:
            return initial_state(z, self.coeff, self.options)
        if self.delay is not None:
            depth = int(self.delay.max()) + 1
            return [torch.zeros_like(z) for _ in range(depth)], 0
        return None

    def step(self, x, state):
        """One step on ``x [B, *in]`` → ``(out, state, membrane or None)``."""
        if self.coeff is not None:
            o = self.options
            return sem.neuron_step(state, x, self.coeff, self.reset, timing=o.reset_timing,
                                   zero_target=o.zero_reset_target)
        if self.delay is not None:
            buf, ptr = state
            depth = len(buf)
            buf[ptr] = x
            stacked = torch.stack(buf)  # [depth, B, *shape]
            idx = ((ptr - self.delay) % depth).unsqueeze(0).unsqueeze(0).expand((1,) + tuple(x.shape))
            out = torch.gather(stacked, 0, idx.to(torch.long))[0]
            return out, (buf, (ptr + 1) % depth), None
        return sem.stateless_forward(self.node, x, self.params), None, None

    def over_time(self, x: torch.Tensor, want_v: bool):
        """All steps at once on ``x [T, B, *in]`` → ``(out [T, B, *out], membrane or None)``."""
        T, B = x.shape[:2]
        if not self.stateful:
            y = sem.stateless_forward(self.node, x.reshape((T * B,) + tuple(x.shape[2:])), self.params)
            return y.reshape((T, B) + tuple(y.shape[1:])), None
        state = self.init_state(B)
        outs, vs = [], []
        for t in range(T):
            o, state, v = self.step(x[t], state)
            outs.append(o)
            if want_v and v is not None:
                vs.append(v)
        return torch.stack(outs), (torch.stack(vs) if vs else None)


class ReferenceExecutor:
    """Run a NIR graph with the reference semantics.

    Args:
        graph: a ``nir.NIRGraph``, a path to a ``.nir`` file, or an already prepared :class:`FlatGraph`.
        dt: step in seconds, overriding the graph's metadata (or the documented default).
        reset: ``"zero"``, ``"subtract"`` or ``"none"``, overriding the metadata.
        integration: ``"euler"`` or ``"exact"``, overriding the metadata.
        dtype: ``torch.float64`` (bit-reproducible reference) or ``torch.float32``.
        device: torch device.
        strategy: ``"dense"`` (default: today's arithmetic, shared with the torch adapters), ``"fused"``,
            ``"auto"`` (event-driven where the input is sparse) or ``"event"``; see the module doc.
        chunk: steps per chunk for which ``auto`` measures the density and picks a method (default: all).
        cost: the :class:`~snnbridge.bridge.sparse.CostModel` behind ``auto``'s choices.

    Example:
        >>> ex = ReferenceExecutor("model.nir", dtype=torch.float64)
        >>> rec = ex.run(spikes)          # spikes: [T, B, *input_shape]
        >>> rec.spikes("output").shape    # [T, B, 10]
    """

    name = "reference"

    def __init__(self, graph: nir.NIRGraph | FlatGraph | str | Path, dt: float | None = None,
                 reset: str | None = None, integration: str | None = None,
                 dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu", strategy: str = "dense",
                 chunk: int | None = None, cost: CostModel | None = None) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        if isinstance(graph, (str, Path)):
            from snnbridge.bridge.io import read_graph

            graph = read_graph(graph)
        if isinstance(graph, FlatGraph):
            if dt is not None or reset is not None or integration is not None:
                raise ValueError("pass dt/reset/integration to prepare(), not with a prepared graph")
            self.graph = graph
        else:
            self.graph = prepare(graph, dt=dt, reset=reset, integration=integration)
        self.dtype = dtype
        self.device = torch.device(device)
        self._nodes = {n: _Node(self.graph, n, dtype, self.device) for n in self.graph.order}
        self.strategy = strategy
        self._walk = None if strategy == "dense" else FastWalk(self.graph, self._nodes, strategy, dtype, chunk, cost)

    @property
    def semantics(self) -> sem.Semantics:
        return self.graph.semantics

    def run(self, inputs: Inputs, record: Iterable[str] | None = None, membranes: bool = True) -> Recording:
        """Run ``inputs`` (``[T, B, *shape]`` or a dict by input name) and record every node.

        Args:
            record: node names to keep (default: all).
            membranes: also keep neuron membranes (pre-reset).
        """
        return run_graph(self.graph, self._nodes, inputs, record, membranes, self.dtype, self.device, self.name,
                         layerwise=self._walk)

    @property
    def last_stats(self) -> dict[str, LayerStats]:
        """Per synaptic node, what the last feed-forward run did (methods, densities, operations); empty for
        ``strategy="dense"`` and recurrent graphs."""
        return dict(self._walk.stats) if self._walk is not None else {}


def run_reference(graph, inputs: Inputs, dtype: torch.dtype = torch.float64, **kwargs) -> Recording:
    """One-call form: ``ReferenceExecutor(graph, dtype=dtype, **kwargs).run(inputs)``."""
    return ReferenceExecutor(graph, dtype=dtype, **kwargs).run(inputs)


def load(path: str | Path, dt: float | None = None, reset: str | None = None,
         integration: str | None = None) -> ReferenceExecutor:
    """Import a ``.nir`` file into the reference executor (metadata or documented defaults, overridable)."""
    from snnbridge.bridge.io import read_graph

    return ReferenceExecutor(read_graph(path), dt=dt, reset=reset, integration=integration)
