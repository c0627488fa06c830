"""Audit of the added simulators' own NIR importers against the reference semantics.

Every node case, peer graph and the scalar-kernel pooling case runs through each audit mode of
:mod:`snnbridge.backends.upstream_more` as a user would call the importer (its defaults), in float64, and the Output
node (plus every node the importer exposes) is compared with the reference executor
(:func:`tests.test_upstream_audit.assert_agrees`).  Known departures are strict xfails with the measured reason, so
an importer that gets fixed shows up as XPASS; what agrees is asserted.
Measured with spikingjelly 2.0.0, rockpool 3.1.0 (nirtorch 2.6).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from snnbridge.backends import get
from snnbridge.backends.upstream import UpstreamError
from snnbridge.bridge.executor import ReferenceExecutor

from .test_upstream_audit import CASES, PEERS, _case, assert_agrees

CRASH, DIFFERS = UpstreamError, AssertionError

SJ_LIF_R = "import_from_nir accepts LIF r only equal to 1 or tau/dt (ValueError 'nir.LIF.r must equal 1 or tau / dt.')"
SJ_IF_R = ("import_from_nir requires IF r = 1/dt (ValueError 'nir.IF.r must equal 1 / dt.'): an r = 1 per-step "
           "integrator is refused")
SJ_UNMAPPED = "import_from_nir has no mapping for {kind} (ValueError 'Unknown node type')"
SJ_CUBA_R = "import_from_nir requires CubaLIF r = tau_mem/dt (ValueError 'nir.CubaLIF.r must equal tau_mem / dt.')"

KNOWN: dict[str, dict[str, tuple[type, str]]] = {
    "spikingjelly-upstream": {
        **{name: (CRASH, SJ_LIF_R) for name in (
            "lif_zero", "lif_subtract", "lif_none", "lif_exact", "lif_leak_reset", "lif_threshold_exact",
            "conv2d_stride_pad_lif", "avgpool_nonsquare_lif", "recurrent_lif_zero", "recurrent_lif_subtract",
            "fan_in_sum")},
        **{name: (CRASH, SJ_IF_R) for name in (
            "if_zero", "if_subtract", "if_threshold_exact", "sumpool_flatten_affine", "cnn_sinabs")},
        "li": (CRASH, SJ_UNMAPPED.format(kind="LI")),
        "i": (CRASH, SJ_UNMAPPED.format(kind="I")),
        "cubali": (CRASH, SJ_UNMAPPED.format(kind="CubaLI")),
        "scale_threshold": (CRASH, SJ_UNMAPPED.format(kind="Scale")),
        "cubalif_zero": (CRASH, SJ_CUBA_R),
        "cubalif_subtract": (CRASH, SJ_CUBA_R),
        "conv2d_groups_if": (CRASH, "import_from_nir refuses grouped convolutions (NotImplementedError)"),
        "braille_noDelay_noBias_subtract": (DIFFERS, "NIR cannot say 'subtract': CubaLIFs are imported with a hard "
                                                     "reset to v_reset = 0 (CUBALIFNode(v_reset=0.0))"),
        "braille_noDelay_bias_zero": (DIFFERS, "nirtorch's executor feeds the recurrent Affine's previous output, "
                                               "zeros at t = 0, so its bias reaches the neuron only from t = 1"),
    },
}

RP_LIF = ("from_nir maps LIF through Rockpool's LIFTorch conversion, which reads the CubaLIF field 'tau_mem' "
          "(AttributeError: 'LIF' object has no attribute 'tau_mem')")
RP_UNMAPPED = "from_nir has no mapping for {kind} (NotImplementedError 'Cannot convert ... to rockpool module')"
RP_F64 = ("the imported LIFTorch keeps float32 tensors after .to(torch.float64) (RuntimeError: expected m1 and m2 "
          "to have the same dtype)")
KNOWN["rockpool-upstream"] = {
    **{name: (CRASH, RP_LIF) for name in (
        "lif_zero", "lif_subtract", "lif_none", "lif_exact", "lif_leak_reset", "lif_dt_1e-4", "lif_threshold_exact",
        "recurrent_lif_zero", "recurrent_lif_subtract", "fan_in_sum", "lif_norse")},
    **{name: (CRASH, RP_UNMAPPED.format(kind="IF")) for name in ("if_zero", "if_subtract", "if_threshold_exact")},
    **{name: (CRASH, RP_UNMAPPED.format(kind="Conv2d")) for name in (
        "conv2d_stride_pad_lif", "conv2d_groups_if", "cnn_sinabs")},
    **{name: (CRASH, RP_UNMAPPED.format(kind="AvgPool2d")) for name in ("avgpool_nonsquare_lif",
                                                                          "avgpool_scalar_kernel")},
    **{name: (CRASH, RP_F64) for name in ("cubalif_zero", "cubalif_subtract", "braille_noDelay_noBias_subtract",
                                          "braille_noDelay_bias_zero")},
    "li": (CRASH, "from_nir's LI module returns [1, B, N] per step (Rockpool's batch-time layout): output "
                  "shape [T, 1, B, N]"),
    "i": (CRASH, RP_UNMAPPED.format(kind="I")),
    "cubali": (CRASH, RP_UNMAPPED.format(kind="CubaLI")),
    "scale_threshold": (CRASH, RP_UNMAPPED.format(kind="Scale")),
    "sumpool_flatten_affine": (CRASH, RP_UNMAPPED.format(kind="SumPool2d")),
}

NAMES = list(CASES) + list(PEERS) + ["avgpool_scalar_kernel"]
MODULES = {"spikingjelly-upstream": "spikingjelly", "rockpool-upstream": "rockpool"}


def _params():
    out = []
    for backend, known in KNOWN.items():
        for name in NAMES:
            marks = []
            if name in known:
                exc, reason = known[name]
                marks = [pytest.mark.xfail(strict=True, raises=exc, reason=reason)]
            out.append(pytest.param(backend, name, id=f"{backend}-{name}", marks=marks))
    return out


@pytest.mark.parametrize("backend, name", _params())
def test_upstream_importer_against_reference(backend, name):
    pytest.importorskip(MODULES[backend])
    graph, x, semantics = _case(name)
    ref = ReferenceExecutor(graph, **semantics).run(x)
    got = get(backend).run(graph, x, **semantics)  # float64, importer called with its defaults
    assert got.backend == backend and got.membranes == {}
    assert_agrees(ref, got)


def test_node_cases_each_importer_gets_right():
    """The audit's headline: how many of the node cases each importer reproduces (the rest are xfails above)."""
    right = {b: [n for n in CASES if n not in known] for b, known in KNOWN.items()}
    assert right["spikingjelly-upstream"] == ["lif_dt_1e-4"]
    assert right["rockpool-upstream"] == []


def test_importing_the_audit_module_needs_no_simulator():
    code = ("import sys, snnbridge.backends.upstream_more; "
            "assert not {'spikingjelly', 'rockpool', 'sinabs', 'spyx', 'jax'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
