"""Native SpikingJelly models in and out: :func:`from_native`, :func:`run_native`, :func:`to_native`
(``spikingjelly.activation_based``, read from spikingjelly 2.0.0's ``_ops/lif/reference.py``, ``_ops/reset.py``,
``neuron/base_node.py``).

What each SpikingJelly neuron computes per step ``t`` (``h`` is the charged membrane its surrogate compares,
``v`` the state carried into ``t+1``), and the NIR node that steps so (pinned constants ``decay``/``gain``/``bias``
at ``coefficients_dt = dt`` in the node metadata, see :mod:`snnbridge.bridge.semantics`):

* ``IFNode``: ``h = v + x`` → ``IF(r=1)`` (bit-identical to the reference's ``1·v + (1·x + 0)``).
* ``LIFNode(tau, decay_input=True)``: ``h = v + (x - (v - v_r))/tau`` → ``LIF(tau=tau·dt, r=1, v_leak=v_r)``,
  pinned ``decay = 1 - 1/tau``, ``gain = 1/tau``, ``bias = v_r/tau``.
* ``LIFNode(tau, decay_input=False)``: ``h = v - (v - v_r)/tau + x`` → ``LIF(tau=tau·dt, r=tau, v_leak=v_r)``,
  pinned ``decay = 1 - 1/tau``, ``gain = 1``, ``bias = v_r/tau``.

``v_r`` is the neuron's ``v_reset`` (hard reset, node ``reset = "zero"``) or 0 for ``v_reset=None`` (soft reset,
``reset = "subtract"``).  Spike ``s = surrogate(h - v_threshold)``: the forward of every stock SpikingJelly
surrogate is ``x >= 0``, which is the reference's ``inclusive`` compare (``h - θ`` rounds to 0 only when
``h = θ``), written as the node's ``threshold`` key; a surrogate whose forward is ``x > 0`` gives ``strict``; any
other forward is refused.  Reset in the same step (``reset_timing = immediate``): hard ``v = s·v_r + (1 - s)·h``
(= ``v_r`` or ``h`` exactly for ``s`` in {0, 1}), soft ``v = h - s·θ``.  Initial state (``BaseNode``'s memory):
``v_reset`` for a hard reset (node ``v_init``), 0 for a soft one.  ``detach_reset``, the surrogate's gradient and
the step mode (``'s'``: ``[B, ...]`` per call, ``'m'``: ``[T, B, ...]`` per call) do not change forward values.

The LIF charge is a different rounding of the reference's ``decay·v + (gain·x + bias)``: membranes agree to a few
ulp (~1e-16 in float64), spikes are identical unless a membrane lies within those ulp of the threshold.

Layers: ``nn.Sequential`` (nested too) and ``layer.SeqToANNContainer`` of ``layer.Linear``/``Conv1d``/``Conv2d``/
``AvgPool2d``/``Flatten``/``Dropout`` (eval) and the plain torch layers of the same names (plus ``nn.Identity``);
in multi-step mode a plain ``nn.Conv*``/``nn.AvgPool2d``/``nn.Flatten`` outside a ``SeqToANNContainer`` would act
on ``[T, B, ...]`` and is refused.  Every SpikingJelly module must share one ``step_mode``.  Refused by name
(:class:`~snnbridge.errors.NativeModelError`, layer path and class): any other neuron (``ParametricLIFNode``,
``CUBALIFNode``, ``Simple*Node``, ...), a tensor-valued ``v_threshold``/``v_reset``, a neuron with an explicit
precision profile, ``LIFNode`` with ``tau <= 1``, a surrogate whose forward is not a Heaviside step, and every other
layer.  Node names are the layer paths with ``.`` → ``_``; the graph's ends are ``input`` and ``output``.
"""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Sequence

import nir
import numpy as np
import torch
from torch import nn

from snnbridge.backends.native_args import export_chain, native_dt, native_graph, native_input_shape
from snnbridge.backends.norse_native import _Layer, _stateless_node
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph
from snnbridge.bridge.metadata import make_metadata
from snnbridge.bridge.recording import Recording
from snnbridge.errors import NativeModelError

_TOL = 1e-12
"""Relative tolerance when matching a graph's constants to a SpikingJelly charge form in :func:`to_native`
(SpikingJelly divides by ``tau`` where the reference multiplies by ``1 - decay``: a few ulp)."""


def _sj():
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    return neuron, layer, surrogate, functional


def _err(la: _Layer, message: str) -> NativeModelError:
    return NativeModelError(message, layer=la.path or "<root>", cls=la.cls)


def _neuron_types() -> tuple[type, ...]:
    neuron = _sj()[0]
    return neuron.IFNode, neuron.LIFNode


def _is_neuron(mod: nn.Module) -> bool:
    return type(mod) in _neuron_types()


def _stateless_types() -> dict[type, type]:
    """SpikingJelly wrapper or plain torch layer → the plain torch class whose forward it runs per sample."""
    _, layer, _, _ = _sj()
    plain = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.AvgPool2d, nn.Flatten)
    out: dict[type, type] = {c: c for c in plain}
    for c in plain:
        wrapped = getattr(layer, c.__name__, None)
        if wrapped is not None:
            out[wrapped] = c
    return out


# --------------------------------------------------------------------------- the chain


def _leaves(module: nn.Module) -> tuple[list[_Layer], str]:
    """The chain's layers in execution order (dropped layers excluded) and its step mode (``'s'`` or ``'m'``)."""
    neuron, layer, _, _ = _sj()
    root = _Layer("", module)
    if not isinstance(module, nn.Sequential):
        raise _err(root, "is not a torch.nn.Sequential (nor a module made by to_native); only chains of layers "
                         "are imported")
    out: list[tuple[_Layer, bool]] = []  # (layer, inside a SeqToANNContainer)
    modes: dict[str, str] = {}
    stateless = _stateless_types()
    drops = (nn.Identity, nn.Dropout, layer.Dropout)

    def walk(mod: nn.Module, prefix: str, seq2ann: bool) -> None:
        for key, child in mod.named_children():
            la = _Layer(f"{prefix}{key}", child)
            if type(child) is layer.SeqToANNContainer:
                walk(child, la.path + ".", True)
            elif type(child) is nn.Sequential:
                walk(child, la.path + ".", seq2ann)
            elif _is_neuron(child):
                if seq2ann:
                    raise _err(la, "is a neuron inside a SeqToANNContainer (which merges time into the batch)")
                modes[la.path] = child.step_mode
                out.append((la, seq2ann))
            elif type(child) in stateless or type(child) in drops:
                if type(child) in drops:
                    if child.training and float(getattr(child, "p", 0.0)) > 0:
                        raise _err(la, "is in training mode (random); call model.eval() first")
                    continue
                if hasattr(child, "step_mode") and not seq2ann:
                    modes[la.path] = child.step_mode
                out.append((la, seq2ann))
            elif isinstance(child, neuron.BaseNode) or isinstance(child, nn.Sequential):
                raise _err(la, "is not supported by from_native (supported neurons: spikingjelly IFNode, LIFNode; "
                               "containers: nn.Sequential, SeqToANNContainer)")
            else:
                raise _err(la, "is not supported by from_native (supported: spikingjelly neuron.IFNode, "
                               "neuron.LIFNode, layer.Linear/Conv1d/Conv2d/AvgPool2d/Flatten/Dropout, the torch "
                               "layers of those names, nn.Identity, nn.Sequential, layer.SeqToANNContainer)")

    walk(module, "", False)
    kinds = Counter(modes.values())
    if len(kinds) > 1:
        odd = next(p for p, m in modes.items() if m == kinds.most_common()[-1][0])
        la = next(la for la, _ in out if la.path == odd)
        raise _err(la, f"has step_mode '{modes[odd]}' while the other SpikingJelly layers have "
                       f"'{kinds.most_common(1)[0][0]}'; set one step mode (functional.set_step_mode)")
    mode = kinds.most_common(1)[0][0] if kinds else "s"
    if mode not in ("s", "m"):
        raise _err(root, f"step_mode {mode!r} is neither 's' nor 'm'")
    if mode == "m":
        for la, seq2ann in out:
            if not seq2ann and type(la.module) in (nn.Conv1d, nn.Conv2d, nn.AvgPool2d, nn.Flatten):
                raise _err(la, "is a plain torch layer in a multi-step model: it would act on [T, B, ...] as if T "
                               "were the batch; use spikingjelly.activation_based.layer (step_mode='m') or wrap it "
                               "in layer.SeqToANNContainer")
    layers = [la for la, _ in out]
    names = Counter(la.name for la in layers)
    for la in layers:
        if names[la.name] > 1 or la.name in ("input", "output"):
            raise _err(la, f"its node name '{la.name}' collides with another layer's")
    return layers, mode


# --------------------------------------------------------------------------- neurons

_PROBE = torch.cat([torch.tensor([-1.0, -1e-300, -0.0, 0.0, 1e-300, 1.0], dtype=torch.float64),
                    torch.linspace(-2.0, 2.0, 101, dtype=torch.float64)])


def _compare(la: _Layer) -> str:
    """``inclusive`` when the neuron's surrogate forward is ``x >= 0``, ``strict`` for ``x > 0``; else refused."""
    fn = la.module.surrogate_function
    results = set()
    for dtype in (torch.float64, torch.float32):
        x = _PROBE.to(dtype)
        for grad in (False, True):
            xi = x.clone().requires_grad_(grad)
            try:
                with torch.set_grad_enabled(grad):
                    y = fn(xi)
            except Exception as e:  # noqa: BLE001 - any failure: not a plain step
                raise _err(la, f"its surrogate_function {type(fn).__name__} fails on a probe "
                               f"({type(e).__name__}); it must be a Heaviside step in the forward pass") from None
            y = y.detach().double() if isinstance(y, torch.Tensor) else None
            if y is not None and torch.equal(y, (x >= 0).double()):
                results.add("inclusive")
            elif y is not None and torch.equal(y, (x > 0).double()):
                results.add("strict")
            else:
                results.add("other")
    if len(results) != 1 or "other" in results:
        raise _err(la, f"its surrogate_function {type(fn).__name__}'s forward is not a Heaviside step "
                       f"(x >= 0 or x > 0) in float32 and float64; the reference cannot express it")
    return results.pop()


def _scalar(la: _Layer, field: str, value) -> float | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor) or not isinstance(value, (int, float)):
        raise _err(la, f"'{field}' is a {type(value).__name__}; only a Python float per layer is imported")
    v = float(value)
    if not np.isfinite(v):
        raise _err(la, f"'{field}' is {v}")
    return v


def _neuron_node(la: _Layer, shape: tuple[int, ...], dt: float) -> nir.NIRNode:
    """The NIR node of one ``IFNode`` / ``LIFNode`` over per-sample ``shape`` (see the module docstring)."""
    m = la.module
    neuron = _sj()[0]
    if getattr(m, "_neuron_precision", None) is not None:
        raise _err(la, "has an explicit neuron precision profile (a Triton kernel with its own rounding)")
    thr = _scalar(la, "v_threshold", m.v_threshold)
    vr = _scalar(la, "v_reset", m.v_reset)
    compare = _compare(la)

    def full(v: float) -> np.ndarray:
        return np.full(shape, v, dtype=np.float64)

    meta: dict = {"reset": "subtract" if vr is None else "zero", "threshold": compare}
    if vr is not None:
        meta["v_init"] = full(vr)
    v_reset = full(0.0 if vr is None else vr)
    if type(m) is neuron.IFNode:
        return nir.IF(r=full(1.0), v_threshold=full(thr), v_reset=v_reset, metadata=meta)
    tau = _scalar(la, "tau", m.tau)
    if not tau > 1.0:
        raise _err(la, f"tau={tau:g}: the decay 1 - 1/tau must lie in (0, 1)")
    di = bool(m.decay_input)
    leak = 0.0 if vr is None else vr
    meta.update(decay=full(1.0 - 1.0 / tau), gain=full(1.0 / tau if di else 1.0), bias=full(leak / tau),
                coefficients_dt=float(dt))
    return nir.LIF(tau=full(tau * dt), r=full(1.0 if di else tau), v_leak=full(leak), v_threshold=full(thr),
                   v_reset=v_reset, metadata=meta)


# --------------------------------------------------------------------------- from_native


def _shapes(layers: list[_Layer], input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Every layer's per-sample output shape, from the plain torch forward of each stateless layer on zeros."""
    stateless = _stateless_types()
    shapes: dict[str, tuple[int, ...]] = {}
    shape = tuple(input_shape)
    for la in layers:
        if not _is_neuron(la.module):
            base = stateless[type(la.module)]
            try:
                with torch.no_grad():
                    p = next(la.module.parameters(), None)
                    z = torch.zeros((1,) + shape, dtype=p.dtype if p is not None else torch.float64)
                    shape = tuple(base.forward(la.module, z).shape[1:])
            except Exception as e:  # noqa: BLE001 - a shape the layer cannot take
                raise _err(la, f"cannot take per-sample shape {list(shape)}: {type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''}") from None
        shapes[la.path] = shape
    return shapes


def from_native(module: nn.Module, input_shape: Sequence[int], dt: float = 1e-3) -> nir.NIRGraph:
    """The NIR graph (snnbridge metadata, pinned constants) that steps exactly as the SpikingJelly ``module``.

    Args:
        module: an ``nn.Sequential`` (nested too) of the supported layers, single- or multi-step, or a module built
            by :func:`to_native`.
        input_shape: per-sample input shape (no time, no batch), e.g. ``(784,)`` or ``(2, 34, 34)``.
        dt: the step in seconds written to the graph (SpikingJelly has none: its ``tau`` counts steps, written as
            ``tau·dt`` seconds, the exact constants pinned).

    Raises :class:`NativeModelError` naming the layer path and class for anything it cannot carry over exactly.
    """
    if isinstance(module, SpikingJellyNetwork):
        module = module.net
    input_shape, dt = native_input_shape(input_shape), native_dt(dt)
    layers, mode = _leaves(module)
    shapes = _shapes(layers, input_shape)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.asarray(input_shape)})}
    edges: list[tuple[str, str]] = []
    prev, shape = "input", input_shape
    resets, compares = [], []
    for la in layers:
        out_shape = shapes[la.path]
        if _is_neuron(la.module):
            node = _neuron_node(la, out_shape, dt)
            resets.append(node.metadata["reset"])
            compares.append(node.metadata["threshold"])
        else:
            node = _stateless_node(la, shape, out_shape)
        if node is not None:
            nodes[la.name] = node
            edges.append((prev, la.name))
            prev = la.name
        shape = out_shape
    nodes["output"] = nir.Output(output_type={"output": np.asarray(shape)})
    edges.append((prev, "output"))
    reset = Counter(resets).most_common(1)[0][0] if resets else "zero"
    compare = Counter(compares).most_common(1)[0][0] if compares else "strict"
    from importlib.metadata import version

    sj_version = version("spikingjelly")

    meta = make_metadata(sem.Semantics(dt=dt, reset=reset, integration="euler", threshold=compare),
                         native=f"spikingjelly {sj_version} {type(module).__name__} step_mode={mode}")
    return native_graph(nodes, edges, meta)


# --------------------------------------------------------------------------- run_native


def run_native(module: nn.Module, inputs, dtype: torch.dtype = torch.float64, dt: float = 1e-3) -> Recording:
    """Run the SpikingJelly ``module`` as SpikingJelly runs it on ``inputs`` ``[T, B, *input_shape]``.

    A ``dtype`` copy in ``eval`` mode with fresh state (``functional.reset_net``) is called once per step
    (``step_mode='s'``) or once on the whole ``[T, B, ...]`` (``'m'``); the user's module is not changed.  Every
    neuron's spikes (``bool [T, B, *shape]``) are recorded with forward hooks, keyed by the node names
    :func:`from_native` gives, plus ``"output"``.  ``dt`` (s) labels the recording only.
    """
    from snnbridge.bridge.graph import prepare
    from snnbridge.bridge.walk import spike_valued

    functional = _sj()[3]
    x = torch.as_tensor(inputs)
    if x.dim() < 3:
        raise NativeModelError(f"inputs must be [T, B, *input_shape], got shape {list(x.shape)}")
    x = x.to(dtype)
    src = module.net if isinstance(module, SpikingJellyNetwork) else module
    graph = from_native(src, tuple(x.shape[2:]), dt=dt)
    fg = prepare(graph)
    flags = spike_valued(fg)
    net = _copy(src).to(dtype).eval()
    layers, mode = _leaves(net)
    functional.reset_net(net)
    traces: dict[str, list] = {}
    handles = []
    for la in layers:
        if _is_neuron(la.module):
            def hook(m, args, out, name=la.name):
                traces.setdefault(name, []).append(out.detach())
            handles.append(la.module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            if mode == "m":
                out = net(x)
            else:
                out = torch.stack([net(x[t]) for t in range(x.shape[0])])
    finally:
        for h in handles:
            h.remove()
    outputs: dict[str, torch.Tensor] = {}
    for name, ys in traces.items():
        y = ys[0] if mode == "m" else torch.stack(ys)
        outputs[name] = y > 0.5
    outputs["output"] = out > 0.5 if flags.get("output") else out
    return Recording(outputs, {}, {n: fg.type_of(n) for n in fg.order}, fg.semantics.dt, "spikingjelly-native",
                     list(fg.order))


def _copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` (neuron state tensors that carry autograd history are copied detached; the
    original keeps them)."""
    saved: list[tuple[dict, str, torch.Tensor]] = []
    for mod in module.modules():
        for store in (mod.__dict__, getattr(mod, "_memories", None)):
            if not isinstance(store, dict):
                continue
            for k, v in list(store.items()):
                if isinstance(v, torch.Tensor) and v.grad_fn is not None:
                    saved.append((store, k, v))
                    store[k] = v.detach()
    try:
        return copy.deepcopy(module)
    finally:
        for store, k, v in saved:
            store[k] = v


# --------------------------------------------------------------------------- to_native


class SpikingJellyNetwork(nn.Module):
    """A NIR chain as real SpikingJelly layers (what :func:`to_native` returns).

    ``net`` is an ``nn.Sequential`` of ``layer.Linear``/``Conv1d``/``Conv2d``/``AvgPool2d``/``Flatten`` and
    ``neuron.IFNode``/``LIFNode`` in ``step_mode`` (keys: the node names, ``.`` → ``_``); every weight requires
    grad.  ``forward(x [T, B, *input_shape]) -> [T, B, *output_shape]`` resets the neurons first
    (``functional.reset_net``).  ``net`` alone is an ordinary SpikingJelly model (reset it yourself between
    sequences).  :meth:`to_nir` writes the current weights back (:func:`from_native` of ``net``).
    """

    def __init__(self, net: nn.Sequential, input_shape: tuple[int, ...], dt: float, step_mode: str) -> None:
        super().__init__()
        self.net = net
        self.input_shape = tuple(input_shape)
        self.dt = float(dt)
        self.step_mode = step_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        functional = _sj()[3]
        functional.reset_net(self.net)
        if self.step_mode == "m":
            return self.net(x)
        return torch.stack([self.net(x[t]) for t in range(x.shape[0])])

    def to_nir(self) -> nir.NIRGraph:
        """The graph of ``net`` with its current weights (see :func:`from_native`)."""
        return from_native(self.net, self.input_shape, dt=self.dt)


def _close(a: np.ndarray, b: float) -> bool:
    return bool(np.all(np.abs(np.asarray(a, dtype=np.float64) - b) <= _TOL * max(abs(b), 1e-300)))


def _sj_neuron(fg: FlatGraph, name: str, step_mode: str) -> nn.Module:
    """``IFNode``/``LIFNode`` stepping as node ``name``, or :class:`NativeModelError` naming the node and why."""
    from snnbridge.backends.spikingjelly_backend import strict_surrogate_class

    neuron, _, surrogate, _ = _sj()
    kind = fg.type_of(name)

    def refuse(why: str) -> NativeModelError:
        return NativeModelError(f"to_native: {why}", layer=name, cls=kind)

    if kind not in ("IF", "LIF"):
        raise refuse("only IF and LIF nodes become SpikingJelly IFNode / LIFNode")
    c = fg.coefficients(name)
    opts = fg.options(name)
    if opts.reset_timing != "immediate":
        raise refuse(f"reset timing '{opts.reset_timing}' (SpikingJelly resets in the step that fired)")
    reset = fg.node_reset[name]
    if reset == "none":
        raise refuse("reset 'none' (SpikingJelly's neurons always reset)")
    values = {}
    for field in ("decay", "threshold") + (("v_reset",) if reset == "zero" else ()):
        a = np.unique(np.asarray(getattr(c, field), dtype=np.float64))
        if a.size != 1:
            raise refuse(f"'{field}' differs between neurons (SpikingJelly takes one Python float per layer)")
        values[field] = float(a[0])
    vr = values.get("v_reset") if reset == "zero" else None
    zero = torch.zeros((1,) + tuple(fg.in_shapes[name]), dtype=torch.float64)
    v0, _ = sem.initial_values(opts, zero)
    if not torch.all(v0 == (0.0 if vr is None else vr)):
        raise refuse(f"v_init differs from SpikingJelly's initial membrane ({'v_reset' if vr is not None else '0'})")
    sg = surrogate.Sigmoid() if c.inclusive else strict_surrogate_class()()
    gain, bias, d = np.asarray(c.gain), np.asarray(c.bias), values["decay"]
    leak = 0.0 if vr is None else vr
    if kind == "IF" or d == 1.0:
        if not (np.all(gain == 1.0) and np.all(bias == 0.0)):
            raise refuse("IFNode integrates v + x: the node's gain must be 1 and bias 0")
        return neuron.IFNode(v_threshold=values["threshold"], v_reset=vr, surrogate_function=sg,
                             step_mode=step_mode)
    if not 0.0 < d < 1.0:
        raise refuse(f"decay {d:g} is outside (0, 1) (LIFNode needs tau > 1 step)")
    tau = 1.0 / (1.0 - d)
    if _close(gain, 1.0 - d):
        di = True
    elif np.all(gain == 1.0):
        di = False
    else:
        raise refuse("its gain is neither 1 (decay_input=False) nor 1 - decay (decay_input=True)")
    if not _close(bias, leak * (1.0 - d)):
        raise refuse(f"its bias is not (1 - decay)·{'v_reset' if vr is not None else '0'} (SpikingJelly leaks "
                     f"towards v_reset, or 0 with a soft reset)")
    return neuron.LIFNode(tau=tau, decay_input=di, v_threshold=values["threshold"], v_reset=vr,
                          surrogate_function=sg, step_mode=step_mode)


def to_native(graph: nir.NIRGraph | FlatGraph | str | Path, dt: float | None = None, step_mode: str = "s",
              dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu", reset: str | None = None,
              integration: str | None = None) -> SpikingJellyNetwork:
    """A trainable :class:`SpikingJellyNetwork` of real SpikingJelly layers realising the chain ``graph``.

    Accepted: a chain ``Input → ... → Output`` of ``Affine``/``Linear``/``Conv1d``/``Conv2d``/``AvgPool2d``/
    ``Flatten`` and ``IF``/``LIF`` nodes whose constants are one SpikingJelly neuron's (one decay, threshold and
    ``v_reset`` per layer; gain 1 or ``1 - decay``; bias ``(1 - decay)·v_reset``; immediate reset; ``v_init`` as
    SpikingJelly starts) — every graph :func:`from_native` writes; anything else is refused naming the node.
    ``step_mode`` ``'s'`` or ``'m'``; ``dtype`` the parameters' dtype (float64 default, the reference's).
    """
    from snnbridge.backends._torch_graph import torch_layer
    from snnbridge.backends.spikingjelly_backend import SpikingJellyBackend

    _, layer, _, _ = _sj()
    if step_mode not in ("s", "m"):
        raise NativeModelError(f"step_mode must be 's' or 'm', got {step_mode!r}")
    fg = export_chain(SpikingJellyBackend(), graph, dt, reset, integration, dtype)
    device = torch.device(device)
    mods: dict[str, nn.Module] = {}
    for name in fg.order:
        kind = fg.type_of(name)
        if len(fg.preds[name]) > 1 or sum(name in fg.preds[n] for n in fg.order) > 1:
            raise NativeModelError("to_native: the graph branches here (only chains become nn.Sequential)",
                                   layer=name, cls=kind)
        if kind in ("Input", "Output"):
            continue
        if kind in sem.NEURON_TYPES:
            mods[name] = _sj_neuron(fg, name, step_mode)
            continue
        if kind == "Threshold":
            raise NativeModelError("to_native: node type Threshold has no SpikingJelly layer (its neurons integrate)",
                                   layer=name, cls=kind)
        plain = torch_layer(fg, name, dtype, device)
        if type(plain) is nn.Linear:
            new: nn.Module = layer.Linear(plain.in_features, plain.out_features, bias=plain.bias is not None,
                                          step_mode=step_mode)
        elif type(plain) in (nn.Conv1d, nn.Conv2d):
            cls = layer.Conv1d if type(plain) is nn.Conv1d else layer.Conv2d
            new = cls(plain.in_channels, plain.out_channels, plain.kernel_size, stride=plain.stride,
                      padding=plain.padding, dilation=plain.dilation, groups=plain.groups,
                      bias=plain.bias is not None, padding_mode=plain.padding_mode, step_mode=step_mode)
        elif type(plain) is nn.AvgPool2d and plain.divisor_override is None:
            new = layer.AvgPool2d(plain.kernel_size, plain.stride, plain.padding, ceil_mode=plain.ceil_mode,
                                  count_include_pad=plain.count_include_pad, step_mode=step_mode)
        elif type(plain) is nn.Flatten:
            new = layer.Flatten(plain.start_dim, plain.end_dim, step_mode=step_mode)
        else:
            raise NativeModelError(f"to_native: node type {kind} has no SpikingJelly layer here", layer=name,
                                   cls=kind)
        new = new.to(dtype=dtype, device=device)
        with torch.no_grad():
            for pname, p in plain.named_parameters():
                getattr(new, pname).copy_(p)
        mods[name] = new.requires_grad_(True)
    net = nn.Sequential()
    for name, mod in mods.items():
        net.add_module(name.replace(".", "_"), mod)
    net.to(device)
    return SpikingJellyNetwork(net, tuple(fg.out_shapes[fg.inputs[0]]),
                               float(fg.semantics.dt), step_mode)
