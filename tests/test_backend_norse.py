"""The Norse backend reproduces the reference executor spike for spike, at every node and step.

Norse integrates in its own Euler form ``v + dt·tau_inv·((x + v_leak) - v)``, a different rounding of the
reference's ``decay·v + (gain·x + bias)``: in float64 spikes are identical at every node and step and
analog values/membranes agree to ~1e-13 relative; IF/I (``v + x``) and stateless layers are bit-identical.
float32 against the float64 reference: every differing spike starts as a near-threshold rounding case
(see :func:`check_near_threshold_only`).
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from snnbridge.backends import get
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.graph import prepare
from snnbridge.models import TABLE1
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

pytest.importorskip("norse")
BACKEND = "norse"
RTOL = 1e-11  # float64 analog agreement, relative to the node's largest magnitude
CASES = {c.name: c for c in node_cases()}


# --------------------------------------------------------------------------- node cases


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
        for n, v in ref32.membranes.items():  # membranes track the float32 reference to float32 rounding
            assert (got.membranes[n] - v).abs().max().item() <= 1e-5 * max(1.0, v.abs().max().item()), n


@pytest.mark.parametrize("name", ["if_zero", "if_subtract", "if_threshold_exact", "i", "conv2d_groups_if",
                                  "sumpool_flatten_affine", "scale_threshold", "lif_threshold_exact"])
def test_integrators_and_dyadic_cases_are_bit_identical(name):
    """IF/I (Norse ``v + x``), Threshold and the torch layers round exactly like the reference."""
    c = CASES[name]
    for dtype in (torch.float64, torch.float32):
        ref, got = run_both(BACKEND, c.graph, c.inputs, c.semantics, dtype)
        assert_same_recording(ref, got, exact=True)


# --------------------------------------------------------------------------- Table 1


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("neuron", ["if", "lif"])
@pytest.mark.parametrize("key", list(TABLE1))
def test_table1_structures(key, neuron, reset):
    check_table1(BACKEND, key, neuron, reset, exact=neuron == "if", rtol=RTOL)


# --------------------------------------------------------------------------- peer graphs


@pytest.mark.parametrize("stem", list(PEERS))
def test_peer_graph(stem):
    check_peer_graph(BACKEND, NIR_GRAPHS, stem, exact=stem == "cnn_sinabs", rtol=RTOL)


# --------------------------------------------------------------------------- the modules are Norse's own


def test_native_cells_dt_and_rate():
    import norse.torch as norse
    from norse.torch.functional.reset import reset_subtract

    from snnbridge.backends.norse_backend import rate_for

    c = CASES["lif_dt_1e-4"]
    sim = get(BACKEND).compile(c.graph, **c.semantics)
    cell = sim.adapters["lif"].mem
    assert isinstance(cell, norse.LIFBoxCell) and cell.dt == 1e-4  # the graph's dt, not Norse's 1e-3 default
    coeff = sim.graph.coefficients("lif")
    assert torch.equal(cell.dt * cell.p.tau_mem_inv, torch.as_tensor(1 - coeff.decay).expand(8))
    assert torch.allclose(cell.p.tau_mem_inv, torch.full((8,), 1 / 0.0025, dtype=torch.float64))  # = 1/tau
    sub = get(BACKEND).compile(CASES["lif_subtract"].graph, **CASES["lif_subtract"].semantics).adapters["lif"]
    assert sub.mem.p.reset_method.reset is reset_subtract
    assert isinstance(get(BACKEND).compile(CASES["if_zero"].graph).adapters["if"].mem, norse.IAFCell)
    cuba = get(BACKEND).compile(CASES["cubalif_zero"].graph, **CASES["cubalif_zero"].semantics).adapters["cuba"]
    assert isinstance(cuba.syn, norse.LIBoxCell) and isinstance(cuba.mem, norse.LIFBoxCell)
    assert torch.allclose(cuba.syn_scale, torch.tensor(1.5, dtype=torch.float64))  # w_in
    assert torch.allclose(cuba.scale, torch.tensor(2.0, dtype=torch.float64))  # r
    for dtype in (torch.float32, torch.float64):
        c_ = np.array([1 - np.exp(-1e-4 / 3e-3), 0.3, 1e-3 / 7e-3])
        assert torch.equal(1e-4 * rate_for(c_, 1e-4, dtype), torch.as_tensor(c_, dtype=dtype))


def test_exact_integration_through_norse_euler_form():
    c = CASES["lif_exact"]
    sim = get(BACKEND).compile(c.graph, **c.semantics)
    cell, coeff = sim.adapters["lif"].mem, sim.graph.coefficients("lif")
    assert torch.equal(cell.dt * cell.p.tau_mem_inv, torch.as_tensor(-np.expm1(-1e-3 / 0.004)).expand(8))
    assert np.allclose(1 - coeff.decay, -np.expm1(-1e-3 / 0.004), rtol=1e-15)
    ref = ReferenceExecutor(c.graph, **c.semantics).run(c.inputs)
    assert_same_recording(ref, sim.run(c.inputs), exact=False, rtol=RTOL)


def test_cuba_with_v_reset_and_leak():
    n = 5
    cuba = nir.CubaLIF(tau_syn=np.full(n, 2e-3), tau_mem=np.full(n, 5e-3), r=np.full(n, 3.0), v_leak=np.full(n, 0.2),
                       v_threshold=np.full(n, 0.6), v_reset=np.linspace(-0.4, 0.1, n), w_in=np.full(n, 2.0))
    w = np.random.default_rng(3).normal(0, 1.0, (n, 4))
    g = chain([("fc", nir.Linear(weight=w)), ("cuba", cuba)], (4,), (n,))
    x = spikes((4,), 0.4, 11, 60, 3)
    ref = ReferenceExecutor(g, dt=1e-3).run(x)
    got = get(BACKEND).run(g, x, dt=1e-3)
    assert ref.spikes("cuba").sum() > 10
    assert_same_recording(ref, got, exact=False, rtol=RTOL)


def test_conv1d_lif():
    rng = np.random.default_rng(9)
    conv = nir.Conv1d(input_shape=10, weight=rng.normal(0, 1.0, (3, 2, 3)), stride=2, padding=1, dilation=1, groups=1,
                      bias=rng.normal(0, 0.1, 3))
    lif = nir.LIF(tau=np.full((3, 5), 4e-3), r=np.full((3, 5), 2.0), v_leak=np.zeros((3, 5)),
                  v_threshold=np.full((3, 5), 0.5), v_reset=np.zeros((3, 5)))
    g = chain([("conv", conv), ("lif", lif)], (2, 10), (3, 5))
    x = spikes((2, 10), 0.4, 4, 30)
    ref = ReferenceExecutor(g, dt=1e-3, reset="subtract").run(x)
    assert ref.spikes("lif").any()
    assert_same_recording(ref, get(BACKEND).run(g, x, dt=1e-3, reset="subtract"), exact=False, rtol=RTOL)


# --------------------------------------------------------------------------- recording and interface


def test_recording_layout_record_subset_and_rerun():
    c = CASES["conv2d_stride_pad_lif"]
    sim = get(BACKEND).compile(c.graph, **c.semantics)
    full = sim.run(c.inputs)
    assert full.outputs["lif"].dtype == torch.bool and full.outputs["conv"].dtype == torch.float64
    assert full.membrane("lif").shape == (20, 3, 4, 5, 7)
    part = sim.run(c.inputs, record=["lif"], membranes=False)
    assert set(part.outputs) == {"lif"} and part.membranes == {}
    assert torch.equal(part.outputs["lif"], full.outputs["lif"])  # state does not leak between runs
    one = sim.run(c.inputs[:, 1:2])
    assert torch.equal(one.outputs["lif"], full.outputs["lif"][:, 1:2])  # samples are independent


def test_recurrent_graph_runs_stepwise_batched():
    c = CASES["recurrent_lif_subtract"]
    x = spikes((6,), 0.4, 5, 30, 4)
    ref = ReferenceExecutor(c.graph, **c.semantics).run(x)
    assert_same_recording(ref, get(BACKEND).run(c.graph, x, **c.semantics), exact=False, rtol=RTOL)


def test_euler_step_longer_than_tau_is_refused_by_name():
    """dt > tau under Euler gives a decay < 0: refused (node and field named), as on every backend."""
    from snnbridge.errors import GraphError

    g = chain([("fc", nir.Linear(weight=np.random.default_rng(2).normal(0, 1.0, (3, 3)))),
               ("lif", nir.LIF(tau=np.full(3, 5e-4), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.full(3, 0.2)))],
              (3,), (3,))
    with pytest.raises(GraphError, match=r"node 'lif', field 'tau'.*decay of -1.*\[0, 1\]"):
        get(BACKEND).compile(g, dt=1e-3)
    with pytest.raises(GraphError, match=r"node 'lif', field 'tau'"):
        ReferenceExecutor(g, dt=1e-3)


# --------------------------------------------------------------------------- per-node step options

OPTION_CASES = [(kind, reset, timing, target)
                for kind in ("LIF", "IF", "CubaLIF")
                for reset in ("zero", "subtract")
                for timing in ("immediate", "delayed", "immediate_rechecked")
                for target in (("state", "membrane") if reset == "zero" and timing != "immediate" else ("state",))]


def option_graph(kind: str, reset: str, timing: str, target: str, init: bool, seed: int = 0) -> nir.NIRGraph:
    """``input(4) -> Linear -> neuron(6)`` with dyadic weights and constants (decay 1/2, 3/4, threshold 3/4), so that
    membranes hit the threshold exactly; ``init``: non-zero ``v_init`` (and ``i_init``)."""
    n = 6
    meta = {"reset": reset, "reset_timing": timing, "zero_reset_target": target}
    if init:
        meta["v_init"] = np.linspace(-0.25, 0.5, n)
    common = dict(v_threshold=np.full(n, 0.75), v_reset=np.zeros(n), metadata=meta)
    if kind == "LIF":
        node = nir.LIF(tau=np.full(n, 2e-3), r=np.full(n, 2.0), v_leak=np.zeros(n), **common)
    elif kind == "IF":
        node = nir.IF(r=np.ones(n), **common)
    else:
        if init:
            meta["i_init"] = np.full(n, 0.25)
        node = nir.CubaLIF(tau_syn=np.full(n, 2e-3), tau_mem=np.full(n, 4e-3), r=np.full(n, 2.0), v_leak=np.zeros(n),
                           w_in=np.full(n, 2.0), **common)
    w = np.random.default_rng(seed).integers(-2, 5, (n, 4)) * 0.25
    return chain([("fc", nir.Linear(weight=w)), ("nrn", node)], (4,), (n,))


@pytest.mark.parametrize("init", [False, True], ids=["zero_state", "v_init"])
@pytest.mark.parametrize("kind,reset,timing,target", OPTION_CASES)
def test_step_options_equal_reference(kind, reset, timing, target, init):
    """Every reset timing / zero-reset target / initial state: float64 spikes identical at every step, membranes
    within RTOL (exact for IF); float32 flips only near the threshold."""
    g = option_graph(kind, reset, timing, target, init)
    x = spikes((4,), 0.5, 1, 40, 3)
    ref, got = run_both(BACKEND, g, x, {"dt": 1e-3}, torch.float64)
    assert ref.spikes("nrn").sum() > 50
    assert_same_recording(ref, got, exact=kind == "IF", rtol=RTOL)
    if kind != "CubaLIF" and not init:  # the dyadic cases do hit the threshold exactly (strict: no spike there)
        hits = ref.membrane("nrn") == 0.75
        assert hits.sum() > 0 and not ref.spikes("nrn")[hits].any()
    got32 = get(BACKEND).run(g, x, dt=1e-3, dtype=torch.float32)
    check_near_threshold_only(prepare(g, dt=1e-3), ref, got32)


def test_timed_reset_runs_in_a_norse_snncell():
    from norse.torch.module.snn import SNNCell

    from snnbridge.backends.norse_backend import TimedParameters, timed_step

    sim = get(BACKEND).compile(option_graph("LIF", "subtract", "delayed", "state", True), dt=1e-3)
    cell = sim.adapters["nrn"].mem
    assert isinstance(cell, SNNCell) and cell.activation is timed_step and isinstance(cell.p, TimedParameters)
    assert cell.p.timing == "delayed" and cell.dt == 1e-3
    v0 = sim.adapters["nrn"].init_state(2)[1].v
    assert torch.equal(v0, torch.as_tensor(np.linspace(-0.25, 0.5, 6)).expand(2, 6))


def test_delay_runs_as_the_reference():
    """Delay (whole steps) is a shift in time, copied exactly (``tests/test_torch_graph_delay.py`` checks more)."""
    g = chain([("fc", nir.Linear(weight=np.eye(3))), ("d", nir.Delay(delay=np.full(3, 2e-3)))], (3,), (3,))
    x = spikes((3,), 0.5, 1, 10, 2)
    assert torch.equal(get(BACKEND).run(g, x, dt=1e-3).outputs["d"], ReferenceExecutor(g, dt=1e-3).run(x).outputs["d"])


