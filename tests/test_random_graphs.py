"""Backends on graphs nobody wrote by hand: random valid NIR graphs (snnbridge.validation.random_graphs).

Every backend must give the reference's spikes on every node of every random graph in its profile, or refuse the
graph by node and field (a documented limitation).  A failure names the seed: ``random_case(seed)`` rebuilds the
graph.  The default suite checks two dozen seeds per backend; ``-m slow`` checks 200 on every simulator.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.io import read_graph, write_graph
from snnbridge.validation.conformance import conform
from snnbridge.validation.matrix import REFUSAL_PREFIX
from snnbridge.validation.random_graphs import Options, random_case

FAST = ["snntorch", "norse", "spikingjelly", "sinabs", "nengo"]
JAX_AND_XYLO = ["spyx", "rockpool"]


def _check(seeds, backends, profile="exact", options=Options()):
    """Every seed's case on ``backends``: a list of ``seed backend: why`` for each run that neither passed nor was
    refused by name; counts of passes and refusals (a backend whose simulator is missing is skipped)."""
    bad, passed, refused = [], 0, 0
    for seed in seeds:
        case = random_case(seed, options)
        result = conform(case.graph, case.inputs, backends=backends, profile=profile)
        for name, res in result.backends.items():
            if res.status == "pass":
                passed += 1
            elif res.status == "error" and res.reason.startswith(REFUSAL_PREFIX):
                refused += 1
            elif res.status == "unavailable":
                continue
            else:
                bad.append(f"seed {seed} {name}: {res.status}: {res.reason or '; '.join(res.failures)}")
    return bad, passed, refused


def test_same_seed_same_case():
    a, b = random_case(7), random_case(7)
    assert list(a.graph.nodes) == list(b.graph.nodes) and a.graph.edges == b.graph.edges
    assert torch.equal(a.inputs, b.inputs)
    for name, node in a.graph.nodes.items():
        for key, value in node.__dict__.items():
            if isinstance(value, np.ndarray):
                assert np.array_equal(value, getattr(b.graph.nodes[name], key)), (name, key)
    assert list(random_case(8).graph.nodes) != list(a.graph.nodes) or not torch.equal(random_case(8).inputs, a.inputs)


def test_cases_cover_every_node_type_and_feature():
    """The generator draws what it promises (so the conformance tests below exercise it)."""
    kinds, features = set(), set()
    for seed in range(60):
        g = random_case(seed, Options(delay=True, fire=False)).graph
        kinds |= {type(n).__name__ for n in g.nodes.values()}
        features |= {k for n in g.nodes.values() for k in (getattr(n, "metadata", None) or {})}
        features |= {"recurrent" for n in g.nodes if n.endswith("_rec")} | {"fan_in" for n in g.nodes
                                                                              if n.endswith("_skip")}
        features |= {"nested" for n in g.nodes.values() if isinstance(n, nir.NIRGraph)}
        features.add(f"reset={g.metadata['reset']}")
        features.add(f"threshold={g.metadata.get('threshold', 'strict')}")
    assert kinds >= {"Affine", "Linear", "Conv1d", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Scale", "LIF", "IF",
                     "CubaLIF", "LI", "I", "CubaLI", "Threshold", "Delay"}
    assert features >= {"reset_timing", "v_init", "recurrent", "fan_in", "nested", "reset=zero", "reset=subtract",
                        "reset=none", "threshold=strict", "threshold=inclusive"}


def test_spiking_layers_fire_in_some_steps():
    """Weights are scaled so spike decisions are exercised: most spiking nodes neither stay silent nor always fire."""
    rates = []
    for seed in range(20):
        case = random_case(seed)
        rec = ReferenceExecutor(case.graph).run(case.inputs)
        rates += [float(rec[n].double().mean()) for n, node in case.graph.nodes.items()
                  if type(node).__name__ in ("LIF", "IF", "CubaLIF") and n in rec]
    busy = [r for r in rates if 0.0 < r < 1.0]
    assert len(rates) >= 15 and len(busy) >= 0.8 * len(rates), rates


def test_random_graph_round_trips_through_a_nir_file(tmp_path):
    for seed in range(6):
        case = random_case(seed, Options(delay=True))
        path = tmp_path / f"r{seed}.nir"
        write_graph(path, case.graph)
        a = ReferenceExecutor(case.graph).run(case.inputs)
        b = ReferenceExecutor(read_graph(path)).run(case.inputs)
        assert set(a.outputs) == set(b.outputs)
        for n in a.outputs:
            assert torch.equal(a[n], b[n]), (seed, n)


@pytest.mark.parametrize("start", [0, 12])
def test_torch_and_nengo_backends_agree_on_random_graphs(start):
    bad, passed, _ = _check(range(start, start + 12), FAST)
    assert not bad, "\n".join(bad)
    assert passed > 0


def test_float32_profile_on_random_graphs():
    bad, passed, _ = _check(range(100, 112), FAST, profile="float32")
    assert not bad, "\n".join(bad)
    assert passed > 0


def test_spyx_and_rockpool_agree_on_random_graphs():
    bad, _, _ = _check(range(0, 10), JAX_AND_XYLO)
    assert not bad, "\n".join(bad)


def test_brian2_agrees_on_random_graphs_with_delays():
    bad, passed, _ = _check(range(0, 10), ["brian2"], options=Options(delay=True))
    assert not bad, "\n".join(bad)


def test_executor_strategies_give_the_same_spikes_on_random_graphs():
    """The event-driven / fused strategies of the reference executor: spikes identical to the dense path."""
    for seed in range(16):
        case = random_case(seed)
        for dtype in (torch.float64, torch.float32):
            dense = ReferenceExecutor(case.graph, dtype=dtype).run(case.inputs)
            for strategy in ("auto", "event", "fused"):
                rec = ReferenceExecutor(case.graph, dtype=dtype, strategy=strategy).run(case.inputs)
                for n, out in dense.outputs.items():
                    if out.dtype == torch.bool:
                        assert torch.equal(out, rec[n].bool()), (seed, strategy, dtype, n)


@pytest.mark.slow
@pytest.mark.parametrize("start", [48, 98, 148, 198])
def test_every_backend_agrees_on_many_random_graphs(start):
    bad, passed, _ = _check(range(start, start + 50), FAST + JAX_AND_XYLO + ["brian2"], options=Options(delay=True))
    assert not bad, "\n".join(bad)
    assert passed > 0


@pytest.mark.slow
def test_float32_profile_on_many_random_graphs():
    bad, _, _ = _check(range(300, 360), FAST + JAX_AND_XYLO, profile="float32")
    assert not bad, "\n".join(bad)


def _same(got: torch.Tensor, want: torch.Tensor) -> bool:
    """Spikes identical, analog values to the exact profile's 1e-9 relative."""
    if got.shape != want.shape:
        return False
    if want.dtype == torch.bool or got.dtype == torch.bool:
        return torch.equal(got.bool(), want.bool())
    return torch.allclose(got.double(), want.double(), rtol=1e-9, atol=1e-12)


def _native_output_matches(lib: str, seeds, options: Options, batch: int | None = None) -> tuple[list, int, int]:
    """``to_native`` of every seed's graph for ``lib``, run natively: every node it records equals the reference's
    (spikes exactly, analog values to the exact profile's 1e-9), or the graph is refused naming the node / layer."""
    from snnbridge import backends
    from snnbridge.bridge.graph import prepare
    from snnbridge.errors import SnnBridgeError

    b = backends.get(lib)
    if not b.available():
        pytest.skip(f"{lib} not installed")
    bad, ok, refused = [], 0, 0
    for seed in seeds:
        case = random_case(seed, options)
        x = case.inputs if batch is None else case.inputs[:, :batch]
        fg = prepare(case.graph)
        ref = ReferenceExecutor(case.graph).run(x)
        try:
            module = b.to_native(case.graph)
        except SnnBridgeError:
            refused += 1
            continue
        rec = b.run_native(module, x) if lib == "norse" else b.run_native(module, x, dt=fg.semantics.dt)
        common = [n for n in rec.nodes if n in ref.outputs]
        differ = [n for n in common if not _same(rec[n], ref[n])]
        if common and not differ:
            ok += 1
        else:
            bad.append(f"seed {seed} {lib}: nodes {differ or 'none in common'} differ from the reference")
    return bad, ok, refused


@pytest.mark.parametrize("lib", ["snntorch", "norse"])
def test_to_native_realises_every_random_graph(lib):
    """snnTorch's and Norse's ``to_native`` build every graph their backends run (Delay included): no refusal."""
    bad, ok, refused = _native_output_matches(lib, range(0, 24), Options(delay=True))
    assert not bad and refused == 0, "\n".join(bad)


@pytest.mark.parametrize("lib", ["spikingjelly", "sinabs", "rockpool", "spyx"])
def test_to_native_builds_or_refuses_by_name_on_random_graphs(lib):
    """The narrower libraries build what their layers express and refuse the rest by name, never crash."""
    bad, ok, refused = _native_output_matches(lib, range(0, 24), Options(delay=True))
    assert not bad, "\n".join(bad)


@pytest.mark.slow
def test_brian2_to_native_on_random_graphs():
    bad, ok, _ = _native_output_matches("brian2", range(0, 24), Options(delay=True), batch=1)
    assert not bad and ok > 0, "\n".join(bad)


LIBRARY_FRIENDLY = Options(recurrent=False, fan_in=False, node_options=False, neurons=("LIF", "IF"), uniform=True,
                           unit_gain=True, scale_nodes=False, resets=("zero", "subtract"), pooling=("AvgPool2d",))
"""Chains of the layers the narrower libraries have (one parameter value per layer, input gain ``1 - decay``)."""


@pytest.mark.parametrize("lib", ["spikingjelly", "sinabs", "spyx"])
def test_to_native_of_library_shaped_random_graphs_runs_identically(lib):
    """Random chains within a library's layers: ``to_native`` builds them, and the module run natively (read back
    through ``from_native``) gives the reference's spikes on every node it records."""
    bad, ok, refused = _native_output_matches(lib, range(0, 20), LIBRARY_FRIENDLY)
    assert not bad, "\n".join(bad)
    assert ok >= 8, (ok, refused)
