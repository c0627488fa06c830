"""The Spyx backend reproduces the reference executor bit for bit, at every node and step, in float64 (JAX x64) and
float32, in every reset mode: Spyx's neurons only subtract, so a zero reset is Spyx's ``LI`` + ``IF`` step followed
by the reference's ``v·(1-s) + s·v_reset`` in ``jax.numpy``.  What Spyx still cannot express (the delayed reset
timings, decays outside ``[0, 1]``) must be refused by node name.
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
from .more_backends import heavy, peer_params, table1_params

pytest.importorskip("spyx")
BACKEND = "spyx"
CASES = {c.name: c for c in node_cases()}


FLOAT32_DEFAULT = ("lif_zero", "lif_subtract", "lif_none", "cubalif_zero", "recurrent_lif_subtract")


def _node_params() -> list:
    """Every node case in float64; in float32 a reduced default set, the rest :func:`heavy` (JAX compiles each
    eager operation once per shape and dtype, which dominates these short runs)."""
    out = [pytest.param(n, torch.float64, id=f"{n}-float64") for n in CASES]
    out += [pytest.param(n, torch.float32, id=f"{n}-float32") if n in FLOAT32_DEFAULT
            else heavy(n, torch.float32, id=f"{n}-float32") for n in CASES]
    return out


@pytest.mark.parametrize("name, dtype", _node_params())
def test_node_case_bit_identical(name, dtype):
    c = CASES[name]
    ref, got = run_both(BACKEND, c.graph, c.inputs, c.semantics, dtype)
    assert got.backend == BACKEND
    assert_same_recording(ref, got, exact=True)


def test_zero_reset_restarts_at_v_reset():
    check_zero_reset_restarts_at_v_reset(BACKEND)


def test_other_reset_timings_are_refused_by_name():
    check_refused_by_name(BACKEND, (("delayed", "zero"), ("immediate_rechecked", "zero"),
                                    ("immediate_rechecked", "subtract")))


def _timed(kind: str, compare: str) -> nir.NIRGraph:
    n = 5
    meta = {"reset": "subtract", "reset_timing": "delayed", "threshold": compare, "v_init": np.linspace(0, 0.6, n)}
    if kind == "LIF":
        nrn = nir.LIF(tau=np.full(n, 4e-3), r=np.full(n, 2.0), v_leak=np.full(n, 0.05), v_threshold=np.full(n, 0.5),
                      v_reset=np.zeros(n), metadata=meta)
    elif kind == "IF":
        nrn = nir.IF(r=np.full(n, 0.5), v_threshold=np.full(n, 0.5), v_reset=np.zeros(n), metadata=meta)
    else:
        nrn = nir.CubaLIF(tau_syn=np.full(n, 3e-3), tau_mem=np.full(n, 4e-3), r=np.full(n, 2.0), v_leak=np.zeros(n),
                          v_threshold=np.full(n, 0.3), v_reset=np.zeros(n), w_in=np.full(n, 2.0), metadata=meta)
    w = np.random.default_rng(1).uniform(0, 0.6, (n, 3))
    return chain([("fc", nir.Linear(weight=w)), ("nrn", nrn)], (3,), (n,))


@pytest.mark.parametrize("compare", ["strict", "inclusive"])
@pytest.mark.parametrize("kind", ["LIF", "IF", "CubaLIF"])
def test_delayed_subtract_runs_on_spyx_lif(kind, compare):
    """snnTorch's ``reset_delay=True`` subtract timing is Spyx's own ``LIF`` step (``V = β·V + x - H(V - θ)·θ``)
    followed by ``IF``'s compare for the step's spike: bit-identical, and not the immediate timing's spikes."""
    import spyx

    g = _timed(kind, compare)
    x = spikes((3,), 0.5, 1, 40, 3)
    for dtype in (torch.float64, torch.float32):
        ref, got = run_both(BACKEND, g, x, {"dt": 1e-3, "reset": "subtract"}, dtype)
        assert_same_recording(ref, got, exact=True)
    g.nodes["nrn"].metadata["reset_timing"] = "immediate"
    assert not torch.equal(ReferenceExecutor(g, dt=1e-3).run(x).outputs["nrn"], ref.outputs["nrn"])
    g.nodes["nrn"].metadata["reset_timing"] = "delayed"
    assert type(get(BACKEND).compile(g, dt=1e-3).adapters["nrn"].lif) is spyx.nn.LIF


def _table1_params() -> list:
    """Every Table-1 structure; the N-MNIST MLP is :func:`heavy` here too (eager JAX steps)."""
    return [heavy(*p.values, id=p.id) if p.values[0] == "nmnist_mlp" else p for p in table1_params()]


@pytest.mark.parametrize("key, neuron, reset", _table1_params())
def test_table1_structures(key, neuron, reset):
    check_table1_bit_identical(BACKEND, key, neuron, reset)


def _peer(stem: str, dtype: torch.dtype) -> None:
    path = NIR_GRAPHS / f"{stem}.nir"
    if not path.exists():
        pytest.skip(f"{path} not available (needs ../shared)")
    semantics, shape, T, p = PEERS[stem]
    graph = read_graph(path)
    x = spikes(shape, p, 7, T)
    ref, got = run_both(BACKEND, graph, x, semantics, dtype)
    assert_same_recording(ref, got, exact=True)
    assert ref.output().any()


def _peer_params() -> list:
    """The small peer graphs by default; Spyx's eager steps make the CNN (16 steps x 5 layers) :func:`heavy` too."""
    return [heavy(p.values[0], id=p.id) if p.values[0] == "cnn_sinabs" else p for p in peer_params(PEERS)]


@pytest.mark.parametrize("stem", _peer_params())
def test_peer_graph(stem):
    _peer(stem, torch.float64)


@pytest.mark.slow
@pytest.mark.parametrize("stem", list(PEERS))
def test_peer_graph_float32(stem):
    _peer(stem, torch.float32)


# --------------------------------------------------------------------------- the modules are Spyx's own


def test_native_modules_and_parameters():
    import jax.numpy as jnp
    import spyx

    c = CASES["cubalif_subtract"]
    sim = get(BACKEND).compile(c.graph, **c.semantics)
    ad = sim.adapters["cuba"]
    assert type(ad.mem) is spyx.nn.LI and type(ad.syn) is spyx.nn.LI and type(ad.fire) is spyx.nn.IF
    assert ad.mem.beta.value.dtype == jnp.float64 and ad.mem.beta.value.shape == (8,)
    coeffs = sim.graph.coefficients("cuba")
    assert np.array_equal(np.asarray(ad.mem.beta.value), np.broadcast_to(coeffs.decay, (8,)))
    assert np.array_equal(np.asarray(ad.syn.beta.value), np.broadcast_to(coeffs.syn_decay, (8,)))
    assert np.array_equal(np.asarray(ad.fire.threshold), np.full(8, 0.5))
    li = get(BACKEND).compile(CASES["li"].graph, **CASES["li"].semantics).adapters["li"]
    assert li.fire is None and type(li.mem) is spyx.nn.LI


def test_spyx_lif_fires_one_step_late():
    """Why the adapter splits the step into ``LI`` + ``IF``: ``spyx.nn.LIF`` fires on the carried state."""
    import jax.numpy as jnp
    import spyx
    from flax import nnx

    lif = spyx.nn.LIF((1,), beta=0.5, threshold=1.0, rngs=nnx.Rngs(0))
    v = lif.initial_state(1)
    out = []
    for x in (2.0, 0.0, 0.0):
        s, v = lif(jnp.array([[x]]), v)
        out.append(float(s[0, 0]))
    assert out == [0.0, 1.0, 0.0]  # the reference fires at step 0 (v = 2 > 1)
    g = chain([("lif", nir.LIF(tau=np.array([2e-3]), r=np.full(1, 2.0), v_leak=np.zeros(1), v_threshold=np.ones(1),
                               v_reset=np.zeros(1)))], (1,), (1,))
    x = torch.tensor([2.0, 0.0, 0.0], dtype=torch.float64).reshape(3, 1, 1)
    assert get(BACKEND).run(g, x, dt=1e-3, reset="subtract").output().reshape(-1).tolist() == [True, False, False]


def test_initial_state_inclusive_threshold_and_no_reset():
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
