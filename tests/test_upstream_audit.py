"""Audit of the simulators' own NIR importers against the reference semantics.

Each node case and peer graph runs through ``snntorch-upstream`` (``import_from_nir``) and
``norse-upstream`` (``norse.torch.from_nir``) as a user would call them, in float64, and the Output
node (plus every node the importer exposes) is compared with the reference executor.  Known departures
are strict xfails with the measured reason, so an importer that gets fixed shows up as XPASS; what
agrees is asserted.  Measured with snntorch 1.0.0, norse 1.1.0, nirtorch 2.6.
"""

from __future__ import annotations

import subprocess
import sys

import nir
import numpy as np
import pytest
import torch

from snnbridge.backends import get
from snnbridge.backends.upstream import UpstreamError
from snnbridge.bridge import read_graph
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.errors import SnnBridgeError
from snnbridge.validation.node_suite import chain, node_cases

from .conftest import NIR_GRAPHS

CASES = {c.name: c for c in node_cases()}
PEERS = {  # file stem -> (semantics overrides, input shape, T, spike probability)
    "lif_norse": ({}, (1,), 200, 0.3),
    "cnn_sinabs": ({}, (2, 34, 34), 8, 0.15),
    "braille_noDelay_noBias_subtract": ({"reset": "subtract"}, (12,), 100, 0.3),
    "braille_noDelay_bias_zero": ({}, (12,), 100, 0.3),
}

CRASH, DIFFERS = UpstreamError, AssertionError
DT_SNN = "LIF imported with a hard-coded dt = 1e-4 s (beta = 1 - 1e-4/tau) while the graph runs at dt = 1e-3 s"
RESET_SNN = "; import_from_nir always resets to zero"
IF_SNN = ("IF imported as snn.Leaky(beta=0.9, init_hidden=False): a leaky neuron, not a per-step integrator, "
          "returning a (spk, mem) tuple")
R_NORSE = "r = {r} ignored for LIF (only a logged warning)"
RESET_NORSE = "; reset_method is not applied to LIF (always resets to v_reset)"
DT_NORSE = "from_nir uses Norse's default dt = 1e-3 s while the graph runs at dt = 1e-4 s"
UNMAPPED_SNN = "import_from_nir has no mapping for {kind}: ValueError 'Unknown node type'"
DROPPED_NORSE = "from_nir has no mapping for {kind}: the node is silently dropped (Output = the Affine's output)"
ORDER_NORSE = ("nirtorch.load's GraphExecutor (used by from_nir) returns the last node of its execution order "
               "('{last}'), not the Output node")
FLATTEN = "Flatten(start_dim=0) is imported as torch.nn.Flatten(0, -1), which flattens the batch dimension"
GROUPS = "grouped Conv2d imported with in_channels = weight.shape[1] (ignores groups): ValueError"

KNOWN: dict[str, dict[str, tuple[type, str]]] = {
    "snntorch-upstream": {
        "lif_zero": (DIFFERS, DT_SNN),
        "lif_subtract": (DIFFERS, DT_SNN + RESET_SNN),
        "lif_none": (DIFFERS, DT_SNN + RESET_SNN),
        "lif_exact": (DIFFERS, DT_SNN + " (and Euler, not exact)"),
        "lif_leak_reset": (CRASH, "import_from_nir asserts v_leak == 0 ('v_leak not supported')"),
        "if_zero": (DIFFERS, IF_SNN),
        "if_subtract": (DIFFERS, IF_SNN + RESET_SNN),
        "if_threshold_exact": (DIFFERS, IF_SNN),
        "lif_threshold_exact": (DIFFERS, DT_SNN + RESET_SNN),
        "li": (CRASH, UNMAPPED_SNN.format(kind="LI")),
        "i": (CRASH, UNMAPPED_SNN.format(kind="I")),
        "cubalif_zero": (CRASH, "CubaLIF import asserts r == tau_mem / 1e-4 ('r not supported in CubaLIF')"),
        "cubalif_subtract": (CRASH, "CubaLIF import asserts r == tau_mem / 1e-4 ('r not supported in CubaLIF')"),
        "cubali": (CRASH, UNMAPPED_SNN.format(kind="CubaLI")),
        "scale_threshold": (CRASH, UNMAPPED_SNN.format(kind="Scale")),
        "conv2d_stride_pad_lif": (DIFFERS, DT_SNN),
        "conv2d_groups_if": (CRASH, GROUPS),
        "avgpool_nonsquare_lif": (DIFFERS, DT_SNN),
        "sumpool_flatten_affine": (CRASH, FLATTEN),
        "recurrent_lif_zero": (DIFFERS, DT_SNN),
        "recurrent_lif_subtract": (DIFFERS, DT_SNN + RESET_SNN),
        "fan_in_sum": (DIFFERS, DT_SNN),
        "cnn_sinabs": (CRASH, IF_SNN + ", which the next Conv2d cannot take (TypeError)"),
        "braille_noDelay_noBias_subtract": (CRASH, "the recurrent CubaLIF subgraph crashes import_from_nir under "
                                                   "nirtorch 2.6 (AttributeError: 'GraphModule' has no 'items')"),
        "braille_noDelay_bias_zero": (CRASH, "the recurrent CubaLIF subgraph crashes import_from_nir under "
                                             "nirtorch 2.6 (AttributeError: 'GraphModule' has no 'items')"),
        "avgpool_scalar_kernel": (CRASH, "AvgPool2d with a scalar (0-d) kernel_size: tuple() of a 0-d array "
                                         "raises TypeError in import_from_nir"),
    },
    "norse-upstream": {
        "lif_zero": (DIFFERS, R_NORSE.format(r=2)),
        "lif_subtract": (DIFFERS, R_NORSE.format(r=2) + RESET_NORSE),
        "lif_none": (DIFFERS, R_NORSE.format(r=2) + RESET_NORSE),
        "lif_exact": (DIFFERS, R_NORSE.format(r=2) + " (and Euler, not exact)"),
        "lif_leak_reset": (DIFFERS, R_NORSE.format(r=0.5) + "; v_reset = -0.5 ignored; the membrane starts at "
                                    "v_leak = 1.5 instead of 0"),
        "lif_dt_1e-4": (DIFFERS, DT_NORSE),
        "if_subtract": (DIFFERS, "IF imported as IAFCell, which can only reset to v_reset (no reset_method)"),
        "lif_threshold_exact": (DIFFERS, R_NORSE.format(r=4) + RESET_NORSE),
        "li": (DIFFERS, DROPPED_NORSE.format(kind="LI")),
        "i": (DIFFERS, DROPPED_NORSE.format(kind="I")),
        "cubalif_subtract": (DIFFERS, "reset_method defaults to reset_value: NIR cannot tell from_nir to subtract"),
        "cubali": (DIFFERS, DROPPED_NORSE.format(kind="CubaLI")),
        "scale_threshold": (CRASH, "from_nir has no mapping for Scale/Threshold: KeyError 'scale' in nirtorch"),
        "conv2d_stride_pad_lif": (DIFFERS, R_NORSE.format(r=2)),
        "conv2d_groups_if": (CRASH, GROUPS),
        "avgpool_nonsquare_lif": (CRASH, "from_nir drops AvgPool2d (no mapping), so the LIF gets the unpooled "
                                         "9x8 map: RuntimeError"),
        "sumpool_flatten_affine": (CRASH, FLATTEN),
        "recurrent_lif_zero": (DIFFERS, ORDER_NORSE.format(last="rec") + "; " + R_NORSE.format(r=2)),
        "recurrent_lif_subtract": (DIFFERS, ORDER_NORSE.format(last="rec") + "; " + R_NORSE.format(r=2)),
        "fan_in_sum": (DIFFERS, ORDER_NORSE.format(last="fc_b") + "; it also runs fc_b after lif, so lif gets "
                                "fc_b's previous-step value; " + R_NORSE.format(r=2)),
        "lif_norse": (DIFFERS, DT_NORSE),
        "cnn_sinabs": (CRASH, FLATTEN),
        "braille_noDelay_noBias_subtract": (DIFFERS, DT_NORSE + "; reset_method defaults to reset_value"),
        "braille_noDelay_bias_zero": (DIFFERS, DT_NORSE),
        "avgpool_scalar_kernel": (CRASH, "from_nir drops AvgPool2d (no mapping), so the LIF gets the unpooled "
                                         "map: RuntimeError"),
    },
}


def _spikes(shape, p: float, seed: int, T: int, B: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((T, B) + tuple(shape), generator=g) < p).double()


def _avgpool_scalar_kernel():
    shape = (2, 4, 4)
    lif = nir.LIF(tau=np.full(shape, 2e-3), r=np.ones(shape), v_leak=np.zeros(shape), v_threshold=np.full(shape, 0.3),
                  v_reset=np.zeros(shape))
    pool = nir.AvgPool2d(kernel_size=np.array(2), stride=np.array(2), padding=np.array(0))
    return chain([("pool", pool), ("lif", lif)], (2, 8, 8), shape), _spikes((2, 8, 8), 0.4, 3, 30), {"dt": 1e-4}


def _case(name: str):
    """``(graph, inputs, semantics)`` of a node case, peer graph or extra case."""
    if name in CASES:
        c = CASES[name]
        return c.graph, c.inputs, c.semantics
    if name == "avgpool_scalar_kernel":
        return _avgpool_scalar_kernel()
    path = NIR_GRAPHS / f"{name}.nir"
    if not path.exists():
        pytest.skip(f"{path} not available (needs ../shared)")
    semantics, shape, T, p = PEERS[name]
    return read_graph(path), _spikes(shape, p, 7, T), semantics


def assert_agrees(ref, got) -> None:
    """Every node the importer exposes equals the reference: spikes exactly, analog values to float32 rounding."""
    out = [n for n in ref.order if ref.node_types[n] == "Output"][0]
    for n in [out] + [n for n in got.nodes if n != out]:
        a, b = ref.outputs[n], got.outputs[n]
        assert b.shape == a.shape and b.dtype == a.dtype, f"{n}: {b.dtype}{tuple(b.shape)}"
        if a.dtype == torch.bool:
            assert torch.equal(a, b), f"{n}: {int((a != b).sum())} of {int(a.sum())} reference spikes differ"
        else:
            tol = 1e-5 * max(1.0, a.abs().max().item())  # the importers store parameters in float32
            assert (a - b).abs().max().item() <= tol, f"{n}: max |diff| {(a - b).abs().max().item():.3g}"


def _params():
    names = list(CASES) + list(PEERS) + ["avgpool_scalar_kernel"]
    out = []
    for backend, known in KNOWN.items():
        for name in names:
            marks = []
            if name in known:
                exc, reason = known[name]
                marks = [pytest.mark.xfail(strict=True, raises=exc, reason=reason)]
            out.append(pytest.param(backend, name, id=f"{backend}-{name}", marks=marks))
    return out


@pytest.mark.parametrize("backend, name", _params())
def test_upstream_importer_against_reference(backend, name):
    pytest.importorskip(backend.split("-")[0])
    graph, x, semantics = _case(name)
    ref = ReferenceExecutor(graph, **semantics).run(x)
    got = get(backend).run(graph, x, **semantics)  # float64, importer called with its defaults
    assert got.backend == backend and got.membranes == {}
    assert_agrees(ref, got)


@pytest.mark.parametrize("name", ["lif_dt_1e-4", "cubalif_subtract", "lif_norse", pytest.param(
    "braille_noDelay_bias_zero", marks=pytest.mark.xfail(strict=True, reason=(
        "nirtorch's executor applies the recurrent Affine after the neuron, so its bias (up to 1.68 here) reaches "
        "the neuron only from t = 1; snnTorch's RSynaptic, which trained this graph, adds recurrent(0) = bias at "
        "t = 0, as the reference does")))
    , "braille_noDelay_noBias_subtract"])
def test_norse_from_nir_agrees_when_told_dt_and_reset(name):
    """Passing the graph's dt (and ``reset_method=reset_subtract``) fixes Norse's import for r = 1 / CubaLIF graphs."""
    pytest.importorskip("norse")
    from norse.torch.functional.reset import reset_subtract

    graph, x, semantics = _case(name)
    ref = ReferenceExecutor(graph, **semantics).run(x)
    kwargs = {"dt": ref.dt}
    if semantics.get("reset") == "subtract":
        kwargs["reset_method"] = reset_subtract
    got = get("norse-upstream").run(graph, x, importer_kwargs=kwargs, **semantics)
    assert_agrees(ref, got)


def test_upstream_failures_are_snnbridge_errors_naming_upstream():
    pytest.importorskip("snntorch")
    graph, _, semantics = _case("li")
    with pytest.raises(SnnBridgeError, match=r"upstream failure: snntorch\.import_nir\.import_from_nir could not "
                                             r"import the graph: ValueError"):
        get("snntorch-upstream").compile(graph, **semantics)


def test_importer_output_is_captured_not_printed(capsys):
    pytest.importorskip("snntorch")
    c = CASES["lif_zero"]  # r = 2: snnTorch prints a "[warning] scaling weights" message
    sim = get("snntorch-upstream").compile(c.graph, **c.semantics)
    assert capsys.readouterr().out == ""
    assert any("scaling" in line for line in sim.log)


def test_importing_the_audit_module_needs_neither_simulator():
    code = ("import sys, snnbridge.backends.upstream, snnbridge.backends.snntorch_backend, "
            "snnbridge.backends.norse_backend; assert not {'snntorch', 'norse'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_committed_node_case_counts_match_the_xfails():
    """results/upstream-node-cases.json (the README's last matrix column) is what the strict xfails above say."""
    import json
    from pathlib import Path

    doc = json.loads((Path(__file__).resolve().parents[1] / "results" / "upstream-node-cases.json").read_text())
    assert doc["cases"] == len(CASES)
    for backend, known in KNOWN.items():
        assert doc["right"][backend] == [n for n in CASES if n not in known], backend
