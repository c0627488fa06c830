"""Native SpikingJelly models in and out: ``from_native`` / ``run_native`` / ``to_native`` against the user's module.

Each native configuration (an ``nn.Sequential`` of ``spikingjelly.activation_based`` layers and neurons, single- or
multi-step, float64) is imported, written to a ``.nir`` file and read back with ``nir.read(type_check=True)``, then
run on the reference executor and the snnTorch, Norse and SpikingJelly backends (Brian2 under ``slow``): every
spiking layer's spikes equal the module's own (``run_native``) at every step.  ``to_native`` modules run
spike-identical to the module they came from, train (one SGD step changes every weight), and refusals name the layer.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
from torch import nn

from snnbridge.backends import get
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.errors import NativeModelError

from .backend_checks import spikes
from .native_checks import check_everywhere, diffs, import_case, spiking

sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import layer, neuron, surrogate  # noqa: E402

LIB = "spikingjelly"
BE = get(LIB)
MODULE_OF = {'spikingjelly': 'spikingjelly.activation_based'}
T, B, SPIKE_P = 20, 2, 0.4


def _init(mod: nn.Module, gain: float, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        fan_in = mod.weight[0].numel()
        mod.weight.copy_(torch.randn(mod.weight.shape, generator=g, dtype=torch.float64) * gain / np.sqrt(fan_in))
        if mod.bias is not None:
            mod.bias.copy_(torch.randn(mod.bias.shape, generator=g, dtype=torch.float64) * 0.05)
    return mod


def _strict() -> surrogate.Sigmoid:
    from snnbridge.backends.spikingjelly_backend import strict_surrogate_class

    return strict_surrogate_class()()


def build(name: str) -> tuple[nn.Module, tuple[int, ...], float]:
    """``(module, input_shape, dt)`` of native configuration ``name`` (float64, seeded)."""
    if name.startswith("mlp_"):
        s = name[-1]  # step mode
        m = nn.Sequential(
            _init(layer.Linear(10, 16, step_mode=s), 4.0, 1), neuron.LIFNode(tau=2.0, step_mode=s),
            _init(layer.Linear(16, 12, step_mode=s), 4.0, 2),
            neuron.LIFNode(tau=3.5, decay_input=False, v_reset=None, v_threshold=0.7, step_mode=s),
            _init(layer.Linear(12, 8, step_mode=s), 4.0, 3),
            neuron.LIFNode(tau=5.0, decay_input=True, v_reset=-0.1, v_threshold=0.4, step_mode=s),
            _init(layer.Linear(8, 6, step_mode=s), 4.0, 4),
            neuron.LIFNode(tau=4.0, decay_input=False, v_reset=0.1, v_threshold=0.6, step_mode=s),
            _init(layer.Linear(6, 4, step_mode=s), 4.0, 5), neuron.IFNode(v_reset=-0.2, v_threshold=0.5,
                                                                          step_mode=s))
        return m.double(), (10,), 1e-3
    if name.startswith("cnn_"):
        s = name[-1]
        m = nn.Sequential(
            _init(layer.Conv2d(2, 4, 3, padding=1, step_mode=s), 3.0, 6),
            neuron.LIFNode(tau=2.0, v_threshold=0.5, step_mode=s),
            layer.AvgPool2d(2, step_mode=s),
            _init(layer.Conv2d(4, 6, 3, stride=2, padding=1, step_mode=s), 4.0, 7),
            neuron.IFNode(v_reset=None, v_threshold=0.4, step_mode=s),
            layer.Flatten(step_mode=s),
            _init(layer.Linear(24, 5, step_mode=s), 4.0, 8),
            neuron.LIFNode(tau=3.0, decay_input=False, v_threshold=0.3, step_mode=s))
        return m.double(), (2, 8, 8), 5e-4
    if name == "seq2ann_nested_strict_m":
        m = nn.Sequential(
            layer.SeqToANNContainer(_init(nn.Conv1d(2, 3, 3, stride=2, padding=1), 3.0, 9), nn.Flatten()),
            neuron.LIFNode(tau=2.5, v_reset=None, surrogate_function=_strict(), step_mode="m"),
            nn.Sequential(_init(nn.Linear(15, 6), 4.0, 10), nn.Dropout(0.5), nn.Identity()),
            neuron.IFNode(surrogate_function=surrogate.ATan(), step_mode="m")).eval()
        return m.double(), (2, 10), 1e-3
    raise KeyError(name)


CONFIGS = ["mlp_s", "mlp_m", "cnn_s", "cnn_m", "seq2ann_nested_strict_m"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("nir"))
    return lambda name: import_case(LIB, build, name, tmp, T, B, SPIKE_P)


@pytest.mark.parametrize("name", CONFIGS)
def test_native_equals_reference_and_backends(name, imported):
    """0 differing spikes at every spiking layer and step: module vs reference, snnTorch, Norse, SpikingJelly."""
    check_everywhere(imported(name), LIB, MODULE_OF, 2)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp_s", "cnn_m"])
def test_native_equals_brian2(name, imported):
    pytest.importorskip("brian2")
    m, x, g, nat, dt = imported(name)
    assert diffs(nat, get("brian2").run(g, x)) == {n: 0 for n in spiking(nat)}


def test_graph_carries_the_native_constants():
    """LIFNode's arithmetic as pinned constants, soft/hard reset, v_init = v_reset, SpikingJelly's >= compare."""
    m, shape, dt = build("mlp_s")
    g = BE.from_native(m, shape, dt=dt)
    n1, n3, n5, n7, n9 = (g.nodes[k] for k in ("1", "3", "5", "7", "9"))
    assert isinstance(n1, nir.LIF) and isinstance(n9, nir.IF)
    assert np.all(n1.metadata["decay"] == 0.5) and np.all(n1.metadata["gain"] == 0.5)
    assert np.all(n1.metadata["bias"] == 0.0) and n1.metadata["reset"] == "zero"
    assert n3.metadata["reset"] == "subtract" and np.all(n3.metadata["gain"] == 1.0) and "v_init" not in n3.metadata
    assert np.all(n5.metadata["bias"] == -0.1 / 5.0) and np.all(n5.metadata["v_init"] == -0.1)
    assert np.all(n7.metadata["gain"] == 1.0) and np.all(n7.metadata["bias"] == 0.1 / 4.0)
    assert all(n.metadata["threshold"] == "inclusive" for n in (n1, n3, n5, n7, n9))
    assert g.metadata["threshold"] == "inclusive"
    strict = BE.from_native(build("seq2ann_nested_strict_m")[0], (2, 10))
    assert strict.nodes["1"].metadata["threshold"] == "strict"


def test_inclusive_compare_matters():
    """A membrane exactly at threshold fires in SpikingJelly (x >= 0) — and in the imported graph."""
    lin = layer.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.5)
    m = nn.Sequential(lin, neuron.IFNode(v_threshold=1.0)).double()
    x = torch.ones(4, 1, 1, dtype=torch.float64)
    nat = BE.run_native(m, x)
    assert nat.outputs["1"][:, 0, 0].tolist() == [False, True, False, True]
    assert torch.equal(ReferenceExecutor(BE.from_native(m, (1,))).run(x).outputs["1"], nat.outputs["1"])


@pytest.mark.parametrize("name,mode", [("mlp_s", "s"), ("mlp_s", "m"), ("cnn_m", "m"),
                                       pytest.param("cnn_s", "s", marks=pytest.mark.slow)])
def test_to_native_runs_identically_and_trains(name, mode, imported):
    m, x, g, nat, dt = imported(name)
    net = BE.to_native(g, step_mode=mode)
    kinds = {type(mod) for mod in net.net}
    assert neuron.LIFNode in kinds and neuron.IFNode in kinds
    assert all(mod.step_mode == mode for mod in net.net if hasattr(mod, "step_mode"))
    back = BE.run_native(net, x, dt=dt)
    assert diffs(nat, back) == {n: 0 for n in spiking(nat)}
    with torch.no_grad():
        assert torch.equal(net(x) > 0.5, nat.outputs["output"])
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    assert before and all(p.requires_grad for p in net.parameters())
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss = net(x).sum(0).pow(2).mean() + sum(p.pow(2).sum() for p in net.parameters()) * 1e-3
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    opt.step()
    assert all(not torch.equal(before[k], p) for k, p in net.named_parameters())
    g2 = net.to_nir()  # the new weights, back to NIR
    w = next(k for k in before if k.endswith("weight"))
    node = g2.nodes[w.split(".")[1]]
    assert np.array_equal(node.weight, dict(net.named_parameters())[w].detach().numpy())


def test_to_native_of_a_nir_graph_and_refusals():
    """A plain NIR LIF chain (r = 1, v_leak = 0, zero reset to 0) becomes LIFNode(decay_input=True); what SpikingJelly
    cannot express is refused naming the node."""
    dt, tau = 1e-3, 4e-3
    g = nir.NIRGraph(nodes={"in": nir.Input(np.array([3])),
                            "fc": nir.Affine(np.random.default_rng(0).normal(size=(4, 3)) * 2, np.zeros(4)),
                            "lif": nir.LIF(tau=np.full(4, tau), r=np.ones(4), v_leak=np.zeros(4),
                                           v_threshold=np.full(4, 0.5), v_reset=np.zeros(4)),
                            "out": nir.Output(np.array([4]))},
                     edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")], metadata={"dt": dt})
    net = BE.to_native(g)
    lif = net.net.lif
    assert type(lif) is neuron.LIFNode and lif.decay_input and abs(lif.tau - 4.0) < 1e-12 and lif.v_reset == 0.0
    x = spikes((3,), 0.5, 1, 20, 2)
    ref = ReferenceExecutor(g).run(x)
    with torch.no_grad():
        assert torch.equal(net(x) > 0.5, ref.outputs["lif"]) and ref.outputs["lif"].sum() > 5
    per_neuron = nir.NIRGraph(nodes=dict(g.nodes, lif=nir.LIF(tau=np.array([2e-3, 3e-3, 4e-3, 5e-3]), r=np.ones(4),
                                                              v_leak=np.zeros(4), v_threshold=np.full(4, 0.5),
                                                              v_reset=np.zeros(4))), edges=g.edges,
                              metadata=g.metadata)
    with pytest.raises(NativeModelError, match=r"lif.*decay.*differs between neurons"):
        BE.to_native(per_neuron)
    delayed = nir.NIRGraph(nodes=dict(g.nodes, lif=nir.LIF(tau=np.full(4, tau), r=np.ones(4), v_leak=np.zeros(4),
                                                           v_threshold=np.full(4, 0.5), v_reset=np.zeros(4),
                                                           metadata={"reset_timing": "delayed"})),
                           edges=g.edges, metadata=g.metadata)
    with pytest.raises(NativeModelError, match=r"lif.*reset timing 'delayed'"):
        BE.to_native(delayed)


def test_refusals_name_the_layer():
    lin = layer.Linear(4, 4)
    tensor_thr = neuron.LIFNode()
    tensor_thr.v_threshold = torch.tensor(1.0)  # SpikingJelly's constructor takes floats only; set afterwards
    cases = [
        (nn.Sequential(lin, neuron.ParametricLIFNode()), r"'1'.*ParametricLIFNode.*not supported"),
        (nn.Sequential(lin, nn.Sequential(nn.ReLU())), r"'1\.0'.*ReLU.*not supported"),
        (nn.Sequential(lin, neuron.LIFNode(step_mode="m")), r"'1'.*step_mode 'm'|'0'.*step_mode 's'"),
        (nn.Sequential(layer.Conv2d(1, 1, 3, step_mode="m"), nn.Flatten(), neuron.IFNode(step_mode="m")),
         r"'1'.*Flatten.*multi-step"),
        (nn.Sequential(lin, tensor_thr), r"'1'.*v_threshold.*Tensor"),
        (nn.Sequential(lin, neuron.IFNode(surrogate_function=lambda x: torch.sigmoid(x))),
         r"'1'.*surrogate_function.*not a Heaviside"),
        (nn.Sequential(lin, layer.Dropout(0.5).train(), neuron.IFNode()), r"'1'.*Dropout.*training"),
        (nn.Sequential(lin, neuron.IFNode()), r"input_shape|cannot take"),
    ]
    for i, (m, pattern) in enumerate(cases):
        shape = (5,) if i == len(cases) - 1 else ((1, 5, 5) if isinstance(m[0], layer.Conv2d) else (4,))
        with pytest.raises(NativeModelError, match=pattern):
            BE.from_native(m, shape)
