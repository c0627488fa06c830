"""The Rockpool adapter: native ``LIFNeuronTorch`` neurons (Rockpool's synapse-free LIF) and torch layers, configured
to follow :mod:`snnbridge.bridge.semantics` (bit-identical to the reference executor in float64 and float32).

Node mapping (constants from ``FlatGraph.coefficients``, never re-derived; tensors ``[T, B, ...]``):

* ``LIF`` / ``IF`` → ``LIFNeuronTorch(tau_mem, threshold=θ, bias=0, dt)`` fed ``gain·x + bias``.  Rockpool's step is
  ``v *= exp(-dt/tau_mem); v += input; v = v + noise + bias``; ``tau_mem`` is chosen per neuron so that Rockpool's
  own ``tau_to_decay(dt, tau_mem)`` equals the reference decay **in the run dtype** (searched ulp by ulp; IF:
  ``tau_mem = inf``), so ``decay·v + (gain·x + bias)`` rounds exactly as the reference;
* ``LI`` / ``I`` → the same neuron with a spike function that never fires; output = membrane;
* ``CubaLIF`` / ``CubaLI`` → two ``LIFNeuronTorch``: the synaptic current (never fires, fed ``syn_gain·x``), then
  the membrane fed ``gain·i + bias``;
* ``Threshold`` → ``LIFNeuronTorch(tau_mem=0)`` (decay 0: its membrane is its input), one step over all frames;
* stateless nodes → the torch layers of :mod:`snnbridge.backends._torch_graph`.

Where Rockpool differs from the reference, and what the adapter does (measured with rockpool 3.1.0):

* Rockpool's spike function ``StepPWL`` emits ``floor(v/θ)`` spikes per step where ``v >= θ`` (multi-spike,
  inclusive compare) and subtracts ``spikes·θ``.  The adapter passes its own ``spike_generation_fn``
  (:class:`SingleSpike`, Rockpool's plug-in point): one spike where ``v > θ`` (``v >= θ`` for inclusive nodes),
  and it is where the adapter reads the pre-reset membrane Rockpool compares.
* Rockpool's neurons reset by subtraction only (Xylo's behaviour).  For reset ``zero`` the adapter takes the spike
  ``s`` and the pre-reset membrane ``u`` of Rockpool's step and carries the reference's ``u·(1 - s) + s·v_reset``
  (torch, the same operations in the same order as :func:`snnbridge.bridge.semantics.reset`: bit-identical in
  float64 and float32); for reset ``none`` it carries ``u``.  The reset timings other than ``immediate`` are refused
  by node name (``UnsupportedNodeError``, field ``reset_timing``).
* Rockpool's modules keep their state for batch element 0 only (``self.vmem = vmem[0]``): the adapter builds each
  neuron with ``B·N`` units (the batch laid out as neurons) and steps it one step per call, so every sample keeps
  its own state and the state Rockpool returns is the full float64 one.
* ``LIFTorch`` is not used: its synaptic current is decayed *after* the input is added
  (``i = β·(i + x)``), which cannot be fed the reference's drive without an extra rounding.
* Each call draws (and multiplies by ``noise_std = 0``) a ``torch.randn``; the adapter runs it (and the
  constructor) inside
  ``torch.random.fork_rng`` so that the user's global RNG is untouched.
* ``Delay`` is not supported.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import nir
import numpy as np
import torch

from snnbridge.backends._torch_graph import NeuronAdapter, ThresholdAdapter, TorchGraphBackend
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph
from snnbridge.errors import UnsupportedNodeError

SUPPORTED = frozenset(sem.STATELESS_TYPES + sem.NEURON_TYPES)
NAME = "rockpool"


@lru_cache(maxsize=1)
def _rp():
    from rockpool.nn.modules.torch import lif_neuron_torch

    return lif_neuron_torch


class SingleSpike:
    """A Rockpool ``spike_generation_fn``: at most one spike per step, strict ``v > θ`` (or ``v >= θ``), or never.

    Rockpool calls ``fn.apply(v, threshold, window, max_spikes)`` with the pre-reset membrane ``v``; the last ``v``
    is kept in :attr:`last_v` (``[1, B·N]``) for the recording.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode  # "strict" | "inclusive" | "never"
        self.last_v: torch.Tensor | None = None

    def apply(self, v: torch.Tensor, threshold: torch.Tensor, window=None, max_spikes=None) -> torch.Tensor:
        self.last_v = v
        if self.mode == "never":
            return torch.zeros_like(v)
        return ((v >= threshold) if self.mode == "inclusive" else (v > threshold)).to(v.dtype)


def tau_for_decay(decay: np.ndarray, dt: float, dtype: torch.dtype) -> torch.Tensor:
    """Per-neuron ``tau_mem`` (dtype ``dtype``) with Rockpool's ``tau_to_decay(dt, tau_mem)`` equal to ``decay``
    cast to ``dtype``, bit for bit (``decay = 1`` → ``inf``, ``0`` → ``0``).  Raises ``ValueError`` if none exists."""
    tau_to_decay = _rp().tau_to_decay
    d = np.array(decay, dtype=np.float64)
    target = torch.as_tensor(d, dtype=dtype)
    with np.errstate(divide="ignore"):
        tau64 = np.where(d >= 1.0, np.inf, np.where(d <= 0.0, 0.0, -dt / np.log(np.where(d > 0, d, 1.0))))
    tau = torch.as_tensor(tau64, dtype=dtype)
    zero, inf = torch.zeros_like(tau), torch.full_like(tau, float("inf"))
    for _ in range(256):
        got = tau_to_decay(dt, tau)
        hi, lo = got > target, got < target
        if not bool((hi | lo).any()):
            return tau
        tau = torch.where(hi, torch.nextafter(tau, zero), torch.where(lo, torch.nextafter(tau, inf), tau))
    raise ValueError("no tau_mem reproduces the decay exactly")


class _Neuron:
    """One ``LIFNeuronTorch`` per batch size, laid out ``[B·N]``; :meth:`step` returns ``(out, v_after, v_pre)``."""

    def __init__(self, tau: torch.Tensor, threshold: torch.Tensor, mode: str, dt: float, dtype: torch.dtype,
                 device: torch.device) -> None:
        self.tau, self.threshold, self.mode, self.dt = tau, threshold, mode, dt
        self.dtype, self.device = dtype, device
        self.modules: dict[int, Any] = {}

    def module(self, batch: int):
        if batch not in self.modules:
            n = self.tau.numel() * batch
            fire = SingleSpike(self.mode)
            with torch.random.fork_rng(devices=[]):
                mod = _rp().LIFNeuronTorch(shape=(n,), tau_mem=self.tau.repeat(batch),
                                           threshold=self.threshold.repeat(batch), bias=0.0, dt=self.dt,
                                           spike_generation_fn=fire, max_spikes_per_dt=torch.tensor(1.0))
            mod = mod.to(device=self.device, dtype=self.dtype)
            with torch.no_grad():  # Rockpool's constructor casts to float32: set the run-dtype values again
                mod.tau_mem.data = self.tau.repeat(batch)
                mod.threshold.data = self.threshold.repeat(batch)
            self.modules[batch] = (mod, fire)
        return self.modules[batch]

    def step(self, inp: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``inp``, ``v``: ``[B, N]``; returns spikes, post-reset state and pre-reset membrane, each ``[B, N]``."""
        B = inp.shape[0]
        mod, fire = self.module(B)
        mod.vmem = v.reshape(-1)
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            spikes, state, _ = mod(inp.reshape(1, 1, -1))
        return (spikes.reshape(B, -1).to(self.dtype), state["vmem"].reshape(B, -1),
                fire.last_v.reshape(B, -1))


def _flat(c, shape: tuple, dtype, device) -> torch.Tensor:
    """``c`` broadcast to the node ``shape`` and flattened to ``[N]``."""
    a = np.broadcast_to(np.asarray(c, dtype=np.float64), shape).reshape(-1).copy()
    return torch.as_tensor(a, dtype=dtype, device=device)


class RockpoolNeuron(NeuronAdapter):
    """A NIR neuron node as Rockpool ``LIFNeuronTorch`` module(s); state ``(v, i)`` ``[B, N]`` (``i``: Cuba)."""

    def __init__(self, fg: FlatGraph, name: str, dtype: torch.dtype, device: torch.device) -> None:
        self.name, self.kind = name, fg.type_of(name)
        self.shape = tuple(fg.in_shapes[name])
        self.n = int(np.prod(self.shape)) if self.shape else 1
        self.dtype, self.device = dtype, device
        c64 = fg.coefficients(name)
        c = sem.TensorCoefficients.of(c64, dtype, device)
        opts = fg.options(name)
        self.spiking = c.threshold is not None
        self.reset = reset = fg.node_reset[name] if self.spiking else "none"
        if self.spiking and opts.reset_timing != "immediate" and reset != "none":
            raise UnsupportedNodeError(f"backend '{NAME}' resets in the step that fired; reset timing "
                                       f"'{opts.reset_timing}' cannot be expressed", node=name, field="reset_timing")
        dt = fg.semantics.dt
        tau_field = {"LIF": "tau", "LI": "tau", "CubaLIF": "tau_mem", "CubaLI": "tau_mem"}.get(self.kind, "r")

        def tau(decay, field):
            try:
                return tau_for_decay(np.broadcast_to(decay, self.shape).reshape(-1), dt, dtype).to(device)
            except ValueError as e:
                raise UnsupportedNodeError(f"backend '{NAME}': {e}", node=name, field=field) from e

        thr = _flat(c64.threshold if self.spiking else 1.0, self.shape, dtype, device)
        mode = ("inclusive" if c64.inclusive else "strict") if self.spiking else "never"
        self.mem = _Neuron(tau(c64.decay, tau_field), thr, mode, dt, dtype, device)
        self.syn = None
        if c.syn_decay is not None:
            self.syn = _Neuron(tau(c64.syn_decay, "tau_syn"), _flat(1.0, self.shape, dtype, device), "never", dt, dtype,
                               device)
        self.gain, self.bias, self.syn_gain = c.gain, c.bias, c.syn_gain
        self.v_reset = _flat(c64.v_reset if c64.v_reset is not None else 0.0, self.shape, dtype, device)
        self.options = opts

    def init_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.zeros((batch,) + self.shape, dtype=self.dtype, device=self.device)
        v, i = sem.initial_values(self.options, z)
        i = None if self.syn is None else i
        return v.reshape(batch, -1), (None if i is None else i.reshape(batch, -1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """What the first Rockpool neuron is fed for drive ``x``: ``syn_gain·x`` (Cuba) or ``gain·x + bias``."""
        if self.syn is not None:
            return self.syn_gain * x + 0.0
        return self.gain * x + self.bias

    def cell(self, inp: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple, torch.Tensor]:
        v, i = state
        B = inp.shape[0]
        flat = inp.reshape(B, -1)
        if self.syn is not None:
            _, i, _ = self.syn.step(flat, i)
            flat = (self.gain * i.reshape((B,) + self.shape) + self.bias).reshape(B, -1)
        spk, v, h = self.mem.step(flat, v)
        if self.reset == "zero" or (self.reset == "none" and self.spiking):  # Rockpool only subtracts
            v = sem.reset(h, spk, self.reset, None, self.v_reset)  # the semantics' reset of its pre-reset membrane
        out = spk if self.spiking else h
        return out.reshape((B,) + self.shape), (v, i), h.reshape((B,) + self.shape)


class ThresholdNode(ThresholdAdapter):
    """NIR ``Threshold`` as ``LIFNeuronTorch(tau_mem=0)`` (decay 0, so its membrane is its input), stateless."""


    def __init__(self, node: nir.Threshold, dtype: torch.dtype, device: torch.device) -> None:
        self.thr = np.asarray(node.threshold, dtype=np.float64)
        self.dtype, self.device = dtype, device


    def cell(self, inp: torch.Tensor, state: Any):
        shape = tuple(inp.shape[1:])
        n = int(np.prod(shape))
        thr = _flat(self.thr, shape, self.dtype, self.device)
        neuron = _Neuron(torch.zeros(n, dtype=self.dtype, device=self.device), thr, "strict", 1.0, self.dtype,
                         self.device)
        spk, _, _ = neuron.step(inp.reshape(inp.shape[0], -1), torch.zeros_like(inp.reshape(inp.shape[0], -1)))
        return spk.reshape(inp.shape), None, None


class RockpoolBackend(TorchGraphBackend):
    """Run NIR graphs on Rockpool's ``LIFNeuronTorch``, following the reference semantics (module docstring)."""

    name = NAME
    requires = ("rockpool", "torch")
    pip = "pip install 'snnbridge[rockpool]'"
    supported_nodes = SUPPORTED
    neuron_adapter = RockpoolNeuron
    threshold_adapter = ThresholdNode

    # ------------------------------------------------------------- native models (snnbridge.backends.rockpool_native)
    def from_native(self, module, input_shape, dt: float | None = None) -> nir.NIRGraph:
        """The NIR graph stepping exactly as the Rockpool ``module`` (see
        :func:`~snnbridge.backends.rockpool_native.from_native`; ``dt`` defaults to the modules' own)."""
        self.ensure_available()
        from snnbridge.backends.rockpool_native import from_native

        return from_native(module, input_shape, dt=dt)

    def run_native(self, module, inputs, dtype: torch.dtype = torch.float64, dt: float | None = None):
        """Run the Rockpool ``module`` as Rockpool does on ``[T, B, N_in]`` (see
        :func:`~snnbridge.backends.rockpool_native.run_native`)."""
        self.ensure_available()
        from snnbridge.backends.rockpool_native import run_native

        return run_native(module, inputs, dtype=dtype, dt=dt)

    def to_native(self, graph, dt: float | None = None, **options):
        """A trainable Rockpool ``Sequential`` of ``LinearTorch`` and ``LIFTorch`` realising the chain ``graph`` (see
        :func:`~snnbridge.backends.rockpool_native.to_native`)."""
        self.ensure_available()
        from snnbridge.backends.rockpool_native import to_native

        return to_native(graph, dt=dt, **options)
