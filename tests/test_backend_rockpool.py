"""The Rockpool backend reproduces the reference executor bit for bit, at every node and step, in float64 and float32,
in every reset mode: its neurons (``LIFNeuronTorch``) only subtract, so the zero and no resets are Rockpool's step
followed by the reference's ``v·(1-s) + s·v_reset`` (or the pre-reset membrane kept) in torch.  What Rockpool still
cannot express (the delayed reset timings, decays no ``tau_mem`` reproduces) must be refused by node name.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from snnbridge.backends import get
from snnbridge.bridge import read_graph
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.validation.node_suite import chain, node_cases

from .backend_checks import (
    PEERS,
    assert_same_recording,
    check_refused_by_name,
    check_table1_bit_identical,
    check_zero_reset_restarts_at_v_reset,
    run_both,
    spikes,
)
from .conftest import NIR_GRAPHS
from .more_backends import peer_params, table1_params

pytest.importorskip("rockpool")
BACKEND = "rockpool"
CASES = {c.name: c for c in node_cases()}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(CASES))
def test_node_case_bit_identical(name, dtype):
    c = CASES[name]
    ref, got = run_both(BACKEND, c.graph, c.inputs, c.semantics, dtype)
    assert got.backend == BACKEND
    assert_same_recording(ref, got, exact=True)


def test_zero_reset_restarts_at_v_reset():
    check_zero_reset_restarts_at_v_reset(BACKEND)


def test_delayed_reset_timings_are_refused_by_name():
    check_refused_by_name(BACKEND, (("delayed", "zero"), ("delayed", "subtract"), ("immediate_rechecked", "zero"),
                                    ("immediate_rechecked", "subtract")))


@pytest.mark.parametrize("key, neuron, reset", table1_params())
def test_table1_structures(key, neuron, reset):
    check_table1_bit_identical(BACKEND, key, neuron, reset)


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


def test_native_modules_and_exact_decay():
    from rockpool.nn.modules.torch.lif_neuron_torch import LIFNeuronTorch, tau_to_decay

    c = CASES["lif_exact"]
    sim = get(BACKEND).compile(c.graph, **c.semantics)
    ad = sim.adapters["lif"]
    mod, fire = ad.mem.module(3)
    assert type(mod) is LIFNeuronTorch and mod.tau_mem.shape == (24,) and mod.tau_mem.dtype == torch.float64
    decay = torch.as_tensor(sim.graph.coefficients("lif").decay, dtype=torch.float64).expand(8)
    assert torch.equal(tau_to_decay(1e-3, ad.mem.tau), decay)  # Rockpool's own decay, bit for bit
    assert torch.allclose(ad.mem.tau, torch.full((8,), 4e-3, dtype=torch.float64), rtol=1e-14)  # ~ NIR's tau
    cuba = get(BACKEND).compile(CASES["cubalif_subtract"].graph, **CASES["cubalif_subtract"].semantics)
    assert cuba.adapters["cuba"].syn is not None and cuba.adapters["cuba"].syn.mode == "never"


def test_stock_spike_function_is_multi_spike_and_inclusive():
    """Why the adapter passes its own spike function: Rockpool's ``StepPWL`` emits floor(v/θ) spikes at v >= θ."""
    from rockpool.nn.modules.torch.lif_neuron_torch import LIFNeuronTorch

    mod = LIFNeuronTorch(shape=(3,), tau_mem=torch.full((3,), 1e9), threshold=torch.ones(3), dt=1e-3)
    out, _, _ = mod(torch.tensor([[[1.0, 2.5, 0.5]]]))
    assert out.reshape(-1).tolist() == [1.0, 2.0, 0.0]  # fires at v == θ, twice at 2.5θ


def test_batch_samples_keep_their_own_state_and_rng_is_untouched():
    c = CASES["recurrent_lif_subtract"]
    x = spikes((6,), 0.4, 5, 30, 4)
    sim = get(BACKEND).compile(c.graph, **c.semantics)  # (torch layers draw their initial weights here)
    torch.manual_seed(0)
    want = torch.rand(3)
    torch.manual_seed(0)
    got = sim.run(x)
    assert torch.equal(torch.rand(3), want)  # Rockpool's noise draw does not move the user's RNG
    ref = ReferenceExecutor(c.graph, **c.semantics).run(x)
    assert_same_recording(ref, got, exact=True)


def test_initial_state_inclusive_threshold_every_reset():
    n = 4
    lif = nir.LIF(tau=np.full(n, 4e-3), r=np.full(n, 2.0), v_leak=np.full(n, 0.1), v_threshold=np.full(n, 0.5),
                  v_reset=np.zeros(n), metadata={"v_init": np.linspace(0, 0.4, n), "threshold": "inclusive"})
    g = chain([("fc", nir.Linear(weight=np.full((n, 3), 0.25))), ("lif", lif)], (3,), (n,))
    x = spikes((3,), 0.5, 2, 40, 2)
    for reset in ("zero", "subtract", "none"):
        for dtype in (torch.float64, torch.float32):
            ref = ReferenceExecutor(g, dt=1e-3, reset=reset, dtype=dtype).run(x)
            assert ref.spikes("lif").any()
            assert_same_recording(ref, get(BACKEND).run(g, x, dt=1e-3, reset=reset, dtype=dtype), exact=True)
