"""The Sinabs backend reproduces the reference executor bit for bit, at every node and step, in float64 and float32.

Sinabs's step ``v = alpha·v + x`` with its own ``alpha_mem`` set to the reference decay rounds exactly as the
reference's ``decay·v + (gain·x + bias)``; the one node case it cannot express (a zero reset to ``v_reset ≠ 0``:
Sinabs's ``MembraneReset`` adds its value to every neuron) is refused by node name.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from snnbridge.backends import get
from snnbridge.bridge import read_graph
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.errors import UnsupportedNodeError
from snnbridge.validation.node_suite import chain, node_cases

from .backend_checks import PEERS, assert_same_recording, run_both, spikes, table1
from .conftest import NIR_GRAPHS
from .more_backends import peer_params, table1_params

pytest.importorskip("sinabs")
BACKEND = "sinabs"
CASES = {c.name: c for c in node_cases()}
REFUSED = {"lif_leak_reset": "v_reset"}  # zero reset to v_reset = -0.5


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", [n for n in CASES if n not in REFUSED])
def test_node_case_bit_identical(name, dtype):
    c = CASES[name]
    ref, got = run_both(BACKEND, c.graph, c.inputs, c.semantics, dtype)
    assert got.backend == BACKEND
    assert_same_recording(ref, got, exact=True)


@pytest.mark.parametrize("name", list(REFUSED))
def test_what_sinabs_cannot_express_is_refused_by_name(name):
    c = CASES[name]
    with pytest.raises(UnsupportedNodeError, match=rf"node 'lif', field '{REFUSED[name]}'.*sinabs"):
        get(BACKEND).compile(c.graph, **c.semantics)
    # the same node under subtract reset (v_reset unused) runs bit for bit
    s = dict(c.semantics, reset="subtract")
    ref, got = run_both(BACKEND, c.graph, c.inputs, s, torch.float64)
    assert_same_recording(ref, got, exact=True)


@pytest.mark.parametrize("key, neuron, reset", table1_params())
def test_table1_structures(key, neuron, reset):
    graph, x, semantics = table1(key, neuron)
    semantics = dict(semantics, reset=reset)
    for dtype in (torch.float64, torch.float32):
        ref, got = run_both(BACKEND, graph, x, semantics, dtype)
        assert_same_recording(ref, got, exact=True)
        assert all(ref.outputs[n].any() for n in ref.order if ref.node_types[n] in ("IF", "LIF"))


@pytest.mark.parametrize("stem", peer_params(PEERS))
def test_peer_graph(stem):
    path = NIR_GRAPHS / f"{stem}.nir"
    if not path.exists():
        pytest.skip(f"{path} not available (needs ../shared)")
    semantics, shape, T, p = PEERS[stem]
    graph = read_graph(path)
    x = spikes(shape, p, 7, T)
    for dtype in (torch.float64, torch.float32):
        ref, got = run_both(BACKEND, graph, x, semantics, dtype)
        assert_same_recording(ref, got, exact=True)
        assert ref.output().any()


# --------------------------------------------------------------------------- the layers are Sinabs's own


def test_native_layers_and_their_parameters():
    import sinabs.activation as act
    import sinabs.layers as sl

    c = CASES["lif_subtract"]
    lif = get(BACKEND).compile(c.graph, **c.semantics).adapters["lif"]
    assert type(lif.mem) is sl.LIF and lif.mem.train_alphas and not lif.mem.norm_input
    assert lif.mem.alpha_mem.dtype == torch.float64 and torch.all(lif.mem.alpha_mem == 0.75)  # dt/tau = 0.25
    assert issubclass(lif.mem.spike_fn, act.SingleSpike) and isinstance(lif.mem.reset_fn, act.MembraneSubtract)
    thr = lif.mem.spike_threshold  # the next float above 1.0: Sinabs's inclusive compare made strict
    assert torch.all(thr > 1.0) and torch.all(torch.nextafter(thr, torch.zeros_like(thr)) == 1.0)
    assert type(get(BACKEND).compile(CASES["if_zero"].graph).adapters["if"].mem) is sl.IAF
    cuba = get(BACKEND).compile(CASES["cubalif_zero"].graph, **CASES["cubalif_zero"].semantics).adapters["cuba"]
    assert type(cuba.syn) is sl.ExpLeak and torch.all(cuba.syn.alpha_mem == 0.5) and type(cuba.mem) is sl.LIF
    li = get(BACKEND).compile(CASES["li"].graph, **CASES["li"].semantics).adapters["li"]
    assert type(li.mem) is sl.ExpLeak and li.fire is None


def test_stock_layer_fires_at_threshold_and_multi_spikes():
    """Why the adapter picks its spike function and threshold: Sinabs's defaults differ from the reference."""
    import sinabs.activation as act
    import sinabs.layers as sl

    x = torch.tensor([[[0.5, 0.75, 1.25]]], dtype=torch.float64)  # [B=1, T=1, 3]
    stock = sl.IAF(spike_threshold=torch.tensor(0.5, dtype=torch.float64))
    assert stock(x).reshape(-1).tolist() == [1.0, 1.0, 2.0]  # MultiSpike: trunc(v/θ), fires at v == θ
    single = sl.IAF(spike_threshold=torch.tensor(0.5, dtype=torch.float64), spike_fn=act.SingleSpike)
    assert single(x).reshape(-1).tolist() == [1.0, 1.0, 1.0]  # inclusive: v - θ >= 0


def test_strict_and_inclusive_threshold_at_exact_threshold_values():
    c = CASES["if_threshold_exact"]
    ref = ReferenceExecutor(c.graph, **c.semantics).run(c.inputs)
    assert ref.spikes("if").any()
    g = chain([("fc", c.graph.nodes["fc"]), ("if", c.graph.nodes["if"])], (6,), (8,))
    g.metadata["threshold"] = "inclusive"
    for dtype in (torch.float64, torch.float32):
        want = ReferenceExecutor(g, reset="zero", dtype=dtype).run(c.inputs)
        assert_same_recording(want, get(BACKEND).run(g, c.inputs, reset="zero", dtype=dtype), exact=True)
    assert not torch.equal(want.spikes("if"), ReferenceExecutor(c.graph, reset="zero",
                                                                dtype=torch.float32).run(c.inputs).spikes("if"))


def test_initial_state_cuba_with_leak_and_no_reset():
    n = 5
    cuba = nir.CubaLIF(tau_syn=np.full(n, 2e-3), tau_mem=np.full(n, 5e-3), r=np.linspace(1, 3, n),
                       v_leak=np.full(n, 0.2), v_threshold=np.full(n, 0.6), v_reset=np.zeros(n),
                       w_in=np.full(n, 2.0), metadata={"v_init": np.full(n, 0.3), "i_init": np.full(n, 0.1)})
    w = np.random.default_rng(3).normal(0, 1.0, (n, 4))
    g = chain([("fc", nir.Linear(weight=w)), ("cuba", cuba)], (4,), (n,))
    x = spikes((4,), 0.4, 11, 60, 3)
    for reset in ("zero", "subtract", "none"):
        for dtype in (torch.float64, torch.float32):
            ref = ReferenceExecutor(g, dt=1e-3, reset=reset, dtype=dtype).run(x)
            assert ref.spikes("cuba").sum() > 10
            assert_same_recording(ref, get(BACKEND).run(g, x, dt=1e-3, reset=reset, dtype=dtype), exact=True)


def test_delayed_reset_timing_is_refused_by_name():
    n = 3
    lif = nir.LIF(tau=np.full(n, 4e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5),
                  v_reset=np.zeros(n), metadata={"reset": "subtract", "reset_timing": "delayed"})
    g = chain([("fc", nir.Linear(weight=np.eye(n))), ("lif", lif)], (n,), (n,))
    with pytest.raises(UnsupportedNodeError, match=r"node 'lif', field 'reset_timing'.*sinabs"):
        get(BACKEND).compile(g, dt=1e-3)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_lif_norse_fires_at_the_reference_steps(reset):
    """As ``tests/test_lif_norse_everywhere.py`` for the other backends: a held 0.2 for 200 steps."""
    path = NIR_GRAPHS / "lif_norse.nir"
    if not path.exists():
        pytest.skip(f"{path} not available (needs ../shared)")
    graph = read_graph(path)
    x = torch.full((200, 1, 1), 0.2, dtype=torch.float64)
    ref = ReferenceExecutor(graph, reset=reset).run(x).output().reshape(-1).nonzero().reshape(-1)
    got = get(BACKEND).run(graph, x, reset=reset).output().reshape(-1).nonzero().reshape(-1)
    assert ref[0].item() == 16 and len(ref) > 5 and torch.equal(got, ref)
