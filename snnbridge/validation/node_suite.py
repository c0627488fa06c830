"""Node-level conformance cases, in the spirit of ONNX's backend tests.

One small graph per NIR primitive and per parameter edge case (zero and
negative weights, thresholds hit exactly, ``v_leak != 0``, ``r != 1``,
stride/padding, non-square pools, recurrence, fan-in), each with seeded inputs
and the semantics to run it under.  :func:`table1_case` builds every Table-1
structure with random weights scaled so that every layer fires.

Use them to test a backend::

    for case in node_cases():
        rec = backends.get("norse").run(case.graph, case.inputs, **case.semantics)
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field

import nir
import numpy as np
import torch

from snnbridge.bridge.metadata import make_metadata
from snnbridge.bridge.semantics import Semantics


@dataclass
class Case:
    """A conformance case: ``graph`` run on ``inputs`` ``[T, B, ...]`` with ``semantics`` (dt/reset/integration)."""

    name: str
    graph: nir.NIRGraph
    inputs: torch.Tensor
    semantics: dict = field(default_factory=dict)
    nodes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Case({self.name})"


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _spikes(shape, p: float, seed: int, T: int = 40, B: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((T, B) + tuple(shape), generator=g) < p).double()


def chain(nodes: list[tuple[str, nir.NIRNode]], in_shape, out_shape, sem: Semantics | None = None,
          extra_edges: list[tuple[str, str]] = ()) -> nir.NIRGraph:
    """``input -> nodes... -> output`` as a type-checked NIR graph (plus ``extra_edges``)."""
    all_nodes = {"input": nir.Input(input_type={"input": np.array(in_shape)})}
    edges = []
    prev = "input"
    for name, node in nodes:
        all_nodes[name] = node
        edges.append((prev, name))
        prev = name
    all_nodes["output"] = nir.Output(output_type={"output": np.array(out_shape)})
    edges.append((prev, "output"))
    edges.extend(extra_edges)
    meta = make_metadata(sem) if sem is not None else {}
    return nir.NIRGraph(nodes=all_nodes, edges=edges, metadata=meta, type_check=False)


def _lif(n, tau=0.01, r=1.0, v_leak=0.0, thr=1.0, v_reset=0.0):
    f = lambda v: np.broadcast_to(np.asarray(v, dtype=np.float64), n if isinstance(n, tuple) else (n,)).copy()  # noqa: E731
    return nir.LIF(tau=f(tau), r=f(r), v_leak=f(v_leak), v_threshold=f(thr), v_reset=f(v_reset))


def _affine(n_out, n_in, seed, scale=1.0, bias=True):
    r = _rng(seed)
    w = r.normal(0, scale, (n_out, n_in))
    w[0, :] = 0.0  # a silent row: zero weights
    w[1, :] = -np.abs(w[1, :])  # an inhibited row: negative weights
    if bias:
        return nir.Affine(weight=w, bias=r.normal(0, 0.1 * scale, n_out))
    return nir.Linear(weight=w)


def node_cases() -> list[Case]:
    """Every primitive and edge case, each a small graph with seeded spike inputs."""
    cases: list[Case] = []
    n_in, n = 6, 8
    x = _spikes((n_in,), 0.4, 1)
    dt = 1e-3

    def add(name, nodes, out_shape, inputs=x, in_shape=(n_in,), extra=(), **sem):
        s = Semantics(dt=sem.pop("dt", dt), **sem)
        cases.append(Case(name, chain(nodes, in_shape, out_shape, s, list(extra)), inputs,
                          {"dt": s.dt, "reset": s.reset, "integration": s.integration}))

    for reset in ("zero", "subtract", "none"):
        add(f"lif_{reset}", [("fc", _affine(n, n_in, 2, 2.0)), ("lif", _lif(n, tau=0.004, r=2.0, thr=1.0))],
            (n,), reset=reset)
    add("lif_exact", [("fc", _affine(n, n_in, 3, 2.0)), ("lif", _lif(n, tau=0.004, r=2.0))], (n,),
        integration="exact")
    add("lif_leak_reset", [("fc", _affine(n, n_in, 4, 1.0)),
                           ("lif", _lif(n, tau=0.005, r=0.5, v_leak=1.5, thr=1.0, v_reset=-0.5))], (n,))
    add("lif_dt_1e-4", [("fc", _affine(n, n_in, 5, 30.0)), ("lif", _lif(n, tau=0.0025, r=1.0, thr=0.1))],
        (n,), dt=1e-4)
    for reset in ("zero", "subtract"):
        add(f"if_{reset}", [("fc", _affine(n, n_in, 6, 0.8)),
                            ("if", nir.IF(r=np.full(n, 1.0), v_threshold=np.full(n, 1.0),
                                          v_reset=np.zeros(n)))], (n,), reset=reset)
    # thresholds hit exactly (dyadic numbers, exact in float32 and float64): v = 0.5 must not fire
    w = np.full((n, n_in), 0.0)
    w[:, 0] = 0.25
    exact_in = torch.zeros((8, 2, n_in), dtype=torch.float64)
    exact_in[:, :, 0] = 1.0
    add("if_threshold_exact", [("fc", nir.Linear(weight=w)),
                               ("if", nir.IF(r=np.full(n, 1.0), v_threshold=np.full(n, 0.5),
                                             v_reset=np.zeros(n)))], (n,), inputs=exact_in, reset="zero")
    add("lif_threshold_exact", [("fc", nir.Linear(weight=w)),
                                ("lif", _lif(n, tau=2e-3, r=4.0, thr=0.5))], (n,), inputs=exact_in, reset="subtract")
    add("li", [("fc", _affine(n, n_in, 7)), ("li", nir.LI(tau=np.full(n, 0.003), r=np.full(n, 1.5),
                                                           v_leak=np.full(n, 0.1)))], (n,))
    add("i", [("fc", _affine(n, n_in, 8)), ("i", nir.I(r=np.full(n, 0.7)))], (n,))
    for reset in ("zero", "subtract"):
        add(f"cubalif_{reset}", [("fc", _affine(n, n_in, 9, 1.5)),
                                 ("cuba", nir.CubaLIF(tau_syn=np.full(n, 0.002), tau_mem=np.full(n, 0.004),
                                                      r=np.full(n, 2.0), v_leak=np.full(n, 0.0),
                                                      v_threshold=np.full(n, 0.5), v_reset=np.zeros(n),
                                                      w_in=np.full(n, 1.5)))], (n,), reset=reset)
    add("cubali", [("fc", _affine(n, n_in, 10)),
                   ("cubali", nir.CubaLI(tau_syn=np.full(n, 0.002), tau_mem=np.full(n, 0.004), r=np.full(n, 2.0),
                                         v_leak=np.full(n, 0.2), w_in=np.full(n, 0.8)))], (n,))
    add("scale_threshold", [("fc", _affine(n, n_in, 11)), ("scale", nir.Scale(scale=np.linspace(-1, 2, n))),
                            ("thr", nir.Threshold(threshold=np.full(n, 0.2)))], (n,))
    # convolution, pooling, flatten
    img = _spikes((2, 9, 8), 0.3, 12, T=20)
    rc = _rng(13)
    conv = nir.Conv2d(input_shape=(9, 8), weight=rc.normal(0, 0.6, (4, 2, 3, 2)), stride=np.array([2, 1]),
                      padding=np.array([1, 0]), dilation=np.array([1, 1]), groups=1, bias=rc.normal(0, 0.1, 4))
    conv_shape = (4, 5, 7)
    add("conv2d_stride_pad_lif", [("conv", conv), ("lif", _lif(conv_shape, tau=0.004, r=2.0, thr=0.5))],
        conv_shape, inputs=img, in_shape=(2, 9, 8))
    grouped = nir.Conv2d(input_shape=(9, 8), weight=rc.normal(0, 0.8, (4, 1, 3, 3)), stride=np.array([1, 1]),
                         padding=np.array([1, 1]), dilation=np.array([1, 1]), groups=2, bias=np.zeros(4))
    add("conv2d_groups_if", [("conv", grouped),
                             ("if", nir.IF(r=np.ones((4, 9, 8)), v_threshold=np.full((4, 9, 8), 0.7),
                                           v_reset=np.zeros((4, 9, 8))))], (4, 9, 8), inputs=img, in_shape=(2, 9, 8))
    add("avgpool_nonsquare_lif", [("pool", nir.AvgPool2d(kernel_size=np.array([3, 2]), stride=np.array([3, 2]),
                                                         padding=np.array([0, 0]))),
                                  ("lif", _lif((2, 3, 4), tau=0.002, r=4.0, thr=0.5))], (2, 3, 4), inputs=img,
        in_shape=(2, 9, 8))
    add("sumpool_flatten_affine", [("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                                          padding=np.array([0, 0]))),
                                   ("flat", nir.Flatten(input_type={"input": np.array([2, 4, 4])}, start_dim=0,
                                                        end_dim=-1)),
                                   ("fc", _affine(n, 32, 14, 0.5)),
                                   ("if", nir.IF(r=np.ones(n), v_threshold=np.ones(n), v_reset=np.zeros(n)))],
        (n,), inputs=img, in_shape=(2, 9, 8))
    # recurrence and fan-in
    rec_w = _rng(15).normal(0, 0.8, (n, n))
    for reset in ("zero", "subtract"):
        g = chain([("fc", _affine(n, n_in, 16, 1.5)), ("lif", _lif(n, tau=0.004, r=2.0, thr=1.0))], (n_in,), (n,),
                  Semantics(dt, reset), extra_edges=[("lif", "rec"), ("rec", "lif")])
        g.nodes["rec"] = nir.Linear(weight=rec_w)
        cases.append(Case(f"recurrent_lif_{reset}", g, x, {"dt": dt, "reset": reset, "integration": "euler"}))
    g = chain([("fc", _affine(n, n_in, 17)), ("lif", _lif(n, tau=0.004, r=2.0, thr=0.8))], (n_in,), (n,),
              Semantics(dt), extra_edges=[("input", "fc_b"), ("fc_b", "lif")])
    g.nodes["fc_b"] = _affine(n, n_in, 18, 0.5)
    cases.append(Case("fan_in_sum", g, x, {"dt": dt, "reset": "zero", "integration": "euler"}))
    return cases


def scale_to_fire(network, inputs: torch.Tensor, low: float = 0.02, high: float = 0.3, max_iter: int = 12):
    """Rescale each synaptic layer's weights (in order) until its neurons fire at a rate in ``[low, high]``.

    Deterministic; returns ``network`` (modified in place).
    """
    with torch.no_grad():
        for syn, neu in network.plan:
            mod = network.synapses[syn]
            if neu is None or not hasattr(mod, "weight"):
                continue
            for _ in range(max_iter):
                network(inputs.to(next(network.parameters()).dtype), record=True)
                rate = network.records[neu].float().mean().item()
                if low <= rate <= high:
                    break
                mod.weight.mul_(1.6 if rate < low else 0.6)
    return network


def table1_case(key: str, neuron: str = "lif", reset: str = "zero", T: int = 12, B: int = 2, seed: int = 0,
                pool: str = "neuron") -> Case:
    """A Table-1 structure (``snnbridge.models.TABLE1`` key) with seeded random weights scaled so every layer fires.

    Built once per argument set and process (the weight scaling of the large CNNs takes seconds); each call
    returns an independent copy.
    """
    return copy.deepcopy(_table1_case(key, neuron, reset, T, B, seed, pool))


@functools.lru_cache(maxsize=64)
def _table1_case(key: str, neuron: str, reset: str, T: int, B: int, seed: int, pool: str) -> Case:
    from snnbridge.models import TABLE1, TABLE1_INPUTS, Network
    from snnbridge.models.export import to_nir

    torch.manual_seed(seed)
    net = Network(structure=TABLE1[key], input_shape=TABLE1_INPUTS[key], neuron=neuron, reset=reset,
                  threshold=0.5, decay=0.5, pool=pool, conv_stride=1).double()
    x = _spikes(TABLE1_INPUTS[key], 0.25, seed + 1, T=T, B=B)
    scale_to_fire(net, x)
    return Case(f"{key}_{neuron}_{reset}", to_nir(net), x,
                {"dt": net.config.dt, "reset": reset, "integration": "euler"})
