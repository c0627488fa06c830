"""Native Rockpool models in: ``from_native`` / ``run_native`` against the user's own module (no ``to_native`` yet).

A ``Sequential`` of ``LinearTorch`` and ``LIFTorch`` (``max_spikes_per_dt=1``, float64 copy) is imported, written to a
``.nir`` file and read back with ``nir.read(type_check=True)``, then run on the reference executor and the snnTorch,
Norse and Rockpool backends: every ``LIFTorch``'s spikes equal the module's own at every step.  Refusals (Rockpool's
default multi-spike ``max_spikes_per_dt``, bias, noise, several synapses) name the layer.
"""

from __future__ import annotations

import functools

import nir
import numpy as np
import pytest
import torch

from snnbridge.backends import get, native_library
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.io import write_graph
from snnbridge.errors import NativeModelError
from snnbridge.validation import conform

from .backend_checks import spikes

pytest.importorskip("rockpool.nn.modules")
from rockpool.nn.combinators import Sequential  # noqa: E402
from rockpool.nn.modules import LIFTorch, LinearTorch  # noqa: E402

BE = get("rockpool")
T, B, SPIKE_P = 30, 2, 0.4


def _lin(i: int, o: int, gain: float, seed: int, bias: bool = False) -> LinearTorch:
    layer = LinearTorch((i, o), has_bias=bias)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(i, o, generator=g) * gain / np.sqrt(i))
        if bias:
            layer.bias.copy_(torch.randn(o, generator=g) * 0.05)
    return layer


def build(name: str):
    """``(module, input_shape)`` of native configuration ``name`` (seeded, float64: the graph pins the constants the
    module computes in its own dtype)."""
    torch.manual_seed(0)
    if name == "mlp":
        return Sequential(
            _lin(10, 16, 2.0, 1), LIFTorch(16, tau_mem=0.02, tau_syn=0.01, max_spikes_per_dt=1.0),
            _lin(16, 8, 2.0, 2, bias=True),
            LIFTorch(8, tau_mem=torch.linspace(0.003, 0.03, 8), tau_syn=torch.linspace(0.002, 0.01, 8),
                     threshold=torch.linspace(0.3, 0.8, 8), max_spikes_per_dt=1.0),
            _lin(8, 4, 3.0, 3), LIFTorch(4, tau_mem=0.005, tau_syn=0.004, threshold=0.25, max_spikes_per_dt=1.0,
                                         dt=1e-3)).to(torch.float64), (10,)
    raise KeyError(name)


def _spiking(rec) -> list[str]:
    return [n for n in rec.outputs if rec.node_types.get(n) == "CubaLIF"]


def _diffs(native, other) -> dict[str, int]:
    return {n: int((native.outputs[n] != other.outputs[n]).sum()) for n in _spiking(native)}


@functools.cache
def _imported(name: str, tmp: str):
    m, shape = build(name)
    x = spikes(shape, SPIKE_P, 3, T, B)
    g = BE.from_native(m, shape)
    path = write_graph(f"{tmp}/{name}.nir", g)
    return m, x, nir.read(str(path), type_check=True), BE.run_native(m, x)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("nir"))
    return lambda name: _imported(name, tmp)


def test_native_equals_reference_and_backends(imported):
    m, x, g, nat = imported("mlp")
    layers = _spiking(nat)
    assert len(layers) == 3 and all(nat.outputs[n].sum() >= 15 for n in layers), \
        {n: int(nat.outputs[n].sum()) for n in layers}
    assert all(nat.outputs[n].float().mean() < 0.9 for n in layers)
    ref = ReferenceExecutor(g).run(x)
    assert _diffs(nat, ref) == {n: 0 for n in layers}
    for backend in ("snntorch", "norse", "rockpool"):
        pytest.importorskip(backend if backend != "norse" else "norse.torch")
        assert _diffs(nat, get(backend).run(g, x)) == {n: 0 for n in layers}, backend
    assert native_library(m) == "rockpool"
    r = conform(g, x, ["reference"], original=m)
    assert r.backends["original"].status == "pass", r.summary()
    from rockpool.nn.modules.torch.lif_torch import StepPWL

    assert m[1].spike_generation_fn == StepPWL.apply  # the user's module is untouched


def test_graph_carries_the_native_constants():
    m, shape = build("mlp")
    g = BE.from_native(m, shape)
    node = g.nodes["1_LIFTorch"]
    a, b = float(m[1].alpha.detach()), float(m[1].beta.detach())
    assert isinstance(node, nir.CubaLIF) and node.metadata["threshold"] == "inclusive"
    assert np.all(node.metadata["decay"] == a) and np.all(node.metadata["syn_decay"] == b)
    assert np.all(node.metadata["gain"] == b) and np.all(node.metadata["syn_gain"] == 1.0)
    assert np.array_equal(g.nodes["0_LinearTorch"].weight, m[0].weight.detach().double().numpy().T)


def test_refusals_name_the_layer():
    cases = [
        (LIFTorch(4), r"'1_LIFTorch'.*max_spikes_per_dt = 65536"),
        (LIFTorch(4, max_spikes_per_dt=1.0, bias=0.1), r"'1_LIFTorch'.*bias"),
        (LIFTorch(4, max_spikes_per_dt=1.0, noise_std=0.1), r"'1_LIFTorch'.*noise_std"),
        (LIFTorch((8, 4), max_spikes_per_dt=1.0), r"'1_LIFTorch'.*n_synapses=2"),
    ]
    for lif, pattern in cases:
        n_in = lif.size_in
        with pytest.raises(NativeModelError, match=pattern):
            BE.from_native(Sequential(_lin(4, n_in, 1.0, 0), lif), (4,))
