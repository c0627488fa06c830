"""Shared fixtures: the project's ``../shared`` folder (real NIR graphs, MNIST, N-MNIST), skipped when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
NIR_GRAPHS = SHARED / "nir-graphs"


@pytest.fixture
def shared_graph():
    """Path of a peer graph in ``../shared/nir-graphs`` by stem; skips when the folder is absent."""

    def get(stem: str) -> Path:
        p = NIR_GRAPHS / f"{stem}.nir"
        if not p.exists():
            pytest.skip(f"{p} not available (needs ../shared)")
        return p

    return get
