"""``conform(..., scheduler=...)`` / ``snnbridge conform --scheduler``: samples sharded across a real Dask cluster
(a ``dask scheduler`` and two ``dask worker`` processes on localhost) give the result of a local run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("dask.distributed")

from snnbridge.cli import main  # noqa: E402
from snnbridge.errors import SnnBridgeError  # noqa: E402
from snnbridge.validation import conform  # noqa: E402
from snnbridge.validation.distributed import split  # noqa: E402

from .test_conform_stream import timeless  # noqa: E402
from .test_validation_conformance import mlp  # noqa: E402

pytestmark = pytest.mark.slow
DASK = Path(sys.executable).with_name("dask")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two single-threaded workers on localhost; yields the scheduler's address."""
    tmp = tmp_path_factory.mktemp("dask")
    info = tmp / "scheduler.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    common = {"cwd": tmp, "env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(info)], **common)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        for i in range(2):
            procs.append(subprocess.Popen([str(DASK), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                           "--no-dashboard", "--memory-limit", "0", "--name", f"w{i}"], **common))
        from dask.distributed import Client

        with Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(5)
    return (torch.rand(20, 11, 12, generator=g) < 0.35).double(), torch.arange(11) % 4


def test_split_covers_every_sample_once():
    assert split(11, 4) == [(0, 3), (3, 6), (6, 9), (9, 11)]
    assert split(2, 5) == [(0, 1), (1, 2)]


def test_sharded_equals_local(cluster, data):
    x, y = data
    specs = ["reference", "snntorch", "reference@reset=subtract", "reference@float32"]
    local = conform(mlp(), x, specs, labels=y, batch_size=4)
    sharded = conform(mlp(), x, specs, labels=y, batch_size=4, scheduler=cluster, shards=3)
    assert timeless(sharded.to_dict()) == timeless(local.to_dict())
    assert not sharded.passed and sharded.backends["reference@reset=subtract"].first_divergent_node == "lif1"
    assert sharded.backends["reference"].recording.batch_size == 4  # the first batch, for figures


def test_cli_scheduler(cluster, tmp_path):
    from snnbridge.bridge.io import write_graph

    path = write_graph(tmp_path / "m.nir", mlp())
    npz = tmp_path / "x.npz"
    np.savez(npz, x=np.random.default_rng(0).random((9, 12)).astype(np.float32), y=np.arange(9) % 4)
    args = ["conform", str(path), "-b", "reference,snntorch", "--data", str(npz), "--samples", "9", "--T", "6",
            "--no-progress", "--batch-size", "2"]
    assert main([*args, "--scheduler", cluster, "--report", str(tmp_path / "a")]) == 0
    assert main([*args, "--report", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "report.json").read_text())
    b = json.loads((tmp_path / "b" / "report.json").read_text())
    assert timeless(a) == timeless(b)


def test_unreachable_scheduler_is_one_error(data):
    x, _ = data
    with pytest.raises(SnnBridgeError, match="cannot reach the Dask scheduler"):
        conform(mlp(), x, ["reference"], scheduler="tcp://127.0.0.1:9", shards=2)
