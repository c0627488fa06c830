"""Native snnTorch models in and out: :func:`from_native`, :func:`run_native`, :func:`to_native`.

**In** (:func:`from_native`): a per-step snnTorch model — an ``nn.Sequential`` (nested too) or a module whose
``forward(x)`` is a straight chain that ``torch.fx`` can trace (snnTorch neurons are leaves) — becomes a NIR graph
that steps exactly as the module does.  Layers: ``nn.Linear`` → ``Affine``/``Linear``; ``nn.Conv1d``/``nn.Conv2d``
(stride, padding incl. ``'same'``, dilation, groups) → ``Conv1d``/``Conv2d``; ``nn.AvgPool2d`` → ``AvgPool2d``;
``nn.Flatten`` → ``Flatten``; ``nn.Identity`` and ``nn.Dropout`` (eval) → nothing; and the neurons:

=================  ===========  ============================  =======================  ===================
snnTorch           NIR node     ``reset_delay=True``          ``reset_delay=False``    zero reset clears
=================  ===========  ============================  =======================  ===================
``Leaky``          LIF (IF¹)    ``delayed``                   ``immediate_rechecked``  the carried state
``Synaptic``       CubaLIF      ``delayed``                   ``immediate_rechecked``  the new membrane
``RLeaky``         LIF + rec²   ``delayed``                   ``immediate_rechecked``  the new membrane
``RSynaptic``      CubaLIF+rec² ``delayed``                   ``delayed``³             the new membrane
=================  ===========  ============================  =======================  ===================

¹ ``beta = 1`` everywhere → ``IF`` (``r = 1``, a per-step integrator).  ² the recurrent layer is the node
``<name>_rec``: ``Affine`` (its ``nn.Linear`` with bias), ``Conv2d`` (padding ``k//2``) or, with
``all_to_all=False``, ``Scale(V)``; the loop ``<name> -> <name>_rec -> <name>`` delays on the edge leaving the
neuron, so the recurrent bias reaches the membrane at step 0 as in snnTorch.  ³ snnTorch 1.0.0's ``RSynaptic``
applies its ``reset_delay=False`` reset to local variables that are then discarded (and crashes when the layer
holds its own state), so the module steps as ``delayed``; a model where it crashes is refused by the probe step.

Every neuron node pins snnTorch's own constants (``decay = beta.clamp(0, 1)``, ``gain = 1``, ``bias = 0``,
``syn_decay = alpha.clamp(0, 1)``, ``syn_gain = 1``, ``coefficients_dt = dt``) and carries consistent continuous
parameters as snnTorch's exporter writes them (``tau = dt/(1-beta)``, ``r = tau/dt``, ``tau_syn = dt/(1-alpha)``,
``w_in = tau_syn/dt``; a decay of exactly 1 in a ``LIF``/``CubaLIF`` is written as ``tau = 1e13·dt``, which the
pinned constant overrides).  ``threshold`` (scalar or per neuron) is broadcast to the layer's shape.
``graded_spikes_factor`` g ≠ 1 adds ``Scale`` ``<name>_graded`` after the neuron (snnTorch emits ``H·g``; its
``reset_delay=False`` path divides by g again, which is exact).  Spike functions: any ``spike_grad`` whose forward
is exactly ``H(x > 0)`` (probed on ``[-1, -1e-300, -0.0, 0.0, 1e-300, 1]`` and a grid, twice); stochastic or other
forwards, ``inhibition`` and ``state_quant`` are refused.

Node names are the layer paths with ``.`` → ``_``; ``input`` and ``output`` are the graph's ends.  Differences
from snnTorch's arithmetic that the semantics cannot express: ``RLeaky``/``RSynaptic`` add
``(β·mem + input) + recurrent`` while the graph sums the two inputs first (``β·mem + (input + recurrent)``), so
those membranes may differ in the last bit (spikes differ only if a membrane lies within that bit of θ).

**Run** (:func:`run_native`): the module itself, on a float64 (or float32) copy in ``eval`` mode with fresh
hidden state, called once per step; every spiking layer's spikes and pre-reset membranes are recorded by node
name.  **Out** (:func:`to_native`): :class:`SnnTorchNetwork`, a trainable module of real ``snn.Leaky`` /
``snn.Synaptic`` / ``nn.Linear`` / ``nn.Conv2d`` layers realising any graph the adapter runs.
"""

from __future__ import annotations

import copy
import math
import operator
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import nir
import numpy as np
import torch
from torch import nn

from snnbridge.backends.native_args import native_dt
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph, graph_node, prepare
from snnbridge.bridge.metadata import make_metadata
from snnbridge.bridge.recording import Recording
from snnbridge.bridge.walk import add_all, spike_valued
from snnbridge.errors import GraphError, NativeModelError

BIG_TAU = 1e13
"""``tau / dt`` written for a decay of exactly 1 in a LIF/CubaLIF node (the pinned constant is exact)."""

_DROP = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)
_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.AvgPool2d, nn.Flatten) + _DROP


def _snn():
    import snntorch as snn

    return snn


def _neuron_types() -> tuple[type, ...]:
    snn = _snn()
    return snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic


def _cls(mod: Any) -> str:
    t = type(mod)
    return f"{t.__module__.split('.')[0]}.{t.__name__}"


def node_name(path: str) -> str:
    """The NIR node name of the layer at ``path`` (``named_modules`` path, ``.`` → ``_``)."""
    return path.replace(".", "_")


# --------------------------------------------------------------------------- spike functions


_PROBE = torch.cat([torch.tensor([-1.0, -1e-300, -0.0, 0.0, 1e-300, 1.0], dtype=torch.float64),
                    torch.linspace(-2.0, 2.0, 101, dtype=torch.float64)])


def spike_fn_is_heaviside(fn) -> bool:
    """Whether ``fn``'s forward is exactly ``H(x > 0)`` (float64 and float32 probes, each twice)."""
    for dtype in (torch.float64, torch.float32):
        x = _PROBE.to(dtype)
        want = (x > 0).to(torch.float64)
        for _ in range(2):
            try:
                with torch.no_grad():
                    y = fn(x.clone())
            except Exception:  # noqa: BLE001 - any failure means: not a plain Heaviside
                return False
            if not isinstance(y, torch.Tensor) or y.shape != x.shape or not torch.equal(y.double(), want):
                return False
    return True


class SpikeATan(torch.autograd.Function):
    """Forward ``H(x > 0)`` in ``x``'s dtype (so ``module.double()`` stays float64); backward snnTorch's ATan
    surrogate ``α/2 / (1 + (π/2·α·x)²)`` with ``α = 2``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        (x,) = ctx.saved_tensors
        alpha = 2.0
        return grad * (alpha / 2 / (1 + (math.pi / 2 * alpha * x) ** 2))


def spike_atan(x: torch.Tensor) -> torch.Tensor:
    """The spike function of :func:`to_native` modules (see :class:`SpikeATan`)."""
    return SpikeATan.apply(x)


# --------------------------------------------------------------------------- the chain


@dataclass
class Layer:
    """One layer of a native chain: its path, module and (after the probe) per-sample in/out shapes."""

    path: str
    module: nn.Module
    kind: str  # "layer" | "neuron" | "flatten_fn"
    flatten: tuple[int, int] | None = None  # torch.flatten(x, start, end) called in forward
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return node_name(self.path)


@dataclass
class Chain:
    """A native model analysed: its layers in order (dropped layers excluded) and whether it returns a tuple."""

    layers: list[Layer]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...] = ()
    returns_tuple: bool = False
    notes: list[str] = field(default_factory=list)


def _returns_tuple(mod: nn.Module) -> bool:
    return bool(getattr(mod, "output", False)) or not bool(getattr(mod, "init_hidden", False))


def _tracer():
    snn = _snn()

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            if isinstance(m, snn.SpikingNeuron):
                return True
            return super().is_leaf_module(m, qualname)

    return Tracer()


def _trace(module: nn.Module) -> list[Layer]:
    """The chain of ``module``'s forward, by ``torch.fx``; refuses (naming the layer) anything but a chain."""
    root_cls = _cls(module)
    try:
        graph = _tracer().trace(module)
    except Exception as e:  # noqa: BLE001 - fx raises many kinds
        raise NativeModelError(f"forward cannot be traced as a chain of layers by torch.fx "
                               f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); write forward(x) "
                               f"as one step through the layers (snnTorch neurons with init_hidden=True, or called "
                               f"with the input only)", layer="forward", cls=root_cls) from None
    nodes = list(graph.nodes)
    places = [n for n in nodes if n.op == "placeholder"]
    if len(places) != 1:
        raise NativeModelError(f"forward takes {len(places)} arguments ({', '.join(p.name for p in places)}); a "
                               f"per-step chain takes only the input (explicit hidden-state arguments are not "
                               f"supported: use init_hidden=True or call each neuron with the input only, snnTorch "
                               f"then keeps the state in the layer)", layer="forward", cls=root_cls)
    cur = places[0]  # the fx node whose value is the chain's tensor
    pending_tuple: Any = None  # a neuron call that returned (spk, state...): element 0 is the chain's tensor
    layers: list[Layer] = []
    calls: Counter = Counter()
    state_nodes: set = set()
    mods = dict(module.named_modules())

    def refuse_here(n, why: str):
        where = n.target if n.op == "call_module" else f"forward ({n.op} {getattr(n.target, '__name__', n.target)})"
        cls = _cls(mods[n.target]) if n.op == "call_module" else root_cls
        raise NativeModelError(why, layer=str(where), cls=cls)

    def takes_chain(n) -> bool:
        return len(n.args) >= 1 and n.args[0] is cur and not any(
            isinstance(a, torch.fx.Node) for a in list(n.args[1:]) + list(n.kwargs.values()))

    for n in nodes:
        if n.op in ("placeholder", "get_attr"):  # constants/state buffers: refused where a layer takes them
            continue
        others = [a for a in n.all_input_nodes if a is not cur and a is not pending_tuple and a.op != "get_attr"]
        if n.op != "output" and others and len(n.all_input_nodes) > 1:
            refuse_here(n, f"combines '{cur.target if cur.op == 'call_module' else cur.name}' with "
                           f"'{others[0].target if others[0].op == 'call_module' else others[0].name}' "
                           f"(a skip connection or several inputs): the model is not a chain")
        if n.op == "output":
            out = n.args[0]
            first = out[0] if isinstance(out, (tuple, list)) else out
            rest = list(out[1:]) if isinstance(out, (tuple, list)) else []
            ok = first is cur or (pending_tuple is not None and first is pending_tuple)
            if not ok or any(r not in state_nodes and r is not pending_tuple for r in rest):
                raise NativeModelError("forward must return the last layer's output (optionally followed by that "
                                       "neuron's states); it returns something else", layer="forward", cls=root_cls)
            if pending_tuple is not None and first is pending_tuple:
                layers[-1].kind = "neuron"
            break
        if n.op == "call_function" and n.target is operator.getitem and pending_tuple is not None \
                and n.args[0] is pending_tuple:
            if n.args[1] == 0:
                cur = n
            else:
                state_nodes.add(n)
            continue
        if pending_tuple is not None and cur is pending_tuple:
            refuse_here(n, f"receives the tuple (spk, state...) that layer '{pending_tuple.target}' returns because "
                           f"init_hidden=False or output=True; take its spikes (spk, mem = layer(x)) or set "
                           f"init_hidden=True")
        if n.op == "call_module":
            mod = mods[n.target]
            calls[n.target] += 1
            if calls[n.target] > 1:
                refuse_here(n, f"is called {calls[n.target]} times in forward (a loop over time inside forward?); "
                               f"from_native needs a per-step forward that calls each layer once")
            if not takes_chain(n):
                refuse_here(n, "is not fed by the previous layer alone (the model is not a chain: skip connections, "
                               "several inputs or explicit state arguments)")
            if isinstance(mod, _neuron_types()):
                if len(n.args) > 1 or n.kwargs:
                    refuse_here(n, "is given explicit state arguments; call it with the input only (snnTorch keeps "
                                   "its state) or use init_hidden=True")
                layers.append(Layer(n.target, mod, "neuron"))
                if _returns_tuple(mod):
                    pending_tuple = cur = n
                else:
                    pending_tuple, cur = None, n
                continue
            if not isinstance(mod, _LAYERS):
                supported = "Linear, Conv1d, Conv2d, AvgPool2d, Flatten, Identity, Dropout, snntorch Leaky, " \
                            "Synaptic, RLeaky, RSynaptic"
                refuse_here(n, f"is not supported by from_native (supported: {supported})")
            pending_tuple = None
            if not isinstance(mod, _DROP):
                layers.append(Layer(n.target, mod, "layer"))
            cur = n
            continue
        if (n.op == "call_function" and n.target is torch.flatten) or (n.op == "call_method"
                                                                       and n.target == "flatten"):
            if not takes_chain(n):
                refuse_here(n, "is not applied to the previous layer's output (not a chain)")
            args = list(n.args[1:]) + [n.kwargs.get("start_dim", 0 if not n.args[1:] else None),
                                       n.kwargs.get("end_dim", -1)]
            start = int(args[0]) if args[0] is not None else 0
            end = int(args[1]) if len(args) > 1 and args[1] is not None else -1
            layers.append(Layer(f"flatten{sum(1 for x in layers if x.kind == 'flatten_fn')}", nn.Flatten(start, end),
                                "flatten_fn", flatten=(start, end)))
            pending_tuple, cur = None, n
            continue
        refuse_here(n, "is an operation from_native cannot carry over (only layers called in a chain, and "
                       "torch.flatten, are supported)")
    return layers


# --------------------------------------------------------------------------- probing and state


def _neurons(module: nn.Module) -> Iterator[nn.Module]:
    snn = _snn()
    for m in module.modules():
        if isinstance(m, snn.SpikingNeuron):
            yield m


_STATE_BUFFERS = ("mem", "syn", "spk")


def fresh_state(module: nn.Module) -> None:
    """Give every snnTorch neuron in ``module`` an empty hidden state (set to zeros of the input at the next call),
    as ``snntorch.utils.reset`` does, for nested models too."""
    for m in _neurons(module):
        for b in _STATE_BUFFERS:
            if hasattr(m, b) and isinstance(getattr(m, b), torch.Tensor):
                setattr(m, b, torch.zeros(0, dtype=getattr(m, b).dtype, device=getattr(m, b).device))


def _param_dtype(mod: nn.Module) -> torch.dtype | None:
    for p in list(mod.parameters(recurse=False)) + list(mod.buffers(recurse=False)):
        if p is not None and p.is_floating_point():
            return p.dtype
    return None


@contextmanager
def _hooks(model: nn.Module, layers: list[Layer], cast: bool) -> Iterator[dict]:
    """Forward hooks on ``model``'s copies of ``layers``: record the last layer entered (for error messages), in/out
    shapes, and (``cast``) cast each stateless layer's input to its parameters' dtype (exact for 0/1 spikes)."""
    info: dict = {"entered": None, "shapes": {}, "spk": {}, "mem": {}}
    handles = []
    mods = dict(model.named_modules())
    for layer in layers:
        if layer.kind == "flatten_fn":
            continue
        mod = mods[layer.path]

        def pre(m, args, layer=layer):
            info["entered"] = layer
            if cast and layer.kind == "layer" and args and isinstance(args[0], torch.Tensor):
                dt = _param_dtype(m)
                if dt is not None and args[0].is_floating_point() and args[0].dtype != dt:
                    return (args[0].to(dt),) + tuple(args[1:])
            return None

        def post(m, args, out, layer=layer):
            y = out[0] if isinstance(out, tuple) else out
            info["shapes"][layer.path] = (tuple(args[0].shape[1:]), tuple(y.shape[1:]))
            if layer.kind == "neuron":
                info["spk"].setdefault(layer.path, []).append(y.detach())
            info["entered"] = None

        handles.append(mod.register_forward_pre_hook(pre))
        handles.append(mod.register_forward_hook(post))
        rec = getattr(mod, "recurrent", None)
        if cast and layer.kind == "neuron" and isinstance(rec, (nn.Linear, nn.Conv2d)):
            # RLeaky/RSynaptic feed their own float32 spikes to the recurrent layer: exact cast to its dtype
            handles.append(rec.register_forward_pre_hook(
                lambda m, args: (args[0].to(m.weight.dtype),) + tuple(args[1:])
                if args[0].is_floating_point() and args[0].dtype != m.weight.dtype else None))
        if layer.kind == "neuron":  # capture the membrane compared with the threshold (our copy only)
            orig = mod.fire

            def fire(mem, orig=orig, layer=layer):
                info["mem"].setdefault(layer.path, []).append(mem.detach())
                return orig(mem)

            mod.fire = fire
    try:
        yield info
    finally:
        for h in handles:
            h.remove()


def _working_copy(module: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    m = copy.deepcopy(module)
    if dtype is not None:
        m = m.to(dtype)
    m.eval()
    fresh_state(m)
    return m


def _check_input_shape(input_shape) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in (input_shape if isinstance(input_shape, (tuple, list, torch.Size))
                                       else [input_shape]))
    except (TypeError, ValueError):
        raise NativeModelError(f"input_shape must be a tuple of positive ints (per sample, no batch or time), got "
                               f"{input_shape!r}") from None
    if not shape or any(s <= 0 for s in shape):
        raise NativeModelError(f"input_shape must be a tuple of positive ints (per sample, no batch or time), got "
                               f"{input_shape!r}")
    return shape


def analyse(module: nn.Module, input_shape: Sequence[int]) -> Chain:
    """Trace ``module`` into a :class:`Chain`, check every layer, and run one probe step on zeros
    ``[1, *input_shape]`` (a copy, fresh state) to learn each layer's shapes; refusals name the layer."""
    if not isinstance(module, nn.Module):
        raise NativeModelError(f"expected a torch.nn.Module, got {type(module).__name__}")
    shape = _check_input_shape(input_shape)
    layers = _trace(module)
    if not any(layer.kind == "neuron" for layer in layers):
        raise NativeModelError("has no snnTorch neuron (Leaky, Synaptic, RLeaky, RSynaptic)", layer="forward",
                               cls=_cls(module))
    for layer in layers:
        _check_layer(layer)
    work = _working_copy(module, None)
    x = torch.zeros((1,) + shape, dtype=_model_dtype(work))
    with _hooks(work, layers, cast=True) as info, torch.no_grad():
        try:
            y = work(x)
        except Exception as e:  # noqa: BLE001 - report where the probe failed
            at = info["entered"]
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise NativeModelError(f"the probe step on input_shape {list(shape)} fails here: {msg}",
                                   layer=at.path if at else "forward",
                                   cls=_cls(at.module) if at else _cls(module)) from None
    chain = Chain(layers, shape, returns_tuple=isinstance(y, tuple))
    y0 = y[0] if isinstance(y, tuple) else y
    chain.output_shape = tuple(y0.shape[1:])
    prev = shape
    for layer in layers:
        if layer.kind == "flatten_fn":
            layer.in_shape = prev
            layer.out_shape = tuple(nn.Flatten(*layer.flatten)(torch.zeros((1,) + prev)).shape[1:])
        else:
            layer.in_shape, layer.out_shape = info["shapes"][layer.path]
        prev = layer.out_shape
    return chain


def _model_dtype(module: nn.Module) -> torch.dtype:
    for p in list(module.parameters()) + list(module.buffers()):
        if p.is_floating_point() and p.numel() > 1:
            return p.dtype
    return torch.get_default_dtype()


def _f64(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().to(torch.float64).numpy()
    return np.asarray(t, dtype=np.float64)


def _check_layer(layer: Layer) -> None:
    mod, path = layer.module, layer.path
    for pname, p in list(mod.named_parameters()) + list(mod.named_buffers()):
        if p is not None and p.is_floating_point() and p.numel() and not torch.all(torch.isfinite(p)):
            bad = "NaN" if torch.isnan(p).any() else "Inf"
            raise NativeModelError(f"parameter '{pname}' contains {bad}", layer=path, cls=_cls(mod))
    if layer.kind == "neuron":
        if type(mod) not in _neuron_types():
            raise NativeModelError("is a subclass of an snnTorch neuron whose step may differ; only Leaky, "
                                   "Synaptic, RLeaky and RSynaptic themselves are supported", layer=path,
                                   cls=_cls(mod))
        if getattr(mod, "inhibition", False):
            raise NativeModelError("inhibition=True (winner-take-all spiking) is not supported", layer=path,
                                   cls=_cls(mod))
        if getattr(mod, "state_quant", False):
            raise NativeModelError("state_quant (quantised state) is not supported", layer=path, cls=_cls(mod))
        if not spike_fn_is_heaviside(mod.spike_grad):
            raise NativeModelError("spike_grad's forward is not exactly H(x > 0) (stochastic or custom spiking); "
                                   "only the surrogate gradient may differ", layer=path, cls=_cls(mod))
        g = _f64(mod.graded_spikes_factor)
        if np.any(g == 0):
            raise NativeModelError("graded_spikes_factor = 0 (snnTorch divides by it)", layer=path, cls=_cls(mod))
        if np.any(g != 1) and not isinstance(mod, _snn().Leaky):
            raise NativeModelError("graded_spikes_factor != 1 is only supported on Leaky", layer=path, cls=_cls(mod))
        rec = getattr(mod, "recurrent", None)
        one_to_one = type(rec).__name__ == "RecurrentOneToOne"
        if rec is not None and not isinstance(rec, (nn.Linear, nn.Conv2d)) and not one_to_one:
            raise NativeModelError(f"recurrent layer {_cls(rec)} is not supported", layer=path, cls=_cls(mod))
        return
    if isinstance(mod, (nn.Conv1d, nn.Conv2d)) and mod.padding_mode != "zeros":
        raise NativeModelError(f"padding_mode='{mod.padding_mode}' is not supported (only 'zeros')", layer=path,
                               cls=_cls(mod))
    if isinstance(mod, nn.AvgPool2d):
        pad = np.atleast_1d(mod.padding)
        if mod.ceil_mode or mod.divisor_override is not None or (not mod.count_include_pad and np.any(pad != 0)):
            raise NativeModelError("ceil_mode, divisor_override and count_include_pad=False with padding are not "
                                   "supported", layer=path, cls=_cls(mod))
    if isinstance(mod, nn.Flatten) and (mod.start_dim == 0 or mod.end_dim == 0):
        raise NativeModelError("flattens the batch axis (start_dim or end_dim 0)", layer=path, cls=_cls(mod))


# --------------------------------------------------------------------------- NIR nodes of a chain


def _full(a, shape) -> np.ndarray:
    return np.broadcast_to(_f64(a), shape).copy()


def _tau_of(decay: np.ndarray, dt: float) -> np.ndarray:
    """``dt/(1-decay)`` (snnTorch's exporter), ``BIG_TAU·dt`` where the decay is exactly 1."""
    one = decay >= 1.0
    return np.where(one, BIG_TAU * dt, dt / np.where(one, 0.5, 1.0 - decay))


def _neuron_nodes(layer: Layer, dt: float) -> tuple[list[tuple[str, nir.NIRNode]], list[tuple[str, str]], str, str]:
    """``(nodes, internal edges, exit node, reset)`` of one snnTorch neuron layer (entry node: ``layer.name``)."""
    snn = _snn()
    mod, name, shape = layer.module, layer.name, layer.out_shape
    reset = mod.reset_mechanism
    delay = bool(getattr(mod, "reset_delay", True))
    if isinstance(mod, snn.RSynaptic):
        delay = True  # its reset_delay=False branch writes to discarded locals (see the module docstring)
    timing = "delayed" if delay else "immediate_rechecked"
    target = "state" if type(mod) is snn.Leaky else "membrane"
    opts = sem.NeuronOptions(reset=reset, reset_timing=timing, zero_reset_target=target)
    meta: dict = dict(opts.metadata(), snntorch_layer=type(mod).__name__, coefficients_dt=float(dt))
    decay = _full(torch.clamp(mod.beta.detach(), 0, 1), shape)
    thr = _full(mod.threshold, shape)
    zeros, ones = np.zeros(shape), np.ones(shape)
    synaptic = isinstance(mod, (snn.Synaptic, snn.RSynaptic))
    if synaptic:
        syn_decay = _full(torch.clamp(mod.alpha.detach(), 0, 1), shape)
        tau_mem, tau_syn = _tau_of(decay, dt), _tau_of(syn_decay, dt)
        meta.update(decay=decay, gain=ones, bias=zeros, syn_decay=syn_decay, syn_gain=ones.copy())
        node = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=zeros, v_threshold=thr,
                           v_reset=zeros.copy(), w_in=tau_syn / dt, metadata=meta)
    elif np.all(decay == 1.0):
        del meta["coefficients_dt"]
        node = nir.IF(r=ones, v_threshold=thr, v_reset=zeros, metadata=meta)
    else:
        tau = _tau_of(decay, dt)
        meta.update(decay=decay, gain=ones.copy(), bias=zeros.copy())
        node = nir.LIF(tau=tau, r=tau / dt, v_leak=zeros, v_threshold=thr, v_reset=zeros.copy(), metadata=meta)
    nodes: list[tuple[str, nir.NIRNode]] = [(name, node)]
    edges: list[tuple[str, str]] = []
    rec = getattr(mod, "recurrent", None)
    if isinstance(mod, (snn.RLeaky, snn.RSynaptic)):
        rname = f"{name}_rec"
        if isinstance(rec, nn.Linear):
            rnode = _linear(rec)
        elif isinstance(rec, nn.Conv2d):
            rnode = _conv(rec, shape)
        else:  # x * V on the spikes snnTorch emits (a 0-d V takes the spikes' dtype, as torch promotes it)
            spk = mod.spike_grad(torch.ones((1,) + shape, dtype=mod.threshold.dtype)) * mod.graded_spikes_factor
            rnode = nir.Scale(scale=_full((torch.ones_like(spk) * mod.V.detach())[0], shape))
        nodes.append((rname, rnode))
        edges += [(name, rname), (rname, name)]
    exit_ = name
    g = _emitted(mod, shape)
    if np.any(g != 1):
        nodes.append((f"{name}_graded", nir.Scale(scale=_full(g, shape))))
        edges.append((name, f"{name}_graded"))
        exit_ = f"{name}_graded"
    return nodes, edges, exit_, reset


def _emitted(mod: nn.Module, shape: tuple[int, ...]) -> np.ndarray:
    """The value snnTorch emits for a spike, ``spike_grad(·) * graded_spikes_factor`` in torch's own promotion
    (a 0-d factor takes the spike function's float32: the module really emits ``float32(g)``), float64."""
    with torch.no_grad():
        spk = mod.spike_grad(torch.ones((1,) + tuple(shape), dtype=mod.threshold.dtype)) * mod.graded_spikes_factor
    return _full(spk[0], shape)


def _linear(mod: nn.Linear) -> nir.NIRNode:
    w = _f64(mod.weight)
    return nir.Affine(weight=w, bias=_f64(mod.bias)) if mod.bias is not None else nir.Linear(weight=w)


def _conv(mod: nn.Module, in_shape: tuple[int, ...]) -> nir.NIRNode:
    w = _f64(mod.weight)
    bias = _f64(mod.bias) if mod.bias is not None else np.zeros(w.shape[0])
    pad = mod.padding if isinstance(mod.padding, str) else np.asarray(mod.padding)
    if isinstance(mod, nn.Conv2d):
        return nir.Conv2d(input_shape=tuple(int(s) for s in in_shape[1:]), weight=w, stride=np.asarray(mod.stride),
                          padding=pad, dilation=np.asarray(mod.dilation), groups=int(mod.groups), bias=bias)
    return nir.Conv1d(input_shape=int(in_shape[1]), weight=w, stride=int(mod.stride[0]),
                      padding=pad if isinstance(pad, str) else int(pad[0]), dilation=int(mod.dilation[0]),
                      groups=int(mod.groups), bias=bias)


def _pair(v) -> np.ndarray:
    a = np.atleast_1d(np.asarray(v, dtype=np.int64))
    return np.repeat(a, 2) if a.size == 1 else a


def _layer_node(layer: Layer) -> nir.NIRNode:
    mod = layer.module
    if isinstance(mod, nn.Linear):
        return _linear(mod)
    if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
        return _conv(mod, layer.in_shape)
    if isinstance(mod, nn.AvgPool2d):
        k = _pair(mod.kernel_size)
        return nir.AvgPool2d(kernel_size=k, stride=_pair(mod.stride) if mod.stride is not None else k,
                             padding=_pair(mod.padding))
    if isinstance(mod, nn.Flatten):  # torch counts the batch axis, NIR does not
        start, end = int(mod.start_dim), int(mod.end_dim)
        return nir.Flatten(input_type={"input": np.array(layer.in_shape)}, start_dim=start - 1 if start > 0 else start,
                           end_dim=end - 1 if end > 0 else end)
    raise NativeModelError("is not supported", layer=layer.path, cls=_cls(mod))  # pragma: no cover - traced out


def chain_graph(chain: Chain, dt: float, module_cls: str = "") -> nir.NIRGraph:
    """The NIR graph of an analysed chain (see the module docstring for the mapping)."""
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(chain.input_shape)})}
    edges: list[tuple[str, str]] = []
    prev = "input"
    resets: list[str] = []
    for layer in chain.layers:
        if layer.kind == "neuron":
            new, internal, exit_, reset = _neuron_nodes(layer, dt)
            resets.append(reset)
        else:
            new, internal, exit_ = [(layer.name, _layer_node(layer))], [], layer.name
        for n, node in new:
            if n in nodes or n == "output":
                raise NativeModelError(f"its node name '{n}' is already taken by another layer", layer=layer.path,
                                       cls=_cls(layer.module))
            nodes[n] = node
        edges.append((prev, layer.name))
        edges += internal
        prev = exit_
    nodes["output"] = nir.Output(output_type={"output": np.array(chain.output_shape)})
    edges.append((prev, "output"))
    reset = Counter(resets).most_common(1)[0][0] if resets else sem.DEFAULT_RESET
    import snntorch

    meta = make_metadata(sem.Semantics(float(dt), reset, "euler"),
                         native=f"snntorch {snntorch.__version__} {module_cls} (snnbridge from_native)")
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=False)
    try:
        prepare(graph)
    except GraphError as e:  # a bug here, or a parameter NIR cannot hold: name the layer
        layer = getattr(e, "node", None)
        raise NativeModelError(f"cannot be written as NIR: {e}", layer=layer) from None
    return graph


def from_native(module: nn.Module, input_shape: Sequence[int], dt: float = 1e-3) -> nir.NIRGraph:
    """The NIR graph (snnbridge metadata, per-node options and pinned constants) of a per-step snnTorch ``module``.

    Args:
        module: an ``nn.Sequential`` or chain-like module of the layers listed in the module docstring, or a
            :class:`SnnTorchNetwork` from :func:`to_native` (its current, possibly fine-tuned, parameters; it keeps
            its own dt).
        input_shape: per-sample input shape (no time, no batch axis), e.g. ``(784,)`` or ``(1, 28, 28)``.
        dt: the step in seconds written into the graph (snnTorch has none; it only labels the time constants).

    Raises:
        NativeModelError: naming the layer path and class, for anything that cannot be carried over exactly.
    """
    dt = native_dt(dt)
    if isinstance(module, SnnTorchNetwork):
        shape = _check_input_shape(input_shape)
        if shape != tuple(module.input_shape):
            raise NativeModelError(f"input_shape {list(shape)} does not fit the module's input {module.input_shape}",
                                   layer="input", cls=_cls(module))
        return module.to_nir()
    chain = analyse(module, input_shape)
    return chain_graph(chain, dt, type(module).__name__)


def run_native(module: nn.Module, inputs, dtype: torch.dtype = torch.float64, dt: float = 1e-3) -> Recording:
    """Run a per-step snnTorch ``module`` as snnTorch runs it, once per step of ``inputs`` ``[T, B, *input_shape]``.

    The module itself is left untouched: a copy is cast to ``dtype`` (exact for float32 weights in float64), put in
    ``eval`` mode and given a fresh hidden state; forward pre-hooks cast each stateless layer's input to its
    parameters' dtype (exact for 0/1 spikes).  Returns a :class:`Recording` (``backend="snntorch-native"``) with
    every spiking layer's spikes (``bool [T, B, *shape]``) and pre-reset membranes, keyed by the node names
    :func:`from_native` gives, plus ``"output"`` (the module's return value, element 0 when it returns a tuple).
    """
    if isinstance(module, SnnTorchNetwork):
        return module.record(inputs, dtype)
    x = inputs if isinstance(inputs, torch.Tensor) else torch.as_tensor(np.asarray(inputs))
    if x.dim() < 3:
        raise NativeModelError(f"inputs must be [T, B, *input_shape], got shape {list(x.shape)}")
    chain = analyse(module, tuple(x.shape[2:]))
    fg = prepare(chain_graph(chain, dt, type(module).__name__))
    work = _working_copy(module, dtype)
    x = x.to(dtype)
    ys = []
    with _hooks(work, chain.layers, cast=True) as info, torch.no_grad():
        for t in range(x.shape[0]):
            y = work(x[t])
            ys.append(y[0] if isinstance(y, tuple) else y)
    outputs: dict[str, torch.Tensor] = {}
    membranes: dict[str, torch.Tensor] = {}
    for layer in chain.layers:
        if layer.kind == "neuron":
            outputs[layer.name] = torch.stack(info["spk"][layer.path]) != 0
            membranes[layer.name] = torch.stack(info["mem"][layer.path]).to(dtype)
    y = torch.stack(ys)
    outputs["output"] = (y != 0) if spike_valued(fg)["output"] else y
    return Recording(outputs, membranes, {n: fg.type_of(n) for n in fg.order}, fg.semantics.dt, "snntorch-native",
                     list(fg.order))


# --------------------------------------------------------------------------- out: a trainable snnTorch module


class TrainableScale(nn.Module):
    """NIR ``Scale`` with a trainable ``scale`` (``s ⊙ x``)."""

    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.scale = nn.Parameter(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class ThresholdLayer(nn.Module):
    """NIR ``Threshold``: ``H(x - threshold)`` through :func:`spike_atan` (surrogate gradient)."""

    def __init__(self, threshold: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("threshold", threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spike_atan(x - self.threshold)


def _key(name: str) -> str:
    return name.replace(".", "__")


class SnnTorchNetwork(nn.Module):
    """A NIR graph as a trainable module of real snnTorch and torch layers (built by :func:`to_native`).

    ``layers`` is an ``nn.ModuleDict`` named after the graph's nodes (``.`` of nested graphs → ``__``):
    ``nn.Linear``/``nn.Conv1d``/``nn.Conv2d``/``nn.AvgPool2d``/``nn.Flatten``/:class:`TrainableScale` for stateless
    nodes and, for each neuron node, a :class:`~snnbridge.backends.snntorch_backend.SnnTorchNeuronLayer` holding
    ``snn.Leaky`` / ``snn.Synaptic`` (``learn_beta``/``learn_alpha``/``learn_threshold``; IF/I keep ``beta = 1``)
    configured for the node's reset mode and timing.  Spikes use :func:`spike_atan`: forward ``H(x > 0)`` in the
    membrane's dtype, ATan surrogate backward.  Every parameter requires grad.

    Use: ``y = net(x)`` with ``x`` ``[T, B, *input_shape]`` → the Output node's ``[T, B, *shape]``;
    ``net(x, record=True)`` also keeps every node's output and every neuron's pre-reset membrane in
    ``net.last_recording`` (a :class:`Recording`); per step: ``state = net.init_state(B)``, then
    ``y_t, state = net.step(x_t, state)`` (``x_t`` ``[B, *input_shape]``).  Feed-forward graphs run layer by layer
    and recurrent ones step by step, exactly as the reference executor, so float64 spikes equal it at every step.
    ``from_native(net, input_shape)`` (or :meth:`to_nir`) writes the current parameters back to NIR.
    """

    def __init__(self, graph: nir.NIRGraph, fg: FlatGraph, dtype: torch.dtype = torch.float64,
                 device: str | torch.device = "cpu") -> None:
        super().__init__()
        from snnbridge.backends._torch_graph import DelayLayer, torch_layer
        from snnbridge.backends.snntorch_backend import SnnTorchNeuronLayer

        device = torch.device(device)
        self._graph = graph
        self._fg = fg
        layers: dict[str, nn.Module] = {}
        for name in fg.order:
            kind = fg.type_of(name)
            if kind in sem.NEURON_TYPES:
                layers[_key(name)] = SnnTorchNeuronLayer(fg, name, dtype, device, trainable=True,
                                                         spike_grad=spike_atan)
            elif kind == "Threshold":
                thr = torch.as_tensor(np.asarray(fg.nodes[name].threshold, dtype=np.float64), dtype=dtype)
                layers[_key(name)] = ThresholdLayer(thr.to(device))
            elif kind == "Scale":
                layers[_key(name)] = TrainableScale(torch.as_tensor(_f64(fg.nodes[name].scale), dtype=dtype,
                                                                    device=device))
            elif kind == "Delay":
                layers[_key(name)] = DelayLayer(fg, name, dtype, device)
            else:
                layers[_key(name)] = torch_layer(fg, name, dtype, device).requires_grad_(True)
        self.layers = nn.ModuleDict(layers)
        with torch.no_grad():  # own every tensor: torch.as_tensor shares memory with the graph's float64 arrays
            for t in list(self.parameters()) + list(self.buffers()):
                t.data = t.data.clone()
        self.last_recording: Recording | None = None

    # ----------------------------------------------------------------- description
    @property
    def graph(self) -> FlatGraph:
        """The prepared graph this module realises (dt, order, shapes, options)."""
        return self._fg

    @property
    def dt(self) -> float:
        return self._fg.semantics.dt

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self._fg.out_shapes[self._fg.inputs[0]])

    def layer(self, name: str) -> nn.Module:
        """The layer of node ``name``."""
        return self.layers[_key(name)]

    def _dtype(self) -> torch.dtype:
        for t in list(self.parameters()) + list(self.buffers()):
            if t.is_floating_point():
                return t.dtype
        return torch.float64

    # ----------------------------------------------------------------- running
    def _is_neuron(self, name: str) -> bool:
        return self._fg.type_of(name) in sem.NEURON_TYPES

    def _is_delay(self, name: str) -> bool:
        return self._fg.type_of(name) == "Delay"

    def init_state(self, batch: int) -> dict[str, Any]:
        """Every neuron's state before step 0 and the recurrent edges' zero values, for :meth:`step`."""
        fg = self._fg
        dtype, device = self._dtype(), next(iter(self.buffers())).device if list(self.buffers()) else "cpu"
        state: dict[str, Any] = {n: self.layer(n).init_state(batch) for n in fg.order
                                 if self._is_neuron(n) or self._is_delay(n)}
        state["__prev__"] = {a: torch.zeros((batch,) + fg.out_shapes[a], dtype=dtype, device=device)
                             for a, _ in fg.recurrent}
        return state

    def _node_step(self, name: str, x: torch.Tensor, state: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        mod = self.layer(name)
        if self._is_neuron(name):
            y, state[name], v = mod(x, state[name])
            return y, v
        if self._is_delay(name):
            y, state[name] = mod.step(x, state[name])
            return y, None
        return mod(x), None

    def step(self, x: torch.Tensor, state: dict | None = None,
             _cur: dict | None = None) -> tuple[torch.Tensor, dict]:
        """One step on ``x`` ``[B, *input_shape]`` → ``(output [B, *shape], new state)``."""
        fg = self._fg
        state = self.init_state(x.shape[0]) if state is None else dict(state)
        prev = state["__prev__"]
        cur: dict[str, torch.Tensor] = {} if _cur is None else _cur
        mems = cur.setdefault("__mem__", {}) if _cur is not None else {}
        for name in fg.order:
            if name in fg.inputs:
                inp = x
            else:
                inp = add_all([prev[p] if (p, name) in fg.recurrent else cur[p] for p in fg.preds[name]])
            cur[name], v = self._node_step(name, inp, state)
            if v is not None:
                mems[name] = v
        state["__prev__"] = {a: cur[a] for a in prev}
        return cur[fg.outputs[0]], state

    def forward(self, x: torch.Tensor, record: bool = False) -> torch.Tensor:
        """Run ``x`` ``[T, B, *input_shape]``; returns the Output node's ``[T, B, *shape]`` (``record``: keep every
        node in ``self.last_recording``)."""
        fg = self._fg
        x = x.to(self._dtype())
        outs: dict[str, torch.Tensor] = {}
        mems: dict[str, torch.Tensor] = {}
        if fg.is_recurrent:
            state = self.init_state(x.shape[1])
            per_step: dict[str, list] = {n: [] for n in fg.order}
            mem_steps: dict[str, list] = {}
            for t in range(x.shape[0]):
                cur: dict = {}
                _, state = self.step(x[t], state, _cur=cur)
                for n in fg.order:
                    per_step[n].append(cur[n])
                for n, v in cur["__mem__"].items():
                    mem_steps.setdefault(n, []).append(v)
            outs = {n: torch.stack(v) for n, v in per_step.items()}
            mems = {n: torch.stack(v) for n, v in mem_steps.items()}
        else:
            T, B = x.shape[:2]
            for name in fg.order:
                inp = x if name in fg.inputs else add_all([outs[p] for p in fg.preds[name]])
                mod = self.layer(name)
                if self._is_neuron(name):
                    enc = mod.encode(inp)
                    state = mod.init_state(B)
                    ys, vs = [], []
                    for t in range(T):
                        y, state, v = mod.cell(enc[t], state)
                        ys.append(y)
                        vs.append(v)
                    outs[name], mems[name] = torch.stack(ys), torch.stack(vs)
                elif self._is_delay(name):
                    outs[name] = mod.over_time(inp)
                else:
                    y = mod(inp.reshape((T * B,) + tuple(inp.shape[2:])))
                    outs[name] = y.reshape((T, B) + tuple(y.shape[1:]))
        if record:
            flags = spike_valued(fg, {n: False for n in fg.inputs})
            rec = {n: ((v.detach() > 0.5) if flags[n] else v.detach()) for n, v in outs.items()}
            self.last_recording = Recording(rec, {n: v.detach() for n, v in mems.items()},
                                            {n: fg.type_of(n) for n in fg.order}, fg.semantics.dt, "snntorch-module",
                                            list(fg.order))
        return outs[fg.outputs[0]]

    def record(self, inputs, dtype: torch.dtype | None = None) -> Recording:
        """Run ``inputs`` ``[T, B, *input_shape]`` without gradients (on a ``dtype`` copy when given) and return the
        :class:`Recording` of every node."""
        net = self if dtype is None or dtype == self._dtype() else copy.deepcopy(self).to(dtype)
        x = inputs if isinstance(inputs, torch.Tensor) else torch.as_tensor(np.asarray(inputs))
        with torch.no_grad():
            net(x.to(net._dtype()), record=True)
        return net.last_recording

    # ----------------------------------------------------------------- back to NIR
    def to_nir(self) -> nir.NIRGraph:
        """The graph with this module's current parameters (weights, biases, scales, thresholds, decays).

        Unchanged neuron nodes are written as they came; a neuron whose ``beta``/``alpha``/``threshold`` changed
        gets new pinned constants and consistent ``tau``/``r``/``v_leak`` (``w_in``) for the graph's dt and
        integration.  Nested graphs keep their structure; the metadata records the dt/reset/integration in use.
        """
        out = copy.deepcopy(self._graph)
        fg = self._fg
        out.metadata = dict(out.metadata or {}, dt=float(fg.semantics.dt), reset=fg.semantics.reset,
                            integration=fg.semantics.integration)
        for name in fg.order:
            node = graph_node(out, name)
            if node is None:  # pragma: no cover - every flat name resolves
                continue
            kind = fg.type_of(name)
            mod = self.layer(name)
            if kind in ("Affine", "Linear", "Conv1d", "Conv2d"):
                node.weight = _f64(mod.weight)
                if kind != "Linear" and getattr(node, "bias", None) is not None and mod.bias is not None:
                    node.bias = _f64(mod.bias).reshape(np.shape(node.bias)) if np.size(node.bias) == mod.bias.numel() \
                        else _f64(mod.bias)
            elif kind == "Scale":
                node.scale = _f64(mod.scale).reshape(np.shape(fg.nodes[name].scale))
            elif kind in sem.NEURON_TYPES:
                _write_neuron(node, fg, name, mod)
        return out


def _cell_constants(layer) -> dict[str, np.ndarray]:
    """The neuron layer's current discrete constants (clamped as snnTorch clamps them), float64."""
    if layer.synaptic is not None:
        s = layer.synaptic
        out = {"decay": torch.clamp(s.beta.detach(), 0, 1), "syn_decay": torch.clamp(s.alpha.detach(), 0, 1)}
    else:
        out = {"decay": torch.clamp(layer.leaky.beta.detach(), 0, 1)}
        if layer.syn_leaky is not None:
            out["syn_decay"] = torch.clamp(layer.syn_leaky.beta.detach(), 0, 1)
    cell = layer.synaptic if layer.synaptic is not None else layer.leaky
    if layer.spiking:
        out["threshold"] = cell.threshold.detach()
    return {k: _f64(v) for k, v in out.items()}


def _continuous(decay: np.ndarray, gain: np.ndarray, bias: np.ndarray, dt: float, integration: str):
    """``(tau, r, v_leak)`` whose discrete constants at ``dt`` are ``(decay, gain, bias)``."""
    d = np.clip(decay, 0.0, 1.0)
    if integration == "exact":
        safe = np.clip(d, 1e-300, 1.0 - 1e-16)
        tau = np.where(d >= 1.0, BIG_TAU * dt, -dt / np.log(safe))
        fac = np.where(d >= 1.0, 1.0 / BIG_TAU, 1.0 - d)
    else:
        tau = _tau_of(d, dt)
        fac = dt / tau
    return tau, gain / fac, bias / fac


def _write_neuron(node, fg: FlatGraph, name: str, layer) -> None:
    c = fg.coefficients(name)
    now = _cell_constants(layer)
    shape = fg.in_shapes[name]
    same = all(np.array_equal(np.broadcast_to(v, shape), np.broadcast_to(getattr(c, k), shape))
               for k, v in now.items())
    if same:
        return
    kind, dt, integ = fg.type_of(name), fg.semantics.dt, fg.semantics.integration
    full = lambda a: np.broadcast_to(np.asarray(a, dtype=np.float64), shape).copy()  # noqa: E731
    meta = dict(getattr(node, "metadata", None) or {})
    decay, gain, bias = full(now["decay"]), full(c.gain), full(c.bias)
    if "threshold" in now:
        node.v_threshold = full(now["threshold"])
    if kind in ("IF", "I"):
        node.metadata = meta
        return
    tau, r, v_leak = _continuous(decay, gain, bias, dt, integ)
    meta.update(decay=decay, gain=gain, bias=bias, coefficients_dt=float(dt))
    if kind in ("LIF", "LI"):
        node.tau, node.r, node.v_leak = tau, r, v_leak
    else:
        syn_decay, syn_gain = full(now["syn_decay"]), full(c.syn_gain)
        tau_syn, w_in, _ = _continuous(syn_decay, syn_gain, np.zeros(shape), dt, integ)
        node.tau_mem, node.r, node.v_leak, node.tau_syn, node.w_in = tau, r, v_leak, tau_syn, w_in
        meta.update(syn_decay=syn_decay, syn_gain=syn_gain)
    node.metadata = meta


def to_native(graph: nir.NIRGraph | FlatGraph | str | Path, dt: float | None = None,
              dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu", reset: str | None = None,
              integration: str | None = None) -> SnnTorchNetwork:
    """A trainable :class:`SnnTorchNetwork` of snnTorch layers realising ``graph`` (any graph the snnTorch adapter
    runs: feed-forward or recurrent, every reset mode and timing).

    ``dt``/``reset``/``integration`` override the graph's metadata as in ``compile``; ``dtype`` is the dtype the
    constants are cast to (default float64, the reference; ``.float()`` afterwards for speed).
    """
    from snnbridge.backends.snntorch_backend import SnnTorchBackend
    from snnbridge.bridge.io import read_graph

    if isinstance(graph, (str, Path)):
        graph = read_graph(graph)
    fg = SnnTorchBackend().prepare(graph, dt, reset, integration, dtype)
    if isinstance(graph, FlatGraph):
        graph = _flat_to_graph(graph)
    return SnnTorchNetwork(graph, fg, dtype, device)


def _flat_to_graph(fg: FlatGraph) -> nir.NIRGraph:
    edges = [(p, n) for n in fg.order for p in fg.preds[n]]
    return nir.NIRGraph(nodes=dict(fg.nodes), edges=edges, metadata=dict(fg.metadata), type_check=False)
