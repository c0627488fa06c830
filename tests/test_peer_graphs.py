"""The real NIR graphs of the NIR paper's study (written by other tools) load and run in the reference executor."""

import glob
import math

import numpy as np
import pytest
import torch

from snnbridge.bridge import ReferenceExecutor, read_graph
from snnbridge.bridge.graph import prepare

from .conftest import SHARED

EVENT_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])


def _const_input(value: float, T: int) -> torch.Tensor:
    return torch.full((T, 1, 1), value, dtype=torch.float64)


def test_lif_norse_exact_integration_matches_the_ode(shared_graph):
    """tau dv/dt = -v + r I with I = 0.2 held: v(t) = 0.2 (1 - exp(-t/tau)); fires when v > 0.1."""
    g = read_graph(shared_graph("lif_norse"))
    node = g.nodes["1"]
    # the file stores float32 parameters: use them exactly (tau = 0.0025 -> 0.00249999994...)
    dt, tau, r, current = 1e-4, float(node.tau[0]), float(node.r[0]), 0.2
    rec = ReferenceExecutor(g, dt=dt, integration="exact").run(_const_input(current, 60))
    v = rec.membrane("1")[:, 0, 0].numpy()
    s = rec.spikes("1")[:, 0, 0].numpy()
    first = int(np.argmax(s))
    t = (np.arange(first + 1) + 1) * dt
    analytic = r * current * (1 - np.exp(-t / tau))
    np.testing.assert_allclose(v[: first + 1], analytic, rtol=1e-12, atol=1e-15)
    # the ODE crosses at t* = tau ln 2; the first step whose end lies past t* fires
    assert first + 1 == math.ceil(tau * math.log(2) / dt)
    # after a zero reset the trajectory restarts: the spike train is periodic
    isi = np.diff(np.flatnonzero(s))
    assert (isi == first + 1).all()


def test_lif_norse_forward_euler_differs_as_documented(shared_graph):
    """Euler: v_n = rI (1 - (1 - dt/tau)^n) undershoots the ODE; here it fires one step earlier (17 vs 18)."""
    g = read_graph(shared_graph("lif_norse"))
    rec = ReferenceExecutor(g, dt=1e-4).run(_const_input(0.2, 40))
    v = rec.membrane("1")[:, 0, 0].numpy()
    n = np.arange(1, 18)
    a = 1e-4 / float(g.nodes["1"].tau[0])  # dt/tau = 0.04 (up to the file's float32 rounding)
    np.testing.assert_allclose(v[:17], 0.2 * (1 - (1 - a) ** n), rtol=1e-12)
    assert int(np.argmax(rec.spikes("1")[:, 0, 0].numpy())) + 1 == 17
    exact = 0.2 * (1 - np.exp(-n * 1e-4 / 0.0025))
    assert np.max(np.abs(v[:17] - exact)) < 2e-3  # the documented size of Euler's error here


def test_graphs_without_metadata_use_documented_defaults(shared_graph):
    fg = prepare(read_graph(shared_graph("lif_norse")))
    assert (fg.semantics.dt, fg.semantics.reset, fg.semantics.integration) == (1e-4, "zero", "euler")
    assert prepare(read_graph(shared_graph("lif_norse")), dt=1e-3, reset="subtract").semantics.dt == 1e-3


@pytest.mark.parametrize("stem,reset", [("braille_noDelay_noBias_subtract", "subtract"),
                                        ("braille_noDelay_bias_zero", "zero")])
def test_braille_rnns_run_with_their_reset(shared_graph, stem, reset):
    g = read_graph(shared_graph(stem))
    ex = ReferenceExecutor(g, reset=reset)
    # the loop's one-step delay sits on the edge leaving the neuron (semantics: recurrent edges)
    assert ex.graph.recurrent == {("lif1.lif", "lif1.w_rec")}
    x = (torch.rand(100, 3, 12, generator=torch.Generator().manual_seed(0)) < 0.2).double()
    rec = ex.run(x)
    assert rec.spikes("lif1.lif").any() and rec.spikes("lif2").any()
    # snnTorch's export encodes unit gains: r*dt/tau_mem = w_in*dt/tau_syn = 1 at dt = 1e-4
    c = ex.graph.coefficients("lif2")
    assert np.allclose(c.gain, 1.0, atol=1e-6) and np.allclose(c.syn_gain, 1.0, atol=1e-6)
    # the recurrent edge matters: cutting it changes lif1's spikes
    g.nodes["lif1.w_rec"].weight = np.zeros_like(g.nodes["lif1.w_rec"].weight)
    assert not torch.equal(ReferenceExecutor(g, reset=reset).run(x).spikes("lif1.lif"), rec.spikes("lif1.lif"))


def _frames(path: str, T: int, dt_us: int = 1000) -> np.ndarray:
    import tonic

    ev = tonic.io.read_mnist_file(path, dtype=EVENT_DTYPE)
    f = np.zeros((T, 2, 34, 34))
    np.add.at(f, (np.minimum(ev["t"] // dt_us, T - 1), ev["p"], ev["y"], ev["x"]), 1)
    return f


def test_cnn_sinabs_classifies_real_nmnist(shared_graph):
    """cnn_sinabs.nir on 1 ms frames of real N-MNIST test recordings, rate-decoded (the NIR paper's protocol)."""
    g = read_graph(shared_graph("cnn_sinabs"))
    files = sorted(glob.glob(str(SHARED / "data" / "NMNIST" / "Test" / "*" / "*.bin")))[::10]
    if not files:
        pytest.skip("N-MNIST test recordings not available")
    x = torch.from_numpy(np.stack([_frames(f, 300) for f in files], 1))
    labels = np.array([int(f.split("/")[-2]) for f in files])
    rec = ReferenceExecutor(g).run(x, record=["output", "12"], membranes=False)
    pred = rec["output"].sum(0).argmax(-1).numpy()
    assert (pred == labels).mean() >= 0.8  # measured: 100/100 on all 100 test recordings
