"""Native Spyx models in and out: ``from_native`` / ``run_native`` / ``to_native`` against the user's own module.

A ``spyx.nn.Sequential`` of ``nnx.Linear``, ``spyx.nn.Flatten`` and Spyx's ``LIF`` / ``IF`` / ``CuBaLIF`` / ``LI``
is imported (each spiking layer as the reference neuron in Spyx's timing plus a one-step ``Delay``: Spyx emits a
spike a step after deciding it), written to a ``.nir`` file and read back with ``nir.read(type_check=True)``, then
run on the reference executor and the snnTorch, Norse and Spyx backends: every layer's decided spikes and its
emitted (delayed) spikes equal the module's own at every step, 0 differing.  Refusals name the layer.  ``to_native``
of the imported graph is a ``spyx.nn.Sequential`` that runs spike-identical, trains (one Adam step through Spyx's
surrogates changes every parameter), imports back to the same graph, and refuses what no Spyx module steps exactly,
naming the node and field.
"""

from __future__ import annotations

import copy
import functools

import nir
import numpy as np
import pytest
import torch

from snnbridge.backends import get, native_library, spyx_native
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.io import write_graph
from snnbridge.errors import NativeModelError, UnsupportedNodeError
from snnbridge.validation import conform

from .backend_checks import spikes
from .native_checks import diffs, spiking

pytest.importorskip("spyx")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import spyx  # noqa: E402
from flax import nnx  # noqa: E402

jax.config.update("jax_enable_x64", True)
BE = get("spyx")
T, B, SPIKE_P = 40, 3, 0.3


def _lin(i: int, o: int, gain: float, seed: int, bias: bool = True):
    layer = nnx.Linear(i, o, use_bias=bias, param_dtype=jnp.float64, rngs=nnx.Rngs(seed))
    layer.kernel[...] = layer.kernel[...] * gain
    if bias:
        layer.bias[...] = jnp.full((o,), 0.05)
    return layer


def build(name: str):
    """``(module, input_shape)`` of native configuration ``name`` (seeded, float64 parameters)."""
    r = nnx.Rngs(1)
    if name == "lif":  # per-neuron trained betas (Spyx's default init) and a scalar one, strict superspike
        return spyx.nn.Sequential(
            _lin(20, 32, 2.0, 0), spyx.nn.LIF((32,), threshold=0.5, rngs=r),
            _lin(32, 10, 2.5, 2, bias=False), spyx.nn.LIF((10,), beta=0.8, threshold=0.4, rngs=r)), (20,)
    if name == "mixed":  # image input, IF with another surrogate, CuBaLIF, an LI readout
        return spyx.nn.Sequential(
            spyx.nn.Flatten(), _lin(32, 24, 2.0, 0),
            spyx.nn.IF((24,), threshold=1.0, activation=spyx.axn.arctan()), _lin(24, 16, 1.5, 3),
            spyx.nn.CuBaLIF((16,), threshold=0.6, rngs=r), _lin(16, 5, 1.0, 4), spyx.nn.LI((5,), rngs=r)), (2, 4, 4)
    raise KeyError(name)


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


def _emitted(rec) -> dict[str, torch.Tensor]:
    return {n: v for n, v in rec.outputs.items() if n.endswith("_out")}


CONFIGS = ["lif", pytest.param("mixed", marks=pytest.mark.slow)]
"""The image/IF/CuBaLIF/LI configuration is ``slow`` (eager JAX steps, ~10 s per test on 2 shared cores)."""


@pytest.mark.parametrize("name", CONFIGS)
def test_native_equals_reference_and_backends(imported, name):
    m, x, g, nat = imported(name)
    layers = spiking(nat)
    assert len(layers) == 2 and all(nat.outputs[n].sum() >= 15 for n in layers), \
        {n: int(nat.outputs[n].sum()) for n in layers}
    assert all(nat.outputs[n].float().mean() < 0.9 for n in layers)
    emitted = _emitted(nat)
    assert sorted(emitted) == sorted(f"{n}_out" for n in layers)
    for n in layers:  # what Spyx emits is what it decided one step earlier
        assert not emitted[f"{n}_out"][0].any() and torch.equal(emitted[f"{n}_out"][1:], nat.outputs[n][:-1])
    ref = ReferenceExecutor(g).run(x)
    for backend in ("reference", "snntorch", "norse", "spyx"):
        rec = ref if backend == "reference" else get(backend).run(g, x)
        assert diffs(nat, rec) == {n: 0 for n in layers}, backend
        assert {n: int((v != rec.outputs[n]).sum()) for n, v in emitted.items()} == {n: 0 for n in emitted}, backend
        if nat.outputs["output"].dtype == torch.bool:
            assert torch.equal(nat.outputs["output"], rec.outputs["output"]), backend
        else:  # the LI readout: nnx.Linear's XLA dot may sum in another order than torch (ulps)
            assert torch.allclose(nat.outputs["output"], rec.outputs["output"], rtol=0, atol=1e-12), backend
    assert native_library(m) == "spyx"
    r = conform(g, x, ["reference"], original=m)
    assert r.backends["original"].status == "pass", r.summary()


def test_float32_native_run_equals_the_float32_reference(imported):
    m, x, g, _ = imported("lif")
    nat = BE.run_native(m, x, dtype=torch.float32)
    ref = ReferenceExecutor(g, dtype=torch.float32).run(x)
    assert diffs(nat, ref) == {n: 0 for n in spiking(nat)}
    assert m.layers[0].kernel[...].dtype == jnp.float64  # run_native casts a copy, never the user's module


def test_graph_carries_the_native_constants():
    m, shape = build("mixed")
    g = BE.from_native(m, shape)
    assert [k for k in g.nodes if k not in ("input", "output")] == [
        "0_Flatten", "1_Linear", "2_IF", "2_IF_out", "3_Linear", "4_CuBaLIF", "4_CuBaLIF_out", "5_Linear", "6_LI"]
    iff, cuba, li = g.nodes["2_IF"], g.nodes["4_CuBaLIF"], g.nodes["6_LI"]
    assert isinstance(iff, nir.IF) and iff.metadata["reset_timing"] == "delayed" and iff.metadata["reset"] == \
        "subtract"
    assert iff.metadata["threshold"] == "strict"  # arctan's forward is Heaviside x > 0 (probed)
    assert isinstance(cuba, nir.CubaLIF) and "reset_timing" not in cuba.metadata  # immediate
    assert np.array_equal(cuba.metadata["syn_decay"], np.clip(np.asarray(m.layers[4].alpha[...]), 0, 1))
    assert np.array_equal(cuba.metadata["decay"], np.clip(np.asarray(m.layers[4].beta[...]), 0, 1))
    assert np.all(cuba.metadata["gain"] == 1) and np.all(cuba.metadata["syn_gain"] == 1)
    assert isinstance(li, nir.LI) and np.array_equal(li.metadata["decay"], np.asarray(m.layers[6].beta[...]))
    assert np.all(g.nodes["2_IF_out"].delay == 1e-3)
    assert np.array_equal(g.nodes["1_Linear"].weight, np.asarray(m.layers[1].kernel[...]).T)
    inc = spyx.nn.Sequential(_lin(3, 4, 1.0, 0), spyx.nn.LIF((4,), beta=0.5, threshold=0.5, rngs=nnx.Rngs(0),
                                                               activation=spyx.axn.custom(
                                                                   fwd=lambda v: jnp.where(v >= 0, 1.0, 0.0))))
    assert BE.from_native(inc, (3,)).nodes["1_LIF"].metadata["threshold"] == "inclusive"


def test_refusals_name_the_layer():
    r = nnx.Rngs(0)

    def chain(layer, n_in: int = 4):
        return spyx.nn.Sequential(_lin(n_in, 4, 1.0, 0), layer)

    cases = [
        (chain(spyx.nn.RLIF((4,), rngs=r)), r"layer '1' \(spyx\.nn\.RLIF\).*recurrent"),
        (chain(spyx.nn.ALIF((4,), rngs=r)), r"layer '1' \(spyx\.nn\.ALIF\).*adaptive"),
        (chain(spyx.nn.LIF((4,), beta=0.5, threshold=-0.1, rngs=r)), r"layer '1'.*threshold <= 0"),
        (chain(spyx.nn.LIF((4,), beta=0.5, rngs=r, activation=spyx.axn.custom(fwd=lambda v: jnp.tanh(v)))),
         r"layer '1'.*not a step at 0"),
        (chain(spyx.nn.LIF((5,), beta=0.5, rngs=r)), r"layer '1'.*shape \[5\] but receives \[4\]"),
        (spyx.nn.Sequential(spyx.nn.LIF((2, 4), beta=0.5, rngs=r), _lin(4, 4, 1.0, 0)),
         r"layer '1'.*put a spyx.nn.Flatten before it"),
        (chain(nnx.Conv(1, 2, (3, 3), rngs=r)), r"layer '1' \(flax\.nnx.*Conv\).*channels-last"),
    ]
    for m, pattern in cases:
        shape = (2, 4) if type(m.layers[0]).__name__ == "LIF" else (4,)
        with pytest.raises(NativeModelError, match=pattern):
            BE.from_native(m, shape)
    lif = spyx.nn.LIF((4,), beta=None, rngs=r)
    lif.beta[...] = jnp.array([0.5, 1.0, 0.2, 0.3])
    with pytest.raises(NativeModelError, match=r"layer '1'.*beta = 1 for some neurons only"):
        BE.from_native(chain(lif), (4,))
    with pytest.raises(NativeModelError, match="not a spyx.nn.Sequential"):
        BE.from_native(spyx.nn.LIF((4,), beta=0.5, rngs=r), (4,))


def _same_graph(a: nir.NIRGraph, b: nir.NIRGraph) -> None:
    assert sorted(a.nodes) == sorted(b.nodes) and sorted(a.edges) == sorted(b.edges)
    for name, na in a.nodes.items():
        nb = b.nodes[name]
        assert type(na) is type(nb), name
        for k, v in vars(na).items():
            if isinstance(v, np.ndarray):
                assert np.array_equal(v, getattr(nb, k)), (name, k)


@pytest.mark.parametrize("name", CONFIGS)
def test_to_native_runs_identically_trains_and_round_trips(imported, name):
    import optax

    m, x, g, nat = imported(name)
    shape = tuple(x.shape[2:])
    net = BE.to_native(g)
    assert type(net) is spyx.nn.Sequential
    assert [type(a) for a in net.layers] == [type(b) for b in m.layers]
    again = BE.run_native(net, x)
    assert {n: torch.equal(v, again.outputs[n]) for n, v in nat.outputs.items()} == {n: True for n in nat.outputs}
    _same_graph(g, BE.from_native(net, shape))  # constants, weights and names come back bit for bit
    if name == "lif":  # Spyx's own jitted scan (XLA may fuse β·V + x into an FMA): the same spikes on this case
        out, _ = spyx.nn.run(net, jnp.asarray(x.numpy()))
        assert np.array_equal(np.asarray(out) > 0.5, nat.outputs["output"].numpy())

    params = nnx.state(net, nnx.Param)
    before = jax.tree_util.tree_map(np.array, params)
    opt = nnx.Optimizer(net, optax.adam(1e-2), wrt=nnx.Param)
    xs = jnp.asarray(x.numpy())

    def loss(model):
        y, _ = spyx.nn.run(model, xs)
        return jnp.mean((y.sum(0) - 3.0) ** 2)

    grads = nnx.grad(loss)(net)
    assert all(bool(np.any(np.asarray(v) != 0)) for v in jax.tree_util.tree_leaves(grads))
    opt.update(net, grads)
    changed = jax.tree_util.tree_map(lambda a, b: bool(np.any(np.asarray(a) != b)), nnx.state(net, nnx.Param), before)
    assert all(jax.tree_util.tree_leaves(changed)), changed
    g2 = BE.from_native(net, shape)
    k = next(i for i, a in enumerate(net.layers) if type(a) is nnx.Linear)
    assert np.array_equal(g2.nodes[f"{k}_Linear"].weight, np.asarray(net.layers[k].kernel[...]).T)


def _edited(g: nir.NIRGraph, node: str, meta: dict | None = None, **params) -> nir.NIRGraph:
    g = copy.deepcopy(g)
    n = g.nodes[node]
    n.metadata.update(meta or {})
    for k, v in params.items():
        setattr(n, k, v)
    return g


def test_to_native_refusals_name_the_node_and_field():
    m, shape = build("lif")
    g = BE.from_native(m, shape)
    cases = [
        # the reference's own timing becomes a ReferenceNeuron; the Delay after it then has no Spyx module
        (_edited(g, "1_LIF", meta={"reset_timing": "immediate"}), r"node '1_LIF_out'.*node type Delay"),
        (_edited(g, "1_LIF", meta={"reset": "zero"}), r"node '1_LIF', field 'reset'"),
        (_edited(g, "1_LIF", meta={"v_init": np.full(32, 0.1)}), r"node '1_LIF', field 'v_init'"),
        (_edited(g, "1_LIF", meta={"gain": np.full(32, 0.5)}, r=g.nodes["1_LIF"].r * 0.5), r"node '1_LIF', field 'r'"),
    ]
    dropped = copy.deepcopy(g)  # the LIF without its one-step Delay: the reference's timing has no Spyx module
    dropped.nodes.pop("1_LIF_out")
    dropped.edges = [e for e in dropped.edges if "1_LIF_out" not in e] + [("1_LIF", "2_Linear")]
    cases.append((dropped, r"node '1_LIF', field 'reset_timing'.*without a one-step Delay"))
    for graph, pattern in cases:
        with pytest.raises(UnsupportedNodeError, match=pattern):
            BE.to_native(graph)
    delayed_zero = _edited(g, "1_LIF", meta={"reset": "zero", "zero_reset_target": "state"})
    with pytest.raises(UnsupportedNodeError, match=r"node '1_LIF', field 'reset'"):
        BE.to_native(delayed_zero)


def _composed_cases():
    from snnbridge.bridge import read_graph
    from snnbridge.validation.node_suite import node_cases

    from .backend_checks import table1
    from .conftest import NIR_GRAPHS

    out = []
    path = NIR_GRAPHS / "lif_norse.nir"
    if path.exists():
        out.append(("lif_norse", read_graph(path), spikes((1,), 0.3, 7, 200), {}))
    graph, x, semantics = table1("mnist_mlp", "lif")
    out.append(("mnist_mlp-lif-zero", graph, x, dict(semantics, reset="zero")))
    cases = {c.name: c for c in node_cases()}
    for name in ("cubalif_zero", "lif_leak_reset", "lif_none", "cubali"):
        out.append((name, cases[name].graph, cases[name].inputs, cases[name].semantics))
    return out


def test_to_native_composes_the_reference_timing():
    """Graphs in the reference's own (immediate) timing, any reset, gain, bias and initial state: each neuron becomes
    a ``ReferenceNeuron`` (Spyx's ``LI`` + ``IF`` and the reference's reset, as the backend composes them) that runs
    spike-identical to the reference in float64 and float32, round-trips through ``from_native`` and trains."""
    import optax

    from snnbridge.bridge.graph import prepare

    ref_cls = spyx_native.reference_neuron()
    cases = _composed_cases()
    for label, g, x, semantics in cases:
        net = BE.to_native(g, **semantics)
        assert any(type(m) is ref_cls for m in net.layers), label
        dt = prepare(g, **semantics).semantics.dt
        back = BE.from_native(net, tuple(x.shape[2:]), dt=dt)
        for dtype in (torch.float64, torch.float32):
            nat = BE.run_native(net, x, dtype=dtype, dt=dt)
            ref = ReferenceExecutor(g, dtype=dtype, **semantics).run(x)
            again = ReferenceExecutor(back, dtype=dtype).run(x)
            if ref.outputs["output"].dtype == torch.bool:
                assert ref.outputs["output"].any(), label
                assert torch.equal(nat.outputs["output"], ref.outputs["output"]), (label, dtype)
                assert torch.equal(again.outputs["output"], ref.outputs["output"]), (label, dtype)
            else:  # an LI readout: XLA's dot and torch's sum in another order (ulps)
                tol = 1e-12 if dtype == torch.float64 else 1e-5
                assert torch.allclose(nat.outputs["output"], ref.outputs["output"], rtol=0, atol=tol), (label, dtype)
                assert torch.allclose(again.outputs["output"], ref.outputs["output"], rtol=0, atol=tol), label
    _, g, x, semantics = next(c for c in cases if c[0] == "lif_leak_reset")  # zero reset to v_reset = -0.5
    net = BE.to_native(g, **semantics)
    x = jnp.asarray(x.numpy())
    before = jax.tree_util.tree_map(np.array, nnx.state(net, nnx.Param))
    opt = nnx.Optimizer(net, optax.adam(1e-2), wrt=nnx.Param)

    def loss(model):
        y, _ = spyx.nn.run(model, x)
        return jnp.mean((y.sum(0) - 3.0) ** 2)

    opt.update(net, nnx.grad(loss)(net))
    changed = jax.tree_util.tree_map(lambda a, b: bool(np.any(np.asarray(a) != b)), nnx.state(net, nnx.Param), before)
    assert all(jax.tree_util.tree_leaves(changed)), changed


SPYX_MODEL_PY = """
import jax
import jax.numpy as jnp
import spyx
from flax import nnx


def mlp():
    lin = nnx.Linear(20, 16, rngs=nnx.Rngs(0))
    lin.kernel[...] = lin.kernel[...] * 3.0
    return spyx.nn.Sequential(lin, spyx.nn.LIF((16,), threshold=0.5, rngs=nnx.Rngs(1)))


def recurrent():
    return spyx.nn.Sequential(nnx.Linear(20, 16, rngs=nnx.Rngs(0)), spyx.nn.RLIF((16,), rngs=nnx.Rngs(1)))
"""


def test_cli_from_native_checks_and_writes_a_spyx_model(tmp_path, capsys):
    from snnbridge.cli import main

    src = tmp_path / "spyx_models.py"
    src.write_text(SPYX_MODEL_PY)
    out = tmp_path / "mlp.nir"
    capsys.readouterr()
    assert main(["from-native", f"{src}:mlp", "--input-shape", "20", "-o", str(out), "--library", "spyx"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "reproduces the original spyx module spike for spike at 3 spiking layer(s)" in text, text  # LIF, out
    g = nir.read(str(out), type_check=True)
    assert sorted(g.nodes) == ["0_Linear", "1_LIF", "1_LIF_out", "input", "output"]
    assert main(["from-native", f"{src}:recurrent", "--input-shape", "20", "-o", str(tmp_path / "r.nir")]) == 2
    assert "layer '1' (spyx.nn.RLIF)" in capsys.readouterr().err
    assert main(["from-native", f"{src}:mlp", "--input-shape", "20", "-o", str(tmp_path / "w.nir"),
                 "--weights", str(src)]) == 2
    assert "holds its parameters itself" in capsys.readouterr().err


@pytest.mark.slow
def test_brian2_runs_the_imported_graph_spike_for_spike(imported):
    pytest.importorskip("brian2")
    m, x, g, nat = imported("mixed")
    rec = get("brian2").run(g, x)
    assert diffs(nat, rec) == {n: 0 for n in spiking(nat)}
    assert all(torch.equal(v, rec.outputs[n]) for n, v in _emitted(nat).items())
