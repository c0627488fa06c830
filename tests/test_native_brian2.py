"""``Brian2Backend.to_native``: a plain ``brian2.Network`` the user monitors, makes plastic and runs repeatedly.

Every check adds the user's own ``SpikeMonitor``/``StateMonitor`` to the network, runs the inputs in two
consecutive ``net.run`` calls (``x[:T1]`` then ``x[T1:]``) and compares with one reference run of ``x``:
spikes equal at every group and step, membranes within 1e-12 (exact where the constants are binary fractions).
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

b2 = pytest.importorskip("brian2")

from snnbridge.backends import get  # noqa: E402
from snnbridge.backends.brian2.build import Layout, spikes_from_events  # noqa: E402
from snnbridge.backends.brian2.native import SnnbridgeNetwork, brian2_identifier, unflatten  # noqa: E402
from snnbridge.bridge import ReferenceExecutor, read_graph  # noqa: E402
from snnbridge.bridge import semantics as sem  # noqa: E402
from snnbridge.bridge.semantics import Semantics  # noqa: E402
from snnbridge.errors import GraphError, InputError, NativeModelError, UnsupportedNodeError  # noqa: E402
from snnbridge.validation.node_suite import chain  # noqa: E402

from .backend_checks import PEERS, spikes  # noqa: E402
from .test_backend_brian2 import SMALL_INPUTS, _li_delay_graph, options_graph, small_table1  # noqa: E402


def check_native(graph, x: torch.Tensor, semantics: dict | None = None, split: int | None = None,
                 inputs: str = "spikes", target: str = "numpy", tol: float = 1e-12) -> SnnbridgeNetwork:
    """to_native + user monitors + two runs == the reference on ``x`` ``[T, B, ...]``; returns the network."""
    semantics = semantics or {}
    ref = ReferenceExecutor(graph, **semantics).run(x)
    T, B = x.shape[:2]
    split = split if split is not None else T // 2
    net = get("brian2").to_native(graph, batch_size=B, target=target, inputs=inputs, **semantics)
    fg, dt = net.graph, net.dt
    spiking = [n for n in fg.order if fg.type_of(n) in sem.SPIKING_TYPES]
    neurons = [n for n in fg.order if fg.type_of(n) in sem.NEURON_TYPES]
    assert spiking and all(ref[n].any() for n in spiking), "every spiking layer should fire"
    smon = {n: b2.SpikeMonitor(net[brian2_identifier(n)]) for n in spiking}  # the user's own monitors
    net.add(*smon.values())
    vmon = {n: net.membrane_monitor(n) for n in neurons}
    start = b2.StateMonitor(net.snnbridge_groups[neurons[0]], "v", record=True)  # default slot: carried state
    net.add(start)
    for part in (x[:split], x[split:]):
        net.set_inputs(part)
        net.run(part.shape[0] * dt * b2.second)
    assert net.step == T and abs(float(net.t_) - T * dt) < 1e-9
    layout = Layout(T, B, 1)
    for n, m in smon.items():
        got = spikes_from_events(np.asarray(m.i[:]), np.asarray(m.t_[:]), dt, layout, B, fg.in_shapes[n])
        diff = int((got != ref[n]).sum())
        assert diff == 0, f"node '{n}': {diff} spikes differ"
    for n, m in vmon.items():
        v = torch.from_numpy(unflatten(m.v_[:].T, net, n))
        want = ref.membranes[n]
        assert tuple(v.shape) == tuple(want.shape)
        assert (v - want).abs().max().item() <= tol * max(1.0, want.abs().max().item()), n
    # the default StateMonitor (when='start') sees the state carried into each step: at t = 0, the initial state
    v0 = unflatten(start.v_[:, 0], net, neurons[0])
    opts = fg.options(neurons[0])
    want0 = np.zeros(v0.shape) if opts.v_init is None else np.broadcast_to(opts.v_init, v0.shape)
    assert np.array_equal(v0, want0)
    assert len(start.t) == T
    return net


# --------------------------------------------------------------------------- names, options, recurrence


def test_names_and_handles_are_documented_ones():
    g = options_graph("CubaLIF", "zero", "immediate_rechecked", "membrane", recurrent=True)
    net = get("brian2").to_native(g, batch_size=2, target="numpy")
    assert isinstance(net, b2.Network)
    assert net.snnbridge_names == {"input": "input", "a": "a", "b": "b"}
    assert set(net.snnbridge_synapses) == {("input", "a", 0), ("a", "a", 1), ("a", "b", 0)}
    assert net["a_to_a_lag1"] is net.snnbridge_synapses[("a", "a", 1)]
    assert net["a"].N == 2 * 8 and isinstance(net["input"], b2.SpikeGeneratorGroup)
    for obj in ("a_update", "a_recheck", "b_update", "input_to_a", "a_to_b"):
        assert net[obj].name == obj
    assert net.snnbridge_slots["a"] < net.snnbridge_slots["b"]
    assert brian2_identifier("lif1.lif") == "lif1_lif" and brian2_identifier("0") == "n0"


@pytest.mark.parametrize("kind,reset,timing,target", [
    ("LIF", "subtract", "delayed", "state"),
    ("CubaLIF", "zero", "immediate_rechecked", "membrane"),
    ("IF", "zero", "delayed", "state"),
    ("IF", "subtract", "immediate", "state"),
])
def test_options_and_recurrence_two_runs(kind, reset, timing, target):
    """Reset timings, initial states and a recurrent Affine with bias; the run boundary cuts no recurrent edge."""
    g = options_graph(kind, reset, timing, target, recurrent=True)
    x = (torch.rand((24, 3, 6), generator=torch.Generator().manual_seed(5)) < 0.5).double()
    check_native(g, x, split=11, tol=0.0)


def test_record_continues_and_equals_run_native():
    """``net.record`` / ``Brian2Backend.run_native``: a Recording per call, continuing in time."""
    g = options_graph("LIF", "subtract", "immediate_rechecked", "state", recurrent=True)
    x = (torch.rand((20, 2, 6), generator=torch.Generator().manual_seed(6)) < 0.5).double()
    ref = ReferenceExecutor(g).run(x)
    backend = get("brian2")
    net = backend.to_native(g, batch_size=2, target="numpy")
    r1 = backend.run_native(net, x[:7])
    r2 = net.record(x[7:])
    assert r1.backend == "brian2-native" and set(r1.outputs) == {"a", "b", "output"}
    for n in ("a", "b", "output"):
        assert torch.equal(torch.cat([r1[n], r2[n]]), ref[n]), n
        assert r1[n].dtype == torch.bool
    for n in ("a", "b"):
        torch.testing.assert_close(torch.cat([r1.membranes[n], r2.membranes[n]]), ref.membranes[n], rtol=0, atol=0)
    assert len(net.objects) == len(backend.to_native(g, batch_size=2, target="numpy").objects)  # monitors removed
    with pytest.raises(NativeModelError):
        backend.run_native(torch.nn.Linear(2, 2), x)


def test_delayed_spikes_cross_the_run_boundary():
    """A Delay of 0..3 steps (Synapses delays): spikes queued at the end of one run arrive in the next."""
    n, dt = 4, 1e-3
    nodes = [("fc", nir.Linear(weight=np.eye(n) * 2.0)),
             ("lif", nir.LIF(tau=np.full(n, 0.002), r=np.ones(n) * 2, v_leak=np.zeros(n), v_threshold=np.ones(n),
                             v_reset=np.zeros(n))),
             ("delay", nir.Delay(delay=np.array([0, 1, 2, 3]) * dt)),
             ("fc2", nir.Affine(weight=np.full((n, n), 0.9), bias=np.full(n, 0.1))),
             ("if", nir.IF(r=np.ones(n), v_threshold=np.ones(n), v_reset=np.zeros(n)))]
    g = chain(nodes, (n,), (n,), Semantics(dt))
    x = (torch.rand((30, 3, n), generator=torch.Generator().manual_seed(1)) < 0.5).double()
    check_native(g, x, split=14)


def test_cython_target():
    g = options_graph("LIF", "subtract", "delayed", "state", recurrent=True)
    x = (torch.rand((16, 2, 6), generator=torch.Generator().manual_seed(8)) < 0.5).double()
    net = check_native(g, x, target="cython", tol=0.0)
    assert net.target == "cython"


# --------------------------------------------------------------------------- real graphs and Table-1 structures

NATIVE_PEERS = {  # stem -> (T, B, inputs); shorter than the backend tests: every net.run generates code
    "lif_norse": (40, 2, "analog"),
    "cnn_sinabs": (8, 1, "spikes"),
    "braille_noDelay_noBias_subtract": (40, 2, "spikes"),
    "braille_noDelay_bias_zero": (40, 2, "spikes"),
}


@pytest.mark.parametrize("stem", list(NATIVE_PEERS))
def test_shared_graph(shared_graph, stem):
    semantics, shape, _, p = PEERS[stem]
    T, B, inputs = NATIVE_PEERS[stem]
    g = read_graph(shared_graph(stem))
    if inputs == "analog":
        x = torch.full((T, B) + shape, 0.2, dtype=torch.float64)
        x[T // 3:, 1] = 0.05
    else:
        x = spikes(shape, 0.3 if stem == "cnn_sinabs" else p, 7, T, B)
    check_native(g, x, semantics, inputs=inputs)


@pytest.mark.parametrize("key", list(SMALL_INPUTS))
def test_table1_structure(key):
    graph, x, semantics = small_table1(key, "lif", "subtract", T=6, B=2)
    check_native(graph, x, semantics, split=2)


# --------------------------------------------------------------------------- plasticity, reuse, refusals

STDP = {
    "model": "wmax : 1 (shared, constant)\ndApre/dt = -Apre/taupre : 1 (event-driven)\n"
             "dApost/dt = -Apost/taupost : 1 (event-driven)",
    "on_pre": "Apre += dApre\nw = clip(w + Apost, -wmax, wmax)",
    "on_post": "Apost += dApost\nw = clip(w + Apre, -wmax, wmax)",
}


@pytest.mark.parametrize("amplitude", [0.0, 0.01])
def test_stdp_on_an_exposed_synapses(amplitude):
    """STDP on ``input -> a``: with zero amplitude the network still equals the reference; otherwise the
    weights move (and only then the spikes may leave the reference)."""
    g = options_graph("LIF", "subtract", "immediate", "state")
    x = (torch.rand((20, 2, 6), generator=torch.Generator().manual_seed(9)) < 0.5).double()
    ns = {"taupre": 5e-3 * b2.second, "taupost": 5e-3 * b2.second, "dApre": amplitude, "dApost": -amplitude}
    net = get("brian2").to_native(g, batch_size=2, target="numpy",
                                  plasticity={("input", "a"): dict(STDP, namespace=ns)})
    syn = net.snnbridge_synapses[("input", "a", 0)]
    syn.wmax = 10.0
    w0 = np.array(syn.w[:])
    rec = net.record(x)
    ref = ReferenceExecutor(g).run(x)
    if amplitude == 0:
        assert torch.equal(rec["a"], ref["a"]) and torch.equal(rec["b"], ref["b"])
        assert np.array_equal(np.asarray(syn.w[:]), w0)
    else:
        assert not np.array_equal(np.asarray(syn.w[:]), w0)
    with pytest.raises(UnsupportedNodeError, match="node 'b'.*no spike-driven Synapses"):
        get("brian2").to_native(g, target="numpy", plasticity={("input", "b"): STDP})


def test_weights_can_be_changed_between_runs():
    g = options_graph("IF", "subtract", "immediate", "state")
    x = (torch.rand((10, 1, 6), generator=torch.Generator().manual_seed(2)) < 0.5).double()
    net = get("brian2").to_native(g, target="numpy")
    net.snnbridge_synapses[("input", "a", 0)].w = 0.0
    rec = net.record(x)
    assert not rec["a"][: 1].any() or g.nodes["fc"].bias.max() > 0  # only the bias drives 'a' now
    assert not torch.equal(rec["a"], ReferenceExecutor(g).run(x)["a"])


def test_simulation_network_accepts_a_user_monitor():
    """The issue's KeyError: a StateMonitor added to a compiled simulation's network, then run again."""
    g = options_graph("LIF", "subtract", "delayed", "state")
    x = (torch.rand((10, 2, 6), generator=torch.Generator().manual_seed(3)) < 0.5).double()
    sim = get("brian2").compile(g, target="numpy", input_projection="synapses")
    ref = ReferenceExecutor(g).run(x)
    assert torch.equal(sim.run(x)["a"], ref["a"])
    mon = b2.StateMonitor(sim.network["g" + str(sim.plan.groups["a"].index)], "v", record=True)
    sim.network.add(mon)
    assert torch.equal(sim.run(x)["a"], ref["a"])
    assert mon.v.shape[1] == 10


def test_refusals_name_the_node():
    with pytest.raises(UnsupportedNodeError, match=r"node 'lif'.*analog output of LI node 'li'"):
        get("brian2").to_native(_li_delay_graph(2), target="numpy")
    n = 3
    g = chain([("a", nir.Linear(weight=np.eye(n))), ("b", nir.Linear(weight=np.eye(n) * 0.5)),
               ("lif", nir.LIF(tau=np.full(n, 0.01), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                               v_reset=np.zeros(n)))], (n,), (n,), Semantics(1e-3), extra_edges=[("b", "a")])
    with pytest.raises(GraphError, match="node 'b'"):
        get("brian2").to_native(g, target="numpy")
    with pytest.raises(ValueError, match="target"):
        get("brian2").to_native(options_graph("IF", "zero", "immediate", "state"), target="cpp_standalone")


def test_bad_inputs_are_refused():
    g = options_graph("IF", "zero", "immediate", "state")
    net = get("brian2").to_native(g, batch_size=2, target="numpy")
    with pytest.raises(InputError, match=r"must be \[T, 2, 6\]"):
        net.set_inputs(torch.zeros((5, 3, 6)))
    with pytest.raises(InputError, match="not 0/1 spikes.*inputs='analog'"):
        net.set_inputs(torch.full((5, 2, 6), 0.5))
    with pytest.raises(InputError, match="NaN"):
        net.set_inputs(torch.full((5, 2, 6), float("nan")))
    analog = get("brian2").to_native(g, batch_size=2, target="numpy", inputs="analog")
    x = torch.full((6, 2, 6), 0.5, dtype=torch.float64)
    ref = ReferenceExecutor(g).run(x)
    assert torch.equal(analog.record(x)["a"], ref["a"])
