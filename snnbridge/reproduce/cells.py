"""The six benchmark models of §3.2-3.3, each trained, evaluated and costed from one JSON-able spec.

* Model-1 natural ANN — BP on the images.
* Model-2 converted SNN — a constrained ANN (no bias, ReLU, average pooling) converted to IF neurons with
  data-based normalisation, fed Bernoulli spikes.
* Model-3 enforced SNN — STBP (LIF) on Bernoulli spikes; ``3b``: with an encoding layer (analog input).
* Model-4 enforced binary ANN — BP on the temporally unfolded binary image (conv stride 2, §4.1).
* Model-5 enforced intensity ANN — BP on the accumulated, normalised intensity image.
* Model-6 natural SNN — STBP (LIF) on the event frames.

Every SNN is exported to NIR and evaluated on every requested backend (:mod:`.evaluate`); ANNs run in
torch (NIR has no ReLU).  Costs come from :mod:`snnbridge.validation.costs`.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from snnbridge.data import EventDataset, binary_image, intensity_image
from snnbridge.errors import SnnBridgeError
from snnbridge.models.conversion import accuracy_vs_T, constrained_ann, convert_to_snn, tune_threshold
from snnbridge.models.encoders import encode
from snnbridge.models.network import Network, NetworkConfig
from snnbridge.models.training import batch_input, evaluate, init_firing, train
from snnbridge.reproduce.evaluate import ann_costs, evaluate_backends
from snnbridge.reproduce.workloads import read_prepared

MODEL_NAMES = {"1": "Natural ANN", "2": "Converted SNN", "3": "Enforced SNN", "3b": "Enforced SNN (encoding layer)",
               "4": "Enforced binary ANN", "5": "Enforced intensity ANN", "6": "Natural SNN"}


def _event_inputs(model: str, train: EventDataset, test: EventDataset, T: int | None, window_us: int,
                  columns: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Model-4 binary images ``[N, 1, P·H·W, columns]`` (the recording cut into ``columns`` windows, Fig. 4c),
    Model-5 intensity images ``[N, P, H, W]`` (the whole recording, Fig. 4d), Model-6 frames
    ``[N, T, P, H, W]`` (uint8 0/1): consecutive ``window_us`` windows from the start of the recording, the
    first ``T`` of them (the paper's 3 ms × Table 3's T, §4.2) — train and test binned over the same span."""
    dur = float(max(int(e["t"].max()) for ds in (train, test) for e in ds.events if len(e))) + 1
    if model == "4":
        return tuple(binary_image(ds.frames(n_bins=int(columns), duration_us=dur, mode="binary", dtype=torch.uint8))
                     for ds in (train, test))  # type: ignore[return-value]
    if model == "5":
        return tuple(intensity_image(ds.frames(n_bins=1, duration_us=dur)) for ds in (train, test))  # type: ignore
    return tuple(ds.frames(dt_us=window_us, T=T, mode="binary", dtype=torch.uint8)
                 for ds in (train, test))  # type: ignore[return-value]


def _tsne(features: torch.Tensor, labels: torch.Tensor, perplexities, seed: int) -> dict:
    from sklearn.manifold import TSNE

    x = features.detach().to(torch.float64).numpy()
    out = {"labels": labels.tolist(), "embeddings": {}}
    for p in perplexities:
        if len(x) <= p + 1:
            continue
        emb = TSNE(n_components=2, perplexity=float(p), init="pca", random_state=seed).fit_transform(x)
        out["embeddings"][str(p)] = np.round(emb, 3).tolist()
    return out


def _ann_hidden(net: Network, x: torch.Tensor) -> torch.Tensor:
    relus = [n for _, n in net.plan if n is not None]
    with torch.no_grad():
        net(x.to(torch.float32), record=True)
    return net.records[relus[-1]].reshape(len(x), -1)


def run_model(spec: dict, cell_dir: str | Path, progress: bool = False) -> dict:
    """Train, evaluate and cost one model; ``spec`` keys: ``workload``, ``paper``, ``kind`` (``ann``/``snn``
    workload), ``model``, ``network``, ``structure``, ``train`` (TrainSettings dict), ``spike`` (SpikeSettings
    dict or None), ``seed``, ``data`` (prepared workload path), ``frame_window_us``, ``calib_samples``,
    ``backends``, ``backend_limits``, ``tsne_samples``, ``tsne_perplexities``, optional ``device`` (training
    only; evaluation runs the NIR graph on the CPU backends).  ANNs start from PyTorch's default
    initialisation, SNNs from it rescaled by :func:`~snnbridge.models.training.init_firing`.  Files go to ``cell_dir``
    (``train.ckpt`` — resumed when present —, ``model.pt``, ``model.nir``)."""
    t_start = time.perf_counter()
    cell = Path(cell_dir)
    cell.mkdir(parents=True, exist_ok=True)
    m, seed, tr, sp = str(spec["model"]), int(spec["seed"]), spec["train"], spec.get("spike")
    data = read_prepared(spec["data"])
    if spec["kind"] == "ann":
        xtr, ytr, xte, yte = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    else:
        trs, tes = data["train"], data["test"]
        ytr, yte = torch.as_tensor(trs.labels), torch.as_tensor(tes.labels)
        xtr, xte = _event_inputs(m, trs, tes, sp["T"] if sp else None, int(spec["frame_window_us"]),
                                 int(spec.get("binary_columns") or 100))
    shape = tuple(xtr.shape[2:]) if m == "6" else tuple(xtr.shape[1:])
    snn_lr = tr.get("snn_lr") or tr["lr"]
    fit = dict(epochs=tr["epochs"], batch_size=tr["batch_size"], lr=tr["lr"], seed=seed, progress=progress,
               optimizer=tr["optimizer"], lr_step=tr["lr_step"], lr_gamma=tr["lr_gamma"],
               checkpoint=cell / "train.ckpt", device=spec.get("device") or "cpu")
    torch.manual_seed(seed)
    result: dict = {"model": m, "label": MODEL_NAMES[m], "workload": spec["workload"], "paper": spec["paper"],
                    "network": spec["network"], "structure": spec["structure"], "seed": seed,
                    "spike": sp, "train_settings": tr}
    snn: Network | None = None
    compare = str(spec.get("threshold_compare") or "strict")  # the paper's SNNs fire at u >= u_th (Eq. 4)
    if m in ("1", "4", "5"):
        net = Network(NetworkConfig(spec["structure"], shape, mode="ann", bias=True, pool="average",
                                    conv_stride=2 if m == "4" else 1))
        hist = train(net, xtr, ytr, **fit)
        net.cpu()
        result["mode"] = "ann"
        t1 = time.perf_counter()
        result["accuracy"] = evaluate(net, xte, yte)
        result["accuracy_source"] = "torch (ANN; NIR has no ReLU)"
        result["cost"] = ann_costs(net)
        net.save(cell / "model.pt")
        if m in ("4", "5") and spec.get("tsne_samples"):
            n = int(spec["tsne_samples"])
            result["tsne"] = _tsne(_ann_hidden(net, xte[:n]), yte[:n], spec["tsne_perplexities"], seed)
    elif m == "2":
        ann = constrained_ann(spec["structure"], shape)
        hist = train(ann, xtr, ytr, **fit)
        ann.cpu()
        result["ann_accuracy"] = evaluate(ann, xte, yte)
        calib = xtr[:int(spec["calib_samples"])]
        # threshold tuning on training images (the last calib_samples; never the test set), Table 2's u_th among the
        # candidates; the table's Model-2 keeps the paper's u_th (Table 2) and reports the tuned one beside it
        cands = sorted({float(v) for v in (spec.get("threshold_candidates") or ())} | {float(sp["threshold"])})
        n_val = int(spec["calib_samples"])
        best, tuning = tune_threshold(ann, calib, xtr[-n_val:], ytr[-n_val:], cands, int(sp["T"]), seed=seed,
                                      threshold_compare=compare)
        result["threshold_tuning"] = {"T": int(sp["T"]), "samples": n_val, "accuracy": {str(k): v for k, v in
                                                                                      tuning.items()},
                                      "best": best}
        snn = convert_to_snn(ann, calib, threshold=sp["threshold"], reset="zero", threshold_compare=compare)
        n_curve = int(spec.get("curve_samples") or len(yte))
        Ts = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if t < int(sp["T"])] + [int(sp["T"])]
        result["accuracy_vs_T"] = {"samples": min(n_curve, len(yte)), "threshold": float(sp["threshold"]),
                                   "accuracy": {str(k): v for k, v in
                                                accuracy_vs_T(snn, xte[:n_curve], yte[:n_curve], Ts, seed).items()}}
        t1 = time.perf_counter()
    elif m in ("3", "3b", "6"):
        snn = Network(NetworkConfig(spec["structure"], shape, mode="snn", neuron="lif", decay=sp["decay"],
                                    threshold=sp["threshold"], surrogate_width=sp["surrogate_width"],
                                    pool="neuron", bias=False, threshold_compare=compare))
        enc = {"3": "bernoulli", "3b": "layer", "6": "frames"}[m]
        if not (cell / "train.ckpt").exists():
            result["init_rates"] = init_firing(snn, batch_input(snn, xtr[:64], sp["T"], enc, seed))
        hist = train(snn, xtr, ytr, T=sp["T"], encoder=enc, **{**fit, "lr": snn_lr})
        snn.cpu()
        t1 = time.perf_counter()
    else:
        raise SnnBridgeError(f"unknown model '{m}'; known: {', '.join(MODEL_NAMES)}")
    result["history"] = asdict(hist)
    result["train_seconds"] = t1 - t_start
    if snn is not None:
        snn.save(cell / "model.pt")
        T = int(sp["T"])
        enc = {"2": "bernoulli", "3": "bernoulli", "3b": "layer", "6": "frames"}[m]

        def make(i: int, j: int) -> torch.Tensor:
            if enc == "frames":
                return xte[i:j].transpose(0, 1).to(torch.float32)[:T]
            return encode(enc, xte[i:j], T, seed=10_000 + seed * 1_000_003 + i)

        n_tsne = int(spec.get("tsne_samples") or 0) if m == "6" else 0
        ev = evaluate_backends(snn, make, yte, tuple(spec["backends"]), dict(spec.get("backend_limits") or {}),
                               nir_path=cell / "model.nir", encoder=enc, hidden_samples=n_tsne)
        ref = ev["reference"]
        skipped = {b: {"status": "skipped: preset runs it on other networks only"}
                   for b in spec.get("backends_skipped") or ()}
        result.update(mode="snn", nir=ev["nir"], backends={**ev["backends"], **skipped},
                      cost_source=ev["cost_source"])
        if ref is None:
            raise SnnBridgeError("no backend could run the model: " + "; ".join(
                f"{k}: {v['status']}" for k, v in ev["backends"].items()))
        result["accuracy"] = ev["backends"][ref]["accuracy"]
        result["accuracy_source"] = f"{ref} backend (NIR)"
        result["cost"] = ev["backends"][ref]["cost"]
        if ev["hidden"] is not None:
            result["tsne"] = _tsne(ev["hidden"], yte[:len(ev["hidden"])], spec["tsne_perplexities"], seed)
    result["eval_seconds"] = time.perf_counter() - t1
    result["seconds"] = time.perf_counter() - t_start
    result["input_shape"] = list(shape)
    return result
