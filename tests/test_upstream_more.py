"""Audit of the added simulators' own NIR importers against the reference semantics.

Every node case, peer graph and the scalar-kernel pooling case runs through each audit mode of
:mod:`snnbridge.backends.upstream_more` as a user would call the importer (its defaults), in float64, and the Output
node (plus every node the importer exposes) is compared with the reference executor
(:func:`tests.test_upstream_audit.assert_agrees`).  Known departures are strict xfails with the measured reason, so
an importer that gets fixed shows up as XPASS; what agrees is asserted.
Measured with spikingjelly 2.0.0, rockpool 3.1.0, sinabs 3.1.3, spyx 1.0.0 (nirtorch 2.6, jax 0.10.2).
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

SB_LIF = ("from_nir builds LIFSqueeze with Sinabs' defaults: MultiSpike (several spikes per step, outputs 0..5), "
          "subtract reset whatever the graph says, tau_mem read in steps (NIR's seconds: no memory), r and v_reset "
          "ignored")
SB_IF = ("from_nir builds IAFSqueeze with Sinabs' defaults: MultiSpike (several spikes per step), subtract reset "
         "whatever the graph says, a floor at -v_threshold (min_v_mem), r ignored")
SB_UNMAPPED = ("from_nir has no mapping for {kind} (the importer returns None and nirtorch passes its input through): "
               "the output is the previous layer's analog value")
SB_LINEAR = ("from_nir has no mapping for nir.Linear (passed through): the 6-wide input reaches the 8-neuron layer "
             "(RuntimeError: size mismatch)")
SB_ND_LIF = ("a LIF of more than one dimension: the importer's check `any(node.v_leak) != 0` raises ValueError (truth "
             "value of an array is ambiguous)")
KNOWN["sinabs-upstream"] = {
    **{name: (DIFFERS, SB_LIF) for name in (
        "lif_zero", "lif_subtract", "lif_none", "lif_exact", "lif_dt_1e-4", "recurrent_lif_zero",
        "recurrent_lif_subtract", "fan_in_sum", "lif_norse")},
    **{name: (DIFFERS, SB_IF) for name in ("if_zero", "if_subtract", "sumpool_flatten_affine")},
    "lif_leak_reset": (CRASH, "from_nir refuses LIF v_leak != 0 (ValueError '`v_leak` must be 0')"),
    "li": (CRASH, "from_nir refuses LI v_leak != 0 (ValueError '`v_leak` must be 0')"),
    "if_threshold_exact": (CRASH, SB_LINEAR),
    "lif_threshold_exact": (CRASH, SB_LINEAR),
    "i": (DIFFERS, SB_UNMAPPED.format(kind="I")),
    "cubali": (DIFFERS, SB_UNMAPPED.format(kind="CubaLI")),
    "cubalif_zero": (DIFFERS, SB_UNMAPPED.format(kind="CubaLIF")),
    "cubalif_subtract": (DIFFERS, SB_UNMAPPED.format(kind="CubaLIF")),
    "scale_threshold": (CRASH, "from_nir has no mapping for Scale / Threshold (KeyError 'scale' in nirtorch's loader)"),
    "conv2d_stride_pad_lif": (CRASH, SB_ND_LIF),
    "avgpool_nonsquare_lif": (CRASH, SB_ND_LIF),
    "avgpool_scalar_kernel": (CRASH, SB_ND_LIF),
    "conv2d_groups_if": (CRASH, "from_nir sets Conv2d in_channels to the per-group weight dimension (ValueError: "
                                "in_channels must be divisible by groups)"),
    "cnn_sinabs": (CRASH, "after model.to(torch.float64) IAFSqueeze still returns float32 spikes, which the next "
                          "float64 Conv2d refuses (RuntimeError: Input type (float) and bias type (double))"),
    "braille_noDelay_noBias_subtract": (CRASH, "from_nir cannot load the recurrent CubaLIF subgraph (KeyError "
                                               "'lif1_w_rec' in nirtorch's loader)"),
    "braille_noDelay_bias_zero": (CRASH, "from_nir cannot load the recurrent CubaLIF subgraph (KeyError 'lif1_lif' in "
                                         "nirtorch's loader)"),
}

SX_LATE = ("spyx.nn.{cls} fires on the carried state (s[t] = H(V[t-1] - θ): spikes one step after the reference) and "
           "always subtracts{extra}")
SX_LIF = SX_LATE.format(cls="LIF", extra="; from_nir's default dt = 1 makes beta = 1 - 1/tau (clipped to 0 for tau in "
                                          "seconds); r, v_leak and v_reset are ignored")
SX_IF = SX_LATE.format(cls="IF", extra="; r is ignored")
SX_CUBA = SX_LATE.format(cls="CuBaLIF", extra="; dt = 1 gives alpha = 1 - 1/tau_syn, beta = 1 - 1/tau_mem (clipped); "
                                              "r and w_in are ignored")
SX_DROPPED = "from_nir has no mapping for {kind} (dropped from the Sequential): the output is its input"
SX_CHANNELS = ("Spyx runs channels-last (H, W, C) but from_nir feeds NIR's channels-first input [B, C, H, W] "
               "unchanged ({err})")
KNOWN["spyx-upstream"] = {
    **{name: (DIFFERS, SX_LIF) for name in (
        "lif_zero", "lif_subtract", "lif_none", "lif_exact", "lif_leak_reset", "lif_dt_1e-4", "lif_threshold_exact",
        "recurrent_lif_zero", "recurrent_lif_subtract", "lif_norse")},
    **{name: (DIFFERS, SX_IF) for name in ("if_zero", "if_subtract", "if_threshold_exact")},
    **{name: (DIFFERS, SX_CUBA) for name in ("cubalif_zero", "cubalif_subtract", "braille_noDelay_noBias_subtract",
                                             "braille_noDelay_bias_zero")},
    "li": (CRASH, "from_nir imports LI only as half of a PSU_LIF (ValueError 'nir.LI without a following "
                  "nir.Threshold has no Spyx module')"),
    "i": (DIFFERS, SX_DROPPED.format(kind="I")),
    "cubali": (DIFFERS, SX_DROPPED.format(kind="CubaLI")),
    "scale_threshold": (DIFFERS, SX_DROPPED.format(kind="Scale and Threshold")),
    "fan_in_sum": (DIFFERS, "from_nir builds a Sequential along one out-edge per node: the second fan-in branch is "
                            "dropped (and LIF fires one step late)"),
    "sumpool_flatten_affine": (DIFFERS, "SumPool2d pools the trailing (channels-last) axes of the channels-first "
                                        "input, and IF fires one step late"),
    **{name: (CRASH, SX_CHANNELS.format(err="ValueError in conv_general_dilated")) for name in (
        "conv2d_stride_pad_lif", "conv2d_groups_if", "cnn_sinabs")},
    **{name: (CRASH, "from_nir has no mapping for AvgPool2d (dropped); the LIF's channels-last state meets the "
                     "channels-first input (TypeError: incompatible shapes)") for name in (
        "avgpool_nonsquare_lif", "avgpool_scalar_kernel")},
}

NAMES = list(CASES) + list(PEERS) + ["avgpool_scalar_kernel"]
MODULES = {"spikingjelly-upstream": "spikingjelly", "rockpool-upstream": "rockpool", "sinabs-upstream": "sinabs",
           "spyx-upstream": "spyx"}
HEAVY = {("spyx-upstream", n) for n in ("cnn_sinabs", "braille_noDelay_noBias_subtract", "braille_noDelay_bias_zero",
                                        "conv2d_stride_pad_lif", "conv2d_groups_if", "avgpool_nonsquare_lif",
                                        "avgpool_scalar_kernel", "sumpool_flatten_affine")}
HEAVY |= {("sinabs-upstream", n) for n in ("braille_noDelay_noBias_subtract", "braille_noDelay_bias_zero")}
"""Audit cases of the added importers marked ``slow``: JAX compiles Spyx's scanned model for every shape (seconds per
case on 2 cores), and the Braille references are the longest runs."""


def _params():
    out = []
    for backend, known in KNOWN.items():
        for name in NAMES:
            marks = [pytest.mark.slow] if (backend, name) in HEAVY else []
            if name in known:
                exc, reason = known[name]
                marks = marks + [pytest.mark.xfail(strict=True, raises=exc, reason=reason)]
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
    assert right["sinabs-upstream"] == []
    assert right["spyx-upstream"] == []


def test_importing_the_audit_module_needs_no_simulator():
    code = ("import sys, snnbridge.backends.upstream_more; "
            "assert not {'spikingjelly', 'rockpool', 'sinabs', 'spyx', 'jax'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_committed_node_case_counts_match_the_xfails():
    """results/upstream-node-cases.json (the README's last matrix column) is what the strict xfails above say."""
    import json
    from pathlib import Path

    doc = json.loads((Path(__file__).resolve().parents[1] / "results" / "upstream-node-cases.json").read_text())
    for backend, known in KNOWN.items():
        assert doc["right"][backend] == [n for n in CASES if n not in known], backend
