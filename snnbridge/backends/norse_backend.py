"""The Norse adapter: native Norse cells and torch layers, configured to follow :mod:`snnbridge.bridge.semantics`.

Norse integrates ``v ← v + dt·tau_inv·((x + v_leak) - v)`` (Euler form).  With ``c = 1 - decay`` taken from
``FlatGraph.coefficients`` this equals the reference ``decay·v + (gain·x + bias)`` when Norse is fed
``(gain/c)·x`` with ``v_leak = bias/c`` and ``dt·tau_inv = c`` — for Euler *and* exact integration, since only
the product ``dt·tau_inv`` enters.  The adapter passes the graph's real ``dt`` and picks ``tau_inv ≈ c/dt``
such that ``dt·tau_inv`` rounds to exactly ``c`` in the run dtype.  Norse's arithmetic is a different
rounding of the same expression, so membranes agree to a few ulps (exactly for dyadic values, and exactly for
IF/I, whose update ``v + x`` is the reference's); shapes are ``[T, B, ...]``.

Node mapping:

* ``LIF`` → ``LIFBoxCell`` (``reset_method`` = Norse's ``reset_value`` / ``reset_subtract`` / no reset);
* ``IF`` → ``IAFCell`` (zero reset); subtract / no reset → a Norse ``SNNCell`` running IAF's update with Norse's
  ``reset_subtract`` (``IAFParameters`` has no reset method);
* ``LI`` → ``LIBoxCell``; ``I`` → ``IAFCell`` with an infinite threshold (output = membrane);
* ``CubaLIF``/``CubaLI`` → ``LIBoxCell`` (synapse, fed ``(syn_gain/c_syn)·x``, i.e. ``w_in·x``) then
  ``LIFBoxCell``/``LIBoxCell`` (fed ``(gain/c)·i``, i.e. ``r·i``);
* ``Threshold`` → Norse's ``heaviside(x - threshold)``;
* ``Affine``/``Linear``/``Conv1d``/``Conv2d``/``AvgPool2d``/``SumPool2d``/``Flatten``/``Scale`` → torch layers.

Where Norse's defaults differ from the reference (measured with norse 1.1.0):

* cells start at ``v = v_leak`` (``LIFBoxCell``, ``LIBoxCell``) or ``v = v_reset`` (``IAFCell``); the reference
  starts at 0, so the adapter always passes an explicit zero state;
* ``dt`` defaults to 1e-3 s and ``norse.torch.from_nir`` uses that default, ignores ``r`` for LIF/IF and drops
  ``reset_method`` for LIF (see :mod:`snnbridge.backends.upstream`);
* Norse returns the post-reset state; the pre-reset membrane is captured from the value Norse passes to its
  ``reset_method`` (LIF) or is IAF's own first line ``v + x`` (IF);
* ``Delay`` nodes (whole steps) shift their input in time exactly as the reference (Norse has no delay module:
  :class:`~snnbridge.backends._torch_graph.DelayAdapter`, a gather along ``T`` or a ring buffer, values copied).

Per-node step options (``FlatGraph.options``, see :mod:`snnbridge.bridge.semantics`):

* ``v_init`` / ``i_init`` become the explicit initial Norse states (membrane, synapse ``LIBoxCell``);
* ``reset_timing`` ``delayed`` / ``immediate_rechecked`` (snnTorch's ``reset_delay`` True / False) run in a Norse
  ``SNNCell`` whose step function (:func:`timed_step`) integrates in Norse's own Euler form
  (``v + dt·tau_inv·((x + v_leak) - v)``, IF: ``v + x``), decides the reset from the carried state
  ``r = heaviside(v_prev - v_th)`` (no gradient), fires with Norse's ``threshold`` (surrogate) and carries the
  state :func:`~snnbridge.bridge.semantics.neuron_step` defines (``zero_reset_target`` ``state`` / ``membrane``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import nir
import numpy as np
import torch

from snnbridge.backends._torch_graph import LayerAdapter, NeuronAdapter, TorchGraphBackend
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph
from snnbridge.errors import UnsupportedNodeError

SUPPORTED = frozenset(sem.STATELESS_TYPES + sem.NEURON_TYPES + ("Delay",))


def rate_for(c: np.ndarray, dt: float, dtype: torch.dtype, device: torch.device | str = "cpu") -> torch.Tensor:
    """``tau_inv`` (1/s) such that Norse's ``dt * tau_inv`` equals ``c`` (per neuron) exactly in ``dtype``."""
    target = torch.as_tensor(np.asarray(c, dtype=np.float64), dtype=dtype, device=device)
    inv = torch.as_tensor(np.asarray(c, dtype=np.float64) / dt, dtype=dtype, device=device)
    for _ in range(8):
        prod = dt * inv
        if torch.equal(prod, target):
            break
        towards = torch.where(prod < target, torch.full_like(inv, float("inf")), torch.full_like(inv, -float("inf")))
        inv = torch.where(prod == target, inv, torch.nextafter(inv, towards))
    return inv


class _KeepPreReset:
    """A Norse ``reset_method`` that remembers the membrane it is handed (the pre-reset value)."""

    def __init__(self, reset: Callable | None) -> None:
        self.reset = reset
        self.v: torch.Tensor | None = None

    def __call__(self, z, v, v_reset, v_th):
        self.v = v
        return v if self.reset is None else self.reset(z, v, v_reset, v_th)


def _iaf_step_with_reset(input_tensor, state, p, dt=0.001):
    """Norse's ``iaf_feed_forward_step`` with a pluggable ``p.reset_method`` (IAFParameters has none)."""
    from norse.torch.functional.iaf import IAFFeedForwardState
    from norse.torch.functional.threshold import threshold

    v_new = state.v + input_tensor
    z_new = threshold(v_new - p.v_th, p.method, p.alpha)
    return z_new, IAFFeedForwardState(v=p.reset_method(z_new, v_new, p.v_reset, p.v_th))


class TimedParameters(NamedTuple):
    """Parameters of :func:`timed_step`: a LIF (``tau_mem_inv`` set) or IF (``tau_mem_inv`` None) neuron whose reset
    follows a non-default ``timing`` (``delayed`` | ``immediate_rechecked``); ``keep`` receives the membrane
    compared with the threshold."""

    tau_mem_inv: torch.Tensor | None
    v_leak: torch.Tensor
    v_th: torch.Tensor
    reset: str
    timing: str
    zero_target: str
    keep: Callable | None = None
    method: str = "super"
    alpha: float = 100.0
    v_sub: torch.Tensor | None = None
    """What a subtract reset removes (``None``: ``v_th``; an inclusive node compares with the float below it)."""


def timed_step(input_tensor, state, p: TimedParameters, dt: float = 0.001):
    """One Norse step (``SNNCell`` activation) with snnTorch's reset timings, written with Norse's arithmetic.

    ``r = H(v_prev - v_th)`` (detached); ``zero``/``state``: integrate ``v_prev·(1-r)``; otherwise integrate
    ``v_prev`` to ``u`` and take ``u - r·v_th`` (subtract) or ``u - u·r`` (zero/membrane); spikes
    ``z = threshold(v - v_th)``; carried: ``v`` (delayed) or ``v - (z-r)·v_th`` / ``v - (z-r)·v``
    (immediate_rechecked).  Shapes ``[B, *shape]``.
    """
    from norse.torch.functional.heaviside import heaviside
    from norse.torch.functional.lif_box import LIFBoxFeedForwardState
    from norse.torch.functional.threshold import threshold

    def integrate(v):
        if p.tau_mem_inv is None:
            return v + input_tensor
        return v + dt * p.tau_mem_inv * (input_tensor + p.v_leak - v)

    sub = p.v_th if p.v_sub is None else p.v_sub
    v_prev = state.v
    r = heaviside(v_prev - p.v_th).detach()
    if p.reset == "zero" and p.zero_target == "state":
        v = integrate(v_prev * (1 - r))
    else:
        u = integrate(v_prev)
        v = u - r * sub if p.reset == "subtract" else u - u * r
    z = threshold(v - p.v_th, p.method, p.alpha)
    if p.keep is not None:
        p.keep(z, v, None, p.v_th)
    if p.timing == "immediate_rechecked":
        d = z - r
        v = v - d * sub if p.reset == "subtract" else v - d * v
    return z, LIFBoxFeedForwardState(v=v)


def subtract_by(theta: torch.Tensor) -> Callable:
    """Norse's ``reset_subtract`` removing ``theta`` whatever threshold the cell compares with (inclusive nodes)."""
    from norse.torch.functional.reset import reset_subtract

    return lambda z, v, v_reset, v_th: reset_subtract(z, v, v_reset, theta)


@dataclass(frozen=True)
class _IAFResetParameters:
    v_th: torch.Tensor
    v_reset: torch.Tensor
    reset_method: Callable
    method: str = "super"
    alpha: float = 100.0


class NorseNeuron(NeuronAdapter):
    """One NIR neuron node as Norse cell(s); state ``(synapse state, membrane state)``."""

    def __init__(self, fg: FlatGraph, name: str, dtype: torch.dtype, device: torch.device) -> None:
        import norse.torch as norse
        from norse.torch.functional import reset as nreset
        from norse.torch.module.snn import SNNCell

        self.name = name
        self.kind = fg.type_of(name)
        self.shape = tuple(fg.in_shapes[name])
        self.dtype, self.device = dtype, device
        dt = fg.semantics.dt
        c64 = fg.coefficients(name)
        self.spiking = c64.threshold is not None
        reset = fg.node_reset[name] if self.spiking else "none"
        opts = fg.options(name)
        timed = self.spiking and not opts.default_timing
        self.options = opts

        def t(a) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=device)

        def leak_rate(decay: np.ndarray, field: str) -> np.ndarray:
            c = 1.0 - np.asarray(decay, dtype=np.float64)
            if np.any(c == 0):
                raise UnsupportedNodeError("backend 'norse' needs dt/tau > 0 representable (decay rounds to 1)",
                                           node=name, field=field)
            return c

        self.syn = None
        self.syn_scale = None
        self._identity: bool | None = None
        if c64.syn_decay is not None:
            cs = leak_rate(c64.syn_decay, "tau_syn")
            self.syn = norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=rate_for(cs, dt, dtype, device),
                                                             v_leak=t(0.0)), dt=dt)
            self.syn_scale = t(np.asarray(c64.syn_gain) / cs)  # = w_in for Euler
        self.keep = None
        self.iaf_input = False
        # an inclusive node (v >= θ) compares strictly with the float below θ; a subtract reset still removes θ
        theta = t(c64.threshold) if self.spiking else None
        fire_at = sem.TensorCoefficients.of(c64, dtype, device).fire_threshold if self.spiking else None
        sub = subtract_by(theta) if self.spiking and c64.inclusive else nreset.reset_subtract
        if self.kind in ("IF", "I"):
            # per-step integrator: IAF's update v + x is the reference's 1·v + (r·x + 0)
            self.scale, self.offset = t(c64.gain), t(c64.bias)
            self.iaf_input = True
            v_th = fire_at if self.spiking else t(np.inf)
            v_reset = t(c64.v_reset) if self.spiking else t(0.0)
            if timed:
                self.keep = _KeepPreReset(None)
                p = TimedParameters(None, t(0.0), v_th, reset, opts.reset_timing, opts.zero_reset_target, self.keep,
                                    v_sub=theta)
                self.mem = SNNCell(timed_step, self._zero_iaf_state, p, dt=dt)
            elif reset == "zero" or not self.spiking:
                self.mem = norse.IAFCell(norse.IAFParameters(v_th=v_th, v_reset=v_reset), dt=dt)
            else:
                self.keep = _KeepPreReset(sub if reset == "subtract" else None)
                p = _IAFResetParameters(v_th=v_th, v_reset=v_reset, reset_method=self.keep)
                self.mem = SNNCell(_iaf_step_with_reset, self._zero_iaf_state, p, dt=dt)
        else:
            c = leak_rate(c64.decay, "tau" if self.kind in ("LIF", "LI") else "tau_mem")
            self.scale = t(np.asarray(c64.gain) / c)  # = r for Euler
            v_leak = t(np.asarray(c64.bias) / c)  # = v_leak for Euler
            self.offset = None
            rate = rate_for(c, dt, dtype, device)
            if timed:
                self.keep = _KeepPreReset(None)
                p = TimedParameters(rate, v_leak, fire_at, reset, opts.reset_timing, opts.zero_reset_target,
                                    self.keep, v_sub=theta)
                self.mem = SNNCell(timed_step, self._zero_iaf_state, p, dt=dt)
            elif self.spiking:
                method = {"zero": nreset.reset_value, "subtract": sub, "none": None}[reset]
                self.keep = _KeepPreReset(method)
                self.mem = norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=rate, v_leak=v_leak,
                                                                   v_th=fire_at, v_reset=t(c64.v_reset),
                                                                   reset_method=self.keep), dt=dt)
            else:
                self.mem = norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=rate, v_leak=v_leak), dt=dt)

    @property
    def identity_drive(self) -> bool:
        if self._identity is None:
            zero_offset = self.offset is None or bool(torch.all(self.offset == 0))
            self._identity = bool(torch.all(self.scale == 1)) and zero_offset
        return self._identity

    def _zero_iaf_state(self, x: torch.Tensor):
        from norse.torch.functional.iaf import IAFFeedForwardState

        return IAFFeedForwardState(v=torch.zeros_like(x))

    def init_state(self, batch):
        from norse.torch.functional.iaf import IAFFeedForwardState
        from norse.torch.functional.leaky_integrator_box import LIBoxState
        from norse.torch.functional.lif_box import LIFBoxFeedForwardState

        z = torch.zeros((batch,) + self.shape, dtype=self.dtype, device=self.device)
        v0, i0 = sem.initial_values(self.options, z)
        syn = LIBoxState(v=i0) if self.syn is not None else None
        if self.iaf_input:
            mem = IAFFeedForwardState(v=v0)
        elif self.spiking:
            mem = LIFBoxFeedForwardState(v=v0)
        else:
            mem = LIBoxState(v=v0)
        return syn, mem

    def encode(self, x):
        if self.syn is not None:
            return self.syn_scale * x
        return self._membrane_input(x)

    def _membrane_input(self, x):
        if self.identity_drive:  # 1·x + 0 equals x (up to the sign of a zero)
            return x
        return self.scale * x + self.offset if self.offset is not None else self.scale * x

    def cell(self, inp, state):
        syn_state, mem_state = state
        if self.syn is not None:
            i, syn_state = self.syn(inp, syn_state)
            inp = self._membrane_input(i)
        if self.iaf_input and self.keep is None:  # IAFCell: its own first line v + x is the pre-reset membrane
            v = mem_state.v + inp
        out, mem_state = self.mem(inp, mem_state)
        if self.keep is not None:
            v = self.keep.v
        elif not self.iaf_input:
            v = out  # LIBoxCell returns its membrane
        if not self.spiking:
            out = v
        return out, (syn_state, mem_state), v


class ThresholdNode(LayerAdapter):
    """NIR ``Threshold`` as Norse's ``heaviside(x - threshold)`` (stateless)."""

    def __init__(self, node: nir.Threshold, dtype: torch.dtype, device: torch.device) -> None:
        from norse.torch.functional.heaviside import heaviside

        thr = torch.as_tensor(np.asarray(node.threshold, dtype=np.float64), dtype=dtype, device=device)
        super().__init__(lambda x: heaviside(x - thr))


class NorseBackend(TorchGraphBackend):
    """Run NIR graphs on Norse, following the reference semantics (see the module docstring)."""

    name = "norse"
    requires = ("norse", "torch")
    pip = "pip install 'snnbridge[norse]'"
    supported_nodes = SUPPORTED
    neuron_adapter = NorseNeuron
    threshold_adapter = ThresholdNode

    # ------------------------------------------------------------- native models (snnbridge.backends.norse_native)
    def from_native(self, module, input_shape, dt: float = 1e-3) -> nir.NIRGraph:
        """The NIR graph stepping exactly as the Norse ``module`` (see :func:`~.norse_native.from_native`)."""
        from snnbridge.backends.norse_native import from_native

        self.ensure_available()
        return from_native(module, input_shape, dt=dt)

    def to_native(self, graph, dt: float | None = None, **options):
        """A trainable module of real Norse cells realising ``graph`` (see :func:`~.norse_native.to_native`)."""
        from snnbridge.backends.norse_native import to_native

        self.ensure_available()
        return to_native(graph, dt=dt, **options)

    def run_native(self, module, inputs, dtype: torch.dtype = torch.float64):
        """Run the Norse ``module`` as Norse does on ``[T, B, *shape]`` (see :func:`~.norse_native.run_native`)."""
        from snnbridge.backends.norse_native import run_native

        self.ensure_available()
        return run_native(module, inputs, dtype=dtype)
