"""The SpikingJelly backend reproduces the reference executor spike for spike, at every node and step.

SpikingJelly's LIF charge ``v - v/tau + x`` is a different rounding of the reference's ``decay·v + (gain·x + bias)``:
in float64 spikes are identical at every node and step and membranes agree to ~1e-13 relative; IF/I (``v + x``),
Threshold and the torch layers are bit-identical.  float32 against the float64 reference: every differing spike
starts as a near-threshold rounding case (:func:`check_near_threshold_only`).
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from snnbridge.backends import get
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.graph import prepare
from snnbridge.errors import UnsupportedNodeError
from snnbridge.validation.node_suite import chain, node_cases

from .backend_checks import (
    PEERS,
    assert_same_recording,
    check_near_threshold_only,
    check_peer_graph,
    check_table1,
    run_both,
    spikes,
)
from .conftest import NIR_GRAPHS
from .more_backends import peer_params, table1_params

pytest.importorskip("spikingjelly")
BACKEND = "spikingjelly"
RTOL = 1e-11
CASES = {c.name: c for c in node_cases()}


@pytest.mark.parametrize("name", list(CASES))
def test_node_case_float64_spikes_identical(name):
    c = CASES[name]
    ref, got = run_both(BACKEND, c.graph, c.inputs, c.semantics, torch.float64)
    assert got.backend == BACKEND
    assert_same_recording(ref, got, exact=False, rtol=RTOL)


@pytest.mark.parametrize("name", list(CASES))
def test_node_case_float32(name):
    c = CASES[name]
    ref32, got = run_both(BACKEND, c.graph, c.inputs, c.semantics, torch.float32)
    ref64 = ReferenceExecutor(c.graph, **c.semantics).run(c.inputs)
    check_near_threshold_only(prepare(c.graph, **c.semantics), ref64, got)
    if all(torch.equal(got.outputs[n], ref32.outputs[n]) for n in ref32.spiking_nodes):
        for n, v in ref32.membranes.items():
            assert (got.membranes[n] - v).abs().max().item() <= 1e-5 * max(1.0, v.abs().max().item()), n


@pytest.mark.parametrize("name", ["if_zero", "if_subtract", "if_threshold_exact", "i", "conv2d_groups_if",
                                  "sumpool_flatten_affine", "scale_threshold", "lif_threshold_exact"])
def test_integrators_and_dyadic_cases_are_bit_identical(name):
    """IFNode (``v + x``), Threshold and the torch layers round exactly like the reference."""
    c = CASES[name]
    for dtype in (torch.float64, torch.float32):
        ref, got = run_both(BACKEND, c.graph, c.inputs, c.semantics, dtype)
        assert_same_recording(ref, got, exact=True)


@pytest.mark.parametrize("key, neuron, reset", table1_params())
def test_table1_structures(key, neuron, reset):
    check_table1(BACKEND, key, neuron, reset, exact=neuron == "if", rtol=RTOL)


@pytest.mark.parametrize("stem", peer_params(PEERS))
def test_peer_graph(stem):
    check_peer_graph(BACKEND, NIR_GRAPHS, stem, exact=stem == "cnn_sinabs", rtol=RTOL)


# --------------------------------------------------------------------------- the modules are SpikingJelly's own


def test_native_nodes_and_their_parameters():
    from spikingjelly.activation_based import neuron, surrogate

    sim = get(BACKEND).compile(CASES["lif_subtract"].graph, **CASES["lif_subtract"].semantics)
    lif = sim.adapters["lif"].module
    assert type(lif) is neuron.LIFNode and lif.step_mode == "s" and lif.decay_input is False
    assert lif.v_reset is None and lif.v_threshold == 1.0  # soft reset subtracts the threshold
    assert lif.tau == pytest.approx(4.0, rel=1e-15)  # dt/tau = 0.25 -> decay 0.75 -> SpikingJelly tau 4 steps
    assert type(lif.surrogate_function).__name__ == "StrictSigmoid"
    assert isinstance(lif.surrogate_function, surrogate.Sigmoid)
    zero = get(BACKEND).compile(CASES["lif_leak_reset"].graph, **CASES["lif_leak_reset"].semantics)
    assert zero.adapters["lif"].module.v_reset == -0.5
    assert type(get(BACKEND).compile(CASES["if_zero"].graph).adapters["if"].module) is neuron.IFNode
    cuba = get(BACKEND).compile(CASES["cubalif_zero"].graph, **CASES["cubalif_zero"].semantics).adapters["cuba"]
    assert type(cuba.module) is neuron.CUBALIFNode and cuba.module.c_decay == 0.5 and cuba.module.v_decay == 0.75


def test_stock_surrogate_fires_at_threshold_strict_one_does_not():
    """Why the adapter passes its own surrogate: SpikingJelly's stock nodes fire at ``v == θ``."""
    from spikingjelly.activation_based import neuron

    from snnbridge.backends.spikingjelly_backend import strict_surrogate_class

    x = torch.tensor([[0.5, 0.75]], dtype=torch.float64)
    stock = neuron.IFNode(v_threshold=0.5, v_reset=None)
    assert stock(x).tolist() == [[1.0, 1.0]]
    strict = neuron.IFNode(v_threshold=0.5, v_reset=None, surrogate_function=strict_surrogate_class()())
    assert strict(x).tolist() == [[0.0, 1.0]]


def test_inclusive_threshold_uses_spikingjellys_own_compare():
    c = CASES["if_threshold_exact"]
    g = chain([("fc", c.graph.nodes["fc"]), ("if", c.graph.nodes["if"])], (6,), (8,))
    g.metadata["threshold"] = "inclusive"
    sim = get(BACKEND).compile(g, reset="zero")
    assert type(sim.adapters["if"].module.surrogate_function).__name__ == "Sigmoid"
    ref = ReferenceExecutor(g, reset="zero").run(c.inputs)
    assert ref.spikes("if").any()
    for dtype in (torch.float64, torch.float32):
        assert_same_recording(ReferenceExecutor(g, reset="zero", dtype=dtype).run(c.inputs),
                              get(BACKEND).run(g, c.inputs, reset="zero", dtype=dtype), exact=True)


def test_initial_state_and_cuba_with_leak():
    n = 5
    cuba = nir.CubaLIF(tau_syn=np.full(n, 2e-3), tau_mem=np.full(n, 5e-3), r=np.linspace(1, 3, n),
                       v_leak=np.full(n, 0.2), v_threshold=np.full(n, 0.6), v_reset=np.full(n, -0.1),
                       w_in=np.full(n, 2.0), metadata={"v_init": np.full(n, 0.3), "i_init": np.full(n, 0.1)})
    w = np.random.default_rng(3).normal(0, 1.0, (n, 4))
    g = chain([("fc", nir.Linear(weight=w)), ("cuba", cuba)], (4,), (n,))
    x = spikes((4,), 0.4, 11, 60, 3)
    ref = ReferenceExecutor(g, dt=1e-3).run(x)
    assert ref.spikes("cuba").sum() > 10
    assert_same_recording(ref, get(BACKEND).run(g, x, dt=1e-3), exact=False, rtol=RTOL)


# --------------------------------------------------------------------------- refusals, by name


def _lif_graph(**kw):
    n = 3
    p = {"tau": np.full(n, 4e-3), "r": np.ones(n), "v_leak": np.zeros(n), "v_threshold": np.full(n, 0.5),
         "v_reset": np.zeros(n)}
    p.update(kw)
    meta = p.pop("metadata", {})
    return chain([("fc", nir.Linear(weight=np.eye(n))), ("lif", nir.LIF(**p, metadata=meta))], (n,), (n,))


@pytest.mark.parametrize("kw, field", [
    ({"tau": np.array([4e-3, 5e-3, 4e-3])}, "tau"),
    ({"v_threshold": np.array([0.5, 0.6, 0.5])}, "v_threshold"),
    ({"v_reset": np.array([0.0, -0.1, 0.0])}, "v_reset"),
    ({"tau": np.full(3, 1e-3)}, "tau"),  # decay 0: LIFNode needs tau > 1 step
    ({"metadata": {"reset": "subtract", "reset_timing": "delayed"}}, "reset_timing"),
])
def test_what_spikingjelly_cannot_express_is_refused_by_name(kw, field):
    with pytest.raises(UnsupportedNodeError, match=rf"node 'lif', field '{field}'.*spikingjelly"):
        get(BACKEND).compile(_lif_graph(**kw), dt=1e-3)


def test_per_neuron_threshold_of_a_threshold_node_is_refused_by_name():
    g = chain([("thr", nir.Threshold(threshold=np.array([0.1, 0.2])))], (2,), (2,))
    with pytest.raises(UnsupportedNodeError, match=r"node 'thr', field 'threshold'"):
        get(BACKEND).compile(g)
