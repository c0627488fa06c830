"""``snnbridge conform`` / ``compare`` / ``costs`` exit codes (0 pass, 1 fail, 2 bad input) and the --data resolver."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from snnbridge.bridge.export import export
from snnbridge.cli import main
from snnbridge.errors import InputError
from snnbridge.models import Network
from snnbridge.validation.sources import DataRequest, resolve


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    net = Network(structure="Input-16-10", input_shape=(1, 8, 8), decay=0.25, threshold=0.5)
    with torch.no_grad():
        for mod in net.synapses.values():
            if hasattr(mod, "weight"):
                mod.weight.mul_(3.0)
    return export(net, tmp_path_factory.mktemp("m") / "model.nir")


def run(*args) -> int:
    return main([str(a) for a in args])


FAST = ("--samples", 6, "--T", 5, "--no-progress")


def test_exit_0_pass_writes_report(model, tmp_path):
    out = tmp_path / "rep"
    assert run("conform", model, "-b", "reference", *FAST, "--report", out) == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["passed"] and doc["data"]["samples"] == 6 and doc["data"]["steps"] == 5
    assert {p.name for p in out.iterdir()} == {"report.html", "summary.md", "report.json", "model.nir",
                                               ".snnbridge-output"}


def test_exit_1_planted_failure(model, tmp_path):
    assert run("conform", model, "-b", "reference,reference@reset=subtract", *FAST, "--report", tmp_path / "r") == 1
    assert run("compare", tmp_path / "r", tmp_path / "r") == 0


def test_unknown_backend_is_bad_input(model):
    assert run("conform", model, "-b", "reference,reference-missing@float32", *FAST) == 2


@pytest.mark.parametrize("args", [
    ("conform", "/nonexistent/model.nir", "-b", "reference"),
    ("conform", "{model}", "-b", "nosuch"),
    ("conform", "{model}", "-b", "reference@reset=sideways", "--samples", 2),
    ("conform", "{model}", "-b", "reference", "--profile", "float16"),
    ("conform", "{model}", "-b", "reference", "--data", "cifar-from-the-moon"),
    ("conform", "{model}", "-b", "reference", "--samples", 0),
    ("conform", "{model}", "-b", "reference", "--reset", "sideways", "--samples", 2),
    ("compare", "/nonexistent/a.json", "/nonexistent/b.json"),
])
def test_exit_2_bad_input(model, tmp_path, args):
    out = tmp_path / "rep"
    args = [str(model) if a == "{model}" else a for a in args]
    extra = ["--report", out, "--no-progress"] if args[0] == "conform" else []
    assert run(*args, *extra) == 2
    assert not out.exists()  # nothing half-written


def test_npz_data_both_layouts(model, tmp_path):
    g = np.random.default_rng(0)
    spikes = (g.random((5, 7, 1, 8, 8)) < 0.3).astype(np.float32)
    np.savez(tmp_path / "spk.npz", x=spikes, y=np.arange(7) % 10)
    np.savez(tmp_path / "img.npz", x=g.random((9, 64)).astype(np.float32))
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 5)))
    req = DataRequest((1, 8, 8), samples=4, T=6, seed=1)
    d = resolve(str(tmp_path / "spk.npz"), req)
    assert d.x.shape == (5, 4, 1, 8, 8) and d.y.tolist() == [0, 1, 2, 3]
    d = resolve(str(tmp_path / "img.npz"), req)
    assert d.x.shape == (6, 4, 1, 8, 8) and d.y is None and set(d.x.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(InputError, match="expected"):
        resolve(str(tmp_path / "bad.npz"), req)
    assert run("conform", model, "-b", "reference", "--data", tmp_path / "spk.npz", "--no-progress") == 0


def test_digits_resolver_fits_the_input():
    d = resolve("digits", DataRequest((64,), samples=3, T=4))
    assert d.x.shape == (4, 3, 64) and d.y.shape == (3,)
    assert resolve("digits", DataRequest((1, 8, 8), samples=3, T=4)).x.shape == (4, 3, 1, 8, 8)
    with pytest.raises(InputError):
        resolve("digits", DataRequest((3, 8, 8), samples=3, T=4))


def test_costs_command(capsys):
    assert run("costs", "Input-512-10", "--input-shape", "784") == 0
    assert "406,528" in capsys.readouterr().out
    assert run("costs", "Input-512-10", "--input-shape", "x") == 2


@pytest.mark.shared
def test_shared_dataset_folders_resolve():
    from tests.conftest import SHARED

    root = SHARED / "data"
    if not (root / "NMNIST").is_dir() or not (root / "MNIST").is_dir():
        pytest.skip("needs ../shared/data with NMNIST and MNIST")
    d = resolve(str(root), DataRequest((2, 34, 34), samples=3, T=5))  # the folder holding both: N-MNIST fits
    assert d.x.shape == (5, 3, 2, 34, 34) and "N-MNIST" in d.description
    d = resolve(str(root), DataRequest((784,), samples=3, T=5))  # ... and MNIST fits an MLP
    assert d.x.shape == (5, 3, 784) and "MNIST" in d.description and d.y.shape == (3,)


def test_random_spike_data_for_any_input_shape(tmp_path):
    """``--data random[:P]``: seeded Bernoulli spikes of the model's own input shape (what the matrix uses), for a
    model whose data is not at hand; memory is checked before drawing; a bad probability is bad input."""
    from snnbridge.bridge.io import write_graph
    from snnbridge.bridge.limits import ResourceLimitError, memory_budget
    from snnbridge.validation.random_graphs import random_case

    d = resolve("random:0.3", DataRequest((2, 5, 7), samples=4, T=6, seed=2))
    assert d.x.shape == (6, 4, 2, 5, 7) and d.y is None and set(d.x.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(d.x, resolve("random:0.3", DataRequest((2, 5, 7), samples=4, T=6, seed=2)).x)
    assert not torch.equal(d.x, resolve("random:0.3", DataRequest((2, 5, 7), samples=4, T=6, seed=3)).x)
    with pytest.raises(InputError, match="probability"):
        resolve("random:2", DataRequest((3,), samples=2, T=2))
    with memory_budget("1MB"), pytest.raises(ResourceLimitError):
        resolve("random", DataRequest((1000,), samples=100, T=100))
    path = write_graph(tmp_path / "r.nir", random_case(5).graph)
    assert run("conform", path, "-b", "reference,snntorch,norse", "--data", "random:0.3", "--samples", 3, "--T", 8,
               "--no-progress", "--report", tmp_path / "rep") == 0
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["data"]["description"].startswith("random")
    assert run("conform", path, "-b", "reference", "--data", "random:x", "--no-progress") == 2
