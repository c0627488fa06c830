"""``snnbridge matrix``: every graph on every backend (and audit mode) in one table, written as HTML/Markdown/JSON.

Real simulators throughout: a small MLP exported from ``snnbridge.models.Network`` on the embedded digits, and
``lif_norse.nir`` from ``../shared`` (when present) on seeded random spikes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from snnbridge import backends
from snnbridge.backends.base import _FACTORIES
from snnbridge.backends.reference import ReferenceBackend
from snnbridge.bridge.export import export
from snnbridge.cli import main
from snnbridge.errors import InputError, SnnBridgeError
from snnbridge.models import Network
from snnbridge.validation.matrix import matrix, write_matrix

from .conftest import NIR_GRAPHS

LIF_NORSE = NIR_GRAPHS / "lif_norse.nir"


@pytest.fixture(scope="module")
def mlp(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = Network(structure="Input-16-10", input_shape=(1, 8, 8), decay=0.25, threshold=0.5)
    with torch.no_grad():
        for mod in net.synapses.values():
            if hasattr(mod, "weight"):
                mod.weight.mul_(3.0)  # enough drive that every layer spikes
    return export(net, tmp_path_factory.mktemp("m") / "mlp.nir")


def _graphs(mlp: Path) -> list[Path]:
    return [mlp] + ([LIF_NORSE] if LIF_NORSE.exists() else [])


def run(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def full(mlp, tmp_path_factory):
    """The CLI over both graphs × every registered backend and audit mode, plus a planted reset divergence."""
    out = tmp_path_factory.mktemp("r") / "matrix"
    code = run("matrix", *_graphs(mlp), "--backends", "all,reference@reset=subtract", "--data", "mlp=digits",
               "--data", "random", "--samples", 6, "--T", 15, "--report", out)
    return code, out, json.loads((out / "matrix.json").read_text())


def test_matrix_has_one_row_per_graph_and_backend(full):
    code, out, doc = full
    stems = [g["name"] for g in doc["graphs"]]
    names = backends.names() + ["reference@reset=subtract"]
    assert [(r["graph"], r["backend"]) for r in doc["rows"]] == [(g, b) for g in stems for b in names]
    assert doc["graphs"][0]["labels"] and doc["graphs"][0]["data"].startswith("digits")
    assert doc["graphs"][0]["reference_accuracy"] is not None
    rows = {(r["graph"], r["backend"]): r for r in doc["rows"]}
    status = backends.status()
    for b in ("reference", "snntorch", "norse", "brian2", "spikingjelly", "sinabs", "nengo", "rockpool", "spyx"):
        if status[b] == "available":
            r = rows[("mlp", b)]
            assert r["verdict"] == "PASS" and r["counted"], r
            assert r["accuracy"] == doc["graphs"][0]["reference_accuracy"]  # identical spikes, identical accuracy
            assert r["details"] == f"all {r['nodes_compared']} recorded nodes agree" and r["runtime_s"] > 0
    # the planted divergence: found at the first LIF layer and explained as a reset mismatch; exit code 1
    bad = rows[("mlp", "reference@reset=subtract")]
    assert bad["verdict"] == "FAIL" and bad["first_divergent_node"] == "lif1" and bad["cause"] == "reset"
    assert "lif1 @ step" in bad["details"] and "subtract" in bad["details"]
    assert code == 1 and doc["exit_code"] == 1 and not doc["passed"]
    # audit rows: reported with their reason, never counted
    for r in doc["rows"]:
        if r["backend"].endswith("-upstream"):
            assert r["audit"] and not r["counted"] and r["verdict"].startswith("AUDIT ")
            if r["status"] in ("error", "fail"):
                assert r["details"] and r["details"] != "all 0 recorded nodes agree"


@pytest.mark.skipif(not LIF_NORSE.exists(), reason="needs ../shared/nir-graphs/lif_norse.nir")
def test_norse_importer_audit_row_fails_with_its_reason(full):
    _, _, doc = full
    rows = {(r["graph"], r["backend"]): r for r in doc["rows"]}
    g = next(g for g in doc["graphs"] if g["name"] == "lif_norse")
    assert g["data"].startswith("random Bernoulli spikes p=0.2") and not g["labels"]
    r = rows[("lif_norse", "norse-upstream")]
    assert r["verdict"] == "AUDIT FAIL" and r["first_divergent_node"] == "1" and r["cause"] == "unexplained"
    assert "spike trains differ" in r["details"] and r["accuracy"] is None
    assert rows[("lif_norse", "norse")]["verdict"] == "PASS"


def test_report_files_are_written_and_escaped(full):
    _, out, doc = full
    assert sorted(p.name for p in out.iterdir()) == [".snnbridge-output", "matrix.html", "matrix.json", "matrix.md"]
    md = (out / "matrix.md").read_text()
    assert "| `mlp` | `reference@reset=subtract` | FAIL |" in md
    assert md.count("\n| `mlp` | `") == len(backends.names()) + 1
    page = (out / "matrix.html").read_text()
    assert "<style>" in page and "<script" not in page and "http://" not in page and "https://" not in page
    assert page.count("<tr><td class='mono'>mlp</td><td class='mono'>") == len(backends.names()) + 1
    assert "node &#x27;lif1&#x27;" in page or not any(r["status"] == "refused" for r in doc["rows"])


def test_graph_names_are_escaped_in_html(mlp, tmp_path):
    odd = tmp_path / "m<b>&x.nir"
    shutil.copyfile(mlp, odd)
    res = matrix([odd], backends="reference", data="digits", samples=2, T=5)
    paths = write_matrix(res, tmp_path / "rep")
    page = paths.html.read_text()
    assert "m<b>&x" not in page and "m&lt;b&gt;&amp;x" in page
    assert res.exit_code == 0 and res.row("m<b>&x", "reference").verdict == "PASS"


def test_a_missing_simulator_is_a_not_installed_row(mlp):
    class Absent(ReferenceBackend):
        name = "absent-sim"
        requires = ("snnbridge_absent_simulator_pkg",)
        pip = "pip install absent-sim"

    backends.register("absent-sim", Absent)
    try:
        res = matrix([mlp], backends="reference,absent-sim", data="digits", samples=2, T=5)
    finally:
        _FACTORIES.pop("absent-sim", None)
    r = res.row("mlp", "absent-sim")
    assert r.verdict == "NOT INSTALLED" and r.reason == "not installed: pip install absent-sim" and not r.counted
    assert res.exit_code == 0


def test_exit_codes(mlp, tmp_path):
    assert run("matrix", mlp, "-b", "reference", "--samples", 3, "--T", 5) == 0
    assert run("matrix", mlp, "-b", "reference@reset=subtract", "--samples", 3, "--T", 5) == 1
    assert run("matrix", tmp_path / "missing.nir", "-b", "reference") == 2
    assert run("matrix", mlp, "-b", "no-such-sim") == 2
    assert run("matrix", mlp, "-b", "reference", "--data", "random:2") == 2
    assert run("matrix", mlp, "-b", "reference", "--data", "nosuch=digits") == 2
    assert run("matrix", mlp, "-b", "reference", "--samples", 0) == 2
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert run("matrix", mlp, "-b", "reference", "--samples", 2, "--T", 5, "--report", foreign) == 2
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    assert run("matrix", mlp, "-b", "reference", "--samples", 2, "--T", 5, "--report", foreign, "--overwrite") == 0
    assert (foreign / "notes.txt").read_text() == "mine" and (foreign / "matrix.json").exists()


def test_bad_input_in_the_library(mlp):
    with pytest.raises(InputError, match="share the name"):
        matrix([mlp, mlp], backends="reference")
    with pytest.raises(InputError, match="no --data fits it"):
        matrix([LIF_NORSE if LIF_NORSE.exists() else mlp], backends="reference", data="nowhere.npz", samples=2)
    with pytest.raises(SnnBridgeError, match="unknown backend"):
        matrix([mlp], backends="reference,nope")


def test_a_graph_can_carry_its_own_semantics(mlp):
    res = matrix([f"{mlp}@reset=subtract"], backends="reference,rockpool", data="digits", samples=3, T=8)
    g = res.graphs[0]
    assert g.name == "mlp" and g.semantics["reset"] == "subtract" and g.path == str(mlp)
    assert res.row("mlp", "reference").verdict == "PASS"
    if backends.status()["rockpool"] == "available":  # subtract is what Rockpool can express: it runs now
        assert res.row("mlp", "rockpool").verdict == "PASS"
    if backends.status()["spyx"] == "available":  # and Spyx
        assert matrix([f"{mlp}@reset=subtract"], backends="spyx", data="digits", samples=3,
                      T=8).row("mlp", "spyx").verdict == "PASS"
    with pytest.raises(InputError, match=r"graph '.*mlp.nir@reset=sometimes': reset must be one of"):
        matrix([f"{mlp}@reset=sometimes"], backends="reference", samples=2, T=5)
    assert run("matrix", f"{mlp}@dtype=float32", "-b", "reference", "--samples", 2, "--T", 5) == 2
