"""Checks shared by the backend test files: recording equality, near-threshold float32 flips, cached cases."""

from __future__ import annotations

import functools
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from snnbridge.backends import get
from snnbridge.bridge import read_graph
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.graph import prepare
from snnbridge.bridge.recording import Recording
from snnbridge.validation.node_suite import table1_case

PEERS = {  # file stem -> (semantics overrides, input shape, T, spike probability)
    "lif_norse": ({}, (1,), 200, 0.3),
    "cnn_sinabs": ({}, (2, 34, 34), 16, 0.15),
    "braille_noDelay_noBias_subtract": ({"reset": "subtract"}, (12,), 100, 0.3),
    "braille_noDelay_bias_zero": ({}, (12,), 100, 0.3),
}


def assert_same_recording(ref: Recording, got: Recording, exact: bool = True, rtol: float = 1e-12) -> None:
    """Same nodes, dtypes and shapes; spikes equal at every node and step; analog values and membranes
    equal (``exact``) or within ``rtol`` of the node's largest magnitude."""
    assert got.order == ref.order and got.node_types == ref.node_types
    assert set(got.outputs) == set(ref.outputs) and set(got.membranes) == set(ref.membranes)
    for kind, a_map, b_map in (("output", ref.outputs, got.outputs), ("membrane", ref.membranes, got.membranes)):
        for n, a in a_map.items():
            b = b_map[n]
            assert b.dtype == a.dtype and b.shape == a.shape, f"{kind} of {n}: {b.dtype}{tuple(b.shape)}"
            if a.dtype == torch.bool:
                bad = (a != b).nonzero()
                assert bad.numel() == 0, f"{n}: {len(bad)} spikes differ, first at [t, b, ...] = {bad[0].tolist()}"
            elif exact:
                assert torch.equal(a, b), f"{kind} of {n}: max |diff| {(a - b).abs().max().item():.3g}"
            else:
                tol = rtol * max(1.0, a.abs().max().item())
                assert (a - b).abs().max().item() <= tol, f"{kind} of {n}: max |diff| {(a - b).abs().max():.3g}"


def check_near_threshold_only(fg, ref64: Recording, got: Recording, tol: float = 1e-4) -> int:
    """Number of spikes in ``got`` (e.g. float32) that differ from the float64 reference ``ref64``.

    Asserts that each spiking node's *first* divergence in each sample is either caused upstream (a
    spike-valued ancestor diverged in that sample at the same or an earlier step) or is a rounding case:
    every differing neuron's float64 membrane (Threshold: input) lies within ``tol·max(1, |θ|)`` of θ.
    """
    bool_nodes = [n for n in fg.order if ref64.outputs[n].dtype == torch.bool]
    B = ref64.batch_size
    never = ref64.steps + 1
    first = {}
    total = 0
    for n in bool_nodes:
        diff = (ref64.outputs[n] != got.outputs[n]).reshape(ref64.steps, B, -1)
        total += int(diff.sum()) if fg.type_of(n) in sem.SPIKING_TYPES else 0
        any_t = diff.any(-1)  # [T, B]
        first[n] = [int(any_t[:, b].nonzero()[0]) if any_t[:, b].any() else never for b in range(B)]

    def ancestors(n):
        seen, todo = set(), list(fg.preds[n])
        while todo:
            p = todo.pop()
            if p not in seen:
                seen.add(p)
                todo.extend(fg.preds[p])
        return seen - {n}

    for n in bool_nodes:
        kind = fg.type_of(n)
        if kind not in sem.SPIKING_TYPES:
            continue
        if kind == "Threshold":
            v = sum(ref64.outputs[p].double() for p in fg.preds[n])
            thr = np.asarray(fg.nodes[n].threshold, dtype=np.float64)
        else:
            v = ref64.membranes[n]
            thr = fg.coefficients(n).threshold
        thr = torch.as_tensor(np.broadcast_to(thr, fg.in_shapes[n]).copy())
        ups = [a for a in ancestors(n) if a in first]
        for b in range(B):
            t0 = first[n][b]
            if t0 == never or any(first[a][b] <= t0 for a in ups):
                continue
            where = (ref64.outputs[n][t0, b] != got.outputs[n][t0, b])
            margin = (v[t0, b] - thr)[where].abs()
            limit = tol * torch.clamp(thr.abs()[where], min=1.0)
            assert (margin <= limit).all(), (
                f"{n}: sample {b} first diverges at step {t0} with |v - threshold| = {margin.max().item():.3g} "
                f"(not a near-threshold rounding case)")
    return total


def spikes(shape, p: float, seed: int, T: int, B: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((T, B) + tuple(shape), generator=g) < p).double()


@functools.cache
def table1(key: str, neuron: str) -> tuple[nir.NIRGraph, torch.Tensor, dict]:
    """A seeded Table-1 case per structure and neuron: ``(graph, inputs [T, B, ...], semantics)``.

    Kept short: the MLPs run 10 steps x 2 samples, the CNNs 4 x 1; DVS-CIFAR10's weights are scaled on
    1 step (scaling is the costly part) and then run on 3 fresh steps of the same spike density.
    """
    big = key in ("cifar10_cnn", "nmnist_cnn", "dvscifar10_cnn")
    c = table1_case(key, neuron, "zero", T=1 if key == "dvscifar10_cnn" else (4 if big else 10), B=1 if big else 2)
    x = spikes(c.inputs.shape[2:], 0.25, 21, 3, 1) if key == "dvscifar10_cnn" else c.inputs
    return c.graph, x, c.semantics


def run_both(backend: str, graph, inputs, semantics: dict, dtype: torch.dtype) -> tuple[Recording, Recording]:
    """``(reference, backend)`` recordings of one run in ``dtype``."""
    ref = ReferenceExecutor(graph, dtype=dtype, **semantics).run(inputs)
    got = get(backend).run(graph, inputs, dtype=dtype, **semantics)
    return ref, got


def check_table1(backend: str, key: str, neuron: str, reset: str, exact: bool, rtol: float = 1e-12) -> None:
    """A Table-1 structure on ``backend`` equals the reference in float64 (every layer fires); under
    ``subtract`` also float32, whose flips must be near-threshold and at most 1 % of the spike trains."""
    graph, x, semantics = table1(key, neuron)
    semantics = dict(semantics, reset=reset)
    ref, got = run_both(backend, graph, x, semantics, torch.float64)
    assert_same_recording(ref, got, exact=exact, rtol=rtol)
    spiking = [n for n in ref.order if ref.node_types[n] in ("IF", "LIF")]
    assert all(ref.outputs[n].any() for n in spiking), "every layer should fire"
    if reset == "subtract":  # float32 once per structure and neuron (the node cases cover every reset mode)
        got32 = get(backend).run(graph, x, dtype=torch.float32, **semantics)
        n32 = check_near_threshold_only(prepare(graph, **semantics), ref, got32)
        assert n32 <= 0.01 * sum(int(ref.outputs[n].numel()) for n in spiking)


def check_table1_bit_identical(backend: str, key: str, neuron: str, reset: str) -> None:
    """A Table-1 structure on a backend that realises every step operation for operation (Rockpool, Spyx): spikes,
    membranes and analog outputs equal to the reference in float64 and float32, every spiking layer firing."""
    graph, x, semantics = table1(key, neuron)
    semantics = dict(semantics, reset=reset)
    for dtype in (torch.float64, torch.float32):
        ref, got = run_both(backend, graph, x, semantics, dtype)
        assert_same_recording(ref, got, exact=True)
        assert all(ref.outputs[n].any() for n in ref.order if ref.node_types[n] in ("IF", "LIF"))


def check_zero_reset_restarts_at_v_reset(backend: str) -> None:
    """A composed zero reset (Rockpool, Spyx): equal to the reference in float64 and float32, and a neuron that
    fired starts its next step at ``v_reset`` (here -0.25): ``v[t+1] = decay·v_reset + gain·w·x[t+1]``, not from
    ``v - θ`` (what the simulator's own subtracting neuron would leave)."""
    from snnbridge.validation.node_suite import chain

    n = 3
    lif = nir.LIF(tau=np.full(n, 4e-3), r=np.full(n, 2.0), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5),
                  v_reset=np.full(n, -0.25))
    g = chain([("fc", nir.Linear(weight=np.eye(n) * 0.8)), ("lif", lif)], (n,), (n,))
    x = spikes((n,), 0.6, 3, 30, 2)
    c = prepare(g, dt=1e-3).coefficients("lif")
    decay, gain = float(c.decay.reshape(-1)[0]), float(c.gain.reshape(-1)[0])
    for dtype in (torch.float64, torch.float32):
        ref, got = run_both(backend, g, x, {"dt": 1e-3, "reset": "zero"}, dtype)
        assert_same_recording(ref, got, exact=True)
        s, v = got.spikes("lif"), got.membranes["lif"].double()
        fired = s[:-1].nonzero(as_tuple=True)
        assert len(fired[0]) > 3
        after = (fired[0] + 1,) + fired[1:]
        want = decay * -0.25 + gain * 0.8 * x[after]
        assert torch.allclose(v[after], want, atol=1e-6), (v[after], want)


def check_refused_by_name(backend: str, refused: tuple[tuple[str, str], ...]) -> None:
    """What a composed backend (Rockpool, Spyx) still cannot express is refused naming node and field:
    ``refused`` lists the ``(reset_timing, reset)`` pairs (field ``reset_timing``); a reset ``none`` has no timing
    and runs, equal to the reference."""
    from snnbridge.errors import UnsupportedNodeError
    from snnbridge.validation.node_suite import chain

    n = 3

    def graph(metadata):
        lif = nir.LIF(tau=np.full(n, 4e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5),
                      v_reset=np.zeros(n), metadata=metadata)
        return chain([("fc", nir.Linear(weight=np.eye(n))), ("lif", lif)], (n,), (n,))

    assert refused
    for timing, reset in refused:
        g = graph({"reset": reset, "reset_timing": timing})
        with pytest.raises(UnsupportedNodeError, match=rf"node 'lif', field 'reset_timing'.*{backend}"):
            get(backend).compile(g, dt=1e-3, reset=reset)
    g = graph({"reset": "none", "reset_timing": "delayed"})
    x = spikes((n,), 0.6, 3, 20)
    assert_same_recording(*run_both(backend, g, x, {"dt": 1e-3, "reset": "none"}, torch.float64), exact=True)


def check_peer_graph(backend: str, graphs: Path, stem: str, exact: bool, rtol: float = 1e-12) -> None:
    """A real graph of ``../shared/nir-graphs`` on ``backend``: float64 equal, float32 near-threshold only."""
    path = graphs / f"{stem}.nir"
    if not path.exists():
        pytest.skip(f"{path} not available (needs ../shared)")
    semantics, shape, T, p = PEERS[stem]
    graph = read_graph(path)
    x = spikes(shape, p, 7, T)
    ref, got = run_both(backend, graph, x, semantics, torch.float64)
    assert_same_recording(ref, got, exact=exact, rtol=rtol)
    assert ref.output().any()
    got32 = get(backend).run(graph, x, dtype=torch.float32, **semantics)
    check_near_threshold_only(prepare(graph, **semantics), ref, got32)
