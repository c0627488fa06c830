"""The Spyx adapter: Spyx's own neuron modules (``spyx.nn.LI``, ``spyx.nn.IF``, ``spyx.nn.LIF``, its Heaviside
activations) stepped eagerly in JAX, configured to follow :mod:`snnbridge.bridge.semantics` (bit-identical to the
reference executor in float64 with ``jax_enable_x64``, and in float32).

Node mapping (constants from ``FlatGraph.coefficients``, never re-derived; tensors ``[T, B, ...]``):

* every neuron node's membrane → ``spyx.nn.LI`` (``V = beta·V + x``, ``beta`` set per neuron to the reference
  ``decay``; ``decay = 1`` for IF / I) fed ``gain·drive + bias``, i.e. exactly the reference's
  ``decay·v + (gain·drive + bias)``;
* spiking nodes (``LIF``, ``IF``, ``CubaLIF``) then fire and reset with ``spyx.nn.IF(threshold=θ)`` called on that
  membrane with zero input: Spyx computes ``s = H(V - θ)`` and ``V + 0 - s·θ``, the reference's strict threshold
  and subtract reset in the same step;
* reset ``zero``: Spyx's neurons only subtract, so the adapter takes the spike ``s`` of ``spyx.nn.IF`` and sets the
  carried membrane to the reference's ``u·(1 - s) + s·v_reset`` in ``jax.numpy`` (``u`` the integrated membrane;
  the same four operations, in the same order, as :func:`snnbridge.bridge.semantics.reset`, so the state is
  bit-identical in float64 and float32); reset ``none`` carries ``u`` itself;
* ``CubaLIF`` / ``CubaLI``: the synaptic current is a first ``spyx.nn.LI`` (``beta = syn_decay``) fed
  ``syn_gain·x + 0``;
* ``Threshold`` → ``spyx.nn.IF(threshold=θ)`` stepped once from the input as its membrane (stateless);
* stateless nodes (Affine, Linear, Scale, Conv, pooling, Flatten) → the shared torch layers of
  :mod:`snnbridge.backends._torch_graph` (bit-identical to the reference); a feed-forward graph hands each neuron
  node its whole input ``[T, B, ...]`` once.
* reset timing ``delayed`` with reset ``subtract`` (snnTorch's ``reset_delay=True``) is Spyx's own ``spyx.nn.LIF``
  step: ``r = H(V - θ)`` on the carried state, then ``V = β·V + x - r·θ`` (the reference's
  ``(decay·v + (gain·x + bias)) - r·θ`` with ``x`` fed as ``gain·x + bias``), followed by ``spyx.nn.IF``'s compare
  of the new ``V`` for the step's spike (``spyx.nn.LIF`` itself would emit ``r``, one step later);
* ``Delay`` (whole steps): the shared :class:`~snnbridge.backends._torch_graph.DelayAdapter` (values copied).
* The Spyx modules run eagerly, step by step (not under ``jax.jit`` / ``jax.lax.scan``): XLA's CPU compiler
  contracts ``beta·V + x`` into a fused multiply-add (one rounding instead of two; measured: membranes 1.8e-15
  apart from the reference in float64), whereas eager JAX dispatches each operation on its own.

Why not Spyx's ``spyx.nn.LIF`` / ``CuBaLIF`` directly (measured with spyx 1.0.0): ``LIF`` computes the spike from
the *incoming* state, ``s[t] = H(V[t-1] - θ)``, and then ``V[t] = beta·V[t-1] + x[t] - s[t]·θ``: its spikes come
one step after the reference's (it is the reference's ``delayed`` subtract timing, emitted a step late).
``CuBaLIF`` likewise fires on the carried pre-reset membrane.  Splitting the step into Spyx's ``LI`` (integrate)
and ``IF`` (compare and subtract) realises the reference order with Spyx's own arithmetic.

Limits, refused by name (``UnsupportedNodeError``): the reset timings ``delayed`` with reset ``zero`` and
``immediate_rechecked`` (field ``reset_timing``; a reset ``none`` has no timing and runs); a decay outside ``[0, 1]``
(Spyx clips ``beta`` to ``[0, 1]``).  Inclusive thresholds use a Spyx activation (``spyx.axn.custom``) whose forward
is ``x >= 0``.

float64 needs JAX's 64-bit mode: compiling a float64 graph calls ``jax.config.update("jax_enable_x64", True)``
(process-wide; float32 arrays stay float32).
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

SUPPORTED = frozenset(sem.STATELESS_TYPES + sem.NEURON_TYPES + ("Delay",))
NAME = "spyx"


def enable_x64() -> None:
    """Switch JAX to 64-bit mode (needed for float64 arrays; process-wide)."""
    import jax

    jax.config.update("jax_enable_x64", True)


@lru_cache(maxsize=1)
def _spyx():
    import jax
    import jax.numpy as jnp
    import spyx
    from flax import nnx

    return spyx, jax, jnp, nnx


@lru_cache(maxsize=1)
def inclusive_activation():
    """A Spyx activation (``spyx.axn.custom``) with forward ``x >= 0`` and the straight-through gradient."""
    spyx, _, jnp, _ = _spyx()
    return spyx.axn.custom(fwd=lambda x: jnp.where(x >= 0, 1, 0).astype(x.dtype))


def _jdtype(dtype: torch.dtype):
    _, _, jnp, _ = _spyx()
    return {torch.float64: jnp.float64, torch.float32: jnp.float32}[dtype]


def _to_jax(x: torch.Tensor, dtype: torch.dtype):
    _, _, jnp, _ = _spyx()
    return jnp.asarray(x.detach().cpu().numpy(), dtype=_jdtype(dtype))


def _to_torch(a, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.array(a)).to(device=device, dtype=dtype)


def _flat(a, shape: tuple, dtype: torch.dtype):
    """``a`` broadcast to ``shape`` as a JAX array in the run dtype (cast from float64 once)."""
    _, _, jnp, _ = _spyx()
    arr = np.broadcast_to(np.asarray(a, dtype=np.float64), shape).copy()
    return jnp.asarray(torch.as_tensor(arr).to(dtype).numpy())


def _li(shape: tuple, beta, dtype: torch.dtype):
    """A ``spyx.nn.LI`` whose ``beta`` is the per-neuron decay ``beta`` (shape ``shape``) in the run dtype."""
    spyx, _, _, nnx = _spyx()
    mod = spyx.nn.LI(shape, beta=None, rngs=nnx.Rngs(0))
    mod.beta.set_value(_flat(beta, shape, dtype))
    return mod


class SpyxNeuron(NeuronAdapter):
    """A NIR neuron node as Spyx ``LI`` (synapse, membrane) and ``IF`` (fire + subtract) modules.

    State ``(v, i)``, JAX arrays ``[B, *shape]`` (``i``: Cuba current, else ``None``).
    """

    def __init__(self, fg: FlatGraph, name: str, dtype: torch.dtype, device: torch.device) -> None:
        spyx, jax, jnp, nnx = _spyx()
        if dtype == torch.float64:
            enable_x64()
        self.name, self.kind = name, fg.type_of(name)
        self.shape = tuple(fg.in_shapes[name])
        self.dtype, self.device = dtype, device
        c64 = fg.coefficients(name)
        opts = fg.options(name)
        self.options = opts
        self.spiking = c64.threshold is not None
        self.reset = fg.node_reset[name] if self.spiking else "none"
        self.delayed = self.spiking and opts.reset_timing == "delayed" and self.reset == "subtract"
        if self.spiking and opts.reset_timing != "immediate" and self.reset != "none" and not self.delayed:
            raise UnsupportedNodeError(f"backend '{NAME}': reset timing '{opts.reset_timing}' with reset "
                                       f"'{self.reset}' cannot be expressed (Spyx's LIF realises the delayed "
                                       f"subtract reset only)", node=name, field="reset_timing")
        tau_field = {"LIF": "tau", "LI": "tau", "CubaLIF": "tau_mem", "CubaLI": "tau_mem"}.get(self.kind, "r")
        for decay, field in ((c64.decay, tau_field), (c64.syn_decay, "tau_syn")):
            if decay is not None and not bool(np.all((np.asarray(decay) >= 0) & (np.asarray(decay) <= 1))):
                raise UnsupportedNodeError(f"backend '{NAME}': Spyx clips beta to [0, 1]; decay "
                                           f"{np.min(decay):g}..{np.max(decay):g} cannot be expressed", node=name,
                                           field=field)
        self.mem = _li(self.shape, c64.decay, dtype)
        self.syn = _li(self.shape, c64.syn_decay, dtype) if c64.syn_decay is not None else None
        self.gain = _flat(c64.gain, self.shape, dtype)
        self.bias = _flat(c64.bias, self.shape, dtype)
        self.syn_gain = None if self.syn is None else _flat(c64.syn_gain, self.shape, dtype)
        self.v_reset = _flat(c64.v_reset if c64.v_reset is not None else 0.0, self.shape, dtype)
        self.fire = None
        if self.spiking:
            act = inclusive_activation() if c64.inclusive else None
            self.fire = spyx.nn.IF(self.shape, threshold=_flat(c64.threshold, self.shape, dtype), activation=act)
        self.lif = None
        if self.delayed:  # Spyx's own LIF: r = H(V - θ) on the carried state, then V = β·V + x - r·θ
            self.lif = spyx.nn.LIF(self.shape, beta=None, threshold=_flat(c64.threshold, self.shape, dtype),
                                   activation=act, rngs=nnx.Rngs(0))
            self.lif.beta.set_value(_flat(c64.decay, self.shape, dtype))
        self._step = self._step_impl  # eager: XLA would fuse beta·V + x into an FMA (one rounding instead of two)

    # ------------------------------------------------------------------ one step, as pure JAX on Spyx modules
    def _step_impl(self, x, v, i):
        """One step on the drive ``x`` ``[B, *shape]``: ``(output, v, i, pre-reset membrane)``."""
        _, _, jnp, _ = _spyx()
        drive = x
        if self.syn is not None:
            i, _ = self.syn(self.syn_gain * x + 0.0, i)
            drive = i
        if self.lif is not None:  # delayed subtract: Spyx's LIF integrates and resets, IF decides this step's spike
            _, u = self.lif(self.gain * drive + self.bias, v)
            s, _ = self.fire(jnp.zeros_like(u), u)
            return s, u, i, u
        u, _ = self.mem(self.gain * drive + self.bias, v)
        if self.fire is None:
            return u, u, i, u
        s, v_after = self.fire(jnp.zeros_like(u), u)
        if self.reset in ("zero", "none"):  # Spyx only subtracts: the semantics' own reset (plain arithmetic, jnp)
            v_after = sem.reset(u, s, self.reset, None, self.v_reset)
        return s, v_after, i, u

    def _scan_impl(self, xs, v, i):
        """All steps of ``xs`` ``[T, B, *shape]``: ``(outputs, pre-reset membranes)``, each ``[T, B, *shape]``."""
        _, _, jnp, _ = _spyx()
        outs, us = [], []
        for t in range(xs.shape[0]):
            out, v, i, u = self._step_impl(xs[t], v, i)
            outs.append(out)
            us.append(u)
        return jnp.stack(outs), jnp.stack(us)

    # ------------------------------------------------------------------ NeuronAdapter
    def init_state(self, batch: int) -> tuple[Any, Any]:
        z = torch.zeros((batch,) + self.shape, dtype=self.dtype)
        v, i = sem.initial_values(self.options, z)
        return _to_jax(v, self.dtype), (_to_jax(i, self.dtype) if self.syn is not None else None)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The drive itself (the elementwise gains are applied in JAX, next to the Spyx modules)."""
        return x

    def cell(self, inp: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple, torch.Tensor]:
        v, i = state
        out, v, i, u = self._step(_to_jax(inp, self.dtype), v, i)
        return _to_torch(out, self.dtype, self.device), (v, i), _to_torch(u, self.dtype, self.device)

    def over_time(self, x: torch.Tensor, want_v: bool):
        v, i = self.init_state(x.shape[1])
        outs, us = self._scan_impl(_to_jax(x, self.dtype), v, i)
        return _to_torch(outs, self.dtype, self.device), (_to_torch(us, self.dtype, self.device) if want_v else None)


class ThresholdNode(ThresholdAdapter):
    """NIR ``Threshold`` as ``spyx.nn.IF(threshold=θ)`` whose membrane is the input (stateless)."""

    def __init__(self, node: nir.Threshold, dtype: torch.dtype, device: torch.device) -> None:
        spyx, _, _, _ = _spyx()
        if dtype == torch.float64:
            enable_x64()
        self.thr = np.asarray(node.threshold, dtype=np.float64)
        self.dtype, self.device = dtype, device

    def cell(self, inp: torch.Tensor, state: Any):
        spyx, _, jnp, _ = _spyx()
        shape = tuple(inp.shape[1:])
        fire = spyx.nn.IF(shape, threshold=_flat(self.thr, shape, self.dtype))
        x = _to_jax(inp, self.dtype)
        s, _ = fire(jnp.zeros_like(x), x)
        return _to_torch(s, self.dtype, self.device), None, None


class SpyxBackend(TorchGraphBackend):
    """Run NIR graphs on Spyx's neuron modules in JAX, following the reference semantics (module docstring)."""

    name = NAME
    requires = ("spyx", "jax", "flax")
    pip = "pip install 'snnbridge[spyx]'"
    supported_nodes = SUPPORTED
    neuron_adapter = SpyxNeuron
    threshold_adapter = ThresholdNode

    # ------------------------------------------------------------- native models (snnbridge.backends.spyx_native)
    def from_native(self, module, input_shape, dt: float = 1e-3) -> nir.NIRGraph:
        """The NIR graph stepping exactly as the Spyx ``module`` (a ``spyx.nn.Sequential``; see
        :func:`~snnbridge.backends.spyx_native.from_native`)."""
        self.ensure_available()
        from snnbridge.backends.spyx_native import from_native

        return from_native(module, input_shape, dt=dt)

    def run_native(self, module, inputs, dtype: torch.dtype = torch.float64, dt: float = 1e-3):
        """Run the Spyx ``module`` as Spyx does on ``[T, B, *input_shape]`` (see
        :func:`~snnbridge.backends.spyx_native.run_native`)."""
        self.ensure_available()
        from snnbridge.backends.spyx_native import run_native

        return run_native(module, inputs, dtype=dtype, dt=dt)

    def to_native(self, graph, dt: float | None = None, **options):
        """A trainable ``spyx.nn.Sequential`` (flax nnx) realising the chain ``graph`` (see
        :func:`~snnbridge.backends.spyx_native.to_native`)."""
        self.ensure_available()
        from snnbridge.backends.spyx_native import to_native

        return to_native(graph, dt=dt, **options)
