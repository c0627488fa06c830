"""Memory and compute costs of the paper (Deng et al. 2020, Eqs. 8-9, §3.5): #W, #A/#P, #S, M, #Add, #Mul.

Two entry points:

* :func:`static_costs` — analytic, from a structure string (``"Input-32C3-AP2-10"``) and an input
  shape, nothing run: every ANN number, and the SNN's #W, #P and memory without spikes.
* :func:`recorded_costs` — an SNN's costs from what one backend recorded (spikes per step),
  averaged over the samples; :func:`graph_costs` gives the ANN numbers of the same NIR graph.

Counting conventions (``docs/validation.md``; the ambiguous ones are :class:`Conventions` fields):

* #W: synaptic weights (FC, conv); biases only with ``bias=True`` (the paper ignores them);
  pooling has no stored weights (its ``1/k²`` is a shared constant).
* #A (ANN): every layer's output values (conv, pool, FC, the classifier included);
  #P (SNN): every spiking neuron's membrane potential (pooling units are neurons in the
  paper's SNNs; CubaLIF neurons hold two state values).  The input layer is counted
  only with ``input_layer=True``.
* #S: per sample, the largest number of spikes emitted at any single step (by neurons; input
  spikes only with ``input_layer=True``), averaged over samples.
* M (bits): ANN ``32·(#W + #A)``; SNN ``32·(#W + #P) + 1·#S``.
* ANN synaptic layers: #Mul = #Add = MACs, every output × its fan-in (``C_in/groups·k·k`` for a
  conv with ``padded_taps=True``, the default: zero-padded taps included; only the taps that land on
  the input with ``padded_taps=False``); a bias adds one addition per output (``bias=True``).
* ANN average pooling (``pooling=True``, default): ``k·k`` additions and **one** multiplication
  (by ``1/k²``) per output — the paper's MNIST-CNN row of Table 6; ``pooling=False`` counts no
  pooling operations at all (its CIFAR10 row).
* SNN #Add: every spike × its fan-out, summed over all steps; #Mul = 0.  The fan-out of a spike is
  the number of synapses it drives; with ``padded_taps=True`` a padded conv charges every spike the
  layer's mean nominal fan-out (``MACs / inputs``), so that an input spiking everywhere once costs
  exactly the ANN's MACs (padded taps counted on both sides alike); with ``padded_taps=False``
  border spikes are charged the fewer synapses they really drive (and the ANN counts no padded
  taps either).  A pooling neuron's input spike drives one synapse (non-overlapping windows).  A
  synaptic layer fed with analog values (the encoding layer, Fig. 4b) costs its MACs at every step,
  in #Add and #Mul.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from snnbridge.bridge import semantics as sem
from snnbridge.models.notation import AvgPool, Conv, parse_structure

SYNAPTIC_TYPES = ("Affine", "Linear", "Conv1d", "Conv2d", "AvgPool2d", "SumPool2d", "Scale")
POOL_TYPES = ("AvgPool2d", "SumPool2d")


@dataclass(frozen=True)
class Conventions:
    """The counting choices the paper leaves open (defaults follow its Table 6 text)."""

    bias: bool = False
    """Count bias values in #W and one addition per biased output (per step in an SNN)."""
    pooling: bool = True
    """Count average-pooling operations: ``k·k`` additions + 1 multiplication per output (ANN; Table 6's
    MNIST-CNN row), spikes × fan-out additions (SNN).  ``False``: none (Table 6's CIFAR10 row)."""
    padded_taps: bool = True
    """Count the taps of a padded conv that land on the zero padding: ANN MACs use the nominal fan-in
    ``C_in·k·k``; SNN spikes are charged the mean nominal fan-out (``MACs / inputs``).  ``False``: only
    real synapses on both sides (ANN: taps inside the input; SNN: each spike's exact fan-out)."""
    input_layer: bool = False
    """Count the input values in #A/#P (32-bit) and the input spikes in #S."""
    value_bits: int = 32
    spike_bits: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LayerCost:
    """One layer's share: ``weights``, ``values`` (activations or potentials), ``adds``, ``muls`` (per sample)."""

    name: str
    kind: str
    weights: int = 0
    values: int = 0
    adds: float | None = 0.0
    muls: float | None = 0.0


@dataclass
class Costs:
    """Eqs. 8-9 for one model: counts per sample (averaged over samples where they depend on the data).

    ``values`` is #A for an ANN and #P for an SNN; ``spikes`` (#S), ``adds`` and ``memory_bits`` are
    ``None`` for an SNN whose spikes are unknown.
    """

    mode: str
    weights: int
    values: int
    spikes: float | None
    memory_bits: float | None
    adds: float | None
    muls: float | None
    conventions: Conventions = field(default_factory=Conventions)
    layers: list[LayerCost] = field(default_factory=list)
    estimate: bool = False

    @property
    def values_label(self) -> str:
        return "#A" if self.mode == "ann" else "#P"

    @property
    def static_memory_bits(self) -> int:
        """``32·(#W + #A/#P)``: the memory known without running (M minus the spike memory)."""
        return self.conventions.value_bits * (self.weights + self.values)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["values_label"] = self.values_label
        d["static_memory_bits"] = self.static_memory_bits
        return d

    def __repr__(self) -> str:
        def f(x) -> str:
            return "?" if x is None else f"{x:.4g}"

        return (f"Costs({self.mode}: #W={self.weights}, {self.values_label}={self.values}, #S={f(self.spikes)}, "
                f"M={f(self.memory_bits)} bits, #Add={f(self.adds)}, #Mul={f(self.muls)}, {len(self.layers)} layers"
                + (", estimate" if self.estimate else "") + ")")

    def _repr_html_(self) -> str:
        """Jupyter rich display: the Eq. 8-9 numbers and a per-layer table."""
        from snnbridge.validation.report.notebook import costs_html

        return costs_html(self)


def memory_bits(mode: str, weights: int, values: int, spikes: float | None, c: Conventions) -> float | None:
    """Eq. 8: ``M = M_w + M_a`` (ANN) or ``M_w + M_p + M_s`` (SNN), in bits."""
    base = c.value_bits * (weights + values)
    if mode == "ann":
        return float(base)
    return None if spikes is None else float(base + c.spike_bits * spikes)


# --------------------------------------------------------------------------- analytic (structure string)


def _taps_1d(n: int, k: int, stride: int, pad: int) -> int:
    """Σ over the outputs of a 1-D conv of the kernel taps that land inside the input (not on padding)."""
    n_out = (n + 2 * pad - k) // stride + 1
    return sum(sum(1 for j in range(k) if 0 <= o * stride - pad + j < n) for o in range(n_out))


def conv_macs(in_shape: tuple[int, ...], layer: Conv, padded_taps: bool = True) -> int:
    """MACs of conv ``layer`` on ``in_shape = (C, H, W)`` per sample: ``outputs × C·k·k`` with padded taps,
    else only the taps inside the input (``C_out·C·taps_h·taps_w``)."""
    c, h, w = in_shape
    k, s, p = layer.kernel, layer.stride, layer.pad
    if padded_taps:
        _, ho, wo = layer.out_shape(in_shape)
        return layer.out_channels * ho * wo * c * k * k
    return layer.out_channels * c * _taps_1d(h, k, s, p) * _taps_1d(w, k, s, p)


def static_costs(structure: str, input_shape: tuple[int, ...] | int, mode: str = "ann", T: int | None = None,
                 rate: float | None = None, conventions: Conventions | None = None, pool_neurons: bool = True,
                 encoding_layer: bool = False, conv_stride: int = 1) -> Costs:
    """Costs of a structure (paper notation) for a per-sample ``input_shape``, without running anything.

    ANN (``mode="ann"``): every number exact.  SNN: #W and #P exact; #S, #Add (and M) need spikes,
    so they are ``None`` unless ``T`` and a mean firing probability per neuron and step ``rate`` are
    given, in which case they are estimates (``#Add ≈ T·rate·synapses``, ``#S ≈ rate·neurons``).
    Layers fed with analog values (the encoding layer with ``encoding_layer=True``; the layer after a
    pool that is not made of neurons, ``pool_neurons=False``) cost ``T`` × their MACs in #Add and #Mul.
    """
    if mode not in ("ann", "snn"):
        raise ValueError(f"mode must be 'ann' or 'snn', got {mode!r}")
    c = conventions or Conventions()
    s = parse_structure(structure, conv_stride)
    shape = (int(input_shape),) if isinstance(input_shape, (int, np.integer)) else tuple(int(v) for v in input_shape)
    shapes = s.shapes(shape)
    n_input = int(np.prod(shape))
    layers: list[LayerCost] = []
    if c.input_layer:
        layers.append(LayerCost("input", "Input", 0, n_input))
    cur = shape
    analog = encoding_layer  # is the current layer's input analog (SNN)?
    for i, (layer, out) in enumerate(zip(s.layers, shapes), start=1):
        n_out = int(np.prod(out))
        bias_adds = 0
        pool_muls = 0
        if isinstance(layer, Conv):
            macs = conv_macs(cur, layer, c.padded_taps)
            w = layer.out_channels * cur[0] * layer.kernel ** 2 + (layer.out_channels if c.bias else 0)
            lc = LayerCost(f"conv{i}", str(layer), w, n_out)
            bias_adds = n_out if c.bias else 0
            neurons = True
        elif isinstance(layer, AvgPool):
            macs = n_out * layer.kernel ** 2 if c.pooling else 0  # additions (and SNN synapses)
            pool_muls = n_out if c.pooling else 0  # one multiplication by 1/k² per output (ANN)
            neurons = mode == "ann" or pool_neurons
            lc = LayerCost(f"pool{i}", str(layer), 0, n_out if neurons else 0)
        else:
            n_in = int(np.prod(cur))
            macs = layer.out_features * n_in
            lc = LayerCost(f"fc{i}", str(layer), macs + (layer.out_features if c.bias else 0), n_out)
            bias_adds = n_out if c.bias else 0
            neurons = True
        if mode == "ann":
            lc.adds = float(macs + bias_adds)
            lc.muls = float(pool_muls if isinstance(layer, AvgPool) else macs)
        elif analog:
            lc.adds = None if T is None else float(T * (macs + bias_adds))
            lc.muls = None if T is None else float(T * (pool_muls if isinstance(layer, AvgPool) else macs))
        else:
            lc.adds = None if (T is None or rate is None) else float(T * rate * macs + T * bias_adds)
            lc.muls = 0.0
        if mode == "snn":
            analog = not neurons and (analog or isinstance(layer, AvgPool))
        layers.append(lc)
        cur = out
    W = sum(x.weights for x in layers)
    V = sum(x.values for x in layers)
    adds = float(sum(x.adds for x in layers)) if all(x.adds is not None for x in layers) else None  # type: ignore[misc]
    muls = float(sum(x.muls for x in layers)) if all(x.muls is not None for x in layers) else None  # type: ignore[misc]
    if mode == "ann":
        return Costs("ann", W, V, None, memory_bits("ann", W, V, None, c), adds, muls, c, layers)
    estimate = T is not None and rate is not None
    spikes = float(rate * V) if estimate else None  # V holds the input too when input_layer=True
    return Costs("snn", W, V, spikes, memory_bits("snn", W, V, spikes, c), adds, muls, c, layers, estimate=estimate)


# --------------------------------------------------------------------------- from a graph


def _weight_count(node, c: Conventions) -> int:
    kind = type(node).__name__
    n = 0
    if kind in ("Affine", "Linear", "Conv1d", "Conv2d"):
        n += int(np.asarray(node.weight).size)
        if c.bias and getattr(node, "bias", None) is not None and kind != "Linear":
            n += int(np.asarray(node.bias).size)
    elif kind == "Scale":
        n += int(np.asarray(node.scale).size)
    return n


def _state_count(fg, name: str) -> int:
    kind = fg.type_of(name)
    n = int(np.prod(fg.out_shapes[name]))
    if kind in ("CubaLIF", "CubaLI"):
        return 2 * n
    if kind in sem.NEURON_TYPES:
        return n
    return 0


def nominal_macs(fg, name: str, padded_taps: bool = True) -> int:
    """Multiply-accumulates of one synaptic node per sample and step with a dense input: outputs × nominal
    fan-in (``padded_taps=True``), or the synapses that exist (``False``: a padded conv's taps on the
    padding left out).  A pool's value is its additions (``k·k`` per output)."""
    node = fg.nodes[name]
    kind = fg.type_of(name)
    n_out = int(np.prod(fg.out_shapes[name]))
    if kind in ("Affine", "Linear"):
        w = np.asarray(node.weight)
        return n_out * int(w.shape[1])
    if kind in ("Conv1d", "Conv2d"):
        w = np.asarray(node.weight)
        if not padded_taps:
            return int(fan_out(fg, name, padded_taps=False).sum())
        return n_out * int(np.prod(w.shape[1:]))
    if kind in POOL_TYPES:
        k, _, _ = sem.pool_params(node)
        return n_out * k[0] * k[1]
    if kind == "Scale":
        return n_out
    return 0


def fan_out(fg, name: str, padded_taps: bool = False) -> torch.Tensor:
    """Number of synapses each input element of synaptic node ``name`` drives, ``float64 [*in_shape]``.

    ``padded_taps=False``: the exact count (a border input of a padded conv drives fewer outputs).
    ``True``: a conv's inputs are all charged its mean nominal fan-out, ``nominal MACs / inputs`` (so the
    padded taps are shared out over the spikes; other nodes keep the exact count).
    """
    node = fg.nodes[name]
    kind = fg.type_of(name)
    if padded_taps and kind in ("Conv1d", "Conv2d"):
        n_in = int(np.prod(fg.in_shapes[name]))
        return torch.full(tuple(fg.in_shapes[name]), nominal_macs(fg, name) / n_in, dtype=torch.float64)
    x = torch.zeros((1,) + tuple(fg.in_shapes[name]), dtype=torch.float64, requires_grad=True)
    params: dict[str, torch.Tensor] = {}
    if kind in ("Affine", "Linear", "Conv1d", "Conv2d"):
        params["weight"] = torch.ones(np.asarray(node.weight).shape, dtype=torch.float64)
        if kind == "Affine":
            params["bias"] = torch.zeros(np.asarray(node.weight).shape[0], dtype=torch.float64)
    elif kind == "Scale":
        params["scale"] = torch.ones(np.shape(node.scale), dtype=torch.float64)
    y = sem.stateless_forward(node, x, params)
    y.sum().backward()
    g = x.grad[0].detach()
    if kind == "AvgPool2d":
        k, _, _ = sem.pool_params(node)
        g = g * (k[0] * k[1])
    return g.round()


def _counted(fg, name: str, c: Conventions) -> bool:
    kind = fg.type_of(name)
    return kind in SYNAPTIC_TYPES and (c.pooling or kind not in POOL_TYPES)


def _bias_outputs(fg, name: str, c: Conventions) -> int:
    node = fg.nodes[name]
    if not c.bias or fg.type_of(name) not in ("Affine", "Conv1d", "Conv2d") or getattr(node, "bias", None) is None:
        return 0
    return int(np.prod(fg.out_shapes[name]))


def graph_costs(fg, conventions: Conventions | None = None) -> Costs:
    """ANN costs of a prepared graph (``FlatGraph``) read as an ANN: each neuron an activation, dense MACs."""
    c = conventions or Conventions()
    layers = []
    for name in fg.order:
        kind = fg.type_of(name)
        if name in fg.inputs:
            if c.input_layer:
                layers.append(LayerCost(name, "Input", 0, int(np.prod(fg.out_shapes[name]))))
            continue
        w = _weight_count(fg.nodes[name], c)
        values = _state_count(fg, name) // (2 if kind in ("CubaLIF", "CubaLI") else 1)
        if kind in POOL_TYPES and not any(fg.type_of(s) in sem.NEURON_TYPES for s in _succ(fg, name)):
            values = int(np.prod(fg.out_shapes[name]))
        macs = nominal_macs(fg, name, c.padded_taps) if _counted(fg, name, c) else 0
        muls = macs
        if kind in POOL_TYPES and macs:  # k·k additions, one multiplication by 1/k² (AvgPool2d) per output
            muls = int(np.prod(fg.out_shapes[name])) if kind == "AvgPool2d" else 0
        bias = _bias_outputs(fg, name, c)
        if w or values or macs:
            layers.append(LayerCost(name, kind, w, values, float(macs + bias), float(muls)))
    W = sum(x.weights for x in layers)
    A = sum(x.values for x in layers)
    adds = float(sum(x.adds for x in layers))  # type: ignore[misc]
    muls = float(sum(x.muls for x in layers))  # type: ignore[misc]
    return Costs("ann", W, A, None, memory_bits("ann", W, A, None, c), adds, muls, c, layers)


def _succ(fg, name: str) -> list[str]:
    return [n for n, ps in fg.preds.items() if name in ps]


def recorded_costs(fg, rec, conventions: Conventions | None = None) -> Costs:
    """SNN costs from one backend's recording ``rec`` of graph ``fg`` (counts per sample, mean over samples).

    A synaptic node whose inputs were recorded as spikes costs ``spikes × fan-out`` additions; one fed
    with analog values (an encoding layer) costs its MACs at every step.  Values that need a node the
    backend did not record are ``None``.
    """
    c = conventions or Conventions()
    T, B = rec.steps, rec.batch_size
    layers: list[LayerCost] = []
    known = True
    for name in fg.order:
        kind = fg.type_of(name)
        if name in fg.inputs:
            if c.input_layer:
                layers.append(LayerCost(name, "Input", 0, int(np.prod(fg.out_shapes[name]))))
            continue
        w = _weight_count(fg.nodes[name], c)
        values = _state_count(fg, name)
        adds: float | None = 0.0
        muls: float | None = 0.0
        if _counted(fg, name, c):
            preds = fg.preds[name]
            if not all(p in rec for p in preds):
                adds = muls = None
                known = False
            else:
                spiking = all(rec[p].dtype == torch.bool for p in preds)
                if spiking:
                    fo = fan_out(fg, name, c.padded_taps)
                    tot = 0.0
                    for p in preds:
                        s = rec[p].reshape((T, B) + tuple(fo.shape)).double()
                        tot += float((s * fo).sum())
                    adds = tot / B
                else:
                    macs = nominal_macs(fg, name, c.padded_taps) * T * len(preds)
                    adds, muls = float(macs), float(macs)
                    if kind in POOL_TYPES:
                        n_out = int(np.prod(fg.out_shapes[name]))
                        muls = float(n_out * T * len(preds)) if kind == "AvgPool2d" else 0.0
            if adds is not None:
                adds += T * _bias_outputs(fg, name, c)
        if w or values or adds or muls or adds is None:
            layers.append(LayerCost(name, kind, w, values, adds, muls))
    spikes = spikes_per_step_max(fg, rec, c.input_layer)
    W = sum(x.weights for x in layers)
    P = sum(x.values for x in layers)
    adds_total = float(sum(x.adds for x in layers)) if known else None  # type: ignore[misc]
    muls_total = float(sum(x.muls for x in layers)) if known else None  # type: ignore[misc]
    return Costs("snn", W, P, spikes, memory_bits("snn", W, P, spikes, c), adds_total, muls_total, c, layers)


def spike_sources(fg, rec, include_input: bool = False) -> list[str]:
    """Nodes whose spikes count toward #S: spiking neurons and Threshold nodes (and spiking inputs)."""
    out = [n for n in fg.order if fg.type_of(n) in sem.SPIKING_TYPES]
    if include_input:
        out = [n for n in fg.inputs if n in rec and rec[n].dtype == torch.bool] + out
    return out


def spikes_per_step_max(fg, rec, include_input: bool = False) -> float | None:
    """#S: per sample the largest number of spikes at one step (over all spiking nodes), mean over samples."""
    srcs = spike_sources(fg, rec, include_input)
    if not all(n in rec for n in srcs):
        return None
    if not srcs:
        return 0.0
    T, B = rec.steps, rec.batch_size
    per_step = torch.zeros((T, B), dtype=torch.float64)
    for n in srcs:
        per_step += rec[n].reshape(T, B, -1).double().sum(-1)
    return float(per_step.max(0).values.mean())


def costs_table_row(costs: Costs) -> dict:
    """Flat numbers of one cost result (the report's table and JSON use these keys)."""
    return {"mode": costs.mode, "weights": costs.weights, "values": costs.values, "values_label": costs.values_label,
            "spikes": costs.spikes, "memory_bits": costs.memory_bits, "adds": costs.adds, "muls": costs.muls}
