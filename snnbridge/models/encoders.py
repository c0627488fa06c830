"""Image → spike conversions of the paper's §3.1 (probabilistic sampling); inputs ``[B, ...]`` in [0, 1]."""

from __future__ import annotations

import torch


def _generator(seed: int | torch.Generator | None) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(0 if seed is None else int(seed))


def bernoulli(images: torch.Tensor, T: int, seed: int | torch.Generator | None = 0) -> torch.Tensor:
    """Bernoulli rate code: ``[B, ...]`` intensities → ``[T, B, ...]`` 0/1 spikes with ``P(1) = intensity``."""
    x = images.clamp(0, 1)
    g = _generator(seed)
    u = torch.rand((T,) + tuple(x.shape), generator=g, dtype=torch.float32).to(x.device)
    return (u < x.unsqueeze(0)).to(x.dtype)


def poisson(images: torch.Tensor, T: int, seed: int | torch.Generator | None = 0) -> torch.Tensor:
    """Poisson rate code: per step a spike when a Poisson draw of mean ``intensity`` is >= 1.

    ``[B, ...]`` → ``[T, B, ...]`` 0/1 spikes; ``P(1) = 1 - exp(-intensity)``.
    """
    x = images.clamp(0, 1)
    g = _generator(seed)
    counts = torch.poisson(x.unsqueeze(0).expand((T,) + tuple(x.shape)).contiguous().float(), generator=g)
    return (counts >= 1).to(x.dtype)


ENCODERS = {"bernoulli": bernoulli, "poisson": poisson}
