"""Conformance: planted divergences are detected, localised to the right node and classified; profiles decide."""

from __future__ import annotations

import copy

import nir
import numpy as np
import pytest
import torch

from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.recording import Recording
from snnbridge.validation import PROFILES, BackendSpec, assert_conformant, conform
from snnbridge.validation.conformance import Profile


def lif(n: int, thr: float = 0.5) -> nir.LIF:
    return nir.LIF(tau=np.full(n, 2e-3), r=np.full(n, 2.0), v_leak=np.zeros(n), v_threshold=np.full(n, thr),
                   v_reset=np.zeros(n))


def mlp(seed: int = 0, n_in: int = 12, n_hid: int = 16, n_out: int = 4) -> nir.NIRGraph:
    """input → fc1 → lif1 → fc2 → lif2 → output, weights that make both layers fire (euler, dt 1 ms, zero reset)."""
    r = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "fc1": nir.Linear(weight=r.normal(0.25, 0.5, (n_hid, n_in))), "lif1": lif(n_hid),
             "fc2": nir.Affine(weight=r.normal(0.3, 0.6, (n_out, n_hid)), bias=r.normal(0, 0.05, n_out)),
             "lif2": lif(n_out), "output": nir.Output(output_type={"output": np.array([n_out])})}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3, "reset": "zero", "integration": "euler"},
                        type_check=False)


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(25, 12, 12, generator=g) < 0.35).double()
    y = torch.arange(12) % 4
    return x, y


def test_reference_conforms_to_itself(data):
    x, y = data
    r = conform(mlp(), x, ["reference"], labels=y)
    b = r.backends["reference"]
    assert r.passed and r.exit_code == 0 and b.status == "pass"
    assert b.first_divergent_node is None
    assert all(n.agree and n.explanation.kind == "agree" for n in b.nodes.values())
    assert b.prediction_agreement == 1.0 and b.accuracy == r.yardstick.accuracy
    assert b.nodes["lif1"].events.f1 == 1.0 and b.nodes["lif1"].van_rossum_mean == 0.0
    assert b.nodes["lif1"].membrane_max_abs == 0.0


def test_planted_reset_divergence_everywhere(data):
    x, y = data
    r = conform(mlp(), x, ["reference@reset=subtract"], labels=y)
    b = r.backends["reference@reset=subtract"]
    assert not r.passed and r.exit_code == 1 and b.status == "fail"
    assert b.first_divergent_node == "lif1"
    n = b.nodes["lif1"]
    assert n.origin and n.inputs_agree and n.explanation.kind == "reset"
    assert "subtract" in n.explanation.text
    assert b.nodes["fc2"].explanation.kind == "propagated"
    assert "lif1" in b.nodes["fc2"].explanation.text
    fd = b.first_divergence
    assert fd is not None and fd.step >= 1  # a reset can only matter after a first spike
    ref_spikes = r.yardstick.recording["lif1"]
    assert ref_spikes[: fd.step].equal(b.recording["lif1"][: fd.step])


def _with_node_reset(graph: nir.NIRGraph, node: str, mode: str) -> nir.NIRGraph:
    g = copy.deepcopy(graph)
    g.nodes[node].metadata = {"reset": mode}
    return g


def test_planted_reset_in_second_layer_is_localised(data):
    x, _ = data
    graph = mlp()
    planted = BackendSpec("lif2-subtract", runner=lambda g, xb, dtype, **kw: ReferenceExecutor(
        _with_node_reset(graph, "lif2", "subtract"), dtype=dtype).run(xb))
    b = conform(graph, x, [planted]).backends["lif2-subtract"]
    assert b.status == "fail"
    assert b.nodes["lif1"].agree and b.nodes["fc2"].agree
    assert b.first_divergent_node == "lif2"
    assert b.nodes["lif2"].explanation.kind == "reset"
    assert b.nodes["output"].explanation.kind == "propagated"


def _delayed_lif1(graph: nir.NIRGraph):
    """A run whose 'lif1' spikes reach everything one step late (a planted constant latency)."""

    def run(g, xb, dtype, **kw):
        h = copy.deepcopy(graph)
        h.nodes["d"] = nir.Delay(delay=np.full(16, 1e-3))
        h.edges = [e for e in h.edges if e != ("lif1", "fc2")] + [("lif1", "d"), ("d", "fc2")]
        rec = ReferenceExecutor(h, dtype=dtype).run(xb)
        outs = {k: v for k, v in rec.outputs.items() if k != "d"}
        outs["lif1"] = rec["d"]
        return Recording(outs, dict(rec.membranes), {k: v for k, v in rec.node_types.items() if k != "d"}, rec.dt,
                         "planted", [n for n in rec.order if n != "d"])

    return run


def test_planted_latency_is_classified(data):
    x, _ = data
    graph = mlp()
    b = conform(graph, x, [BackendSpec("late", runner=_delayed_lif1(graph))]).backends["late"]
    assert b.first_divergent_node == "lif1"
    n = b.nodes["lif1"]
    assert n.explanation.kind == "latency" and n.explanation.details["best_lag"] == 1
    assert b.nodes["fc2"].explanation.kind == "propagated"
    assert b.nodes["lif1"].membrane_max_abs == 0.0  # the neuron itself integrated alike


def near_threshold_graph() -> nir.NIRGraph:
    """v = 0.5 + 1e-9 crosses θ = 0.5 in float64 but rounds to exactly θ (no spike) in float32."""
    w = np.array([[0.5 + 1e-9], [0.25]])
    nodes = {"input": nir.Input(input_type={"input": np.array([1])}), "fc": nir.Linear(weight=w),
             "if": nir.IF(r=np.ones(2), v_threshold=np.full(2, 0.5), v_reset=np.zeros(2)),
             "output": nir.Output(output_type={"output": np.array([2])})}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "if"), ("if", "output")],
                        metadata={"dt": 1e-3, "reset": "zero"}, type_check=False)


def test_near_threshold_flip_float32_profile():
    x = torch.zeros(6, 50, 1, dtype=torch.float64)
    x[0] = 1.0  # one input spike: neuron 0 sits 1e-9 above θ, neuron 1 well below
    r = conform(near_threshold_graph(), x, ["reference"], profile="float32")
    b = r.backends["reference"]
    n = b.nodes["if"]
    assert not n.agree and n.explanation.kind == "near_threshold"
    assert n.explanation.details["max_margin"] <= 1e-8
    assert b.nodes["fc"].agree  # 1e-9 is within float32 tolerance
    assert b.first_divergent_node == "if"
    # neuron 0 flips in every sample: half of the 100 trains → beyond the 1% bound → fail
    assert b.status == "fail" and "near-threshold" in b.failures[0]
    loose = Profile("loose32", torch.float32, 1e-4, 1e-6, True, 0.6, 1e-4)
    assert conform(near_threshold_graph(), x, ["reference"], profile=loose).passed
    exact = conform(near_threshold_graph(), x, ["reference@float32"], profile="exact")
    assert not exact.passed  # exact never allows a flip


def test_float32_profile_passes_ordinary_float32_run(data):
    x, _ = data
    r = conform(mlp(1), x, ["reference"], profile="float32")
    assert r.backends["reference"].dtype == "float32"
    assert r.passed, r.summary()


def test_profiles_are_defined():
    assert PROFILES["exact"].dtype == torch.float64 and not PROFILES["exact"].near_threshold
    assert PROFILES["float32"].max_flip_fraction == 0.01


def test_unavailable_error_and_audit(data):
    x, _ = data

    def crash(g, xb, dtype, **kw):
        raise RuntimeError("simulator exploded")

    specs = ["reference", BackendSpec("nosuch", backend="nosuch-backend"), BackendSpec("crash", runner=crash),
             BackendSpec("crash-audit", runner=crash, audit=True)]
    r = conform(mlp(), x, specs)
    assert r.backends["nosuch"].status == "unavailable"
    assert r.backends["crash"].status == "error" and "simulator exploded" in r.backends["crash"].reason
    assert r.backends["crash-audit"].status == "error" and not r.backends["crash-audit"].counted
    assert r.failed == ["crash"]
    ok = conform(mlp(), x, ["reference", BackendSpec("crash-audit", runner=crash, audit=True)])
    assert ok.passed  # an audit failure does not fail the check


def test_output_only_recording_uses_yardstick(data):
    """Like an upstream importer that returns only the output: judged on that node, against the reference."""
    x, _ = data
    graph = mlp()

    def output_only(g, xb, dtype, **kw):
        rec = ReferenceExecutor(graph, reset="subtract", dtype=dtype).run(xb)
        return Recording({"output": rec["output"]}, {}, {"output": "Output"}, rec.dt, "upstream", ["output"])

    b = conform(graph, x, [BackendSpec("up", runner=output_only, audit=True)]).backends["up"]
    assert [n for n, r in b.nodes.items() if r.compared] == ["output"]
    assert b.first_divergent_node == "output" and b.nodes["output"].origin is None
    assert b.nodes["output"].explanation.kind == "reset"


def test_assert_conformant_readable_diff(data):
    x, _ = data
    assert_conformant(mlp(), x, backends=["reference"])
    with pytest.raises(AssertionError) as e:
        assert_conformant(mlp(), x, backends=["reference@reset=subtract"])
    msg = str(e.value)
    assert "reference@reset=subtract [FAIL]" in msg and "node 'lif1'" in msg and "reset semantics" in msg
    with pytest.raises(AssertionError, match="unavailable"):
        assert_conformant(mlp(), x, backends=[BackendSpec("nosuch", backend="nosuch-backend")], require_all=True)


def _available(name: str) -> bool:
    from snnbridge import backends

    try:
        backends.get(name)
        return True
    except Exception:  # noqa: BLE001 - not installed or not written yet
        return False


@pytest.mark.parametrize("name", ["snntorch", "norse", "brian2"])
def test_real_backends_conform_exactly(name, data):
    if not _available(name):
        pytest.skip(f"backend {name} unavailable")
    x, y = data
    options = {"target": "numpy"} if name == "brian2" else {}
    r = conform(mlp(), x[:12, :4], [BackendSpec(name, options=options)], labels=y[:4])
    assert r.passed, r.summary()
    assert r.backends[name].nodes["lif2"].agree


@pytest.mark.parametrize("case", ["if_threshold_exact", "recurrent_lif_zero", "cubalif_zero", "conv2d_groups_if"])
def test_node_suite_planted_reset(case):
    """Exact-threshold ties, recurrence, synaptic currents, grouped convs: still found and called a reset difference."""
    from snnbridge.validation.node_suite import node_cases

    c = next(k for k in node_cases() if k.name == case)
    b = conform(c.graph, c.inputs, ["reference@reset=subtract"], **c.semantics).backends["reference@reset=subtract"]
    neuron = next(n for n in b.nodes if c.graph.nodes.get(n).__class__.__name__ in ("LIF", "IF", "CubaLIF"))
    assert b.first_divergent_node == neuron
    assert b.nodes[neuron].explanation.kind == "reset", b.nodes[neuron].explanation.text


def test_assert_conformant_never_passes_silently(data):
    """An unknown backend name fails; a registered simulator that is not installed skips, naming the pip command."""
    from snnbridge.backends import base

    x, _ = data
    with pytest.raises(AssertionError, match="unknown backend 'snntroch'"):
        assert_conformant(mlp(), x, backends=["reference", "snntroch"])

    class Missing(base.Backend):
        name = "missing-sim"
        requires = ("snnbridge_no_such_simulator",)
        pip = "pip install snnbridge-no-such-simulator"

        def compile(self, graph, **kw):  # pragma: no cover - never reached: not installed
            raise AssertionError("compiled a missing simulator")

    base.register("missing-sim", Missing)
    try:
        with pytest.raises(pytest.skip.Exception, match="pip install snnbridge-no-such-simulator"):
            assert_conformant(mlp(), x, backends=["reference", "missing-sim"])
        with pytest.raises(AssertionError, match="unavailable"):
            assert_conformant(mlp(), x, backends=["reference", "missing-sim"], require_all=True)
    finally:
        base._FACTORIES.pop("missing-sim", None)


def test_conform_with_the_original_native_module(data):
    """``original=module``: the user's snnTorch module, run natively, is a row of its own and passes."""
    snn = pytest.importorskip("snntorch")
    from torch import nn

    from snnbridge import backends

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 16), snn.Leaky(beta=0.8, init_hidden=True),
                        nn.Linear(16, 4), snn.Leaky(beta=0.8, init_hidden=True, output=True))
    with torch.no_grad():
        net[0].weight.mul_(4.0)
        net[2].weight.mul_(4.0)
    graph = backends.get("snntorch").from_native(net, input_shape=(12,))
    x, _ = data
    r = conform(graph, x, ["reference"], original=net)
    row = r.backends["original"]
    assert row.backend == "snntorch-native" and row.status == "pass", r.summary()
    compared = [n for n, res in row.nodes.items() if res.compared and res.spiking]
    assert len(compared) >= 2 and "original" in [b["name"] for b in r.to_dict()["backends"]]
    # and a module that steps differently is caught: same weights, reset_delay=False
    other = nn.Sequential(nn.Linear(12, 16), snn.Leaky(beta=0.8, init_hidden=True, reset_delay=False),
                          nn.Linear(16, 4), snn.Leaky(beta=0.8, init_hidden=True, output=True))
    other.load_state_dict(net.state_dict())
    bad = conform(graph, x, ["reference"], original=other).backends["original"]
    assert bad.status == "fail"
