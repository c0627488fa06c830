"""Event streams as tonic stores them (structured ``x, y, t [µs], p`` arrays) and their binning into frames.

Conventions (tonic's): ``sensor_size = (W, H, P)``; ``x`` is the column, ``y`` the row, ``p`` 1 = ON and
0 = OFF; a frame tensor is ``[T, P, H, W]`` with channel ``p``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from snnbridge.data.errors import DataError

EVENT_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
"""The event dtype tonic uses for N-MNIST (``t`` in microseconds, ``p`` in {0, 1})."""

FIELDS = ("x", "y", "t", "p")


def make_events(x, y, t, p) -> np.ndarray:
    """A structured event array with :data:`EVENT_DTYPE` from four equally long sequences, sorted by ``t``."""
    ev = np.zeros(len(t), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev[np.argsort(ev["t"], kind="stable")]


def check_events(events: np.ndarray, sensor_size: tuple[int, ...] | None = None) -> np.ndarray:
    """Validate an event array and return it; :class:`DataError` names the missing or bad field.

    Accepts any structured array with numeric fields ``x, y, t, p`` (tonic's NMNIST/CIFAR10DVS dtypes);
    with ``sensor_size`` also checks that ``x < W``, ``y < H`` and coordinates are >= 0.
    """
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        got = type(events).__name__ + (f" of dtype {events.dtype}" if hasattr(events, "dtype") else "")
        raise DataError(f"events must be a structured numpy array with fields {FIELDS}, got {got}")
    for f in FIELDS:
        if f not in events.dtype.names:
            raise DataError(f"events lack field '{f}' (have {', '.join(events.dtype.names)}); expected tonic's "
                            f"event dtype {EVENT_DTYPE.descr}")
        kind = events.dtype[f].kind
        if kind not in "biuf":
            raise DataError(f"event field '{f}' has non-numeric dtype {events.dtype[f]}")
    if sensor_size is not None and len(events):
        W, H = int(sensor_size[0]), int(sensor_size[1])
        for f, lim in (("x", W), ("y", H)):
            lo, hi = events[f].min(), events[f].max()
            if lo < 0 or hi >= lim:
                raise DataError(f"event field '{f}' spans [{lo}, {hi}], outside the sensor's 0..{lim - 1} "
                                f"(sensor_size={tuple(sensor_size)})")
    return events


def events_to_frames(events: np.ndarray, sensor_size: tuple[int, ...], dt_us: float | None = None,
                     n_bins: int | None = None, T: int | None = None, mode: str = "count",
                     t_start: int = 0, duration_us: float | None = None) -> torch.Tensor:
    """Bin events into frames ``[T, P, H, W]`` float32.

    Give exactly one of ``dt_us`` (bins of that many µs from ``t_start``) or ``n_bins`` (the recording,
    ``t_start`` to ``t_start + duration_us`` — default: to the last event — cut into ``n_bins`` equal bins).
    ``T`` keeps the first ``T`` bins (zero-padded when there are fewer); default: all bins.
    ``mode="count"`` counts events per pixel and bin, ``"binary"`` marks 1 where there is at least one
    (the paper's aggregation window).
    """
    check_events(events, sensor_size)
    if (dt_us is None) == (n_bins is None):
        raise ValueError("give exactly one of dt_us or n_bins")
    if mode not in ("count", "binary"):
        raise ValueError(f"mode must be 'count' or 'binary', got {mode!r}")
    W, H = int(sensor_size[0]), int(sensor_size[1])
    P = int(sensor_size[2]) if len(sensor_size) > 2 else 2
    t = events["t"].astype(np.int64) - int(t_start)
    keep = t >= 0
    if dt_us is not None:
        if dt_us <= 0:
            raise ValueError(f"dt_us must be > 0, got {dt_us}")
        b = (t // dt_us).astype(np.int64)
        n = int(b[keep].max()) + 1 if keep.any() else 0
    else:
        if n_bins <= 0:  # type: ignore[operator]
            raise ValueError(f"n_bins must be > 0, got {n_bins}")
        dur = float(duration_us) if duration_us is not None else (float(t[keep].max()) + 1 if keep.any() else 1.0)
        b = np.floor(t.astype(np.float64) * n_bins / dur).astype(np.int64)
        keep &= b < n_bins
        n = int(n_bins)  # type: ignore[arg-type]
    steps = n if T is None else int(T)
    keep &= b < steps
    p = (events["p"] > 0).astype(np.int64) if P == 2 else np.zeros(len(events), np.int64)
    flat = ((b * P + p) * H + events["y"].astype(np.int64)) * W + events["x"].astype(np.int64)
    counts = np.bincount(flat[keep], minlength=steps * P * H * W).astype(np.float32)
    frames = torch.from_numpy(counts.reshape(steps, P, H, W))
    return (frames > 0).to(torch.float32) if mode == "binary" else frames


@dataclass
class EventDataset:
    """A list of event recordings with labels.

    Attributes:
        events: one structured array per sample (fields ``x, y, t, p``; ``t`` in µs).
        labels: ``[N]`` int64 class labels.
        sensor_size: ``(W, H, P)`` as tonic writes it.
        name: a short name (``"nmnist"``, ``"emulated-digits"``).
        meta: free-form provenance (source folder, emulator settings).
    """

    events: list[np.ndarray]
    labels: np.ndarray
    sensor_size: tuple[int, int, int]
    name: str = "events"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.events) == 0:
            raise DataError(f"event dataset '{self.name}' is empty (no recordings)")
        if len(self.events) != len(self.labels):
            raise DataError(f"event dataset '{self.name}': {len(self.events)} recordings but "
                            f"{len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.events)

    def subset(self, index) -> "EventDataset":
        """The samples at ``index`` (a slice, a list or an index array)."""
        idx = np.arange(len(self))[index]
        return EventDataset([self.events[i] for i in idx], self.labels[idx], self.sensor_size, self.name,
                            dict(self.meta))

    def frames(self, T: int | None = None, dt_us: float | None = None, n_bins: int | None = None,
               mode: str = "count", duration_us: float | None = None, dtype: torch.dtype = torch.float32
               ) -> torch.Tensor:
        """All samples binned by :func:`events_to_frames`, stacked as ``[N, T, P, H, W]``.

        With ``n_bins`` and no ``duration_us``, every sample uses the dataset's longest recording as its
        duration so that bin ``k`` covers the same time span in every sample.
        """
        if n_bins is not None and duration_us is None:
            duration_us = float(max(int(e["t"].max()) for e in self.events if len(e))) + 1
        out = [events_to_frames(e, self.sensor_size, dt_us=dt_us, n_bins=n_bins, T=T, mode=mode,
                                duration_us=duration_us).to(dtype) for e in self.events]
        steps = max(f.shape[0] for f in out)
        out = [f if f.shape[0] == steps else torch.cat([f, f.new_zeros((steps - f.shape[0],) + f.shape[1:])])
               for f in out]
        return torch.stack(out)
