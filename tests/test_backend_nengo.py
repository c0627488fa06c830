"""The Nengo backend reproduces the reference executor spike for spike, at every node and step, in float64.

Nengo computes in float64; its neuron updates (:class:`SemanticsNeuron`) and resets are bit-identical to the
reference, and its linear transforms (``nengo.Dense``/``Sparse``/``Convolution``, numpy products) sum in a different
order than torch: analog values and membranes agree to ~1e-15 relative (``RTOL``), bit-identical where the products
are exact (dyadic weights).  float32 is refused by name (field ``dtype``).
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
from .more_backends import heavy, peer_params, table1_params

pytest.importorskip("nengo")
BACKEND = "nengo"
RTOL = 1e-12
CASES = {c.name: c for c in node_cases()}


@pytest.mark.parametrize("name", list(CASES))
def test_node_case_float64_spikes_identical(name):
    c = CASES[name]
    ref, got = run_both(BACKEND, c.graph, c.inputs, c.semantics, torch.float64)
    assert got.backend == BACKEND
    assert_same_recording(ref, got, exact=False, rtol=RTOL)


@pytest.mark.parametrize("name", ["if_threshold_exact", "lif_threshold_exact", "conv2d_groups_if"])
def test_dyadic_cases_are_bit_identical(name):
    """Where every product is exact, Nengo's transforms and the neuron step round exactly like the reference."""
    c = CASES[name]
    ref, got = run_both(BACKEND, c.graph, c.inputs, c.semantics, torch.float64)
    assert_same_recording(ref, got, exact=True)


def _table1_params() -> list:
    """Every Table-1 structure; besides the CNNs, the N-MNIST MLP (2,312 inputs, one Nengo run per sample) is
    :func:`heavy` too, to keep the default run short."""
    return [heavy(*p.values, id=p.id) if p.values[0] == "nmnist_mlp" else p for p in table1_params()]


@pytest.mark.parametrize("key, neuron, reset", _table1_params())
def test_table1_structures(key, neuron, reset):
    graph, x, semantics = table1(key, neuron)
    ref, got = run_both(BACKEND, graph, x, dict(semantics, reset=reset), torch.float64)
    assert_same_recording(ref, got, exact=False, rtol=RTOL)
    assert all(ref.outputs[n].any() for n in ref.order if ref.node_types[n] in ("IF", "LIF"))


@pytest.mark.parametrize("stem", peer_params(PEERS))
def test_peer_graph(stem):
    path = NIR_GRAPHS / f"{stem}.nir"
    if not path.exists():
        pytest.skip(f"{path} not available (needs ../shared)")
    semantics, shape, T, p = PEERS[stem]
    graph = read_graph(path)
    x = spikes(shape, p, 7, T)
    ref, got = run_both(BACKEND, graph, x, semantics, torch.float64)
    assert_same_recording(ref, got, exact=False, rtol=RTOL)
    assert ref.output().any()


# --------------------------------------------------------------------------- the objects are Nengo's own


def test_network_is_built_from_nengo_objects():
    import nengo

    from snnbridge.backends.nengo_backend import _neuron_classes

    sim = get(BACKEND).compile(CASES["conv2d_groups_if"].graph, **CASES["conv2d_groups_if"].semantics)
    assert isinstance(sim.network, nengo.Network) and isinstance(sim.simulator, nengo.Simulator)
    assert sim.simulator.dt == CASES["conv2d_groups_if"].semantics["dt"]
    ens = sim.ensembles["if"]
    assert isinstance(ens.neuron_type, _neuron_classes()[0]) and isinstance(ens.neuron_type, nengo.neurons.NeuronType)
    assert sim.kinds["conv"] == "Convolution"  # stride 1, 3x3, padding 1: Nengo's 'same'
    strided = get(BACKEND).compile(CASES["conv2d_stride_pad_lif"].graph, **CASES["conv2d_stride_pad_lif"].semantics)
    assert strided.kinds["conv"] == "Sparse"  # padding (1, 0) with stride (2, 1): not a Nengo padding mode
    rec = get(BACKEND).compile(CASES["recurrent_lif_zero"].graph, **CASES["recurrent_lif_zero"].semantics)
    delays = [c for c in rec.network.all_connections if isinstance(c.synapse, nengo.synapses.LinearFilter)]
    assert len(delays) == 1 and delays[0].synapse.den.tolist() == [1.0, 0.0]  # z^-1 on the recurrent edge


def test_nengos_own_lif_is_a_different_model():
    """Why the adapter brings its own neuron type: ``nengo.LIF`` (continuous time, refractory, 1/dt spikes) fires
    elsewhere than the reference's Euler step on the same held input."""
    import nengo

    dt, steps = 1e-3, 60
    with nengo.Network(seed=0) as net:
        inp = nengo.Node(output=[1.5])
        ens = nengo.Ensemble(1, 1, neuron_type=nengo.LIF(tau_rc=0.004, tau_ref=0.002), gain=[1.0], bias=[0.0])
        nengo.Connection(inp, ens.neurons, synapse=None)
        probe = nengo.Probe(ens.neurons, synapse=None)
    with nengo.Simulator(net, dt=dt, progress_bar=False) as sim:
        sim.run_steps(steps)
    nengo_spikes = np.flatnonzero(sim.data[probe][:, 0])
    assert set(np.unique(sim.data[probe])) <= {0.0, 1.0 / dt}  # spikes of height 1/dt
    g = chain([("lif", nir.LIF(tau=np.array([4e-3]), r=np.ones(1), v_leak=np.zeros(1), v_threshold=np.ones(1),
                               v_reset=np.zeros(1)))], (1,), (1,))
    x = torch.full((steps, 1, 1), 1.5, dtype=torch.float64)
    ours = get(BACKEND).run(g, x, dt=dt).output().reshape(-1).nonzero().reshape(-1).numpy()
    ref = ReferenceExecutor(g, dt=dt).run(x).output().reshape(-1).nonzero().reshape(-1).numpy()
    assert np.array_equal(ours, ref)
    assert not np.array_equal(nengo_spikes, ref)


def test_initial_state_inclusive_threshold_and_delayed_reset():
    n = 4
    lif = nir.LIF(tau=np.full(n, 4e-3), r=np.full(n, 2.0), v_leak=np.full(n, 0.1), v_threshold=np.full(n, 0.5),
                  v_reset=np.full(n, -0.2), metadata={"v_init": np.linspace(0, 0.4, n), "threshold": "inclusive"})
    g = chain([("fc", nir.Linear(weight=np.full((n, 3), 0.25))), ("lif", lif)], (3,), (n,))
    x = spikes((3,), 0.5, 2, 40, 2)
    for reset in ("zero", "subtract", "none"):
        ref = ReferenceExecutor(g, dt=1e-3, reset=reset).run(x)
        assert ref.spikes("lif").any()
        assert_same_recording(ref, get(BACKEND).run(g, x, dt=1e-3, reset=reset), exact=True)
    for timing in ("delayed", "immediate_rechecked"):
        lif.metadata.update(reset_timing=timing, reset="subtract")
        ref = ReferenceExecutor(g, dt=1e-3).run(x)
        assert_same_recording(ref, get(BACKEND).run(g, x, dt=1e-3), exact=True)


def test_batch_samples_are_independent_runs():
    c = CASES["recurrent_lif_subtract"]
    x = spikes((6,), 0.4, 5, 30, 3)
    sim = get(BACKEND).compile(c.graph, **c.semantics)
    both = sim.run(x)
    one = sim.run(x[:, 1:2])
    assert torch.equal(both.output()[:, 1:2], one.output())
    assert_same_recording(ReferenceExecutor(c.graph, **c.semantics).run(x), both, exact=False, rtol=RTOL)


def test_float32_and_delay_are_refused_by_name():
    c = CASES["lif_zero"]
    with pytest.raises(UnsupportedNodeError, match=r"field 'dtype'.*float64"):
        get(BACKEND).compile(c.graph, dtype=torch.float32, **c.semantics)
    g = chain([("d", nir.Delay(delay=np.full(2, 2e-3)))], (2,), (2,))
    with pytest.raises(UnsupportedNodeError, match=r"node 'd'.*Delay"):
        get(BACKEND).compile(g, dt=1e-3)
