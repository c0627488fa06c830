"""The Sinabs adapter: native ``sinabs.layers.LIF`` / ``IAF`` / ``ExpLeak`` and torch layers, configured to follow
:mod:`snnbridge.bridge.semantics` (bit-identical to the reference executor in float64 and float32).

Node mapping (constants from ``FlatGraph.coefficients``, never re-derived; tensors ``[T, B, ...]``, Sinabs's own
layout ``[B, T, ...]`` inside):

* ``LIF`` → ``LIF(train_alphas=True, norm_input=False)`` with ``alpha_mem`` = the reference decay in the run dtype
  (per neuron), fed ``gain·x + bias``: Sinabs's step ``v = alpha·v + x`` rounds exactly as the reference;
* ``IF`` (decay 1 everywhere) → ``IAF`` (``alpha = 1``), fed ``gain·x + bias``;
* ``LI`` / ``I`` → ``ExpLeak(train_alphas=True)`` (Sinabs's non-spiking leaky integrator); output = membrane;
* ``CubaLIF`` / ``CubaLI`` → an ``ExpLeak`` for the synaptic current (``alpha = syn_decay``, fed ``syn_gain·x``),
  then the membrane layer fed ``gain·i + bias``;
* ``Threshold`` → ``IAF`` stepped once from a zero membrane over all ``T·B`` frames (its membrane is its input);
* stateless nodes → the torch layers of :mod:`snnbridge.backends._torch_graph`.

Where Sinabs differs from the reference, and what the adapter does (measured with sinabs 3.1.3, nir 1.0.8):

* Sinabs's default spike function ``MultiSpike`` emits ``trunc(v/θ)`` spikes per step; the adapter passes Sinabs's
  ``SingleSpike`` (one spike where ``v - θ >= 0``, an *inclusive* compare).  The reference fires where
  ``v > fire_threshold``; Sinabs is given ``nextafter(fire_threshold, +inf)`` in the run dtype, which is the same
  test for every float, and subtracts the node's own threshold on a spike (``MembraneSubtract(subtract_value=θ)``).
* ``LIF(tau_syn=...)`` decays the current *after* adding the input (``i = α·(i + x)``), which cannot be fed the
  reference's drive without an extra rounding: the current is a separate ``ExpLeak`` instead.
* ``alpha_mem = exp(-1/tau_mem)`` is computed in float32 from ``tau_mem`` in *steps*; with ``train_alphas=True``
  the decay is Sinabs's own parameter, set to the reference decay in the run dtype (no ``exp`` rounding).
* Zero reset is ``MembraneReset(reset_value=0)``; Sinabs's ``MembraneReset`` adds ``reset_value`` to every
  neuron's membrane (``v·[no spike] + reset_value``), so a zero reset to ``v_reset ≠ 0`` is refused by node name
  (field ``v_reset``).  Reset ``none`` is ``MembraneSubtract(subtract_value=0)`` (``v - 0`` is exact).  The reset
  timings other than ``immediate`` are refused by name (field ``reset_timing``).
* The recorded membrane (pre-reset) is the value Sinabs's spike function compared, captured by a per-node subclass
  of ``SingleSpike``.
* ``v_init`` / ``i_init`` become the layers' initial ``v_mem`` states.
* ``Delay`` is not supported.
* Installing: ``sinabs`` 3.1.3 pins ``nir<=1.0.4`` and pulls ``samna`` (SynSense's device runtime), neither
  needed here: install it with ``pip install --no-deps "sinabs==3.1.3" pbr`` (``snnbridge[sinabs]`` lists it with
  ``pbr``, which ``import sinabs`` needs); its layers run with nir 1.0.8.
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
NAME = "sinabs"


@lru_cache(maxsize=1)
def _sl():
    import sinabs.activation as act
    import sinabs.layers as layers

    return layers, act


def capturing_single_spike() -> type:
    """A fresh subclass of Sinabs's ``SingleSpike`` that keeps every membrane it compares in ``.seen`` (a list)."""
    _, act = _sl()
    base = act.SingleSpike

    class CapturingSingleSpike(base):
        seen: list = []

        @staticmethod
        def forward(ctx, v_mem, spike_threshold, surrogate_grad_fn):
            CapturingSingleSpike.seen.append(v_mem)
            return base.forward(ctx, v_mem, spike_threshold, surrogate_grad_fn)

    CapturingSingleSpike.seen = []
    return CapturingSingleSpike


def sinabs_threshold(fire_threshold: torch.Tensor) -> torch.Tensor:
    """The threshold Sinabs's inclusive ``v - θ' >= 0`` needs to fire exactly where ``v > fire_threshold``."""
    return torch.nextafter(fire_threshold, torch.full_like(fire_threshold, float("inf")))


def _set_alpha(layer, alpha: torch.Tensor) -> None:
    with torch.no_grad():
        layer.alpha_mem.data = alpha.clone()


def _run(layer, inp: torch.Tensor, v0: torch.Tensor) -> torch.Tensor:
    """Run a Sinabs layer on ``inp`` ``[B, T, ...]`` from membrane ``v0`` ``[B, ...]``; returns its output."""
    layer.v_mem = v0
    with torch.no_grad():
        return layer(inp)


class SinabsNeuron(NeuronAdapter):
    """A NIR neuron node as Sinabs layer(s); state ``(v, i)`` ``[B, *shape]`` (``i``: Cuba current, else ``None``)."""

    def __init__(self, fg: FlatGraph, name: str, dtype: torch.dtype, device: torch.device) -> None:
        layers, act = _sl()
        self.name, self.kind = name, fg.type_of(name)
        self.shape = tuple(fg.in_shapes[name])
        self.dtype, self.device = dtype, device
        c64 = fg.coefficients(name)
        c = sem.TensorCoefficients.of(c64, dtype, device)
        opts = fg.options(name)
        self.spiking = c.threshold is not None
        reset = fg.node_reset[name] if self.spiking else "none"
        if self.spiking and opts.reset_timing != "immediate":
            raise UnsupportedNodeError(f"backend '{NAME}' resets in the step that fired; reset timing "
                                       f"'{opts.reset_timing}' cannot be expressed", node=name, field="reset_timing")
        if self.spiking and reset == "zero" and bool(np.any(np.asarray(c64.v_reset, dtype=np.float64) != 0)):
            raise UnsupportedNodeError(f"backend '{NAME}': Sinabs's MembraneReset adds its reset value to every "
                                       "neuron's membrane, so a zero reset to v_reset != 0 cannot be expressed",
                                       node=name, field="v_reset")

        def full(a: torch.Tensor) -> torch.Tensor:
            return torch.broadcast_to(a.to(dtype=dtype, device=device), self.shape).clone()

        self.mem_decay = full(c.decay)
        self.fire = None
        if self.spiking:
            self.fire = capturing_single_spike()
            reset_fn = {"zero": act.MembraneReset(reset_value=0.0),
                        "subtract": act.MembraneSubtract(subtract_value=full(c.threshold)),
                        "none": act.MembraneSubtract(subtract_value=0.0)}[reset]
            thr = sinabs_threshold(full(c.fire_threshold))
            if bool(torch.all(self.mem_decay == 1)):
                self.mem = layers.IAF(spike_threshold=thr, spike_fn=self.fire, reset_fn=reset_fn)
            else:
                self.mem = layers.LIF(tau_mem=1.0, spike_threshold=thr, spike_fn=self.fire, reset_fn=reset_fn,
                                      train_alphas=True, norm_input=False)
                _set_alpha(self.mem, self.mem_decay)
            with torch.no_grad():
                self.mem.spike_threshold.data = thr
        else:
            self.mem = layers.ExpLeak(tau_mem=1.0, train_alphas=True, norm_input=False)
            _set_alpha(self.mem, self.mem_decay)
        self.mem.to(device)
        self.syn = None
        if c.syn_decay is not None:
            self.syn = layers.ExpLeak(tau_mem=1.0, train_alphas=True, norm_input=False).to(device)
            _set_alpha(self.syn, full(c.syn_decay))
        self.gain, self.bias, self.syn_gain = c.gain, c.bias, c.syn_gain
        self.options = opts

    def init_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.zeros((batch,) + self.shape, dtype=self.dtype, device=self.device)
        v, i = sem.initial_values(self.options, z)
        i = None if self.syn is None else i
        return v, i

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """What the first Sinabs layer is fed for drive ``x``: ``syn_gain·x`` (Cuba) or ``gain·x + bias``."""
        if self.syn is not None:
            return self.syn_gain * x + 0.0
        return self.gain * x + self.bias

    def _sequence(self, inp: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple, torch.Tensor]:
        """``inp`` ``[B, T, ...]`` (encoded) → ``(output [B, T, ...], state after, pre-reset membrane [B, T, ...])``."""
        v, i = state
        if self.syn is not None:
            cur = _run(self.syn, inp, i)  # ExpLeak's output is its state: the current at every step
            i = self.syn.v_mem
            inp = self.gain * cur + self.bias
        if self.fire is not None:
            self.fire.seen.clear()
            out = _run(self.mem, inp, v).to(self.dtype)
            h = torch.stack(self.fire.seen, 1)
            self.fire.seen.clear()
        else:
            out = h = _run(self.mem, inp, v)
        return out, (self.mem.v_mem, i), h

    def cell(self, inp: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple, torch.Tensor]:
        out, state, h = self._sequence(inp.unsqueeze(1), state)
        return out[:, 0], state, h[:, 0]

    def over_time(self, x: torch.Tensor, want_v: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """All ``T`` steps in one call of the Sinabs layer(s) (a DAG: the input does not depend on the output)."""
        out, _, h = self._sequence(self.encode(x).transpose(0, 1), self.init_state(x.shape[1]))
        return out.transpose(0, 1), (h.transpose(0, 1) if want_v else None)


class ThresholdNode(ThresholdAdapter):
    """NIR ``Threshold`` as Sinabs's ``IAF`` stepped once from a zero membrane over all frames (stateless)."""


    def __init__(self, node: nir.Threshold, dtype: torch.dtype, device: torch.device) -> None:
        self.thr = torch.as_tensor(np.asarray(node.threshold, dtype=np.float64), dtype=dtype, device=device)
        self.dtype, self.device = dtype, device


    def cell(self, inp: torch.Tensor, state: Any):
        layers, act = _sl()
        thr = sinabs_threshold(torch.broadcast_to(self.thr, tuple(inp.shape[1:])).clone())
        iaf = layers.IAF(spike_threshold=thr, spike_fn=act.SingleSpike, reset_fn=act.MembraneReset(0.0))
        with torch.no_grad():
            iaf.spike_threshold.data = thr
        out = _run(iaf, inp.unsqueeze(1), torch.zeros_like(inp))
        return out[:, 0].to(self.dtype), None, None


class SinabsBackend(TorchGraphBackend):
    """Run NIR graphs on Sinabs's ``LIF`` / ``IAF`` / ``ExpLeak`` layers, following the reference semantics."""

    name = NAME
    requires = ("sinabs", "torch")
    pip = "pip install --no-deps 'sinabs==3.1.3' pbr"
    supported_nodes = SUPPORTED
    neuron_adapter = SinabsNeuron
    threshold_adapter = ThresholdNode

    # ------------------------------------------------------------- native models (snnbridge.backends.sinabs_native)
    def from_native(self, module, input_shape, dt: float = 1e-3) -> nir.NIRGraph:
        """The NIR graph stepping exactly as the Sinabs ``module`` (see
        :func:`~snnbridge.backends.sinabs_native.from_native`)."""
        self.ensure_available()
        from snnbridge.backends.sinabs_native import from_native

        return from_native(module, input_shape, dt=dt)

    def run_native(self, module, inputs, dtype: torch.dtype = torch.float64, dt: float | None = None):
        """Run the Sinabs ``module`` as Sinabs does on ``[T, B, *input_shape]`` (see
        :func:`~snnbridge.backends.sinabs_native.run_native`)."""
        self.ensure_available()
        from snnbridge.backends.sinabs_native import run_native

        return run_native(module, inputs, dtype=dtype, dt=1e-3 if dt is None else dt)

    def to_native(self, graph, dt: float | None = None, **options):
        """A trainable module of real Sinabs layers realising the chain ``graph`` (see
        :func:`~snnbridge.backends.sinabs_native.to_native`)."""
        self.ensure_available()
        from snnbridge.backends.sinabs_native import to_native

        return to_native(graph, dt=dt, **options)
