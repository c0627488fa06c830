"""Notebook use: rich HTML display (escaped, scoped, self-contained), concise reprs, snnbridge.plot figures,
and the rule that nothing in snnbridge changes the caller's matplotlib backend."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib
import nir
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from snnbridge import plot
from snnbridge.models import Network
from snnbridge.models.export import to_nir
from snnbridge.validation import conform
from snnbridge.validation.costs import static_costs

ROOT = Path(__file__).resolve().parents[1]
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:|//)|url\(\s*["']?\s*(?:https?:|//)|@import|<script""",
                      re.I)
EVIL = '<img src=x onerror="alert(1)">'


def _graph() -> nir.NIRGraph:
    torch.manual_seed(0)
    net = Network(structure="Input-24-10", input_shape=(1, 8, 8), decay=0.25, threshold=0.5)
    with torch.no_grad():
        for mod in net.synapses.values():
            if hasattr(mod, "weight"):
                mod.weight.mul_(3.0)
    return to_nir(net)


@pytest.fixture(scope="module")
def result():
    """A check with a planted reset divergence (``reference@reset=subtract`` diverges at ``lif1``)."""
    x = (torch.rand(10, 8, 1, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.3).double()
    y = torch.arange(8) % 10
    return conform(_graph(), x, ["reference", "reference@reset=subtract"], labels=y, model=f"unit {EVIL}",
                   data="random spikes")


def _self_contained(frag: str) -> None:
    assert not EXTERNAL.search(frag), EXTERNAL.search(frag)
    assert frag.startswith('<div class="snnb"><style>') and frag.endswith("</div>")
    style = frag.split("<style>", 1)[1].split("</style>", 1)[0]
    for rule in re.findall(r"([^{}]+)\{", style):  # every selector is scoped to the fragment
        for sel in rule.split(","):
            assert sel.strip().startswith(".snnb") or sel.strip().startswith("@media"), sel


def test_conformance_result_html_and_repr(result):
    frag = result._repr_html_()
    _self_contained(frag)
    assert "FAIL" in frag and "Per-node agreement" in frag and "Where divergence starts" in frag
    assert "Accuracy and cost" in frag and "reference@reset=subtract" in frag and "lif1" in frag
    assert EVIL not in frag and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in frag
    text = repr(result)
    assert len(text.splitlines()) <= 2 + len(result.backends) and "tensor(" not in text
    assert "FAIL" in text and "first diverges at 'lif1'" in text
    b = result.backends["reference@reset=subtract"]
    assert repr(b).startswith("BackendResult('reference@reset=subtract': FAIL") and "tensor(" not in repr(b)
    _self_contained(b._repr_html_())


def test_names_from_files_are_escaped(result):
    """A node named like markup (graphs come from untrusted files) appears only escaped, in every display."""
    g = _graph()
    bad = f"lif1{EVIL}"
    g.nodes[bad] = g.nodes.pop("lif1")
    g.edges = [(bad if a == "lif1" else a, bad if b == "lif1" else b) for a, b in g.edges]
    x = result.inputs[:, :2]
    res = conform(g, x, ["reference@reset=subtract"])
    rec = res.yardstick.recording
    for frag in (res._repr_html_(), rec._repr_html_()):
        _self_contained(frag)
        assert EVIL not in frag and "onerror=&quot;alert(1)&quot;" in frag


def test_recording_and_costs_display(result):
    rec = result.yardstick.recording
    frag = rec._repr_html_()
    _self_contained(frag)
    assert all(f">{n}<" in frag for n in rec.nodes)
    spikes = int(rec["lif1"].sum())
    assert f"<td class='num'>{spikes}</td>" in frag
    c = static_costs("Input-32C3-AP2-10", (1, 8, 8), "ann")
    assert repr(c).startswith("Costs(ann: #W=") and "LayerCost" not in repr(c)
    frag = c._repr_html_()
    _self_contained(frag)
    assert "#W" in frag and "per layer" in frag and f"title='{c.weights}'" in frag


def test_paper_report_display():
    from snnbridge.reproduce.report import PaperReport

    row = {"workload": "digits", "network": f"net{EVIL}", "model": "6", "label": "SNN", "weights": 1e6,
           "values": 2e5, "spikes": 10.0, "memory_bits": 3e7, "adds": 4e6, "muls": 0, "paper_scale": None}
    doc = PaperReport({"preset": {"name": "quick", "description": "tiny"}, "workloads": [{"name": "digits",
                       "offline": True, "paper": "mnist"}], "backends": {"reference": "ok"}, "cost_source": "x",
                       "seconds": 1.0, "run": {"scheduler": "synchronous", "workers": 1, "seeds": [0]},
                       "table4": [], "table5": [], "table6": [row], "cross_simulator": [], "sweep": [], "failed": []})
    frag = doc._repr_html_()
    _self_contained(frag)
    assert "Table 6" in frag and "4" in frag and EVIL not in frag and "net&lt;img" in frag
    assert repr(doc).startswith("PaperReport(preset='quick'") and "Table 6: 1" in repr(doc)


def test_plot_functions_return_figures_with_content(result):
    rec = result.yardstick.recording
    other = result.backends["reference@reset=subtract"].recording
    figs = {
        "raster": plot.raster(rec, "lif1", sample=0),
        "raster_against": plot.raster(other, "lif1", sample=0, against=rec),
        "membrane": plot.membrane(result, "lif1", neurons=[0, 1]),
        "membrane_rec": plot.membrane(rec, "lif1", neurons=3, threshold=0.5),
        "match_scores": plot.match_scores(result),
        "divergence": plot.divergence(result, "reference@reset=subtract"),
        "costs": plot.costs({"A": static_costs("Input-32-10", 64, "ann"), "B": static_costs("Input-64-10", 64)}),
        "costs_result": plot.costs(result),
        "accuracy_vs_cost": plot.accuracy_vs_cost(result, extra=[{"label": "ANN", "adds": 1e3, "accuracy": 0.5,
                                                                   "kind": "ann"}]),
    }
    for name, fig in figs.items():
        assert isinstance(fig, Figure), name
        png = fig._repr_png_()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 3000, name
        assert sum(len(ax.collections) + len(ax.lines) + len(ax.images) + len(ax.patches) for ax in fig.axes) > 0
    # differences are drawn: the planted reset run has red marks where the reference has none
    ax = figs["raster_against"].axes[0]
    assert "differ" in ax.get_title() and sum(len(c.get_offsets()) for c in ax.collections[1:]) > 0
    # drawing into a given Axes returns its figure and draws there
    fig, axes = plot.new_figure(1, 2)
    assert plot.raster(rec, "lif1", ax=axes[0, 0]) is fig and plot.match_scores(result, ax=axes[0, 1]) is fig
    assert len(axes[0, 0].collections) > 0 and len(axes[0, 1].images) == 1
    with pytest.raises(IndexError):
        plot.membrane(rec, "lif1", neurons=[999])
    with pytest.raises(KeyError):
        plot.divergence(result, "nope")
    assert plot.accuracy_vs_cost([]) is None


def test_plot_threshold_from_graph(result):
    fig = plot.membrane(result.yardstick.recording, "lif1", neurons=[0], graph=_graph())
    lines = [ln for ln in fig.axes[0].lines if np.allclose(ln.get_ydata(), 0.5) and len(ln.get_ydata()) == 2]
    assert lines, "the threshold line θ = 0.5 is drawn"


BACKEND_SCRIPT = textwrap.dedent("""
    import importlib, pkgutil, sys, tempfile
    import matplotlib
    before = matplotlib.get_backend()
    import snnbridge
    failed = []
    for m in pkgutil.walk_packages(snnbridge.__path__, "snnbridge."):
        try:
            importlib.import_module(m.name)
        except Exception as e:  # reported below; other tests own those modules
            failed.append(f"{m.name}: {type(e).__name__}")
    assert matplotlib.get_backend() == before, ("import", matplotlib.get_backend())
    import torch
    from snnbridge import plot
    from snnbridge.models.export import to_nir
    from snnbridge.models import Network
    from snnbridge.reproduce import figures
    from snnbridge.validation import conform
    from snnbridge.validation.report import write_report
    torch.manual_seed(0)
    g = to_nir(Network(structure="Input-16-10", input_shape=(1, 8, 8), decay=0.25, threshold=0.3))
    x = (torch.rand(6, 4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.4).double()
    res = conform(g, x, ["reference@reset=subtract"], labels=torch.arange(4))
    with tempfile.TemporaryDirectory() as d:
        write_report(res, d + "/rep")
    assert matplotlib.get_backend() == before, ("report", matplotlib.get_backend())
    for f in (plot.raster(res, "lif1"), plot.membrane(res, "lif1", [0]), plot.match_scores(res),
              plot.divergence(res, "reference@reset=subtract"), plot.costs(res), plot.accuracy_vs_cost(res)):
        f._repr_png_()
    figures.fig8_mae({"w": {"bernoulli": [{"T": 1, "mae_mean": 0.2, "mae_std": 0.1}]}})
    figures.fig10_curves([{"title": "t", "series": {"a": [0.1, 0.5]}}])
    figures.fig12_tsne([{"title": "t", "labels": [0, 1], "embeddings": {"5": [[0, 0], [1, 1]]}}])
    figures.fig13_sweep([{"T": 4, "threshold": 0.5, "accuracy": 80.0, "adds": 1e5}])
    assert matplotlib.get_backend() == before, ("figures", matplotlib.get_backend())
    print("BACKEND", matplotlib.get_backend(), "FAILED-IMPORTS", failed)
""")


def test_matplotlib_backend_unchanged():
    """Importing every snnbridge module, writing a report and drawing every figure keep the caller's backend
    (here ``svg``; the old code forced ``Agg``, which turns a notebook's inline backend off)."""
    env = {**os.environ, "MPLBACKEND": "svg", "SNNBRIDGE_PROGRESS": "off"}
    proc = subprocess.run([sys.executable, "-c", BACKEND_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "BACKEND svg" in proc.stdout, proc.stdout
    assert matplotlib.get_backend()  # this process untouched as well (no import above switched it)
