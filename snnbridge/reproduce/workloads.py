"""The paper's workloads (datasets × domain), found offline or under ``--data-dir``, prepared once and cached.

ANN-oriented (static images; Models 1-3): ``digits`` (embedded, framed like MNIST; stands in for MNIST),
``mnist``, ``cifar10``.  SNN-oriented (events; Models 4-6): ``digits-events`` (the emulator on the embedded
digits; stands in for N-MNIST), ``nmnist``, ``dvs-cifar10``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from snnbridge.data import (
    EmulatorConfig,
    EventDataset,
    cifar10_available,
    dvs_cifar10_available,
    emulate_dataset,
    load_cifar10,
    load_digits_mnist_like,
    load_dvs_cifar10,
    load_mnist,
    load_nmnist,
    mnist_available,
    nmnist_available,
)
from snnbridge.errors import SnnBridgeError
from snnbridge.fileio import load_tensors, save_tensors
from snnbridge.models.presets import Preset


@dataclass(frozen=True)
class Workload:
    """One dataset of the study.

    Attributes:
        name: workload name (``"digits"``, ``"mnist"``, ``"digits-events"``, ``"nmnist"``, ...).
        kind: ``"ann"`` (ANN-oriented, static images) or ``"snn"`` (SNN-oriented, events).
        paper: the paper's dataset column it reproduces or stands in for.
        offline: built in (always available).
    """

    name: str
    kind: str
    paper: str
    offline: bool = False

    @property
    def models(self) -> tuple[str, ...]:
        """The paper's models on this workload (``3b``: Model-3 with an encoding layer)."""
        return ("1", "2", "3", "3b") if self.kind == "ann" else ("4", "5", "6")


WORKLOADS = {w.name: w for w in (
    Workload("digits", "ann", "mnist", offline=True),
    Workload("mnist", "ann", "mnist"),
    Workload("cifar10", "ann", "cifar10"),
    Workload("digits-events", "snn", "nmnist", offline=True),
    Workload("nmnist", "snn", "nmnist"),
    Workload("dvs-cifar10", "snn", "dvs-cifar10"),
)}

_AVAILABLE = {"mnist": mnist_available, "cifar10": cifar10_available, "nmnist": nmnist_available,
              "dvs-cifar10": dvs_cifar10_available}


def available_workloads(data_dir: str | Path | None) -> list[Workload]:
    """The offline workloads plus those whose data is under ``data_dir``."""
    out = [w for w in WORKLOADS.values() if w.offline]
    if data_dir is not None:
        out += [WORKLOADS[n] for n, ok in _AVAILABLE.items() if ok(data_dir)]
    return out


def _offline_split(preset: Preset, seed: int):
    xtr, ytr, xte, yte = load_digits_mnist_like(seed=seed)
    f = preset.offline_fraction
    if f < 1.0:
        xtr, ytr = xtr[:max(20, int(len(ytr) * f))], ytr[:max(20, int(len(ytr) * f))]
        xte, yte = xte[:max(10, int(len(yte) * f))], yte[:max(10, int(len(yte) * f))]
    return xtr, ytr, xte, yte


def _limit(preset: Preset, train: bool) -> int | None:
    return preset.train_limit if train else preset.test_limit


def load_workload(w: Workload, preset: Preset, data_dir: str | Path | None, seed: int = 0) -> dict:
    """The workload's data: static → ``{"x_train", "y_train", "x_test", "y_test"}`` tensors (images in [0, 1]);
    events → ``{"train": EventDataset, "test": EventDataset}``."""
    if w.name == "digits":
        xtr, ytr, xte, yte = _offline_split(preset, seed)
    elif w.name == "digits-events":
        xtr, ytr, xte, yte = _offline_split(preset, seed)
        cfg = EmulatorConfig()
        return {"train": emulate_dataset(xtr, ytr, cfg, seed=seed, name="digits-events"),
                "test": emulate_dataset(xte, yte, cfg, seed=seed + 1, name="digits-events")}
    elif w.name in ("mnist", "cifar10"):
        if data_dir is None:
            raise SnnBridgeError(f"workload '{w.name}' needs --data-dir")
        fn = load_mnist if w.name == "mnist" else load_cifar10
        xtr, ytr, xte, yte = fn(data_dir, _limit(preset, True), _limit(preset, False), seed)
    elif w.name == "nmnist":
        return {"train": load_nmnist(data_dir, True, _limit(preset, True), seed=seed),  # type: ignore[arg-type]
                "test": load_nmnist(data_dir, False, _limit(preset, False), seed=seed)}  # type: ignore[arg-type]
    elif w.name == "dvs-cifar10":
        return {"train": load_dvs_cifar10(data_dir, True, limit=_limit(preset, True), seed=seed),  # type: ignore[arg-type]
                "test": load_dvs_cifar10(data_dir, False, limit=_limit(preset, False), seed=seed)}  # type: ignore[arg-type]
    else:
        raise SnnBridgeError(f"unknown workload '{w.name}'; known: {', '.join(WORKLOADS)}")
    return {"x_train": xtr, "y_train": ytr, "x_test": xte, "y_test": yte}


DATA_VERSION = 3
"""Bump when the preparation of a workload changes (invalidates cached data files)."""

CACHE_FORMAT = "snnbridge-workload/1"
"""The ``format`` field of a prepared-workload cache file (tensors and plain containers only)."""


def _fingerprint(w: Workload, preset: Preset, data_dir: str | Path | None, seed: int) -> str:
    src: dict = {"version": DATA_VERSION, "workload": w.name, "seed": seed,
                 "limits": [preset.train_limit, preset.test_limit], "fraction": preset.offline_fraction}
    if w.name == "digits-events":
        src["emulator"] = asdict(EmulatorConfig())
    if not w.offline and data_dir is not None:
        src["data_dir"] = str(Path(data_dir).resolve())
    return hashlib.sha256(json.dumps(src, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare_workload(w: Workload, preset: Preset, data_dir: str | Path | None, cache: str | Path, seed: int = 0
                     ) -> Path:
    """Load the workload once and cache it as ``<cache>/data/<name>-<hash>.pt`` (what cells read)."""
    path = Path(cache) / "data" / f"{w.name}-{_fingerprint(w, preset, data_dir, seed)}.pt"
    if path.exists():
        return path
    data = load_workload(w, preset, data_dir, seed)
    blob = {"format": CACHE_FORMAT, "workload": asdict(w)}
    for k, v in data.items():
        blob[k] = _pack(v) if isinstance(v, EventDataset) else v
    save_tensors(path, blob)
    return path


def read_prepared(path: str | Path) -> dict:
    """Inverse of :func:`prepare_workload`: tensors or :class:`EventDataset` by split.

    Read with ``weights_only=True`` (tensors and plain containers only): nothing in the file can run code.
    """
    blob = load_tensors(path, "a prepared-workload cache file")
    if not isinstance(blob, dict) or blob.get("format") != CACHE_FORMAT:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise SnnBridgeError(f"{path}: not an snnbridge workload cache (format {found!r}, expected {CACHE_FORMAT!r}); "
                             "delete it to have it rebuilt")
    try:
        return {k: _unpack(v) if isinstance(v, dict) and "offsets" in v else v for k, v in blob.items()
                if k != "format"}
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise SnnBridgeError(f"{path}: workload cache is damaged ({type(e).__name__}: {e}); delete it") from None


_PACKED = {"x": np.int16, "y": np.int16, "t": np.int64, "p": np.int8}


def _pack(ds: EventDataset) -> dict:
    """Events of a dataset as four compact concatenated columns plus per-recording offsets (all tensors, so the
    file loads with ``weights_only=True``)."""
    cat = {f: torch.from_numpy(np.concatenate([e[f] for e in ds.events]).astype(dt)) for f, dt in _PACKED.items()}
    return {**cat, "offsets": torch.from_numpy(np.cumsum([0] + [len(e) for e in ds.events]).astype(np.int64)),
            "labels": torch.from_numpy(np.asarray(ds.labels).astype(np.int64)),
            "sensor_size": tuple(int(s) for s in ds.sensor_size), "name": str(ds.name)}


def _unpack(v: dict) -> EventDataset:
    from snnbridge.data.events import EVENT_DTYPE

    off = np.asarray(v["offsets"]).astype(np.int64)
    cols = {f: np.asarray(v[f]) for f in _PACKED}
    if len(off) == 0 or off[0] != 0 or np.any(np.diff(off) < 0) or any(len(c) != off[-1] for c in cols.values()):
        raise ValueError("event offsets do not match the event columns")
    events = []
    for a, b in zip(off[:-1], off[1:]):
        ev = np.zeros(int(b - a), dtype=EVENT_DTYPE)
        for f in _PACKED:
            ev[f] = cols[f][a:b]
        events.append(ev)
    return EventDataset(events, np.asarray(v["labels"]), tuple(v["sensor_size"]), v["name"])
