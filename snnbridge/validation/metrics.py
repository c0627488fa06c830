"""Spike-train comparison metrics between two recordings of one node, ``bool [T, B, *shape]``.

Every function takes a reference ``ref`` and a candidate ``got`` of the same shape.
Neurons are the flattened ``*shape``; a *spike train* is one (sample, neuron) pair.
Conventions (``docs/validation.md``):

* precision = TP / (TP + FP), recall = TP / (TP + FN) over spike *events* (a spike at
  the same step, sample and neuron); both are 1 when the respective denominator is 0.
* the spike-count difference is ``got - ref`` per neuron summed over time, ``[B, N]``.
* van Rossum distance with an exponential kernel of ``tau`` steps:
  ``D = sqrt(sum_t d[t]^2 / tau)``, ``d[t] = exp(-1/tau) d[t-1] + got[t] - ref[t]``;
  one unmatched spike in a long train gives ``D ≈ sqrt(1/2)``.
* cosine similarity of activity (the NIR paper's measure): between the per-neuron spike
  counts of one sample, averaged over samples; 1 when both are silent, 0 when only one is.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch


def _flat(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, *shape]`` → ``[T, B, N]``."""
    return x.reshape(x.shape[0], x.shape[1], -1)


def _check(ref: torch.Tensor, got: torch.Tensor) -> None:
    if ref.shape != got.shape:
        raise ValueError(f"shapes differ: reference {tuple(ref.shape)} vs {tuple(got.shape)}")


@dataclass(frozen=True)
class EventScores:
    """Spike-event agreement: counts and precision/recall/F1 of ``got`` against ``ref``."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict:
        return asdict(self)


def event_scores(ref: torch.Tensor, got: torch.Tensor) -> EventScores:
    """Precision/recall/F1 of spike events of ``got`` (``[T, B, ...]`` bool) against ``ref``."""
    _check(ref, got)
    r, g = ref.bool(), got.bool()
    tp = int((r & g).sum())
    fp = int((~r & g).sum())
    fn = int((r & ~g).sum())
    p = tp / (tp + fp) if tp + fp else 1.0
    rc = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return EventScores(tp, fp, fn, p, rc, f1)


@dataclass(frozen=True)
class CountDifference:
    """Per-neuron spike-count differences ``got - ref`` (over time), summarised over ``[B, N]``."""

    mean_abs: float
    max_abs: int
    total_ref: int
    total_got: int
    trains_differing: int
    trains: int

    def to_dict(self) -> dict:
        return asdict(self)


def count_difference(ref: torch.Tensor, got: torch.Tensor) -> CountDifference:
    """Spike-count difference per neuron and sample; ``trains_differing`` counts trains whose rasters differ."""
    _check(ref, got)
    r, g = _flat(ref.bool()), _flat(got.bool())
    d = g.sum(0).long() - r.sum(0).long()  # [B, N]
    trains_diff = int((r != g).any(0).sum())
    return CountDifference(float(d.abs().float().mean()) if d.numel() else 0.0, int(d.abs().max()) if d.numel() else 0,
                           int(r.sum()), int(g.sum()), trains_diff, int(d.numel()))


@dataclass(frozen=True)
class Divergence:
    """The earliest mismatch: ``step`` (0-based), ``sample`` (batch index), ``neuron`` (flat index),
    ``index`` (multi-index in the node shape), and what each side emitted there."""

    step: int
    sample: int
    neuron: int
    index: tuple[int, ...]
    ref: float
    got: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["index"] = list(self.index)
        return d


def first_divergence(ref: torch.Tensor, got: torch.Tensor, atol: float = 0.0, rtol: float = 0.0) -> Divergence | None:
    """Earliest step where ``got`` differs from ``ref`` (then lowest sample, then lowest neuron), or ``None``.

    Spike tensors compare exactly; analog tensors with ``|got - ref| > atol + rtol·|ref|``.
    """
    _check(ref, got)
    diff = mismatch_mask(ref, got, atol, rtol)
    if not bool(diff.any()):
        return None
    flat = _flat(diff)
    T, B, N = flat.shape
    idx = int(torch.nonzero(flat.reshape(-1), as_tuple=False)[0])  # row-major: step, sample, neuron
    t, rem = divmod(idx, B * N)
    b, n = divmod(rem, N)
    shape = tuple(ref.shape[2:]) or (1,)
    multi = tuple(int(i) for i in torch.unravel_index(torch.tensor(n), shape)) if ref.dim() > 2 else ()
    rv, gv = _flat(ref)[t, b, n], _flat(got)[t, b, n]
    return Divergence(t, b, n, multi, float(rv), float(gv))


def mismatch_mask(ref: torch.Tensor, got: torch.Tensor, atol: float = 0.0, rtol: float = 0.0) -> torch.Tensor:
    """``bool [T, B, ...]``: where ``got`` differs from ``ref`` (exactly for spikes, with tolerance otherwise)."""
    if ref.dtype == torch.bool or got.dtype == torch.bool:
        return ref.bool() != got.bool()
    r, g = ref.double(), got.double()
    return (g - r).abs() > atol + rtol * r.abs()


def van_rossum(ref: torch.Tensor, got: torch.Tensor, tau: float = 5.0) -> tuple[float, float]:
    """``(mean, max)`` van Rossum distance over spike trains; kernel ``exp(-t/tau)``, ``tau`` in steps."""
    _check(ref, got)
    if tau <= 0:
        raise ValueError(f"tau must be > 0 steps, got {tau}")
    diff = _flat(got.double()) - _flat(ref.double())  # [T, B, N]
    decay = math.exp(-1.0 / tau)
    d = torch.zeros(diff.shape[1:], dtype=torch.float64)
    acc = torch.zeros_like(d)
    for t in range(diff.shape[0]):
        d = decay * d + diff[t]
        acc += d * d
    dist = torch.sqrt(acc / tau)
    if dist.numel() == 0:
        return 0.0, 0.0
    return float(dist.mean()), float(dist.max())


def cosine_activity(ref: torch.Tensor, got: torch.Tensor) -> float:
    """Cosine similarity of per-neuron spike counts (summed over time), per sample, averaged over samples."""
    _check(ref, got)
    a = _flat(ref.double()).sum(0)  # [B, N]
    b = _flat(got.double()).sum(0)
    na, nb = a.norm(dim=1), b.norm(dim=1)
    dot = (a * b).sum(1)
    both_zero = (na == 0) & (nb == 0)
    cos = torch.where(both_zero, torch.ones_like(dot), dot / (na * nb).clamp_min(1e-300))
    return float(cos.mean()) if cos.numel() else 1.0


def max_abs_difference(ref: torch.Tensor, got: torch.Tensor) -> float:
    """``max |got - ref|`` over all elements (membranes, analog outputs)."""
    _check(ref, got)
    if ref.numel() == 0:
        return 0.0
    return float((got.double() - ref.double()).abs().max())


def best_lag(ref: torch.Tensor, got: torch.Tensor, max_lag: int = 5) -> tuple[int, float]:
    """The shift ``k`` (``got[t] ≈ ref[t - k]``, ``|k| <= max_lag``) with the highest event F1 on the overlap.

    Returns ``(k, f1)``; lag 0 wins ties.  Positive ``k``: ``got`` is late.
    """
    _check(ref, got)
    T = ref.shape[0]
    best = (0, event_scores(ref, got).f1)
    for k in range(1, min(max_lag, T - 1) + 1):
        for lag in (k, -k):
            if lag > 0:
                f1 = event_scores(ref[: T - lag], got[lag:]).f1
            else:
                f1 = event_scores(ref[-lag:], got[: T + lag]).f1
            if f1 > best[1] + 1e-12:
                best = (lag, f1)
    return best

