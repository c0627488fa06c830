"""Shared plumbing of the torch-based adapters (snnTorch, Norse): torch layers for stateless nodes and the run loop.

The graph is walked by :func:`snnbridge.bridge.walk.run_graph`, exactly as the reference executor walks it
(layer by layer for DAGs, step by step when the graph has recurrent edges, see
:mod:`snnbridge.bridge.semantics`), so that every stateless layer sees tensors of
the same shape as in the reference and performs the same floating-point operations.
Only the neuron nodes differ between adapters: each adapter supplies a
:class:`NeuronAdapter` that steps the simulator's own module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterable

import nir
import numpy as np
import torch
from torch import nn

from snnbridge.backends.base import Backend, Simulation
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph
from snnbridge.bridge.inputs import Inputs
from snnbridge.bridge.recording import Recording
from snnbridge.bridge.walk import run_graph


class NodeAdapter(ABC):
    """One graph node on a simulator (a :class:`~snnbridge.bridge.walk.NodeRunner`)."""

    stateful: bool = False
    neuron: bool = False  # has a membrane to record

    def init_state(self, batch: int) -> Any:
        return None

    @abstractmethod
    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
        """One step: ``(output [B, *out], new state, membrane [B, *shape] or None)``."""

    def over_time(self, x: torch.Tensor, want_v: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """All ``T`` steps: ``(output [T, B, *out], membrane [T, B, *shape] or None)``."""
        state = self.init_state(x.shape[1])
        outs, vs = [], []
        for t in range(x.shape[0]):
            y, state, v = self.step(x[t], state)
            outs.append(y)
            if want_v and v is not None:
                vs.append(v)
        return torch.stack(outs), (torch.stack(vs) if vs else None)


class LayerAdapter(NodeAdapter):
    """A stateless node as a torch module; applied once to all ``T·B`` frames when the graph is a DAG."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def step(self, x, state):
        return self.module(x), None, None

    def over_time(self, x, want_v):
        T, B = x.shape[:2]
        y = self.module(x.reshape((T * B,) + tuple(x.shape[2:])))
        return y.reshape((T, B) + tuple(y.shape[1:])), None


class NeuronAdapter(NodeAdapter):
    """A neuron node: ``encode`` is the elementwise input transform (any leading dims), ``cell`` one simulator step."""

    stateful = True
    neuron = True

    @abstractmethod
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """What the simulator module is fed for drive ``x`` (e.g. ``gain·x + bias``)."""

    @abstractmethod
    def cell(self, inp: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any, torch.Tensor]:
        """One simulator step on the encoded input: ``(output, state, pre-reset membrane)``."""

    def step(self, x, state):
        return self.cell(self.encode(x), state)

    def over_time(self, x, want_v):
        inp = self.encode(x)  # elementwise, so identical to encoding each step
        state = self.init_state(x.shape[1])
        outs, vs = [], []
        for t in range(x.shape[0]):
            y, state, v = self.cell(inp[t], state)
            outs.append(y)
            if want_v:
                vs.append(v)
        return torch.stack(outs), (torch.stack(vs) if want_v else None)


class ThresholdAdapter(NeuronAdapter):
    """Base of a NIR ``Threshold`` node realised by a simulator's neuron stepped once from a zero membrane.

    Stateless: no membrane is recorded, ``encode`` is the identity, and over time every ``T·B`` frame goes
    through :meth:`cell` in one call (``[T·B, *shape]``).  Subclasses implement :meth:`cell`.
    """

    neuron = False
    stateful = False

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def over_time(self, x, want_v):
        T, B = x.shape[:2]
        y = self.cell(x.reshape((T * B,) + tuple(x.shape[2:])), None)[0]
        return y.reshape((T, B) + tuple(y.shape[1:])), None


class DelayLayer(nn.Module):
    """NIR ``Delay`` of whole steps as a module, exactly the reference's: ``out[t] = x[t - d]`` (``d =
    round(delay/dt)`` per element, :func:`snnbridge.bridge.semantics.delay_steps`), zeros for ``t < d``.

    :meth:`over_time` (feed-forward graphs): a gather along ``T`` of ``x`` ``[T, B, *shape]`` behind ``max(d)`` zero
    frames; :meth:`step` (recurrent graphs): a ring buffer of ``max(d) + 1`` frames ``[B, *shape]``.  Values are
    copied, never computed: bit-identical, and gradients flow through the copies.  No parameters."""

    def __init__(self, fg: FlatGraph, name: str, dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        shape = tuple(fg.in_shapes[name])
        d = torch.as_tensor(sem.delay_steps(fg.nodes[name], fg.semantics), device=device)
        self.register_buffer("delay", (d.reshape(()) if d.numel() == 1 else d.reshape(shape)).expand(shape).clone())
        self.depth = int(self.delay.max()) + 1 if self.delay.numel() else 1
        self.shape, self.dtype = shape, dtype

    def init_state(self, batch: int) -> tuple[list[torch.Tensor], int]:
        """The ring buffer before step 0 (``depth`` zero frames ``[batch, *shape]``) and its write position."""
        z = torch.zeros((batch,) + self.shape, dtype=self.dtype, device=self.delay.device)
        return [torch.zeros_like(z) for _ in range(self.depth)], 0

    def step(self, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        """One step on ``x`` ``[B, *shape]`` → ``(x of d steps ago, new state)``."""
        buf, ptr = state
        buf = list(buf)
        buf[ptr] = x
        idx = ((ptr - self.delay) % self.depth).unsqueeze(0).unsqueeze(0).expand((1,) + tuple(x.shape))
        out = torch.gather(torch.stack(buf), 0, idx.to(torch.long))[0]
        return out, (buf, (ptr + 1) % self.depth)

    def over_time(self, x: torch.Tensor) -> torch.Tensor:
        """All steps of ``x`` ``[T, B, *shape]`` at once."""
        T = x.shape[0]
        pad = torch.cat([torch.zeros((self.depth - 1,) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device), x])
        t = torch.arange(T, device=x.device).reshape((T, 1) + (1,) * len(self.shape))
        idx = (t + (self.depth - 1) - self.delay).expand(tuple(x.shape))  # [T, B, *shape]
        return torch.gather(pad, 0, idx.to(torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[T, B, *shape]`` delayed (see :meth:`over_time`)."""
        return self.over_time(x)


class DelayAdapter(NodeAdapter):
    """NIR ``Delay`` on the torch-graph backends: a :class:`DelayLayer` stepped over time or step by step."""

    stateful = True

    def __init__(self, fg: FlatGraph, name: str, dtype: torch.dtype, device: torch.device) -> None:
        self.layer = DelayLayer(fg, name, dtype, device)
        self.delay, self.depth, self.shape, self.dtype, self.device = (self.layer.delay, self.layer.depth,
                                                                        self.layer.shape, dtype, device)

    def init_state(self, batch: int) -> tuple[list[torch.Tensor], int]:
        return self.layer.init_state(batch)

    def step(self, x, state):
        out, state = self.layer.step(x, state)
        return out, state, None

    def over_time(self, x, want_v):
        return self.layer.over_time(x), None


# --------------------------------------------------------------------------- stateless layers


class Scale(nn.Module):
    """NIR ``Scale``: ``s ⊙ x`` (torch has no layer for it)."""

    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _t(a, dtype, device) -> torch.Tensor:
    """A copy (never a view of the graph's arrays: training a layer in place must not change the graph)."""
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=device)


def torch_layer(fg: FlatGraph, name: str, dtype: torch.dtype, device: torch.device) -> nn.Module:
    """The ``torch.nn`` layer computing stateless node ``name`` on ``[N, *in_shape]`` exactly as the reference does."""
    node = fg.nodes[name]
    kind = fg.type_of(name)
    if kind in ("Input", "Output"):
        return nn.Identity()
    if kind in ("Affine", "Linear"):
        w = _t(node.weight, dtype, device)
        mod = nn.Linear(w.shape[1], w.shape[0], bias=kind == "Affine", dtype=dtype, device=device)
        mod.weight.data = w
        if kind == "Affine":
            mod.bias.data = _t(node.bias, dtype, device).reshape(-1).expand(w.shape[0]).clone()
        return mod.requires_grad_(False)
    if kind in ("Conv2d", "Conv1d"):
        w = _t(node.weight, dtype, device)
        params = sem.conv2d_params(node) if kind == "Conv2d" else sem.conv1d_params(node)
        cls = nn.Conv2d if kind == "Conv2d" else nn.Conv1d
        bias = getattr(node, "bias", None)
        mod = cls(w.shape[1] * params["groups"], w.shape[0], tuple(w.shape[2:]), bias=bias is not None,
                  dtype=dtype, device=device, **params)
        mod.weight.data = w
        if bias is not None:
            mod.bias.data = _t(bias, dtype, device).reshape(-1).expand(w.shape[0]).clone()
        return mod.requires_grad_(False)
    if kind in ("AvgPool2d", "SumPool2d"):
        k, s, p = sem.pool_params(node)
        return nn.AvgPool2d(k, s, p, count_include_pad=True, divisor_override=1 if kind == "SumPool2d" else None)
    if kind == "Flatten":
        start, end = int(node.start_dim), int(node.end_dim)  # NIR dims exclude the batch
        return nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)
    if kind == "Scale":
        return Scale(_t(node.scale, dtype, device))
    raise ValueError(f"{kind} is not a stateless layer")


def threshold_node(fg: FlatGraph, name: str, dtype: torch.dtype) -> nir.Threshold:
    """Threshold node ``name`` as a strict compare: for an inclusive node the threshold becomes the next float below
    it in ``dtype`` (held exactly in float64), see :func:`snnbridge.bridge.semantics.inclusive_threshold`."""
    node = fg.nodes[name]
    if fg.threshold_compare(name) != "inclusive":
        return node
    thr = torch.as_tensor(np.asarray(node.threshold, dtype=np.float64), dtype=dtype)
    return nir.Threshold(threshold=sem.inclusive_threshold(thr).double().numpy())


# --------------------------------------------------------------------------- the compiled graph


class GraphSimulation(Simulation):
    """A compiled graph: one :class:`NodeAdapter` per node, walked exactly as the reference executor walks it."""

    def __init__(self, backend: str, graph: FlatGraph, dtype: torch.dtype, device: torch.device,
                 adapters: dict[str, NodeAdapter]) -> None:
        self.backend = backend
        self.graph = graph
        self.dtype = dtype
        self.device = device
        self.adapters = adapters

    def run(self, inputs: Inputs, record: Iterable[str] | None = None, membranes: bool = True) -> Recording:
        """Run ``inputs`` ``[T, B, *shape]`` (or a dict by input name); record every node (or ``record``)."""
        return run_graph(self.graph, self.adapters, inputs, record, membranes, self.dtype, self.device, self.backend)


class TorchGraphBackend(Backend):
    """A backend whose neurons are torch modules of a simulator and whose other nodes are torch layers.

    Subclasses name the adapter class for neuron nodes (``neuron_adapter``) and for Threshold nodes
    (``threshold_adapter``), constructed as ``cls(fg, name, dtype, device)`` and ``cls(node, dtype, device)``.
    """

    neuron_adapter: type[NodeAdapter]
    threshold_adapter: type[NodeAdapter]

    def compile(self, graph, dt: float | None = None, reset: str | None = None, integration: str | None = None,
                dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu",
                **options) -> GraphSimulation:
        """Build one adapter per node; raises :class:`UnsupportedNodeError` naming node and field."""
        if options:
            raise TypeError(f"unknown option(s) for backend '{self.name}': {', '.join(options)}")
        fg = self.prepare(graph, dt, reset, integration, dtype)
        device = torch.device(device)
        adapters: dict[str, NodeAdapter] = {}
        for name in fg.order:
            kind = fg.type_of(name)
            if kind in sem.NEURON_TYPES:
                adapters[name] = self.neuron_adapter(fg, name, dtype, device)
            elif kind == "Threshold":
                adapters[name] = self.threshold_adapter(threshold_node(fg, name, dtype), dtype, device)
            elif kind == "Delay":  # only where the backend lists it in supported_nodes (prepare refuses it otherwise)
                adapters[name] = DelayAdapter(fg, name, dtype, device)
            else:
                adapters[name] = LayerAdapter(torch_layer(fg, name, dtype, device))
        return GraphSimulation(self.name, fg, dtype, device, adapters)
