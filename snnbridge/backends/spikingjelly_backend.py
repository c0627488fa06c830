"""The SpikingJelly adapter: native ``neuron.LIFNode`` / ``IFNode`` / ``CUBALIFNode`` in single-step mode and
torch layers, configured to follow :mod:`snnbridge.bridge.semantics` (spikes identical to the reference executor
in float64; membranes within ~1e-13 relative, bit-identical for IF/I).

Node mapping (constants from ``FlatGraph.coefficients``, never re-derived; tensors ``[T, B, ...]``):

* ``LIF`` → ``LIFNode(tau=1/(1-decay), decay_input=False, v_threshold=θ, v_reset=v_reset | None)`` fed
  ``gain·x + bias`` (SpikingJelly's charge ``v - (v - v_reset)/tau + x`` leaks towards ``v_reset``, so a
  zero reset to ``v_reset ≠ 0`` feeds ``gain·x + bias - (1-decay)·v_reset``); ``v_reset=None`` is
  SpikingJelly's soft (subtract) reset;
* ``IF`` → ``IFNode(v_threshold=θ, v_reset=v_reset | None)`` fed ``r·x`` (``v + x``: bit-identical);
* ``LI`` / ``I`` → the same nodes with ``v_threshold=inf`` (never fire, never reset); output = membrane;
* ``CubaLIF`` / ``CubaLI`` → ``CUBALIFNode(c_decay=syn_decay, v_decay=decay)``
  (``c = c_decay·c + x; v = v_decay·v + c``) fed ``syn_gain·x`` when the membrane gain is 1 and the bias 0
  (snnTorch's exports; bit-identical), otherwise the current is carried as ``gain·i + bias`` and fed
  ``gain·syn_gain·x + (1-syn_decay)·bias``;
* ``Threshold`` → ``IFNode(v_threshold=θ)`` stepped from a zero membrane (its membrane is its input);
* stateless nodes → the torch layers of :mod:`snnbridge.backends._torch_graph`.

Where SpikingJelly differs from the reference, and what the adapter does (measured with spikingjelly 2.0.0):

* SpikingJelly fires at ``v - θ >= 0`` (its surrogate functions' forward is ``x >= 0``): the reference's
  strict ``v > θ`` is passed as the surrogate function :class:`StrictSigmoid` (SpikingJelly's Sigmoid
  gradient, forward ``x > 0``); nodes whose comparison is ``inclusive`` get SpikingJelly's own ``Sigmoid``.
* Parameters are Python floats per layer: a node whose decay, threshold, ``v_reset`` (zero reset) or synaptic
  decay differs between neurons is refused by name (``UnsupportedNodeError``); ``r``, ``v_leak``, ``w_in`` may
  differ per neuron (they are part of the fed input).
* ``LIFNode`` needs ``tau > 1`` (decay in ``(0, 1)``): an Euler step with ``dt = tau`` (decay 0) is refused.
* SpikingJelly's neurons always reset: reset mode ``none`` is a node that never fires (``v_threshold=inf``)
  followed by an ``IFNode(v_threshold=θ)`` stepped from a zero membrane on its membrane.  The reset timings
  ``delayed`` / ``immediate_rechecked`` (snnTorch's) are refused by name (field ``reset_timing``).
* ``v_init`` / ``i_init`` become the node's initial ``v`` / ``c`` memories.
* The recorded membrane (pre-reset) is SpikingJelly's own charge of the carried state
  (``functional.lif_charge``; ``v + x`` for IF; ``v_decay·v + c`` for CUBA), the value its surrogate compared.
* ``Delay`` is not supported (no SpikingJelly module for it).
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
NAME = "spikingjelly"


@lru_cache(maxsize=1)
def _sj():
    from spikingjelly.activation_based import functional, neuron, surrogate

    return neuron, surrogate, functional


@lru_cache(maxsize=1)
def strict_surrogate_class() -> type:
    """``StrictSigmoid``: SpikingJelly's ``Sigmoid`` surrogate gradient with the strict forward ``H(x) = x > 0``.

    SpikingJelly's own surrogates fire at ``x >= 0``.  Being a user-defined surrogate, it runs SpikingJelly's
    pure-torch step (``spikingjelly._ops.*.reference``) on every device and dtype.
    """
    _, surrogate, _ = _sj()

    class StrictSigmoid(surrogate.Sigmoid):
        """Sigmoid surrogate gradient, strict Heaviside forward (``x > 0``)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            step = (x > 0).to(x.dtype)
            if not (self.spiking and x.requires_grad):
                return step
            sg = torch.sigmoid(self.alpha * x)
            return step + (sg - sg.detach())

    return StrictSigmoid


def uniform(arr, name: str, field: str, what: str) -> float:
    """The single value of a per-neuron float64 array, or :class:`UnsupportedNodeError` naming node and field."""
    a = np.unique(np.asarray(arr, dtype=np.float64))
    if a.size != 1:
        raise UnsupportedNodeError(f"backend '{NAME}' takes one {what} per layer (a Python float) but node has "
                                   f"{a.size} different values ({a.min():g}..{a.max():g})", node=name, field=field)
    return float(a[0])


class SpikingJellyNeuron(NeuronAdapter):
    """A NIR neuron node as one SpikingJelly neuron module in single-step mode.

    State ``(v, c)``, each ``[B, *shape]`` (``c`` is the CUBA current, else ``None``); :meth:`cell` returns
    ``(spikes or membrane, state, pre-reset membrane)``.
    """

    def __init__(self, fg: FlatGraph, name: str, dtype: torch.dtype, device: torch.device) -> None:
        neuron, surrogate, _ = _sj()
        self.name, self.kind = name, fg.type_of(name)
        self.shape = tuple(fg.in_shapes[name])
        self.dtype, self.device = dtype, device
        c64 = fg.coefficients(name)
        c = sem.TensorCoefficients.of(c64, dtype, device)
        opts = fg.options(name)
        self.spiking = c.threshold is not None
        self.reset = fg.node_reset[name] if self.spiking else "none"
        if self.spiking and opts.reset_timing != "immediate":
            raise UnsupportedNodeError(f"backend '{NAME}' resets in the step that fired; reset timing "
                                       f"'{opts.reset_timing}' (snnTorch's) cannot be expressed", node=name,
                                       field="reset_timing")
        tau_field = {"LIF": "tau", "LI": "tau", "CubaLIF": "tau_mem", "CubaLI": "tau_mem"}.get(self.kind, "r")
        decay = uniform(c64.decay, name, tau_field, "time constant")
        if self.spiking:
            thr = uniform(c64.threshold, name, "v_threshold", "threshold")
            inclusive = c64.inclusive
        else:
            thr, inclusive = float("inf"), False
        v_reset: float | None = 0.0  # hard reset to 0 is a no-op for nodes that never fire
        if self.reset == "subtract":
            v_reset = None
        elif self.reset == "zero":
            v_reset = uniform(c64.v_reset, name, "v_reset", "v_reset")
        sg = surrogate.Sigmoid() if inclusive else strict_surrogate_class()()
        self.fire_module = None
        if self.reset == "none":  # SpikingJelly always resets: a never-firing node, then an IFNode threshold
            self.fire_module = neuron.IFNode(v_threshold=thr, v_reset=0.0, surrogate_function=sg, step_mode="s")
            thr = float("inf")
        self.v_reset = v_reset
        self.gain, self.bias = c.gain, c.bias
        self.identity_drive = bool(torch.all(c.gain == 1)) and bool(torch.all(c.bias == 0))
        self.cuba = c.syn_decay is not None
        self.if_like = decay == 1.0 and not self.cuba
        self.in_shift = None
        if self.cuba:
            syn_decay = uniform(c64.syn_decay, name, "tau_syn", "synaptic time constant")
            self.module = neuron.CUBALIFNode(c_decay=syn_decay, v_decay=decay, v_threshold=thr, v_reset=v_reset,
                                             surrogate_function=sg)
            if self.identity_drive:  # c = i itself
                self.in_gain, self.in_bias = c.syn_gain, None
            else:  # c = gain·i + bias
                self.in_gain = c.gain * c.syn_gain
                self.in_bias = torch.as_tensor((1 - c64.syn_decay) * c64.bias, dtype=dtype, device=device)
        elif self.if_like:
            self.module = neuron.IFNode(v_threshold=thr, v_reset=v_reset, surrogate_function=sg, step_mode="s")
            self.in_gain, self.in_bias = c.gain, c.bias
        else:
            if not 0.0 < decay < 1.0:
                raise UnsupportedNodeError(f"backend '{NAME}': LIFNode needs tau > 1 step (decay in (0, 1)), got "
                                           f"decay {decay:g}", node=name, field=tau_field)
            self.tau = 1.0 / (1.0 - decay)
            self.module = neuron.LIFNode(tau=self.tau, decay_input=False, v_threshold=thr, v_reset=v_reset,
                                         surrogate_function=sg, step_mode="s")
            self.in_gain, self.in_bias = c.gain, c.bias
            if v_reset:  # SpikingJelly leaks towards v_reset: remove (1 - decay)·v_reset from the drive
                self.in_shift = torch.as_tensor((1 - c64.decay) * c64.v_reset, dtype=dtype, device=device)
        self.module.to(device)
        self.options = opts

    def init_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(v, c)`` before step 0 (``v_init``, CUBA current ``gain·i_init + bias`` or ``i_init``; else 0)."""
        z = torch.zeros((batch,) + self.shape, dtype=self.dtype, device=self.device)
        v, i = sem.initial_values(self.options, z)
        if not self.cuba:
            return v, None
        return v, (i if self.identity_drive else self.gain * i + self.bias)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """What the SpikingJelly node is fed for drive ``x`` (any leading dims)."""
        if self.cuba:
            return self.in_gain * x + (0.0 if self.in_bias is None else self.in_bias)
        inp = x if self.identity_drive else self.in_gain * x + self.in_bias
        return inp if self.in_shift is None else inp - self.in_shift

    def cell(self, inp: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple, torch.Tensor]:
        """One SpikingJelly step: ``(spikes or membrane, (v, c), pre-reset membrane)``."""
        v_prev, c_prev = state
        mod = self.module
        mod.v = v_prev
        if self.cuba:
            mod.c = c_prev
        spk = mod(inp)
        if self.cuba:
            c_new = mod.c
            h = v_prev * mod.v_decay + c_new  # cuba_lif_step's v_charged
        elif self.if_like:
            c_new, h = None, v_prev + inp  # if_ step's h
        else:
            c_new = None
            h = _sj()[2].lif_charge(inp, v_prev, mod.tau, False, self.v_reset)
        if self.fire_module is not None:
            self.fire_module.v = torch.zeros_like(h)
            spk = self.fire_module(h)
        return (spk if self.spiking else h), (mod.v, c_new), h


class ThresholdNode(ThresholdAdapter):
    """NIR ``Threshold`` as ``IFNode(v_threshold=θ)`` stepped from a zero membrane (stateless)."""


    def __init__(self, node: nir.Threshold, dtype: torch.dtype, device: torch.device) -> None:
        neuron, _, _ = _sj()
        thr = uniform(node.threshold, "", "threshold", "threshold")
        self.module = neuron.IFNode(v_threshold=thr, v_reset=0.0, surrogate_function=strict_surrogate_class()(),
                                    step_mode="s")


    def cell(self, inp: torch.Tensor, state: Any):
        self.module.v = torch.zeros_like(inp)
        return self.module(inp), None, None


class SpikingJellyBackend(TorchGraphBackend):
    """Run NIR graphs on SpikingJelly's neurons, following the reference semantics (see the module docstring)."""

    name = NAME
    requires = ("spikingjelly", "torch")
    pip = "pip install 'snnbridge[spikingjelly]'"
    supported_nodes = SUPPORTED
    neuron_adapter = SpikingJellyNeuron
    threshold_adapter = ThresholdNode

    def prepare(self, graph, dt=None, reset=None, integration=None, dtype=torch.float64) -> FlatGraph:
        """As :meth:`Backend.prepare`, and refuse by name a ``Threshold`` node with per-neuron thresholds."""
        fg = super().prepare(graph, dt, reset, integration, dtype)
        for name in fg.order:
            if fg.type_of(name) == "Threshold":
                uniform(fg.nodes[name].threshold, name, "threshold", "threshold")
        return fg

    # ------------------------------------------------------ native models (snnbridge.backends.spikingjelly_native)
    def from_native(self, module, input_shape, dt: float = 1e-3) -> nir.NIRGraph:
        """The NIR graph stepping exactly as the SpikingJelly ``module`` (see
        :func:`~snnbridge.backends.spikingjelly_native.from_native`)."""
        self.ensure_available()
        from snnbridge.backends.spikingjelly_native import from_native

        return from_native(module, input_shape, dt=dt)

    def to_native(self, graph, dt: float | None = None, **options):
        """A trainable module of real SpikingJelly layers realising the chain ``graph`` (see
        :func:`~snnbridge.backends.spikingjelly_native.to_native`; option ``step_mode='s'`` or ``'m'``)."""
        self.ensure_available()
        from snnbridge.backends.spikingjelly_native import to_native

        return to_native(graph, dt=dt, **options)

    def run_native(self, module, inputs, dtype: torch.dtype = torch.float64, dt: float | None = None):
        """Run the SpikingJelly ``module`` as SpikingJelly does on ``[T, B, *input_shape]`` (see
        :func:`~snnbridge.backends.spikingjelly_native.run_native`)."""
        self.ensure_available()
        from snnbridge.backends.spikingjelly_native import run_native

        return run_native(module, inputs, dtype=dtype, dt=1e-3 if dt is None else dt)
