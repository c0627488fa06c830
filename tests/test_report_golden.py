"""Report bytes are pinned: the conformance report (``report.html``, ``summary.md``) and the reproduction report
(``report.html``, ``report.md``) rendered from committed documents must equal the committed files in
``tests/golden/`` (after :mod:`tests.report_normalise` masks timestamps, timings, the machine and figures).

A deliberate change of a report: regenerate with ``SNNBRIDGE_UPDATE_GOLDEN=1 pytest tests/test_report_golden.py``
and review the diff of ``tests/golden/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from snnbridge.reproduce import report as paper
from snnbridge.validation.report import render_html, render_markdown
from tests.report_normalise import normalise

GOLDEN = Path(__file__).with_name("golden")
DOCS = json.loads((GOLDEN / "conformance_docs.json").read_text(encoding="utf-8"))
# the figures as render_html receives them (data URIs); their pixels are matplotlib's, not the report's
FIGS = {
    "divergence": {"raster": "data:image/png;base64,UkFTVEVS", "raster_output": "data:image/png;base64,T1VU",
                   "membranes": "data:image/png;base64,TUVN", "membrane_node": "lif1",
                   "chart": "data:image/png;base64,Q0hBUlQ="},
    "hostile": {"raster": "data:image/png;base64,UkFTVEVS", "membrane_node": "<lif1>&'\""},
    "unavailable": {"raster": None, "raster_output": None, "membranes": None, "chart": None},
}
PAPER_FIGS = {"fig8_mae.png": b"\x89PNG fig8", "fig13_sweep.png": b"\x89PNG fig13"}


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("SNNBRIDGE_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    kind = name.rsplit(".", 1)[-1]
    expected = normalise(path.read_text(encoding="utf-8"), kind)
    assert normalise(text, kind) == expected, f"{name} changed; see the module docstring to update it on purpose"


@pytest.mark.parametrize("case", sorted(DOCS))
def test_conformance_report_bytes(case):
    doc = DOCS[case]
    _check(f"conformance_{case}.html", render_html(doc, FIGS[case]))
    _check(f"conformance_{case}.md", render_markdown(doc))


def test_paper_report_bytes():
    doc = json.loads((GOLDEN / "paper_results.json").read_text(encoding="utf-8"))
    _check("paper_report.html", paper.html_page(doc, PAPER_FIGS))
    _check("paper_report.md", paper.markdown(doc, PAPER_FIGS))
    empty = dict(doc, table4=[], table5=[], table6=[], cross_simulator=[], sweep=[], failed=[])
    _check("paper_report_empty.md", paper.markdown(empty, {}))


def test_golden_check_can_fail():
    """The comparison sees a one-character change (the masks do not hide report content)."""
    doc = json.loads(json.dumps(DOCS["divergence"]))
    doc["backends"][0]["accuracy"] = 0.5 if doc["backends"][0]["accuracy"] != 0.5 else 0.25
    with pytest.raises(AssertionError):
        _check("conformance_divergence.html", render_html(doc, FIGS["divergence"]))
