"""Helpers of the test files of the five added simulators (SpikingJelly, Rockpool, Sinabs, Nengo, Spyx).

Their default run is a reduced case set (every node case, the Table-1 MLPs, the small peer graphs) so that
``make test`` stays within its time budget on 2 cores; the heavy cases (Table-1 CNNs, the Braille graphs) are
marked ``slow``: ``make test`` deselects them (``-m "not slow"``), ``make test-slow`` runs them (CI runs both).
"""

from __future__ import annotations

import pytest

from snnbridge.models import TABLE1

HEAVY_TABLE1 = ("mnist_cnn", "cifar10_cnn", "nmnist_cnn", "dvscifar10_cnn")
HEAVY_PEERS = ("braille_noDelay_noBias_subtract", "braille_noDelay_bias_zero")


def heavy(*values, id: str | None = None):
    """A ``pytest.param`` marked ``slow`` (run by ``make test-slow``)."""
    return pytest.param(*values, id=id, marks=[pytest.mark.slow])


def table1_params() -> list:
    """``(key, neuron, reset)`` for every Table-1 structure; the CNNs are :func:`heavy`."""
    out = []
    for key in TABLE1:
        for neuron in ("if", "lif"):
            for reset in ("zero", "subtract"):
                p = (key, neuron, reset)
                out.append(heavy(*p, id="-".join(p)) if key in HEAVY_TABLE1 else pytest.param(*p, id="-".join(p)))
    return out


def peer_params(stems) -> list:
    """The peer graph stems; the Braille graphs are :func:`heavy`."""
    return [heavy(s, id=s) if s in HEAVY_PEERS else pytest.param(s, id=s) for s in stems]
