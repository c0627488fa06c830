"""The snnTorch adapter: native ``snn.Leaky`` / ``snn.Synaptic`` neurons and torch layers, configured to follow
:mod:`snnbridge.bridge.semantics` exactly (bit-identical to the reference executor in float64 and float32).

Node mapping (constants from ``FlatGraph.coefficients``, never re-derived; shapes ``[T, B, ...]``):

* ``LIF``/``IF`` → ``snn.Leaky(beta=decay, threshold, reset_mechanism, reset_delay=False)`` fed ``gain·x + bias``
  (IF: ``beta = 1``, per-step integrator);
* ``LI``/``I`` → ``snn.Leaky(reset_mechanism="none")``, output = membrane;
* ``CubaLIF``/``CubaLI`` → ``snn.Synaptic(alpha=syn_decay, beta=decay)`` fed ``syn_gain·x`` when the membrane
  gain is exactly 1 and the bias 0 in the run dtype (``Synaptic`` has no input gain; true of snnTorch's own
  exports) and no ``v_reset ≠ 0`` is needed; otherwise two ``snn.Leaky`` (the synapse with
  ``reset_mechanism="none"``, then the membrane fed ``gain·i + bias``);
* ``Threshold`` → ``snn.Leaky(beta=0, reset_mechanism="none")`` (its membrane is its input);
* ``Affine``/``Linear``/``Conv1d``/``Conv2d``/``AvgPool2d``/``SumPool2d``/``Flatten``/``Scale`` → torch layers.

Where snnTorch's defaults differ from the reference (measured with snntorch 1.0.0):

* ``reset_delay=True`` (default) applies the reset one step late; the adapter uses ``reset_delay=False``.
* Even with ``reset_delay=False``, every step first recomputes a *deferred* reset ``H(mem - threshold)`` from the
  already-reset membrane (``mem_reset``): with ``subtract`` a residual above threshold is subtracted again at
  the next step (``thr = 1``, inputs 2.6 then 0.4, ``beta = 0.5``: the reference spikes at both steps, snnTorch
  only at the first), and with ``zero`` a threshold ≤ 0 doubles the membrane.  The adapter's neurons override
  ``mem_reset`` to return zeros, since the reset has already been applied in the step that fired.
* snnTorch resets to zero only; ``v_reset ≠ 0`` is realised by adding ``decay·v_reset`` to the input of the step
  after a spike (bit-identical to the reference's ``decay·v_reset + (gain·x + bias)``).
* ``beta`` is clamped to ``[0, 1]``: an Euler step with ``dt > tau`` (negative decay) is refused at compile time.
* The membrane snnTorch returns is the post-reset one; the adapter records the pre-reset value ``fire`` sees.
* ``Delay`` nodes are not supported (snnTorch has no delay module).

The run loop (:mod:`snnbridge.backends._torch_graph`) visits nodes in the reference executor's order, so
every step rounds exactly as the reference: float64 and float32 results are bit-identical to it.
"""

from __future__ import annotations

from functools import lru_cache

import nir
import numpy as np
import torch

from snnbridge.backends._torch_graph import NeuronAdapter, TorchGraphBackend
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph
from snnbridge.errors import UnsupportedNodeError

SUPPORTED = frozenset(sem.STATELESS_TYPES + sem.NEURON_TYPES)


@lru_cache(maxsize=1)
def neuron_classes() -> tuple[type, type]:
    """``(Leaky, Synaptic)``: snnTorch's neurons with same-step reset and the pre-reset membrane kept.

    Built lazily so that importing snnbridge never needs snnTorch.
    """
    import snntorch as snn

    class _SameStepReset:
        """Mixin: the reset is applied in the step that fires (``reset_delay=False``), so no deferred reset."""

        pre_reset_mem: torch.Tensor

        def mem_reset(self, mem: torch.Tensor) -> torch.Tensor:
            return torch.zeros_like(mem)

        def fire(self, mem: torch.Tensor) -> torch.Tensor:
            self.pre_reset_mem = mem
            return super().fire(mem)

    class _Unlisted:
        """Mixin: leave snnTorch's global ``SpikingNeuron.instances`` list (kept for ``init_hidden`` bookkeeping),
        so compiled graphs can be garbage-collected and ``snntorch.utils.reset`` never touches them."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            if self in snn.SpikingNeuron.instances:
                snn.SpikingNeuron.instances.remove(self)

    class Leaky(_Unlisted, _SameStepReset, snn.Leaky):
        """``snn.Leaky`` with :class:`_SameStepReset`."""

    class Synaptic(_Unlisted, _SameStepReset, snn.Synaptic):
        """``snn.Synaptic`` with :class:`_SameStepReset`."""

    return Leaky, Synaptic


def _snn_kwargs(reset: str) -> dict:
    return {"reset_mechanism": reset, "reset_delay": False}


class SnnTorchNeuron(NeuronAdapter):
    """One NIR neuron node as snnTorch module(s); state ``(mem, syn, previous spikes)``, each ``[B, *shape]``."""

    def __init__(self, fg: FlatGraph, name: str, dtype: torch.dtype, device: torch.device) -> None:
        Leaky, Synaptic = neuron_classes()
        self.name = name
        self.kind = fg.type_of(name)
        self.shape = tuple(fg.in_shapes[name])
        self.dtype, self.device = dtype, device
        c64 = fg.coefficients(name)
        c = sem.TensorCoefficients.of(c64, dtype, device)
        self.spiking = c.threshold is not None
        self.reset = fg.node_reset[name] if self.spiking else "none"
        tau_field = "tau" if self.kind in ("LIF", "LI") else "tau_mem"
        for field, arr in (("tau_syn", c64.syn_decay), (tau_field, c64.decay)):
            if arr is not None and (np.any(arr < 0) or np.any(arr > 1)):
                raise UnsupportedNodeError(
                    f"backend 'snntorch' clamps beta/alpha to [0, 1] but the decay is {np.min(arr):g}..{np.max(arr):g} "
                    f"(Euler step with dt > tau); use integration='exact' or a smaller dt", node=name, field=field)
        thr = c.threshold if self.spiking else torch.tensor(float("inf"), dtype=dtype, device=device)
        self.gain, self.bias = c.gain, c.bias
        # gain 1 and bias 0 feed x itself: 1·x + 0 equals x (up to the sign of a zero), so skip the pass
        self.identity_drive = bool(torch.all(c.gain == 1)) and bool(torch.all(c.bias == 0))
        self.syn_gain = c.syn_gain
        # v_reset != 0 (zero reset only): add decay*v_reset to the input of the step after a spike
        self.reset_shift = None
        if self.reset == "zero" and np.any(np.asarray(c64.v_reset) != 0):
            self.reset_shift = c.decay * c.v_reset
        inf = torch.tensor(float("inf"), dtype=dtype, device=device)
        self.synaptic = self.syn_leaky = self.leaky = None
        if c.syn_decay is not None and self.identity_drive and self.reset_shift is None:
            self.synaptic = Synaptic(alpha=c.syn_decay, beta=c.decay, threshold=thr, **_snn_kwargs(self.reset))
        else:
            if c.syn_decay is not None:
                self.syn_leaky = Leaky(beta=c.syn_decay, threshold=inf, **_snn_kwargs("none"))
            self.leaky = Leaky(beta=c.decay, threshold=thr, **_snn_kwargs(self.reset))

    def init_state(self, batch):
        z = torch.zeros((batch,) + self.shape, dtype=self.dtype, device=self.device)
        return z, z.clone(), z.clone()

    def encode(self, x):
        if self.syn_gain is not None:
            return self.syn_gain * x + 0.0  # the synapse's drive, as semantics.integrate forms it
        return x if self.identity_drive else self.gain * x + self.bias

    def cell(self, inp, state):
        mem, syn, spk_prev = state
        if self.synaptic is not None:
            spk, syn, mem = self.synaptic(inp, syn, mem)
            v = self.synaptic.pre_reset_mem
        else:
            if self.syn_leaky is not None:
                _, syn = self.syn_leaky(inp, syn)
                inp = syn if self.identity_drive else self.gain * syn + self.bias
            if self.reset_shift is not None:
                inp = inp + spk_prev * self.reset_shift
            spk, mem = self.leaky(inp, mem)
            v = self.leaky.pre_reset_mem
        spk = spk.to(self.dtype)
        return (spk if self.spiking else v), (mem, syn, spk), v


class ThresholdNode(NeuronAdapter):
    """NIR ``Threshold`` as ``snn.Leaky(beta=0, reset_mechanism="none")``: its membrane is exactly its input."""

    neuron = False
    stateful = False

    def __init__(self, node: nir.Threshold, dtype: torch.dtype, device: torch.device) -> None:
        Leaky, _ = neuron_classes()
        thr = torch.as_tensor(np.asarray(node.threshold, dtype=np.float64), dtype=dtype, device=device)
        self.leaky = Leaky(beta=torch.zeros((), dtype=dtype, device=device), threshold=thr, **_snn_kwargs("none"))
        self.dtype = dtype

    def encode(self, x):
        return x

    def cell(self, inp, state):
        spk, _ = self.leaky(inp, torch.zeros_like(inp))
        return spk.to(self.dtype), None, None

    def over_time(self, x, want_v):
        return self.cell(x, None)[0], None  # stateless: all T·B frames in one call


class SnnTorchBackend(TorchGraphBackend):
    """Run NIR graphs on snnTorch, following the reference semantics (see the module docstring)."""

    name = "snntorch"
    requires = ("snntorch", "torch")
    pip = "pip install 'snnbridge[snntorch]'"
    supported_nodes = SUPPORTED
    neuron_adapter = SnnTorchNeuron
    threshold_adapter = ThresholdNode
