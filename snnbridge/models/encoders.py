"""Image → spike conversions of the paper's §3.1; inputs ``[B, ...]`` intensities in [0, 1].

* :func:`bernoulli`, :func:`poisson` — probabilistic sampling (Fig. 4a).
* :func:`analog` (names ``"layer"``/``"none"``) — the analog image at every step, for a network whose first
  layer is the trainable **encoding layer** (Fig. 4b: ANN dendrite, LIF soma).
* :func:`sampling_mae` — Fig. 8b: MAE between an image and its normalised spike count, against ``T``.
"""

from __future__ import annotations

from typing import Callable, Iterable

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


def analog(images: torch.Tensor, T: int, seed: int | torch.Generator | None = None) -> torch.Tensor:
    """The encoding-layer input: the analog image repeated at every step, ``[B, ...]`` → ``[T, B, ...]``.

    The network's first synaptic layer then works as the paper's encoding layer (MAC dendrite, LIF soma,
    trained with the rest by STBP); ``seed`` is ignored (deterministic).
    """
    return images.unsqueeze(0).expand((T,) + tuple(images.shape))


ENCODERS: dict[str, Callable[..., torch.Tensor]] = {"bernoulli": bernoulli, "poisson": poisson, "layer": analog,
                                                    "none": analog}
"""Encoders by name; ``"layer"`` (alias ``"none"``) feeds the analog image to an encoding layer."""


def encode(encoder: str | Callable[..., torch.Tensor], images: torch.Tensor, T: int,
           seed: int | torch.Generator | None = 0) -> torch.Tensor:
    """Apply ``encoder`` (a name in :data:`ENCODERS` or a callable ``(images, T, seed)``): ``[B, ...]`` →
    ``[T, B, ...]``."""
    if isinstance(encoder, str):
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}; known: {', '.join(ENCODERS)}")
        encoder = ENCODERS[encoder]
    return encoder(images, T, seed)


def spike_count_image(spikes: torch.Tensor) -> torch.Tensor:
    """Normalised spike count (Fig. 8a): ``[T, B, ...]`` → ``[B, ...]`` = count / T, in [0, 1]."""
    return spikes.to(torch.float32).mean(0)


def sampling_mae(images: torch.Tensor, Ts: Iterable[int], encoder: str | Callable = "bernoulli", repeats: int = 5,
                 seed: int = 0) -> list[dict[str, float]]:
    """Fig. 8b: precision loss of probabilistic sampling against the time window.

    For each ``T``, ``repeats`` independent samplings of ``images [B, ...]``; each gives the mean absolute
    error between the pixels and the normalised spike count (count / T).  Returns one
    ``{"T", "mae_mean", "mae_std"}`` per ``T`` (mean and standard deviation over the repeats).
    """
    g = torch.Generator().manual_seed(seed)
    x = images.to(torch.float32).clamp(0, 1)
    out = []
    for T in Ts:
        maes = torch.tensor([float((spike_count_image(encode(encoder, x, int(T), g)) - x).abs().mean())
                             for _ in range(repeats)])
        out.append({"T": int(T), "mae_mean": float(maes.mean()),
                    "mae_std": float(maes.std(unbiased=False)) if repeats > 1 else 0.0})
    return out
