"""Reports: JSON valid against the schema, self-contained HTML, Markdown, diff, atomic writes, Chromium render."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch

from snnbridge.errors import InputError
from snnbridge.models import Network
from snnbridge.models.export import to_nir
from snnbridge.validation import conform
from snnbridge.validation.report import diff as cmp
from snnbridge.validation.report import load_report, schema, si, validate, write_report

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results():
    torch.manual_seed(0)
    net = Network(structure="Input-24-10", input_shape=(1, 8, 8), decay=0.25, threshold=0.5)
    with torch.no_grad():
        for mod in net.synapses.values():
            if hasattr(mod, "weight"):
                mod.weight.mul_(3.0)
    g = to_nir(net)
    x = (torch.rand(10, 16, 1, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.3).double()
    y = torch.arange(16) % 10
    good = conform(g, x, ["reference"], labels=y, model="unit", data="random spikes")
    bad = conform(g, x, ["reference", "reference@reset=subtract"], labels=y, model="unit", data="random spikes")
    return good, bad


def test_json_valid_and_complete(results, tmp_path):
    _, bad = results
    paths = write_report(bad, tmp_path / "rep", extra_points=[{"label": "ANN", "accuracy": 0.9, "adds": 1e4,
                                                               "kind": "ann"}])
    doc = json.loads(paths.json.read_text())
    jsonschema.Draft202012Validator.check_schema(schema())
    validate(doc)
    assert doc["schema"] == "snnbridge-conformance-report" and doc["version"] == 1
    assert doc["passed"] is False and doc["exit_code"] == 1
    planted = next(b for b in doc["backends"] if b["name"] == "reference@reset=subtract")
    assert planted["first_divergent_node"] == "lif1" and planted["classification"] == "reset"
    assert planted["costs"]["adds"] > 0 and planted["costs"]["muls"] == 0
    assert doc["report"]["plot_node"] == "lif1"
    assert doc["structure_costs"]["ann"]["weights"] == 64 * 24 + 24 * 10
    broken = json.loads(json.dumps(doc))
    broken["backends"][0]["status"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_html_self_contained_and_markdown(results, tmp_path):
    _, bad = results
    paths = write_report(bad, tmp_path / "rep")
    page = paths.html.read_text()
    assert re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)""", page) is None
    assert "<script" not in page and "<link" not in page
    assert page.count("data:image/png;base64,") >= 3  # rasters, output raster, membranes (+ chart)
    for heading in ("Summary", "Per-node agreement", "Where divergence starts", "Rasters and membranes",
                    "Accuracy and cost", "Pairwise"):
        assert heading in page
    md = paths.markdown.read_text()
    assert "**FAIL**" in md and "`lif1` step" in md and "reset" in md
    assert (paths.directory / "report.json").exists()


def test_write_is_atomic(results, tmp_path):
    good, bad = results
    out = tmp_path / "rep"
    write_report(good, out)
    before = (out / "report.json").read_text()
    with pytest.raises(InputError):
        write_report(bad, out, plot_node="nope")
    assert (out / "report.json").read_text() == before  # untouched
    write_report(bad, out)
    assert json.loads((out / "report.json").read_text())["passed"] is False
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temporary leftovers


def test_diff_reports(results, tmp_path):
    good, bad = results
    a = write_report(good, tmp_path / "a").json
    b = write_report(bad, tmp_path / "b").json
    changes = cmp.diff_reports(load_report(a), load_report(b))
    by = {c.name: c for c in changes}
    assert not by["reference"].regressed
    assert by["reference@reset=subtract"].old_status is None and by["reference@reset=subtract"].new_status == "fail"
    assert "| backend |" in cmp.markdown(changes)
    doc = json.loads(b.read_text())
    old = json.loads(json.dumps(doc))
    next(x for x in old["backends"] if x["name"] == "reference@reset=subtract")["status"] = "pass"
    reg = cmp.diff_reports(old, doc)
    assert [c.name for c in reg if c.regressed] == ["reference@reset=subtract"]
    with pytest.raises(InputError):
        load_report(tmp_path / "missing.json")


def test_si():
    assert si(1_234_567) == "1.23 M" and si(None) == "—" and si(42) == "42" and si(2.5e9) == "2.5 G"


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")),
                    reason="chromium not installed")
def test_report_renders_in_chromium(results, tmp_path):
    _, bad = results
    paths = write_report(bad, tmp_path / "rep")
    shot = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, str(ROOT / ".ci" / "render_report.py"), str(paths.directory), "--out",
                           str(shot)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK:" in proc.stdout and shot.stat().st_size > 20_000
