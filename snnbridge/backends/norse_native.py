"""Native Norse models in and out: :func:`from_native`, :func:`run_native`, :func:`to_native` (norse 1.1.0).

What each Norse cell computes per step (read from ``norse/torch/functional``), and the NIR node with pinned
constants (node metadata ``decay``, ``gain``, ``bias``, ``syn_decay``, ``syn_gain`` at ``coefficients_dt``, see
:mod:`snnbridge.bridge.semantics`) that steps exactly so.  ``a = dt·tau_mem_inv`` and ``a_s = dt·tau_syn_inv`` are
taken as Norse computes them (Python ``dt`` times the cell's own parameter, in its own dtype):

* ``LIFBoxCell``: ``v ← v + a·((x + v_leak) - v)``, ``z = H(v - v_th)``, then its ``reset_method``
  (``reset_value`` → zero to ``v_reset``, ``reset_subtract`` → subtract ``v_th``) →
  ``LIF(tau=dt/a, r=1, v_leak, v_threshold, v_reset)``; decay ``1-a``, gain ``a``, bias ``a·v_leak``.
* ``LIFCell``: ``j = i + x``; ``v ← v + a·((v_leak - v) + j)``; ``i ← j - a_s·j``; zero reset to ``v_reset`` →
  ``CubaLIF(tau_mem=dt/a, tau_syn=dt/a_s, r=1, w_in=1/a_s, ...)``.  The reference current is Norse's jumped
  current ``j`` (jump first, the new current drives ``v``, then it decays): syn_decay ``1-a_s``, syn_gain ``1``.
* ``LIFRecurrentCell``: as ``LIFCell`` with ``x = W_in·x + W_rec·z[t-1]`` → ``<name>_in`` (Linear) → ``CubaLIF``
  → ``<name>_rec`` (Linear, the recurrent edge) → back into ``CubaLIF``.
* ``LICell``: as ``LIFCell`` without threshold, output ``v`` → ``CubaLI`` (same constants).
* ``LIBoxCell``: ``v ← v + a·((v_leak - v) + x)``, output ``v`` → ``LI(tau=dt/a, r=1, v_leak)``.
* ``IAFCell``: ``v ← v + x``, zero reset to ``v_reset`` → ``IF(r=1, v_threshold, v_reset)``.

Initial state when none is passed (Norse's ``state_fallback``), kept as node metadata ``v_init``: ``v_leak`` for
``LIFBoxCell``/``LIFCell``/``LICell``/``LIBoxCell``, ``float32(v_leak)`` for ``LIFRecurrentCell`` (it fills a
float32 tensor), ``v_reset`` for ``IAFCell``; the synaptic current starts at 0.  The threshold ``method``/``alpha``
only shape the surrogate gradient (all forward passes are Norse's strict ``heaviside``); ``method="adjoint"`` is
refused.  Norse's Euler form ``v + a·(… - v)`` is a different rounding of the reference's
``(1-a)·v + (a·x + a·v_leak)``: spikes are identical unless a membrane lies within a few ulp of the threshold;
membranes agree to ~1e-15.

Layers: ``SequentialState`` (nested too) of the cells above and ``nn.Linear``, ``nn.Conv1d``/``nn.Conv2d`` (zero
padding mode), ``nn.AvgPool2d`` (``count_include_pad=True``, no ``ceil_mode``/``divisor_override``), ``nn.Flatten``
(not the batch axis), ``nn.Identity``, ``nn.Dropout`` (eval mode); plain ``nn.Sequential`` of stateless layers (a
Norse cell returns ``(output, state)``, which a plain ``nn.Sequential`` cannot pass on).  Node names are the layer
paths with ``.`` → ``_``; the graph's input is ``input``, its output ``output``.  Anything else is refused with a
:class:`~snnbridge.errors.NativeModelError` naming the layer path and class.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from typing import Any, Sequence

import nir
import numpy as np
import torch
from torch import nn

from snnbridge.backends.native_args import native_dt, native_graph, native_input_shape
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph
from snnbridge.bridge.metadata import make_metadata
from snnbridge.bridge.recording import Recording
from snnbridge.errors import NativeModelError, SnnBridgeError

_METHODS = ("super", "heaviside", "triangle", "tanh", "circ", "heavi_erfc")
_PASS = (nn.Identity, nn.Dropout)
ROOT = "<model>"


# --------------------------------------------------------------------------- walking the module


@dataclasses.dataclass
class _Layer:
    path: str  # module path from named_modules()
    module: nn.Module

    @property
    def name(self) -> str:
        return self.path.replace(".", "_")

    @property
    def cls(self) -> str:
        return f"{type(self.module).__module__}.{type(self.module).__qualname__}"


def _norse():
    import norse.torch as norse

    return norse


def _cell_types() -> tuple[type, ...]:
    norse = _norse()
    return (norse.LIFBoxCell, norse.LIFCell, norse.LIFRecurrentCell, norse.LICell, norse.LIBoxCell, norse.IAFCell)


def _is_cell(module: nn.Module) -> bool:
    return type(module) in _cell_types()


def _spiking(module: nn.Module) -> bool:
    norse = _norse()
    return type(module) in (norse.LIFBoxCell, norse.LIFCell, norse.LIFRecurrentCell, norse.IAFCell)


def _err(layer: _Layer | None, message: str) -> NativeModelError:
    if layer is None:
        return NativeModelError(message)
    return NativeModelError(message, layer=layer.path or ROOT, cls=layer.cls)


def _leaves(module: nn.Module) -> list[_Layer]:
    """The model's layers in execution order, checked: supported types, chains only, cells where Norse can run them."""
    norse = _norse()
    root = _Layer("", module)
    if isinstance(module, NorseGraphModule):
        return []
    if not isinstance(module, nn.Sequential):  # SequentialState is an nn.Sequential
        raise _err(root, "is not a norse.torch.SequentialState or torch.nn.Sequential (nor a module made by "
                         "to_native); only chains of layers are imported")
    out: list[_Layer] = []

    def walk(mod: nn.Module, prefix: str, plain: bool) -> None:
        for key, child in mod.named_children():
            layer = _Layer(f"{prefix}{key}", child)
            if isinstance(child, norse.SequentialState):
                if plain:
                    raise _err(layer, "a SequentialState inside a plain nn.Sequential returns (output, state), "
                                      "which the next layer cannot take")
                walk(child, layer.path + ".", False)
            elif isinstance(child, nn.Sequential):
                walk(child, layer.path + ".", True)
            elif _is_cell(child):
                if plain:
                    raise _err(layer, "a Norse cell returns (output, state), which a plain torch.nn.Sequential "
                                      "passes on as a tuple; wrap the layers in norse.torch.SequentialState")
                out.append(layer)
            elif isinstance(child, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.AvgPool2d, nn.Flatten) + _PASS):
                if type(child) not in (nn.Linear, nn.Conv1d, nn.Conv2d, nn.AvgPool2d, nn.Flatten, nn.Identity,
                                       nn.Dropout):
                    raise _err(layer, "is a subclass of a supported torch layer; its forward may differ, so it "
                                      "is not imported")
                out.append(layer)
            else:
                raise _err(layer, "is not supported (supported: LIFBoxCell, LIFCell, LIFRecurrentCell, LICell, "
                                  "LIBoxCell, IAFCell, nn.Linear, nn.Conv1d, nn.Conv2d, nn.AvgPool2d, nn.Flatten, "
                                  "nn.Identity, nn.Dropout, nested SequentialState / nn.Sequential)")

    walk(module, "", not isinstance(module, norse.SequentialState))
    names = Counter(layer.name for layer in out)
    for layer in out:
        if names[layer.name] > 1 or layer.name in ("input", "output"):
            raise _err(layer, f"its node name '{layer.name}' collides with another layer's")
    return out


def _module_dtype(module: nn.Module) -> torch.dtype:
    for t in list(module.parameters()) + list(module.buffers()):
        if t.is_floating_point():
            return t.dtype
    for mod in module.modules():
        p = getattr(mod, "p", None)
        for v in (p if isinstance(p, tuple) else ()):
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                return v.dtype
    return torch.float32


def _probe(module: nn.Module, layers: list[_Layer], input_shape: tuple[int, ...]) -> dict[str, tuple]:
    """Run one step on zeros ``[1, *input_shape]``: every layer's per-sample output shape (by path)."""
    shapes: dict[str, tuple] = {}
    current: list[_Layer] = []
    handles = []
    for layer in layers:
        def pre(mod, args, layer=layer):
            current.append(layer)

        def post(mod, args, out, layer=layer):
            y = out[0] if isinstance(out, tuple) else out
            shapes[layer.path] = tuple(y.shape[1:])

        handles.append(layer.module.register_forward_pre_hook(pre))
        handles.append(layer.module.register_forward_hook(post))
    x = torch.zeros((1,) + tuple(input_shape), dtype=_module_dtype(module))
    try:
        with torch.no_grad():
            _step(module, x, None)
    except Exception as e:  # noqa: BLE001 - any failure of the user's module on this shape
        where = current[-1] if current else _Layer("", module)
        raise _err(where, f"input_shape {list(input_shape)} does not fit the model: {type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}") from None
    finally:
        for h in handles:
            h.remove()
    return shapes


def _step(module: nn.Module, x: torch.Tensor, state: Any):
    """One step of a native chain: ``SequentialState`` → ``(out, state)``; plain ``nn.Sequential`` → ``(out, None)``."""
    norse = _norse()
    if isinstance(module, norse.SequentialState):
        return module(x, state)
    return module(x), None


# --------------------------------------------------------------------------- parameters


def _arr(layer: _Layer, field: str, value) -> np.ndarray:
    """A parameter as a float64 array (exact), refused by name when not finite."""
    if isinstance(value, torch.Tensor):
        a = value.detach().cpu().to(torch.float64).numpy().copy()
    else:
        a = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise _err(layer, f"'{field}' contains {'NaN' if np.isnan(a).any() else 'Inf'}")
    return a


def _fits(layer: _Layer, field: str, a: np.ndarray, shape: tuple) -> np.ndarray:
    try:
        ok = np.broadcast_shapes(a.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise _err(layer, f"'{field}' has shape {list(a.shape)}, which does not broadcast to the layer's "
                          f"per-sample shape {list(shape)} (a batch axis in a neuron parameter is not supported)")
    return a


def _rate(layer: _Layer, field: str, dt: float, inv, shape: tuple) -> np.ndarray:
    """``dt·tau_inv`` exactly as Norse computes it (``dt * p.<field>`` in the parameter's own dtype), float64."""
    a = _fits(layer, f"p.{field}", _arr(layer, f"p.{field}", dt * (inv if isinstance(inv, torch.Tensor)
                                                                 else torch.as_tensor(inv, dtype=torch.float64))),
              shape)
    if np.any(a <= 0) or np.any(a > 1):
        raise _err(layer, f"dt·{field} = {float(a.min()):g}..{float(a.max()):g} at dt={dt:g}: the decay 1 - dt·{field} "
                          f"must lie in [0, 1) (every snnbridge backend refuses other decays)")
    return a


def _method(layer: _Layer, p) -> None:
    method = getattr(p, "method", "super")
    if method not in _METHODS:
        raise _err(layer, f"threshold method {method!r} is not supported (its forward pass is not Norse's "
                          f"heaviside step, or its backward is an adjoint solver); use one of {_METHODS}")


def _check_weights(layer: _Layer) -> None:
    for pname, t in layer.module.named_parameters(recurse=False):
        _arr(layer, pname, t)


def _stateless_node(layer: _Layer, in_shape: tuple, out_shape: tuple) -> nir.NIRNode | None:
    m = layer.module
    _check_weights(layer)
    if isinstance(m, nn.Dropout):
        if m.training and m.p > 0:
            raise _err(layer, "is in training mode (random); call model.eval() first")
        return None
    if isinstance(m, nn.Identity):
        return None
    if isinstance(m, nn.Linear):
        w = _arr(layer, "weight", m.weight)
        return nir.Affine(weight=w, bias=_arr(layer, "bias", m.bias)) if m.bias is not None else nir.Linear(weight=w)
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        if m.padding_mode != "zeros":
            raise _err(layer, f"padding_mode {m.padding_mode!r} is not supported (only 'zeros')")
        w = _arr(layer, "weight", m.weight)
        b = _arr(layer, "bias", m.bias) if m.bias is not None else np.zeros(m.out_channels)
        pad = m.padding if isinstance(m.padding, str) else np.asarray(m.padding, dtype=np.int64)
        if isinstance(m, nn.Conv1d):
            return nir.Conv1d(input_shape=int(in_shape[-1]), weight=w, stride=int(m.stride[0]),
                              padding=pad if isinstance(pad, str) else int(pad[0]), dilation=int(m.dilation[0]),
                              groups=int(m.groups), bias=b)
        return nir.Conv2d(input_shape=tuple(int(s) for s in in_shape[1:]), weight=w,
                          stride=np.asarray(m.stride, dtype=np.int64), padding=pad,
                          dilation=np.asarray(m.dilation, dtype=np.int64), groups=int(m.groups), bias=b)
    if isinstance(m, nn.AvgPool2d):
        if m.ceil_mode or not m.count_include_pad or m.divisor_override is not None:
            raise _err(layer, "only ceil_mode=False, count_include_pad=True, divisor_override=None are supported")

        def pair(v):
            return np.broadcast_to(np.asarray(v if v is not None else m.kernel_size, dtype=np.int64), (2,)).copy()

        return nir.AvgPool2d(kernel_size=pair(m.kernel_size), stride=pair(m.stride), padding=pair(m.padding))
    if isinstance(m, nn.Flatten):
        start, end = int(m.start_dim), int(m.end_dim)
        rank = len(in_shape) + 1
        if (start if start >= 0 else rank + start) == 0:
            raise _err(layer, "flattens the batch axis (start_dim=0)")
        return nir.Flatten(input_type={"input": np.asarray(in_shape)}, start_dim=start - 1 if start > 0 else start,
                           end_dim=end - 1 if end > 0 else end)
    raise _err(layer, "is not supported")  # pragma: no cover - _leaves refuses it first


def _cell_nodes(layer: _Layer, in_shape: tuple, out_shape: tuple,
                dt: float) -> tuple[list[tuple[str, nir.NIRNode]], list[tuple[str, str]], str, str]:
    """The NIR node(s) of one Norse cell: ``(nodes, internal edges, entry node, exit node)``."""
    from norse.torch.functional.reset import reset_subtract, reset_value

    norse = _norse()
    m, name, p = layer.module, layer.name, layer.module.p
    shape = tuple(out_shape)
    _check_weights(layer)
    kind = type(m)

    def full(a) -> np.ndarray:  # NIR wants every neuron parameter in the node's full shape
        return np.broadcast_to(np.asarray(a, dtype=np.float64), shape).copy()

    def f(field: str) -> np.ndarray:
        return full(_fits(layer, f"p.{field}", _arr(layer, f"p.{field}", getattr(p, field)), shape))

    if kind is norse.IAFCell:
        _method(layer, p)
        v_th, v_reset = f("v_th"), f("v_reset")
        node = nir.IF(r=np.ones(shape), v_threshold=v_th, v_reset=v_reset,
                      metadata={"reset": "zero", "v_init": v_reset.copy()})
        return [(name, node)], [], name, name
    a = full(_rate(layer, "tau_mem_inv", dt, p.tau_mem_inv, shape))
    v_leak = f("v_leak")
    pinned = {"decay": 1.0 - a, "gain": a, "bias": a * v_leak, "coefficients_dt": float(dt)}
    v_init = v_leak.copy()
    if kind is norse.LIBoxCell:
        node = nir.LI(tau=dt / a, r=np.ones(shape), v_leak=v_leak, metadata=dict(pinned, v_init=v_init))
        return [(name, node)], [], name, name
    if kind is norse.LIFBoxCell:
        _method(layer, p)
        methods = {reset_value: "zero", reset_subtract: "subtract"}
        reset = methods.get(p.reset_method)
        if reset is None:
            raise _err(layer, f"reset_method {getattr(p.reset_method, '__name__', p.reset_method)!r} is not one of "
                              f"Norse's reset_value / reset_subtract")
        node = nir.LIF(tau=dt / a, r=np.ones(shape), v_leak=v_leak, v_threshold=f("v_th"), v_reset=f("v_reset"),
                       metadata=dict(pinned, reset=reset, v_init=v_init))
        return [(name, node)], [], name, name
    a_s = full(_rate(layer, "tau_syn_inv", dt, p.tau_syn_inv, shape))
    cuba = dict(tau_mem=dt / a, tau_syn=dt / a_s, r=np.ones(shape), v_leak=v_leak, w_in=1.0 / a_s)
    syn = {"syn_decay": 1.0 - a_s, "syn_gain": np.ones(shape)}
    if kind is norse.LICell:
        node = nir.CubaLI(**cuba, metadata=dict(pinned, **syn, v_init=v_init))
        return [(name, node)], [], name, name
    _method(layer, p)
    lif = dict(cuba, v_threshold=f("v_th"), v_reset=f("v_reset"))
    if kind is norse.LIFCell:
        return [(name, nir.CubaLIF(**lif, metadata=dict(pinned, **syn, reset="zero", v_init=v_init)))], [], name, name
    # LIFRecurrentCell: its initial membrane is torch.full(..., v_leak, dtype=float32)
    v_init = v_leak.astype(np.float32).astype(np.float64)
    w_in = _arr(layer, "input_weights", m.input_weights)
    w_rec = _arr(layer, "recurrent_weights", m.recurrent_weights)
    nodes = [(f"{name}_in", nir.Linear(weight=w_in)),
             (name, nir.CubaLIF(**lif, metadata=dict(pinned, **syn, reset="zero", v_init=v_init,
                                                     autapses=int(bool(m.autapses))))),
             (f"{name}_rec", nir.Linear(weight=w_rec))]
    edges = [(f"{name}_in", name), (name, f"{name}_rec"), (f"{name}_rec", name)]
    return nodes, edges, f"{name}_in", name


def _cells_dt(layers: list[_Layer], dt: float) -> float:
    """The step every leaky cell integrates with (``cell.dt``); mixed steps, or one other than ``dt``, are refused."""
    norse = _norse()
    for layer in layers:
        if _is_cell(layer.module) and type(layer.module) is not norse.IAFCell:
            cdt = float(layer.module.dt)
            if cdt != float(dt):
                raise _err(layer, f"steps with dt={cdt:g} s but the model is imported with dt={float(dt):g} s; "
                                  f"pass dt={cdt:g} (every cell must share one dt)")
    return float(dt)


# --------------------------------------------------------------------------- from_native


def from_native(module: nn.Module, input_shape: Sequence[int], dt: float = 1e-3) -> nir.NIRGraph:
    """The NIR graph (snnbridge metadata, pinned constants) that steps exactly as the Norse ``module`` does.

    Args:
        module: a ``norse.torch.SequentialState`` (or ``nn.Sequential``, nested too) of the supported layers, or a
            module built by :func:`to_native`.
        input_shape: per-sample input shape (no time, no batch), e.g. ``(784,)`` or ``(2, 34, 34)``.
        dt: the step in seconds; every leaky cell's own ``dt`` must equal it (Norse's default is 1e-3 s).

    Raises :class:`NativeModelError` naming the layer path and class for anything it cannot carry over exactly.
    """
    if isinstance(module, NorseGraphModule):
        return module.to_nir()
    input_shape, dt = native_input_shape(input_shape), native_dt(dt)
    layers = _leaves(module)
    dt = _cells_dt(layers, dt)
    for layer in layers:  # what the probe step could trip over is refused by name first
        _check_weights(layer)
        if _spiking(layer.module):
            _method(layer, layer.module.p)
    shapes = _probe(module, layers, input_shape)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.asarray(input_shape)})}
    edges: list[tuple[str, str]] = []
    prev, shape = "input", input_shape
    resets: list[str] = []
    for layer in layers:
        out_shape = shapes.get(layer.path, shape)
        if _is_cell(layer.module):
            new, inner, entry, exit_ = _cell_nodes(layer, shape, out_shape, dt)
            nodes.update(new)
            edges.append((prev, entry))
            edges.extend(inner)
            resets.extend(n.metadata["reset"] for _, n in new if "reset" in n.metadata)
            prev = exit_
        else:
            node = _stateless_node(layer, shape, out_shape)
            if node is not None:
                nodes[layer.name] = node
                edges.append((prev, layer.name))
                prev = layer.name
        shape = out_shape
    nodes["output"] = nir.Output(output_type={"output": np.asarray(shape)})
    edges.append((prev, "output"))
    reset = Counter(resets).most_common(1)[0][0] if resets else "zero"
    from norse import __version__ as norse_version

    meta = make_metadata(sem.Semantics(dt=dt, reset=reset, integration="euler"),
                         native=f"norse {norse_version} {type(module).__name__}")
    return native_graph(nodes, edges, meta)


# --------------------------------------------------------------------------- run_native


def run_native(module: nn.Module, inputs, dtype: torch.dtype = torch.float64, dt: float | None = None) -> Recording:
    """Run the Norse ``module`` as Norse runs it on ``inputs`` ``[T, B, *input_shape]`` (fresh state: ``None``).

    A ``SequentialState`` is called once per step with the state it returned; a :func:`to_native` module takes the
    whole ``[T, B, ...]``.  Every spiking cell's spikes (``bool [T, B, *shape]``) and every LI cell's membrane are
    recorded with forward hooks (removed afterwards; the module is not changed), keyed by the node names
    :func:`from_native` gives, plus ``"output"``.  Inputs are cast to ``dtype``; a layer whose parameters have
    another dtype gets its input cast only where the cast is exact (else :class:`NativeModelError`).
    """
    from snnbridge.bridge.graph import prepare
    from snnbridge.bridge.walk import spike_valued

    x = torch.as_tensor(inputs)
    if x.dim() < 3:
        raise NativeModelError(f"inputs must be [T, B, *input_shape], got shape {list(x.shape)}")
    x = x.to(dtype)
    if isinstance(module, NorseGraphModule):
        graph = module.to_nir()
    else:
        layers = _leaves(module)
        cdt = dt if dt is not None else next((float(la.module.dt) for la in layers if _is_cell(la.module)
                                               and type(la.module) is not _norse().IAFCell), 1e-3)
        graph = from_native(module, tuple(x.shape[2:]), dt=cdt)
    fg = prepare(graph)
    flags = spike_valued(fg)
    traces: dict[str, list] = {}
    mems: dict[str, list] = {}
    handles = []
    watched = module.neuron_modules() if isinstance(module, NorseGraphModule) else {
        la.name: la.module for la in _leaves(module) if _is_cell(la.module)}
    for name, mod in watched.items():
        def hook(m, args, out, name=name):
            y = out[0] if isinstance(out, tuple) else out
            traces.setdefault(name, []).append(y.detach())
        handles.append(mod.register_forward_hook(hook))
    if not isinstance(module, NorseGraphModule):
        for mod in module.modules():
            if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                handles.append(mod.register_forward_pre_hook(_exact_cast))
    try:
        with torch.no_grad():
            if isinstance(module, NorseGraphModule):
                out = module(x)
            else:
                state, outs = None, []
                for t in range(x.shape[0]):
                    y, state = _step(module, x[t], state)
                    outs.append(y)
                out = torch.stack(outs)
    finally:
        for h in handles:
            h.remove()
    outputs: dict[str, torch.Tensor] = {}
    for name, ys in traces.items():
        y = torch.stack(ys)
        if fg.type_of(name) in sem.SPIKING_TYPES:
            outputs[name] = y > 0.5
        else:
            outputs[name] = y
            mems[name] = y
    outputs["output"] = out > 0.5 if flags.get("output") else out
    return Recording(outputs, mems, {n: fg.type_of(n) for n in fg.order}, fg.semantics.dt, "norse-native",
                     list(fg.order))


def _exact_cast(mod: nn.Module, args):
    x = args[0]
    w = mod.weight
    if x.dtype == w.dtype:
        return None
    y = x.to(w.dtype)
    if not torch.equal(y.to(x.dtype), x):
        raise NativeModelError(f"holds {w.dtype} weights but receives {x.dtype} values that {w.dtype} cannot hold "
                               f"exactly; convert the model (and its Norse parameters) to one dtype",
                               layer=type(mod).__name__)
    return (y,) + tuple(args[1:])


# --------------------------------------------------------------------------- to_native


class NorseNode(nn.Module):
    """One NIR neuron node as real Norse cells (``cell``, and ``syn`` for Cuba nodes), built by the Norse adapter.

    ``forward(x [B, *shape], state) -> (output, state)``; ``.double()``/``.float()``/``.to(device)`` rebuild the
    cells' parameters for the new dtype (Norse keeps them in plain tuples that ``nn.Module`` does not convert).
    """

    def __init__(self, fg: FlatGraph, name: str, dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        self._fg, self.node = fg, name
        self._build(dtype, device)

    def _build(self, dtype: torch.dtype, device: torch.device) -> None:
        from snnbridge.backends.norse_backend import NorseNeuron

        self.adapter = NorseNeuron(self._fg, self.node, dtype, device)
        self.cell = self.adapter.mem
        self.syn = self.adapter.syn

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        probe = fn(torch.zeros((), dtype=self.adapter.dtype, device=self.adapter.device))
        if probe.dtype != self.adapter.dtype or probe.device != self.adapter.device:
            self._build(probe.dtype, probe.device)
        return out

    def forward(self, x: torch.Tensor, state: Any = None):
        if state is None:
            state = self.adapter.init_state(x.shape[0])
        y, state, _ = self.adapter.step(x, state)
        return y, state


class SurrogateThreshold(nn.Module):
    """NIR ``Threshold``: Norse's ``threshold(x - θ, "super", 100)`` (heaviside forward, SuperSpike backward)."""

    def __init__(self, threshold: np.ndarray, dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        self.register_buffer("threshold", torch.as_tensor(np.asarray(threshold, dtype=np.float64), dtype=dtype,
                                                          device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from norse.torch.functional.threshold import threshold

        return threshold(x - self.threshold, "super", 100.0)


class NorseGraphModule(nn.Module):
    """A NIR graph as a trainable module of Norse cells and torch layers (what :func:`to_native` returns).

    ``layers`` holds one module per node (key: the node name, ``.`` → ``_``): torch layers whose parameters require
    grad, :class:`NorseNode` (Norse ``LIFBoxCell``, ``IAFCell``, ``LIBoxCell``, ``SNNCell``) for neurons.  The graph
    is walked as the reference executor walks it (layer by layer, or step by step when it has recurrent edges).
    ``forward(x [T, B, *input_shape]) -> [T, B, *output_shape]`` (spikes as 0/1 floats with a surrogate gradient).
    The neuron constants are fixed (not learnable); :meth:`to_nir` writes the current weights back.
    """

    def __init__(self, fg: FlatGraph, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> None:
        super().__init__()
        from snnbridge.backends._torch_graph import DelayLayer, torch_layer

        device = torch.device(device)
        self.graph = fg
        self.keys = {n: n.replace(".", "_") for n in fg.order}
        self.layers = nn.ModuleDict()
        for name in fg.order:
            kind = fg.type_of(name)
            if kind in sem.NEURON_TYPES:
                mod: nn.Module = NorseNode(fg, name, dtype, device)
            elif kind == "Threshold":
                mod = SurrogateThreshold(fg.nodes[name].threshold, dtype, device)
            elif kind == "Delay":
                mod = DelayLayer(fg, name, dtype, device)
            else:
                mod = torch_layer(fg, name, dtype, device).requires_grad_(True)
                for param in mod.parameters():  # torch_layer may share memory with the graph's numpy arrays
                    param.data = param.data.clone()
            self.layers[self.keys[name]] = mod

    def neuron_modules(self) -> dict[str, nn.Module]:
        """Node name → its :class:`NorseNode` (spiking and non-spiking neurons)."""
        return {n: self.layers[k] for n, k in self.keys.items() if isinstance(self.layers[k], NorseNode)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fg = self.graph
        (inp,) = fg.inputs
        (out,) = fg.outputs
        if fg.is_recurrent:
            return self._stepwise(x, inp, out)
        live: dict[str, torch.Tensor] = {}
        T, B = x.shape[:2]
        for name in fg.order:
            v = x if name == inp else _sum([live[p] for p in fg.preds[name]])
            mod = self.layers[self.keys[name]]
            if isinstance(mod, NorseNode):
                state, ys = None, []
                for t in range(T):
                    y, state = mod(v[t], state)
                    ys.append(y)
                live[name] = torch.stack(ys)
            elif fg.type_of(name) == "Delay":
                live[name] = mod.over_time(v)
            else:
                y = mod(v.reshape((T * B,) + tuple(v.shape[2:])))
                live[name] = y.reshape((T, B) + tuple(y.shape[1:]))
        return live[out]

    def _stepwise(self, x: torch.Tensor, inp: str, out: str) -> torch.Tensor:
        fg = self.graph
        T, B = x.shape[:2]
        states: dict[str, Any] = {n: None for n in fg.order}
        prev = {a: torch.zeros((B,) + fg.out_shapes[a], dtype=x.dtype, device=x.device) for a, _ in fg.recurrent}
        ys = []
        for t in range(T):
            cur: dict[str, torch.Tensor] = {}
            for name in fg.order:
                v = x[t] if name == inp else _sum([prev[p] if (p, name) in fg.recurrent else cur[p]
                                                   for p in fg.preds[name]])
                mod = self.layers[self.keys[name]]
                if isinstance(mod, NorseNode):
                    cur[name], states[name] = mod(v, states[name])
                elif fg.type_of(name) == "Delay":
                    cur[name], states[name] = mod.step(v, states[name] or mod.init_state(B))
                else:
                    cur[name] = mod(v)
            prev = {a: cur[a] for a in prev}
            ys.append(cur[out])
        return torch.stack(ys)

    def to_nir(self) -> nir.NIRGraph:
        """The graph with the module's current weights (neuron nodes and options as they were given)."""
        fg = self.graph
        nodes: dict[str, nir.NIRNode] = {}
        for name in fg.order:
            node = fg.nodes[name]
            mod = self.layers[self.keys[name]]
            if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                new = {"weight": mod.weight.detach().cpu().double().numpy().copy()}
                if getattr(node, "bias", None) is not None and mod.bias is not None:
                    new["bias"] = mod.bias.detach().cpu().double().numpy().copy()
                for k, v in new.items():
                    if not np.all(np.isfinite(v)):
                        raise NativeModelError(f"'{k}' contains NaN or Inf", layer=self.keys[name],
                                               cls=type(mod).__name__)
                node = copy.copy(node)
                for k, v in new.items():
                    object.__setattr__(node, k, v)
            nodes[name] = node
        edges = [(p, n) for n in fg.order for p in fg.preds[n]]
        meta = dict(fg.metadata)
        meta.update(make_metadata(fg.semantics))
        meta.update(native="snnbridge.backends.norse_native.NorseGraphModule")
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)


def _sum(xs: list[torch.Tensor]) -> torch.Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def to_native(graph, dt: float | None = None, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu",
              reset: str | None = None, integration: str | None = None) -> NorseGraphModule:
    """A trainable :class:`NorseGraphModule` of real Norse cells realising ``graph`` (NIR graph, FlatGraph or path).

    Built in ``dtype`` (float64 by default, so that it equals the reference executor spike for spike; call
    ``.float()`` to train in float32).  ``dt``/``reset``/``integration`` override the graph's metadata.
    """
    from snnbridge.backends import get

    backend = get("norse")
    if isinstance(graph, FlatGraph):
        fg = backend.prepare(graph, dtype=dtype)
    else:
        fg = backend.prepare(graph, dt=dt, reset=reset, integration=integration, dtype=dtype)
    if len(fg.inputs) != 1 or len(fg.outputs) != 1:
        raise SnnBridgeError(f"to_native needs one Input and one Output node, the graph has {len(fg.inputs)} and "
                             f"{len(fg.outputs)}")
    return NorseGraphModule(fg, dtype, device)
