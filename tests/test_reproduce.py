"""``reproduce`` end to end on the tiny ``test`` preset: cells, backends, costs, report, cache resume, Dask."""

from __future__ import annotations

import json

import pytest

from snnbridge.cli import main
from snnbridge.models.presets import PRESETS, get_preset, scale_structure
from snnbridge.reproduce import reproduce
from snnbridge.reproduce.paper import paper_accuracy
from snnbridge.reproduce.runner import sweep_specs
from snnbridge.reproduce.sweep import cell_key, run_cells
from snnbridge.reproduce.workloads import WORKLOADS, prepare_workload


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro")
    res = reproduce("test", None, out, scheduler="synchronous", networks=["mlp"], models=["2", "6"], progress=False)
    return out, res


def test_report_files_and_tables(first_run):
    out, res = first_run
    assert not res.failed
    for name in ("results.json", "report.md", "report.html"):
        assert (out / name).stat().st_size > 500
    assert not list(out.glob(".report-*"))  # no temporary leftovers
    doc = json.loads((out / "results.json").read_text())
    (t4,) = doc["table4"]
    (t5,) = doc["table5"]
    assert (t4["workload"], t4["model"], t4["paper"]) == ("digits", "2", 98.51)
    assert (t5["workload"], t5["model"], t5["paper"]) == ("digits-events", "6", 98.61)
    assert t4["source"].startswith("reference")
    cell2 = next(c for c in doc["cells"] if c["spec"]["model"] == "2")
    # the table's number is the reference backend's accuracy on the exported NIR graph, in %
    assert t4["accuracy"] == pytest.approx(100 * cell2["backends"]["reference"]["accuracy"])
    assert t4["accuracy"] == pytest.approx(100 * cell2["accuracy"])
    assert "constrained_ann_accuracy" in t4
    # Model-2's threshold tuning ran over the preset's candidates plus Table 2's u_th, and Fig. 9b's curve ends at T
    assert set(cell2["threshold_tuning"]["accuracy"]) == {"1.0", "2.0"}
    assert list(cell2["accuracy_vs_T"]["accuracy"])[-1] == str(cell2["spike"]["T"])
    cell6 = next(c for c in doc["cells"] if c["spec"]["model"] == "6" and c["spec"]["cell"] == "table")
    assert cell6["spec"]["frame_window_us"] == 3000 and cell6["spike"]["T"] == 4  # 3 ms windows × T
    costs = {r["model"]: r for r in doc["table6"]}
    assert costs["2"]["muls"] == 0 and costs["2"]["adds"] > 0 and costs["6"]["spikes"] is not None
    assert costs["2"]["paper_scale"]["weights"] == 784 * 512 + 512 * 10  # Table-1 MNIST MLP, analytic
    assert {r["backend"] for r in doc["cross_simulator"]} == {"reference"}
    assert len(doc["sweep"]) == 2 and {r["T"] for r in doc["sweep"]} == {2, 4}
    assert doc["tsne"] and doc["tsne"][0]["model"] == "6"
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "<link" not in html and "src='http" not in html  # self-contained
    for fig in ("fig8_mae.png", "fig10_curves.png", "fig12_tsne.png", "fig13_sweep.png"):
        assert (out / "figures" / fig).exists()
    assert "Table 6" in (out / "report.md").read_text()


def test_paper_snns_fire_at_or_above_threshold(first_run):
    """The paper's SNNs (Eq. 4: f(x) = 1 for x >= 0) are exported with the inclusive rule; the ANNs carry none."""
    from snnbridge.bridge import read_graph
    from snnbridge.bridge.metadata import semantics_from_metadata

    out, _ = first_run
    doc = json.loads((out / "results.json").read_text())
    snn_cells = [c for c in doc["cells"] if c["spec"]["model"] in ("2", "6")]
    assert snn_cells
    for c in snn_cells:
        assert c["spec"]["threshold_compare"] == "inclusive"
        graph = read_graph(c["nir"])
        assert semantics_from_metadata(graph.metadata)[0].threshold == "inclusive", c["spec"]["model"]


def test_rerun_reads_the_cache_and_adds_only_new_cells(first_run):
    out, _ = first_run
    res = reproduce("test", None, out, scheduler="synchronous", networks=["mlp"], models=["2", "5"], sweep=False,
                    progress=False)
    cells = {c["spec"]["model"]: c for c in res.document["cells"]}
    assert cells["2"]["cached"] is True and cells["5"]["cached"] is False
    assert res.document["table5"][0]["model"] == "5"


def test_dask_local_cluster_runs_a_cell(tmp_path):
    p = get_preset("test")
    w = WORKLOADS["digits-events"]
    data = prepare_workload(w, p, None, tmp_path / "cache")
    spec = sweep_specs(w, data, p, [0])[0]
    (r,) = run_cells([spec], tmp_path / "cache", scheduler="local", workers=1, progress=False)
    assert "error" not in r and r["key"] == cell_key(spec) and r["cached"] is False
    assert (tmp_path / "cache" / "cells" / f"{r['key']}.json").exists()
    (again,) = run_cells([spec], tmp_path / "cache", scheduler="local", workers=1, progress=False)
    assert again["cached"] is True and again["accuracy"] == r["accuracy"]


def test_presets_and_paper_numbers():
    assert set(PRESETS) == {"paper", "quick", "test"}
    paper = get_preset("paper")
    assert paper.structure("cifar10", "cnn") == "Input-64C3-AP2-128C3-128C3-AP2-256FC-10"
    assert paper.spike("mnist", 2).T == 500 and paper.spike("nmnist", 6).threshold == 0.3
    assert paper.train["cifar10"].optimizer == "sgd" and paper.train["cifar10"].lr_step == 35
    assert scale_structure("Input-64C3-AP2-128C3-256FC-10", 0.25) == "Input-16C3-AP2-32C3-64FC-10"
    assert paper_accuracy("dvs-cifar10", "cnn", "6") == 60.30 and paper_accuracy("nmnist", "cnn", "4") is None


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["reproduce", "--preset", "nope", "--out", str(tmp_path / "o")]) == 2
    assert main(["reproduce", "--preset", "test", "--workloads", "mnist", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown preset 'nope'" in err and "not found under --data-dir" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "report.html").exists()


def test_limited_backends_run_the_references_encoded_samples():
    """A backend limited to fewer test samples runs the very samples the reference ran (same batch boundaries:
    a Bernoulli draw for 7 images is not the first 7 of a draw for 10), so 'agreement' compares like with like."""
    import torch

    from snnbridge.data.digits import load_digits
    from snnbridge.models import Network
    from snnbridge.models.encoders import bernoulli
    from snnbridge.reproduce.evaluate import evaluate_backends

    _, _, x, y = load_digits()
    x, y = x[:12], y[:12]
    torch.manual_seed(0)
    net = Network(structure="Input-16-10", input_shape=(1, 8, 8), threshold=0.3, threshold_compare="inclusive")
    calls = []

    def make(i: int, j: int) -> torch.Tensor:
        calls.append((i, j))
        return bernoulli(x[i:j], 6, seed=100 + i)

    ev = evaluate_backends(net, make, y, ("reference", "snntorch"), {"reference": None, "snntorch": 7}, batch_size=5)
    assert calls == [(0, 5), (5, 10), (10, 12), (0, 5), (5, 10)]
    assert ev["backends"]["snntorch"]["samples"] == 7
    assert ev["backends"]["snntorch"]["agreement"] == 1.0
