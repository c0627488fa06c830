"""Training: BP for ANNs and STBP for SNNs (paper Eqs. 3-6): MSE on outputs / output firing rates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from snnbridge.models.encoders import ENCODERS
from snnbridge.models.network import Network


@dataclass
class History:
    """Per-epoch mean training loss and train-set accuracy."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)


def _encode(encoder: str | Callable, x: torch.Tensor, T: int, g: torch.Generator) -> torch.Tensor:
    fn = ENCODERS[encoder] if isinstance(encoder, str) else encoder
    return fn(x, T, g)


def train(network: Network, x: torch.Tensor, y: torch.Tensor, epochs: int = 5, batch_size: int = 50,
          lr: float = 1e-3, T: int = 20, encoder: str | Callable = "bernoulli", seed: int = 0,
          progress: bool = True) -> History:
    """Train ``network`` on images ``x [N, ...]`` and labels ``y [N]`` with Adam.

    ANN mode: BP with MSE between the output and the one-hot label (paper Eq. 3).
    SNN mode: STBP with the rectangular surrogate (Eqs. 4-6): the images are
    encoded to ``[T, B, ...]`` spikes with ``encoder`` (``"bernoulli"``, ``"poisson"``,
    or a callable; ``"none"`` feeds the analog image at every step, i.e. an encoding
    layer), and the loss is the MSE between output firing rates and the one-hot label.
    Deterministic for a given ``seed``.
    """
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(network.parameters(), lr=lr)
    hist = History()
    n_cls = network.structure.num_classes
    for epoch in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        tot, correct, seen = 0.0, 0, 0
        bar = tqdm(range(0, len(y), batch_size), desc=f"epoch {epoch + 1}/{epochs}", disable=not progress,
                   leave=False)
        network.train()
        for i in bar:
            idx = perm[i:i + batch_size]
            xb, yb = x[idx], y[idx]
            if network.is_snn:
                inp = xb.unsqueeze(0).expand((T,) + tuple(xb.shape)) if encoder == "none" else _encode(
                    encoder, xb, T, g)
                out = Network.rates(network(inp))
            else:
                out = network(xb)
            loss = F.mse_loss(out, F.one_hot(yb, n_cls).to(out.dtype))
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * len(yb)
            correct += int((out.argmax(-1) == yb).sum())
            seen += len(yb)
            bar.set_postfix(loss=f"{tot / seen:.4f}", acc=f"{correct / seen:.3f}")
        hist.loss.append(tot / seen)
        hist.accuracy.append(correct / seen)
    network.eval()
    return hist
