"""The reference semantics: how each NIR node becomes one discrete time step.

This module is the single written-down definition that every snnbridge backend
cites (``docs/semantics.md`` is its prose twin).  Nothing else in the package
may define how a NIR node behaves in discrete time.

Conventions (all tensors are ``[N, *node_shape]`` inside a step, ``[T, B, ...]``
across time):

* **Time grid.** Step ``t`` covers ``((t-1)·dt, t·dt]``.  An input value
  ``x[t]`` (a spike is ``1``) is a pulse of that amplitude *held for the whole
  step* (zero-order hold).
* **Integration.** A leaky state ``tau·dv/dt = (v_leak - v) + r·x`` becomes
  ``v[t] = decay·v[t-1] + (gain·x[t] + bias)`` with

  - ``euler`` (default, what snnTorch/Norse/Sinabs do):
    ``decay = 1 - dt/tau``, ``gain = r·dt/tau``, ``bias = v_leak·dt/tau``;
  - ``exact`` (exponential, exact for a held input):
    ``decay = exp(-dt/tau)``, ``gain = r·(1-decay)``, ``bias = v_leak·(1-decay)``.

  The coefficients are computed once in float64 and then cast to the run dtype,
  and the update is evaluated in exactly that order
  ``decay * v + (gain * x + bias)`` so that every backend rounds alike.
* **IF and I** are per-step integrators (``v[t] = v[t-1] + r·x[t]``, no ``dt``):
  the convention of every NIR producer and consumer (Sinabs, Norse ``IAF``,
  snnTorch ``Leaky(beta=1)``).  Under this convention ``cnn_sinabs.nir`` runs
  as it was trained.
* **CubaLIF / CubaLI.** The synaptic current is updated first and the *new*
  current drives the membrane in the same step:
  ``i[t] = syn_decay·i[t-1] + syn_gain·x[t]`` with ``syn_gain = w_in·(dt/tau_syn)``
  (Euler) and then ``v[t] = decay·v[t-1] + (gain·i[t] + bias)``.  This is
  snnTorch's ``Synaptic`` and exactly what its NIR export assumes
  (``r = tau_mem/dt``, ``w_in = tau_syn/dt`` give unit gains).
* **Threshold.** Strict by default: ``s[t] = v[t] > v_threshold`` (H(0) = 0), as snnTorch, Norse and
  Sinabs compare.  ``threshold="inclusive"`` (graph metadata ``threshold``, or a node's own) fires at
  ``v[t] >= v_threshold``, the paper's Eq. (4).  It is realised as the strict compare against the next
  float below the threshold *in the run dtype* (:attr:`TensorCoefficients.fire_threshold`): for floats
  ``v >= θ`` exactly when ``v > nextafter(θ, -inf)``, and ``v - p`` is 0 only when ``v == p``.  A
  subtract reset still subtracts ``v_threshold`` itself.
* **Reset**, applied in the same step right after the threshold test, to the
  state carried into step ``t+1``:

  - ``zero``: ``v <- v_reset`` (``v_reset`` from the node, 0 where absent);
  - ``subtract``: ``v <- v - v_threshold``;
  - ``none``: no reset.

  This is the paper's Eq. (4) (``u[t] = k·u[t-1]·(1-o[t-1]) + W·x[t]``) and
  Norse's order; snnTorch reproduces it with ``reset_delay=False``.
* **Reset timing** (per node, default ``immediate``; see :data:`RESET_TIMINGS`).  What a
  library's native neuron does, written down so that every backend can realise it:

  - ``immediate``: the rule above (Norse, the paper, snnTorch's adapters here);
  - ``delayed`` (snnTorch's default ``reset_delay=True``): the reset is decided from the
    *previous* step's membrane ``r[t] = H(v[t-1] - θ)`` and applied while integrating the new
    step: ``subtract``: ``v[t] = (decay·v[t-1] + drive) - r[t]·θ``; ``zero`` with
    ``zero_reset_target="state"`` (snnTorch ``Leaky``): ``v[t] = decay·(v[t-1]·(1-r[t])) + drive``;
    with ``zero_reset_target="membrane"`` (``Synaptic``, ``RLeaky``, ``RSynaptic``):
    ``v[t] = u - u·r[t]`` where ``u = decay·v[t-1] + drive`` (the step's input is dropped).
    The carried state is ``v[t]`` itself (no reset after the spike);
  - ``immediate_rechecked`` (snnTorch's ``reset_delay=False``): ``v[t]`` as for ``delayed``
    (``r[t]`` from the carried, already reset state), then
    ``s[t] = H(v[t] - θ)`` and the carried state is ``v[t] - (s[t] - r[t])·θ`` (subtract) or
    ``v[t] - (s[t] - r[t])·v[t]`` (zero).  A residual still above threshold after a
    subtract reset is subtracted again at the next step, which suppresses that step's spike.

  ``delayed`` and ``immediate_rechecked`` zero resets need ``v_reset = 0`` (snnTorch has no
  ``v_reset``).
* **Initial state** (per node): ``v[-1] = v_init`` and ``i[-1] = i_init`` (default 0; Norse's
  cells start at ``v_leak``).
* **Pinned coefficients.** A neuron node may carry its exact discrete constants (``decay``,
  ``gain``, ``bias``, ``syn_decay``, ``syn_gain``) together with the ``coefficients_dt`` they
  hold for (a model imported from snnTorch has ``beta`` itself, not ``1 - dt/tau``, which
  rounds differently).  At that dt they replace the values computed from ``tau``/``r``/
  ``v_leak`` (which must agree with them to 1e-9); at any other dt they are ignored.
* **Recorded membrane** is the value compared with the threshold (after
  integration, before reset).
* **Propagation.** Within a step, values cross every feed-forward edge with no
  delay (topological order); an edge that closes a cycle (recurrent edge)
  delivers the previous step's value (zero at ``t = 0``).  Several edges into
  one node are summed.
* **Delay** nodes shift their input by ``round(delay/dt)`` steps.

What the three simulators do by default, measured (see ``docs/semantics.md``):
snnTorch ``Leaky`` delays the reset by one step (``reset_delay=True``) and
its NIR importer always resets to zero; Norse's ``from_nir`` uses
``dt = 1e-3`` and ignores ``r``; Brian2's default schedule adds one step of
latency per layer.  The backends in :mod:`snnbridge.backends` configure each
simulator so that it follows this module instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

RESET_MODES = ("zero", "subtract", "none")
RESET_TIMINGS = ("immediate", "delayed", "immediate_rechecked")
"""When a reset takes effect: same step (reference), snnTorch ``reset_delay=True``, snnTorch ``reset_delay=False``."""
ZERO_RESET_TARGETS = ("state", "membrane")
"""What a delayed zero reset clears: the carried state (``Leaky``) or the new membrane (``Synaptic``, ``RLeaky``)."""
PINNED_KEYS = ("decay", "gain", "bias", "syn_decay", "syn_gain")
"""Node metadata keys that pin a neuron node's discrete constants (valid at ``coefficients_dt``)."""
INTEGRATIONS = ("euler", "exact")
THRESHOLD_COMPARES = ("strict", "inclusive")
"""How a spike is decided: ``v > θ`` (strict, every simulator's default) or ``v >= θ`` (the paper's Eq. 4)."""
DEFAULT_DT = 1e-4
"""dt (seconds) assumed for graphs that carry no snnbridge metadata (the NIR paper's dt)."""
DEFAULT_RESET = "zero"
"""Reset mode assumed for graphs that carry no snnbridge metadata (NIR's ``v_reset``)."""
DEFAULT_INTEGRATION = "euler"

NEURON_TYPES = ("LIF", "IF", "CubaLIF", "LI", "I", "CubaLI")
SPIKING_TYPES = ("LIF", "IF", "CubaLIF", "Threshold")
STATELESS_TYPES = (
    "Input",
    "Output",
    "Affine",
    "Linear",
    "Scale",
    "Conv1d",
    "Conv2d",
    "AvgPool2d",
    "SumPool2d",
    "Flatten",
    "Threshold",
)
SUPPORTED_TYPES = STATELESS_TYPES + NEURON_TYPES + ("Delay",)


@dataclass(frozen=True)
class Semantics:
    """The options NIR cannot express: step ``dt`` (s), reset mode, integration method, threshold comparison."""

    dt: float = DEFAULT_DT
    reset: str = DEFAULT_RESET
    integration: str = DEFAULT_INTEGRATION
    threshold: str = "strict"

    def __post_init__(self) -> None:
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be a positive finite number of seconds, got {self.dt!r}")
        if self.reset not in RESET_MODES:
            raise ValueError(f"reset must be one of {RESET_MODES}, got {self.reset!r}")
        if self.integration not in INTEGRATIONS:
            raise ValueError(f"integration must be one of {INTEGRATIONS}, got {self.integration!r}")
        if self.threshold not in THRESHOLD_COMPARES:
            raise ValueError(f"threshold must be one of {THRESHOLD_COMPARES}, got {self.threshold!r}")


@dataclass(frozen=True)
class SemanticsOverrides:
    """What a caller sets over a graph's own semantics (its metadata); ``None`` keeps the graph's value.

    ``graph.prepare(graph, **overrides.kwargs())`` resolves the graph's metadata and these into one
    :class:`Semantics` (``FlatGraph.semantics``); an explicit ``reset`` also replaces every node's own reset mode.
    The values are checked where they are resolved (``prepare``), which names the field.
    """

    dt: float | None = None
    reset: str | None = None
    integration: str | None = None

    KEYS = ("dt", "reset", "integration")

    @classmethod
    def of(cls, options: dict | None) -> "SemanticsOverrides":
        """The ``dt`` / ``reset`` / ``integration`` entries of ``options`` (other keys ignored)."""
        options = options or {}
        return cls(**{k: options[k] for k in cls.KEYS if options.get(k) is not None})

    def kwargs(self) -> dict:
        """The keywords that are set, for ``prepare`` / ``Backend.compile`` / ``ReferenceExecutor``."""
        return {k: getattr(self, k) for k in self.KEYS if getattr(self, k) is not None}

    def __bool__(self) -> bool:
        return bool(self.kwargs())

    def then(self, other: "SemanticsOverrides") -> "SemanticsOverrides":
        """These overrides with ``other``'s set values winning (a backend spec's own over the check's)."""
        return SemanticsOverrides(**{**self.kwargs(), **other.kwargs()})

    def without_reset(self) -> "SemanticsOverrides":
        return SemanticsOverrides(self.dt, None, self.integration)


@dataclass(frozen=True)
class NeuronOptions:
    """Per-node step options NIR cannot express (kept in the node's metadata).

    Attributes:
        reset: ``zero`` | ``subtract`` | ``none``.
        reset_timing: one of :data:`RESET_TIMINGS` (default ``immediate``).
        zero_reset_target: one of :data:`ZERO_RESET_TARGETS`; only used by delayed zero resets.
        v_init / i_init: initial membrane / synaptic current (float64, broadcastable to the node shape).
        threshold: ``strict`` (``v > θ``) or ``inclusive`` (``v >= θ``), see :data:`THRESHOLD_COMPARES`.
    """

    reset: str = DEFAULT_RESET
    reset_timing: str = "immediate"
    zero_reset_target: str = "state"
    v_init: np.ndarray | None = None
    i_init: np.ndarray | None = None
    threshold: str = "strict"

    def __post_init__(self) -> None:
        if self.reset not in RESET_MODES:
            raise ValueError(f"reset must be one of {RESET_MODES}, got {self.reset!r}")
        if self.reset_timing not in RESET_TIMINGS:
            raise ValueError(f"reset_timing must be one of {RESET_TIMINGS}, got {self.reset_timing!r}")
        if self.zero_reset_target not in ZERO_RESET_TARGETS:
            raise ValueError(f"zero_reset_target must be one of {ZERO_RESET_TARGETS}, got {self.zero_reset_target!r}")
        if self.threshold not in THRESHOLD_COMPARES:
            raise ValueError(f"threshold must be one of {THRESHOLD_COMPARES}, got {self.threshold!r}")

    @property
    def default_timing(self) -> bool:
        return self.reset_timing == "immediate" or self.reset == "none"

    def metadata(self) -> dict:
        """The node-metadata keys that record these options (defaults left out)."""
        out: dict = {"reset": self.reset}
        if self.reset_timing != "immediate":
            out["reset_timing"] = self.reset_timing
            if self.reset == "zero":
                out["zero_reset_target"] = self.zero_reset_target
        if self.v_init is not None:
            out["v_init"] = np.asarray(self.v_init, dtype=np.float64)
        if self.i_init is not None:
            out["i_init"] = np.asarray(self.i_init, dtype=np.float64)
        if self.threshold != "strict":
            out["threshold"] = self.threshold
        return out


# --------------------------------------------------------------------------- coefficients


def leak_factors(tau: np.ndarray, dt: float, integration: str) -> tuple[np.ndarray, np.ndarray]:
    """``(decay, factor)`` of one leaky state for step ``dt``; ``factor`` multiplies ``r·x + v_leak``.

    float64 arrays shaped like ``tau``.
    """
    tau = np.asarray(tau, dtype=np.float64)
    if integration == "euler":
        a = dt / tau
        return 1.0 - a, a
    if integration == "exact":
        decay = np.exp(-dt / tau)
        return decay, -np.expm1(-dt / tau)
    raise ValueError(f"unknown integration {integration!r}")


@dataclass(frozen=True)
class NeuronCoefficients:
    """Per-neuron constants of one neuron node for one dt, float64, broadcastable to the node shape.

    ``v[t] = decay·v[t-1] + (gain·drive + bias)`` where ``drive`` is the input
    (or, for Cuba nodes, the new synaptic current
    ``i[t] = syn_decay·i[t-1] + syn_gain·x[t]``).
    """

    node_type: str
    decay: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    threshold: np.ndarray | None = None
    v_reset: np.ndarray | None = None
    syn_decay: np.ndarray | None = None
    syn_gain: np.ndarray | None = None
    inclusive: bool = False
    """Fire at ``v >= threshold`` instead of ``v > threshold`` (see :attr:`TensorCoefficients.fire_threshold`)."""

    @property
    def spiking(self) -> bool:
        return self.threshold is not None

    @property
    def has_synapse(self) -> bool:
        return self.syn_decay is not None


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def pinned_coefficients(node, dt: float) -> dict[str, np.ndarray]:
    """The node's pinned discrete constants (``PINNED_KEYS`` in its metadata) when they hold for ``dt``, else ``{}``."""
    meta = getattr(node, "metadata", None) or {}
    at = meta.get("coefficients_dt")
    if at is None or float(np.asarray(at)) != float(dt):
        return {}
    return {k: _f64(meta[k]) for k in PINNED_KEYS if k in meta}


def neuron_coefficients(node, sem: Semantics, threshold: str | None = None) -> NeuronCoefficients:
    """Discrete-time constants of a NIR neuron node (LIF, IF, CubaLIF, LI, I, CubaLI).

    Computed from the node's continuous parameters for ``sem``; pinned constants in the node's metadata
    (see :func:`pinned_coefficients`) replace them at the dt they were pinned for.  ``threshold``
    (``strict``/``inclusive``) is the node's comparison (default: ``sem.threshold``).
    """
    from dataclasses import replace

    c = _computed_coefficients(node, sem)
    pinned = pinned_coefficients(node, sem.dt)
    if pinned:
        c = replace(c, **{k: v for k, v in pinned.items() if getattr(c, k) is not None})
    if (threshold or sem.threshold) == "inclusive" and c.threshold is not None:
        c = replace(c, inclusive=True)
    return c


def _computed_coefficients(node, sem: Semantics) -> NeuronCoefficients:
    kind = type(node).__name__
    one = np.ones(1)
    zero = np.zeros(1)
    reset_value = lambda: _f64(node.v_reset) if getattr(node, "v_reset", None) is not None else zero  # noqa: E731
    if kind in ("IF", "I"):
        r = _f64(node.r)
        if kind == "I":
            return NeuronCoefficients(kind, one, r, zero)
        return NeuronCoefficients(kind, one, r, zero, _f64(node.v_threshold), reset_value())
    if kind in ("LIF", "LI"):
        decay, fac = leak_factors(node.tau, sem.dt, sem.integration)
        gain, bias = fac * _f64(node.r), fac * _f64(node.v_leak)
        if kind == "LI":
            return NeuronCoefficients(kind, decay, gain, bias)
        return NeuronCoefficients(kind, decay, gain, bias, _f64(node.v_threshold), reset_value())
    if kind in ("CubaLIF", "CubaLI"):
        decay, fac = leak_factors(node.tau_mem, sem.dt, sem.integration)
        syn_decay, syn_fac = leak_factors(node.tau_syn, sem.dt, sem.integration)
        gain, bias = fac * _f64(node.r), fac * _f64(node.v_leak)
        syn_gain = syn_fac * _f64(node.w_in)
        if kind == "CubaLI":
            return NeuronCoefficients(kind, decay, gain, bias, syn_decay=syn_decay, syn_gain=syn_gain)
        return NeuronCoefficients(
            kind, decay, gain, bias, _f64(node.v_threshold), reset_value(), syn_decay, syn_gain
        )
    raise ValueError(f"{kind} is not a neuron node")


def delay_steps(node, sem: Semantics) -> np.ndarray:
    """Per-element delay of a NIR ``Delay`` node in whole steps (``round(delay/dt)``)."""
    return np.rint(_f64(node.delay) / sem.dt).astype(np.int64)


# --------------------------------------------------------------------------- step functions


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """Strict step: 1 where ``x > 0`` else 0, in ``x``'s dtype."""
    return (x > 0).to(x.dtype)


SpikeFn = Callable[[torch.Tensor], torch.Tensor]


def integrate(v: torch.Tensor, drive: torch.Tensor, decay, gain, bias) -> torch.Tensor:
    """One leaky/perfect integration step, evaluated in the canonical order ``decay*v + (gain*drive + bias)``."""
    return decay * v + (gain * drive + bias)


def fire(v: torch.Tensor, threshold, spike_fn: SpikeFn = heaviside) -> torch.Tensor:
    """Spikes ``H(v - threshold)`` (strict), in ``v``'s dtype."""
    return spike_fn(v - threshold)


def reset(v: torch.Tensor, s: torch.Tensor, mode: str, threshold, v_reset) -> torch.Tensor:
    """State after the spike ``s`` (0/1, may carry a surrogate gradient)."""
    if mode == "zero":
        return v * (1 - s) + s * v_reset
    if mode == "subtract":
        return v - s * threshold
    if mode == "none":
        return v
    raise ValueError(f"unknown reset mode {mode!r}")


def fire_into(v: torch.Tensor, threshold, out: torch.Tensor) -> torch.Tensor:
    """In place: :func:`fire`'s spikes as float 0/1 into ``out`` (``v``'s shape and dtype), decided as ``v > θ``.

    The same spikes as ``H(v - θ)`` for every float: with gradual underflow ``v - θ > 0`` exactly when ``v > θ``
    (and ``inf - inf`` is NaN, not positive).  ``threshold``: the fire threshold (``TensorCoefficients
    .fire_threshold``; a Python float when uniform)."""
    return torch.gt(v, threshold, out=out)


def reset_inplace(v: torch.Tensor, s: torch.Tensor, keep: torch.Tensor | None, mode: str, threshold,
                  v_reset) -> None:
    """In place: :func:`reset` of ``v`` by the float 0/1 spikes ``s``, bit-identical to it (no gradient).

    ``keep``: ``1 - s`` (zero reset only; e.g. ``torch.le(v, θ_fire)`` before the reset).  ``zero``:
    ``v·(1-s) + s·v_reset``; ``subtract``: ``v - s·θ``; products with 0/1 and additions of ``0`` are exact, so
    the terms that are identities are skipped.  ``threshold`` / ``v_reset``: tensors, or Python floats when
    uniform (faster: float comparisons and products vectorise, ``bool`` masks do not).
    """
    if mode == "zero":
        v.mul_(keep)
        if isinstance(v_reset, float):
            if v_reset != 0.0:
                v.add_(s, alpha=v_reset)
        else:
            v.add_(s * v_reset)
    elif mode == "subtract":
        if isinstance(threshold, float):
            v.sub_(s, alpha=threshold)
        else:
            v.sub_(s * threshold)
    elif mode != "none":
        raise ValueError(f"unknown reset mode {mode!r}")


def initial_values(options: "NeuronOptions", zeros: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(v, i)`` before step 0, each shaped like ``zeros`` (``[B, *shape]``): ``v_init`` / ``i_init`` of
    ``options`` broadcast onto it, else 0 (fresh tensors, never views of the options)."""

    def start(init):
        return zeros.clone() if init is None else zeros + torch.as_tensor(init, dtype=zeros.dtype, device=zeros.device)

    return start(options.v_init), start(options.i_init)


@dataclass
class NeuronState:
    """State of one neuron node: membrane ``v`` and (Cuba nodes) synaptic current ``i``, ``[N, *shape]``."""

    v: torch.Tensor
    i: torch.Tensor | None = None


def neuron_step(
    state: NeuronState,
    x: torch.Tensor,
    c: "TensorCoefficients",
    reset_mode: str,
    spike_fn: SpikeFn = heaviside,
    timing: str = "immediate",
    zero_target: str = "state",
) -> tuple[torch.Tensor, NeuronState, torch.Tensor]:
    """Advance one neuron node by one step.

    Returns ``(output, new_state, v)`` where ``output`` is the spike tensor
    (spiking nodes) or the membrane (LI, I, CubaLI) and ``v`` is the membrane
    compared with the threshold (before reset).  ``timing`` and ``zero_target``
    select the reset timing (:data:`RESET_TIMINGS`, :data:`ZERO_RESET_TARGETS`).
    """
    i_new = None
    drive = x
    if c.syn_decay is not None:
        i_new = integrate(state.i, x, c.syn_decay, c.syn_gain, 0.0)
        drive = i_new
    if c.threshold is None or timing == "immediate" or reset_mode == "none":
        v = integrate(state.v, drive, c.decay, c.gain, c.bias)
        if c.threshold is None:
            return v, NeuronState(v, i_new), v
        s = fire(v, c.fire_threshold, spike_fn)
        return s, NeuronState(reset(v, s, reset_mode, c.threshold, c.v_reset), i_new), v
    v, r = delayed_integrate(state.v, drive, c, reset_mode, zero_target)
    s = fire(v, c.fire_threshold, spike_fn)
    if timing == "delayed":
        return s, NeuronState(v, i_new), v
    return s, NeuronState(recheck_reset(v, s, r, reset_mode, c.threshold), i_new), v


def delayed_integrate(v_prev: torch.Tensor, drive: torch.Tensor, c: "TensorCoefficients", reset_mode: str,
                      zero_target: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Integration with a reset decided from the carried state: ``(v, r)`` with ``r = H(v_prev - θ)`` (no gradient).

    ``subtract``: ``v = (decay·v_prev + (gain·drive + bias)) - r·θ``; ``zero`` on the ``state``:
    ``v = decay·(v_prev·(1-r)) + (gain·drive + bias)``; ``zero`` on the ``membrane``: ``v = u - u·r``.
    """
    r = heaviside(v_prev - c.fire_threshold).detach()
    if reset_mode == "zero" and zero_target == "state":
        return integrate(v_prev * (1 - r), drive, c.decay, c.gain, c.bias), r
    u = integrate(v_prev, drive, c.decay, c.gain, c.bias)
    if reset_mode == "subtract":
        return u - r * c.threshold, r
    if reset_mode == "zero":
        return u - u * r, r
    return u, r


def recheck_reset(v: torch.Tensor, s: torch.Tensor, r: torch.Tensor, reset_mode: str, threshold) -> torch.Tensor:
    """The carried state after snnTorch's ``reset_delay=False`` reset: ``v - (s - r)·θ`` or ``v - (s - r)·v``."""
    d = s - r  # the spike keeps its surrogate gradient, as in snnTorch
    if reset_mode == "subtract":
        return v - d * threshold
    if reset_mode == "zero":
        return v - d * v
    return v


@dataclass(frozen=True)
class TensorCoefficients:
    """:class:`NeuronCoefficients` cast to one torch dtype/device (what a step function consumes)."""

    decay: torch.Tensor
    gain: torch.Tensor
    bias: torch.Tensor
    threshold: torch.Tensor | None
    v_reset: torch.Tensor | None
    syn_decay: torch.Tensor | None
    syn_gain: torch.Tensor | None
    fire_threshold: torch.Tensor | None = None
    """What the membrane is compared with (strictly): ``threshold`` itself, or for an inclusive node the next
    float below it in this dtype.  ``threshold`` stays what a subtract reset subtracts."""

    def __post_init__(self) -> None:
        if self.fire_threshold is None and self.threshold is not None:
            object.__setattr__(self, "fire_threshold", self.threshold)

    @classmethod
    def of(cls, c: NeuronCoefficients, dtype: torch.dtype, device="cpu") -> "TensorCoefficients":
        def t(a):  # a copy: a trainable user must never write into the graph's arrays
            return None if a is None else torch.tensor(np.asarray(a), dtype=dtype, device=device)

        thr = t(c.threshold)
        fire_at = inclusive_threshold(thr) if c.inclusive and thr is not None else thr
        return cls(t(c.decay), t(c.gain), t(c.bias), thr, t(c.v_reset), t(c.syn_decay), t(c.syn_gain), fire_at)


def inclusive_threshold(threshold: torch.Tensor) -> torch.Tensor:
    """The strict-compare threshold that realises ``v >= threshold`` in ``threshold``'s dtype: the next float below."""
    return torch.nextafter(threshold, torch.full_like(threshold, -float("inf")))


# --------------------------------------------------------------------------- stateless nodes


def _pair(v) -> tuple[int, int]:
    a = np.atleast_1d(np.asarray(v)).astype(int).ravel()
    return (int(a[0]), int(a[0])) if a.size == 1 else (int(a[0]), int(a[1]))


def pool_params(node) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """``(kernel, stride, padding)`` of an AvgPool2d/SumPool2d node as int pairs (scalars broadcast)."""
    k = _pair(node.kernel_size)
    s = _pair(node.stride) if node.stride is not None else k
    p = _pair(node.padding) if node.padding is not None else (0, 0)
    return k, s, p


def conv2d_params(node) -> dict:
    """``stride``, ``padding`` (ints or 'same'/'valid'), ``dilation``, ``groups`` of a Conv2d node."""
    pad = node.padding
    padding = pad if isinstance(pad, str) else _pair(pad)
    return {
        "stride": _pair(node.stride),
        "padding": padding,
        "dilation": _pair(node.dilation),
        "groups": int(node.groups),
    }


def conv1d_params(node) -> dict:
    pad = node.padding
    return {
        "stride": int(np.atleast_1d(node.stride)[0]),
        "padding": pad if isinstance(pad, str) else int(np.atleast_1d(pad)[0]),
        "dilation": int(np.atleast_1d(node.dilation)[0]),
        "groups": int(node.groups),
    }


def stateless_forward(node, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Output of a stateless node for inputs ``x`` ``[N, *in_shape]`` → ``[N, *out_shape]``.

    ``params`` holds the node's tensors already cast (``weight``, ``bias``, ``scale``,
    ``threshold``).  Affine: ``W x + b``; Linear: ``W x``; Scale: ``s ⊙ x``;
    Conv: cross-correlation as in ``torch.nn.functional.conv{1,2}d``;
    AvgPool2d: mean over the window, zero padding counted;
    SumPool2d: sum over the window; Flatten: NIR dims exclude the batch;
    Threshold: ``H(x - threshold)``.
    """
    kind = type(node).__name__
    if kind in ("Input", "Output"):
        return x
    if kind == "Affine":
        return F.linear(x, params["weight"], params["bias"])
    if kind == "Linear":
        return F.linear(x, params["weight"])
    if kind == "Scale":
        return x * params["scale"]
    if kind == "Conv2d":
        return F.conv2d(x, params["weight"], params.get("bias"), **conv2d_params(node))
    if kind == "Conv1d":
        return F.conv1d(x, params["weight"], params.get("bias"), **conv1d_params(node))
    if kind in ("AvgPool2d", "SumPool2d"):
        k, s, p = pool_params(node)
        if kind == "AvgPool2d":
            return F.avg_pool2d(x, k, s, p, count_include_pad=True)
        return F.avg_pool2d(x, k, s, p, count_include_pad=True, divisor_override=1)
    if kind == "Flatten":
        start = int(node.start_dim)
        end = int(node.end_dim)
        start = start + 1 if start >= 0 else x.dim() + start
        end = end + 1 if end >= 0 else x.dim() + end
        return torch.flatten(x, start, end)
    if kind == "Threshold":
        return heaviside(x - params["threshold"])
    raise ValueError(f"{kind} is not a stateless node")
