"""Per-node step options of the reference semantics (reset timing, zero-reset target, initial state, pinned
constants) — each checked against hand-computed values and against the library code it was read from."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from snnbridge.bridge import semantics as sem
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.graph import prepare
from snnbridge.bridge.io import read_graph, write_graph
from snnbridge.errors import GraphError


def _coeff(beta, thr, alpha=None, dtype=torch.float64) -> sem.TensorCoefficients:
    t = lambda a: None if a is None else torch.tensor(a, dtype=dtype)  # noqa: E731
    return sem.TensorCoefficients(t(beta), t(1.0), t(0.0), t(thr), t(0.0), t(alpha), t(None if alpha is None else 1.0))


def _run(c, xs, reset, timing, target, syn=False):
    state = sem.NeuronState(torch.zeros_like(xs[0]), torch.zeros_like(xs[0]) if syn else None)
    spikes, mems, carried = [], [], []
    for x in xs:
        s, state, v = sem.neuron_step(state, x, c, reset, timing=timing, zero_target=target)
        spikes.append(s)
        mems.append(v)
        carried.append(state.v)
    return torch.stack(spikes), torch.stack(mems), torch.stack(carried)


def test_rechecked_subtract_by_hand():
    """snnTorch reset_delay=False, thr 1, beta 0.5, inputs 2.6 then 0.4: the residual 1.6 is subtracted again."""
    c = _coeff(0.5, 1.0)
    xs = torch.tensor([[2.6], [0.4], [0.0]], dtype=torch.float64)
    s, v, m = _run(c, xs, "subtract", "immediate_rechecked", "state")
    assert s.flatten().tolist() == [1.0, 0.0, 0.0]
    assert v[1].item() == pytest.approx(0.5 * 1.6 + 0.4 - 1.0)  # decided with the deferred reset: 0.2, no spike
    assert m[1].item() == pytest.approx(1.2)  # ... which is then undone: the carried state is 1.2
    s_ref, _, _ = _run(c, xs, "subtract", "immediate", "state")
    assert s_ref.flatten().tolist() == [1.0, 1.0, 0.0]  # the reference spikes at both steps


def test_delayed_subtract_by_hand():
    """snnTorch reset_delay=True: u[t] = beta*u[t-1] + I[t] - thr*S[t-1]."""
    c = _coeff(0.5, 1.0)
    xs = torch.tensor([[1.5], [0.2], [0.0], [0.0]], dtype=torch.float64)
    s, v, _ = _run(c, xs, "subtract", "delayed", "state")
    assert s.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]
    assert v.flatten().tolist() == pytest.approx([1.5, 0.75 + 0.2 - 1.0, 0.5 * -0.05, 0.25 * -0.05])


def test_delayed_zero_targets_differ():
    """Leaky zeroes the carried state and keeps the step's input; Synaptic/RLeaky zero the new membrane."""
    c = _coeff(0.5, 1.0)
    xs = torch.tensor([[1.5], [0.7], [0.0]], dtype=torch.float64)
    _, v_state, _ = _run(c, xs, "zero", "delayed", "state")
    _, v_mem, _ = _run(c, xs, "zero", "delayed", "membrane")
    assert v_state[1].item() == 0.7 and v_mem[1].item() == 0.0
    _, v_imm, _ = _run(c, xs, "zero", "immediate", "state")
    assert torch.equal(v_state, v_imm)  # a delayed zero reset of the state equals the immediate one


def _snn_native(cls, xs, beta, thr, reset, delay, alpha=None):
    """Step one snnTorch neuron natively (explicit states), float64 membranes: (spikes, membranes)."""
    kw = {"beta": beta, "threshold": thr, "reset_mechanism": reset, "reset_delay": delay}
    if alpha is not None:
        kw["alpha"] = alpha
    n = cls(**kw).double()
    mem = torch.zeros_like(xs[0])
    syn = torch.zeros_like(xs[0])
    spikes, mems = [], []
    for x in xs:
        if alpha is None:
            s, mem = n(x, mem)
        else:
            s, syn, mem = n(x, syn, mem)
        spikes.append(s.double())
        mems.append(n.mem if hasattr(n, "mem") and n.mem is not None else mem)
    return torch.stack(spikes)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("delay", [True, False])
@pytest.mark.parametrize("cls_name", ["Leaky", "Synaptic"])
def test_timing_options_match_snntorch_code(cls_name, delay, reset):
    """The options were read from snnTorch's code: they reproduce its neurons spike for spike (float64)."""
    snn = pytest.importorskip("snntorch")
    gen = torch.Generator().manual_seed(3)
    xs = torch.rand(60, 4, 16, generator=gen, dtype=torch.float64) * 2.8 - 0.4
    beta, alpha, thr = 0.8, (0.6 if cls_name == "Synaptic" else None), 1.0
    native = _snn_native(getattr(snn, cls_name), xs, beta, thr, reset, delay, alpha)
    timing = "delayed" if delay else "immediate_rechecked"
    target = "state" if cls_name == "Leaky" else "membrane"
    c = _coeff(beta, thr, alpha)
    ours, _, _ = _run(c, xs, reset, timing, target, syn=alpha is not None)
    assert native.sum() > 50  # the layer really fires
    assert torch.equal(ours, native)
    if reset == "subtract":  # and the option matters: the reference's immediate reset differs
        ref, _, _ = _run(c, xs, reset, "immediate", target, syn=alpha is not None)
        assert not torch.equal(ref, native)


def _lif_graph(meta: dict, tau=0.01, thr=1.0, n=3, dt=1e-3) -> nir.NIRGraph:
    from snnbridge.bridge.metadata import make_metadata

    lif = nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / dt), v_leak=np.zeros(n), v_threshold=np.full(n, thr),
                  metadata=meta)
    return nir.NIRGraph(nodes={"input": nir.Input(np.array([n])), "lif": lif, "output": nir.Output(np.array([n]))},
                        edges=[("input", "lif"), ("lif", "output")],
                        metadata=make_metadata(sem.Semantics(dt, "subtract")))


def test_options_round_trip_through_a_nir_file(tmp_path):
    meta = {"reset": "zero", "reset_timing": "delayed", "zero_reset_target": "membrane",
            "v_init": np.array([0.1, 0.2, 0.3]), "decay": np.float64(0.9), "gain": np.float64(1.0),
            "bias": np.float64(0.0), "coefficients_dt": 1e-3}
    path = write_graph(tmp_path / "g.nir", _lif_graph(meta))
    g = nir.read(path, type_check=True)
    fg = prepare(read_graph(path))
    o = fg.options("lif")
    assert (o.reset, o.reset_timing, o.zero_reset_target) == ("zero", "delayed", "membrane")
    assert np.array_equal(o.v_init, [0.1, 0.2, 0.3]) and isinstance(g, nir.NIRGraph)
    c = fg.coefficients("lif")
    assert float(c.decay) == 0.9 and float(c.gain) == 1.0  # pinned, bit for bit (1 - dt/tau is 0.9 + 1 ulp)
    assert prepare(read_graph(path), dt=2e-3).coefficients("lif").decay[0] == 1 - 2e-3 / 0.01  # other dt


def test_initial_state_is_used():
    g = _lif_graph({"v_init": np.array([0.95, 0.0, -5.0])}, tau=0.01, thr=1.0)
    x = torch.full((3, 1, 3), 0.2, dtype=torch.float64)
    rec = ReferenceExecutor(g).run(x)
    assert rec.membranes["lif"][0, 0, 0].item() == pytest.approx(0.9 * 0.95 + 0.1 * 10 * 0.2)
    assert rec.spikes("lif")[0, 0].tolist() == [True, False, False]


@pytest.mark.parametrize("meta,field", [
    ({"decay": 0.5, "coefficients_dt": 1e-3}, "metadata.decay"),  # disagrees with tau: 0.9
    ({"reset_timing": "later"}, "metadata.reset_timing"),
    ({"reset": "zero", "reset_timing": "delayed", "zero_reset_target": "both"}, "metadata.zero_reset_target"),
    ({"v_init": np.array([1.0, np.nan, 0.0])}, "metadata.v_init"),
    ({"v_init": np.ones(5)}, "metadata.v_init"),
    ({"reset": "sideways"}, "metadata.reset"),
])
def test_bad_options_are_refused_by_name(meta, field):
    with pytest.raises(GraphError, match=rf"node 'lif', field '{field}'"):
        prepare(_lif_graph(meta))


def test_delayed_zero_needs_v_reset_zero():
    g = _lif_graph({"reset": "zero", "reset_timing": "delayed"})
    g.nodes["lif"] = nir.LIF(tau=np.full(3, 0.01), r=np.full(3, 10.0), v_leak=np.zeros(3), v_threshold=np.ones(3),
                             v_reset=np.full(3, 0.2), metadata=g.nodes["lif"].metadata)
    with pytest.raises(GraphError, match="field 'v_reset'"):
        prepare(g)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inclusive_compare_equals_strict_compare_below(dtype):
    """v >= θ  <=>  v - nextafter(θ, -inf) > 0, for every float, including θ itself, its neighbours, ±0 and
    subnormals (what every backend relies on to realise the paper's inclusive threshold)."""
    gen = torch.Generator().manual_seed(7)
    theta = torch.cat([torch.tensor([0.5, 2.0, 2.5, 1.0, 0.0, -0.0, 1e-45, -3.0, 1e30]),
                       torch.randn(2000, generator=gen) * 10]).to(dtype)
    inf = torch.full_like(theta, float("inf"))
    for v in (theta, torch.nextafter(theta, inf), torch.nextafter(theta, -inf),
              torch.nextafter(torch.nextafter(theta, -inf), -inf), theta + torch.randn(theta.shape, dtype=dtype)):
        strict = sem.heaviside(v - sem.inclusive_threshold(theta)).bool()
        assert torch.equal(strict, v >= theta)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inclusive_threshold_fires_on_equality_and_subtracts_theta(dtype):
    """Pooling-like inputs in multiples of 0.25 land on θ = 0.5 exactly: strict misses, inclusive fires, and the
    subtract reset removes θ itself (not the float below it)."""
    g = _lif_graph({}, tau=0.01, thr=0.5)
    g.nodes["lif"] = nir.IF(r=np.ones(3), v_threshold=np.full(3, 0.5))
    x = torch.tensor([[0.25, 0.5, 0.75], [0.25, 0.0, 0.25], [0.0, 0.0, 0.0]], dtype=dtype).reshape(3, 1, 3)
    strict = ReferenceExecutor(g, dtype=dtype).run(x)
    g.metadata["threshold"] = "inclusive"
    inclusive = ReferenceExecutor(g, dtype=dtype).run(x)
    assert strict.spikes("lif")[:, 0].int().tolist() == [[0, 0, 1], [0, 0, 0], [0, 0, 0]]
    assert inclusive.spikes("lif")[:, 0].int().tolist() == [[0, 1, 1], [1, 0, 1], [0, 0, 0]]
    assert inclusive.membranes["lif"][:, 0, 2].tolist() == [0.75, 0.5, 0.0]  # 0.75 - 0.5 + 0.25 = 0.5 fires


def test_inclusive_round_trips_and_node_override(tmp_path):
    from snnbridge.bridge.metadata import make_metadata

    g = _lif_graph({"threshold": "strict"})
    g.metadata = make_metadata(sem.Semantics(1e-3, "subtract", "euler", "inclusive"))
    fg = prepare(read_graph(write_graph(tmp_path / "i.nir", g)))
    assert fg.semantics.threshold == "inclusive" and fg.threshold_compare("lif") == "strict"
    g.nodes["lif"].metadata = {"threshold": "sometimes"}
    with pytest.raises(GraphError, match="field 'metadata.threshold'"):
        prepare(g)
