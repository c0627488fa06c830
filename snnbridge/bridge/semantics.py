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
* **Threshold.** Strict: ``s[t] = v[t] > v_threshold`` (H(0) = 0).
* **Reset**, applied in the same step right after the threshold test, to the
  state carried into step ``t+1``:

  - ``zero``: ``v <- v_reset`` (``v_reset`` from the node, 0 where absent);
  - ``subtract``: ``v <- v - v_threshold``;
  - ``none``: no reset.

  This is the paper's Eq. (4) (``u[t] = k·u[t-1]·(1-o[t-1]) + W·x[t]``) and
  Norse's order; snnTorch reproduces it with ``reset_delay=False``.
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
INTEGRATIONS = ("euler", "exact")
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
    """The options NIR cannot express: step ``dt`` (s), reset mode, integration method."""

    dt: float = DEFAULT_DT
    reset: str = DEFAULT_RESET
    integration: str = DEFAULT_INTEGRATION

    def __post_init__(self) -> None:
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be a positive finite number of seconds, got {self.dt!r}")
        if self.reset not in RESET_MODES:
            raise ValueError(f"reset must be one of {RESET_MODES}, got {self.reset!r}")
        if self.integration not in INTEGRATIONS:
            raise ValueError(f"integration must be one of {INTEGRATIONS}, got {self.integration!r}")


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

    @property
    def spiking(self) -> bool:
        return self.threshold is not None

    @property
    def has_synapse(self) -> bool:
        return self.syn_decay is not None


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def neuron_coefficients(node, sem: Semantics) -> NeuronCoefficients:
    """Discrete-time constants of a NIR neuron node (LIF, IF, CubaLIF, LI, I, CubaLI)."""
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
) -> tuple[torch.Tensor, NeuronState, torch.Tensor]:
    """Advance one neuron node by one step.

    Returns ``(output, new_state, v)`` where ``output`` is the spike tensor
    (spiking nodes) or the membrane (LI, I, CubaLI) and ``v`` is the membrane
    compared with the threshold (before reset).
    """
    i_new = None
    drive = x
    if c.syn_decay is not None:
        i_new = integrate(state.i, x, c.syn_decay, c.syn_gain, 0.0)
        drive = i_new
    v = integrate(state.v, drive, c.decay, c.gain, c.bias)
    if c.threshold is None:
        return v, NeuronState(v, i_new), v
    s = fire(v, c.threshold, spike_fn)
    return s, NeuronState(reset(v, s, reset_mode, c.threshold, c.v_reset), i_new), v


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

    @classmethod
    def of(cls, c: NeuronCoefficients, dtype: torch.dtype, device="cpu") -> "TensorCoefficients":
        def t(a):
            return None if a is None else torch.as_tensor(np.asarray(a), dtype=dtype, device=device)

        return cls(t(c.decay), t(c.gain), t(c.bias), t(c.threshold), t(c.v_reset), t(c.syn_decay), t(c.syn_gain))


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
