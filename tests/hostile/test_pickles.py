"""Class 1 — nothing a user loads can execute code: a real malicious pickle in every place that loads one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snnbridge.errors import SnnBridgeError
from snnbridge.models import Network
from tests.hostile.conftest import cli, one_line_error


class Payload:
    """Unpickling this calls ``open(marker, "w")``: a file appears if the loader executes code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant(path, marker, fmt: str | None):
    blob = {"evil": Payload(str(marker)), "state_dict": {}, "config": {}}
    if fmt is not None:
        blob["format"] = fmt
    torch.save(blob, path)
    return path


def _load_network(p):
    return Network.load(p)


def _load_training(p):
    from snnbridge.models.training import load_checkpoint

    return load_checkpoint(p)


def _load_workload(p):
    from snnbridge.reproduce.workloads import read_prepared

    return read_prepared(p)


def _resume_training(p):
    from snnbridge.models.training import train

    net = Network(structure="Input-4-2", input_shape=(3,))
    return train(net, torch.rand(4, 3), torch.tensor([0, 1, 0, 1]), epochs=1, T=2, checkpoint=p, progress=False)


LOADERS = {"network": (_load_network, "snnbridge-network/1"),
           "training": (_load_training, "snnbridge-training/1"),
           "workload-cache": (_load_workload, "snnbridge-workload/1"),
           "train-resume": (_resume_training, "snnbridge-training/1")}


@pytest.mark.parametrize("where", sorted(LOADERS))
@pytest.mark.parametrize("with_format", [True, False])
def test_malicious_pickle_never_runs(tmp_path, where, with_format):
    marker = tmp_path / "pwned"
    fn, fmt = LOADERS[where]
    p = _plant(tmp_path / "evil.pt", marker, fmt if with_format else None)
    with pytest.raises(SnnBridgeError, match="refused|never unpickles"):
        fn(p)
    assert not marker.exists()


def test_cli_export_malicious_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    p = _plant(tmp_path / "evil.pt", marker, "snnbridge-network/1")
    out = tmp_path / "m.nir"
    r = cli("export", p, "-o", out)
    one_line_error(r)
    assert not marker.exists() and not out.exists()


def test_safe_files_still_load(tmp_path):
    """The safe formats round-trip: a network checkpoint and a workload cache of events."""
    from snnbridge.data.events import EventDataset, make_events
    from snnbridge.fileio import load_tensors, save_tensors
    from snnbridge.reproduce.workloads import CACHE_FORMAT, _pack, _unpack

    torch.manual_seed(0)
    net = Network(structure="Input-8-3", input_shape=(5,))
    back = Network.load(net.save(tmp_path / "n.pt"))
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), back.state_dict().values()))
    rng = np.random.default_rng(0)
    evs = [make_events(rng.integers(0, 34, n), rng.integers(0, 34, n), np.sort(rng.integers(0, 10**5, n)),
                       rng.integers(0, 2, n)) for n in (5, 0, 17)]
    ds = EventDataset(evs, np.array([1, 2, 3]), (34, 34, 2), "t")
    save_tensors(tmp_path / "c.pt", {"format": CACHE_FORMAT, "train": _pack(ds)})
    got = _unpack(load_tensors(tmp_path / "c.pt")["train"])
    assert all((a == b).all() for a, b in zip(got.events, ds.events)) and list(got.labels) == [1, 2, 3]
