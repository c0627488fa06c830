"""DVS-CIFAR10 (CIFAR10-DVS) from tonic's folder layout ``CIFAR10DVS/<class>/*.aedat4``, never downloading.

The recordings are 128×128; the paper's networks take them at **42×42** (Wu et al. 2019, which the paper
follows; its cost table only fits 42×42).  :func:`downsample_events` does it on the events themselves: each
coordinate is scaled by ``size/128`` and floored (``x' = ⌊x·42/128⌋``), so an output pixel bins the events of a
≈3×3 block of sensor pixels; frames are then binned from the downsampled events as usual (``mode="binary"``
marks a pixel when any of its block's events fell in the window, ``"count"`` adds them up).  ``size=128`` keeps
the sensor resolution.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snnbridge.data.errors import DatasetNotFoundError
from snnbridge.data.events import EVENT_DTYPE, EventDataset

SENSOR_SIZE = (128, 128, 2)
PAPER_SIZE = 42
"""Side of the frames the paper's DVS-CIFAR10 networks take (Table 1 input ``2×42×42``)."""
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


def downsample_events(events: np.ndarray, size: int = PAPER_SIZE, sensor: int = SENSOR_SIZE[0]) -> np.ndarray:
    """Events of a ``sensor × sensor`` recording on a ``size × size`` grid: ``x' = ⌊x·size/sensor⌋`` (same for
    ``y``); times and polarities unchanged, so binning the result counts every event of a sensor block."""
    if not 0 < size <= sensor:
        raise ValueError(f"size must be in 1..{sensor}, got {size}")
    out = events.copy()
    if size != sensor:
        for f in ("x", "y"):
            out[f] = (events[f].astype(np.int64) * size) // sensor
    return out


def load_dvs_cifar10(root: str | Path, train: bool = True, test_fraction: float = 0.1, limit: int | None = None,
                     seed: int = 0, size: int = PAPER_SIZE) -> EventDataset:
    """DVS-CIFAR10 with the paper's random 9,000/1,000 split (``test_fraction=0.1``, seeded), events on a
    ``size × size`` grid (default 42, the paper's; 128 keeps the sensor's resolution).

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
    events = [downsample_events(_read(files[i][0]), size) for i in idx]
    return EventDataset(events, np.array([files[i][1] for i in idx]), (size, size, 2), "dvs-cifar10",
                        {"source": str(base), "downsampled_from": SENSOR_SIZE[:2], "size": size})
