"""NIR ``Delay`` (whole steps) on the torch-graph backends that list it (snnTorch, Norse, Spyx): the delayed values
are copied, never computed, so every Delay output equals the reference's bit for bit, feed-forward (a gather along
``T``) and inside a recurrent loop (a ring buffer, step by step); spikes are identical at every node and step.
"""

from __future__ import annotations

import copy

import nir
import numpy as np
import pytest
import torch

from snnbridge.backends import get
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.validation.node_suite import chain, node_cases

from .backend_checks import assert_same_recording, spikes

BACKENDS = {"snntorch": "snntorch", "norse": "norse", "spyx": "spyx"}
EXACT = {"snntorch": True, "norse": False, "spyx": True}  # Norse's LIF membranes round apart (test_backend_norse)


def _lif(n: int, thr: float = 0.5) -> nir.LIF:
    return nir.LIF(tau=np.full(n, 4e-3), r=np.full(n, 2.0), v_leak=np.zeros(n), v_threshold=np.full(n, thr),
                   v_reset=np.zeros(n))


def _feed_forward() -> nir.NIRGraph:
    """fc → Delay (0, 1, 2, 5 steps per neuron) → lif → Delay (3 steps) → output."""
    n = 4
    w = np.random.RandomState(0).randn(n, 3)
    return chain([("fc", nir.Linear(weight=w)), ("d", nir.Delay(delay=np.array([0.0, 1, 2, 5]) * 1e-3)),
                  ("lif", _lif(n)), ("d2", nir.Delay(delay=np.full(n, 3e-3)))], (3,), (n,))


def _recurrent() -> nir.NIRGraph:
    """``recurrent_lif_subtract`` with its recurrent weights behind a Delay of 2 steps (lif → d → rec → lif)."""
    c = next(c for c in node_cases() if c.name == "recurrent_lif_subtract")
    g = copy.deepcopy(c.graph)
    n = int(np.asarray(g.nodes["rec"].weight).shape[0])
    g.nodes["d"] = nir.Delay(delay=np.full(n, 2 * c.semantics["dt"]))
    g.edges = [e for e in g.edges if e != ("lif", "rec")] + [("lif", "d"), ("d", "rec")]
    return g


def _check(backend: str, g: nir.NIRGraph, x: torch.Tensor, semantics: dict) -> None:
    pytest.importorskip(BACKENDS[backend])
    for dtype in (torch.float64, torch.float32):
        ref = ReferenceExecutor(g, dtype=dtype, **semantics).run(x)
        got = get(backend).run(g, x, dtype=dtype, **semantics)
        assert_same_recording(ref, got, exact=EXACT[backend], rtol=1e-11 if dtype == torch.float64 else 1e-5)
        for n in ("d", "d2"):
            if n in ref.outputs:
                assert torch.equal(ref.outputs[n], got.outputs[n]), n
                assert ref.outputs[n].any()


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_delay_feed_forward_equals_reference(backend):
    x = spikes((3,), 0.5, 1, 30, 3)
    _check(backend, _feed_forward(), x, {"dt": 1e-3})


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_delay_in_recurrent_loop_equals_reference(backend):
    x = spikes((6,), 0.4, 5, 30, 2)
    _check(backend, _recurrent(), x, {"dt": 1e-3, "reset": "subtract"})


def test_delay_shifts_by_whole_steps():
    """The shift itself: a delay of ``k`` steps outputs ``x[t - k]``, zeros before (per element)."""
    pytest.importorskip("snntorch")
    g = chain([("d", nir.Delay(delay=np.array([0.0, 1e-3, 3e-3])))], (3,), (3,))
    x = torch.arange(1.0, 1 + 5 * 3, dtype=torch.float64).reshape(5, 1, 3)
    y = get("snntorch").run(g, x, dt=1e-3).outputs["d"][:, 0]
    want = torch.zeros_like(y)
    for k, d in enumerate((0, 1, 3)):
        want[d:, k] = x[: 5 - d, 0, k]
    assert torch.equal(y, want)
