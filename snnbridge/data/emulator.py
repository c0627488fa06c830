"""An event-camera emulator: static images → N-MNIST-like event streams, so SNN-oriented workloads run offline.

Model (after N-MNIST's recording, Orchard et al. 2015): the image sits on a dark background in front of a
``34 x 34`` sensor that makes three ~105 ms saccades along N-MNIST's triangular path (image offset
``(0,0) → (3.5,7) → (7,0) → (0,0)`` pixels, the motion tonic's ``stabilize`` undoes).  Every pixel is a
log-intensity change detector: it keeps a reference ``L_ref`` and emits one ON (``p=1``) or OFF (``p=0``)
event per crossing of ``±C`` by ``log(b + I) - L_ref`` (per-pixel threshold mismatch ``C·(1 + σ·n)``),
with crossing times interpolated inside each simulation step, plus Poisson background noise.
Output: tonic's event dtype (``x, y, t [µs], p``), sorted by ``t``.

The defaults are calibrated on real MNIST digits against the real N-MNIST recordings; see
:func:`event_statistics` / :func:`paired_event_statistics` and ``docs/reproduce.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from snnbridge.data.errors import DataError
from snnbridge.data.events import EVENT_DTYPE, EventDataset

NMNIST_PATH = ((0.0, 0.0), (3.5, 7.0), (7.0, 0.0), (0.0, 0.0))
"""N-MNIST's saccade path: image offset ``(dx, dy)`` in pixels at the start and after each saccade."""


@dataclass(frozen=True)
class EmulatorConfig:
    """Settings of :func:`emulate_events` (times in µs, intensities in [0, 1], thresholds in log units).

    Attributes:
        sensor_size: ``(W, H)`` of the sensor.
        image_size: images are resized (bilinear) to ``image_size x image_size`` before the saccades.
        saccade_us: duration of one saccade.
        path: image offset ``(dx, dy)`` at the vertices of the saccade path (len = saccades + 1).
        origin: top-left sensor position ``(x, y)`` of the image at offset ``(0, 0)``.
        step_us: simulation step (sub-step crossing times are interpolated).
        contrast: log-intensity contrast threshold ``C``.
        contrast_sigma: relative per-pixel threshold mismatch ``σ``.
        background: intensity floor ``b`` of the log (the display's black level).
        noise_hz: Poisson background events per pixel and second.
    """

    sensor_size: tuple[int, int] = (34, 34)
    image_size: int = 28
    saccade_us: int = 105_000
    path: tuple[tuple[float, float], ...] = NMNIST_PATH
    origin: tuple[float, float] = (-1.0, 1.0)
    step_us: int = 1000
    contrast: float = 0.5
    contrast_sigma: float = 0.05
    background: float = 0.15
    noise_hz: float = 0.3

    @property
    def duration_us(self) -> int:
        return self.saccade_us * (len(self.path) - 1)

    def offset(self, t_us: np.ndarray) -> np.ndarray:
        """Image offset ``[len(t), 2]`` (dx, dy) in pixels at times ``t_us`` (piecewise linear along ``path``)."""
        knots = np.arange(len(self.path)) * self.saccade_us
        p = np.asarray(self.path, dtype=np.float64)
        return np.stack([np.interp(t_us, knots, p[:, 0]), np.interp(t_us, knots, p[:, 1])], axis=-1)


def _render(images: torch.Tensor, cfg: EmulatorConfig, dx: float, dy: float) -> torch.Tensor:
    """The images ``[N, 1, S, S]`` seen by the sensor with the image shifted by ``(dx, dy)``: ``[N, H, W]``."""
    W, H = cfg.sensor_size
    S = images.shape[-1]
    # sensor pixel centre (c, r) samples image coordinate (c - ox, r - oy); align_corners=True maps -1..1 to 0..S-1
    cols = torch.arange(W, dtype=torch.float32) - (cfg.origin[0] + dx)
    rows = torch.arange(H, dtype=torch.float32) - (cfg.origin[1] + dy)
    gx = (2 * cols / (S - 1) - 1).view(1, 1, W).expand(1, H, W)
    gy = (2 * rows / (S - 1) - 1).view(1, H, 1).expand(1, H, W)
    grid = torch.stack([gx, gy], dim=-1).expand(images.shape[0], H, W, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[:, 0]


def _prepare(images: torch.Tensor | np.ndarray, size: int) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images).to(torch.float32)
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4:
        raise DataError(f"images must be [N, H, W] or [N, C, H, W], got shape {list(x.shape)}")
    if x.shape[0] == 0:
        raise DataError("no images to emulate (empty image set)")
    if x.shape[1] > 1:  # colour → luminance
        x = x.mean(1, keepdim=True)
    if x.max() > 1.0 + 1e-6:
        x = x / 255.0
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.clamp(0, 1)


def emulate_events(images: torch.Tensor | np.ndarray, config: EmulatorConfig | None = None, seed: int = 0,
                   chunk: int = 256) -> list[np.ndarray]:
    """Turn static images ``[N, (C,) H, W]`` (in [0, 1] or 0..255) into one event array each.

    Deterministic for a given ``seed`` (the per-pixel threshold mismatch is the same for every image, like
    one physical sensor; noise differs per image).  Returns ``N`` arrays of :data:`EVENT_DTYPE`.
    """
    cfg = config or EmulatorConfig()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small per-step ops: one thread is faster and does not fight other work
    try:
        return _emulate(_prepare(images, cfg.image_size), cfg, seed, chunk)
    finally:
        torch.set_num_threads(threads)


def _emulate(x: torch.Tensor, cfg: EmulatorConfig, seed: int, chunk: int) -> list[np.ndarray]:
    W, H = cfg.sensor_size
    rng = np.random.default_rng(seed)
    thr = (cfg.contrast * np.clip(1 + cfg.contrast_sigma * rng.standard_normal((H, W)), 0.2, None))
    thr_t = torch.from_numpy(thr.astype(np.float32))
    n_steps = int(np.ceil(cfg.duration_us / cfg.step_us))
    times = np.minimum(np.arange(n_steps + 1) * cfg.step_us, cfg.duration_us)
    offs = cfg.offset(times.astype(np.float64))
    out: list[np.ndarray] = []
    for c0 in range(0, x.shape[0], chunk):
        xc = x[c0:c0 + chunk]
        n = xc.shape[0]
        ref = torch.log(_render(xc, cfg, *offs[0]).add_(cfg.background))
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (ints, |d|, thr) per step with events
        for k in range(1, n_steps + 1):
            d = torch.log(_render(xc, cfg, *offs[k]).add_(cfg.background)).sub_(ref)
            s, r, c = torch.nonzero(d.abs() >= thr_t, as_tuple=True)
            if len(s) == 0:
                continue
            dd = d[s, r, c]
            th = thr_t[r, c]
            nn = torch.floor(dd.abs() / th)
            ref[s, r, c] += torch.sign(dd) * nn * th
            ints = np.stack([s.numpy(), r.numpy(), c.numpy(), np.full(len(s), times[k - 1]),
                             np.full(len(s), times[k] - times[k - 1]), (dd > 0).numpy(),
                             nn.numpy().astype(np.int64)], axis=1).astype(np.int64)
            parts.append((ints, dd.abs().numpy().astype(np.float64), th.numpy().astype(np.float64)))
        ev_s, ev_y, ev_x, ev_t, ev_p = [], [], [], [], []
        for a, absd, th in parts:
            cnt = a[:, 6]
            rep = np.repeat(np.arange(len(a)), cnt)
            j = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt) + 1  # 1..cnt within each pixel
            frac = np.minimum(j * th[rep] / absd[rep], 1.0)
            ev_s.append(a[rep, 0])
            ev_y.append(a[rep, 1])
            ev_x.append(a[rep, 2])
            ev_t.append(a[rep, 3] + np.minimum(np.floor(frac * a[rep, 4]), a[rep, 4] - 1).astype(np.int64))
            ev_p.append(a[rep, 5])
        if cfg.noise_hz > 0:
            lam = cfg.noise_hz * cfg.duration_us * 1e-6 * H * W
            m = rng.poisson(lam, size=n)
            tot = int(m.sum())
            ev_s.append(np.repeat(np.arange(n), m))
            ev_y.append(rng.integers(0, H, tot))
            ev_x.append(rng.integers(0, W, tot))
            ev_t.append(rng.integers(0, cfg.duration_us, tot))
            ev_p.append(rng.integers(0, 2, tot))
        cat = lambda v: np.concatenate(v) if v else np.zeros(0, np.int64)  # noqa: E731
        S, Y, X, Tt, P = map(cat, (ev_s, ev_y, ev_x, ev_t, ev_p))
        order = np.lexsort((Tt, S))
        S, Y, X, Tt, P = S[order], Y[order], X[order], Tt[order], P[order]
        bounds = np.searchsorted(S, np.arange(n + 1))
        for i in range(n):
            a, b = bounds[i], bounds[i + 1]
            ev = np.zeros(b - a, dtype=EVENT_DTYPE)
            ev["x"], ev["y"], ev["t"], ev["p"] = X[a:b], Y[a:b], Tt[a:b], P[a:b]
            out.append(ev)
    return out


def emulate_dataset(images: torch.Tensor | np.ndarray, labels, config: EmulatorConfig | None = None,
                    seed: int = 0, name: str = "emulated") -> EventDataset:
    """:func:`emulate_events` on ``images`` as an :class:`EventDataset` with ``labels``."""
    cfg = config or EmulatorConfig()
    ev = emulate_events(images, cfg, seed)
    return EventDataset(ev, np.asarray(labels), (cfg.sensor_size[0], cfg.sensor_size[1], 2), name,
                        {"emulator": asdict(cfg), "seed": seed})


def event_statistics(ds: EventDataset, saccade_us: int = 105_000) -> dict[str, float]:
    """Per-recording statistics: events (mean/std/median), ON fraction, duration (ms), events in each
    saccade (fraction), active pixels, spatial extent (x/y min/max over all events, mean bounding box)."""
    n = np.array([len(e) for e in ds.events], dtype=np.float64)
    on = np.array([e["p"].mean() if len(e) else np.nan for e in ds.events])
    dur = np.array([(e["t"].max() - e["t"].min()) / 1e3 if len(e) else 0 for e in ds.events])
    sac = np.array([[((e["t"] >= k * saccade_us) & (e["t"] < (k + 1) * saccade_us)).sum() / max(len(e), 1)
                     for k in range(3)] for e in ds.events])
    W = ds.sensor_size[0]
    act = np.array([len(np.unique(e["y"] * W + e["x"])) for e in ds.events])
    nz = [e for e in ds.events if len(e)]
    bw = np.array([e["x"].max() - e["x"].min() + 1 for e in nz]) if nz else np.zeros(1)
    bh = np.array([e["y"].max() - e["y"].min() + 1 for e in nz]) if nz else np.zeros(1)
    allx = np.concatenate([e["x"] for e in nz]) if nz else np.zeros(1)
    ally = np.concatenate([e["y"] for e in nz]) if nz else np.zeros(1)
    return {
        "samples": int(len(ds)),
        "events_mean": float(n.mean()), "events_std": float(n.std()), "events_median": float(np.median(n)),
        "on_fraction": float(np.nanmean(on)), "on_fraction_std": float(np.nanstd(on)),
        "duration_ms": float(dur.mean()),
        "saccade1_fraction": float(sac[:, 0].mean()), "saccade2_fraction": float(sac[:, 1].mean()),
        "saccade3_fraction": float(sac[:, 2].mean()),
        "active_pixels": float(act.mean()),
        "x_min": float(allx.min()), "x_max": float(allx.max()), "y_min": float(ally.min()), "y_max": float(ally.max()),
        "x_p5": float(np.percentile(allx, 5)), "x_p95": float(np.percentile(allx, 95)),
        "y_p5": float(np.percentile(ally, 5)), "y_p95": float(np.percentile(ally, 95)),
        "bbox_width": float(bw.mean()), "bbox_height": float(bh.mean()),
    }


def paired_event_statistics(emulated: EventDataset, real: EventDataset) -> dict[str, dict[str, float]]:
    """:func:`event_statistics` of both sets side by side: ``{stat: {"emulated", "real", "ratio"}}``
    (``snnbridge data stats``)."""
    a, b = event_statistics(emulated), event_statistics(real)
    return {k: {"emulated": a[k], "real": b[k], "ratio": (a[k] / b[k]) if b[k] else float("nan")} for k in a}


def compare_event_statistics(emulated: EventDataset, real: EventDataset) -> dict[str, dict[str, float]]:
    """Deprecated alias of :func:`paired_event_statistics` (removed in 0.3)."""
    import warnings

    warnings.warn("compare_event_statistics is deprecated; use paired_event_statistics", DeprecationWarning,
                  stacklevel=2)
    return paired_event_statistics(emulated, real)
