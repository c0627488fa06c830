"""What every library's native-import test shares: build a configuration, import it, write and read the ``.nir``
file, run the user's module natively, and require 0 differing spikes at every spiking layer on every backend."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import nir
import pytest

from snnbridge.backends import get, native_library
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.io import write_graph
from snnbridge.validation import conform

from .backend_checks import spikes


def spiking(rec) -> list[str]:
    """The spiking (LIF/IF/CubaLIF) nodes of a recording."""
    return [n for n in rec.outputs if rec.node_types.get(n) in ("LIF", "IF", "CubaLIF")]


def diffs(native, other) -> dict[str, int]:
    """Differing spikes per spiking layer of ``native`` between two recordings."""
    return {n: int((native.outputs[n] != other.outputs[n]).sum()) for n in spiking(native)}


def import_case(lib: str, build: Callable, name: str, tmp: str | Path, T: int, B: int, p: float):
    """``(module, x [T, B, ...], graph read back from .nir, native recording, dt)`` for configuration ``name``."""
    backend = get(lib)
    m, shape, dt = build(name)
    x = spikes(shape, p, 3, T, B)
    g = backend.from_native(m, shape, dt=dt)
    path = write_graph(f"{tmp}/{name}.nir", g)
    return m, x, nir.read(str(path), type_check=True), backend.run_native(m, x, dt=dt), dt


def check_everywhere(case, lib: str, module_of: dict[str, str], min_layers: int) -> None:
    """The native run against the reference, snnTorch, Norse and ``lib`` itself (0 differing spikes at every
    spiking layer and step), the library detection, and ``conform(..., original=module)``."""
    m, x, g, nat, dt = case
    layers = spiking(nat)
    assert len(layers) >= min_layers and all(nat.outputs[n].sum() >= 15 for n in layers), \
        {n: int(nat.outputs[n].sum()) for n in layers}
    assert all(nat.outputs[n].float().mean() < 0.9 for n in layers)
    ref = ReferenceExecutor(g).run(x)
    assert ref.dt == dt
    assert diffs(nat, ref) == {n: 0 for n in layers}
    for backend in ("snntorch", "norse", lib):
        pytest.importorskip(module_of.get(backend, backend))
        assert diffs(nat, get(backend).run(g, x)) == {n: 0 for n in layers}, backend
    assert native_library(m) == lib
    r = conform(g, x, ["reference"], original=m)
    assert r.backends["original"].status == "pass", r.summary()
