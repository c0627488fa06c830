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
* ``Delay`` nodes (whole steps) shift their input in time exactly as the reference (snnTorch has no delay module:
  :class:`~snnbridge.backends._torch_graph.DelayAdapter`, a gather along ``T`` or a ring buffer, values copied).

Per-node step options (``FlatGraph.options``, see :mod:`snnbridge.bridge.semantics`), realised with snnTorch's own
mechanisms wherever they compute exactly the semantics (:func:`neuron_class`):

* ``reset_timing="delayed"`` → stock ``reset_delay=True``; ``"immediate_rechecked"`` → stock ``reset_delay=False``
  (its deferred ``mem_reset`` *is* the semantics' recheck), both without the ``mem_reset`` override;
* ``zero_reset_target``: ``Leaky`` natively clears the carried state, ``Synaptic`` the new membrane; the other
  target overrides the one method ``_base_zero`` (the two-``Leaky`` CubaLIF path uses the ``Leaky`` classes);
* ``v_init`` / ``i_init`` are the explicit initial ``mem`` / ``syn`` handed to snnTorch at step 0.

The run loop (:mod:`snnbridge.backends._torch_graph`) visits nodes in the reference executor's order, so
every step rounds exactly as the reference: float64 and float32 results are bit-identical to it.
"""

from __future__ import annotations

from functools import cache, lru_cache

import nir
import numpy as np
import torch

from snnbridge.backends._torch_graph import NeuronAdapter, ThresholdAdapter, TorchGraphBackend
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph
from snnbridge.errors import UnsupportedNodeError

SUPPORTED = frozenset(sem.STATELESS_TYPES + sem.NEURON_TYPES + ("Delay",))


@lru_cache(maxsize=1)
def _snn():
    import snntorch as snn

    return snn


@cache
def neuron_class(base: str, timing: str = "immediate", zero_target: str | None = None,
                 inclusive: bool = False) -> type:
    """snnTorch's ``Leaky`` (``base="Leaky"``) or ``Synaptic`` configured for one reset timing.

    * ``immediate``: run with ``reset_delay=False`` and ``mem_reset`` overridden to return zeros (the reset was
      applied in the step that fired, so snnTorch's deferred second reset must not happen);
    * ``delayed``: snnTorch's own ``reset_delay=True`` step, unchanged;
    * ``immediate_rechecked``: snnTorch's own ``reset_delay=False`` step, unchanged (its ``mem_reset`` is the
      semantics' ``r = H(v_prev - θ)``).

    ``zero_target`` (delayed timings with a zero reset): ``Leaky`` natively clears the carried *state*
    (``v = β·((1-r)·v_prev) + x``) and ``Synaptic`` the new *membrane* (``v = u - u·r``); the other target is a
    one-method override of ``_base_zero`` written as :func:`~snnbridge.bridge.semantics.delayed_integrate` defines
    it.  Every class records the membrane it compares with the threshold (``pre_reset_mem``) and leaves
    snnTorch's global ``SpikingNeuron.instances`` list (so compiled graphs can be garbage-collected and
    ``snntorch.utils.reset`` never touches them).  Built lazily so that importing snnbridge never needs snnTorch.

    ``inclusive``: fire at ``mem >= threshold`` (the paper's comparison): the spike and the reset decision compare
    strictly against the next float below ``threshold`` in its dtype, while a subtract reset still removes
    ``threshold`` itself (:attr:`snnbridge.bridge.semantics.TensorCoefficients.fire_threshold`).
    """
    snn = _snn()
    native = snn.Leaky if base == "Leaky" else snn.Synaptic
    native_target = "state" if base == "Leaky" else "membrane"
    other = "" if zero_target in (None, native_target) else f", zero reset on the {zero_target}"
    members: dict = {"__doc__": f"``snn.{base}`` for reset timing '{timing}'{other}."}

    def __init__(self, *args, **kwargs):
        native.__init__(self, *args, **kwargs)
        if self in snn.SpikingNeuron.instances:
            snn.SpikingNeuron.instances.remove(self)

    def fire_at(self):
        thr = self.threshold
        return torch.nextafter(thr, torch.full_like(thr, -float("inf"))) if inclusive else thr

    def fire(self, mem):
        self.pre_reset_mem = mem
        if not inclusive:
            return native.fire(self, mem)
        return self.spike_grad(mem - fire_at(self)) * self.graded_spikes_factor

    members.update(__init__=__init__, fire=fire)
    if timing == "immediate":
        members["mem_reset"] = lambda self, mem: torch.zeros_like(mem)
    elif inclusive:  # snnTorch's deferred reset decision r = H(mem - θ), with the inclusive compare
        members["mem_reset"] = lambda self, mem: self.spike_grad(mem - fire_at(self)).clone().detach()
    if zero_target is not None and zero_target != native_target:
        if base == "Leaky":  # clear the new membrane: v = u - u·r
            def _base_zero(self, input_):
                u = self._base_state_function(input_)
                return u - u * self.reset
        else:  # Synaptic, clear the carried state: v = β·(v_prev·(1-r)) + i
            def _base_zero(self, input_):
                self.mem = self.mem * (1 - self.reset)
                return self._base_state_function(input_)
        members["_base_zero"] = _base_zero
    name = f"{base}_{timing}" + (f"_{zero_target}" if zero_target else "") + ("_inclusive" if inclusive else "")
    return type(name, (native,), members)


def neuron_classes() -> tuple[type, type]:
    """``(Leaky, Synaptic)`` with the reference's same-step reset (kept for callers of the old name)."""
    return neuron_class("Leaky"), neuron_class("Synaptic")


class SnnTorchNeuronLayer(torch.nn.Module):
    """One NIR neuron node as snnTorch module(s), for the adapter and for :func:`to_native` modules.

    ``trainable``: ``beta``/``alpha`` (where the node leaks) and ``threshold`` become ``nn.Parameter`` and
    ``spike_grad`` (default: snnTorch's ATan) passes the surrogate gradient; otherwise they are buffers.
    State ``(mem, syn, previous spikes)``, each ``[B, *shape]``; :meth:`cell` returns
    ``(output, state, pre-reset membrane)``.
    """

    def __init__(self, fg: FlatGraph, name: str, dtype: torch.dtype, device: torch.device,
                 trainable: bool = False, spike_grad=None) -> None:
        super().__init__()
        self.node_name = name
        self.kind = fg.type_of(name)
        self.shape = tuple(fg.in_shapes[name])
        c64 = fg.coefficients(name)
        c = sem.TensorCoefficients.of(c64, dtype, device)
        opts = fg.options(name)
        self.spiking = c.threshold is not None
        self.reset = fg.node_reset[name] if self.spiking else "none"
        self.timing = opts.reset_timing if self.spiking and self.reset != "none" else "immediate"
        target = opts.zero_reset_target if self.reset == "zero" and self.timing != "immediate" else None
        tau_field = "tau" if self.kind in ("LIF", "LI") else "tau_mem"
        for field, arr in (("tau_syn", c64.syn_decay), (tau_field, c64.decay)):
            if arr is not None and (np.any(arr < 0) or np.any(arr > 1)):
                raise UnsupportedNodeError(
                    f"backend 'snntorch' clamps beta/alpha to [0, 1] but the decay is {np.min(arr):g}..{np.max(arr):g} "
                    f"(Euler step with dt > tau); use integration='exact' or a smaller dt", node=name, field=field)
        thr = c.threshold if self.spiking else torch.tensor(float("inf"), dtype=dtype, device=device)
        self.register_buffer("gain", c.gain)
        self.register_buffer("bias", c.bias)
        # gain 1 and bias 0 feed x itself: 1·x + 0 equals x (up to the sign of a zero), so skip the pass
        self.identity_drive = bool(torch.all(c.gain == 1)) and bool(torch.all(c.bias == 0))
        self.register_buffer("syn_gain", c.syn_gain)
        # v_reset != 0 (zero reset, immediate timing only): add decay*v_reset to the input of the step after a spike
        self.register_buffer("reset_shift", None)
        if self.reset == "zero" and np.any(np.asarray(c64.v_reset) != 0):
            self.reset_shift = c.decay * c.v_reset
        self.options = opts
        kw = {"reset_mechanism": self.reset, "reset_delay": self.timing == "delayed"}
        if spike_grad is not None:
            kw["spike_grad"] = spike_grad
        learn_beta = trainable and bool(np.any(np.asarray(c64.decay) != 1))  # IF/I stay perfect integrators
        learn = {"learn_beta": learn_beta, "learn_threshold": trainable and self.spiking}
        self.synaptic = self.syn_leaky = self.leaky = None
        if c.syn_decay is not None and self.identity_drive and self.reset_shift is None:
            cls = neuron_class("Synaptic", self.timing, target, c64.inclusive)
            self.synaptic = cls(alpha=c.syn_decay, beta=c.decay, threshold=thr, learn_alpha=trainable, **learn, **kw)
        else:
            if c.syn_decay is not None:
                syn_kw = dict(kw, reset_mechanism="none", reset_delay=False)
                inf = torch.tensor(float("inf"), dtype=dtype, device=device)
                self.syn_leaky = neuron_class("Leaky")(beta=c.syn_decay, threshold=inf, learn_beta=trainable, **syn_kw)
            self.leaky = neuron_class("Leaky", self.timing, target, c64.inclusive)(beta=c.decay, threshold=thr,
                                                                                  **learn, **kw)
        self.to(device)

    def init_state(self, batch: int) -> tuple:
        """``(mem, syn, previous spikes)`` before step 0: ``v_init`` / ``i_init`` (else 0), ``[batch, *shape]``."""
        z = torch.zeros((batch,) + self.shape, dtype=self.gain.dtype, device=self.gain.device)
        mem, syn = sem.initial_values(self.options, z)
        return mem, syn, z.clone()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The input snnTorch is fed for drive ``x`` (any leading dims): ``syn_gain·x`` or ``gain·x + bias``."""
        if self.syn_gain is not None:
            return self.syn_gain * x + 0.0  # the synapse's drive, as semantics.integrate forms it
        return x if self.identity_drive else self.gain * x + self.bias

    def cell(self, inp: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple, torch.Tensor]:
        """One snnTorch step on the encoded input: ``(spikes or membrane, state, pre-reset membrane)``."""
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
        spk = spk.to(v.dtype)
        return (spk if self.spiking else v), (mem, syn, spk), v

    def forward(self, x: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple, torch.Tensor]:
        """``cell(encode(x), state)``."""
        return self.cell(self.encode(x), state)


class SnnTorchNeuron(NeuronAdapter):
    """The adapter's neuron node: a :class:`SnnTorchNeuronLayer` run under ``no_grad`` with buffers only."""

    def __init__(self, fg: FlatGraph, name: str, dtype: torch.dtype, device: torch.device) -> None:
        self.layer = SnnTorchNeuronLayer(fg, name, dtype, device)
        self.name, self.kind, self.shape = name, self.layer.kind, self.layer.shape
        self.dtype, self.device = dtype, device

    def __getattr__(self, item):  # synaptic / syn_leaky / leaky / spiking ... of the layer
        if item == "layer":
            raise AttributeError(item)
        return getattr(self.layer, item)

    def init_state(self, batch):
        return self.layer.init_state(batch)

    def encode(self, x):
        return self.layer.encode(x)

    def cell(self, inp, state):
        return self.layer.cell(inp, state)


class ThresholdNode(ThresholdAdapter):
    """NIR ``Threshold`` as ``snn.Leaky(beta=0, reset_mechanism="none")``: its membrane is exactly its input."""


    def __init__(self, node: nir.Threshold, dtype: torch.dtype, device: torch.device) -> None:
        thr = torch.as_tensor(np.asarray(node.threshold, dtype=np.float64), dtype=dtype, device=device)
        self.leaky = neuron_class("Leaky")(beta=torch.zeros((), dtype=dtype, device=device), threshold=thr,
                                           reset_mechanism="none", reset_delay=False)
        self.dtype = dtype


    def cell(self, inp, state):
        spk, _ = self.leaky(inp, torch.zeros_like(inp))
        return spk.to(self.dtype), None, None


class SnnTorchBackend(TorchGraphBackend):
    """Run NIR graphs on snnTorch, following the reference semantics (see the module docstring)."""

    name = "snntorch"
    requires = ("snntorch", "torch")
    pip = "pip install 'snnbridge[snntorch]'"
    supported_nodes = SUPPORTED
    neuron_adapter = SnnTorchNeuron
    threshold_adapter = ThresholdNode

    # ------------------------------------------------------------- native models (snnbridge.backends.snntorch_native)
    def from_native(self, module, input_shape, dt: float = 1e-3) -> nir.NIRGraph:
        """The NIR graph of a native snnTorch model (see :func:`snnbridge.backends.snntorch_native.from_native`)."""
        self.ensure_available()
        from snnbridge.backends import snntorch_native

        return snntorch_native.from_native(module, input_shape, dt=dt)

    def to_native(self, graph, dt: float | None = None, **options):
        """A trainable module of snnTorch layers (see :func:`snnbridge.backends.snntorch_native.to_native`)."""
        self.ensure_available()
        from snnbridge.backends import snntorch_native

        return snntorch_native.to_native(graph, dt=dt, **options)

    def run_native(self, module, inputs, dtype: torch.dtype = torch.float64, dt: float = 1e-3):
        """Run a native snnTorch model step by step (see :func:`snnbridge.backends.snntorch_native.run_native`)."""
        self.ensure_available()
        from snnbridge.backends import snntorch_native

        return snntorch_native.run_native(module, inputs, dtype=dtype, dt=dt)
