"""The names renamed in 0.2.0 (CHANGELOG "Renamed and moved") still work, and each old one warns once used."""

from __future__ import annotations

import importlib
import json
import re
import sys

import pytest
import torch

from snnbridge.validation.results import BackendResult, NodeResult

OLD_REPORT_NAMES = ("CSS_PATH", "SCHEMA_PATH", "ReportPaths", "YARDSTICK", "ConformanceResult", "choose_focus",
                    "load_report", "pct", "render_html", "render_markdown", "report_dict", "schema", "si", "validate",
                    "write_report")


def test_every_public_name_of_the_old_report_module_imports():
    mod = importlib.import_module("snnbridge.validation.report")
    for name in OLD_REPORT_NAMES:
        assert getattr(mod, name) is not None, name
    assert mod.CSS_PATH.is_file() and mod.SCHEMA_PATH.is_file()


def test_node_result_agreement_is_match_score():
    with pytest.warns(DeprecationWarning, match="match_score"):
        r = NodeResult("lif1", "LIF", True, (3,), agreement=0.5)
    assert r.match_score == 0.5
    with pytest.warns(DeprecationWarning, match="NodeResult.agreement"):
        assert r.agreement == 0.5
    with pytest.warns(DeprecationWarning):
        r.agreement = 0.25
    assert r.match_score == 0.25 and r.to_dict()["agreement"] == 0.25  # the JSON key is unchanged
    assert NodeResult("x", "LIF", True, (1,), True, True, 0.75).match_score == 0.75  # positional order kept


def test_backend_result_agreement_is_prediction_agreement():
    with pytest.warns(DeprecationWarning, match="prediction_agreement"):
        b = BackendResult("reference", "reference", False, "pass", agreement=0.9)
    assert b.prediction_agreement == 0.9
    with pytest.warns(DeprecationWarning, match="BackendResult.agreement"):
        assert b.agreement == 0.9
    with pytest.warns(DeprecationWarning):
        b.agreement = 0.8
    assert b.prediction_agreement == 0.8 and b.to_dict()["prediction_agreement"] == 0.8


def test_node_compare_compare_is_compare_nodes():
    from snnbridge.bridge.executor import ReferenceExecutor
    from snnbridge.bridge.graph import prepare
    from snnbridge.models import Network
    from snnbridge.models.export import to_nir
    from snnbridge.validation import conformance, node_compare

    fg = prepare(to_nir(Network(structure="Input-8-4", input_shape=(1, 4, 4))))
    x = (torch.rand(5, 2, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    rec = ReferenceExecutor(fg, dtype=torch.float64).run(x)
    nodes, origin, failures = node_compare.compare_nodes(fg, rec, rec)
    with pytest.warns(DeprecationWarning, match="compare_nodes"):
        old = node_compare.compare(fg, rec, rec)
    assert list(old[0]) == list(nodes) and old[1:] == (origin, failures) == (None, [])
    assert conformance.compare_nodes is node_compare.compare_nodes


def test_validation_compare_is_report_diff(tmp_path):
    from snnbridge.validation.report import diff

    doc = json.loads((__import__("pathlib").Path(__file__).with_name("golden") / "conformance_docs.json")
                     .read_text(encoding="utf-8"))["divergence"]
    sys.modules.pop("snnbridge.validation.compare", None)
    with pytest.warns(DeprecationWarning, match="report.diff"):
        cmp = importlib.import_module("snnbridge.validation.compare")
    with pytest.warns(DeprecationWarning, match="diff_reports"):
        old = cmp.compare_reports(doc, doc)
    assert old == diff.diff_reports(doc, doc)
    assert cmp.Change is diff.Change and cmp.markdown is diff.markdown and cmp.rows is diff.rows


def test_cli_old_command_names_are_hidden_aliases(tmp_path):
    from typer.testing import CliRunner

    from snnbridge.cli import app

    runner = CliRunner()
    top = runner.invoke(app, ["--help"]).output
    listed = lambda text, cmd: re.search(rf"^\W*{cmd}\s", text, re.M) is not None  # noqa: E731 - a command row
    assert listed(top, "diff") and not listed(top, "compare")
    data = runner.invoke(app, ["data", "--help"]).output
    assert listed(data, "stats") and not listed(data, "compare")
    assert runner.invoke(app, ["data", "compare", "--help"]).exit_code == 0
    doc = (__import__("pathlib").Path(__file__).with_name("golden") / "conformance_docs.json")
    one = tmp_path / "report.json"
    one.write_text(json.dumps(json.loads(doc.read_text(encoding="utf-8"))["divergence"]), encoding="utf-8")
    new = runner.invoke(app, ["diff", str(one), str(one), "--markdown"])
    old = runner.invoke(app, ["compare", str(one), str(one), "--markdown"])
    assert new.exit_code == old.exit_code == 0 and new.output == old.output and "| backend |" in new.output


def test_compare_event_statistics_is_paired_event_statistics():
    from snnbridge.data import compare_event_statistics, emulate_dataset, load_digits, paired_event_statistics

    x, y, _, _ = load_digits()
    ds = emulate_dataset(x[:4], y[:4], seed=0)
    with pytest.warns(DeprecationWarning, match="paired_event_statistics"):
        old = compare_event_statistics(ds, ds)
    new = paired_event_statistics(ds, ds)
    assert old.keys() == new.keys() and all(old[k]["emulated"] == new[k]["emulated"] == new[k]["real"] for k in new)


def test_plot_agreement_is_match_scores():
    from snnbridge import plot
    from snnbridge.models import Network
    from snnbridge.models.export import to_nir
    from snnbridge.validation import conform

    x = (torch.rand(5, 2, 1, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    result = conform(to_nir(Network(structure="Input-8-4", input_shape=(1, 4, 4))), x, ["reference"])
    with pytest.warns(DeprecationWarning, match="match_scores"):
        fig = plot.agreement(result)
    assert len(fig.axes) == len(plot.match_scores(result).axes) == 2  # the heat map and its colour bar
