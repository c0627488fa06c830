"""Load, flatten and check a NIR graph into the form every backend compiles from.

:func:`prepare` turns a ``nir.NIRGraph`` (possibly nested, possibly recurrent,
possibly written by another tool) into a :class:`FlatGraph`: one flat dict of
nodes, summed incoming edges, a topological order, the set of recurrent edges
(the one-step-delayed ones, see :mod:`snnbridge.bridge.semantics`) and every
node's input/output shape (without batch).  Every defect is reported as one
:class:`~snnbridge.errors.GraphError` that names the node and field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np

from snnbridge.bridge import semantics as sem
from snnbridge.bridge.metadata import semantics_from_metadata
from snnbridge.errors import GraphError

Shape = tuple[int, ...]

# parameters each node type must carry (name -> may it be None)
_REQUIRED: dict[str, tuple[str, ...]] = {
    "Affine": ("weight", "bias"),
    "Linear": ("weight",),
    "Scale": ("scale",),
    "Conv1d": ("weight", "stride", "padding", "dilation", "groups"),
    "Conv2d": ("weight", "stride", "padding", "dilation", "groups"),
    "AvgPool2d": ("kernel_size",),
    "SumPool2d": ("kernel_size",),
    "Flatten": ("start_dim", "end_dim"),
    "Threshold": ("threshold",),
    "LIF": ("tau", "r", "v_leak", "v_threshold"),
    "IF": ("r", "v_threshold"),
    "CubaLIF": ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "w_in"),
    "LI": ("tau", "r", "v_leak"),
    "I": ("r",),
    "CubaLI": ("tau_syn", "tau_mem", "r", "v_leak", "w_in"),
    "Delay": ("delay",),
    "Input": (),
    "Output": (),
}
_POSITIVE = {"tau", "tau_syn", "tau_mem"}


@dataclass
class FlatGraph:
    """A checked, flattened NIR graph.

    Attributes:
        nodes: node name -> NIR node (no nested graphs; nested names are ``outer.inner``).
        order: evaluation order within one step (topological over non-recurrent edges).
        preds: node name -> names of the nodes feeding it (summed).
        recurrent: edges ``(src, dst)`` that close a cycle; they carry the previous step's value.
        in_shapes / out_shapes: per-sample shapes, batch and time excluded.
        inputs / outputs: names of the ``Input`` and ``Output`` nodes.
        semantics: dt, reset, integration (from metadata, or defaults, or overrides).
        metadata: the top-level graph metadata as plain Python values.
        node_reset: per-node reset mode (a node's own ``metadata['reset']`` overrides the graph's).
        node_options: per spiking/neuron node, its :class:`~snnbridge.bridge.semantics.NeuronOptions` (reset mode,
            reset timing, initial state) from the node's metadata.
        notes: what preparation normalised in a graph written by another tool (batch axis, Flatten convention).
    """

    nodes: dict[str, nir.NIRNode]
    order: list[str]
    preds: dict[str, list[str]]
    recurrent: set[tuple[str, str]]
    in_shapes: dict[str, Shape]
    out_shapes: dict[str, Shape]
    inputs: list[str]
    outputs: list[str]
    semantics: sem.Semantics
    metadata: dict = field(default_factory=dict)
    node_reset: dict[str, str] = field(default_factory=dict)
    node_options: dict[str, sem.NeuronOptions] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def options(self, name: str) -> sem.NeuronOptions:
        """The step options of neuron node ``name`` (defaults: the graph's reset, immediate timing, zero state)."""
        return self.node_options.get(name) or sem.NeuronOptions(reset=self.node_reset.get(name, self.semantics.reset))

    def type_of(self, name: str) -> str:
        return type(self.nodes[name]).__name__

    @property
    def is_recurrent(self) -> bool:
        return bool(self.recurrent)

    def node_types(self) -> set[str]:
        return {self.type_of(n) for n in self.nodes}

    def coefficients(self, name: str) -> sem.NeuronCoefficients:
        """The reference discrete-time constants of neuron node ``name`` (see semantics)."""
        return sem.neuron_coefficients(self.nodes[name], self.semantics, self.threshold_compare(name))

    def threshold_compare(self, name: str) -> str:
        """``strict`` or ``inclusive``: how spiking/Threshold node ``name`` compares with its threshold."""
        if name in self.node_options:
            return self.node_options[name].threshold
        own = _meta_str(getattr(self.nodes[name], "metadata", None) or {}, "threshold")
        return own if own in sem.THRESHOLD_COMPARES else self.semantics.threshold

    def parameter_count(self, name: str) -> int:
        node = self.nodes[name]
        return int(sum(np.asarray(v).size for k, v in _params(node).items()))


def _params(node: nir.NIRNode) -> dict[str, np.ndarray]:
    out = {}
    for k, v in vars(node).items():
        if k in ("metadata", "input_type", "output_type", "nodes", "edges"):
            continue
        if isinstance(v, np.ndarray) and v.dtype.kind in "fiub":
            out[k] = v
    return out


# --------------------------------------------------------------------------- flattening


def _flatten(graph: nir.NIRGraph, prefix: str = "") -> tuple[dict, list]:
    """Inline nested NIRGraphs; their Input/Output nodes become pass-through nodes."""
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    sub_io: dict[str, tuple[list[str], list[str]]] = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = _flatten(node, full + ".")
            for k in inner_nodes:
                if k in nodes:
                    raise GraphError("two nodes have this name once nested graphs are flattened", node=k)
            nodes.update(inner_nodes)
            edges.extend(inner_edges)
            ins = [full + "." + n for n, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [full + "." + n for n, v in node.nodes.items() if isinstance(v, nir.Output)]
            if not ins or not outs:
                raise GraphError("nested graph needs Input and Output nodes", node=full)
            sub_io[full] = (ins, outs)
        else:
            if full in nodes:
                raise GraphError("two nodes have this name once nested graphs are flattened", node=full)
            nodes[full] = node
    for src, dst in graph.edges:
        s, d = prefix + src, prefix + dst
        srcs = sub_io[s][1] if s in sub_io else [s]
        dsts = sub_io[d][0] if d in sub_io else [d]
        edges.extend((a, b) for a in srcs for b in dsts)
    return nodes, edges


# --------------------------------------------------------------------------- checks


_SKIP_ATTRS = ("metadata", "input_type", "output_type", "nodes", "edges")


def _normalise(name: str, node: nir.NIRNode) -> nir.NIRNode:
    """A copy of ``node`` whose numeric parameters are numpy arrays (torch tensors and Python/numpy scalars, as
    other tools write them, are converted); non-real or non-numeric parameters are refused by name."""
    import copy

    changed = {}
    for k, v in vars(node).items():
        if k in _SKIP_ATTRS or v is None or isinstance(v, (bool, nir.NIRNode)):
            continue
        if isinstance(v, (str, bytes)) or (isinstance(v, np.ndarray) and v.dtype.kind in "SUO"):
            text = v.decode(errors="replace") if isinstance(v, bytes) else v
            if k == "padding" and isinstance(text, str) and text in ("same", "valid"):
                continue
            raise GraphError(f"is text ({str(text)[:40]!r}), not a number", node=name, field=k)
        if type(v).__module__.startswith("torch"):
            v = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
            changed[k] = v
        elif isinstance(v, (int, float, complex, np.generic)):
            changed[k] = v = np.asarray(v)
        if isinstance(v, np.ndarray):
            if v.dtype.kind == "c":
                raise GraphError("has complex values; NIR parameters must be real", node=name, field=k)
            if v.dtype.kind not in "fiub":
                raise GraphError(f"is not numeric (dtype {v.dtype})", node=name, field=k)
    if not changed:
        return node
    out = copy.copy(node)
    for k, v in changed.items():
        # integer-valued hyper-parameters (stride, groups, ...) stay integers; the rest become float64
        object.__setattr__(out, k, v if v.dtype.kind in "iub" else v.astype(np.float64))
    return out


def _check_params(name: str, node: nir.NIRNode) -> None:
    kind = type(node).__name__
    if kind not in _REQUIRED:
        raise GraphError(
            f"unknown node type {kind}; supported: {', '.join(sorted(sem.SUPPORTED_TYPES))}", node=name
        )
    for p in _REQUIRED[kind]:
        if getattr(node, p, None) is None:
            raise GraphError("missing parameter", node=name, field=p)
    for p, arr in _params(node).items():
        a = np.asarray(arr)
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            bad = "NaN" if np.isnan(a).any() else "Inf"
            raise GraphError(f"contains {bad}", node=name, field=p)
        if p in _POSITIVE and np.any(a <= 0):
            raise GraphError("time constants must be > 0", node=name, field=p)
        if p == "delay" and np.any(a < 0):
            raise GraphError("delays must be >= 0", node=name, field=p)


def _meta_str(meta: dict, key: str) -> str | None:
    v = meta.get(key)
    if isinstance(v, bytes):
        v = v.decode(errors="replace")
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v.item()
        v = v.decode(errors="replace") if isinstance(v, bytes) else v
    return None if v is None else str(v)


def _node_options(name: str, node: nir.NIRNode, graph_reset: str, override: bool,
                  graph_threshold: str = "strict") -> sem.NeuronOptions:
    """A neuron node's :class:`~snnbridge.bridge.semantics.NeuronOptions` from its metadata (``override``: the
    caller's explicit reset wins over the node's)."""
    meta = getattr(node, "metadata", None) or {}
    reset = _meta_str(meta, "reset")
    reset = graph_reset if override or reset not in sem.RESET_MODES else reset
    if meta.get("reset") is not None and not override and _meta_str(meta, "reset") not in sem.RESET_MODES:
        raise GraphError(f"unknown reset mode {_meta_str(meta, 'reset')!r}; one of {sem.RESET_MODES}", node=name,
                         field="metadata.reset")
    timing = _meta_str(meta, "reset_timing") or "immediate"
    compare = _meta_str(meta, "threshold") if isinstance(meta.get("threshold"), (str, bytes, np.ndarray)) else None
    if compare is not None and compare not in sem.THRESHOLD_COMPARES:
        raise GraphError(f"threshold comparison must be one of {sem.THRESHOLD_COMPARES}, got {compare!r}", node=name,
                         field="metadata.threshold")
    target = _meta_str(meta, "zero_reset_target") or "state"
    init = {}
    for key in ("v_init", "i_init"):
        if meta.get(key) is not None:
            a = np.asarray(meta[key])
            if a.dtype.kind not in "fiu" or not np.all(np.isfinite(a)):
                raise GraphError("must be finite real numbers", node=name, field=f"metadata.{key}")
            init[key] = a.astype(np.float64)
    try:
        opts = sem.NeuronOptions(reset=reset, reset_timing=timing, zero_reset_target=target,
                                 threshold=compare or graph_threshold, **init)
    except ValueError as e:
        field = "reset_timing" if "reset_timing" in str(e) else "zero_reset_target"
        raise GraphError(str(e), node=name, field=f"metadata.{field}") from None
    if not opts.default_timing and opts.reset == "zero" and np.any(_f64_or_zero(node, "v_reset") != 0):
        raise GraphError(f"reset timing '{opts.reset_timing}' with a zero reset needs v_reset = 0", node=name,
                         field="v_reset")
    return opts


def _f64_or_zero(node, attr: str) -> np.ndarray:
    v = getattr(node, attr, None)
    return np.zeros(1) if v is None else np.asarray(v, dtype=np.float64)


_DECAY_FIELD = {"LIF": ("tau", None), "LI": ("tau", None), "CubaLIF": ("tau_mem", "tau_syn"),
                "CubaLI": ("tau_mem", "tau_syn")}


def _check_coefficients(name: str, node: nir.NIRNode, semantics: sem.Semantics, shape: Shape) -> None:
    """Refuse, naming the field, discrete constants no backend can run: non-finite, a decay outside [0, 1], pinned
    constants that disagree with the node's own parameters, or initial states that do not fit the node."""
    kind = type(node).__name__
    if kind not in sem.NEURON_TYPES:
        return
    computed = sem._computed_coefficients(node, semantics)  # before pinning
    pinned = sem.pinned_coefficients(node, semantics.dt)
    for key, arr in pinned.items():
        ref = getattr(computed, key)
        if ref is None:
            raise GraphError(f"pinned constant '{key}' does not apply to a {kind} node", node=name,
                             field=f"metadata.{key}")
        if not _broadcast_ok(arr, shape) or not np.all(np.isfinite(arr)):
            raise GraphError(f"must be finite and fit the node shape {shape}", node=name, field=f"metadata.{key}")
        if not np.allclose(arr, ref, rtol=1e-9, atol=1e-12):
            worst = float(np.max(np.abs(np.broadcast_to(arr, np.broadcast_shapes(np.shape(arr), np.shape(ref)))
                                        - ref)))
            raise GraphError(f"pinned constant disagrees with the node's own parameters at dt={semantics.dt:g} "
                             f"(by up to {worst:.3g}); the file is inconsistent", node=name, field=f"metadata.{key}")
    c = sem.neuron_coefficients(node, semantics)
    tau_field, syn_field = _DECAY_FIELD.get(kind, (None, None))
    for key, fld in (("decay", tau_field), ("syn_decay", syn_field)):
        arr = getattr(c, key)
        if arr is None or fld is None:
            continue
        if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 1):
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            raise GraphError(f"gives a decay of {lo:g}..{hi:g} at dt={semantics.dt:g} ({semantics.integration}); "
                             f"every backend needs it in [0, 1] (dt > tau under Euler?): use integration='exact' "
                             f"or a smaller dt", node=name, field=fld)
    for key in ("gain", "bias", "syn_gain"):
        arr = getattr(c, key)
        if arr is not None and not np.all(np.isfinite(arr)):
            raise GraphError(f"gives a non-finite {key} at dt={semantics.dt:g}", node=name,
                             field=tau_field or "r")
    meta = getattr(node, "metadata", None) or {}
    for key in ("v_init", "i_init"):
        if meta.get(key) is not None and not _broadcast_ok(np.asarray(meta[key]), shape):
            raise GraphError(f"shape {np.shape(meta[key])} does not fit the node shape {shape}", node=name,
                             field=f"metadata.{key}")


def _declared(node: nir.NIRNode, attr: str, name: str = "?") -> Shape | None:
    """The shape a node declares in ``input_type``/``output_type`` (whole numbers >= 0), or ``None``."""
    t = getattr(node, attr, None) or {}
    if not isinstance(t, dict):
        raise GraphError(f"is a {type(t).__name__}, not a dict of shapes", node=name, field=attr)
    for v in t.values():
        a = np.asarray(v, dtype=object).ravel()
        if a.size and all(x is not None for x in a):
            try:
                shape = tuple(int(x) for x in a)
            except (TypeError, ValueError):
                raise GraphError("shape is not a list of whole numbers", node=name, field=attr) from None
            if any(d < 0 for d in shape) or any(float(x) != int(x) for x in a if isinstance(x, (float, np.floating))):
                raise GraphError(f"shape {list(a)} is not a list of whole numbers >= 0", node=name, field=attr)
            return shape
    return None


def _broadcast_ok(param: np.ndarray, shape: Shape) -> bool:
    try:
        np.broadcast_shapes(np.shape(param), shape)
    except ValueError:
        return False
    return np.broadcast_shapes(np.shape(param), shape) == tuple(shape)


def _out_shape(name: str, node: nir.NIRNode, s: Shape) -> Shape:
    """Output shape of ``node`` given input shape ``s``; raises on a mismatch."""
    import torch

    kind = type(node).__name__
    if kind in ("Affine", "Linear"):
        w = np.asarray(node.weight)
        if w.ndim != 2:
            raise GraphError(f"weight must be 2-D, got shape {w.shape}", node=name, field="weight")
        if s[-1:] != (w.shape[1],):
            raise GraphError(f"weight expects input size {w.shape[1]}, gets shape {s}", node=name, field="weight")
        if kind == "Affine" and np.asarray(node.bias).size not in (1, w.shape[0]):
            raise GraphError(f"bias has {np.asarray(node.bias).size} entries for {w.shape[0]} outputs",
                             node=name, field="bias")
        return s[:-1] + (w.shape[0],)
    if kind in ("Conv2d", "Conv1d", "AvgPool2d", "SumPool2d", "Flatten"):
        nd = {"Conv2d": 3, "Conv1d": 2, "AvgPool2d": 3, "SumPool2d": 3}.get(kind)
        if nd and len(s) != nd:
            raise GraphError(f"expects a {nd}-D input (channels first), gets shape {s}", node=name)
        if kind.startswith("Conv"):
            w = np.asarray(node.weight)
            if w.ndim != nd + 1 or w.shape[1] * int(node.groups) != s[0]:
                raise GraphError(f"weight shape {w.shape} does not fit input shape {s}", node=name, field="weight")
            b = getattr(node, "bias", None)
            if b is not None and np.asarray(b).size not in (1, w.shape[0]):
                raise GraphError(f"bias has {np.asarray(b).size} entries for {w.shape[0]} maps", node=name,
                                 field="bias")
        from snnbridge.bridge import limits  # the budget, decided before the probe allocates anything

        limits.check_shape((1,) + s, 4, f"node '{name}' ({kind}): probing input shape {list(s)}")
        if nd and kind != "Flatten":  # output bound from the declared padding/stride: (in + 2p) // stride + 1
            chans = int(np.asarray(node.weight).shape[0]) if kind.startswith("Conv") else int(s[0])
            out_n = chans
            for i, size in enumerate(s[1:]):
                try:
                    pad = int(np.broadcast_to(np.asarray(getattr(node, "padding", 0)), (len(s) - 1,))[i])
                    stride = int(np.broadcast_to(np.asarray(getattr(node, "stride", 1)), (len(s) - 1,))[i])
                except (TypeError, ValueError):  # e.g. padding="same": the output is no larger than the input
                    pad, stride = 0, 1
                out_n *= (int(size) + 2 * max(pad, 0)) // max(stride, 1) + 1
            limits.check_bytes(out_n * 4, f"node '{name}' ({kind}): output of input shape {list(s)}",
                               f"about {out_n:,} values")
        x = torch.zeros((1,) + s)
        params = {}
        if kind.startswith("Conv"):
            params["weight"] = torch.zeros(np.asarray(node.weight).shape)
        try:
            y = sem.stateless_forward(node, x, params)
        except (RuntimeError, ValueError, IndexError) as e:
            raise GraphError(f"cannot apply to input shape {s}: {e}", node=name) from None
        return tuple(y.shape[1:])
    if kind == "Scale":
        if not _broadcast_ok(node.scale, s):
            raise GraphError(f"shape {np.shape(node.scale)} does not fit input {s}", node=name, field="scale")
        return s
    if kind in sem.NEURON_TYPES or kind in ("Threshold", "Delay"):
        for p, arr in _params(node).items():
            if not _broadcast_ok(arr, s):
                raise GraphError(f"shape {np.shape(arr)} does not fit input shape {s}", node=name, field=p)
        return s
    return s  # Input / Output


_STATEFUL = set(sem.NEURON_TYPES) | {"Delay"}


def _toposort(nodes: dict, edges: list[tuple[str, str]], inputs: list[str]) -> tuple[list[str], set]:
    """Order nodes for a step and choose the recurrent (one-step-delayed) edges.

    A depth-first search from the inputs finds the edges that close a cycle; each such edge is moved back along
    its cycle to the nearest edge that *leaves a stateful node* (neuron or Delay), so that the stateless nodes of
    a loop (e.g. snnTorch's recurrent ``nn.Linear`` with its bias) compute on the previous step's spikes within
    the current step.  A cycle without any stateful node is refused.
    """
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
    back, post = _back_edges(succ, inputs, sorted(nodes))
    stateful = {n for n, v in nodes.items() if type(v).__name__ in _STATEFUL}
    recurrent: set[tuple[str, str]] = set()
    for a, b in sorted(back):
        path = _path(succ, b, a)  # b -> ... -> a closes the cycle through (a, b)
        cycle = path + [b]
        cut = None
        for i in range(len(cycle) - 2, -1, -1):  # walk back from a towards b
            if cycle[i] in stateful:
                cut = (cycle[i], cycle[i + 1])
                break
        if cut is None:
            raise GraphError(f"is on a cycle without any neuron or Delay node ({' -> '.join(cycle)}); such a loop "
                             f"has no defined value within a step", node=a)
        recurrent.add(cut)
    if recurrent == back:
        return post[::-1], recurrent
    ff = {n: [m for m in succ[n] if (n, m) not in recurrent] for n in nodes}
    order, leftover = _kahn(ff, inputs, sorted(nodes))
    if leftover:  # moving a cut created a cycle elsewhere: fall back to the DFS back edges
        recurrent = set(back)
        for a, b in back:
            if a not in stateful and b not in stateful and not any(x in stateful for x in _path(succ, b, a)):
                raise GraphError("is on a cycle without any neuron or Delay node", node=a)
        ff = {n: [m for m in succ[n] if (n, m) not in recurrent] for n in nodes}
        order, leftover = _kahn(ff, inputs, sorted(nodes))
    return order, recurrent


def _back_edges(succ: dict[str, list[str]], inputs: list[str],
                rest: list[str]) -> tuple[set[tuple[str, str]], list[str]]:
    """Edges closing a cycle in a depth-first search from the inputs, and the search's post-order."""
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    post: list[str] = []

    def visit(root: str) -> None:
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            n, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[n] = 2
                post.append(n)
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((n, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))

    for r in inputs + rest:
        if r not in state:
            visit(r)
    return back, post


def _path(succ: dict[str, list[str]], src: str, dst: str) -> list[str]:
    """A shortest path ``src -> ... -> dst`` (breadth first; ``[src]`` when equal)."""
    if src == dst:
        return [src]
    prev = {src: None}
    queue = [src]
    for n in queue:
        for m in succ[n]:
            if m not in prev:
                prev[m] = n
                if m == dst:
                    out = [m]
                    while prev[out[-1]] is not None:
                        out.append(prev[out[-1]])
                    return out[::-1]
                queue.append(m)
    return [src, dst]


def _kahn(ff: dict[str, list[str]], inputs: list[str], rest: list[str]) -> tuple[list[str], list[str]]:
    """Topological order of the feed-forward edges, depth-first from the inputs (stable for a given graph)."""
    indeg = {n: 0 for n in ff}
    for n in ff:
        for m in ff[n]:
            indeg[m] += 1
    order: list[str] = []
    seen: set[str] = set()
    stack = [n for n in reversed(inputs + rest) if indeg[n] == 0]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        order.append(n)
        for m in reversed(ff[n]):
            indeg[m] -= 1
            if indeg[m] == 0:
                stack.append(m)
    return order, [n for n in ff if n not in seen]


# --------------------------------------------------------------------------- entry point


def prepare(
    graph: nir.NIRGraph,
    dt: float | None = None,
    reset: str | None = None,
    integration: str | None = None,
) -> FlatGraph:
    """Check and flatten ``graph``; explicit ``dt``/``reset``/``integration`` override its metadata.

    Graphs written by other tools are normalised where the intent is unambiguous (torch tensors and scalars as
    parameters; an Input whose declared shape carries a leading batch axis of 1; a Flatten written in the
    batch-including axis convention feeding a dense layer) and each normalisation is listed in
    ``FlatGraph.notes``; anything else that does not fit is refused with a :class:`GraphError` naming node and field.
    """
    if not isinstance(graph, nir.NIRGraph):
        raise GraphError(f"expected a nir.NIRGraph, got {type(graph).__name__}")
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.NIRNode):
            raise GraphError(f"is a {type(node).__name__}, not a NIR node", node=name)
    nodes, edges = _flatten(graph)
    seen_edges: set[tuple[str, str]] = set()
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise GraphError(f"edge ({a} -> {b}) refers to a missing node", node=end)
        if (a, b) in seen_edges:
            raise GraphError(f"edge ({a} -> {b}) appears twice (its input would be summed twice)", node=b)
        seen_edges.add((a, b))
    for name in list(nodes):
        nodes[name] = _normalise(name, nodes[name])
        _check_params(name, nodes[name])
    inputs = [n for n, v in nodes.items() if isinstance(v, nir.Input) and "." not in n]
    outputs = [n for n, v in nodes.items() if isinstance(v, nir.Output) and "." not in n]
    if not inputs:
        raise GraphError("graph has no Input node")
    if not outputs:
        raise GraphError("graph has no Output node")
    order, recurrent = _toposort(nodes, edges, inputs)
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    for name in order:
        if not preds[name] and name not in inputs:
            raise GraphError("has no incoming edge (unreachable from any Input)", node=name)

    notes: list[str] = []
    in_shapes: dict[str, Shape] = {}
    out_shapes: dict[str, Shape] = {}
    for name in order:
        node = nodes[name]
        if name in inputs:
            s = _declared(node, "input_type", name)
            if s is None:
                raise GraphError("Input node has no shape", node=name, field="input_type")
            s = _drop_batch_axis(name, s, [nodes[m] for m in succs[name]], notes)
        else:
            ff = [p for p in preds[name] if (p, name) not in recurrent]
            shapes = {out_shapes[p] for p in ff if p in out_shapes}
            if len(shapes) > 1:
                raise GraphError(f"incoming edges have different shapes {sorted(shapes)}", node=name)
            if not shapes:  # only recurrent inputs: take declared
                s = _declared(node, "input_type", name)
                if s is None:
                    raise GraphError("cannot infer input shape", node=name)
            else:
                s = shapes.pop()
        if type(node).__name__ == "Flatten":
            nodes[name] = node = _flatten_convention(name, node, s, [nodes[m] for m in succs[name]], notes)
        in_shapes[name] = s
        out_shapes[name] = _out_shape(name, node, s)  # parameter checks name the field
        declared = None if name in inputs else _declared(node, "input_type", name)
        if int(getattr(node, "groups", 1) or 1) != 1:
            declared = None  # nir derives a grouped conv's input_type from the weight: wrong channel count
        if nodes[name] is not graph_node(graph, name):
            declared = None  # normalised by snnbridge: its declared type is the writer's
        if declared is not None and int(np.prod(declared)) != int(np.prod(s)):
            raise GraphError(f"declared input shape {declared} but receives {s}", node=name, field="input_type")
    for a, b in recurrent:
        if out_shapes[a] != in_shapes[b]:
            raise GraphError(f"recurrent edge from '{a}' has shape {out_shapes[a]}, expected {in_shapes[b]}",
                             node=b)

    semantics, meta = semantics_from_metadata(graph.metadata, dt=dt, reset=reset, integration=integration)
    node_reset: dict[str, str] = {}
    node_options: dict[str, sem.NeuronOptions] = {}
    for name, node in nodes.items():
        if type(node).__name__ in sem.NEURON_TYPES:
            opts = _node_options(name, node, semantics.reset, override=reset is not None,
                                 graph_threshold=semantics.threshold)
            node_options[name] = opts
            node_reset[name] = opts.reset
            _check_coefficients(name, node, semantics, in_shapes[name])
        else:
            r = _meta_str(getattr(node, "metadata", None) or {}, "reset")
            node_reset[name] = r if reset is None and r in sem.RESET_MODES else semantics.reset
    return FlatGraph(nodes, order, preds, recurrent, in_shapes, out_shapes, inputs, outputs, semantics,
                     meta, node_reset, node_options, notes)


def graph_node(graph: nir.NIRGraph, name: str):
    """The node called ``name`` (``outer.inner`` for nested graphs) in the unflattened ``graph``."""
    node = graph
    for part in name.split("."):
        node = node.nodes.get(part) if isinstance(node, nir.NIRGraph) else None
        if node is None:
            # a node name may itself contain dots: look it up whole at this level
            return graph.nodes.get(name)
    return node


_RANK = {"Conv2d": 3, "AvgPool2d": 3, "SumPool2d": 3, "Conv1d": 2, "Affine": 1, "Linear": 1}


def _drop_batch_axis(name: str, s: Shape, consumers: list, notes: list[str]) -> Shape:
    """``s`` without a leading batch axis when an Input declares one (``[1, *shape]``, or one axis more than
    every convolution/pooling consumer takes); otherwise ``s``."""
    ranks = {_RANK.get(type(c).__name__) for c in consumers}
    if len(s) < 2 or None in ranks or len(ranks) != 1:
        return s
    rank = ranks.pop()
    if len(s) == rank + 1 and (s[0] == 1 or rank >= 2):
        notes.append(f"Input '{name}': declared shape {list(s)} has a leading batch axis; using {list(s[1:])}")
        return s[1:]
    return s


def _flatten_convention(name: str, node, s: Shape, consumers: list, notes: list[str]):
    """A Flatten written with batch-including dims (``start_dim=1`` = first sample axis, as torch writes it) that
    feeds only dense layers taking the whole sample becomes NIR's batch-excluding form."""
    import copy

    start, end = int(node.start_dim), int(node.end_dim)
    if start < 1 or not consumers or any(type(c).__name__ not in ("Affine", "Linear") for c in consumers):
        return node
    size = int(np.prod(s))
    if any(np.asarray(c.weight).ndim != 2 or np.asarray(c.weight).shape[1] != size for c in consumers):
        return node
    as_written = _flat_shape(s, start, end)
    shifted = _flat_shape(s, start - 1, end - 1 if end >= 1 else end)
    if as_written == (size,) or shifted != (size,):
        return node
    out = copy.copy(node)
    object.__setattr__(out, "start_dim", start - 1)
    object.__setattr__(out, "end_dim", end - 1 if end >= 1 else end)
    notes.append(f"Flatten '{name}': start_dim={start}, end_dim={end} counts the batch axis; read as "
                 f"start_dim={start - 1}, end_dim={out.end_dim}")
    return out


def _flat_shape(s: Shape, start: int, end: int) -> Shape | None:
    n = len(s)
    a = start if start >= 0 else n + start
    b = end if end >= 0 else n + end
    if not (0 <= a <= b < n):
        return None
    return s[:a] + (int(np.prod(s[a:b + 1])),) + s[b + 1:]
