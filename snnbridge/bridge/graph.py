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

    def type_of(self, name: str) -> str:
        return type(self.nodes[name]).__name__

    @property
    def is_recurrent(self) -> bool:
        return bool(self.recurrent)

    def node_types(self) -> set[str]:
        return {self.type_of(n) for n in self.nodes}

    def coefficients(self, name: str) -> sem.NeuronCoefficients:
        """The reference discrete-time constants of neuron node ``name`` (see semantics)."""
        return sem.neuron_coefficients(self.nodes[name], self.semantics)

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
            nodes.update(inner_nodes)
            edges.extend(inner_edges)
            ins = [full + "." + n for n, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [full + "." + n for n, v in node.nodes.items() if isinstance(v, nir.Output)]
            if not ins or not outs:
                raise GraphError("nested graph needs Input and Output nodes", node=full)
            sub_io[full] = (ins, outs)
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        s, d = prefix + src, prefix + dst
        srcs = sub_io[s][1] if s in sub_io else [s]
        dsts = sub_io[d][0] if d in sub_io else [d]
        edges.extend((a, b) for a in srcs for b in dsts)
    return nodes, edges


# --------------------------------------------------------------------------- checks


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


def _declared(node: nir.NIRNode, attr: str) -> Shape | None:
    t = getattr(node, attr, None) or {}
    for v in t.values():
        a = np.asarray(v, dtype=object).ravel()
        if a.size and all(x is not None for x in a):
            return tuple(int(x) for x in a)
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


def _toposort(nodes: dict, edges: list[tuple[str, str]], inputs: list[str]) -> tuple[list[str], set]:
    """Order nodes for a step; edges found closing a cycle by DFS from the inputs are recurrent."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
    state: dict[str, int] = {}
    post: list[str] = []
    back: set[tuple[str, str]] = set()

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

    for r in inputs + sorted(nodes):
        if r not in state:
            visit(r)
    return post[::-1], back


# --------------------------------------------------------------------------- entry point


def prepare(
    graph: nir.NIRGraph,
    dt: float | None = None,
    reset: str | None = None,
    integration: str | None = None,
) -> FlatGraph:
    """Check and flatten ``graph``; explicit ``dt``/``reset``/``integration`` override its metadata."""
    if not isinstance(graph, nir.NIRGraph):
        raise GraphError(f"expected a nir.NIRGraph, got {type(graph).__name__}")
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.NIRNode):
            raise GraphError(f"is a {type(node).__name__}, not a NIR node", node=name)
    nodes, edges = _flatten(graph)
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise GraphError(f"edge ({a} -> {b}) refers to a missing node", node=end)
    for name, node in nodes.items():
        _check_params(name, node)
    inputs = [n for n, v in nodes.items() if isinstance(v, nir.Input) and "." not in n]
    outputs = [n for n, v in nodes.items() if isinstance(v, nir.Output) and "." not in n]
    if not inputs:
        raise GraphError("graph has no Input node")
    if not outputs:
        raise GraphError("graph has no Output node")
    order, recurrent = _toposort(nodes, edges, inputs)
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        preds[b].append(a)
    for name in order:
        if not preds[name] and name not in inputs:
            raise GraphError("has no incoming edge (unreachable from any Input)", node=name)

    in_shapes: dict[str, Shape] = {}
    out_shapes: dict[str, Shape] = {}
    for name in order:
        node = nodes[name]
        if name in inputs:
            s = _declared(node, "input_type")
            if s is None:
                raise GraphError("Input node has no shape", node=name, field="input_type")
        else:
            ff = [p for p in preds[name] if (p, name) not in recurrent]
            shapes = {out_shapes[p] for p in ff if p in out_shapes}
            if len(shapes) > 1:
                raise GraphError(f"incoming edges have different shapes {sorted(shapes)}", node=name)
            if not shapes:  # only recurrent inputs: take declared
                s = _declared(node, "input_type")
                if s is None:
                    raise GraphError("cannot infer input shape", node=name)
            else:
                s = shapes.pop()
        in_shapes[name] = s
        out_shapes[name] = _out_shape(name, node, s)  # parameter checks name the field
        declared = None if name in inputs else _declared(node, "input_type")
        if int(getattr(node, "groups", 1) or 1) != 1:
            declared = None  # nir derives a grouped conv's input_type from the weight: wrong channel count
        if declared is not None and int(np.prod(declared)) != int(np.prod(s)):
            raise GraphError(f"declared input shape {declared} but receives {s}", node=name, field="input_type")
    for a, b in recurrent:
        if out_shapes[a] != in_shapes[b]:
            raise GraphError(f"recurrent edge from '{a}' has shape {out_shapes[a]}, expected {in_shapes[b]}",
                             node=b)

    semantics, meta = semantics_from_metadata(graph.metadata, dt=dt, reset=reset, integration=integration)
    node_reset = {}
    for name, node in nodes.items():
        r = (getattr(node, "metadata", None) or {}).get("reset")
        if isinstance(r, bytes):
            r = r.decode()
        if reset is None and r in sem.RESET_MODES:
            node_reset[name] = r
        else:
            node_reset[name] = semantics.reset
    return FlatGraph(nodes, order, preds, recurrent, in_shapes, out_shapes, inputs, outputs, semantics,
                     meta, node_reset)
