"""N-MNIST from the standard folder layout ``{Train,Test}/<digit>/<id>.bin`` (any subset size), never downloading."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snnbridge.data.errors import DataError, DatasetNotFoundError
from snnbridge.data.events import EVENT_DTYPE, EventDataset

SENSOR_SIZE = (34, 34, 2)
"""N-MNIST's ATIS crop, ``(W, H, P)``."""

_HINT = ("put the N-MNIST recordings in {root}/NMNIST/Train/<digit>/*.bin and {root}/NMNIST/Test/<digit>/*.bin "
         "(unzip Train.zip/Test.zip from https://www.garrickorchard.com/datasets/n-mnist, or run "
         "tonic.datasets.NMNIST(save_to='{root}') once on a machine with network access)")


def find_nmnist(root: str | Path) -> Path | None:
    """The folder holding ``Train``/``Test`` under ``root`` (``root``, ``root/NMNIST`` or tonic's
    ``root/NMNIST/NMNIST``), or ``None``."""
    root = Path(root)
    for cand in (root, root / "NMNIST", root / "NMNIST" / "NMNIST"):
        if (cand / "Train").is_dir() or (cand / "Test").is_dir():
            return cand
    return None


def nmnist_available(root: str | Path) -> bool:
    """Whether ``root`` holds N-MNIST recordings in the standard layout."""
    base = find_nmnist(root)
    return base is not None and any(base.glob("T*/*/*.bin"))


def read_nmnist_file(path: str | Path) -> np.ndarray:
    """One N-MNIST ``.bin`` recording (40-bit events) as a :data:`EVENT_DTYPE` array (``t`` in µs).

    The same decoding as ``tonic.io.read_mnist_file`` (x, y: one byte each; p: bit 7 of byte 3; t: 23 bits),
    with one clear :class:`DataError` for a FIFO/device, an oversized or a truncated file.
    """
    from snnbridge.bridge import limits
    from snnbridge.fileio import check_input_file

    path = check_input_file(path, "an N-MNIST .bin recording", DataError)
    size = path.stat().st_size
    limits.check_bytes(size // 5 * EVENT_DTYPE.itemsize, f"reading {path}", f"{size // 5:,} events")
    raw = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    if raw.size % 5:
        raise DataError(f"{path}: truncated N-MNIST recording ({raw.size} bytes is not a multiple of the 5-byte "
                        "event size)")
    raw = raw.reshape(-1, 5).astype(np.int64)
    ev = np.empty(len(raw), dtype=EVENT_DTYPE)
    ev["x"], ev["y"] = raw[:, 0], raw[:, 1]
    ev["p"] = raw[:, 2] >> 7
    ev["t"] = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    return ev


def load_nmnist(root: str | Path, train: bool = True, limit: int | None = None, per_class: int | None = None,
                seed: int = 0) -> EventDataset:
    """Read the ``Train`` (or ``Test``) recordings under ``root`` (see :func:`find_nmnist`).

    ``per_class`` keeps the first that many files of each digit (sorted by name); ``limit`` then takes a
    seeded random subset of that many.  Raises :class:`DatasetNotFoundError` with where to put the files.
    """
    base = find_nmnist(root)
    split = "Train" if train else "Test"
    folder = None if base is None else base / split
    if folder is None or not folder.is_dir():
        raise DatasetNotFoundError(f"N-MNIST {split} folder not found under {root}; " + _HINT.format(root=root))
    files: list[tuple[Path, int]] = []
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()):
        fs = sorted(d.glob("*.bin"))
        files.extend((f, int(d.name)) for f in (fs[:per_class] if per_class else fs))
    if not files:
        raise DatasetNotFoundError(f"no .bin recordings in {folder}/<digit>/; " + _HINT.format(root=root))
    if limit is not None and limit < len(files):
        idx = np.sort(np.random.default_rng(seed).permutation(len(files))[:limit])
        files = [files[i] for i in idx]
    events = [read_nmnist_file(f) for f, _ in files]
    return EventDataset(events, np.array([lab for _, lab in files]), SENSOR_SIZE, "nmnist",
                        {"source": str(folder), "files": len(files)})


def write_nmnist_file(path: str | Path, events: np.ndarray) -> Path:
    """Write events in N-MNIST's 40-bit ``.bin`` format (x, y: 8 bits; p: bit 23; t: 23 bits in µs).

    The inverse of :func:`read_nmnist_file` for ``t < 2^23`` µs (8.4 s) and coordinates < 256.
    """
    from snnbridge.data.events import check_events

    check_events(events)
    t = events["t"].astype(np.int64)
    if len(events) and (t.min() < 0 or t.max() >= 1 << 23):
        raise DataError(f"event field 't' spans [{t.min()}, {t.max()}] µs; the N-MNIST format holds 0..2^23-1")
    for f in ("x", "y"):
        if len(events) and (events[f].min() < 0 or events[f].max() > 239):
            raise DataError(f"event field '{f}' must be in 0..239 for the N-MNIST format")
    raw = np.zeros((len(events), 5), dtype=np.uint8)
    raw[:, 0] = events["x"]
    raw[:, 1] = events["y"]
    raw[:, 2] = ((events["p"] > 0).astype(np.int64) << 7) | ((t >> 16) & 0x7F)
    raw[:, 3] = (t >> 8) & 0xFF
    raw[:, 4] = t & 0xFF
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw.tobytes())
    return path


def write_nmnist_folder(root: str | Path, train: EventDataset, test: EventDataset) -> Path:
    """Write two event datasets in the standard layout ``root/NMNIST/{Train,Test}/<label>/<id>.bin``.

    Written to a temporary sibling folder and renamed into place; refuses to overwrite an existing folder.
    """
    import shutil

    from snnbridge.fileio import OutputError, publish_dir, tmp_dir

    final = Path(root) / "NMNIST"
    if final.exists() or final.is_symlink():
        raise DataError(f"{final} exists; remove it or choose another --out")
    if final.parent.exists() and not final.parent.is_dir():
        raise OutputError(f"{final.parent}: exists and is not a folder")
    try:
        tmp = tmp_dir(final.parent, "NMNIST")
    except OSError as e:
        raise OutputError(f"{final.parent}: cannot write here: {e.strerror or e}") from None
    try:
        for split, ds in (("Train", train), ("Test", test)):
            for i, (ev, lab) in enumerate(zip(ds.events, ds.labels)):
                write_nmnist_file(tmp / split / str(int(lab)) / f"{i:05d}.bin", ev)
        publish_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
