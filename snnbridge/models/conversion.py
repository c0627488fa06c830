"""ANN → SNN conversion (paper Model-2; Diehl et al. 2015): constrained ANN → IF spiking network.

The paper's three steps (§4.2, Fig. 5b: "weight/activation normalization and threshold tuning"):

1. **Constrained ANN** — no biases, ReLU activations, average pooling (:func:`constrained_ann`), trained by BP.
2. **Weight normalisation** (Diehl et al. 2015, data-based): with ``λ_l`` the largest (or ``percentile``-th)
   ReLU activation of layer ``l`` on calibration data, every synaptic layer gets ``W'_l = W_l · λ_{l-1} / λ_l``
   (``λ_0 = 1``: pixel intensities are the input rates), so that a neuron's input per step is at most 1 — with
   threshold 1 an IF neuron fires at ``a_l / λ_l`` of the maximum rate.
3. **Threshold tuning** — every IF neuron, pooling units included (paper §4.1), gets one firing threshold
   ``u_th`` (Table 2: 2 on MNIST, 2.5 on CIFAR10), chosen on training data (:func:`tune_threshold`).  The
   weights are *not* rescaled with it, so ``u_th`` matters: a neuron needs ``u_th`` of integrated input per
   spike, its rate falls to about ``1/u_th`` of the normalised one per spiking layer (fewer spikes, a
   coarser rate code, longer ``T`` needed — the paper's T = 500/1000), while overshooting activations
   (``a_l > λ_l`` on test data, or a percentile ``λ``) saturate less.  ``threshold_scaled_weights=True`` gives
   the earlier variant ``W'_l = W_l · u_th · λ_{l-1} / (λ_l · g_{l-1})`` in which ``u_th`` cancels out.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from snnbridge.errors import SnnBridgeError
from snnbridge.models.network import Network, NetworkConfig


def constrained_ann(structure: str, input_shape: tuple[int, ...], **kwargs) -> Network:
    """The ANN that conversion expects: ``mode="ann"``, no biases (ReLU and average pooling are built in)."""
    return Network(NetworkConfig(structure=structure, input_shape=tuple(input_shape), mode="ann", bias=False,
                                 pool="average", **kwargs))


def check_convertible(ann: Network) -> None:
    """Raise :class:`SnnBridgeError` unless ``ann`` is a constrained ANN (ANN mode, no biases)."""
    if ann.is_snn:
        raise SnnBridgeError("convert_to_snn expects an ANN-mode network (mode='ann')")
    for name, mod in ann.synapses.items():
        if getattr(mod, "bias", None) is not None:
            raise SnnBridgeError(f"layer '{name}' has a bias; conversion needs a constrained ANN (bias=False)")


def activation_scales(ann: Network, x: torch.Tensor, percentile: float = 100.0, batch_size: int = 500
                      ) -> dict[str, float]:
    """``λ`` per synaptic layer name: the ``percentile`` of its (ReLU) outputs on ``x [N, ...]``.

    The classifier (no ReLU) uses its positive outputs.  Pooling layers are not listed (they keep ``λ``).
    """
    check_convertible(ann)
    acts: dict[str, list[torch.Tensor]] = {}
    ann.eval()
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            ann(x[i:i + batch_size].to(torch.float32), record=True)
            for syn, neu in ann.plan:
                if isinstance(ann.synapses[syn], (nn.Linear, nn.Conv2d)):
                    a = ann.records[neu] if neu is not None else ann.records[syn].clamp_min(0)
                    acts.setdefault(syn, []).append(a.reshape(-1))
    out = {}
    for syn, parts in acts.items():
        a = torch.cat(parts).numpy()
        pos = a[a > 0]
        lam = float(np.percentile(pos, percentile)) if len(pos) else 1.0
        out[syn] = lam if lam > 0 else 1.0
    return out


def convert_to_snn(ann: Network, x_calib: torch.Tensor, threshold: float = 1.0, reset: str = "zero",
                   percentile: float = 100.0, dt: float = 1e-3, scales: dict[str, float] | None = None,
                   threshold_scaled_weights: bool = False, threshold_compare: str | None = None) -> Network:
    """The converted SNN (IF neurons, threshold ``threshold`` = the paper's ``u_th``, pooling units as neurons).

    ``x_calib [N, ...]``: calibration images for the normalisation (a few hundred training samples); or give
    the ``scales`` (``λ`` per layer, :func:`activation_scales`) directly.  ``reset``: ``"zero"`` (Eq. 4, Diehl
    et al.) or ``"subtract"`` (Rueckauer et al. 2017, less rate loss).  Returns an SNN-mode :class:`Network`
    whose ``config.extra`` records the scales used.  ``threshold_compare``: ``"strict"`` (``u > u_th``) or
    ``"inclusive"`` (``u >= u_th``, the paper's Eq. 4); ``None`` keeps the ANN config's.
    """
    check_convertible(ann)
    lam = dict(scales) if scales is not None else activation_scales(ann, x_calib, percentile)
    norm = {"method": "data-based (Diehl et al. 2015)", "percentile": percentile, "lambda": lam,
            "threshold_scaled_weights": threshold_scaled_weights}
    cfg = replace(ann.config, mode="snn", neuron="if", threshold=float(threshold), pool="neuron", bias=False,
                  reset=reset, dt=dt, threshold_compare=threshold_compare or ann.config.threshold_compare,
                  extra={**ann.config.extra, "converted_from_ann": True, "normalisation": norm})
    snn = Network(cfg)
    prev_lam, gain = 1.0, 1.0
    with torch.no_grad():
        for syn, _ in snn.plan:
            mod = snn.synapses[syn]
            if isinstance(mod, (nn.Linear, nn.Conv2d)):
                scale = prev_lam / lam[syn]
                if threshold_scaled_weights:
                    scale *= threshold / gain
                mod.weight.copy_(ann.synapses[syn].weight * scale)
                prev_lam, gain = lam[syn], 1.0
            elif isinstance(mod, nn.AvgPool2d):
                gain = gain / threshold
    snn.eval()
    return snn


def accuracy_vs_T(snn: Network, x: torch.Tensor, y: torch.Tensor, Ts: list[int] | tuple[int, ...], seed: int = 0,
                  batch_size: int = 250) -> dict[int, float]:
    """Top-1 accuracy (Eq. 7) of ``snn`` on images ``x [N, ...]``/labels ``y [N]`` after each window in ``Ts``.

    One run of ``max(Ts)`` Bernoulli steps per batch; the accuracy at ``T`` decodes the output spike counts of
    the first ``T`` steps (a prefix of a Bernoulli train is a Bernoulli train), ties to the lowest class.  Fig. 9b.
    """
    from snnbridge.models.encoders import bernoulli

    Ts = sorted({int(t) for t in Ts})
    correct = {t: 0 for t in Ts}
    snn.eval()
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            spikes = bernoulli(x[i:i + batch_size].to(torch.float32), Ts[-1], seed=seed + i)
            counts = snn(spikes.to(torch.float32)).float().cumsum(0)  # [T, B, C]
            for t in Ts:
                correct[t] += int((counts[t - 1].argmax(-1) == y[i:i + batch_size]).sum())
    return {t: correct[t] / max(len(y), 1) for t in Ts}


def tune_threshold(ann: Network, x_calib: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
                   candidates: list[float] | tuple[float, ...], T: int, seed: int = 0, reset: str = "zero",
                   percentile: float = 100.0, threshold_compare: str | None = None
                   ) -> tuple[float, dict[float, float]]:
    """The threshold-tuning step: convert ``ann`` with each ``u_th`` in ``candidates`` (one normalisation from
    ``x_calib``), run ``T`` Bernoulli steps on the validation images ``x_val``/``y_val`` (training data, not the
    test set) and return ``(best u_th, {u_th: accuracy})`` (ties: the smaller threshold)."""
    lam = activation_scales(ann, x_calib, percentile)
    acc = {float(th): accuracy_vs_T(convert_to_snn(ann, x_calib, float(th), reset, percentile, scales=lam,
                                                   threshold_compare=threshold_compare),
                                    x_val, y_val, [T], seed)[T] for th in candidates}
    best = max(sorted(acc), key=lambda th: acc[th])
    return best, acc
