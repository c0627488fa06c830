"""The README's and docs/reproduce.md's result tables are exactly what the committed results/*.json give."""

from __future__ import annotations

import json

import pytest

from snnbridge.reproduce import tables


def test_documents_match_the_committed_results():
    assert tables.drift() == [], "run: python -m snnbridge.reproduce.tables"


def test_a_changed_number_is_detected(tmp_path):
    """The check is not vacuous: editing one accuracy in a copy of the results makes the tables differ."""
    src = tables.RESULTS / tables.QUICK
    if not src.exists():
        pytest.skip("no committed quick results yet")
    doc = json.loads(src.read_text())
    before = tables.main_block(doc)
    doc["table5"][0]["accuracy"] += 1.0
    assert tables.main_block(doc) != before


def test_splice_replaces_only_between_markers():
    text = "a\n<!-- results:begin -->\nold\n<!-- results:end -->\nb\n"
    assert tables.splice(text, "main", "new\n") == "a\n<!-- results:begin -->\nnew\n<!-- results:end -->\nb\n"
    with pytest.raises(ValueError):
        tables.splice("no markers", "main", "x\n")


def test_matrix_block_follows_the_committed_matrix():
    """The README's matrix summary is the committed matrix: a changed verdict or node count changes the block."""
    import json

    doc = json.loads((tables.RESULTS / tables.MATRIX).read_text())
    cases = json.loads((tables.RESULTS / tables.NODE_CASES).read_text())
    before = tables.matrix_block(doc, cases)
    assert "| `spyx` | PASS | PASS | PASS (100 %) | PASS |" in before or "`spyx`" not in before
    doc["rows"][0]["verdict"] = "FAIL"
    assert tables.matrix_block(doc, cases) != before
    cases["right"]["norse-upstream"] = []
    assert "| 0 of 23 |" in tables.matrix_block(doc, cases).split("`norse-upstream`")[1].splitlines()[0]


def test_demo_block_follows_the_committed_demo_report():
    import json

    doc = json.loads((tables.RESULTS / tables.DEMO).read_text())
    before = tables.demo_block(doc)
    assert "all **PASS**" in before and f"{100 * doc['reference']['accuracy']:.1f} %" in before
    doc["backends"][1]["verdict"] = "FAIL"
    assert tables.demo_block(doc) != before and "FAIL" in tables.demo_block(doc)
