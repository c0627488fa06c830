"""Target-independent compilation plan of the Brian2 backend: groups, composed connections, folded currents.

A NIR graph is split into

* **groups** — nodes with a Brian2 ``NeuronGroup``: every ``Input``, every neuron node
  (LIF, IF, CubaLIF, LI, I, CubaLI) and every ``Threshold`` node;
* **stateless nodes** — Affine, Linear, Scale, Conv1d/2d, Avg/SumPool2d, Flatten, Output, Delay.  They
  are linear in their inputs, so every path of stateless nodes between two groups composes into one
  sparse matrix (flattened per-sample index, C order) plus a bias vector, per total lag in steps (a
  recurrent edge adds one step, a ``Delay`` node ``round(delay/dt)`` per element).  Each
  ``(source group, target group, lag)`` becomes one :class:`Projection` — one Brian2 ``Synapses`` with a
  per-connection weight.

In ``current`` mode a target's predecessor whose whole upstream is ``Input`` nodes and stateless nodes
(no delay, no recurrence) is *folded*: its value does not depend on the simulation, so it is evaluated
once, with the reference's own :func:`~snnbridge.bridge.semantics.stateless_forward`, and fed to Brian2 as
an external current (a ``TimedArray``).  Nothing here imports Brian2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph
from snnbridge.errors import UnsupportedNodeError

BACKEND = "brian2"
GROUP_TYPES = ("Input", "Threshold") + sem.NEURON_TYPES


def is_group(fg: FlatGraph, name: str) -> bool:
    """Whether node ``name`` becomes a Brian2 group: a graph Input, a Threshold or a neuron node.  The Input node of
    a nested graph is not one: it passes its value through, like an Output or a Flatten."""
    kind = fg.type_of(name)
    return kind in GROUP_TYPES and (kind != "Input" or name in fg.inputs)
ANALOG_NEURONS = ("LI", "I", "CubaLI")
"""Neuron nodes whose output is their membrane (an analog value, not spikes)."""

Paths = dict[tuple[str, int], sp.csr_matrix]
"""``(source group, lag in steps) -> matrix [node size, source size]``."""


# --------------------------------------------------------------------------- linear maps of stateless nodes


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _coo(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.coo_matrix((vals.astype(np.float64), (rows.astype(np.int64), cols.astype(np.int64))), shape=shape)
    return m.tocsr()


def _conv_geometry(node):
    """``(weight float64 [c_out, c_in/groups, *kernel], stride, padding, dilation, groups)`` of a Conv1d/Conv2d node,
    ``padding`` resolved to ints ('valid': 0; 'same': torch's ``dilation*(k-1)`` in total, the smaller half first)."""
    w = np.asarray(node.weight, dtype=np.float64)
    nd = w.ndim - 2
    params = sem.conv2d_params(node) if nd == 2 else sem.conv1d_params(node)
    as_tuple = (lambda v: tuple(v)) if nd == 2 else (lambda v: (v,))
    stride, dilation, kernel = as_tuple(params["stride"]), as_tuple(params["dilation"]), w.shape[2:]
    pad = params["padding"]
    if isinstance(pad, str):
        pad = (0,) * nd if pad == "valid" else tuple((d * (k - 1)) // 2 for d, k in zip(dilation, kernel))
    else:
        pad = as_tuple(pad)
    return w, stride, pad, dilation, params["groups"]


def _conv_axis(n_in: int, n_out: int, k: int, stride: int, pad: int, dil: int) -> tuple[np.ndarray, np.ndarray]:
    """Along one axis, for input position ``p`` and kernel offset ``k`` taken in *reverse* order: the output
    position ``o`` with ``o*stride - pad + k*dil == p`` and whether it exists (``[n_in, k]`` each); in reverse
    kernel order ``o`` increases, so a column's rows come out sorted."""
    num = np.arange(n_in)[:, None] + pad - np.arange(k)[::-1][None, :] * dil
    o = num // stride
    return o, (num % stride == 0) & (o >= 0) & (o < n_out)


def _conv_map(node, in_shape, out_shape) -> tuple[sp.csc_matrix, np.ndarray]:
    """Conv1d/Conv2d as ``(matrix [out, in], bias [out])``: cross-correlation with stride, padding, dilation, groups.

    Built column by column (input channel at a time) straight into CSC form — rows sorted within a column, no
    duplicates, zero weights left out, int32 indices — so the peak is the matrix itself (12 bytes per connection)
    plus one input channel's worth of temporaries: the full-size N-MNIST CNN's 82 M-connection convolution once
    took ~8 GB as COO -> CSR -> CSC.
    """
    w, stride, pad, dilation, groups = _conv_geometry(node)
    if w.ndim == 3:  # Conv1d as a Conv2d of height 1
        w, in_shape, out_shape = w[:, :, None, :], (in_shape[0], 1, in_shape[1]), (out_shape[0], 1, out_shape[1])
        stride, pad, dilation = (1,) + stride, (0,) + pad, (1,) + dilation
    c_out, c_in_g, kh, kw = w.shape
    c_in, h, wi = (int(v) for v in in_shape)
    _, oh, ow = (int(v) for v in out_shape)
    c_out_g = c_out // groups
    oy, vy = _conv_axis(h, oh, kh, stride[0], pad[0], dilation[0])  # [h, kh]
    ox, vx = _conv_axis(wi, ow, kw, stride[1], pad[1], dilation[1])  # [w, kw]
    valid_pos = vy[:, None, None, :, None] & vx[None, :, None, None, :]  # [h, w, 1, kh, kw]

    def channel(ci: int):
        """Mask ``[h, w, c_out_g, kh, kw]`` of the connections from input channel ``ci``, its weights, first output."""
        gi = ci // c_in_g
        wk = w[gi * c_out_g:(gi + 1) * c_out_g, ci % c_in_g, ::-1, ::-1]  # [c_out_g, kh, kw], kernel reversed
        return valid_pos & (wk != 0)[None, None], wk, gi * c_out_g

    counts = np.zeros(c_in * h * wi, dtype=np.int64)
    for ci in range(c_in):
        counts[ci * h * wi:(ci + 1) * h * wi] = channel(ci)[0].reshape(h * wi, -1).sum(axis=1)
    nnz = int(counts.sum())
    n_out, n_in = c_out * oh * ow, c_in * h * wi
    itype = _index_dtype(max(nnz, n_out, n_in) + 1)
    indptr = np.zeros(n_in + 1, dtype=itype)
    np.cumsum(counts, out=indptr[1:])
    del counts
    indices = np.empty(nnz, dtype=itype)
    data = np.empty(nnz, dtype=np.float64)
    for ci in range(c_in):
        mask, wk, co0 = channel(ci)
        co = np.arange(co0, co0 + c_out_g)
        rows = (co[None, None, :, None, None] * oh + oy[:, None, None, :, None]) * ow + ox[None, :, None, None, :]
        a, b = int(indptr[ci * h * wi]), int(indptr[(ci + 1) * h * wi])
        indices[a:b] = rows[mask]  # C order over (y, x, co, ky reversed, kx reversed): columns, rows ascending
        data[a:b] = np.broadcast_to(wk[None, None], mask.shape)[mask]
    m = sp.csc_matrix((data, indices, indptr), shape=(n_out, n_in))
    m.has_sorted_indices = True
    m.has_canonical_format = True
    b = getattr(node, "bias", None)
    bias = np.zeros(n_out)
    if b is not None:
        bias = np.repeat(np.broadcast_to(np.asarray(b, dtype=np.float64).ravel(), (c_out,)), oh * ow)
    return m, bias


def _pool_map(node, in_shape, out_shape) -> sp.csr_matrix:
    """Avg/SumPool2d as a matrix (zero padding counted, as in the reference)."""
    (kh, kw), (sh, sw), (ph, pw) = sem.pool_params(node)
    c, h, w_ = in_shape
    _, oh, ow = out_shape
    cc, ky, kx, oy, ox = (g.ravel() for g in np.meshgrid(np.arange(c), np.arange(kh), np.arange(kw), np.arange(oh),
                                                         np.arange(ow), indexing="ij"))
    iy = oy * sh - ph + ky
    ix = ox * sw - pw + kx
    ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w_)
    weight = 1.0 / (kh * kw) if type(node).__name__ == "AvgPool2d" else 1.0
    row = (cc * oh + oy) * ow + ox
    col = (cc * h + iy) * w_ + ix
    return _coo(row[ok], col[ok], np.full(int(ok.sum()), weight), (_size(out_shape), _size(in_shape)))


def map_size(node, in_shape, out_shape) -> int:
    """Nonzeros :func:`linear_map` gives at most, computed from the declared shapes before anything is allocated."""
    kind = type(node).__name__
    n_in = _size(in_shape)
    if kind in ("Conv1d", "Conv2d"):
        w, stride, pad, dilation, _ = _conv_geometry(node)
        nd, kernel = w.ndim - 2, w.shape[2:]
        total = int(w.shape[0]) * int(w.shape[1])
        for d in range(nd):  # valid (output position, kernel offset) pairs along each axis
            o = np.arange(out_shape[1 + d])[:, None] * stride[d] - pad[d] + np.arange(kernel[d])[None, :] * dilation[d]
            total *= int(((o >= 0) & (o < in_shape[1 + d])).sum())
        return total
    if kind in ("Affine", "Linear"):
        w = np.asarray(node.weight)
        return int(np.count_nonzero(w)) * (n_in // w.shape[1])
    if kind in ("AvgPool2d", "SumPool2d"):
        (kh, kw), _, _ = sem.pool_params(node)
        return _size(out_shape) * kh * kw
    return n_in


def linear_map(node, in_shape, out_shape) -> tuple[sp.csr_matrix, np.ndarray | None]:
    """A stateless, non-delay NIR node as ``(matrix [out, in], bias [out] or None)`` on flattened samples."""
    kind = type(node).__name__
    n_in = _size(in_shape)
    if kind in ("Input", "Output", "Flatten"):
        return sp.identity(n_in, format="csr", dtype=np.float64), None
    if kind in ("Affine", "Linear"):
        w = np.asarray(node.weight, dtype=np.float64)
        lead = n_in // w.shape[1]
        m = sp.kron(sp.identity(lead, format="csr"), sp.csr_matrix(w), format="csr")
        m.eliminate_zeros()
        if kind == "Linear":
            return m, None
        b = np.broadcast_to(np.asarray(node.bias, dtype=np.float64).ravel(), (w.shape[0],))
        return m, np.tile(b, lead)
    if kind == "Scale":
        s = np.broadcast_to(np.asarray(node.scale, dtype=np.float64), tuple(in_shape)).ravel()
        return sp.diags(s, format="csr"), None
    if kind in ("Conv1d", "Conv2d"):
        return _conv_map(node, in_shape, out_shape)
    if kind in ("AvgPool2d", "SumPool2d"):
        return _pool_map(node, in_shape, out_shape), None
    raise ValueError(f"{kind} is not a linear stateless node")


# --------------------------------------------------------------------------- plan


@dataclass
class Projection:
    """Connections ``src -> dst`` (one Brian2 ``Synapses``), delivered ``lag`` steps after ``src`` emitted.

    ``pre``/``post``/``w``: per-sample source index, target index and weight (float64), sorted by ``(pre, post)``.
    """

    src: str
    dst: str
    lag: int
    pre: np.ndarray
    post: np.ndarray
    w: np.ndarray

    @property
    def size(self) -> int:
        return int(self.w.size)


@dataclass
class GroupSpec:
    """One Brian2 ``NeuronGroup`` (per sample; the builder makes ``copies`` parallel copies).

    Attributes:
        node: NIR node name; index: its position in ``FlatGraph.order``.
        kind: NIR type name (``"Input"``, ``"Threshold"``, ``"LIF"``, ...).
        size: neurons per sample (flattened node shape).
        coeff: the reference constants (``FlatGraph.coefficients``), neuron nodes only.
        reset: reset mode of a spiking neuron.
        timing / zero_target: reset timing and zero-reset target of a spiking neuron
            (:data:`~snnbridge.bridge.semantics.RESET_TIMINGS`; ``immediate`` for ``reset='none'``).
        v_init / i_init: initial membrane / synaptic current per neuron (float64 ``[size]``), or ``None`` (zero).
        inclusive: the threshold compares ``v >= thr`` (``FlatGraph.threshold_compare``) instead of ``v > thr``.
        threshold: per-neuron threshold of a ``Threshold`` node.
        b0: constant drive per neuron (biases of every undelayed stateless path), float64 ``[size]``.
        lag_bias: lag -> constant drive that starts ``lag`` steps into a run (biases behind a delay/recurrence).
        folded: predecessors whose value is precomputed from the inputs and added as an external current.
    """

    node: str
    index: int
    kind: str
    size: int
    coeff: sem.NeuronCoefficients | None = None
    reset: str = "zero"
    timing: str = "immediate"
    zero_target: str = "state"
    inclusive: bool = False
    v_init: np.ndarray | None = None
    i_init: np.ndarray | None = None
    threshold: np.ndarray | None = None
    b0: np.ndarray | None = None
    lag_bias: dict[int, np.ndarray] = field(default_factory=dict)
    folded: list[str] = field(default_factory=list)

    @property
    def is_input(self) -> bool:
        return self.kind == "Input"

    @property
    def spiking(self) -> bool:
        """Emits spikes (inputs: decided from the values at run time, see the simulation)."""
        return self.kind in sem.SPIKING_TYPES

    @property
    def analog(self) -> bool:
        return self.kind in ANALOG_NEURONS

    @property
    def cuba(self) -> bool:
        return self.kind in ("CubaLIF", "CubaLI")


@dataclass
class Plan:
    """Everything the Brian2 builder needs, independent of the code-generation target.

    ``groups`` in schedule order (inputs first), ``projections`` sorted by target then source,
    ``pure``: nodes computable from the inputs alone (folded in ``current`` mode).
    """

    graph: FlatGraph
    groups: dict[str, GroupSpec]
    projections: list[Projection]
    pure: set[str]
    input_projection: str

    @property
    def sinks(self) -> list[GroupSpec]:
        return [g for g in self.groups.values() if not g.is_input]

    def synapses_per_copy(self) -> int:
        return sum(p.size for p in self.projections)

    def position(self, name: str) -> int:
        """Where ``name`` runs within a step: inputs before everything (-1), others by ``FlatGraph.order``."""
        g = self.groups[name]
        return -1 if g.is_input else g.index

    def projections_into(self, name: str) -> list[Projection]:
        return [p for p in self.projections if p.dst == name]


def _refuse(message: str, node: str) -> UnsupportedNodeError:
    return UnsupportedNodeError(f"backend '{BACKEND}' {message}", node=node)


def _too_big(what: str, limit: float, node: str):
    from snnbridge.bridge.limits import ResourceLimitError

    return ResourceLimitError(f"backend '{BACKEND}': {what}, more synapses per sample than the memory budget allows "
                              f"({int(limit):,}; raise SNNBRIDGE_MEMORY_BUDGET or use limits.memory_budget(...)) "
                              f"at node '{node}'")


class _Composer:
    """Composes the linear maps of stateless nodes back to their source groups (memoised)."""

    def __init__(self, fg: FlatGraph, max_synapses: float = float("inf")) -> None:
        self.fg = fg
        self.max_synapses = max_synapses
        self.paths: dict[str, tuple[Paths, dict[int, np.ndarray]]] = {}

    def of(self, name: str) -> tuple[Paths, dict[int, np.ndarray]]:
        """``(paths, biases by lag)`` giving the output of node ``name`` in terms of group outputs."""
        if name in self.paths:
            return self.paths[name]
        fg = self.fg
        n_out = _size(fg.out_shapes[name])
        if is_group(fg, name):
            out = ({(name, 0): sp.identity(n_out, format="csr", dtype=np.float64)}, {})
            self.paths[name] = out
            return out
        paths, bias = self.incoming(name)
        if fg.type_of(name) == "Delay":
            d = np.broadcast_to(sem.delay_steps(fg.nodes[name], fg.semantics), fg.in_shapes[name]).ravel()
            paths, bias = _split_delays(paths, bias, d)
        else:
            size = map_size(fg.nodes[name], fg.in_shapes[name], fg.out_shapes[name])
            if size > self.max_synapses:
                left = int(self.max_synapses)
                raise _too_big(f"node '{name}' is a map of {size:,} connections, more than the {left:,} the budget "
                               "leaves", self.max_synapses, name)
            m, b = linear_map(fg.nodes[name], fg.in_shapes[name], fg.out_shapes[name])
            paths = {k: m if _is_identity(v) else (m @ v).tocsr() for k, v in paths.items()}
            bias = {k: m @ v for k, v in bias.items()}
            if b is not None:
                bias[0] = bias.get(0, 0.0) + b
        self.paths[name] = (paths, bias)
        return paths, bias

    def release(self, done: str) -> None:
        """Forget the composed maps no group after ``done`` (in graph order) can still ask for (memory)."""
        fg = self.fg
        pos = fg.order.index(done)
        later = [n for n in fg.order[pos + 1:] if is_group(fg, n) and n not in fg.inputs]
        wanted: set[str] = set()
        stack = [p for n in later for p in fg.preds[n]]
        while stack:  # stateless nodes upstream of a later group (through stateless nodes only)
            n = stack.pop()
            if n in wanted or is_group(fg, n):
                continue
            wanted.add(n)
            stack.extend(fg.preds[n])
        for n in [k for k in self.paths if k not in wanted and not is_group(fg, k)]:
            del self.paths[n]

    def incoming(self, name: str, skip: set[str] = frozenset()) -> tuple[Paths, dict[int, np.ndarray]]:
        """Sum over the predecessors of ``name`` (except ``skip``); a recurrent edge adds one step of lag."""
        fg = self.fg
        n_in = _size(fg.in_shapes[name])
        paths: Paths = {}
        bias: dict[int, np.ndarray] = {}
        for p in fg.preds[name]:
            if p in skip:
                continue
            shift = 1 if (p, name) in fg.recurrent else 0
            if shift and not is_group(fg, p) and not is_group(fg, name):
                raise _refuse("cannot run a recurrent loop made only of stateless nodes "
                              f"(edge '{p}' -> '{name}')", name)
            pp, pb = self.of(p)
            for (src, lag), m in pp.items():
                key = (src, lag + shift)
                paths[key] = m if key not in paths else paths[key] + m
            for lag, b in pb.items():
                bias[lag + shift] = bias.get(lag + shift, np.zeros(n_in)) + b
        return paths, bias


def _is_identity(m: sp.csr_matrix) -> bool:
    """``m`` is an identity matrix (a group's own output): composing with it is a copy, skipped (memory)."""
    n = m.shape[0]
    return (m.shape[1] == n and m.nnz == n and m.format == "csr" and bool(np.array_equal(m.indptr, np.arange(n + 1)))
            and bool(np.array_equal(m.indices, np.arange(n))) and bool(np.all(m.data == 1.0)))


def _index_dtype(n: int) -> type:
    """int32 for per-sample indices below 2**31 (half the memory of int64 for the largest CNNs), else int64."""
    return np.int32 if n < 2 ** 31 else np.int64


def _split_delays(paths: Paths, bias: dict[int, np.ndarray], d: np.ndarray) -> tuple[Paths, dict[int, np.ndarray]]:
    out: Paths = {}
    out_b: dict[int, np.ndarray] = {}
    for step in np.unique(d):
        mask = sp.diags((d == step).astype(np.float64), format="csr")
        for (src, lag), m in paths.items():
            part = (mask @ m).tocsr()
            part.eliminate_zeros()
            if part.nnz:
                key = (src, lag + int(step))
                out[key] = part if key not in out else out[key] + part
        for lag, b in bias.items():
            key = lag + int(step)
            out_b[key] = out_b.get(key, 0.0) + np.where(d == step, b, 0.0)
    return out, out_b


def pure_input_nodes(fg: FlatGraph) -> set[str]:
    """Nodes whose value depends on the inputs only: Inputs and stateless non-delay nodes fed only by such nodes."""
    pure: set[str] = set()
    for name in fg.order:
        kind = fg.type_of(name)
        if name in fg.inputs:
            pure.add(name)
        elif not is_group(fg, name) and kind != "Delay" and fg.preds[name] and all(
                p in pure and (p, name) not in fg.recurrent for p in fg.preds[name]):
            pure.add(name)
    return pure


def make_plan(fg: FlatGraph, input_projection: str = "current", max_synapses: float = float("inf")) -> Plan:
    """Split ``fg`` into groups and composed projections; refuses what Brian2 cannot express.

    ``input_projection``: ``"current"`` folds predecessors computable from the inputs alone into an external
    current; ``"synapses"`` turns every Input into a Brian2 group connected through ``Synapses``.
    ``max_synapses``: synapses per sample the memory budget allows; a graph with more is refused with
    ``ResourceLimitError`` as soon as that is known (a single map from its declared shapes before it is
    built, the total as projections are composed), before Brian2 allocates anything.
    """
    if input_projection not in ("current", "synapses"):
        raise ValueError(f"input_projection must be 'current' or 'synapses', got {input_projection!r}")
    pure = pure_input_nodes(fg)
    _check_direct_maps(fg, pure if input_projection == "current" else set(), max_synapses)
    comp = _Composer(fg, max_synapses)
    total = 0
    groups: dict[str, GroupSpec] = {}
    for name in fg.inputs:
        groups[name] = GroupSpec(name, fg.order.index(name), "Input", _size(fg.out_shapes[name]))
    projections: list[Projection] = []
    for index, name in enumerate(fg.order):
        kind = fg.type_of(name)
        if not is_group(fg, name) or kind == "Input":
            continue
        shape = fg.in_shapes[name]
        n = _size(shape)
        g = GroupSpec(name, index, kind, n)
        if kind in sem.SPIKING_TYPES:
            g.inclusive = fg.threshold_compare(name) == "inclusive"
        if kind == "Threshold":
            g.threshold = np.broadcast_to(np.asarray(fg.nodes[name].threshold, dtype=np.float64), shape).ravel().copy()
        else:
            g.coeff = fg.coefficients(name)
            opts = fg.options(name)
            g.reset = opts.reset
            if g.coeff.spiking and not opts.default_timing:
                g.timing, g.zero_target = opts.reset_timing, opts.zero_reset_target
            if opts.v_init is not None:
                g.v_init = np.broadcast_to(np.asarray(opts.v_init, dtype=np.float64), shape).ravel().copy()
            if opts.i_init is not None and g.cuba:
                g.i_init = np.broadcast_to(np.asarray(opts.i_init, dtype=np.float64), shape).ravel().copy()
        if input_projection == "current":
            g.folded = [p for p in fg.preds[name] if p in pure and (p, name) not in fg.recurrent]
        comp.max_synapses = max_synapses - total  # what the budget still allows: refuse before composing more
        paths, bias = comp.incoming(name, skip=set(g.folded))
        g.b0 = np.asarray(bias.pop(0, np.zeros(n)), dtype=np.float64).reshape(n)
        g.lag_bias = {lag: np.asarray(b, dtype=np.float64).reshape(n) for lag, b in sorted(bias.items())
                      if np.any(b != 0)}
        groups[name] = g
        comp.release(name)
        for src, lag in sorted(paths, key=lambda k: (fg.order.index(k[0]), k[1])):
            m = paths.pop((src, lag)).tocsc()  # column (pre) major, rows (post) sorted within a column
            m.sum_duplicates()
            m.sort_indices()
            m.eliminate_zeros()
            if not m.nnz:
                continue
            itype = _index_dtype(max(m.shape))
            pre = np.repeat(np.arange(m.shape[1], dtype=itype), np.diff(m.indptr))
            projections.append(Projection(src, name, int(lag), pre, m.indices.astype(itype, copy=False), m.data))
            total += int(m.nnz)
            del m
            if total > max_synapses:
                raise _too_big(f"the synapses up to node '{name}' number {total:,}", max_synapses, name)
    plan = Plan(fg, groups, projections, pure, input_projection)
    _check_schedule(plan)
    return plan


def _check_direct_maps(fg: FlatGraph, folded: set[str], max_synapses: float) -> None:
    """Refuse before composing anything when the maps between two groups alone exceed ``max_synapses``.

    A stateless node fed only by groups and feeding only groups is one projection by itself; its size
    (:func:`map_size`, from the declared shapes) is a lower bound of the synapses the plan will hold.
    """
    if max_synapses == float("inf"):
        return
    succs: dict[str, list[str]] = {n: [] for n in fg.order}
    for n in fg.order:
        for p in fg.preds[n]:
            succs[p].append(n)
    total, last = 0, ""
    for name in fg.order:
        kind = fg.type_of(name)
        if is_group(fg, name) or kind == "Delay" or name in folded or not fg.preds[name] or not succs[name]:
            continue
        if all(is_group(fg, p) and p not in fg.inputs for p in fg.preds[name]) and all(
                is_group(fg, q) for q in succs[name]):
            total += map_size(fg.nodes[name], fg.in_shapes[name], fg.out_shapes[name])
            last = name
    if total > max_synapses:
        raise _too_big(f"the maps between neuron layers alone hold {total:,} connections (up to node '{last}')",
                       max_synapses, last)


def _check_schedule(plan: Plan) -> None:
    """Refuse projections whose timing Brian2 cannot reproduce (analog values have no synaptic delay)."""
    for p in plan.projections:
        src = plan.groups[p.src]
        late = plan.position(p.src) >= plan.position(p.dst)  # the source runs after the target within a step
        if src.analog:
            if (p.lag, late) not in ((0, False), (1, True)):
                raise _refuse(f"cannot deliver the analog output of {src.kind} node '{p.src}' {p.lag} step(s) "
                              "late (only same-step or recurrent one-step edges carry analog values)", p.dst)
        elif src.is_input and p.lag > 0:
            continue  # allowed for spike inputs; checked at run time
        elif p.lag - int(late) < 0:
            raise _refuse(f"cannot order '{p.src}' before '{p.dst}' within a step", p.dst)
