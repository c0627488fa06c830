"""Native Spyx models in and out: :func:`from_native`, :func:`run_native`, :func:`to_native` (spyx 1.0.0, flax nnx,
read from ``spyx/nn.py``).

Spyx's neurons decide their spike from the state they *carry in* (per batch element, ``θ = threshold``, ``H`` the
activation's forward, ``β = clip(beta, 0, 1)``, ``α = clip(alpha, 0, 1)``)::

    LIF      s[t] = H(V[t-1] - θ);  V[t] = β·V[t-1] + x[t] - s[t]·θ
    IF       s[t] = H(V[t-1] - θ);  V[t] = V[t-1] + x[t] - s[t]·θ
    CuBaLIF  s[t] = H(V[t-1] - θ);  V' = V[t-1] - s[t]·θ;  I[t] = α·I[t-1] + x[t];  V[t] = β·V' + I[t]
    LI       V[t] = β·V[t-1] + x[t]   (output V[t])

so the spike a layer emits at step ``t`` is the one its membrane decided at ``t - 1``.  In the reference semantics
(:mod:`snnbridge.bridge.semantics`) that is exactly:

* ``LIF`` → NIR ``LIF`` with reset ``subtract`` and reset timing ``delayed`` (snnTorch's ``reset_delay=True``:
  ``v[t] = (decay·v[t-1] + (gain·x + bias)) - H(v[t-1] - θ)·θ``, spike ``H(v[t] - θ)``), pinned ``decay = β``,
  ``gain = 1``, ``bias = 0``, followed by a one-step ``Delay`` (node ``<name>_out``) that emits the spike a step
  later, as Spyx does; ``IF`` likewise as NIR ``IF`` (``r = 1``);
* ``CuBaLIF`` → NIR ``CubaLIF`` with the *immediate* subtract reset (Spyx's ``V`` is the reference's pre-reset
  membrane, ``V'`` its carried state), pinned ``syn_decay = α``, ``syn_gain = 1``, ``decay = β``, ``gain = 1``,
  ``bias = 0``, followed by the one-step ``Delay``;
* ``LI`` → NIR ``LI`` (``decay = β``, ``gain = 1``, ``bias = 0``; ``β = 1``: NIR ``I``), no delay;
* ``flax.nnx.Linear`` → ``Linear`` / ``Affine`` (weight = the transposed kernel); ``spyx.nn.Flatten`` → ``Flatten``.

Each operation rounds as the reference's (``1·x + 0 = x``), so the membranes are the reference's wherever the
layer inputs are; ``nnx.Linear``'s XLA dot sums in another order than torch's ``F.linear`` (ulps apart beyond ~12
inputs), so a native run's membranes agree to ~1e-14 and its spikes exactly except, in principle, a membrane within
those ulps of θ (measured: 0 differing spikes at every layer and step in ``tests/test_native_spyx.py``).

Accepted: a ``spyx.nn.Sequential`` of those layers over flat inputs (``Flatten`` first for image-shaped ones), the
activation's forward a step at 0 (strict ``x > 0``, Spyx's own surrogates, or inclusive ``x >= 0``; probed at
0 and its neighbours), ``θ > 0`` (a Spyx neuron's first step fires on ``0 - θ``), ``β``/``α`` per neuron or scalar.
Refused by name (:class:`~snnbridge.errors.NativeModelError`, ``layer '<i>' (<class>)``): recurrent neurons
(``RLIF``, ``RIF``, ``RCuBaLIF``), ``ALIF``, ``PSU_LIF`` / ``AssociativeLIF``, ``nnx.Conv`` and ``SumPool`` (Spyx's
channels-last layout is not imported yet), any other layer, a ``LIF`` with ``β = 1`` for some neurons only.
Node names are ``<index>_<class>`` (``0_Linear``, ``1_LIF``, ``1_LIF_out``).

:func:`run_native` steps the model eagerly, layer by layer as ``spyx.nn.Sequential.__call__`` does (not under
``jax.lax.scan``: XLA's CPU compiler fuses ``β·V + x`` into one FMA there, another rounding), on a copy cast to
``dtype``; it records each neuron's decided spike (Spyx's own activation on its new membrane: the spike it emits
at the next step) under the neuron node, and the emitted spike under ``<name>_out``.

:func:`to_native` builds the inverse for chains of exactly that form: ``nnx.Linear``, ``spyx.nn.Flatten``,
``spyx.nn.LIF`` / ``IF`` (delayed subtract + one-step Delay), ``spyx.nn.CuBaLIF`` (immediate subtract + one-step
Delay), ``spyx.nn.LI``.  A neuron in the reference's default timing (immediate, not followed by that Delay) has no
Spyx module: it is refused naming the node and field (run such graphs on the ``spyx`` backend, which composes
``LI`` + ``IF``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import nir
import numpy as np
import torch

from snnbridge.backends.native_args import native_dt, native_graph, native_input_shape
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.metadata import make_metadata
from snnbridge.bridge.recording import Recording
from snnbridge.errors import NativeModelError, UnsupportedNodeError

NEURONS = ("LIF", "IF", "CuBaLIF", "LI")
"""The ``spyx.nn`` neuron classes imported (exactly these classes, not subclasses)."""
DELAYED_OUT = ("LIF", "IF", "CuBaLIF")
"""Spyx neurons that emit the spike decided one step earlier (a ``Delay`` node follows them in the graph)."""


@lru_cache(maxsize=1)
def _spyx():
    import jax
    import jax.numpy as jnp
    import spyx
    from flax import nnx

    return spyx, jax, jnp, nnx


def _jdtype(dtype: torch.dtype):
    _, _, jnp, _ = _spyx()
    if dtype not in (torch.float64, torch.float32):
        raise NativeModelError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
    if dtype == torch.float64:
        from snnbridge.backends.spyx_backend import enable_x64

        enable_x64()
    return {torch.float64: jnp.float64, torch.float32: jnp.float32}[dtype]


def _cls(m) -> str:
    return f"{type(m).__module__}.{type(m).__qualname__}"


def _err(i: int, m, message: str) -> NativeModelError:
    return NativeModelError(message, layer=str(i), cls=_cls(m))


def _layers(module) -> list:
    spyx, _, _, nnx = _spyx()
    if type(module) is not spyx.nn.Sequential:
        raise NativeModelError(f"{_cls(module)} is not a spyx.nn.Sequential; only chains are imported")
    return list(module.layers)


def _arr(i: int, m, field: str, v) -> np.ndarray:
    a = np.asarray(v[...] if hasattr(v, "value") else v, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise _err(i, m, f"'{field}' is not finite")
    return a


def _full(i: int, m, field: str, v, shape: tuple[int, ...]) -> np.ndarray:
    a = _arr(i, m, field, v)
    try:
        return np.broadcast_to(a, shape).copy()
    except ValueError:
        raise _err(i, m, f"'{field}' has shape {list(a.shape)}, not broadcastable to {list(shape)}") from None


def compare_of(act) -> str | None:
    """``"strict"`` (forward ``x > 0``) or ``"inclusive"`` (``x >= 0``) for a Spyx activation, probed at 0 and the
    floats next to it in float32 and float64; ``None`` when it is neither (a custom forward)."""
    _, _, jnp, _ = _spyx()
    out = set()
    for dt in (np.float32, np.float64):
        tiny = np.finfo(dt).tiny
        probe = np.array([-1.0, -tiny, -0.0, 0.0, tiny, 1.0], dtype=dt)
        try:
            y = np.asarray(act(jnp.asarray(probe)), dtype=np.float64)
        except Exception:  # noqa: BLE001 - a user activation may raise anything
            return None
        if y.shape != probe.shape:
            return None
        if np.array_equal(y, [0, 0, 0, 0, 1, 1]):
            out.add("strict")
        elif np.array_equal(y, [0, 0, 1, 1, 1, 1]):
            out.add("inclusive")
        else:
            return None
    return out.pop() if len(out) == 1 else None


def _neuron_nodes(i: int, m, shape: tuple[int, ...], dt: float) -> nir.NIRNode:
    """The NIR node of Spyx neuron ``m`` (layer ``i``) over per-sample ``shape`` (see the module docstring)."""
    kind = type(m).__name__
    if tuple(m.hidden_shape if hasattr(m, "hidden_shape") else m.layer_shape) != shape:
        got = m.hidden_shape if hasattr(m, "hidden_shape") else m.layer_shape
        raise _err(i, m, f"has shape {list(got)} but receives {list(shape)}")
    zeros = np.zeros(shape)

    def decay(field: str) -> np.ndarray:
        return np.clip(_full(i, m, field, getattr(m, field), shape), 0.0, 1.0)  # Spyx clips to [0, 1]

    def tau(d: np.ndarray) -> np.ndarray:
        return dt / (1.0 - d)

    if kind == "LI":
        beta = decay("beta")
        if np.all(beta == 1.0):
            return nir.I(r=np.ones(shape))
        if np.any(beta == 1.0):
            raise _err(i, m, "has beta = 1 for some neurons only (a per-step integrator and a leaky one in one node)")
        meta = {"decay": beta, "gain": np.ones(shape), "bias": zeros.copy(), "coefficients_dt": float(dt)}
        return nir.LI(tau=tau(beta), r=tau(beta) / dt, v_leak=zeros.copy(), metadata=meta)
    compare = compare_of(m.spike)
    if compare is None:
        raise _err(i, m, "its activation's forward is not a step at 0 (x > 0 or x >= 0)")
    thr = _full(i, m, "threshold", m.threshold, shape)
    if not np.all(thr > 0):
        raise _err(i, m, "has a threshold <= 0 (its first step fires on the zero initial state, 0 - θ)")
    meta: dict[str, Any] = {"reset": "subtract", "threshold": compare}
    if kind in ("LIF", "IF"):
        meta["reset_timing"] = "delayed"
        beta = decay("beta") if kind == "LIF" else np.ones(shape)
        if np.all(beta == 1.0):
            return nir.IF(r=np.ones(shape), v_threshold=thr, v_reset=zeros.copy(), metadata=meta)
        if np.any(beta == 1.0):
            raise _err(i, m, "has beta = 1 for some neurons only (a per-step integrator and a leaky one in one node)")
        meta.update(decay=beta, gain=np.ones(shape), bias=zeros.copy(), coefficients_dt=float(dt))
        return nir.LIF(tau=tau(beta), r=tau(beta) / dt, v_leak=zeros.copy(), v_threshold=thr, v_reset=zeros.copy(),
                       metadata=meta)
    if len(shape) != 1:
        raise _err(i, m, f"a CuBaLIF over per-sample shape {list(shape)} (Spyx doubles every axis of its state; "
                         f"only flat layers split into V and I)")
    alpha, beta = decay("alpha"), decay("beta")
    for field, d in (("alpha", alpha), ("beta", beta)):
        if np.any(d == 1.0):
            raise _err(i, m, f"has {field} = 1 (a CubaLIF time constant is then infinite)")
    meta.update(syn_decay=alpha, syn_gain=np.ones(shape), decay=beta, gain=np.ones(shape), bias=zeros.copy(),
                coefficients_dt=float(dt))
    return nir.CubaLIF(tau_syn=tau(alpha), tau_mem=tau(beta), r=tau(beta) / dt, v_leak=zeros.copy(),
                       v_threshold=thr, v_reset=zeros.copy(), w_in=tau(alpha) / dt, metadata=meta)


def _refuse_layer(i: int, m) -> NativeModelError:
    kind = type(m).__name__
    why = {
        "RLIF": "a recurrent neuron (not imported yet)", "RIF": "a recurrent neuron (not imported yet)",
        "RCuBaLIF": "a recurrent neuron (not imported yet)",
        "ALIF": "an adaptive threshold (no NIR node for it)",
        "PSU_LIF": "a parallel (associative-scan) LIF without reset (not imported yet)",
        "AssociativeLIF": "a parallel (associative-scan) LIF without reset (not imported yet)",
        "Conv": "a convolution (Spyx's channels-last layout is not imported yet)",
        "SumPool": "a pooling layer (Spyx's channels-last layout is not imported yet)",
    }.get(kind, "is not supported by from_native (supported: flax.nnx.Linear, spyx.nn.Flatten, spyx.nn.LIF, IF, "
                "CuBaLIF, LI)")
    return _err(i, m, why)


def from_native(module, input_shape: Sequence[int], dt: float = 1e-3) -> nir.NIRGraph:
    """The NIR graph (snnbridge metadata, pinned constants) that steps exactly as the Spyx ``module``.

    Args:
        module: a ``spyx.nn.Sequential`` of ``flax.nnx.Linear``, ``spyx.nn.Flatten`` and ``spyx.nn.LIF`` / ``IF`` /
            ``CuBaLIF`` / ``LI`` (see the module docstring).
        input_shape: per sample and step, e.g. ``(N_in,)`` (``(C, H, W)`` when a ``Flatten`` comes first).
        dt: the step in seconds written to the graph (Spyx has none: its decays are per step).
    """
    spyx, _, _, nnx = _spyx()
    shape, dt = native_input_shape(input_shape), native_dt(dt)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.asarray(shape)})}
    edges: list[tuple[str, str]] = []
    prev = "input"
    for i, m in enumerate(_layers(module)):
        name = f"{i}_{type(m).__name__}"
        if type(m) is nnx.Linear:
            if len(shape) != 1:
                raise _err(i, m, f"receives per-sample shape {list(shape)}: put a spyx.nn.Flatten before it")
            w = _arr(i, m, "kernel", m.kernel)  # [in, out]
            if w.ndim != 2 or w.shape[0] != shape[0]:
                raise _err(i, m, f"takes {w.shape[0]} inputs but receives {shape[0]}")
            b = getattr(m, "bias", None)
            node = nir.Affine(weight=w.T.copy(), bias=_arr(i, m, "bias", b)) if b is not None and m.use_bias \
                else nir.Linear(weight=w.T.copy())
            shape = (w.shape[1],)
        elif type(m) is spyx.nn.Flatten:
            node = nir.Flatten(input_type={"input": np.asarray(shape)}, start_dim=0, end_dim=-1)
            shape = (int(np.prod(shape)),)
        elif type(m).__module__.startswith("spyx.") and type(m).__name__ in NEURONS and \
                type(m) is getattr(spyx.nn, type(m).__name__):
            node = _neuron_nodes(i, m, shape, dt)
        else:
            raise _refuse_layer(i, m)
        nodes[name] = node
        edges.append((prev, name))
        prev = name
        if type(m).__name__ in DELAYED_OUT and type(m) is getattr(spyx.nn, type(m).__name__):
            nodes[f"{name}_out"] = nir.Delay(delay=np.full(shape, dt))
            edges.append((name, f"{name}_out"))
            prev = f"{name}_out"
    nodes["output"] = nir.Output(output_type={"output": np.asarray(shape)})
    edges.append((prev, "output"))
    from importlib.metadata import version

    meta = make_metadata(sem.Semantics(dt=dt, reset="subtract", integration="euler"),
                         native=f"spyx {version('spyx')} {type(module).__name__}")
    return native_graph(nodes, edges, meta)


def _cast_copy(module, jdtype):
    """A deep copy of ``module`` whose float parameters and array attributes have dtype ``jdtype`` (``nnx.Linear``'s
    compute dtype cleared, so it computes in its parameters' dtype)."""
    spyx, jax, jnp, nnx = _spyx()
    graphdef, state = nnx.split(module)  # merge builds new modules (deepcopy fails on jitted activations)
    state = jax.tree_util.tree_map(lambda a: a.astype(jdtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, state)
    net = nnx.merge(graphdef, state)
    for m in net.layers:
        if type(m) is nnx.Linear:
            m.dtype = None
        thr = getattr(m, "threshold", None)
        if isinstance(thr, (np.ndarray, jax.Array)):
            m.threshold = jnp.asarray(thr, dtype=jdtype)
    return net


def run_native(module, inputs, dtype: torch.dtype = torch.float64, dt: float = 1e-3) -> Recording:
    """Run the Spyx ``module`` as Spyx runs it on ``inputs`` ``[T, B, *input_shape]`` (time-major, as ``spyx.nn.run``).

    Eager, layer by layer as ``spyx.nn.Sequential.__call__`` (see the module docstring), on a copy in ``dtype``
    (float64 switches JAX to 64-bit mode), from the layers' ``initial_state``.  Recorded (``[T, B, N]``): each
    spiking layer's decided spike (bool) under its node, its emitted spike under ``<node>_out``, each ``LI``'s
    membrane, and ``"output"``.  The user's module is not changed.
    """
    from snnbridge.bridge.graph import prepare
    from snnbridge.bridge.walk import spike_valued

    spyx, jax, jnp, nnx = _spyx()
    x = torch.as_tensor(inputs)
    if x.dim() < 3:
        raise NativeModelError(f"inputs must be [T, B, *input_shape], got shape {list(x.shape)}")
    jd = _jdtype(dtype)
    graph = from_native(module, tuple(x.shape[2:]), dt=dt)
    fg = prepare(graph)
    flags = spike_valued(fg)
    net = _cast_copy(module, jd)
    layers = list(net.layers)
    names = [f"{i}_{type(m).__name__}" for i, m in enumerate(layers)]
    T, B = x.shape[:2]
    xs = jnp.asarray(x.detach().cpu().numpy(), dtype=jd)
    state = [jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=jd), m.initial_state(B))
             if hasattr(m, "initial_state") else None for m in layers]
    traces: dict[str, list] = {}
    final: list = []
    for t in range(T):
        h = xs[t]
        for k, (m, s) in enumerate(zip(layers, state)):
            kind = type(m).__name__
            if s is None:
                h = m(h)
                continue
            h, state[k] = m(h, s)  # what Sequential.__call__ does
            if kind == "LI":
                traces.setdefault(names[k], []).append(h)
                continue
            v = jnp.split(state[k], 2, -1)[0] if kind == "CuBaLIF" else state[k]
            traces.setdefault(names[k], []).append(m.spike(v - m.threshold))  # Spyx emits it at t + 1
            traces.setdefault(f"{names[k]}_out", []).append(h)
        final.append(h)

    def torch_of(seq: list, name: str) -> torch.Tensor:
        y = torch.from_numpy(np.array(jnp.stack(seq))).to(dtype) if seq else \
            torch.zeros((0, B) + tuple(fg.out_shapes[name]), dtype=dtype)
        return y > 0.5 if flags.get(name) else y

    outputs = {name: torch_of(seq, name) for name, seq in traces.items()}
    outputs["output"] = torch_of(final, "output")
    return Recording(outputs, {}, {n: fg.type_of(n) for n in fg.order}, fg.semantics.dt, "spyx-native",
                     list(fg.order))


# --------------------------------------------------------------------------- to_native


def _refuse(name: str, field: str | None, why: str) -> UnsupportedNodeError:
    return UnsupportedNodeError(f"backend 'spyx' to_native: {why}", node=name, field=field)


def _one_step_delay(fg, name: str) -> str | None:
    """The single consumer of ``name`` when it is a ``Delay`` of exactly one step everywhere, else ``None``."""
    cons = [n for n in fg.order if name in fg.preds[n]]
    if len(cons) != 1 or fg.type_of(cons[0]) != "Delay":
        return None
    d = sem.delay_steps(fg.nodes[cons[0]], fg.semantics)
    return cons[0] if np.all(d == 1) else None


def _neuron_module(fg, name: str, jd, delayed_by: str | None):
    """The Spyx neuron realising neuron node ``name`` (followed by the one-step Delay ``delayed_by`` or not)."""
    spyx, _, jnp, nnx = _spyx()
    from snnbridge.backends.spyx_backend import inclusive_activation

    kind = fg.type_of(name)
    shape = tuple(fg.in_shapes[name])
    c, opts = fg.coefficients(name), fg.options(name)

    def full(a) -> np.ndarray:
        return np.broadcast_to(np.asarray(a, dtype=np.float64), shape).copy()

    v0, i0 = sem.initial_values(opts, torch.zeros((1,) + shape, dtype=torch.float64))
    if bool(torch.any(v0 != 0)) or bool(torch.any(i0 != 0)):
        raise _refuse(name, "v_init" if bool(torch.any(v0 != 0)) else "i_init",
                      "a non-zero initial state (Spyx's states start at 0)")

    def plain_input() -> None:
        if np.any(full(c.gain) != 1) or (kind in ("LIF", "LI", "CubaLIF") and np.any(full(c.bias) != 0)):
            field = "r" if np.any(full(c.gain) != 1) else "v_leak"
            raise _refuse(name, field, "an input gain != 1 or a bias (Spyx neurons add their input unscaled)")
        for field, d in (("tau", c.decay), ("tau_syn", c.syn_decay)):
            if d is not None and not np.all((full(d) >= 0) & (full(d) <= 1)):
                raise _refuse(name, field, "a decay outside [0, 1] (Spyx clips its decays to [0, 1])")

    if kind in ("LI", "I"):
        plain_input()
        mod = spyx.nn.LI(shape, beta=None, rngs=nnx.Rngs(0))
        mod.beta.set_value(jnp.asarray(full(c.decay), dtype=jd))
        return mod
    if kind == "CubaLI":
        raise _refuse(name, None, "node type CubaLI (Spyx has no current-based LI)")
    if fg.node_reset[name] != "subtract":
        raise _refuse(name, "reset", f"reset '{fg.node_reset[name]}' (Spyx's neurons subtract their threshold)")
    want = "immediate" if kind == "CubaLIF" else "delayed"
    if opts.reset_timing != want or delayed_by is None:
        raise _refuse(name, "reset_timing", f"reset timing '{opts.reset_timing}'"
                      f"{'' if delayed_by else ' without a one-step Delay after it'}: a spyx.nn."
                      f"{'CuBaLIF' if kind == 'CubaLIF' else 'LIF'} is the {want} subtract timing followed by a "
                      f"one-step Delay (Spyx emits each spike a step after deciding it)")
    thr = full(c.threshold)
    if not np.all(thr > 0):
        raise _refuse(name, "v_threshold", "a threshold <= 0 (a Spyx neuron's first step fires on 0 - θ)")
    plain_input()
    if kind == "CubaLIF" and len(shape) != 1:
        raise _refuse(name, None, f"a CubaLIF over per-sample shape {list(shape)} (spyx.nn.CuBaLIF splits a flat "
                                  f"state)")
    if kind == "CubaLIF" and np.any(full(c.syn_gain) != 1):
        raise _refuse(name, "w_in", "a synaptic input gain != 1 (CuBaLIF adds its input to the current unscaled)")
    act = inclusive_activation() if c.inclusive else None
    th = jnp.asarray(thr, dtype=jd)
    if kind == "IF":
        return spyx.nn.IF(shape, threshold=th, activation=act)
    if kind == "LIF":
        mod = spyx.nn.LIF(shape, beta=None, threshold=th, activation=act, rngs=nnx.Rngs(0))
        mod.beta.set_value(jnp.asarray(full(c.decay), dtype=jd))
        return mod
    mod = spyx.nn.CuBaLIF(shape, alpha=None, beta=None, threshold=th, activation=act, rngs=nnx.Rngs(0))
    mod.alpha.set_value(jnp.asarray(full(c.syn_decay), dtype=jd))
    mod.beta.set_value(jnp.asarray(full(c.decay), dtype=jd))
    return mod


def to_native(graph, dt: float | None = None, dtype: torch.dtype = torch.float64, reset: str | None = None,
              integration: str | None = None, seed: int = 0):
    """A trainable ``spyx.nn.Sequential`` (flax nnx) realising the chain ``graph`` (NIR graph, FlatGraph or path);
    step it with ``spyx.nn.run(model, x)`` on ``[T, B, *input_shape]`` (time-major), spikes ``[T, B, N_out]``.

    Accepted: a chain ``Input → (Linear | Affine | Flatten | neuron [→ Delay])* → Output`` of the form
    :func:`from_native` writes: ``LIF`` / ``IF`` with the delayed subtract timing and ``CubaLIF`` with the immediate
    subtract reset, each followed by a one-step ``Delay`` (becoming ``spyx.nn.LIF`` / ``IF`` / ``CuBaLIF``), ``LI`` /
    ``I`` (``spyx.nn.LI``), with input gain 1, no bias, threshold > 0 and zero initial state.  Parameters are
    ``dtype`` (float64 switches JAX to 64-bit mode): ``nnx.Linear`` kernels (the transposed weights) and biases,
    the neurons' ``beta`` / ``alpha`` as ``nnx.Param`` (Spyx's own trainable decays), thresholds as arrays.  Anything
    else is refused with :class:`UnsupportedNodeError` naming the node and field.
    """
    from pathlib import Path

    from snnbridge.backends.spyx_backend import SpyxBackend
    from snnbridge.bridge.io import read_graph

    spyx, _, jnp, nnx = _spyx()
    jd = _jdtype(dtype)
    if isinstance(graph, (str, Path)):
        graph = read_graph(graph)
    fg = SpyxBackend().prepare(graph, dt, reset, integration, dtype)
    if len(fg.inputs) != 1 or len(fg.outputs) != 1 or fg.is_recurrent:
        raise UnsupportedNodeError("backend 'spyx' to_native needs a chain with one Input and one Output node and no "
                                   "recurrence")
    rngs = nnx.Rngs(seed)
    layers: list = []
    consumed: set[str] = set()
    for name in fg.order:
        kind = fg.type_of(name)
        if len(fg.preds[name]) > 1 or sum(name in fg.preds[n] for n in fg.order) > 1:
            raise _refuse(name, None, "the graph branches here (only chains become a Sequential)")
        if kind in ("Input", "Output") or name in consumed:
            continue
        shape = tuple(fg.in_shapes[name])
        if kind in ("Linear", "Affine"):
            node = fg.nodes[name]
            w = np.asarray(node.weight, dtype=np.float64)
            if w.ndim != 2 or shape != (w.shape[1],):
                raise _refuse(name, "weight", f"weight {list(w.shape)} on per-sample input {list(shape)}: "
                                              f"nnx.Linear maps [N_in] to [N_out]")
            lin = nnx.Linear(w.shape[1], w.shape[0], use_bias=kind == "Affine", param_dtype=jd, rngs=rngs)
            lin.kernel.set_value(jnp.asarray(w.T, dtype=jd))
            if kind == "Affine":
                bias = np.broadcast_to(np.asarray(node.bias, dtype=np.float64), (w.shape[0],))
                lin.bias.set_value(jnp.asarray(bias, dtype=jd))
            layers.append(lin)
        elif kind == "Flatten":
            if tuple(fg.out_shapes[name]) != (int(np.prod(shape)),):
                raise _refuse(name, "start_dim", "a partial flatten (spyx.nn.Flatten flattens every per-sample dim)")
            layers.append(spyx.nn.Flatten())
        elif kind in sem.NEURON_TYPES:
            delayed_by = _one_step_delay(fg, name) if kind in ("LIF", "IF", "CubaLIF") else None
            layers.append(_neuron_module(fg, name, jd, delayed_by))
            if delayed_by:
                consumed.add(delayed_by)
        else:
            raise _refuse(name, None, f"node type {kind}: a Spyx chain holds nnx.Linear (Linear, Affine), "
                                      f"spyx.nn.Flatten and Spyx neurons (a Delay only right after LIF/IF/CubaLIF)")
    if not any(type(m).__name__ in NEURONS for m in layers):
        raise UnsupportedNodeError("backend 'spyx' to_native: the graph has no neuron node (spyx.nn.run needs a "
                                   "stateful layer)")
    return spyx.nn.Sequential(*layers)
