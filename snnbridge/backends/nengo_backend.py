"""The Nengo adapter: a ``nengo.Network`` of Nodes, Ensembles and Connections run by ``nengo.Simulator``, configured
to follow :mod:`snnbridge.bridge.semantics` in float64 (Nengo's own precision).

Node mapping (constants from ``FlatGraph.coefficients``, never re-derived; inputs ``[T, B, ...]``):

* ``Input`` → a ``nengo.Node`` whose output at step ``t`` is ``x[t, b]`` (flattened, C order);
* every other node gets a pass-through ``nengo.Node(size_in=...)`` that sums its incoming edges (Nengo's own
  fan-in), reached with ``synapse=None`` along feed-forward edges (no delay, as the reference) and through the
  discrete one-step filter ``LinearFilter([1], [1, 0], analog=False)`` (``z^-1``) along recurrent edges;
* ``Affine`` / ``Linear`` → a ``Connection`` with a ``nengo.Dense`` transform (plus a ``Connection`` from a constant
  ``Node(1)`` with the bias as its transform); ``Scale`` → an elementwise (1-D) transform; ``Flatten`` /
  ``Output`` → identity connections (C-order flattening is the identity on Nengo's flat signals);
* ``Conv2d`` → a ``nengo.Convolution`` transform (``channels_last=False``) where Nengo can express the padding
  (``valid``: no padding; ``same``: stride 1, odd kernel, ``(k-1)/2``; no dilation), otherwise the same linear map
  as a ``nengo.Sparse`` transform; ``Conv1d``, ``AvgPool2d`` and ``SumPool2d`` → ``nengo.Sparse`` transforms
  (AvgPool weights ``1/(kh·kw)``, zero padding counted, as the reference);
* ``LIF`` / ``IF`` / ``CubaLIF`` / ``LI`` / ``I`` / ``CubaLI`` → a ``nengo.Ensemble`` (``gain = 1``, ``bias = 0``,
  so the neuron current ``J`` is the summed drive itself) whose ``neuron_type`` is :class:`SemanticsNeuron`, a
  ``nengo.neurons.NeuronType`` subclass whose ``step`` is the reference's discrete update
  ``v = decay·v + (gain·J + bias)``, the strict (or inclusive) threshold and the reset (zero / subtract / none,
  with every reset timing of :data:`~snnbridge.bridge.semantics.RESET_TIMINGS`), in numpy float64;
* ``Threshold`` → an Ensemble of :class:`ThresholdNeuron` (stateless ``J > θ``).

Why a custom neuron type rather than Nengo's ``nengo.LIF``: Nengo's LIF is a continuous-time model (exact
exponential integration of ``tau_rc·dv/dt = J - v`` with a refractory period ``tau_ref`` and threshold 1, reset
to 0 with sub-step spike timing, output ``1/dt`` per spike, and ``gain``/``bias`` fitted to tuning curves): it has
no subtract or no-reset mode, no ``r``/``v_leak``, and its sub-step spike-time interpolation makes its membrane
differ from any discrete Euler step.  Nengo's documented extension point is a ``NeuronType`` subclass with its own
``step``; it runs under Nengo's own builder (``SimNeurons``), probes and state handling.  The spike output is 1
per spike (the count per step, what NIR weights multiply), not Nengo's rate-normalised ``amplitude/dt``.

Measured with nengo 4.1.0 against the reference executor: spikes identical at every node and step in float64;
neuron updates and resets bit-identical; the linear transforms are numpy (BLAS/scipy) products, whose summation
order differs from torch's, so membranes agree to ~1e-15 relative (bit-identical for dyadic weights).

Limits, refused by name (``UnsupportedNodeError``): ``dtype`` other than float64 (Nengo computes in float64),
``Delay`` nodes.  Nengo has no batch dimension: each sample runs on the same ``nengo.Simulator`` after
``sim.reset()``.  Nengo seeds its (unused) encoders from the network's seed 0, so runs are deterministic.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import nir
import numpy as np
import torch

from snnbridge.backends.base import Backend, Simulation
from snnbridge.bridge import limits
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph
from snnbridge.bridge.inputs import Inputs, as_input_tensors, is_binary
from snnbridge.bridge.recording import Recording
from snnbridge.bridge.walk import spike_valued
from snnbridge.errors import UnsupportedNodeError

NAME = "nengo"
SUPPORTED = frozenset(sem.STATELESS_TYPES + sem.NEURON_TYPES)


@lru_cache(maxsize=1)
def _neuron_classes() -> tuple[type, type]:
    """``(SemanticsNeuron, ThresholdNeuron)``: built lazily so that importing this module needs no Nengo."""
    import nengo

    class SemanticsNeuron(nengo.neurons.NeuronType):
        """A Nengo neuron type stepping one NIR neuron node exactly as :func:`semantics.neuron_step` (numpy float64).

        State (each ``[N]``): ``voltage`` (carried membrane), ``current`` (Cuba synaptic current; zeros otherwise),
        ``membrane`` (the value compared with the threshold at the last step, before reset).  ``output`` is the
        spike (0/1) for spiking nodes, the membrane for LI / I / CubaLI.
        """

        state = {"voltage": nengo.dists.Choice([0.0]), "current": nengo.dists.Choice([0.0]),
                 "membrane": nengo.dists.Choice([0.0])}
        spiking = True
        negative = True

        def __init__(self, coeffs: sem.TensorCoefficients, reset: str, timing: str, zero_target: str,
                     initial_state: dict | None = None) -> None:
            super().__init__(initial_state=initial_state)
            self.coeffs = coeffs  # float64, flattened to [N]
            self.reset = reset
            self.timing = timing
            self.zero_target = zero_target

        def max_rates_intercepts(self, gain, bias):
            """Not a rate model: gain and bias are given (1 and 0), so there are no tuning curves to fit."""
            return np.zeros_like(gain), np.zeros_like(gain)

        def step(self, dt, J, output, voltage, current, membrane):
            """One step of :func:`semantics.neuron_step` on Nengo's own state arrays (viewed as tensors, no copy)."""
            c = self.coeffs
            state = sem.NeuronState(torch.from_numpy(voltage),
                                    torch.from_numpy(current) if c.syn_decay is not None else None)
            out, new, v = sem.neuron_step(state, torch.from_numpy(np.asarray(J, dtype=np.float64)), c, self.reset,
                                          timing=self.timing, zero_target=self.zero_target)
            output[...] = out.numpy()
            membrane[...] = v.numpy()
            voltage[...] = new.v.numpy()
            if new.i is not None:
                current[...] = new.i.numpy()

    class ThresholdNeuron(nengo.neurons.NeuronType):
        """NIR ``Threshold`` as a stateless Nengo neuron type: ``output = J > θ`` (0/1), ``θ`` ``[N]``."""

        state = {}
        spiking = True

        def __init__(self, threshold: np.ndarray) -> None:
            super().__init__()
            self.thr = threshold

        def max_rates_intercepts(self, gain, bias):
            return np.zeros_like(gain), np.zeros_like(gain)

        def step(self, dt, J, output):
            output[...] = (J - self.thr > 0).astype(np.float64)

    return SemanticsNeuron, ThresholdNeuron


def _flat(a, shape: tuple) -> np.ndarray | None:
    """``a`` (float64) broadcast to the node ``shape`` and flattened to ``[N]`` (``None`` stays ``None``)."""
    if a is None:
        return None
    return np.broadcast_to(np.asarray(a, dtype=np.float64), shape).reshape(-1).copy()


# --------------------------------------------------------------------------- linear maps


def _sparse_of(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]):
    """A ``nengo.Sparse`` transform ``[n_out, n_in]`` from COO entries (duplicates summed by scipy)."""
    import nengo
    import scipy.sparse

    mat = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=shape)
    mat.sum_duplicates()
    return nengo.Sparse(shape, init=mat)


def _conv_entries(weight: np.ndarray, in_shape: tuple, stride, padding, dilation, groups: int):
    """COO entries ``(rows, cols, vals)`` and ``out_shape`` of an N-d cross-correlation (torch's ``convNd``)."""
    w = np.asarray(weight, dtype=np.float64)
    c_out, c_in_g = w.shape[:2]
    ksize = w.shape[2:]
    spatial = tuple(in_shape[1:])
    nd = len(spatial)
    out_sp = tuple((spatial[d] + 2 * padding[d] - dilation[d] * (ksize[d] - 1) - 1) // stride[d] + 1
                   for d in range(nd))
    c_out_g = c_out // groups
    rows, cols, vals = [], [], []
    out_idx = np.indices(out_sp).reshape(nd, -1)  # [nd, P]
    for co in range(c_out):
        g = co // c_out_g
        for ci in range(c_in_g):
            cin = g * c_in_g + ci
            for k in np.ndindex(*ksize):
                pos = [out_idx[d] * stride[d] - padding[d] + k[d] * dilation[d] for d in range(nd)]
                ok = np.ones(out_idx.shape[1], dtype=bool)
                for d in range(nd):
                    ok &= (pos[d] >= 0) & (pos[d] < spatial[d])
                if not ok.any():
                    continue
                r = np.ravel_multi_index((np.full(ok.sum(), co),) + tuple(o[ok] for o in out_idx), (c_out,) + out_sp)
                c = np.ravel_multi_index((np.full(ok.sum(), cin),) + tuple(p[ok] for p in pos), tuple(in_shape))
                rows.append(r)
                cols.append(c)
                vals.append(np.full(ok.sum(), w[(co, ci) + k]))

    def cat(xs: list) -> np.ndarray:
        return np.concatenate(xs) if xs else np.zeros(0)

    return cat(rows).astype(np.int64), cat(cols).astype(np.int64), cat(vals), (c_out,) + out_sp


def _pool_entries(in_shape: tuple, kernel, stride, padding, value: float):
    """COO entries of a 2-d sum/average pool (zero padding counted): each window element weighs ``value``."""
    c, h, w = in_shape
    oh = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    ow = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    oy, ox = np.indices((oh, ow)).reshape(2, -1)
    rows, cols = [], []
    for ch in range(c):
        for ky in range(kernel[0]):
            for kx in range(kernel[1]):
                iy, ix = oy * stride[0] - padding[0] + ky, ox * stride[1] - padding[1] + kx
                ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
                rows.append(np.ravel_multi_index((np.full(ok.sum(), ch), oy[ok], ox[ok]), (c, oh, ow)))
                cols.append(np.ravel_multi_index((np.full(ok.sum(), ch), iy[ok], ix[ok]), (c, h, w)))
    r, cc = np.concatenate(rows), np.concatenate(cols)
    return r, cc, np.full(r.size, value), (c, oh, ow)


def _conv2d_transform(node: nir.Conv2d, in_shape: tuple):
    """``(transform, how)``: ``nengo.Convolution`` where Nengo's ``valid``/``same`` padding is NIR's, else Sparse."""
    import nengo

    p = sem.conv2d_params(node)
    w = np.asarray(node.weight, dtype=np.float64)
    k = tuple(w.shape[2:])
    pad = p["padding"]
    if isinstance(pad, str):
        pad = (0, 0) if pad == "valid" else tuple((kk - 1) // 2 for kk in k)
    nengo_pad = None
    if p["dilation"] == (1, 1):
        if pad == (0, 0):
            nengo_pad = "valid"
        elif p["stride"] == (1, 1) and all(kk % 2 == 1 and pp == (kk - 1) // 2 for kk, pp in zip(k, pad)):
            nengo_pad = "same"
    if nengo_pad is not None:
        # Nengo's kernel layout: (kh, kw, in_channels / groups, n_filters)
        conv = nengo.Convolution(n_filters=w.shape[0], input_shape=tuple(in_shape), kernel_size=k,
                                 strides=p["stride"], padding=nengo_pad, channels_last=False,
                                 init=np.transpose(w, (2, 3, 1, 0)).copy(), groups=p["groups"])
        return conv, "nengo.Convolution"
    r, c, v, out = _conv_entries(w, tuple(in_shape), p["stride"], pad, p["dilation"], p["groups"])
    return _sparse_of(r, c, v, (int(np.prod(out)), int(np.prod(in_shape)))), "nengo.Sparse"


def _transform(fg: FlatGraph, name: str) -> tuple[Any, np.ndarray | None]:
    """``(transform, bias [n_out] or None)`` of a stateless node from its summed input to its output."""
    node = fg.nodes[name]
    kind = fg.type_of(name)
    in_shape = tuple(fg.in_shapes[name])
    n_in = int(np.prod(in_shape))
    n_out = int(np.prod(fg.out_shapes[name]))
    if kind in ("Affine", "Linear"):
        import nengo

        w = np.asarray(node.weight, dtype=np.float64)
        bias = None
        if kind == "Affine":
            bias = np.broadcast_to(np.asarray(node.bias, dtype=np.float64).reshape(-1), (w.shape[0],)).copy()
        return nengo.Dense((w.shape[0], w.shape[1]), init=w.copy()), bias
    if kind == "Scale":
        return _flat(node.scale, in_shape), None
    if kind == "Conv2d":
        t, _ = _conv2d_transform(node, in_shape)
        bias = getattr(node, "bias", None)
        out_shape = tuple(fg.out_shapes[name])
        b = None if bias is None else np.repeat(np.asarray(bias, dtype=np.float64).reshape(-1),
                                                int(np.prod(out_shape[1:])))
        return t, b
    if kind == "Conv1d":
        p = sem.conv1d_params(node)
        w = np.asarray(node.weight, dtype=np.float64)
        pad = p["padding"]
        if isinstance(pad, str):
            pad = 0 if pad == "valid" else (w.shape[2] - 1) // 2
        r, c, v, out = _conv_entries(w, in_shape, (p["stride"],), (pad,), (p["dilation"],), p["groups"])
        bias = getattr(node, "bias", None)
        b = None if bias is None else np.repeat(np.asarray(bias, dtype=np.float64).reshape(-1), out[1])
        return _sparse_of(r, c, v, (n_out, n_in)), b
    if kind in ("AvgPool2d", "SumPool2d"):
        k, s, p = sem.pool_params(node)
        value = 1.0 / (k[0] * k[1]) if kind == "AvgPool2d" else 1.0
        r, c, v, _ = _pool_entries(in_shape, k, s, p, value)
        return _sparse_of(r, c, v, (n_out, n_in)), None
    if kind in ("Flatten", "Output"):
        return None, None
    raise UnsupportedNodeError(f"backend '{NAME}' has no Nengo transform for {kind}", node=name)


# --------------------------------------------------------------------------- the network


class NengoSimulation(Simulation):
    """A graph as one ``nengo.Network`` and its ``nengo.Simulator``; :meth:`run` steps it sample by sample."""

    def __init__(self, fg: FlatGraph) -> None:
        import nengo

        self.backend = NAME
        self.graph = fg
        self.dtype = torch.float64
        self.dt = fg.semantics.dt
        self._current: dict[str, np.ndarray] = {}  # input name -> [T, N] of the sample being run
        self.kinds: dict[str, str] = {}  # node -> how it is realised (for tests and docs)
        SemanticsNeuron, ThresholdNeuron = _neuron_classes()
        out_obj: dict[str, Any] = {}
        in_obj: dict[str, Any] = {}
        self.probes: dict[str, Any] = {}
        self.membrane_probes: dict[str, Any] = {}
        self.ensembles: dict[str, Any] = {}
        dt = self.dt
        with nengo.Network(seed=0) as net:
            one = nengo.Node(output=[1.0], label="one")
            for name in fg.order:
                kind = fg.type_of(name)
                shape = tuple(fg.in_shapes[name]) if name not in fg.inputs else tuple(fg.out_shapes[name])
                n = int(np.prod(shape)) if shape else 1
                if name in fg.inputs:
                    out_obj[name] = nengo.Node(output=self._source(name, n), size_out=n, label=name)
                    self.kinds[name] = "nengo.Node"
                    continue
                target = nengo.Node(size_in=n, label=f"{name}.in")  # Nengo sums the incoming edges here
                in_obj[name] = target
                if kind in sem.NEURON_TYPES:
                    ntype = self._neuron_type(fg, name, shape, SemanticsNeuron)
                    ens = nengo.Ensemble(n, 1, neuron_type=ntype, gain=np.ones(n), bias=np.zeros(n), label=name)
                    nengo.Connection(target, ens.neurons, synapse=None)
                    out_obj[name] = ens.neurons
                    self.ensembles[name] = ens
                    self.membrane_probes[name] = nengo.Probe(ens.neurons, "membrane", synapse=None)
                    self.kinds[name] = "nengo.Ensemble(SemanticsNeuron)"
                elif kind == "Threshold":
                    thr = _flat(np.asarray(fg.nodes[name].threshold, dtype=np.float64), shape)
                    if fg.threshold_compare(name) == "inclusive":
                        thr = np.nextafter(thr, -np.inf)
                    ens = nengo.Ensemble(n, 1, neuron_type=ThresholdNeuron(thr), gain=np.ones(n), bias=np.zeros(n),
                                         label=name)
                    nengo.Connection(target, ens.neurons, synapse=None)
                    out_obj[name] = ens.neurons
                    self.kinds[name] = "nengo.Ensemble(ThresholdNeuron)"
                else:
                    transform, bias = _transform(fg, name)
                    if transform is None:
                        out_obj[name] = target
                        self.kinds[name] = "nengo.Node"
                    else:
                        n_out = int(np.prod(fg.out_shapes[name]))
                        out = nengo.Node(size_in=n_out, label=name)
                        nengo.Connection(target, out, transform=transform, synapse=None)
                        if bias is not None:
                            nengo.Connection(one, out, transform=bias.reshape(-1, 1), synapse=None)
                        out_obj[name] = out
                        self.kinds[name] = type(transform).__name__ if not isinstance(transform, np.ndarray) \
                            else "elementwise transform"
            for name in fg.order:
                for p in fg.preds.get(name, []):
                    delay = nengo.synapses.LinearFilter([1.0], [1.0, 0.0], analog=False) \
                        if (p, name) in fg.recurrent else None
                    nengo.Connection(out_obj[p], in_obj[name], synapse=delay)
            for name in fg.order:
                if name not in fg.inputs:
                    self.probes[name] = nengo.Probe(out_obj[name], synapse=None)
        self.network = net
        self.simulator = nengo.Simulator(net, dt=dt, progress_bar=False)

    def _source(self, name: str, n: int):
        dt = self.dt

        def output(t: float) -> np.ndarray:
            x = self._current.get(name)
            if x is None:
                return np.zeros(n)
            return x[max(int(round(t / dt)) - 1, 0)]

        return output

    @staticmethod
    def _neuron_type(fg: FlatGraph, name: str, shape: tuple, cls: type):
        c = fg.coefficients(name)
        opts = fg.options(name)
        spiking = c.threshold is not None
        flat = dataclasses.replace(c, **{f: _flat(getattr(c, f), shape) for f in
                                         ("decay", "gain", "bias", "threshold", "v_reset", "syn_decay", "syn_gain")})
        coeffs = sem.TensorCoefficients.of(flat, torch.float64)
        init = {}
        if opts.v_init is not None:
            init["voltage"] = _flat(opts.v_init, shape)
        if opts.i_init is not None and c.syn_decay is not None:
            init["current"] = _flat(opts.i_init, shape)
        reset = fg.node_reset[name] if spiking else "none"
        return cls(coeffs, reset, opts.reset_timing, opts.zero_reset_target, initial_state=init or None)

    def run(self, inputs: Inputs, record: Iterable[str] | None = None, membranes: bool = True) -> Recording:
        """Run ``inputs`` ``[T, B, *shape]`` (or a dict by input name), one sample at a time; record every node."""
        fg = self.graph
        record = None if record is None else list(record)
        limits.check_run_inputs(fg, inputs, self.dtype, membranes, record, NAME)
        xs = as_input_tensors(fg, inputs, self.dtype)
        keep = set(fg.order) if record is None else set(record)
        missing = keep - set(fg.order)
        if missing:
            raise KeyError(f"cannot record unknown node(s) {sorted(missing)}")
        T, B = next(iter(xs.values())).shape[:2]
        flat = {k: v.reshape(T, B, -1).numpy() for k, v in xs.items()}
        outs: dict[str, list[np.ndarray]] = {n: [] for n in fg.order if n in keep and n not in fg.inputs}
        mems: dict[str, list[np.ndarray]] = {n: [] for n in outs if membranes and n in self.membrane_probes}
        sim = self.simulator
        for b in range(B):
            self._current = {k: np.ascontiguousarray(v[:, b]) for k, v in flat.items()}
            sim.reset()
            sim.run_steps(T)
            for n in outs:
                outs[n].append(np.asarray(sim.data[self.probes[n]]))
            for n in mems:
                mems[n].append(np.asarray(sim.data[self.membrane_probes[n]]))
        self._current = {}
        flags = spike_valued(fg, {k: is_binary(v) for k, v in xs.items()})
        out_t: dict[str, torch.Tensor] = {}
        for n in fg.order:
            if n not in keep:
                continue
            if n in fg.inputs:
                y = xs[n]
            else:
                y = torch.from_numpy(np.stack(outs[n], axis=1)).reshape((T, B) + tuple(fg.out_shapes[n]))
            out_t[n] = y > 0.5 if flags[n] else y.to(self.dtype)
        mem_t = {n: torch.from_numpy(np.stack(v, axis=1)).reshape((T, B) + tuple(fg.in_shapes[n]))
                 for n, v in mems.items()}
        return Recording(out_t, mem_t, {n: fg.type_of(n) for n in fg.order}, self.dt, NAME, list(fg.order))


class NengoBackend(Backend):
    """Run NIR graphs as a ``nengo.Network`` on ``nengo.Simulator``, following the reference semantics."""

    name = NAME
    requires = ("nengo", "scipy")
    pip = "pip install 'snnbridge[nengo]'"
    supported_nodes = SUPPORTED
    supported_dtypes = (torch.float64,)

    def prepare(self, graph, dt=None, reset=None, integration=None, dtype=torch.float64) -> FlatGraph:
        """As :meth:`Backend.prepare`; float32 is refused (field ``dtype``): Nengo computes in float64."""
        if dtype != torch.float64:
            self.ensure_available()
            raise UnsupportedNodeError(f"backend '{NAME}' computes in float64 only (Nengo's precision); cannot run "
                                       f"in {dtype}", field="dtype")
        return super().prepare(graph, dt, reset, integration, dtype)

    def compile(self, graph: nir.NIRGraph | FlatGraph | str | Path, dt: float | None = None,
                reset: str | None = None, integration: str | None = None, dtype: torch.dtype = torch.float64,
                **options) -> NengoSimulation:
        """Build the Nengo network and simulator; raises :class:`UnsupportedNodeError` naming node and field."""
        options.pop("device", None)  # Nengo runs on the CPU
        if options:
            raise TypeError(f"unknown option(s) for backend '{self.name}': {', '.join(options)}")
        fg = self.prepare(graph, dt, reset, integration, dtype)
        return NengoSimulation(fg)
