"""ANN → SNN conversion (paper Model-2; Diehl et al. 2015): constrained ANN → IF spiking network.

The constrained ANN has no biases, ReLU activations and average pooling (:func:`constrained_ann`).
:func:`convert_to_snn` copies its weights into an SNN-mode :class:`~snnbridge.models.network.Network` of IF
neurons (so it exports to NIR) with **data-based normalisation**: with ``λ_l`` the largest (or the
``percentile``-th) ReLU activation of layer ``l`` on calibration data, every synaptic layer gets
``W'_l = W_l · u_th · λ_{l-1} / (λ_l · g_{l-1})`` so that its neurons fire at about ``a_l / λ_l`` of the
maximum rate.  ``λ_0 = 1`` (pixel intensities are the input rates).  Pooling units are IF neurons too
(paper §4.1): they integrate the average of their inputs and fire at ``1/u_th`` of it, a gain
``g = 1/u_th`` that the next synaptic layer makes up for.
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
                   percentile: float = 100.0, dt: float = 1e-3) -> Network:
    """The converted SNN (IF neurons, threshold ``threshold`` = the paper's ``u_th``, pooling units as neurons).

    ``x_calib [N, ...]``: calibration images for the normalisation (a few hundred training samples).
    ``reset``: ``"zero"`` (Eq. 4, Diehl et al.) or ``"subtract"`` (Rueckauer et al. 2017, less rate loss).
    Returns an SNN-mode :class:`Network` whose ``config.extra`` records the scales used.
    """
    check_convertible(ann)
    lam = activation_scales(ann, x_calib, percentile)
    cfg = replace(ann.config, mode="snn", neuron="if", threshold=float(threshold), pool="neuron", bias=False,
                  reset=reset, dt=dt, extra={**ann.config.extra, "converted_from_ann": True,
                                             "normalisation": {"method": "data-based (Diehl et al. 2015)",
                                                               "percentile": percentile, "lambda": lam}})
    snn = Network(cfg)
    prev_lam, gain = 1.0, 1.0
    with torch.no_grad():
        for syn, _ in snn.plan:
            mod = snn.synapses[syn]
            if isinstance(mod, (nn.Linear, nn.Conv2d)):
                scale = threshold * prev_lam / (lam[syn] * gain)
                mod.weight.copy_(ann.synapses[syn].weight * scale)
                prev_lam, gain = lam[syn], 1.0
            elif isinstance(mod, nn.AvgPool2d):
                gain = gain / threshold
    snn.eval()
    return snn
