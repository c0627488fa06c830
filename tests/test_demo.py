"""``snnbridge demo``: trains, exports, checks and reports (quick mode, fast backends)."""

from __future__ import annotations

import json

from snnbridge.cli import main
from snnbridge.validation.demo import run_demo
from snnbridge.validation.report import validate


def test_demo_quick(tmp_path):
    out = tmp_path / "report"
    res = run_demo(out, quick=True, backends=("reference", "snntorch", "norse"), progress=False, log=lambda *a: None)
    assert res.report == out / "report.html" and res.report.exists()
    assert (out / "model.nir").exists() and (out / "summary.md").exists()
    doc = json.loads((out / "report.json").read_text())
    validate(doc)
    assert doc["data"]["samples"] == 40 and doc["model"]["structure"] == "Input-128-10"
    assert res.result.passed, res.result.summary()
    assert res.result.yardstick.accuracy > 0.5  # one epoch already learns the digits
    assert any(p["kind"] == "ann" for p in doc["extra_points"])
    assert res.seconds < 120


def test_demo_command_registered(capsys):
    assert main(["demo", "--help"]) == 0
    assert "--quick" in capsys.readouterr().out
