"""Training: BP for ANNs and STBP for SNNs (paper Eqs. 3-6): MSE on outputs / output firing rates.

Adam (the paper's MNIST/N-MNIST setting) or SGD with momentum and a step decay (its CIFAR setting),
per-epoch checkpoints that a later call resumes from (bit-identical to an uninterrupted run), progress
bars, and seeded determinism.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from snnbridge.errors import SnnBridgeError
from snnbridge.fileio import load_tensors, save_tensors
from snnbridge.models.encoders import encode
from snnbridge.models.network import Network

CHECKPOINT_FORMAT = "snnbridge-training/1"


@dataclass
class History:
    """Per-epoch mean training loss, train-set accuracy, learning rate, seconds, and (optional) test accuracy."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)


def batch_input(network: Network, xb: torch.Tensor, T: int, encoder: str | Callable,
                seed: int | torch.Generator | None) -> torch.Tensor:
    """The network input for a batch ``xb``.

    ANN: ``xb [B, ...]`` as float32.  SNN: ``[T, B, ...]`` — ``encoder="frames"`` takes time-major event
    frames from ``xb [B, T', ...]`` (the first ``T`` steps; ``T <= 0`` or ``None`` keeps all), any other
    encoder converts the image batch (:func:`~snnbridge.models.encoders.encode`: ``"bernoulli"``,
    ``"poisson"``, ``"layer"``/``"none"`` for an encoding layer).
    """
    if not network.is_snn:
        return xb.to(torch.float32)
    if encoder == "frames":
        x = xb.transpose(0, 1).to(torch.float32)
        return x[:T] if T and T > 0 else x
    return encode(encoder, xb.to(torch.float32), T, seed)


def paper_loss(out: torch.Tensor, labels: torch.Tensor, num_classes: int, snn: bool = True) -> torch.Tensor:
    """The paper's loss for a batch: ``out [B, C]`` (SNN: output firing rates ``(1/T)·Σ_t O^t``; ANN: outputs),
    ``labels [B]`` int; returns a scalar.

    SNN (§3.4): ``L = ‖Y − (1/T)·Σ_t O^{t,N}‖²₂``; ANN (Eq. 3): ``L = ½·‖Y − Y_label‖²₂`` — the squared error
    **summed over the C classes** of one sample, as the paper writes it.  The paper gives the loss of one
    sample and trains on mini-batches of 50 (Tables 2-3); we read that as the mean of the per-sample loss over
    the batch (a sum would tie the step size to the batch size).  Against PyTorch's ``mse_loss`` (the mean over
    batch *and* classes) the gradient is ``C`` (SNN) or ``C/2`` (ANN) times larger, which matters for SGD.
    """
    y = F.one_hot(labels, num_classes).to(out.dtype)
    per_sample = ((y - out) ** 2).sum(-1)
    return per_sample.mean() * (1.0 if snn else 0.5)


def evaluate(network: Network, x: torch.Tensor, y: torch.Tensor, T: int = 20, encoder: str | Callable = "bernoulli",
             seed: int = 1234, batch_size: int = 200, device: str | torch.device | None = None) -> float:
    """Top-1 accuracy of ``network`` on ``x [N, ...]``, ``y [N]`` (SNN: Eq. 7 rate decoding), on ``device``
    (default: where the network is)."""
    g = torch.Generator().manual_seed(seed)
    network.eval()
    dev = device if device is not None else next(network.parameters()).device
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch_size):
            pred = network.predict(batch_input(network, x[i:i + batch_size], T, encoder, g).to(dev))
            correct += int((pred.cpu() == y[i:i + batch_size]).sum())
    return correct / max(len(y), 1)


def init_firing(network: Network, inputs: torch.Tensor, low: float = 0.05, high: float = 0.3, max_iter: int = 24
                ) -> dict[str, float]:
    """Data-based initialisation of an SNN: rescale each hidden weighted layer (in order) until the spiking
    layer that feeds the next weighted layer (its own neurons, or the pooling neurons after them) fires at a
    mean rate in ``[low, high]`` on ``inputs [T, B, ...]`` (a bisection on the log of the scale; the
    classifier is left as initialised).

    Keeps STBP from starting silent (no surrogate gradient) in deep CNNs with average-pooling neurons.
    Deterministic; modifies ``network`` in place and returns the final rate per weighted layer.
    """
    if not network.is_snn:
        return {}
    plan = network.plan
    weighted = [i for i, (syn, _) in enumerate(plan) if hasattr(network.synapses[syn], "weight")]
    rates: dict[str, float] = {}
    with torch.no_grad():
        for k, i in enumerate(weighted[:-1]):
            watch = [neu for _, neu in plan[i:weighted[k + 1]] if neu is not None]
            if not watch:
                continue
            mod = network.synapses[plan[i][0]]
            w0 = mod.weight.detach().clone()
            lo, hi, scale, rate = None, None, 1.0, 0.0
            for _ in range(max_iter):
                mod.weight.copy_(w0 * scale)
                network(inputs, record=True)
                rate = float(network.records[watch[-1]].float().mean())
                if low <= rate <= high:
                    break
                if rate < low:
                    lo = scale
                    scale = scale * 2 if hi is None else (lo * hi) ** 0.5
                else:
                    hi = scale
                    scale = scale / 2 if lo is None else (lo * hi) ** 0.5
            rates[plan[i][0]] = rate
    return rates


def _plain(v):
    if isinstance(v, (int, float, str, type(None))):
        return v
    return getattr(v, "__qualname__", None) or type(v).__name__


def _fingerprint(network: Network, **kw) -> dict:
    return {"config": asdict(network.config), **{k: _plain(v) for k, v in kw.items()}}


def _save(path: Path, payload: dict) -> None:
    save_tensors(path, payload)


def load_checkpoint(path: str | Path) -> tuple[Network, dict]:
    """Rebuild the network of a training checkpoint; returns ``(network, checkpoint dict)``.

    Read with ``weights_only=True``: a file holding other Python objects is refused, never unpickled.
    """
    from snnbridge.models.network import _rebuild

    ck = load_tensors(path, "an snnbridge training checkpoint")
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        found = ck.get("format") if isinstance(ck, dict) else type(ck).__name__
        raise SnnBridgeError(f"{path}: not an snnbridge training checkpoint (format {found!r}, expected "
                             f"{CHECKPOINT_FORMAT!r})")
    missing = [k for k in ("epoch", "fingerprint", "network", "optimizer", "generator", "torch_rng", "history")
               if k not in ck]
    if missing or not isinstance(ck["network"], dict):
        raise SnnBridgeError(f"{path}: training checkpoint lacks {', '.join(missing) or 'network'}")
    net = _rebuild(Network, ck["network"].get("config"), ck["network"].get("state_dict"), path)
    return net, ck


def train(network: Network, x: torch.Tensor, y: torch.Tensor, epochs: int = 5, batch_size: int = 50,
          lr: float = 1e-3, T: int = 20, encoder: str | Callable = "bernoulli", seed: int = 0,
          progress: bool = True, *, optimizer: str = "adam", momentum: float = 0.9, lr_step: int | None = None,
          lr_gamma: float = 0.1, checkpoint: str | Path | None = None, resume: bool = True,
          x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
          device: str | torch.device = "cpu") -> History:
    """Train ``network`` on ``x [N, ...]`` and labels ``y [N]``; returns the :class:`History`.

    ANN mode: BP with the loss ``½‖Y − Y_label‖²`` (paper Eq. 3; :func:`paper_loss`).
    SNN mode: STBP with the rectangular surrogate (Eqs. 4-6): each batch becomes ``[T, B, ...]`` by
    :func:`batch_input` (``encoder``: ``"bernoulli"``, ``"poisson"``, ``"layer"`` — alias ``"none"`` — for
    an encoding layer fed the analog image, ``"frames"`` for event frames ``x [N, T, ...]``, or a callable),
    and the loss is ``‖Y − (1/T)Σ_t O^t‖²`` (§3.4): summed over classes, mean over the batch.

    ``optimizer``: ``"adam"`` or ``"sgd"`` (with ``momentum``); ``lr_step``: multiply the learning rate by
    ``lr_gamma`` every that many epochs (the paper's SGD: 0.1, ×0.1 every 35).  ``checkpoint``: a file
    written after every epoch; with ``resume`` an existing one (same settings) is continued from.
    ``x_test``/``y_test``: also record test accuracy per epoch (Fig. 8c/10 training curves).
    ``device``: where the network trains (data stay on the CPU and move per batch; the encoders draw their
    random numbers on the CPU, so a run is the same on any device up to floating-point summation order).
    Deterministic for a given ``seed``.
    """
    from snnbridge.progress import progress_bar

    if len(y) == 0:
        raise SnnBridgeError("cannot train on an empty dataset")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    network.to(device)
    params = list(network.parameters())
    opt = (torch.optim.Adam(params, lr=lr) if optimizer == "adam"
           else torch.optim.SGD(params, lr=lr, momentum=momentum))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=lr_step, gamma=lr_gamma) if lr_step else None
    hist = History()
    start = 0
    fp = _fingerprint(network, batch_size=batch_size, lr=lr, T=T, encoder=encoder, seed=seed, optimizer=optimizer,
                      momentum=momentum, lr_step=lr_step, lr_gamma=lr_gamma, n=len(y))
    ck_path = Path(checkpoint) if checkpoint is not None else None
    if ck_path is not None and resume and ck_path.exists():
        _, ck = load_checkpoint(ck_path)
        if ck["fingerprint"] != fp:
            diff = sorted(k for k in set(fp) | set(ck["fingerprint"]) if fp.get(k) != ck["fingerprint"].get(k))
            raise SnnBridgeError(f"{ck_path}: checkpoint was made with other settings ({', '.join(diff)}); "
                                 "delete it or pass resume=False")
        network.load_state_dict(ck["network"]["state_dict"])
        opt.load_state_dict(ck["optimizer"])
        if sched is not None and ck.get("scheduler") is not None:
            sched.load_state_dict(ck["scheduler"])
        g.set_state(ck["generator"])
        torch.set_rng_state(ck["torch_rng"])
        hist = History(**ck["history"])
        start = int(ck["epoch"])
    n_cls = network.structure.num_classes
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(y), generator=g)
        tot, correct, seen = 0.0, 0, 0
        bar = progress_bar(range(0, len(y), batch_size), desc=f"epoch {epoch + 1}/{epochs}", progress=progress,
                           leave=False)
        network.train()
        for i in bar:
            idx = perm[i:i + batch_size]
            xb, yb = x[idx], y[idx].to(device)
            out = network(batch_input(network, xb, T, encoder, g).to(device))
            if network.is_snn:
                out = Network.rates(out)
            loss = paper_loss(out, yb, n_cls, network.is_snn)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * len(yb)
            correct += int((out.argmax(-1) == yb).sum())
            seen += len(yb)
            bar.set_postfix(loss=f"{tot / seen:.4f}", acc=f"{correct / seen:.3f}")
        hist.lr.append(opt.param_groups[0]["lr"])
        if sched is not None:
            sched.step()
        hist.loss.append(tot / seen)
        hist.accuracy.append(correct / seen)
        if x_test is not None and y_test is not None:
            state = torch.get_rng_state()
            hist.test_accuracy.append(evaluate(network, x_test, y_test, T, encoder, seed=seed + 1, device=device))
            torch.set_rng_state(state)
        hist.seconds.append(time.perf_counter() - t0)
        if ck_path is not None:
            _save(ck_path, {"format": CHECKPOINT_FORMAT, "epoch": epoch + 1, "fingerprint": fp,
                            "network": {"config": asdict(network.config), "state_dict": network.state_dict()},
                            "optimizer": opt.state_dict(), "scheduler": sched.state_dict() if sched else None,
                            "generator": g.get_state(), "torch_rng": torch.get_rng_state(),
                            "history": asdict(hist)})
    network.eval()
    return hist
