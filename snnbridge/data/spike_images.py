"""Spike pattern → image conversions of the paper's §3.1 (Fig. 4c, 4d), for ANNs on SNN-oriented data.

Spike patterns are frame tensors ``[B, T, *loc]`` (e.g. ``[B, T, 2, 34, 34]`` from
:meth:`~snnbridge.data.events.EventDataset.frames`); ``loc`` are the neuron locations.
"""

from __future__ import annotations

import torch


def _check(frames: torch.Tensor, what: str) -> torch.Tensor:
    if not isinstance(frames, torch.Tensor) or frames.dim() < 3:
        raise ValueError(f"{what} expects frames [B, T, *locations], got "
                         f"{list(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__}")
    return frames


def binary_image(frames: torch.Tensor, window: int = 1) -> torch.Tensor:
    """Temporal unfolding (Fig. 4c): ``[B, T, *loc]`` → binary image ``[B, 1, L, ceil(T / window)]``.

    Row ``i`` is location ``i`` of the flattened ``loc`` (``L = prod(loc)``, C-order, e.g. ``(p, y, x)``);
    column ``j`` is 1 when that location has at least one spike in frames ``j·window .. (j+1)·window - 1``
    (the aggregation window; a partial last window counts too).
    """
    _check(frames, "binary_image")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    B, T = frames.shape[:2]
    x = (frames.reshape(B, T, -1) > 0).to(torch.float32)
    cols = -(-T // window)
    if cols * window != T:
        x = torch.cat([x, x.new_zeros(B, cols * window - T, x.shape[-1])], dim=1)
    x = x.reshape(B, cols, window, -1).amax(2)  # [B, cols, L]
    return x.transpose(1, 2).unsqueeze(1).contiguous()


def intensity_image(frames: torch.Tensor, norm: str = "max") -> torch.Tensor:
    """Temporal accumulation (Fig. 4d): ``[B, T, *loc]`` → intensity image ``[B, *loc]`` in [0, 1].

    Spike counts are summed over time and normalised per sample: ``norm="max"`` divides by the sample's
    largest count (an all-zero sample stays zero), ``norm="T"`` by the number of frames ``T``.
    """
    _check(frames, "intensity_image")
    counts = frames.to(torch.float32).sum(1)
    if norm == "T":
        return counts / frames.shape[1]
    if norm != "max":
        raise ValueError(f"norm must be 'max' or 'T', got {norm!r}")
    peak = counts.reshape(counts.shape[0], -1).amax(1).clamp_min(1e-12)
    return counts / peak.view((-1,) + (1,) * (counts.dim() - 1))
