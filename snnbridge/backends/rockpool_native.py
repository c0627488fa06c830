"""Native Rockpool models in and out: :func:`from_native`, :func:`run_native`, :func:`to_native` (rockpool 3.1.0,
read from ``rockpool/nn/modules/torch/lif_torch.py``).

``LIFTorch`` steps (per batch element; ``α = alpha``, ``β = beta`` as the module computes them, ``θ = threshold``)::

    i ← i + x[t]  (+ w_rec·s[t-1]);   v ← α·v;   i ← β·i;   v ← v + Σ_syn i + noise + bias
    s[t] = StepPWL(v) ;  v ← v - s[t]·θ

Read with the *jumped* current ``j[t] = i[t-1] + x[t]`` (what Norse's ``LIFCell`` does too), this is exactly the
reference ``CubaLIF`` with pinned ``syn_decay = β``, ``syn_gain = 1``, ``decay = α``, ``gain = β``, ``bias = 0``:
``j[t] = β·j[t-1] + 1·x[t]`` rounds as Rockpool's ``(β·j[t-1]) + x[t]`` and ``α·v + (β·j + 0)`` as
``(α·v + β·j) + 0 + 0`` — bit-identical in float64.  ``StepPWL`` with ``max_spikes_per_dt = 1`` gives
``(v >= θ)·min(⌊v/θ⌋, 1)`` = ``v >= θ`` for ``θ > 0`` (the reference's ``inclusive`` compare), then a subtract reset.

Accepted: ``rockpool.nn.combinators.Sequential`` of ``LinearTorch`` (→ ``Linear``/``Affine`` with the transposed
weight) and ``LIFTorch`` with ``n_synapses = 1``, ``max_spikes_per_dt = 1``, ``spike_generation_fn`` Rockpool's
``StepPWL`` (or :func:`typed_step_pwl`, what :func:`to_native` builds), ``bias = 0``, ``noise_std = 0``, no (or
all-zero) recurrent weights, positive thresholds.  Refused by name (:class:`~snnbridge.errors.NativeModelError`):
Rockpool's default ``max_spikes_per_dt = 2^16`` (``⌊v/θ⌋`` spikes per step: the reference has no multi-spike neuron),
a bias or noise (another rounding / randomness), several synapses, recurrence, other spike functions and every other
module.  Node names are the module names (``0_LinearTorch``).
The graph pins ``α``/``β`` as the module computes them in its own dtype (``exp(-dt/tau)``): import the model in the
dtype you compare it in (``.to(torch.float64)`` first).

:func:`run_native` runs a copy: Rockpool 3.1.0 cannot run a ``LIFTorch`` in float64 (its float32 spikes meet the
float64 ``w_rec`` in ``F.linear``), so the copy's spike function returns ``StepPWL``'s spike counts in the membrane's
dtype (exact: small integers) and its float32 outputs are cast for the next float64 layer (exact for 0/1); the state
is reset first (Rockpool keeps batch element 0's state between calls).

:func:`to_native` builds the inverse: a ``TorchSequential`` (what ``Sequential`` returns for torch modules) of
``LinearTorch`` and ``LIFTorch(leak_mode="decays")`` named by the graph's nodes, for chains of ``Linear``/``Affine``
and ``CubaLIF`` nodes of exactly the form above; everything else is refused naming the node and field.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from functools import lru_cache
from typing import Sequence

import nir
import numpy as np
import torch

from snnbridge.backends.native_args import export_chain
from snnbridge.backends.norse_native import _exact_cast, _Layer
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.metadata import make_metadata
from snnbridge.bridge.recording import Recording
from snnbridge.errors import NativeModelError, UnsupportedNodeError


def _rp():
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.lif_torch import StepPWL

    return Sequential, LinearTorch, LIFTorch, StepPWL


@lru_cache(maxsize=1)
def typed_step_pwl() -> type:
    """``TypedStepPWL``: Rockpool's ``StepPWL`` (same ``(v >= θ)·min(⌊v/θ⌋, max_spikes_per_dt)``, same surrogate
    backward) returning the membrane's dtype, so that a float64 ``LIFTorch`` runs (``StepPWL`` returns float32,
    which Rockpool 3.1.0 then feeds to ``F.linear`` with the float64 ``w_rec``)."""
    _, _, _, StepPWL = _rp()

    class TypedStepPWL(StepPWL):
        """Rockpool's ``StepPWL`` whose spikes have the membrane's dtype."""

        @staticmethod
        def forward(ctx, x, threshold, window, max_spikes_per_dt):  # noqa: D102
            return StepPWL.forward(ctx, x, threshold, window, max_spikes_per_dt).to(x.dtype)

    return TypedStepPWL


def _err(la: _Layer, message: str) -> NativeModelError:
    return NativeModelError(message, layer=la.path or "<root>", cls=la.cls)


def _leaves(module) -> list[_Layer]:
    _, LinearTorch, LIFTorch, _ = _rp()
    root = _Layer("", module)
    if type(module).__name__ != "TorchSequential":
        raise _err(root, "is not a rockpool.nn.combinators.Sequential of torch modules; only chains are imported")
    out = []
    for name, mod in module.modules().items():
        la = _Layer(name, mod)
        if type(mod) not in (LinearTorch, LIFTorch):
            raise _err(la, "is not supported by from_native (supported: LinearTorch, LIFTorch)")
        if la.name in ("input", "output"):
            raise _err(la, f"its node name '{la.name}' collides with the graph's ends")
        out.append(la)
    return out


def _arr(la: _Layer, field: str, t) -> np.ndarray:
    a = np.asarray(t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else t, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise _err(la, f"'{field}' is not finite")
    return a


def _lif_node(la: _Layer, n: int, dt: float) -> nir.NIRNode:
    _, _, _, StepPWL = _rp()
    m = la.module
    if int(m.n_synapses) != 1:
        raise _err(la, f"has n_synapses={int(m.n_synapses)} (the reference node has one current per neuron)")
    if m.spike_generation_fn not in (StepPWL.apply, typed_step_pwl().apply):
        raise _err(la, "spike_generation_fn is not Rockpool's StepPWL")
    if not np.all(_arr(la, "max_spikes_per_dt", m.max_spikes_per_dt) == 1):
        raise _err(la, f"max_spikes_per_dt = {float(m.max_spikes_per_dt):g}: StepPWL then emits floor(v/θ) spikes "
                       f"per step; only max_spikes_per_dt=1 matches the reference neuron")
    if float(m.noise_std) != 0.0:
        raise _err(la, "has noise_std != 0 (random membrane noise)")
    if np.any(_arr(la, "bias", m.bias) != 0):
        raise _err(la, "has a bias: Rockpool adds it after α·v + i, another rounding than the reference's")
    w_rec = getattr(m, "w_rec", None)
    if isinstance(w_rec, torch.Tensor) and np.any(_arr(la, "w_rec", w_rec) != 0):
        raise _err(la, "has recurrent weights (not imported yet)")
    shape = (n,)

    def full(field: str, t) -> np.ndarray:
        a = _arr(la, field, t)
        if a.ndim == 2 and a.shape[1] == 1:  # per-synapse parameters [N, n_synapses = 1]
            a = a[:, 0]
        try:
            return np.broadcast_to(a, shape).copy()
        except ValueError:
            raise _err(la, f"'{field}' has shape {list(a.shape)}, not broadcastable to [{n}]") from None

    thr_t = torch.as_tensor(m.threshold).detach()
    thr = full("threshold", thr_t)
    if not np.all(thr > 0):
        raise _err(la, "has a threshold <= 0 (StepPWL's floor(v/θ) is then not a v >= θ test)")
    with torch.no_grad():  # what Rockpool subtracts: float32 spikes times θ
        eff = full("threshold", torch.ones(1, dtype=torch.float32) * thr_t)
    if not np.array_equal(eff, thr):
        raise _err(la, "a 0-dim threshold that is not a float32 number: float32 spikes times θ subtract float32(θ)")
    with torch.no_grad():
        alpha, beta = full("alpha", m.alpha), full("beta", m.beta)
    for field, d in (("alpha", alpha), ("beta", beta)):
        if not (np.all(d > 0) and np.all(d < 1)):
            raise _err(la, f"{field} {d.min():g}..{d.max():g} lies outside (0, 1)")
    tau_mem, tau_syn = dt / (1.0 - alpha), dt / (1.0 - beta)
    zeros = np.zeros(shape)
    meta = {"reset": "subtract", "threshold": "inclusive", "decay": alpha, "gain": beta, "bias": zeros.copy(),
            "syn_decay": beta, "syn_gain": np.ones(shape), "coefficients_dt": float(dt)}
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=beta * tau_mem / dt, v_leak=zeros.copy(),
                       v_threshold=thr, v_reset=zeros.copy(), w_in=tau_syn / dt, metadata=meta)


def from_native(module, input_shape: Sequence[int], dt: float | None = None) -> nir.NIRGraph:
    """The NIR graph (snnbridge metadata, pinned constants) that steps exactly as the Rockpool ``module``.

    Args:
        module: a ``rockpool.nn.combinators.Sequential`` of ``LinearTorch`` and ``LIFTorch`` (see the module
            docstring).
        input_shape: ``(N_in,)`` per sample and step.
        dt: the step in seconds; ``None`` takes the ``LIFTorch`` modules' own ``dt`` (which must all agree, and agree
            with ``dt`` when given).
    """
    _, LinearTorch, LIFTorch, _ = _rp()
    input_shape = tuple(int(s) for s in np.atleast_1d(np.asarray(input_shape, dtype=np.int64)))
    if len(input_shape) != 1 or input_shape[0] <= 0:
        raise NativeModelError(f"input_shape must be (N_in,) for a Rockpool chain, got {list(input_shape)}")
    layers = _leaves(module)
    dts = {float(la.module.dt) for la in layers if type(la.module) is LIFTorch}
    if dt is not None:
        dts.add(float(dt))
    if len(dts) > 1:
        raise NativeModelError(f"the LIFTorch modules (and the dt given) step with different dt: {sorted(dts)}")
    dt = dts.pop() if dts else 1e-3
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.asarray(input_shape)})}
    edges: list[tuple[str, str]] = []
    prev, n = "input", input_shape[0]
    for la in layers:
        m = la.module
        if type(m) is LinearTorch:
            w = _arr(la, "weight", m.weight)
            if w.shape[0] != n:
                raise _err(la, f"takes {w.shape[0]} inputs but receives {n}")
            b = getattr(m, "bias", None)
            node = nir.Affine(weight=w.T.copy(), bias=_arr(la, "bias", b)) if isinstance(b, torch.Tensor) \
                else nir.Linear(weight=w.T.copy())
            n = w.shape[1]
        else:
            if int(m.size_in) != n:
                raise _err(la, f"takes {int(m.size_in)} inputs but receives {n}")
            node = _lif_node(la, n, dt)
        nodes[la.name] = node
        edges.append((prev, la.name))
        prev = la.name
    nodes["output"] = nir.Output(output_type={"output": np.asarray((n,))})
    edges.append((prev, "output"))
    from importlib.metadata import version

    meta = make_metadata(sem.Semantics(dt=dt, reset="subtract", integration="euler", threshold="inclusive"),
                         native=f"rockpool {version('rockpool')} {type(module).__name__}")
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def run_native(module, inputs, dtype: torch.dtype = torch.float64, dt: float | None = None) -> Recording:
    """Run the Rockpool ``module`` as Rockpool runs it on ``inputs`` ``[T, B, N_in]`` (fed as ``[B, T, N_in]``).

    A ``dtype`` copy with its state reset; its ``LIFTorch`` spike function returns ``StepPWL``'s counts in the
    membrane's dtype (Rockpool 3.1.0 cannot run float64 otherwise).  Every ``LIFTorch``'s spikes
    (``bool [T, B, N]``) are recorded by node name, plus ``"output"``; the user's module is not changed.
    """
    from snnbridge.bridge.graph import prepare
    from snnbridge.bridge.walk import spike_valued

    _, _, LIFTorch, StepPWL = _rp()
    x = torch.as_tensor(inputs)
    if x.dim() != 3:
        raise NativeModelError(f"inputs must be [T, B, N_in], got shape {list(x.shape)}")
    x = x.to(dtype)
    graph = from_native(module, (x.shape[2],), dt=dt)
    fg = prepare(graph)
    flags = spike_valued(fg)
    with torch.random.fork_rng():  # each LIFTorch call draws (and zeroes) membrane noise
        net = copy.deepcopy(module)
        net.reset_state()  # zeros in float32 (Rockpool's default): converted below
        net = net.to(dtype)

        def typed(v, *args):
            return StepPWL.apply(v, *args).to(v.dtype)

        traces: dict[str, torch.Tensor] = {}
        handles = []
        for la in _leaves(net):
            if type(la.module) is not LIFTorch:  # Rockpool's float32 spike outputs, cast exactly
                handles.append(la.module.register_forward_pre_hook(_exact_cast))
                continue
            la.module.spike_generation_fn = typed

            def hook(m, args, out, name=la.name):
                y = out[0] if isinstance(out, tuple) else out
                traces[name] = y.detach().transpose(0, 1)
            handles.append(la.module.register_forward_hook(hook))
        try:
            with torch.no_grad():
                out = net(x.transpose(0, 1).contiguous())
        finally:
            for h in handles:
                h.remove()
    y = (out[0] if isinstance(out, tuple) else out).transpose(0, 1)
    outputs = {name: v > 0.5 for name, v in traces.items()}
    outputs["output"] = y > 0.5 if flags.get("output") else y
    return Recording(outputs, {}, {n: fg.type_of(n) for n in fg.order}, fg.semantics.dt, "rockpool-native",
                     list(fg.order))


# --------------------------------------------------------------------------- to_native


def _refuse(name: str, field: str | None, why: str) -> UnsupportedNodeError:
    return UnsupportedNodeError(f"backend 'rockpool' to_native: {why}", node=name, field=field)


def _lif_torch(fg, name: str):
    """``LIFTorch`` stepping exactly as ``CubaLIF`` node ``name`` (``[N]`` constants, ``max_spikes_per_dt = 1``,
    frozen decays, threshold and zero bias), or :class:`UnsupportedNodeError` naming the node and field."""
    from rockpool.parameters import Constant

    _, _, LIFTorch, _ = _rp()
    kind = fg.type_of(name)
    if kind != "CubaLIF":
        raise _refuse(name, None, f"node type {kind}: only CubaLIF neurons become LIFTorch")
    shape = tuple(fg.in_shapes[name])
    if len(shape) != 1:
        raise _refuse(name, None, f"per-sample shape {list(shape)}: LIFTorch neurons are a flat [N] layer")
    c, opts = fg.coefficients(name), fg.options(name)
    if fg.node_reset[name] != "subtract":
        raise _refuse(name, "reset", f"reset '{fg.node_reset[name]}' (LIFTorch subtracts its threshold)")
    if opts.reset_timing != "immediate":
        raise _refuse(name, "reset_timing", f"reset timing '{opts.reset_timing}' (LIFTorch resets in the step "
                                             f"that fired)")
    if not c.inclusive:
        raise _refuse(name, "threshold", "a strict compare v > θ (StepPWL fires at v >= θ and subtracts the same θ)")
    v0, i0 = sem.initial_values(opts, torch.zeros((1,) + shape, dtype=torch.float64))
    if not (bool(torch.all(v0 == 0)) and bool(torch.all(i0 == 0))):
        raise _refuse(name, "v_init" if bool(torch.any(v0 != 0)) else "i_init", "a non-zero initial state "
                                                                                 "(LIFTorch's states start at 0)")

    def full(a) -> np.ndarray:
        return np.broadcast_to(np.asarray(a, dtype=np.float64), shape).copy()

    alpha, gain, beta = full(c.decay), full(c.gain), full(c.syn_decay)
    thr, bias, syn_gain = full(c.threshold), full(c.bias), full(c.syn_gain)
    if np.any(bias != 0):
        raise _refuse(name, "v_leak", "a bias (v_leak) != 0: Rockpool adds its bias after α·v + i, another rounding")
    if np.any(syn_gain != 1):
        raise _refuse(name, "w_in", "a synaptic input gain != 1 (LIFTorch adds its input to the current unscaled)")
    for field, d, what in (("tau_mem", alpha, "decay"), ("tau_syn", beta, "syn_decay")):
        if not (np.all(d > 0) and np.all(d < 1)):
            raise _refuse(name, field, f"{what} {d.min():g}..{d.max():g} lies outside (0, 1)")
    if not np.array_equal(gain, beta):
        raise _refuse(name, "r", "a membrane gain that is not the synaptic decay (LIFTorch adds β·(i + x) to the "
                                 "membrane: gain = syn_decay)")
    if not np.all(thr > 0):
        raise _refuse(name, "v_threshold", "a threshold <= 0 (StepPWL's floor(v/θ) is then not a v >= θ test)")
    n = shape[0]
    with torch.random.fork_rng(devices=[]):  # Rockpool's constructor draws (unused) recurrent weights
        mod = LIFTorch(n, leak_mode="decays", alpha=Constant(torch.as_tensor(alpha)),
                       beta=Constant(torch.as_tensor(beta[:, None])), threshold=Constant(torch.as_tensor(thr)),
                       bias=Constant(torch.zeros(n)), spike_generation_fn=typed_step_pwl(), max_spikes_per_dt=1.0,
                       dt=float(fg.semantics.dt))
    return mod, {"alpha": alpha, "beta": beta[:, None], "threshold": thr}  # beta: [N, n_synapses = 1]


def _linear_torch(fg, name: str):
    """``LinearTorch`` of ``Linear``/``Affine`` node ``name`` (weight ``[N_in, N_out]`` = the node's transposed) and
    the values to set once the module has its dtype."""
    _, LinearTorch, _, _ = _rp()
    node = fg.nodes[name]
    w = np.asarray(node.weight, dtype=np.float64)
    shape = tuple(fg.in_shapes[name])
    if w.ndim != 2 or shape != (w.shape[1],):
        raise _refuse(name, "weight", f"weight {list(w.shape)} on per-sample input {list(shape)}: LinearTorch "
                                      f"maps [N_in] to [N_out]")
    values = {"weight": w.T.copy()}
    if isinstance(node, nir.Affine):
        values["bias"] = np.broadcast_to(np.asarray(node.bias, dtype=np.float64), (w.shape[0],)).copy()
    with torch.random.fork_rng(devices=[]):  # its constructor draws the initial weights
        mod = LinearTorch((w.shape[1], w.shape[0]), has_bias="bias" in values)
    return mod, values


def to_native(graph, dt: float | None = None, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu",
              reset: str | None = None, integration: str | None = None):
    """A trainable Rockpool ``Sequential`` (``TorchSequential``) of ``LinearTorch`` and ``LIFTorch`` realising the
    chain ``graph`` (NIR graph, FlatGraph or path); it takes ``[B, T, N_in]`` and returns spikes
    ``[B, T, N_out]`` (Rockpool's layout; float32 spikes, as ``LIFTorch`` records them).

    Accepted: a chain ``Input → (Linear | Affine | CubaLIF)* → Output`` over flat ``[N]`` shapes whose ``CubaLIF``
    nodes are exactly what :func:`from_native` writes: ``syn_gain = 1``, ``gain = syn_decay = β``, ``decay = α``
    (both in (0, 1)), ``bias = 0``, reset subtract (immediate), the inclusive compare, threshold > 0, zero initial
    state.  Each becomes ``LIFTorch(leak_mode="decays")`` with ``alpha``, ``beta``, ``threshold`` (per neuron, set
    in ``dtype`` bit for bit) and ``bias = 0`` as Rockpool ``Constant`` s (not trained), ``noise_std = 0``,
    ``max_spikes_per_dt = 1`` and ``spike_generation_fn`` :func:`typed_step_pwl` (``StepPWL`` returning the
    membrane's dtype: Rockpool 3.1.0 cannot run float64 ``LIFTorch`` otherwise).  The ``LinearTorch`` weights and
    biases require grad.  Each ``LinearTorch`` casts its input to its own dtype (a forward pre-hook, exact for
    0/1: ``LIFTorch`` records its spikes in float32).  Modules are named by their nodes (``.`` → ``_``).

    Rockpool keeps batch element 0's state after a call and ``reset_state()`` resets to float32 zeros: before a
    new float64 sequence call ``net.reset_state()`` then ``net.to(torch.float64)``, or use :func:`run_native`.
    Anything else is refused with :class:`UnsupportedNodeError` naming the node and field.
    """

    from rockpool.nn.combinators.sequential import TorchSequential

    from snnbridge.backends.rockpool_backend import RockpoolBackend

    fg = export_chain(RockpoolBackend(), graph, dt, reset, integration, dtype)
    mods: OrderedDict = OrderedDict()
    values: dict[str, dict[str, np.ndarray]] = {}
    for name in fg.order:
        kind = fg.type_of(name)
        if len(fg.preds[name]) > 1 or sum(name in fg.preds[n] for n in fg.order) > 1:
            raise _refuse(name, None, "the graph branches here (only chains become a Sequential)")
        if kind in ("Input", "Output"):
            if len(fg.out_shapes[name]) != 1:
                raise _refuse(name, None, f"per-sample shape {list(fg.out_shapes[name])}: Rockpool chains take [N]")
            continue
        key = name.replace(".", "_")
        if key in mods:
            raise _refuse(name, None, f"its module name '{key}' collides with another node's")
        if kind in ("Linear", "Affine"):
            mods[key], values[key] = _linear_torch(fg, name)
        elif kind in sem.NEURON_TYPES:
            mods[key], values[key] = _lif_torch(fg, name)
        else:
            raise _refuse(name, None, f"node type {kind}: a Rockpool chain holds LinearTorch (Linear, Affine) and "
                                      f"LIFTorch (CubaLIF) only")
    if not mods:
        raise UnsupportedNodeError("backend 'rockpool' to_native: the graph has no Linear, Affine or CubaLIF node")
    net = TorchSequential(mods).to(dtype=dtype, device=torch.device(device))
    _, LinearTorch, _, _ = _rp()
    with torch.no_grad():  # Rockpool's constructors cast to float32: set the dtype values again
        for key, vals in values.items():
            for attr, a in vals.items():
                getattr(mods[key], attr).copy_(torch.as_tensor(a, dtype=dtype))
    for mod in mods.values():
        if type(mod) is LinearTorch:
            mod.register_forward_pre_hook(_exact_cast)
    return net
