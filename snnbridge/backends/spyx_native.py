"""Native Spyx models in and out: :func:`from_native`, :func:`run_native`, :func:`to_native` (spyx 1.0.0, flax nnx,
read from ``spyx/nn.py``).  Tensors are ``[T, B, ...]`` (time-major, as ``spyx.nn.run``).

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
* ``flax.nnx.Linear`` → ``Linear`` / ``Affine`` (weight = the transposed kernel); ``spyx.nn.Flatten`` → ``Flatten``;
* :func:`reference_neuron` (what :func:`to_native` builds for the reference's own timing) → its node, pinned.

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

:func:`to_native` builds the inverse, a trainable ``spyx.nn.Sequential`` for chains of ``Linear`` / ``Affine``
(``nnx.Linear``), ``Flatten`` (``spyx.nn.Flatten``) and neuron nodes: a node of exactly the form above (followed by
its one-step Delay) becomes Spyx's own ``LIF`` / ``IF`` / ``CuBaLIF`` / ``LI``; a node in the reference's own
(immediate) timing — any reset mode, gain, bias, ``v_reset``, initial state, inclusive threshold, LIF / IF /
CubaLIF / LI / I / CubaLI — becomes a :func:`reference_neuron` (``ReferenceNeuron``: Spyx's ``LI`` + ``IF`` and the
reference's reset, stepped exactly as the ``spyx`` backend steps it; :func:`from_native` imports it back).  The
delayed reset timings in any other form, a ``Delay`` anywhere else, convolutions, pooling, ``Scale``, branches and
recurrence are refused naming the node and field.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Sequence

import nir
import numpy as np
import torch

from snnbridge.backends.native_args import export_chain, native_dt, native_graph, native_input_shape
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.metadata import make_metadata
from snnbridge.bridge.recording import Recording
from snnbridge.errors import NativeModelError, UnsupportedNodeError

NEURONS = ("LIF", "IF", "CuBaLIF", "LI")
"""The ``spyx.nn`` neuron classes imported (exactly these classes, not subclasses)."""
DELAYED_OUT = ("LIF", "IF", "CuBaLIF")
"""Spyx neurons that emit the spike decided one step earlier (a ``Delay`` node follows them in the graph)."""
DELAYED_KINDS = ("LIF", "IF", "CubaLIF")
"""The NIR node types of :data:`DELAYED_OUT`."""


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
    _, _, _, nnx = _spyx()
    a = np.asarray(v[...] if isinstance(v, nnx.Variable) else v, dtype=np.float64)
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


@lru_cache(maxsize=1)
def reference_neuron() -> type:
    """``ReferenceNeuron``: one neuron node in the reference's own step, composed of Spyx modules as the ``spyx``
    backend composes it (a flax nnx module for ``spyx.nn.Sequential``; state ``V`` ``[B, *shape]``, Cuba nodes
    ``[V, I]`` concatenated on the last axis, as ``spyx.nn.CuBaLIF``).

    Per step: ``I = syn.LI(syn_gain·x + 0, I)`` (Cuba nodes), ``u = mem.LI(gain·drive + bias, V)`` (``spyx.nn.LI``:
    ``β·V + x``, ``β`` = the reference decay), then for spiking nodes ``s, v = spyx.nn.IF(0, u)`` (strict or
    inclusive compare, subtract), and the carried state ``v`` (subtract), ``u·(1 - s) + s·v_reset`` (zero) or ``u``
    (none).  Output: the spike ``s`` of this very step (the reference's immediate timing), or ``u`` for LI / I /
    CubaLI.  ``mem.beta`` / ``syn.beta`` are Spyx ``nnx.Param`` s (trainable); the other constants are arrays.
    """
    spyx, _, jnp, nnx = _spyx()

    class ReferenceNeuron(nnx.Module):
        """A NIR neuron node in the reference's immediate timing, from Spyx's ``LI`` and ``IF``."""

        def __init__(self, kind: str, shape: tuple[int, ...], decay, gain, bias, *, syn_decay=None, syn_gain=None,
                     threshold=None, inclusive: bool = False, reset: str = "none", v_reset=None, v_init=None,
                     i_init=None, dtype=jnp.float64):
            def arr(a):
                return jnp.asarray(np.broadcast_to(np.asarray(a, dtype=np.float64), shape), dtype=dtype)

            self.kind, self.hidden_shape, self.reset = kind, tuple(shape), reset
            self.mem = spyx.nn.LI(self.hidden_shape, beta=None, rngs=nnx.Rngs(0))
            self.mem.beta.set_value(arr(decay))
            syn = fire = None
            if syn_decay is not None:
                syn = spyx.nn.LI(self.hidden_shape, beta=None, rngs=nnx.Rngs(0))
                syn.beta.set_value(arr(syn_decay))
            if threshold is not None:
                from snnbridge.backends.spyx_backend import inclusive_activation

                fire = spyx.nn.IF(self.hidden_shape, threshold=arr(threshold),
                                  activation=inclusive_activation() if inclusive else None)
            self.syn, self.fire = nnx.data(syn), nnx.data(fire)  # modules, or None (data either way)
            self.gain, self.bias = arr(gain), arr(bias)
            self.syn_gain = None if syn_gain is None else arr(syn_gain)
            self.v_reset = arr(0.0 if v_reset is None else v_reset)
            self.v_init, self.i_init = arr(0.0 if v_init is None else v_init), arr(0.0 if i_init is None else i_init)

        def initial_state(self, batch_size: int):
            """``V`` (``[V, I]`` for Cuba nodes) at ``v_init`` / ``i_init``, ``[B, *shape]``."""
            v = jnp.broadcast_to(self.v_init, (batch_size,) + self.hidden_shape) + 0.0
            if self.syn is None:
                return v
            return jnp.concatenate([v, jnp.broadcast_to(self.i_init, v.shape) + 0.0], axis=-1)

        def __call__(self, x, state):
            """One step on ``x`` ``[B, *shape]``: ``(spikes or membrane, new state)``."""
            v, i = (jnp.split(state, 2, -1) if self.syn is not None else (state, None))
            drive = x
            if self.syn is not None:
                i, _ = self.syn(self.syn_gain * x + 0.0, i)
                drive = i
            u, _ = self.mem(self.gain * drive + self.bias, v)
            out, v = u, u
            if self.fire is not None:
                out, v = self.fire(jnp.zeros_like(u), u)
                if self.reset in ("zero", "none"):  # Spyx only subtracts: the semantics' own reset
                    v = sem.reset(u, out, self.reset, None, self.v_reset)
            return out, (v if self.syn is None else jnp.concatenate([v, i], axis=-1))

    return ReferenceNeuron


def _reference_node(i: int, m, shape: tuple[int, ...], dt: float) -> nir.NIRNode:
    """The NIR node of a :func:`reference_neuron` (layer ``i``): its kind, pinned constants and options."""
    if tuple(m.hidden_shape) != shape:
        raise _err(i, m, f"has shape {list(m.hidden_shape)} but receives {list(shape)}")
    kind = m.kind
    decay = np.clip(_full(i, m, "beta", m.mem.beta, shape), 0.0, 1.0)
    gain, bias = _full(i, m, "gain", m.gain, shape), _full(i, m, "bias", m.bias, shape)
    v_init, i_init = _full(i, m, "v_init", m.v_init, shape), _full(i, m, "i_init", m.i_init, shape)
    perfect = kind in ("IF", "I")
    if perfect != bool(np.all(decay == 1.0)) or (not perfect and np.any(decay == 1.0)):
        raise _err(i, m, f"a {kind} node with decay {decay.min():g}..{decay.max():g}")
    if perfect and np.any(bias != 0):
        raise _err(i, m, f"a {kind} node with a bias")
    meta: dict[str, Any] = {}
    if np.any(v_init != 0):
        meta["v_init"] = v_init
    if m.syn is not None and np.any(i_init != 0):
        meta["i_init"] = i_init
    thr = None
    if m.fire is not None:
        compare = compare_of(m.fire.spike)
        if compare is None:
            raise _err(i, m, "its activation's forward is not a step at 0 (x > 0 or x >= 0)")
        thr = _full(i, m, "threshold", m.fire.threshold, shape)
        meta.update(reset=m.reset, threshold=compare)
    v_reset = _full(i, m, "v_reset", m.v_reset, shape)
    if perfect:
        return nir.IF(r=gain, v_threshold=thr, v_reset=v_reset, metadata=meta) if kind == "IF" else \
            nir.I(r=gain, metadata=meta)
    tau = dt / (1.0 - decay)
    meta.update(decay=decay, gain=gain, bias=bias, coefficients_dt=float(dt))
    v_leak, r = bias / (1.0 - decay), gain / (1.0 - decay)
    if kind == "LIF":
        return nir.LIF(tau=tau, r=r, v_leak=v_leak, v_threshold=thr, v_reset=v_reset, metadata=meta)
    if kind == "LI":
        return nir.LI(tau=tau, r=r, v_leak=v_leak, metadata=meta)
    syn_decay = np.clip(_full(i, m, "syn beta", m.syn.beta, shape), 0.0, 1.0)
    syn_gain = _full(i, m, "syn_gain", m.syn_gain, shape)
    if np.any(syn_decay == 1.0):
        raise _err(i, m, "a synaptic decay of 1 (a CubaLIF time constant is then infinite)")
    tau_syn = dt / (1.0 - syn_decay)
    meta.update(syn_decay=syn_decay, syn_gain=syn_gain)
    w_in = syn_gain / (1.0 - syn_decay)
    if kind == "CubaLIF":
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau, r=r, v_leak=v_leak, v_threshold=thr, v_reset=v_reset,
                           w_in=w_in, metadata=meta)
    return nir.CubaLI(tau_syn=tau_syn, tau_mem=tau, r=r, v_leak=v_leak, w_in=w_in, metadata=meta)


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
        module: a ``spyx.nn.Sequential`` of ``flax.nnx.Linear``, ``spyx.nn.Flatten``, ``spyx.nn.LIF`` / ``IF`` /
            ``CuBaLIF`` / ``LI`` and :func:`reference_neuron` modules (see the module docstring).
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
        elif type(m) is reference_neuron():
            node = _reference_node(i, m, shape, dt)
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
    for _, m in nnx.iter_modules(net):
        if type(m) is nnx.Linear:
            m.dtype = None
        for key, a in list(vars(m).items()):  # thresholds, gains, ...: plain arrays, not nnx Variables
            if isinstance(a, (np.ndarray, jax.Array)) and jnp.issubdtype(a.dtype, jnp.floating):
                setattr(m, key, jnp.asarray(a, dtype=jdtype))
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
            if kind == "LI" or type(m) is reference_neuron():  # this step's membrane or spike
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
    """The Spyx module realising neuron node ``name`` (followed by the one-step Delay ``delayed_by`` or not):
    Spyx's own ``LIF`` / ``IF`` / ``CuBaLIF`` / ``LI`` where the node has exactly their form, else a
    :func:`reference_neuron` in the reference's immediate timing; :class:`UnsupportedNodeError` otherwise."""
    spyx, _, jnp, nnx = _spyx()
    from snnbridge.backends.spyx_backend import inclusive_activation

    kind = fg.type_of(name)
    shape = tuple(fg.in_shapes[name])
    c, opts = fg.coefficients(name), fg.options(name)
    reset = fg.node_reset[name] if c.threshold is not None else "none"

    def full(a) -> np.ndarray:
        return np.broadcast_to(np.asarray(a, dtype=np.float64), shape).copy()

    for field, d in (("tau", c.decay), ("tau_syn", c.syn_decay)):
        if d is not None and not np.all((full(d) >= 0) & (full(d) <= 1)):
            raise _refuse(name, field, "a decay outside [0, 1] (Spyx clips its decays to [0, 1])")
    v0, i0 = sem.initial_values(opts, torch.zeros((1,) + shape, dtype=torch.float64))
    misfit = []  # (field, why) for each way the node differs from Spyx's own module of its kind, in order
    if bool(torch.any(v0 != 0)) or bool(torch.any(i0 != 0)):
        misfit.append(("v_init" if bool(torch.any(v0 != 0)) else "i_init", "a non-zero initial state (Spyx's "
                                                                          "states start at 0)"))
    if np.any(full(c.gain) != 1):
        misfit.append(("r", "an input gain != 1 (Spyx neurons add their input unscaled)"))
    if np.any(full(c.bias) != 0):
        misfit.append(("v_leak", "a bias (Spyx neurons add their input unscaled)"))
    if c.syn_gain is not None and np.any(full(c.syn_gain) != 1):
        misfit.append(("w_in", "a synaptic input gain != 1 (CuBaLIF adds its input to the current unscaled)"))
    if kind in ("LI", "I") and not misfit:
        mod = spyx.nn.LI(shape, beta=None, rngs=nnx.Rngs(0))
        mod.beta.set_value(jnp.asarray(full(c.decay), dtype=jd))
        return mod
    want = "immediate" if kind == "CubaLIF" else "delayed"
    thr = None if c.threshold is None else full(c.threshold)
    if kind in DELAYED_KINDS:
        if reset != "subtract":
            misfit.insert(0, ("reset", f"reset '{reset}' (Spyx's neurons subtract their threshold)"))
        elif opts.reset_timing != want or not delayed_by:
            misfit.insert(0, ("reset_timing", f"reset timing '{opts.reset_timing}'"
                                              f"{'' if delayed_by else ' without a one-step Delay after it'}: a "
                                              f"spyx.nn.{'CuBaLIF' if kind == 'CubaLIF' else kind} is the {want} "
                                              f"subtract timing followed by a one-step Delay (Spyx emits each spike "
                                              f"a step after deciding it)"))
        if not np.all(thr > 0):
            misfit.append(("v_threshold", "a threshold <= 0 (a Spyx neuron's first step fires on 0 - θ)"))
        if kind == "CubaLIF" and len(shape) != 1:
            misfit.append((None, f"per-sample shape {list(shape)} (spyx.nn.CuBaLIF splits a flat [V, I] state)"))
    if kind in DELAYED_KINDS and not misfit:
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
    if not opts.default_timing:  # no Spyx module of its own, and not the reference's timing either
        field, why = misfit[0] if misfit else ("reset_timing", f"reset timing '{opts.reset_timing}'")
        raise _refuse(name, field, f"{why}; a node in reset timing '{opts.reset_timing}' has no Spyx module "
                                   f"otherwise")
    if kind in ("CubaLIF", "CubaLI") and len(shape) != 1:
        raise _refuse(name, None, f"a {kind} over per-sample shape {list(shape)} (Spyx splits a flat [V, I] state)")
    return reference_neuron()(
        kind, shape, c.decay, c.gain, c.bias, syn_decay=c.syn_decay, syn_gain=c.syn_gain, threshold=c.threshold,
        inclusive=bool(c.inclusive), reset=reset, v_reset=c.v_reset, v_init=opts.v_init, i_init=opts.i_init,
        dtype=jd)


def to_native(graph, dt: float | None = None, dtype: torch.dtype = torch.float64, reset: str | None = None,
              integration: str | None = None, seed: int = 0):
    """A trainable ``spyx.nn.Sequential`` (flax nnx) realising the chain ``graph`` (NIR graph, FlatGraph or path);
    step it with ``spyx.nn.run(model, x)`` on ``[T, B, *input_shape]`` (time-major), outputs ``[T, B, N_out]``.

    Accepted: a chain ``Input → (Linear | Affine | Flatten | neuron [→ one-step Delay])* → Output``.  ``LIF`` / ``IF``
    in the delayed subtract timing and ``CubaLIF`` with the immediate subtract reset, each followed by a one-step
    ``Delay``, with input gain 1, no bias, threshold > 0 and zero initial state, become ``spyx.nn.LIF`` / ``IF`` /
    ``CuBaLIF`` (``LI`` / ``I`` of that form: ``spyx.nn.LI``); every neuron node in the reference's immediate timing
    becomes a :func:`reference_neuron`.  Exact (as the reference) when stepped eagerly (:func:`run_native`); under
    ``spyx.nn.run``'s jit XLA may fuse ``β·V + x`` into an FMA (a last-ulp difference).  Parameters are ``dtype``
    (float64 switches JAX to 64-bit mode): ``nnx.Linear`` kernels (the transposed weights) and biases and the
    neurons' ``beta`` / ``alpha`` are ``nnx.Param`` s; thresholds, gains, biases and resets are arrays.  Anything
    else is refused with :class:`UnsupportedNodeError` naming the node and field.  ``seed`` seeds the (overwritten)
    initialisers.
    """

    from snnbridge.backends.spyx_backend import SpyxBackend

    spyx, _, jnp, nnx = _spyx()
    jd = _jdtype(dtype)
    fg = export_chain(SpyxBackend(), graph, dt, reset, integration, dtype)
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
            if delayed_by and type(layers[-1]).__name__ in DELAYED_OUT:  # Spyx's own module emits a step late
                consumed.add(delayed_by)
        else:
            raise _refuse(name, None, f"node type {kind}: a Spyx chain holds nnx.Linear (Linear, Affine), "
                                      f"spyx.nn.Flatten and Spyx neurons (a Delay only right after LIF/IF/CubaLIF)")
    if not any(hasattr(m, "initial_state") for m in layers):
        raise UnsupportedNodeError("backend 'spyx' to_native: the graph has no neuron node (spyx.nn.run needs a "
                                   "stateful layer)")
    return spyx.nn.Sequential(*layers)
