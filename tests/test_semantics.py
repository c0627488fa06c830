"""Each NIR node's discrete step against values computed by hand (reference executor, float64)."""

import math

import nir
import numpy as np
import pytest
import torch

from snnbridge.bridge import ReferenceExecutor
from snnbridge.bridge.semantics import Semantics, leak_factors
from snnbridge.validation.node_suite import chain


def run1(node, xs, dt=1e-3, reset="zero", integration="euler", n=1):
    """Run ``input -> Linear(identity) -> node -> output`` on a 1-neuron input sequence."""
    g = chain([("fc", nir.Linear(weight=np.eye(n))), ("n", node)], (n,), (n,))
    x = torch.tensor(xs, dtype=torch.float64).reshape(len(xs), 1, n)
    rec = ReferenceExecutor(g, dt=dt, reset=reset, integration=integration).run(x)
    out = rec["n"].double().reshape(-1).tolist()
    v = rec.membranes["n"].reshape(-1).tolist() if "n" in rec.membranes else None
    return out, v


def lif(tau=2e-3, r=2.0, v_leak=0.2, thr=1.0, v_reset=0.0):
    a = lambda v: np.array([v], dtype=np.float64)  # noqa: E731
    return nir.LIF(tau=a(tau), r=a(r), v_leak=a(v_leak), v_threshold=a(thr), v_reset=a(v_reset))


def test_lif_euler_zero_reset_by_hand():
    # dt/tau = 0.5: decay 0.5, gain r*0.5 = 1, bias v_leak*0.5 = 0.1
    s, v = run1(lif(), [1, 0, 1, 1, 0])
    assert v == pytest.approx([1.1, 0.1, 1.15, 1.1, 0.1])
    assert s == [1, 0, 1, 1, 0]


def test_lif_subtract_and_none_by_hand():
    s, v = run1(lif(v_leak=0.0), [1.5, 0, 1.5], reset="subtract")
    # v1 = 1.5 -> spike, 0.5 ; v2 = 0.25 ; v3 = 0.125 + 1.5
    assert v == pytest.approx([1.5, 0.25, 1.625]) and s == [1, 0, 1]
    s, v = run1(lif(v_leak=0.0), [1.5, 0, 0], reset="none")
    assert v == pytest.approx([1.5, 0.75, 0.375]) and s == [1, 0, 0]


def test_lif_reset_to_v_reset():
    s, v = run1(lif(v_leak=0.0, v_reset=-0.5), [1.5, 0], reset="zero")
    assert v == pytest.approx([1.5, -0.25]) and s == [1, 0]


def test_lif_exact_integration_by_hand():
    s, v = run1(lif(tau=2e-3, r=2.0, v_leak=0.0, thr=10.0), [1, 1, 0], integration="exact")
    d = math.exp(-0.5)
    g = 2.0 * (1 - d)
    assert v == pytest.approx([g, d * g + g, d * (d * g + g)], rel=1e-15)


def test_threshold_is_strict():
    node = nir.IF(r=np.array([0.5]), v_threshold=np.array([1.0]), v_reset=np.array([0.0]))
    s, v = run1(node, [1, 1, 1, 1])
    assert v == [0.5, 1.0, 1.5, 0.5]  # v == threshold does not fire
    assert s == [0, 0, 1, 0]


def test_if_is_a_per_step_integrator_independent_of_dt():
    node = nir.IF(r=np.array([0.25]), v_threshold=np.array([0.6]), v_reset=np.array([0.0]))
    assert run1(node, [1, 1, 1], dt=1e-3) == run1(node, [1, 1, 1], dt=1e-4)


def test_li_and_i_by_hand():
    li = nir.LI(tau=np.array([4e-3]), r=np.array([2.0]), v_leak=np.array([1.0]))
    out, v = run1(li, [1, 0])
    # dt/tau = 0.25: decay 0.75, gain 0.5, bias 0.25
    assert out == pytest.approx([0.75, 0.8125]) and v == out
    out, _ = run1(nir.I(r=np.array([0.5])), [1, 2, -1])
    assert out == pytest.approx([0.5, 1.5, 1.0])


def test_cubalif_uses_the_new_current_by_hand():
    node = nir.CubaLIF(tau_syn=np.array([2e-3]), tau_mem=np.array([4e-3]), r=np.array([4.0]),
                       v_leak=np.array([0.0]), v_threshold=np.array([1.2]), v_reset=np.array([0.0]),
                       w_in=np.array([2.0]))
    s, v = run1(node, [1, 0, 0])
    # i: syn_decay 0.5, syn_gain 2*0.5 = 1 -> i = 1, 0.5, 0.25
    # v: decay 0.75, gain 4*0.25 = 1 -> v = 1, 0.75 + 0.5 = 1.25 (spike, reset 0), 0 + 0.25
    assert v == pytest.approx([1.0, 1.25, 0.25]) and s == [0, 1, 0]


def test_cubali_by_hand():
    node = nir.CubaLI(tau_syn=np.array([2e-3]), tau_mem=np.array([4e-3]), r=np.array([4.0]),
                      v_leak=np.array([0.0]), w_in=np.array([1.0]))
    out, _ = run1(node, [1, 0])
    assert out == pytest.approx([0.5, 0.375 + 0.25])


def test_leak_factors_euler_and_exact():
    d, f = leak_factors(np.array([4e-3]), 1e-3, "euler")
    assert d[0] == 0.75 and f[0] == 0.25
    d, f = leak_factors(np.array([4e-3]), 1e-3, "exact")
    assert d[0] == pytest.approx(math.exp(-0.25)) and f[0] == pytest.approx(1 - math.exp(-0.25))


def test_feed_forward_chain_has_no_delay_within_a_step():
    one = np.array([1.0])
    ifn = lambda: nir.IF(r=one, v_threshold=np.array([0.5]), v_reset=np.array([0.0]))  # noqa: E731
    g = chain([("a", nir.Linear(weight=np.eye(1))), ("n1", ifn()), ("b", nir.Linear(weight=np.eye(1))),
               ("n2", ifn()), ("c", nir.Linear(weight=np.eye(1))), ("n3", ifn())], (1,), (1,))
    x = torch.tensor([1.0, 0.0, 0.0]).reshape(3, 1, 1)
    rec = ReferenceExecutor(g).run(x)
    for n in ("n1", "n2", "n3"):
        assert rec[n].reshape(-1).tolist() == [True, False, False]


def test_recurrent_edge_delivers_the_previous_step():
    one = np.array([1.0])
    g = chain([("a", nir.Linear(weight=np.eye(1))),
               ("n", nir.IF(r=one, v_threshold=np.array([0.5]), v_reset=np.array([0.0])))], (1,), (1,),
              extra_edges=[("n", "rec"), ("rec", "n")])
    g.nodes["rec"] = nir.Linear(weight=np.eye(1))
    rec = ReferenceExecutor(g).run(torch.tensor([1.0, 0, 0, 0]).reshape(4, 1, 1))
    # a spike at t re-enters at t+1: a self-sustaining train
    assert rec["n"].reshape(-1).tolist() == [True, True, True, True]
    assert rec.membranes["n"].reshape(-1).tolist() == [1.0, 1.0, 1.0, 1.0]


def test_fan_in_is_summed():
    g = chain([("a", nir.Linear(weight=np.array([[0.25]]))), ("i", nir.I(r=np.array([1.0])))], (1,), (1,),
              extra_edges=[("input", "b"), ("b", "i")])
    g.nodes["b"] = nir.Linear(weight=np.array([[0.5]]))
    rec = ReferenceExecutor(g).run(torch.ones(2, 1, 1))
    assert rec["i"].reshape(-1).tolist() == [0.75, 1.5]


def test_delay_node_shifts_by_round_delay_over_dt():
    g = chain([("d", nir.Delay(delay=np.array([2e-3, 0.0])))], (2,), (2,))
    x = torch.zeros(5, 1, 2)
    x[0, 0, :] = 1.0
    rec = ReferenceExecutor(g, dt=1e-3).run(x)
    assert rec["d"][:, 0, 0].tolist() == [0, 0, 1, 0, 0]
    assert rec["d"][:, 0, 1].tolist() == [1, 0, 0, 0, 0]


def test_stateless_nodes_match_hand_values():
    x = torch.arange(2 * 4 * 6, dtype=torch.float64).reshape(1, 1, 2, 4, 6)
    pool = nir.AvgPool2d(kernel_size=np.array([2, 3]), stride=np.array([2, 3]), padding=np.array([0, 0]))
    spool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    g = chain([("p", pool)], (2, 4, 6), (2, 2, 2))
    out = ReferenceExecutor(g).run(x)["p"][0, 0]
    assert out[0, 0, 0].item() == np.mean([0, 1, 2, 6, 7, 8])
    g = chain([("p", spool), ("f", nir.Flatten(input_type={"input": np.array([2, 2, 3])}, start_dim=0, end_dim=-1)),
               ("s", nir.Scale(scale=np.full(12, 2.0))), ("t", nir.Threshold(threshold=np.full(12, 100.0)))],
              (2, 4, 6), (12,))
    rec = ReferenceExecutor(g).run(x)
    assert rec["p"][0, 0, 0, 0, 0].item() == 0 + 1 + 6 + 7
    assert rec["f"].shape == (1, 1, 12)
    assert rec["s"][0, 0, 0].item() == 28.0
    assert rec["t"][0, 0].tolist() == (rec["s"][0, 0] > 100).tolist()


def test_semantics_validates_its_options():
    with pytest.raises(ValueError, match="reset"):
        Semantics(reset="hard")
    with pytest.raises(ValueError, match="dt"):
        Semantics(dt=0.0)
    with pytest.raises(ValueError, match="integration"):
        Semantics(integration="rk4")


@pytest.mark.parametrize("mode", ["zero", "subtract", "none"])
@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_in_place_forms_equal_fire_and_reset(mode, uniform, dtype):
    """The fused executor's in-place fire/reset (semantics.fire_into / reset_inplace) give fire/reset's bits."""
    from snnbridge.bridge import semantics as sem

    g = torch.Generator().manual_seed(3)
    v = (torch.randn(64, 33, generator=g, dtype=torch.float64) * 2).to(dtype)
    v[0, :4] = torch.tensor([1.0, 0.5, float("inf"), -0.0], dtype=dtype)  # ties, overflow, signed zero
    thr_t = (torch.rand(33, generator=g, dtype=torch.float64) + 0.5).to(dtype)
    thr_t[0] = 1.0
    rst_t = (torch.rand(33, generator=g, dtype=torch.float64) - 0.5).to(dtype)
    thr, v_reset = (1.0, 0.25) if uniform else (thr_t, rst_t)
    s_ref = sem.fire(v, thr)
    expected = sem.reset(v, s_ref, mode, thr, v_reset)
    s = sem.fire_into(v, thr, torch.empty_like(v))
    keep = torch.le(v, thr, out=torch.empty_like(v))
    got = v.clone()
    sem.reset_inplace(got, s, keep, mode, thr, v_reset)
    assert torch.equal(s, s_ref)
    assert torch.equal(got.isnan(), expected.isnan())
    ok = ~expected.isnan()
    assert torch.equal(got[ok], expected[ok])
    with pytest.raises(ValueError, match="unknown reset mode"):
        sem.reset_inplace(got, s, keep, "bogus", thr, v_reset)
