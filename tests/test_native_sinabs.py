"""Native Sinabs models in and out: ``from_native`` / ``run_native`` / ``to_native`` against the user's own module.

Each native configuration (an ``nn.Sequential`` of ``sinabs.layers`` ``LIF``/``IAF`` or their ``Squeeze`` variants
with ``spike_fn=SingleSpike`` and torch layers, float64) is imported, written to a ``.nir`` file and read back with
``nir.read(type_check=True)``, then run on the reference executor and the snnTorch, Norse and Sinabs backends (Brian2
under ``slow``): every spiking layer's spikes equal the module's own (``run_native``) at every step.  ``to_native``
modules run spike-identical, train, and refusals (``MultiSpike``, Sinabs's default, among them) name the layer.
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

sl = pytest.importorskip("sinabs.layers")
act = pytest.importorskip("sinabs.activation")

LIB = "sinabs"
BE = get(LIB)
MODULE_OF = {'norse': 'norse.torch'}
T, B, SPIKE_P = 20, 2, 0.4
SS = act.SingleSpike


def _init(mod: nn.Module, gain: float, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        fan_in = mod.weight[0].numel()
        mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * gain / np.sqrt(fan_in))
        if mod.bias is not None:
            mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.05)
    return mod


def build(name: str) -> tuple[nn.Module, tuple[int, ...], float]:
    """``(module, input_shape, dt)`` of native configuration ``name`` (float64, seeded)."""
    if name == "mlp":
        m = nn.Sequential(
            _init(nn.Linear(10, 16), 4.0, 1), sl.LIF(tau_mem=3.0, spike_fn=SS),
            _init(nn.Linear(16, 12), 4.0, 2),
            sl.LIF(tau_mem=5.0, norm_input=False, spike_threshold=0.75, spike_fn=SS, reset_fn=act.MembraneReset()),
            _init(nn.Linear(12, 8), 4.0, 3),
            sl.LIF(tau_mem=torch.linspace(2.0, 8.0, 8), train_alphas=True, spike_threshold=torch.linspace(0.2, 0.6, 8),
                   spike_fn=SS),
            nn.Sequential(_init(nn.Linear(8, 4), 4.0, 4), nn.Dropout(0.3)),
            sl.IAF(spike_fn=SS, spike_threshold=0.5)).eval()
        return m.double(), (10,), 1e-3
    if name == "cnn_squeeze":
        m = nn.Sequential(
            _init(nn.Conv2d(2, 4, 3, padding=1), 3.0, 5), sl.IAFSqueeze(batch_size=1, spike_fn=SS, spike_threshold=0.5),
            nn.AvgPool2d(2),
            _init(nn.Conv2d(4, 6, 3, stride=2, padding=1), 6.0, 6),
            sl.LIFSqueeze(tau_mem=4.0, num_timesteps=7, spike_fn=SS, reset_fn=act.MembraneReset()),
            nn.Flatten(), _init(nn.Linear(24, 5), 6.0, 7),
            sl.LIFSqueeze(tau_mem=2.5, batch_size=9, spike_fn=SS, spike_threshold=0.25))
        return m.double(), (2, 8, 8), 5e-4
    raise KeyError(name)


CONFIGS = ["mlp", "cnn_squeeze"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("nir"))
    return lambda name: import_case(LIB, build, name, tmp, T, B, SPIKE_P)


@pytest.mark.parametrize("name", CONFIGS)
def test_native_equals_reference_and_backends(name, imported):
    """0 differing spikes at every spiking layer and step: module vs reference, snnTorch, Norse, Sinabs."""
    check_everywhere(imported(name), LIB, MODULE_OF, 3)


@pytest.mark.slow
def test_native_equals_brian2(imported):
    pytest.importorskip("brian2")
    m, x, g, nat, dt = imported("mlp")
    assert diffs(nat, get("brian2").run(g, x)) == {n: 0 for n in spiking(nat)}


def test_graph_carries_the_native_constants():
    m, shape, dt = build("mlp")
    g = BE.from_native(m, shape, dt=dt)
    a1 = m[1].alpha_mem_calculated.item()
    assert np.all(g.nodes["1"].metadata["decay"] == a1) and np.all(g.nodes["1"].metadata["gain"] == 1 - a1)
    assert np.all(g.nodes["3"].metadata["gain"] == 1.0) and g.nodes["3"].metadata["reset"] == "zero"
    assert g.nodes["1"].metadata["reset"] == "subtract"
    assert np.array_equal(g.nodes["5"].v_threshold, m[5].spike_threshold.detach().numpy())
    assert isinstance(g.nodes["7"], nir.IF) and g.nodes["6_0"].weight.shape == (4, 8)
    assert all(g.nodes[n].metadata["threshold"] == "inclusive" for n in ("1", "3", "5", "7"))


@pytest.mark.parametrize("name", CONFIGS)
def test_to_native_runs_identically_and_trains(name, imported):
    m, x, g, nat, dt = imported(name)
    net = BE.to_native(g)
    assert {type(mod) for mod in net.net} >= {sl.LIFSqueeze}
    with torch.no_grad():
        assert torch.equal(net(x) > 0.5, nat.outputs["output"])
    back = BE.run_native(net.net, x, dt=dt)
    assert diffs(nat, back) == {n: 0 for n in spiking(nat)}
    before = {k: p.detach().clone() for k, p in net.named_parameters() if p.requires_grad}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    loss = net(x).sum(0).pow(2).mean() + sum(p.pow(2).sum() for k, p in net.named_parameters() if k in before) * 1e-3
    loss.backward()
    opt.step()
    weights = [k for k in before if k.endswith("weight")]
    assert weights and all(not torch.equal(before[k], dict(net.named_parameters())[k]) for k in weights)
    g2 = net.to_nir()
    w = weights[0]
    assert np.array_equal(g2.nodes[w.split(".")[1]].weight, dict(net.named_parameters())[w].detach().numpy())


def test_to_native_of_a_strict_nir_graph():
    """A plain NIR IF chain (strict compare, subtract reset): Sinabs fires at nextafter(θ) and subtracts θ; importing
    that module gives the strict node back."""
    w = np.random.default_rng(0).normal(size=(4, 3)) * 1.5
    g = nir.NIRGraph(nodes={"in": nir.Input(np.array([3])), "fc": nir.Affine(w, np.zeros(4)),
                            "if": nir.IF(r=np.ones(4), v_threshold=np.full(4, 0.3), v_reset=np.zeros(4)),
                            "out": nir.Output(np.array([4]))},
                     edges=[("in", "fc"), ("fc", "if"), ("if", "out")], metadata={"dt": 1e-3, "reset": "subtract"})
    net = BE.to_native(g)
    x = spikes((3,), 0.5, 1, 20, 2)
    ref = ReferenceExecutor(g).run(x)
    with torch.no_grad():
        assert torch.equal(net(x) > 0.5, ref.outputs["if"]) and ref.outputs["if"].sum() > 5
    back = BE.from_native(net.net, (3,))
    assert back.nodes["if"].metadata["threshold"] == "strict" and np.all(back.nodes["if"].v_threshold == 0.3)
    leaky = nir.NIRGraph(nodes=dict(g.nodes, **{"if": nir.LIF(tau=np.full(4, 4e-3), r=np.ones(4), v_leak=np.ones(4),
                                                               v_threshold=np.full(4, 0.3), v_reset=np.zeros(4))}),
                         edges=g.edges, metadata=g.metadata)
    with pytest.raises(NativeModelError, match=r"'if'.*bias"):
        BE.to_native(leaky)


def test_refusals_name_the_layer():
    lin = nn.Linear(4, 4)
    cases = [
        (nn.Sequential(lin, sl.IAF()), r"'1'.*IAF.*MultiSpike.*several spikes"),
        (nn.Sequential(lin, sl.LIF(tau_mem=3.0, tau_syn=2.0, spike_fn=SS)), r"'1'.*tau_syn"),
        (nn.Sequential(lin, sl.IAF(spike_fn=SS, min_v_mem=-1.0)), r"'1'.*min_v_mem"),
        (nn.Sequential(lin, sl.IAF(spike_fn=SS, reset_fn=act.MembraneReset(reset_value=0.5))), r"'1'.*reset_value"),
        (nn.Sequential(lin, sl.IAF(spike_fn=SS, spike_threshold=torch.tensor(0.1, dtype=torch.float64))),
         r"'1'.*float32"),
        (nn.Sequential(lin, sl.ExpLeak(tau_mem=2.0)), r"'1'.*ExpLeak.*not supported"),
        (nn.Sequential(lin, sl.IAF(spike_fn=SS), sl.IAFSqueeze(batch_size=1, spike_fn=SS)), r"'2'.*mixes"),
        (nn.Sequential(nn.Flatten(), sl.IAF(spike_fn=SS)), r"'0'.*Flatten.*LIFSqueeze"),
    ]
    for m, pattern in cases:
        with pytest.raises(NativeModelError, match=pattern):
            BE.from_native(m.double() if "float32" in pattern else m, (4,))
