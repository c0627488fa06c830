"""Native Rockpool models in and out: ``from_native`` / ``run_native`` / ``to_native`` against the user's own module.

A ``Sequential`` of ``LinearTorch`` and ``LIFTorch`` (``max_spikes_per_dt=1``, float64 copy) is imported, written to a
``.nir`` file and read back with ``nir.read(type_check=True)``, then run on the reference executor and the snnTorch,
Norse and Rockpool backends: every ``LIFTorch``'s spikes equal the module's own at every step.  Refusals (Rockpool's
default multi-spike ``max_spikes_per_dt``, bias, noise, several synapses) name the layer.  ``to_native`` of the
imported graph runs spike-identical to the module and the reference, trains (SGD through Rockpool's surrogate),
imports back to the same graph, and refuses what ``LIFTorch`` cannot step exactly, naming the node and field.
"""

from __future__ import annotations

import copy
import functools

import nir
import numpy as np
import pytest
import torch

from snnbridge.backends import get, native_library
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.io import write_graph
from snnbridge.errors import NativeModelError, UnsupportedNodeError
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


def _run(net, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``net``'s output ``[T, B, N_out]`` and every ``LIFTorch``'s spikes (``bool [T, B, N]``, by module name) on
    ``x`` ``[T, B, N_in]`` (Rockpool's ``[B, T, N]`` layout inside; the user's global RNG is untouched)."""
    spk: dict[str, torch.Tensor] = {}
    hooks = [mod.register_forward_hook(lambda m, a, out, k=k: spk.__setitem__(k, out.detach().transpose(0, 1) > 0.5))
             for k, mod in net.modules().items() if type(mod) is LIFTorch]
    try:
        with torch.random.fork_rng(devices=[]):  # each LIFTorch call draws (zero-scaled) noise
            y, _, _ = net(x.transpose(0, 1).contiguous())
    finally:
        for h in hooks:
            h.remove()
    return y.transpose(0, 1), spk


def _same_graph(a: nir.NIRGraph, b: nir.NIRGraph) -> None:
    """Same node names, types, edges, parameter arrays and neuron metadata, bit for bit."""
    assert set(a.nodes) == set(b.nodes) and sorted(a.edges) == sorted(b.edges)
    for name, na in a.nodes.items():
        nb = b.nodes[name]
        assert type(na) is type(nb), name
        for k, v in vars(na).items():
            if isinstance(v, np.ndarray):
                assert np.array_equal(v, getattr(nb, k)), (name, k)
        for k, v in (getattr(na, "metadata", None) or {}).items():
            assert np.array_equal(v, nb.metadata[k]) if isinstance(v, np.ndarray) else v == nb.metadata[k], (name, k)


def test_to_native_runs_identically_trains_and_round_trips(imported):
    from rockpool.nn.modules.torch.lif_torch import StepPWL

    from snnbridge.backends.rockpool_native import typed_step_pwl

    m, x, g, nat = imported("mlp")
    net = BE.to_native(g)
    assert type(net).__name__ == "TorchSequential" and list(net.modules()) == list(m.modules())
    lifs = [mod for mod in net.modules().values() if type(mod) is LIFTorch]
    assert len(lifs) == 3 and all(float(mod.max_spikes_per_dt) == 1 and float(mod.noise_std) == 0 for mod in lifs)
    assert all(mod.spike_generation_fn == typed_step_pwl().apply for mod in lifs)
    layers = _spiking(nat)
    with torch.no_grad():
        y, spk = _run(net, x)
    ref = ReferenceExecutor(g).run(x)
    assert {n: int((spk[n] != nat.outputs[n]).sum()) for n in layers} == {n: 0 for n in layers}
    assert {n: int((spk[n] != ref.outputs[n]).sum()) for n in layers} == {n: 0 for n in layers}
    assert torch.equal(y > 0.5, nat.outputs["output"])
    assert _diffs(nat, BE.run_native(net, x)) == {n: 0 for n in layers}
    assert lifs[0].spike_generation_fn == typed_step_pwl().apply and m[1].spike_generation_fn == StepPWL.apply
    _same_graph(g, BE.from_native(net, (10,)))  # the constants, weights and names come back bit for bit

    net = BE.to_native(g)
    params = dict(net.named_parameters())
    assert sorted(params) == ["0_LinearTorch.weight", "2_LinearTorch.bias", "2_LinearTorch.weight",
                              "4_LinearTorch.weight"] and all(p.requires_grad for p in params.values())
    before = {k: p.detach().clone() for k, p in params.items()}
    y, _ = _run(net, x)
    loss = (y.sum(0) - 3.0).pow(2).mean()  # Rockpool's StepPWL surrogate carries the gradient to every layer
    loss.backward()
    assert all(p.grad is not None and bool(p.grad.ne(0).any()) for p in params.values())
    torch.optim.SGD(params.values(), lr=1e-2).step()
    assert all(not torch.equal(before[k], p) for k, p in params.items())
    g2 = BE.from_native(net, (10,))
    for k, p in params.items():
        node, field = k.split(".")
        want = p.detach().numpy().T if field == "weight" else p.detach().numpy()
        assert np.array_equal(getattr(g2.nodes[node], field), want), k


def _edited(g: nir.NIRGraph, node: str, swap: nir.NIRNode | None = None, drop: tuple[str, ...] = (),
            meta: dict | None = None, **params) -> nir.NIRGraph:
    """A copy of ``g`` whose ``node`` is ``swap``, or has the pinned constants ``drop`` removed (computed from its
    parameters again), other ``meta`` entries and other ``params``."""
    g = copy.deepcopy(g)
    if swap is not None:
        g.nodes[node] = swap
        return g
    n = g.nodes[node]
    for k in drop:
        n.metadata.pop(k)
    n.metadata.update(meta or {})
    for k, v in params.items():
        setattr(n, k, v)
    return g


def test_to_native_refusals_name_the_node_and_field():
    m, shape = build("mlp")
    g = BE.from_native(m, shape)
    node = g.nodes["1_LIFTorch"]
    ones = np.ones(16)
    cases = [
        (_edited(g, "1_LIFTorch", meta={"threshold": "strict"}), r"node '1_LIFTorch', field 'threshold'.*strict"),
        (_edited(g, "1_LIFTorch", meta={"reset": "zero"}), r"node '1_LIFTorch', field 'reset'"),
        (_edited(g, "1_LIFTorch", drop=("bias",), v_leak=ones * 0.1), r"node '1_LIFTorch', field 'v_leak'"),
        (_edited(g, "1_LIFTorch", drop=("syn_gain",), w_in=node.w_in * 2), r"node '1_LIFTorch', field 'w_in'"),
        (_edited(g, "1_LIFTorch", drop=("gain",), r=node.r * 0.5), r"node '1_LIFTorch', field 'r'"),
        (_edited(g, "1_LIFTorch", drop=("decay", "gain"), tau_mem=ones * 1e-3),
         r"node '1_LIFTorch', field 'tau_mem'.*outside"),
        (_edited(g, "1_LIFTorch", swap=nir.LIF(tau=ones * 0.02, r=ones, v_leak=0 * ones, v_threshold=ones,
                                                v_reset=0 * ones)), r"node '1_LIFTorch'.*LIF.*only CubaLIF"),
    ]
    for graph, pattern in cases:
        with pytest.raises(UnsupportedNodeError, match=pattern):
            BE.to_native(graph)
