"""On-disk datasets: N-MNIST reader (real files when ../shared is present), format round trip, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snnbridge.data import (
    DatasetNotFoundError,
    load_cifar10,
    load_dvs_cifar10,
    load_mnist,
    load_nmnist,
    make_events,
    nmnist_available,
    read_nmnist_file,
    write_nmnist_file,
)
from snnbridge.data.emulator import emulate_dataset
from snnbridge.data.events import EventDataset
from snnbridge.data.nmnist import write_nmnist_folder

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "data"


def _need(p: Path) -> None:
    if not p.exists():
        pytest.skip(f"{p} not available (needs ../shared)")


@pytest.mark.shared
def test_real_nmnist_subset():
    _need(DATA / "NMNIST")
    ds = load_nmnist(DATA, train=False, per_class=2)
    assert len(ds) == 20 and sorted(set(ds.labels.tolist())) == list(range(10))
    ev = ds.events[0]
    assert ev.dtype.names == ("x", "y", "t", "p") and len(ev) > 500
    assert ev["x"].max() < 34 and ev["y"].max() < 34 and 250_000 < ev["t"].max() < 330_000
    sub = load_nmnist(DATA / "NMNIST", train=True, limit=7, seed=1)  # the folder itself works too
    assert len(sub) == 7 and nmnist_available(DATA)
    f = ds.frames(n_bins=5, mode="binary")
    assert f.shape == (20, 5, 2, 34, 34) and f.max() == 1


@pytest.mark.shared
def test_real_mnist_loader():
    _need(DATA / "MNIST" / "raw")
    xtr, ytr, xte, yte = load_mnist(DATA, train_limit=50, test_limit=20)
    assert xtr.shape == (50, 1, 28, 28) and xte.shape == (20, 1, 28, 28)
    assert 0 <= float(xtr.min()) and float(xtr.max()) <= 1 and ytr.dtype.is_floating_point is False


def test_bin_format_round_trip(tmp_path):
    ev = make_events([0, 33, 5], [1, 2, 33], [0, 70_000, 8_000_000], [1, 0, 1])
    p = write_nmnist_file(tmp_path / "a.bin", ev)
    assert np.array_equal(read_nmnist_file(p), ev)


def test_emulated_folder_reads_back(tmp_path):
    import torch

    img = torch.zeros(3, 1, 28, 28)
    img[:, 0, 8:20, 12:16] = 1
    train = emulate_dataset(img, [1, 7, 7], seed=0)
    test = EventDataset(train.events[:1], [1], train.sensor_size)
    root = write_nmnist_folder(tmp_path, train, test)
    back = load_nmnist(tmp_path, train=True)
    assert sorted(back.labels.tolist()) == [1, 7, 7]
    assert sum(len(e) for e in back.events) == sum(len(e) for e in train.events)
    with pytest.raises(Exception, match="exists"):
        write_nmnist_folder(tmp_path, train, test)
    assert root.name == "NMNIST"


@pytest.mark.parametrize("loader, where", [
    (lambda d: load_nmnist(d), "NMNIST/Train"),
    (lambda d: load_mnist(d), "MNIST/raw"),
    (lambda d: load_cifar10(d), "cifar-10-batches-py"),
    (lambda d: load_dvs_cifar10(d), "CIFAR10DVS"),
])
def test_missing_data_says_where_to_put_it(tmp_path, loader, where):
    with pytest.raises(DatasetNotFoundError, match=where):
        loader(tmp_path)


def test_empty_nmnist_folder(tmp_path):
    (tmp_path / "NMNIST" / "Train" / "3").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="no .bin recordings"):
        load_nmnist(tmp_path)


def test_cli_emulate_writes_a_readable_folder(tmp_path, capsys):
    from snnbridge.cli import main

    assert main(["data", "emulate", "--out", str(tmp_path), "--limit", "12"]) == 0
    assert len(load_nmnist(tmp_path, train=True)) == 12 and len(load_nmnist(tmp_path, train=False)) == 2
    assert main(["data", "emulate", "--out", str(tmp_path), "--limit", "12"]) == 2  # never overwrites
    assert "exists" in capsys.readouterr().err
