"""Native Norse models in and out: ``from_native`` / ``run_native`` / ``to_native`` against the user's own module.

Each native configuration (a ``SequentialState`` of Norse cells and torch layers, float64 parameters) is imported,
written to a ``.nir`` file and read back with ``nir.read(type_check=True)``, then run on the reference executor and on
the Norse, snnTorch and Brian2 backends: every spiking layer's spikes equal the module's own (``run_native``) at every
step.  In float32 (a float32 model against the float64 reference of its own graph) a flip may only occur where the
float64 membrane lies within 2 float32 ulp of the threshold.  ``to_native`` modules (Table 1, the peer graphs, every
reset option) equal the reference and train (finite, non-zero gradients for every weight).
"""

from __future__ import annotations

import functools

import nir
import numpy as np
import pytest
import torch
from torch import nn

from snnbridge.backends import get
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.graph import prepare
from snnbridge.bridge.io import write_graph
from snnbridge.errors import NativeModelError, UnsupportedNodeError
from snnbridge.models import TABLE1

from .backend_checks import PEERS, spikes
from .test_backend_norse import OPTION_CASES, option_graph

norse = pytest.importorskip("norse.torch")
BE = get("norse")


# --------------------------------------------------------------------------- native configurations


def _p(v, dtype):
    return torch.as_tensor(v, dtype=dtype)


def _lin(i, o, gain, seed):
    layer = nn.Linear(i, o)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(o, i, generator=g) * gain / np.sqrt(i))
        layer.bias.copy_(torch.randn(o, generator=g) * 0.05)
    return layer


def _conv(cls, i, o, k, gain, seed, **kw):
    layer = cls(i, o, k, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * gain / np.sqrt(layer.weight[0].numel()))
        layer.bias.copy_(torch.randn(o, generator=g) * 0.05)
    return layer


def build(name: str, dtype: torch.dtype = torch.float64):
    """``(module, input_shape, dt)`` of native configuration ``name`` in ``dtype`` (seeded)."""
    P = lambda v: _p(v, dtype)  # noqa: E731
    ar = lambda a, b, n: torch.linspace(a, b, n, dtype=torch.float64).to(dtype)  # noqa: E731
    if name == "lifbox_mlp_li":
        m = norse.SequentialState(
            _lin(10, 16, 4.0, 1), norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=P(200.0), v_leak=P(0.1),
                                                                          v_th=P(0.5))),
            _lin(16, 4, 4.0, 2), norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=P(100.0), v_leak=P(0.0))))
        return m, (10,), 1e-3
    if name == "lifbox_subtract_per_neuron_dt5e-4":
        from norse.torch.functional.reset import reset_subtract

        m = norse.SequentialState(
            _lin(10, 12, 5.0, 3), norse.LIFBoxCell(norse.LIFBoxParameters(
                tau_mem_inv=ar(150.0, 600.0, 12), v_leak=ar(-0.1, 0.2, 12), v_th=ar(0.3, 0.8, 12),
                reset_method=reset_subtract), dt=5e-4),
            _lin(12, 6, 4.0, 4), norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=P(400.0), v_th=P(0.4),
                                                                         reset_method=reset_subtract), dt=5e-4))
        return m, (10,), 5e-4
    if name == "lifcell_mlp_li_readout":
        m = norse.SequentialState(
            _lin(10, 16, 3.0, 5), norse.LIFCell(norse.LIFParameters(tau_syn_inv=P(200.0), tau_mem_inv=P(100.0),
                                                                    v_leak=P(0.05), v_th=P(0.3), v_reset=P(-0.1))),
            _lin(16, 5, 3.0, 6), norse.LICell(norse.LIParameters(tau_syn_inv=P(250.0), tau_mem_inv=P(120.0),
                                                                 v_leak=P(0.0))))
        return m, (10,), 1e-3
    if name == "lifcell_per_neuron_dt2e-4":
        m = norse.SequentialState(
            _lin(8, 12, 3.0, 7), norse.LIFCell(norse.LIFParameters(
                tau_syn_inv=ar(300.0, 900.0, 12), tau_mem_inv=ar(200.0, 500.0, 12), v_leak=P(0.0),
                v_th=ar(0.05, 0.15, 12)), dt=2e-4),
            _lin(12, 6, 3.0, 8), norse.LIFCell(norse.LIFParameters(tau_syn_inv=P(500.0), tau_mem_inv=P(300.0),
                                                                   v_th=P(0.05)), dt=2e-4))
        return m, (8,), 2e-4
    if name == "iaf_mlp":
        m = norse.SequentialState(
            _lin(10, 14, 2.0, 9), norse.IAFCell(norse.IAFParameters(v_th=P(0.8), v_reset=P(-0.2))),
            _lin(14, 6, 2.5, 10), norse.IAFCell(norse.IAFParameters(v_th=ar(0.5, 1.0, 6), v_reset=P(0.0))))
        return m, (10,), 1e-3
    if name == "lif_recurrent_no_autapses":
        cell = norse.LIFRecurrentCell(10, 16, norse.LIFParameters(tau_syn_inv=P(200.0), tau_mem_inv=P(100.0),
                                                                  v_leak=P(0.1), v_th=P(0.3)), autapses=False)
        m = norse.SequentialState(cell, _lin(16, 5, 3.0, 11),
                                  norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=P(150.0), v_th=P(0.4))))
        with torch.no_grad():
            g = torch.Generator().manual_seed(12)
            cell.input_weights.copy_(torch.randn(16, 10, generator=g) * 1.5)
            cell.recurrent_weights.copy_(torch.randn(16, 16, generator=g) * 0.5 * (1 - torch.eye(16)))
        return m.to(dtype), (10,), 1e-3
    if name == "lif_recurrent_autapses_dt5e-4":
        cell = norse.LIFRecurrentCell(8, 12, norse.LIFParameters(tau_syn_inv=ar(400.0, 800.0, 12),
                                                                 tau_mem_inv=P(300.0), v_leak=P(1 / 3), v_th=P(0.5)),
                                      autapses=True, dt=5e-4)
        with torch.no_grad():
            g = torch.Generator().manual_seed(13)
            cell.input_weights.copy_(torch.randn(12, 8, generator=g) * 2.0)
            cell.recurrent_weights.copy_(torch.randn(12, 12, generator=g) * 0.6)
        return norse.SequentialState(cell).to(dtype), (8,), 5e-4
    if name == "cnn2d":
        from norse.torch.functional.reset import reset_subtract

        m = norse.SequentialState(
            _conv(nn.Conv2d, 2, 4, 3, 3.0, 14, padding=1),
            norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=P(200.0), v_th=P(0.3))),
            nn.AvgPool2d(2),
            _conv(nn.Conv2d, 4, 4, 3, 4.0, 15, stride=2, padding=1),
            norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=P(250.0), v_th=P(0.2), reset_method=reset_subtract)),
            nn.Flatten(), _lin(16, 5, 4.0, 16),
            norse.LIFCell(norse.LIFParameters(tau_syn_inv=P(300.0), tau_mem_inv=P(200.0), v_th=P(0.1))))
        return m, (2, 8, 8), 1e-3
    if name == "conv1d_iaf_nested":
        m = norse.SequentialState(
            nn.Sequential(_conv(nn.Conv1d, 2, 3, 3, 3.0, 17, stride=2, padding=1), nn.Identity(), nn.Dropout(0.5)),
            norse.SequentialState(norse.IAFCell(norse.IAFParameters(v_th=P(0.5))), nn.Flatten(start_dim=1)),
            _lin(15, 6, 4.0, 18), norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=P(100.0), v_th=P(0.3))),
        ).eval()
        return m, (2, 10), 1e-3
    raise KeyError(name)


CONFIGS = ["lifbox_mlp_li", "lifbox_subtract_per_neuron_dt5e-4", "lifcell_mlp_li_readout",
           "lifcell_per_neuron_dt2e-4", "iaf_mlp", "lif_recurrent_no_autapses", "lif_recurrent_autapses_dt5e-4",
           "cnn2d", "conv1d_iaf_nested"]
SPIKE_P, T, B = 0.4, 30, 4


def _model(name, dtype):
    torch.manual_seed(0)
    m, shape, dt = build(name, dtype)
    return m.to(dtype), shape, dt


def _spiking(rec):
    return [n for n in rec.outputs if rec.node_types.get(n) in ("LIF", "IF", "CubaLIF")]


def _diffs(native, other) -> dict[str, int]:
    return {n: int((native.outputs[n] != other.outputs[n]).sum()) for n in _spiking(native)}


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """name -> (module, inputs, graph read back from its .nir file, native recording, dt), float64."""
    cache = {}

    def get_(name):
        if name not in cache:
            m, shape, dt = _model(name, torch.float64)
            x = spikes(shape, SPIKE_P, 3, T, B)
            g = BE.from_native(m, shape, dt=dt)
            path = write_graph(tmp_path_factory.mktemp("nir") / f"{name}.nir", g)
            cache[name] = (m, x, nir.read(str(path), type_check=True), BE.run_native(m, x), dt)
        return cache[name]

    return get_


@pytest.mark.parametrize("name", CONFIGS)
def test_native_equals_reference_and_norse_float64(name, imported):
    m, x, g, nat, dt = imported(name)
    layers = _spiking(nat)
    assert layers and all(nat.outputs[n].sum() >= 20 for n in layers), {n: int(nat.outputs[n].sum()) for n in layers}
    ref = ReferenceExecutor(g).run(x)
    assert ref.dt == dt
    assert _diffs(nat, ref) == {n: 0 for n in layers}
    assert torch.equal(nat["output"], ref["output"]) if nat["output"].dtype == torch.bool else \
        torch.allclose(nat["output"], ref["output"], rtol=0, atol=1e-12)
    for n, v in nat.membranes.items():  # LI readouts: Norse's Euler form rounds differently from the reference
        assert (v - ref.membrane(n)).abs().max() <= 1e-12, n
    got = BE.run(g, x)
    assert _diffs(nat, got) == {n: 0 for n in layers}


SLOW = pytest.mark.slow  # Brian2 generates and compiles C++ per graph (10-190 s each on 2 cores)


@pytest.mark.parametrize("backend", ["snntorch", pytest.param("brian2", marks=SLOW)])
@pytest.mark.parametrize("name", CONFIGS)
def test_native_equals_other_backends_float64(name, backend, imported):
    m, x, g, nat, dt = imported(name)
    try:
        be = get(backend)
        sim = be.compile(g)
    except UnsupportedNodeError as e:
        pytest.skip(f"{backend} does not support this graph yet: {e}")
    except Exception as e:  # noqa: BLE001
        if type(e).__name__ == "BackendUnavailableError":
            pytest.skip(str(e))
        raise
    got = sim.run(x)
    assert _diffs(nat, got) == {n: 0 for n in _spiking(nat)}


def _ulps32(v: torch.Tensor) -> torch.Tensor:
    v32 = v.to(torch.float32).abs()
    return (torch.nextafter(v32, torch.full_like(v32, float("inf"))) - v32).double()


@pytest.mark.parametrize("name", CONFIGS)
def test_native_float32_flips_only_within_2_ulp(name):
    """A float32 model against the float64 reference of its own graph: each layer's first flip per sample (not caused
    upstream) lies where the float64 membrane is within 2 float32 ulp of the threshold."""
    m, shape, dt = _model(name, torch.float32)
    x = spikes(shape, SPIKE_P, 3, T, B)
    g = BE.from_native(m, shape, dt=dt)
    nat = BE.run_native(m, x, dtype=torch.float32)
    ref = ReferenceExecutor(g).run(x)
    fg = prepare(g)
    layers = _spiking(nat)
    first_bad = {}
    for n in layers:
        diff = (nat.outputs[n] != ref.outputs[n]).reshape(T, B, -1)
        first_bad[n] = [int(diff[:, b].any(-1).nonzero()[0]) if diff[:, b].any() else T for b in range(B)]
    for i, n in enumerate(layers):
        thr = torch.as_tensor(np.broadcast_to(fg.coefficients(n).threshold, fg.in_shapes[n]).copy())
        for b in range(B):
            t0 = first_bad[n][b]
            if t0 == T or any(first_bad[u][b] <= t0 for u in layers[:i]):
                continue
            where = nat.outputs[n][t0, b] != ref.outputs[n][t0, b]
            margin = (ref.membrane(n)[t0, b] - thr)[where].abs()
            assert (margin <= 2 * _ulps32(thr[where])).all(), (n, b, t0, margin.max().item())


# --------------------------------------------------------------------------- refusals


def _lifbox(**kw):
    return norse.LIFBoxCell(norse.LIFBoxParameters(**kw))


@pytest.mark.parametrize("case,pattern", [
    ("relu", r"layer '1' \(torch.nn.modules.activation.ReLU\): is not supported"),
    ("norse_lif_sequence", r"layer '1' \(norse.torch.module.lif.LIF\): is not supported"),
    ("cell_in_plain_sequential", r"layer '1' \(norse.*LIFBoxCell\): a Norse cell returns \(output, state\)"),
    ("not_a_chain", r"layer '<model>' \(.*Module\): is not a norse.torch.SequentialState"),
    ("wrong_input_shape", r"layer '0' \(torch.nn.modules.linear.Linear\): input_shape \[7\] does not fit"),
    ("nan_weight", r"layer '0' \(.*Linear\): 'weight' contains NaN"),
    ("nan_parameter", r"layer '1' \(.*LIFBoxCell\): 'p.v_th' contains NaN"),
    ("mixed_dt", r"layer '3' \(.*LIFBoxCell\): steps with dt=0.0005 s but the model is imported with dt=0.001 s"),
    ("decay_below_zero", r"layer '1' \(.*LIFBoxCell\): dt·tau_mem_inv = 2\.\.2 .*\[0, 1\)"),
    ("adjoint", r"layer '1' \(.*LIFCell\): threshold method 'adjoint' is not supported"),
    ("custom_reset", r"layer '1' \(.*LIFBoxCell\): reset_method '<lambda>' is not one of"),
    ("dropout_training", r"layer '1' \(.*Dropout\): is in training mode"),
    ("batch_axis_parameter", r"layer '1' \(.*LIFBoxCell\): 'p.v_th' has shape \[2, 4\]"),
    ("ceil_mode_pool", r"layer '0' \(.*AvgPool2d\): only ceil_mode=False"),
])
def test_refused_with_layer_path_and_class(case, pattern):
    lin = nn.Linear(3, 4)
    m = {
        "relu": lambda: norse.SequentialState(lin, nn.ReLU()),
        "norse_lif_sequence": lambda: norse.SequentialState(lin, norse.LIF()),
        "cell_in_plain_sequential": lambda: nn.Sequential(lin, _lifbox()),
        "not_a_chain": lambda: nn.Module(),
        "wrong_input_shape": lambda: norse.SequentialState(lin, _lifbox()),
        "nan_weight": lambda: norse.SequentialState(nn.Linear(3, 4).requires_grad_(False).apply(
            lambda mod: mod.weight.fill_(float("nan")) if isinstance(mod, nn.Linear) else None), _lifbox()),
        "nan_parameter": lambda: norse.SequentialState(lin, _lifbox(v_th=torch.tensor(float("nan")))),
        "mixed_dt": lambda: norse.SequentialState(lin, _lifbox(), nn.Linear(4, 4),
                                                  norse.LIFBoxCell(norse.LIFBoxParameters(), dt=5e-4)),
        "decay_below_zero": lambda: norse.SequentialState(lin, _lifbox(tau_mem_inv=torch.tensor(2000.0))),
        "adjoint": lambda: norse.SequentialState(lin, norse.LIFCell(norse.LIFParameters(method="adjoint"))),
        "custom_reset": lambda: norse.SequentialState(lin, _lifbox(reset_method=lambda z, v, r, th: v)),
        "dropout_training": lambda: norse.SequentialState(lin, nn.Dropout(0.5), _lifbox()),
        "batch_axis_parameter": lambda: norse.SequentialState(lin, _lifbox(v_th=torch.ones(2, 4))),
        "ceil_mode_pool": lambda: norse.SequentialState(nn.AvgPool2d(2, ceil_mode=True), _lifbox()),
    }[case]()
    shape = {"wrong_input_shape": (7,), "ceil_mode_pool": (1, 4, 4)}.get(case, (3,))
    with pytest.raises(NativeModelError, match=pattern):
        BE.from_native(m, shape)


# --------------------------------------------------------------------------- what Norse's own exporter writes


def test_norse_to_nir_scales_tau_by_dt_and_loses_the_current_jump():
    """``norse.torch.to_nir`` writes ``tau = dt / tau_inv`` (1e-3 x the time constant) and ``w_in = 1``; ours writes
    ``tau = 1/tau_inv`` and pins Norse's own constants."""
    from norse.torch import to_nir

    m, shape, dt = _model("lifcell_mlp_li_readout", torch.float32)
    theirs = to_nir(m, torch.zeros((1,) + shape))
    cuba = next(n for n in theirs.nodes.values() if isinstance(n, nir.CubaLIF))
    ours = BE.from_native(m, shape, dt=dt).nodes["1"]
    assert np.allclose(np.asarray(cuba.tau_mem), 1e-3 / 100.0) and np.allclose(ours.tau_mem, 1 / 100.0)
    assert np.allclose(np.asarray(cuba.w_in), 1.0) and np.allclose(ours.w_in, 1 / (dt * 200.0))


# --------------------------------------------------------------------------- to_native


def _check_module(graph, x, **semantics):
    """The ``to_native`` module equals the reference at every spiking node in float64 and trains."""
    mod = BE.to_native(graph, **semantics)
    ref = ReferenceExecutor(graph, **semantics).run(x)
    nat = BE.run_native(mod, x)
    spiking = _spiking(nat)
    assert spiking and _diffs(nat, ref) == {n: 0 for n in spiking}
    y = mod(x.to(torch.float64))
    assert torch.equal(y > 0.5, ref.output()) if ref.output().dtype == torch.bool else \
        torch.allclose(y, ref.output(), rtol=0, atol=1e-9)
    y.sum().backward()
    weights = [(n, p) for n, p in mod.named_parameters() if n.endswith("weight")]
    assert weights
    for n, p in weights:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, n
    return mod, ref


SMALL_INPUTS = {"mnist_mlp": (48,), "nmnist_mlp": (64,), "mnist_cnn": (1, 10, 10), "cifar10_cnn": (3, 8, 8),
                "nmnist_cnn": (2, 8, 8), "dvscifar10_cnn": (2, 10, 10)}


@functools.cache
def small_table1(key: str, neuron: str):
    """A Table-1 structure on a small input (seeded weights scaled so every layer fires): (graph, x, semantics)."""
    from snnbridge.models import Network
    from snnbridge.models.export import to_nir
    from snnbridge.validation.node_suite import scale_to_fire

    torch.manual_seed(0)
    net = Network(structure=TABLE1[key], input_shape=SMALL_INPUTS[key], neuron=neuron, reset="zero", threshold=0.5,
                  decay=0.5, pool="neuron", conv_stride=1).double()
    x = spikes(SMALL_INPUTS[key], 0.25, 1, 8, 2)
    scale_to_fire(net, x)
    return to_nir(net), x, {"dt": net.config.dt, "reset": "zero", "integration": "euler"}


@pytest.mark.parametrize("neuron", ["lif", "if"])
@pytest.mark.parametrize("key", [k if k in ("mnist_mlp", "nmnist_mlp", "mnist_cnn") else pytest.param(k, marks=SLOW)
                                 for k in TABLE1])
def test_to_native_table1(key, neuron):
    graph, x, semantics = small_table1(key, neuron)
    mod, _ = _check_module(graph, x, **semantics)
    assert any(isinstance(m, (norse.LIFBoxCell, norse.IAFCell)) for m in mod.modules())


@pytest.mark.parametrize("stem", list(PEERS))
def test_to_native_peer_graphs(stem, shared_graph):
    from snnbridge.bridge import read_graph

    semantics, shape, T_, p = PEERS[stem]
    graph = read_graph(shared_graph(stem))
    _check_module(graph, spikes(shape, p, 7, min(T_, 40)), **semantics)


@pytest.mark.parametrize("kind,reset,timing,target", OPTION_CASES)
def test_to_native_every_reset_option(kind, reset, timing, target):
    _check_module(option_graph(kind, reset, timing, target, init=True), spikes((4,), 0.5, 1, 30, 3), dt=1e-3)


def test_to_native_recurrent_and_dtype_round_trip():
    m, shape, dt = _model("lif_recurrent_no_autapses", torch.float64)
    g = BE.from_native(m, shape, dt=dt)
    x = spikes(shape, SPIKE_P, 5, T, B)
    mod, ref = _check_module(g, x)
    mod32 = BE.to_native(g).float()  # the Norse parameters follow .float()
    assert all(c.adapter.dtype == torch.float32 for c in mod32.neuron_modules().values())
    y32 = mod32(x.float())
    assert y32.dtype == torch.float32 and (y32 > 0.5).sum() > 0


def test_fine_tuned_module_exports_its_new_weights():
    m, shape, dt = _model("lifbox_mlp_li", torch.float64)
    g = BE.from_native(m, shape, dt=dt)
    mod = BE.to_native(g)
    x = spikes(shape, SPIKE_P, 9, 20, 4)
    opt = torch.optim.SGD(mod.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        mod(x)[-1].pow(2).sum().backward()
        opt.step()
    g2 = BE.from_native(mod, shape, dt=dt)
    assert not np.array_equal(g2.nodes["0"].weight, g.nodes["0"].weight)
    assert np.array_equal(g2.nodes["0"].weight, mod.layers["0"].weight.detach().numpy())
    ref = ReferenceExecutor(g2).run(x)
    with torch.no_grad():
        assert torch.allclose(mod(x), ref.output(), rtol=0, atol=1e-12)


def test_snntorch_model_to_norse_fine_tuned_to_brian2(tmp_path):
    """snnTorch model → NIR → Norse module → one epoch of fine-tuning → NIR (.nir file) → Brian2 (and the reference)
    gives the fine-tuned Norse module's spikes exactly."""
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(10, 16), snn.Leaky(beta=0.9, init_hidden=True),
                        nn.Linear(16, 4), snn.Leaky(beta=0.8, init_hidden=True, output=True)).double()
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[2].weight.mul_(3.0)
    g = get("snntorch").from_native(net, (10,), dt=1e-3)
    mod = BE.to_native(g)
    data = spikes((10,), SPIKE_P, 11, 25, 8)
    target = torch.zeros(8, 4, dtype=torch.float64)
    target[torch.arange(8), torch.arange(8) % 4] = 5.0
    opt = torch.optim.Adam(mod.parameters(), lr=1e-2)
    for i in range(0, 8, 4):  # one epoch of two mini-batches
        opt.zero_grad()
        loss = (mod(data[:, i:i + 4]).sum(0) - target[i:i + 4]).pow(2).mean()
        loss.backward()
        opt.step()
    tuned = BE.from_native(mod, (10,))
    path = write_graph(tmp_path / "tuned.nir", tuned)
    back = nir.read(str(path), type_check=True)
    x = spikes((10,), SPIKE_P, 12, 25, 3)
    nat = BE.run_native(mod, x)
    assert sum(int(nat.outputs[n].sum()) for n in _spiking(nat)) > 20
    ref = ReferenceExecutor(back).run(x)
    assert _diffs(nat, ref) == {n: 0 for n in _spiking(nat)}
    try:
        got = get("brian2").run(back, x)
    except UnsupportedNodeError as e:
        pytest.skip(f"brian2 does not support this graph yet: {e}")
    assert _diffs(nat, got) == {n: 0 for n in _spiking(nat)}
