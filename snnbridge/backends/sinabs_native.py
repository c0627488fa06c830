"""Native Sinabs models in and out: :func:`from_native`, :func:`run_native`, :func:`to_native` (sinabs 3.1.3, read
from ``sinabs/layers/functional/lif.py``, ``sinabs/activation/spike_generation.py`` and ``reset_mechanism.py``).

What a Sinabs ``LIF`` / ``IAF`` layer computes per step (``alpha`` = the layer's ``alpha_mem_calculated``, i.e.
``exp(-1/tau_mem)`` in the parameter's dtype, or the ``alpha_mem`` parameter with ``train_alphas=True``; ``IAF`` is
``LIF`` with ``tau_mem = inf``, ``alpha = 1``, ``norm_input=False``), and the NIR node that steps so:

* ``v = alpha·v + (1 - alpha)·x`` (``norm_input=True``, the default) → ``LIF`` with pinned ``decay = alpha``,
  ``gain = 1 - alpha`` (as Sinabs computes it, in the layer's dtype), ``bias = 0``;
* ``v = alpha·v + x`` (``norm_input=False``) → ``LIF`` with ``gain = 1``; ``IAF`` → ``IF(r=1)``.

The reference's ``decay·v + (gain·x + 0)`` is the same expression: float64 runs are bit-identical.  Continuous
parameters written alongside: ``tau = dt/(1 - alpha)``, ``r = gain·tau/dt`` (consistent with the pinned values).

* Spikes: only ``spike_fn=SingleSpike`` (one spike where ``v - θ >= 0``: the reference's ``inclusive`` compare,
  written as the node's ``threshold`` key).  Sinabs's default ``MultiSpike`` emits ``trunc(v/θ)`` spikes per step
  and ``MaxSpike`` up to a maximum: the reference has no multi-spike neuron, so they are refused by name.
* Reset: ``MembraneSubtract()`` (subtract θ; ``subtract_value`` ``None`` or equal to θ) → ``reset="subtract"``;
  ``MembraneReset(reset_value=0)`` → ``reset="zero"`` to 0 (Sinabs adds ``reset_value`` to every neuron, so any
  other ``reset_value`` is refused).  ``SingleSpike`` returns float32 spikes, so ``spikes·θ`` with a 0-dim θ
  subtracts ``float32(θ)``: a scalar threshold that is not a float32 number is refused (per-neuron thresholds are
  subtracted exactly).  A spike threshold ``nextafter(s, +inf)`` with ``MembraneSubtract(subtract_value=s)`` (what
  :func:`to_native` builds for the reference's strict compare) is imported as a ``strict`` node at ``s``.
* Initial state: zeros (``reset_states``).  Refused by name: ``tau_syn`` (Sinabs computes ``alpha_s·(i + x)``,
  another rounding than the reference's ``syn_decay·i + syn_gain·x``), ``min_v_mem``, ``ALIF``, ``ExpLeak``,
  recurrent layers and every other layer.

Layouts: a model of ``LIF``/``IAF`` takes ``[B, T, ...]``; between them only ``nn.Linear`` (acts on the last axis)
and ``nn.Identity``/``nn.Dropout`` (eval) are accepted.  A model of ``LIFSqueeze``/``IAFSqueeze`` takes
``[B·T, ...]`` (sample-major) and may hold ``nn.Linear``, ``nn.Conv1d``/``nn.Conv2d``, ``nn.AvgPool2d``,
``nn.Flatten`` as well; the two layouts cannot be mixed.  :func:`run_native` feeds ``[T, B, ...]`` in the model's
layout (a squeeze layer's ``batch_size`` is set on the copy it runs).  The graph pins the constants the module
computes in its own dtype: import the model in the dtype you will compare it in (``.double()`` first).
"""

from __future__ import annotations

import copy
from collections import Counter
from functools import lru_cache
from typing import Sequence

import nir
import numpy as np
import torch
from torch import nn

from snnbridge.backends.native_args import export_chain, native_dt, native_graph, native_input_shape
from snnbridge.backends.norse_native import _exact_cast, _Layer, _stateless_node
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.metadata import make_metadata
from snnbridge.bridge.recording import Recording
from snnbridge.errors import NativeModelError

_PLAIN = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.AvgPool2d, nn.Flatten)
_DROP = (nn.Identity, nn.Dropout)


def _sl():
    import sinabs.activation as act
    import sinabs.layers as sl

    return sl, act


@lru_cache(maxsize=1)
def typed_single_spike() -> type:
    """``TypedSingleSpike``: Sinabs's ``SingleSpike`` (same compare ``v - θ >= 0``, same backward) returning the
    membrane's dtype, so that a float64 :func:`to_native` model chains (``SingleSpike`` returns float32)."""
    _, act = _sl()

    class TypedSingleSpike(act.SingleSpike):
        """Sinabs's ``SingleSpike`` whose spikes have the membrane's dtype."""

        @staticmethod
        def forward(ctx, v_mem, spike_threshold, surrogate_grad_fn):  # noqa: D102
            return act.SingleSpike.forward(ctx, v_mem, spike_threshold, surrogate_grad_fn).to(v_mem.dtype)

    return TypedSingleSpike


def _err(la: _Layer, message: str) -> NativeModelError:
    return NativeModelError(message, layer=la.path or "<root>", cls=la.cls)


def _neuron_types() -> tuple[type, ...]:
    sl, _ = _sl()
    return sl.LIF, sl.IAF, sl.LIFSqueeze, sl.IAFSqueeze


def _is_neuron(mod: nn.Module) -> bool:
    return type(mod) in _neuron_types()


def _squeezed(mod: nn.Module) -> bool:
    sl, _ = _sl()
    return type(mod) in (sl.LIFSqueeze, sl.IAFSqueeze)


def _leaves(module: nn.Module) -> tuple[list[_Layer], bool]:
    """The chain's layers in order (dropped layers excluded) and whether it is a squeeze (``[B·T, ...]``) model."""
    root = _Layer("", module)
    if not isinstance(module, nn.Sequential) or type(module) is not nn.Sequential:
        raise _err(root, "is not a torch.nn.Sequential; only chains of layers are imported")
    out: list[_Layer] = []

    def walk(mod: nn.Module, prefix: str) -> None:
        for key, child in mod.named_children():
            la = _Layer(f"{prefix}{key}", child)
            if type(child) is nn.Sequential:
                walk(child, la.path + ".")
            elif _is_neuron(child):
                out.append(la)
            elif type(child) in _DROP:
                if child.training and float(getattr(child, "p", 0.0)) > 0:
                    raise _err(la, "is in training mode (random); call model.eval() first")
            elif type(child) in _PLAIN:
                out.append(la)
            else:
                raise _err(la, "is not supported by from_native (supported: sinabs.layers LIF, IAF, LIFSqueeze, "
                               "IAFSqueeze with spike_fn=SingleSpike; nn.Linear, nn.Conv1d, nn.Conv2d, "
                               "nn.AvgPool2d, nn.Flatten, nn.Identity, nn.Dropout, nested nn.Sequential)")

    walk(module, "")
    neurons = [la for la in out if _is_neuron(la.module)]
    kinds = Counter(_squeezed(la.module) for la in neurons)
    if len(kinds) > 1:
        odd = next(la for la in neurons if _squeezed(la.module) == kinds.most_common()[-1][0])
        raise _err(odd, "mixes squeezed ([B·T, ...]) and unsqueezed ([B, T, ...]) neuron layers in one model")
    squeeze = bool(neurons) and _squeezed(neurons[0].module)
    if not squeeze:
        for la in out:
            if type(la.module) in (nn.Conv1d, nn.Conv2d, nn.AvgPool2d, nn.Flatten):
                raise _err(la, "acts on [B, T, ...] as if T were a channel axis in a model of unsqueezed LIF/IAF "
                               "layers; use LIFSqueeze/IAFSqueeze (input [B·T, ...]) for convolutional models")
    names = Counter(la.name for la in out)
    for la in out:
        if names[la.name] > 1 or la.name in ("input", "output"):
            raise _err(la, f"its node name '{la.name}' collides with another layer's")
    return out, squeeze


def _neuron_node(la: _Layer, shape: tuple[int, ...], dt: float) -> nir.NIRNode:
    """The NIR node of one Sinabs ``LIF``/``IAF`` layer over per-sample ``shape`` (see the module docstring)."""
    sl, act = _sl()
    m = la.module
    if m.spike_fn not in (act.SingleSpike, typed_single_spike()):
        raise _err(la, f"spike_fn {getattr(m.spike_fn, '__name__', m.spike_fn)} can emit several spikes per step "
                       f"(or is not Sinabs's); only spike_fn=SingleSpike matches the reference neuron")
    if getattr(m, "alpha_syn_calculated", None) is not None:
        raise _err(la, "has tau_syn: Sinabs's current alpha_s·(i + x) rounds differently from the reference's "
                       "syn_decay·i + syn_gain·x")
    if m.min_v_mem is not None:
        raise _err(la, "has min_v_mem (a membrane floor the reference does not have)")

    def arr(field: str, t) -> np.ndarray:
        a = np.asarray(t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else t, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise _err(la, f"'{field}' is not finite")
        try:
            return np.broadcast_to(a, shape).copy()
        except ValueError:
            raise _err(la, f"'{field}' has shape {list(a.shape)}, which does not broadcast to the layer's per-sample "
                           f"shape {list(shape)}") from None

    thr_t = torch.as_tensor(m.spike_threshold).detach()
    thr = arr("spike_threshold", thr_t)
    compare = "inclusive"
    reset_fn = m.reset_fn
    if isinstance(reset_fn, act.MembraneSubtract):
        sv = reset_fn.subtract_value
        value = thr_t if sv is None else sv
        with torch.no_grad():  # what Sinabs subtracts: float32 spikes times the value (a 0-dim value stays float32)
            eff_t = torch.ones(1, dtype=torch.float32) * (value.detach() if isinstance(value, torch.Tensor) else value)
        eff = arr("reset_fn.subtract_value", eff_t.reshape(np.shape(value) if np.ndim(value) else ()))
        above = arr("nextafter", torch.nextafter(torch.as_tensor(eff, dtype=thr_t.dtype),
                                                 torch.tensor(float("inf"), dtype=thr_t.dtype)))
        if np.array_equal(eff, thr):
            pass
        elif np.array_equal(above, thr):  # v - nextafter(s) >= 0 is v > s: a strict compare at s
            thr, compare = eff, "strict"
        else:
            raise _err(la, "subtracts a value that is not its spike_threshold (SingleSpike's float32 spikes times "
                           "a 0-dim threshold subtract float32(θ): use a float32 threshold or a per-neuron one)")
        reset = "subtract"
    elif isinstance(reset_fn, act.MembraneReset):
        if float(reset_fn.reset_value) != 0.0:
            raise _err(la, "MembraneReset(reset_value != 0): Sinabs adds reset_value to every neuron's membrane")
        reset = "zero"
    else:
        raise _err(la, f"reset_fn {type(reset_fn).__name__} is not MembraneSubtract or MembraneReset")
    meta: dict = {"reset": reset, "threshold": compare}
    zeros = np.zeros(shape)
    if type(m) in (sl.IAF, sl.IAFSqueeze):
        return nir.IF(r=np.ones(shape), v_threshold=thr, v_reset=zeros, metadata=meta)
    with torch.no_grad():
        alpha_t = m.alpha_mem_calculated.detach()
        gain_t = (1 - alpha_t) if m.norm_input else torch.ones_like(alpha_t)
    decay, gain = arr("alpha_mem", alpha_t), arr("gain", gain_t)
    if not (np.all(decay > 0) and np.all(decay < 1)):
        raise _err(la, f"alpha_mem {decay.min():g}..{decay.max():g} lies outside (0, 1)")
    tau = dt / (1.0 - decay)
    meta.update(decay=decay, gain=gain, bias=zeros.copy(), coefficients_dt=float(dt))
    return nir.LIF(tau=tau, r=gain * tau / dt, v_leak=zeros.copy(), v_threshold=thr, v_reset=zeros.copy(),
                   metadata=meta)


def from_native(module: nn.Module, input_shape: Sequence[int], dt: float = 1e-3) -> nir.NIRGraph:
    """The NIR graph (snnbridge metadata, pinned constants) that steps exactly as the Sinabs ``module``.

    Args:
        module: an ``nn.Sequential`` (nested too) of the supported layers (see the module docstring).
        input_shape: per-sample, per-step input shape (no time, no batch), e.g. ``(784,)`` or ``(2, 34, 34)``.
        dt: the step in seconds written to the graph (Sinabs counts ``tau_mem`` in steps).

    Raises :class:`NativeModelError` naming the layer path and class for anything it cannot carry over exactly.
    A :class:`SinabsNetwork` (what :func:`to_native` returns) is read through its ``net``.
    """
    input_shape, dt = native_input_shape(input_shape), native_dt(dt)
    module = module.net if isinstance(module, SinabsNetwork) else module
    layers, _ = _leaves(module)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.asarray(input_shape)})}
    edges: list[tuple[str, str]] = []
    prev, shape = "input", input_shape
    resets = []
    for la in layers:
        if _is_neuron(la.module):
            node = _neuron_node(la, shape, dt)
            resets.append(node.metadata["reset"])
            out_shape = shape
        else:
            try:
                p = next(la.module.parameters(), None)
                with torch.no_grad():
                    z = torch.zeros((1,) + shape, dtype=p.dtype if p is not None else torch.float64)
                    out_shape = tuple(la.module(z).shape[1:])
            except Exception as e:  # noqa: BLE001 - a shape the layer cannot take
                raise _err(la, f"cannot take per-sample shape {list(shape)}: {type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''}") from None
            node = _stateless_node(la, shape, out_shape)
        nodes[la.name] = node
        edges.append((prev, la.name))
        prev, shape = la.name, out_shape
    nodes["output"] = nir.Output(output_type={"output": np.asarray(shape)})
    edges.append((prev, "output"))
    from importlib.metadata import version

    meta = make_metadata(sem.Semantics(dt=dt, reset=Counter(resets).most_common(1)[0][0] if resets else "zero",
                                       integration="euler", threshold="inclusive"),
                         native=f"sinabs {version('sinabs')} {type(module).__name__}")
    return native_graph(nodes, edges, meta)


def run_native(module: nn.Module, inputs, dtype: torch.dtype = torch.float64, dt: float = 1e-3) -> Recording:
    """Run the Sinabs ``module`` as Sinabs runs it on ``inputs`` ``[T, B, *input_shape]``.

    A ``dtype`` copy in ``eval`` mode with zeroed states (``reset_states``) gets the whole sequence in its layout:
    ``[B, T, ...]``, or ``[B·T, ...]`` sample-major for squeeze layers (whose ``batch_size`` is set to ``B`` on the
    copy).  Sinabs's float32 spikes are cast to the next layer's dtype (exact for 0/1).  Every neuron layer's spikes
    (``bool [T, B, *shape]``) are recorded with forward hooks, keyed by the node names :func:`from_native` gives,
    plus ``"output"``; the user's module is not changed.  ``dt`` (s) labels the recording only.  A
    :class:`SinabsNetwork` runs through its ``net``.
    """
    from snnbridge.bridge.graph import prepare

    module = module.net if isinstance(module, SinabsNetwork) else module
    from snnbridge.bridge.walk import spike_valued

    x = torch.as_tensor(inputs)
    if x.dim() < 3:
        raise NativeModelError(f"inputs must be [T, B, *input_shape], got shape {list(x.shape)}")
    x = x.to(dtype)
    T, B = x.shape[:2]
    graph = from_native(module, tuple(x.shape[2:]), dt=dt)
    fg = prepare(graph)
    flags = spike_valued(fg)
    net = copy.deepcopy(module).to(dtype).eval()
    layers, squeeze = _leaves(net)
    sl, _ = _sl()
    for mod in net.modules():
        if isinstance(mod, sl.StatefulLayer):
            for name, _buf in list(mod.named_buffers(recurse=False)):
                mod.register_buffer(name, torch.zeros((0,), dtype=dtype))  # re-initialised on the first call
        if _squeezed(mod):
            mod.batch_size, mod.num_timesteps = int(B), -1

    def to_tb(y: torch.Tensor) -> torch.Tensor:
        y = y.reshape((B, T) + tuple(y.shape[1:])) if squeeze else y
        return y.transpose(0, 1)

    traces: dict[str, torch.Tensor] = {}
    handles = []
    for la in layers:
        if _is_neuron(la.module):
            def hook(m, args, out, name=la.name):
                traces[name] = to_tb(out.detach())
            handles.append(la.module.register_forward_hook(hook))
        elif isinstance(la.module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            handles.append(la.module.register_forward_pre_hook(_exact_cast))
    xb = x.transpose(0, 1)
    if squeeze:
        xb = xb.reshape((B * T,) + tuple(x.shape[2:]))
    try:
        with torch.no_grad():
            out = to_tb(net(xb.contiguous()))
    finally:
        for h in handles:
            h.remove()
    outputs = {name: y > 0.5 for name, y in traces.items()}
    outputs["output"] = out > 0.5 if flags.get("output") else out.to(dtype)
    return Recording(outputs, {}, {n: fg.type_of(n) for n in fg.order}, fg.semantics.dt, "sinabs-native",
                     list(fg.order))


# --------------------------------------------------------------------------- to_native


class SinabsNetwork(nn.Module):
    """A NIR chain as real Sinabs layers (what :func:`to_native` returns).

    ``net`` is an ``nn.Sequential`` of torch layers and ``sinabs.layers.IAFSqueeze`` / ``LIFSqueeze``
    (``spike_fn=SingleSpike``, ``train_alphas=True``: the decay is the trainable ``alpha_mem``), input ``[B·T, ...]``
    sample-major, as Sinabs's convolutional models are written.  ``forward(x [T, B, *input_shape]) ->
    [T, B, *output_shape]`` zeroes the states, sets the squeeze layers' ``batch_size`` to ``B`` and reshapes.
    Every weight requires grad (``alpha_mem`` too with ``learn_decay=True``; Sinabs's surrogate:
    ``SingleExponential``).
    """

    def __init__(self, net: nn.Sequential, input_shape: tuple[int, ...], dt: float) -> None:
        super().__init__()
        self.net = net
        self.input_shape = tuple(input_shape)
        self.dt = float(dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sl, _ = _sl()
        T, B = x.shape[:2]
        for mod in self.net.modules():
            if isinstance(mod, sl.StatefulLayer):
                for name, _buf in list(mod.named_buffers(recurse=False)):
                    mod.register_buffer(name, torch.zeros((0,), dtype=x.dtype, device=x.device))
            if _squeezed(mod):
                mod.batch_size, mod.num_timesteps = int(B), -1
        xb = x.transpose(0, 1).reshape((B * T,) + tuple(x.shape[2:]))
        y = self.net(xb.contiguous())
        return y.reshape((B, T) + tuple(y.shape[1:])).transpose(0, 1)

    def to_nir(self) -> nir.NIRGraph:
        """The graph of ``net`` with its current weights and decays (see :func:`from_native`)."""
        return from_native(self.net, self.input_shape, dt=self.dt)


def _sinabs_neuron(fg, name: str, learn_decay: bool = False) -> nn.Module:
    """``IAFSqueeze``/``LIFSqueeze`` stepping as node ``name``, or :class:`NativeModelError` naming the node."""
    from snnbridge.backends.sinabs_backend import sinabs_threshold

    sl, act = _sl()
    kind = fg.type_of(name)

    def refuse(why: str) -> NativeModelError:
        return NativeModelError(f"to_native: {why}", layer=name, cls=kind)

    if kind not in ("IF", "LIF"):
        raise refuse("only IF and LIF nodes become Sinabs IAFSqueeze / LIFSqueeze")
    c = fg.coefficients(name)
    opts = fg.options(name)
    shape = tuple(fg.in_shapes[name])
    if opts.reset_timing != "immediate":
        raise refuse(f"reset timing '{opts.reset_timing}' (Sinabs resets in the step that fired)")
    reset = fg.node_reset[name]
    if reset == "none":
        raise refuse("reset 'none' (a Sinabs spiking layer always resets)")
    if reset == "zero" and np.any(np.asarray(c.v_reset) != 0):
        raise refuse("a zero reset to v_reset != 0 (Sinabs's MembraneReset adds reset_value to every neuron)")
    v0, _ = sem.initial_values(opts, torch.zeros((1,) + shape, dtype=torch.float64))
    if not torch.all(v0 == 0):
        raise refuse("v_init != 0 (Sinabs's states start at zero)")
    if np.any(np.asarray(c.bias) != 0):
        raise refuse("a bias (v_leak) != 0: Sinabs's LIF leaks towards 0")

    def full(a) -> torch.Tensor:
        return torch.as_tensor(np.broadcast_to(np.asarray(a, dtype=np.float64), shape).copy())

    decay, gain = full(c.decay), full(c.gain)
    thr = full(c.threshold)
    fire = thr if c.inclusive else sinabs_threshold(thr)
    reset_fn = act.MembraneReset(reset_value=0.0) if reset == "zero" else act.MembraneSubtract(subtract_value=thr)
    if bool(torch.all(decay == 1)):
        if not bool(torch.all(gain == 1)):
            raise refuse("IAF integrates v + x: the node's gain must be 1")
        mod = sl.IAFSqueeze(batch_size=1, spike_threshold=fire, spike_fn=typed_single_spike(), reset_fn=reset_fn)
    else:
        if not (bool(torch.all(decay > 0)) and bool(torch.all(decay < 1))):
            raise refuse("a decay outside (0, 1)")
        if bool(torch.all(gain == 1)):
            norm = False
        elif bool(torch.all((gain - (1 - decay)).abs() <= 1e-12 * gain.abs())):
            norm = True
        else:
            raise refuse("its gain is neither 1 (norm_input=False) nor 1 - decay (norm_input=True)")
        mod = sl.LIFSqueeze(batch_size=1, tau_mem=1.0, spike_threshold=fire, spike_fn=typed_single_spike(),
                            reset_fn=reset_fn, train_alphas=True, norm_input=norm)
        mod.alpha_mem = nn.Parameter(decay.clone(), requires_grad=learn_decay)
    with torch.no_grad():
        mod.spike_threshold = nn.Parameter(fire.clone(), requires_grad=False)
    return mod


def to_native(graph, dt: float | None = None, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu",
              reset: str | None = None, integration: str | None = None, learn_decay: bool = False) -> SinabsNetwork:
    """A trainable :class:`SinabsNetwork` of real Sinabs layers realising the chain ``graph`` (NIR graph,
    FlatGraph or path).

    Accepted: a chain of ``Affine``/``Linear``/``Conv1d``/``Conv2d``/``AvgPool2d``/``SumPool2d``/``Flatten`` and
    ``IF``/``LIF`` nodes with an immediate reset (subtract, or zero to 0), zero ``v_init`` and ``bias``, and a gain of
    1 or ``1 - decay``; per-neuron decays and thresholds are kept (Sinabs takes tensors).  Anything else is refused
    naming the node.  ``dtype``: the parameters' dtype (float64 default, the reference's).  ``learn_decay``: let
    the ``alpha_mem`` parameters require grad (off by default: an unconstrained step easily leaves (0, 1), which
    :func:`from_native` then refuses).
    """

    from snnbridge.backends._torch_graph import torch_layer
    from snnbridge.backends.sinabs_backend import SinabsBackend

    fg = export_chain(SinabsBackend(), graph, dt, reset, integration, dtype)
    net = nn.Sequential()
    for name in fg.order:
        kind = fg.type_of(name)
        if len(fg.preds[name]) > 1 or sum(name in fg.preds[n] for n in fg.order) > 1:
            raise NativeModelError("to_native: the graph branches here (only chains become nn.Sequential)",
                                   layer=name, cls=kind)
        if kind in ("Input", "Output"):
            continue
        if kind in sem.NEURON_TYPES:
            mod = _sinabs_neuron(fg, name, learn_decay)
        else:
            mod = torch_layer(fg, name, dtype, torch.device(device)) if kind in sem.STATELESS_TYPES and \
                kind != "Threshold" else None
            if type(mod) not in _PLAIN:
                raise NativeModelError(f"to_native: node type {kind} has no Sinabs-model layer here", layer=name,
                                       cls=kind)
            for p in mod.parameters():  # torch_layer may share memory with the graph's arrays
                p.data = p.data.clone()
            mod.requires_grad_(True)
        net.add_module(name.replace(".", "_"), mod)
    net.to(dtype=dtype, device=torch.device(device))
    return SinabsNetwork(net, tuple(fg.out_shapes[fg.inputs[0]]), float(fg.semantics.dt))
