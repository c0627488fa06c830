"""DVS-CIFAR10 (CIFAR10-DVS) from tonic's folder layout ``CIFAR10DVS/<class>/*.aedat4``, never downloading."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snnbridge.data.errors import DatasetNotFoundError
from snnbridge.data.events import EVENT_DTYPE, EventDataset

SENSOR_SIZE = (128, 128, 2)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_HINT = ("put the recordings in {root}/CIFAR10DVS/<class>/*.aedat4 (classes: " + ", ".join(CLASSES) + "; unzip "
         "CIFAR10DVS.zip and its per-class zips from https://figshare.com/ndownloader/files/38023437, or run "
         "tonic.datasets.CIFAR10DVS(save_to='{root}') once on a machine with network access)")


def find_dvs_cifar10(root: str | Path) -> Path | None:
    """The folder whose subfolders are the ten class names (``root`` or ``root/CIFAR10DVS``), or ``None``."""
    root = Path(root)
    for cand in (root / "CIFAR10DVS", root):
        if all((cand / c).is_dir() for c in CLASSES):
            return cand
    return None


def dvs_cifar10_available(root: str | Path) -> bool:
    base = find_dvs_cifar10(root)
    return base is not None and any(base.glob("*/*.aedat4"))


def _read(path: Path) -> np.ndarray:
    from tonic.io import read_aedat4

    raw = read_aedat4(str(path))
    names = raw.dtype.names
    ev = np.zeros(len(raw), dtype=EVENT_DTYPE)
    for f, src in zip(("t", "x", "y", "p"), names):
        ev[f] = raw[src].astype(np.int64)
    ev["t"] -= ev["t"].min() if len(ev) else 0
    return ev


def load_dvs_cifar10(root: str | Path, train: bool = True, test_fraction: float = 0.1, limit: int | None = None,
                     seed: int = 0) -> EventDataset:
    """DVS-CIFAR10 with the paper's random 9,000/1,000 split (``test_fraction=0.1``, seeded).

    ``limit`` keeps a seeded random subset of the chosen split.  Raises :class:`DatasetNotFoundError`.
    """
    base = find_dvs_cifar10(root)
    if base is None:
        raise DatasetNotFoundError(f"DVS-CIFAR10 not found under {root}; " + _HINT.format(root=root))
    files = [(f, k) for k, c in enumerate(CLASSES) for f in sorted((base / c).glob("*.aedat4"))]
    if not files:
        raise DatasetNotFoundError(f"no .aedat4 recordings under {base}; " + _HINT.format(root=root))
    perm = np.random.default_rng(seed).permutation(len(files))
    n_test = int(round(len(files) * test_fraction))
    idx = np.sort(perm[n_test:] if train else perm[:n_test])
    if limit is not None and limit < len(idx):
        idx = np.sort(np.random.default_rng(seed + 1).permutation(idx)[:limit])
    events = [_read(files[i][0]) for i in idx]
    return EventDataset(events, np.array([files[i][1] for i in idx]), SENSOR_SIZE, "dvs-cifar10",
                        {"source": str(base)})
