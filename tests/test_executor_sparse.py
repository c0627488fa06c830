"""The reference executor's event-driven strategies give today's spikes at every node and step.

``strategy="dense"`` is today's arithmetic; ``fused`` (dense kernels, neuron update fused over time) must
equal it exactly (spikes and membranes); ``auto`` and ``event`` sum synaptic events in another order, so
their membranes may differ in the last bits but their spikes must not.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from snnbridge.bridge import ReferenceExecutor, read_graph
from snnbridge.bridge.graph import prepare
from snnbridge.bridge.semantics import Semantics
from snnbridge.bridge.sparse import STRATEGIES
from snnbridge.validation.node_suite import chain, node_cases, table1_case

from .conftest import NIR_GRAPHS

FAST = ("fused", "auto", "event")
ROOT = Path(__file__).resolve().parents[1]


def _check(graph, x: torch.Tensor, dtype: torch.dtype, sem: dict | None = None) -> dict:
    """Run every strategy on ``x``; assert identical spikes (all nodes, and output-only runs) and return them."""
    sem = sem or {}
    fg = prepare(graph, **sem) if sem else graph
    x = x.to(dtype)
    runs = {s: ReferenceExecutor(fg, dtype=dtype, strategy=s) for s in STRATEGIES}
    full = {s: e.run(x) for s, e in runs.items()}
    ref = full["dense"]
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    for s in FAST:
        r = full[s]
        assert set(r.outputs) == set(ref.outputs)
        for n in ref.outputs:
            assert r[n].dtype == ref[n].dtype, (s, n)
            if ref[n].dtype == torch.bool:
                assert torch.equal(r[n], ref[n]), f"{s}: spikes of {n} differ"
            elif s == "fused":
                assert torch.equal(r[n], ref[n]), f"fused: output of {n} differs"
            else:
                torch.testing.assert_close(r[n], ref[n], rtol=tol, atol=tol)
        for n in ref.membranes:
            if s == "fused":
                assert torch.equal(r.membranes[n], ref.membranes[n]), f"fused: membrane of {n} differs"
            else:
                torch.testing.assert_close(r.membranes[n], ref.membranes[n], rtol=tol, atol=tol)
    outs = list(runs["dense"].graph.outputs)
    only = {s: e.run(x, record=outs, membranes=False) for s, e in runs.items()}  # fused synapse->neuron path
    for s in FAST:
        for n in outs:
            if ref[n].dtype == torch.bool:
                assert torch.equal(only[s][n], only["dense"][n]), f"{s}: output-only run differs at {n}"
    return {s: e.last_stats for s, e in runs.items()}


def _spikes(shape, p: float, T: int = 12, B: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((T, B) + tuple(shape), generator=g) < p).double()


def _if(shape, thr=1.0, v_reset=0.0):
    return nir.IF(r=np.ones(shape), v_threshold=np.broadcast_to(np.asarray(thr, float), shape).copy(),
                  v_reset=np.full(shape, float(v_reset)))


def _lif(shape, thr=1.0, v_reset=0.0):
    return nir.LIF(tau=np.full(shape, 0.004), r=np.full(shape, 2.0), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, float(thr)), v_reset=np.full(shape, float(v_reset)))


def _conv(c_out, c_in, k, stride=1, pad=1, dil=1, groups=1, bias=True, seed=0, h=10, w=10, scale=1.0):
    rng = np.random.default_rng(seed)
    weight = rng.normal(0, scale / np.sqrt(c_in * k * k), (c_out, c_in // groups, k, k))
    return nir.Conv2d(input_shape=(h, w), weight=weight, stride=stride, padding=pad, dilation=dil, groups=groups,
                      bias=rng.normal(0, 0.1, c_out) if bias else np.zeros(c_out))


def _out(n, k, s, p, d=1):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


CONVS = [  # (kernel, stride, padding, dilation, groups)
    (3, 1, 1, 1, 1),
    (5, 2, 1, 1, 1),
    (3, 2, 0, 1, 1),
    (4, 3, 2, 1, 1),
    (3, 1, 2, 2, 1),  # dilation: generic event pairs
    (3, 1, 1, 1, 2),  # groups: dense fallback
]


@pytest.mark.parametrize("conv", CONVS, ids=lambda c: "k{}s{}p{}d{}g{}".format(*c))
def test_conv_if_spikes_identical(conv):
    """Densities 0 %, 3 %, 30 % and 100 %, float64 and float32."""
    k, s, p, d, g = conv
    c_in, c_out, h = 2, 4, 10
    ho = _out(h, k, s, p, d)
    graph = chain([("conv", _conv(c_out, c_in, k, s, p, d, g, scale=3.0)), ("if", _if((c_out, ho, ho), thr=0.7))],
                  (c_in, h, h), (c_out, ho, ho), Semantics(dt=1e-3))
    for density, dtype in ((0.0, torch.float64), (0.03, torch.float32), (0.03, torch.float64),
                           (0.3, torch.float32), (1.0, torch.float64)):
        _check(graph, _spikes((c_in, h, h), density, T=8, B=2, seed=int(density * 100) + k), dtype)


@pytest.mark.parametrize("reset,dtype", [("zero", torch.float32), ("subtract", torch.float64), ("none", torch.float32)])
def test_cnn_pool_dense_stack(reset, dtype):
    """conv → LIF (per-neuron thresholds, v_reset ≠ 0) → SumPool → conv → IF → AvgPool(3, stride 2) → Affine → LI."""
    h = 12
    thr = 0.5 + np.random.default_rng(1).random((6, h, h))
    rng = np.random.default_rng(2)
    nodes = [
        ("c1", _conv(6, 2, 3, scale=4.0, h=h, w=h)),
        ("n1", nir.LIF(tau=np.full((6, h, h), 0.004), r=np.full((6, h, h), 2.0), v_leak=np.zeros((6, h, h)),
                       v_threshold=thr, v_reset=np.full((6, h, h), 0.1))),
        ("p1", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))),
        ("c2", _conv(5, 6, 3, seed=3, scale=4.0, h=6, w=6)),
        ("n2", _if((5, 6, 6), thr=0.8)),
        ("p2", nir.AvgPool2d(kernel_size=np.array([3, 3]), stride=np.array([2, 2]), padding=np.array([1, 1]))),
        ("fl", nir.Flatten(input_type={"input": np.array([5, 3, 3])}, start_dim=0, end_dim=-1)),
        ("fc", nir.Affine(weight=rng.normal(0, 1.0, (7, 45)), bias=rng.normal(0, 0.1, 7))),
        ("li", nir.LI(tau=np.full(7, 0.004), r=np.ones(7), v_leak=np.zeros(7))),
    ]
    graph = chain(nodes, (2, h, h), (7,), Semantics(dt=1e-3, reset=reset))
    _check(graph, _spikes((2, h, h), 0.1, T=10, B=2, seed=7), dtype)


def test_node_suite():
    for i, case in enumerate(node_cases()):
        _check(case.graph, case.inputs, (torch.float64, torch.float32)[i % 2], case.semantics)


@pytest.mark.parametrize("key", ["mnist_mlp", pytest.param("mnist_cnn", marks=pytest.mark.slow),
                                 pytest.param("nmnist_mlp", marks=pytest.mark.slow),
                                 pytest.param("cifar10_cnn", marks=pytest.mark.slow),
                                 pytest.param("nmnist_cnn", marks=pytest.mark.slow),
                                 pytest.param("dvscifar10_cnn", marks=pytest.mark.slow)])
def test_table1_structures(key):
    case = table1_case(key, T=8, B=2)
    for dtype in (torch.float64, torch.float32):
        _check(case.graph, case.inputs[:4, :1], dtype, case.semantics)


@pytest.mark.parametrize("stem", ["cnn_sinabs", "lif_norse", "braille_noDelay_bias_zero",
                                  "braille_noDelay_noBias_subtract"])
def test_peer_graphs(stem):
    path = NIR_GRAPHS / f"{stem}.nir"
    if not path.exists():
        pytest.skip(f"{path} not available (needs ../shared)")
    fg = prepare(read_graph(path))
    shape = fg.out_shapes[fg.inputs[0]]
    T, B = (5, 1) if stem == "cnn_sinabs" else (12, 2)
    for p, dtype in ((0.02, torch.float64), (0.3, torch.float32)):
        x = _spikes(shape, p, T=T, B=B, seed=3)
        if stem == "lif_norse":
            x = x * 0.3
        _check(fg, x, dtype)


def test_mlp_event_compact_and_dense_choices():
    """``auto`` picks per layer by measured density; ``event`` forces events; 0 % input is the bias alone."""
    rng = np.random.default_rng(0)
    graph = chain([("fc", nir.Affine(weight=rng.normal(0, 0.3, (300, 400)), bias=rng.normal(0, 0.1, 300))),
                   ("lif", _lif(300, thr=0.5))], (400,), (300,), Semantics(dt=1e-3))
    stats = _check(graph, _spikes((400,), 0.005, T=30, B=8), torch.float32)
    assert stats["auto"]["fc"].methods == ["event"]
    assert stats["event"]["fc"].methods == ["event"]
    assert stats["fused"]["fc"].methods == ["dense"]
    assert stats["dense"] == {}
    nnz = stats["auto"]["fc"].density[0] * 30 * 8 * 400
    assert stats["auto"]["fc"].adds == pytest.approx(nnz * 300 + 30 * 8 * 300)  # one add per event and synapse
    stats = _check(graph, _spikes((400,), 1.0, T=30, B=8), torch.float32)
    assert stats["auto"]["fc"].methods == ["dense"]
    assert stats["auto"]["fc"].density == [1.0]
    stats = _check(graph, _spikes((400,), 0.0, T=30, B=8), torch.float32)
    assert stats["auto"]["fc"].methods == ["empty"]
    # a rate-coded input with silent positions: one small product per sample over its active inputs
    x = _spikes((400,), 0.3, T=30, B=8)
    x[:, :, 40:] = 0
    stats = _check(graph, x, torch.float64)
    assert stats["auto"]["fc"].methods == ["compact"]
    assert stats["auto"]["fc"].muls <= 30 * 8 * 40 * 300  # the active columns only, not the dense 400


def test_chunks_choose_per_chunk():
    rng = np.random.default_rng(0)
    graph = chain([("fc", nir.Linear(weight=rng.normal(0, 0.1, (300, 400)))), ("lif", _lif(300, thr=0.5))],
                  (400,), (300,), Semantics(dt=1e-3))
    x = torch.cat([_spikes((400,), 0.005, T=10, B=8), _spikes((400,), 1.0, T=10, B=8)])
    dense = ReferenceExecutor(graph, strategy="dense").run(x)
    ex = ReferenceExecutor(graph, strategy="auto", chunk=10)
    rec = ex.run(x)
    assert ex.last_stats["fc"].methods[1] == "dense" and ex.last_stats["fc"].methods[0] != "dense"
    assert torch.equal(rec.spikes("lif"), dense.spikes("lif"))


def test_conv_neuron_fusion_only_when_unrecorded():
    graph = chain([("conv", _conv(4, 2, 3, scale=3.0)), ("if", _if((4, 10, 10), thr=0.7))], (2, 10, 10),
                  (4, 10, 10), Semantics(dt=1e-3))
    x = _spikes((2, 10, 10), 0.03)
    ex = ReferenceExecutor(graph, strategy="event")
    ex.run(x, record=["output"], membranes=False)
    assert ex.last_stats["conv"].methods == ["event+neuron"]
    ex.run(x, record=["conv", "output"])
    assert ex.last_stats["conv"].methods == ["event"]


def test_fused_conv_events_in_chunks_of_steps(monkeypatch):
    """Many events: the conv → neuron path builds its segments a few steps at a time (bounded memory)."""
    from snnbridge.bridge import sparse

    monkeypatch.setattr(sparse, "EVENT_ROWS", 40)
    graph = chain([("conv", _conv(4, 2, 3, scale=3.0)), ("if", _if((4, 10, 10), thr=0.7)),
                   ("c2", _conv(3, 4, 3, stride=2, pad=1, seed=2, scale=3.0, h=10, w=10)), ("n2", _if((3, 5, 5), 0.7))],
                  (2, 10, 10), (3, 5, 5), Semantics(dt=1e-3))
    x = _spikes((2, 10, 10), 0.1, T=12, B=3)
    ref = ReferenceExecutor(graph, strategy="dense").run(x, record=["output"], membranes=False)
    ex = ReferenceExecutor(graph, strategy="event")
    rec = ex.run(x, record=["output"], membranes=False)
    assert ex.last_stats["conv"].methods == ["event+neuron"]
    assert torch.equal(rec["output"], ref["output"])


def test_default_is_dense_and_bad_strategy_is_refused():
    graph = chain([("fc", nir.Linear(weight=np.eye(3))), ("lif", _lif(3))], (3,), (3,))
    assert ReferenceExecutor(graph).strategy == "dense"
    with pytest.raises(ValueError, match="strategy"):
        ReferenceExecutor(graph, strategy="sparse")


def test_recurrent_graph_runs_stepwise_under_every_strategy():
    rng = np.random.default_rng(4)
    nodes = [("fc", nir.Affine(weight=rng.normal(0, 1.0, (8, 6)), bias=np.zeros(8))), ("lif", _lif(8, thr=0.5)),
             ("rec", nir.Linear(weight=rng.normal(0, 0.5, (8, 8))))]
    graph = chain(nodes, (6,), (8,), Semantics(dt=1e-3), extra_edges=[("rec", "lif")])  # loop lif -> rec -> lif
    for dtype in (torch.float64, torch.float32):
        _check(graph, _spikes((6,), 0.3, T=20), dtype)


def test_membranes_and_spikes_with_float_inputs():
    """Analog inputs (event counts, currents) take the scaled-event path: same spikes."""
    graph = chain([("conv", _conv(4, 2, 5, stride=2, pad=1, scale=2.0, h=12, w=12)), ("if", _if((4, 5, 5), 0.6))],
                  (2, 12, 12), (4, 5, 5), Semantics(dt=1e-3))
    g = torch.Generator().manual_seed(5)
    x = torch.poisson(torch.full((12, 3, 2, 12, 12), 0.05), generator=g)  # counts 0, 1, 2, ...
    for dtype in (torch.float64, torch.float32):
        _check(graph, x, dtype)


MEMORY_SCRIPT = textwrap.dedent("""
    import os, sys, threading, time, torch
    sys.path.insert(0, {root!r})
    from tests.test_executor_sparse import _conv, _if, _spikes
    from snnbridge.bridge import ReferenceExecutor
    from snnbridge.bridge.semantics import Semantics
    from snnbridge.validation.node_suite import chain
    torch.set_num_threads(1)
    h = 34
    g = chain([("conv", _conv(16, 2, 5, stride=2, pad=1, scale=3.0, h=h, w=h)), ("if", _if((16, 16, 16), 0.7)),
               ("c2", _conv(16, 16, 3, h=16, w=16, scale=3.0)), ("n2", _if((16, 16, 16), 0.7))],
              (2, h, h), (16, 16, 16), Semantics(dt=1e-3))
    x = _spikes((2, h, h), 0.01, T=40, B=25).float()
    ex = ReferenceExecutor(g, dtype=torch.float32, strategy={strategy!r})
    ex.run(x[:2], record=["output"], membranes=False)  # warm: lazy imports, tables
    page = os.sysconf("SC_PAGE_SIZE")
    rss = lambda: int(open("/proc/self/statm").read().split()[1]) * page
    base, peak, done = rss(), [0], []
    def watch():
        while not done:
            peak[0] = max(peak[0], rss())
            time.sleep(0.0005)
    th = threading.Thread(target=watch)
    th.start()
    ex.run(x, record=["output"], membranes=False)
    done.append(1)
    th.join()
    print((max(peak[0], rss()) - base) // 1024)
""")


def _peak_kib(strategy: str) -> int:
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT.format(root=str(ROOT), strategy=strategy)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


def test_event_path_needs_no_more_memory_than_dense():
    """Resident memory (KiB) a run adds on top of the process's (sampled), each strategy in a fresh process:
    the event-driven run (bool spikes, events fused into the membranes) needs less than the dense one."""
    dense, fast = _peak_kib("dense"), _peak_kib("auto")
    assert dense > 10_000  # the dense run holds its [T·B, 16, 16, 16] float tensors
    assert fast < 0.85 * dense, (dense, fast)
