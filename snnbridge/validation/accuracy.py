"""Rate decoding (paper Eq. 7), top-1 accuracy and prediction agreement between backends."""

from __future__ import annotations

import torch


def rate_predictions(output: torch.Tensor) -> torch.Tensor:
    """Predicted class per sample: argmax over the time-averaged output ``[T, B, C]`` → ``int64 [B]`` (Eq. 7).

    Spikes and analog outputs (e.g. an LI readout) alike; ties go to the lowest class index.
    """
    rates = output.double().mean(0).reshape(output.shape[1], -1)
    return rates.argmax(-1)


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in ``[0, 1]`` of predictions ``[B]`` against labels ``[B]``."""
    if predictions.shape != labels.shape:
        raise ValueError(f"{predictions.shape[0]} predictions for {labels.shape[0]} labels")
    if labels.numel() == 0:
        return float("nan")
    return float((predictions.long() == labels.long()).double().mean())


def agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of samples on which two prediction vectors ``[B]`` agree."""
    if a.shape != b.shape:
        raise ValueError(f"prediction vectors differ in length: {a.shape[0]} vs {b.shape[0]}")
    return float((a.long() == b.long()).double().mean()) if a.numel() else float("nan")


def agreement_matrix(predictions: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Pairwise :func:`agreement` of every pair of named prediction vectors."""
    names = list(predictions)
    return {a: {b: agreement(predictions[a], predictions[b]) for b in names} for a in names}
