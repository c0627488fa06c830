"""``snnbridge demo``: train a small SNN from the paper's notation, export it to NIR, check every simulator, report.

No downloads, no arguments: the embedded 8x8 digits, Bernoulli rate-coded (paper §3.1), an
``Input-128-10`` LIF network (decay 0.25, threshold 0.5, T = 15) trained with STBP, exported to NIR,
then run on the reference, snnTorch, Norse and Brian2 (plus the upstream audit modes, reported but
not counted), and the full report written.  An ANN of the same structure is trained too so that the
accuracy-vs-#Add chart has the paper's comparison point.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from snnbridge.validation.conformance import ConformanceResult

STRUCTURE = "Input-128-10"
BACKENDS = ("reference", "snntorch", "norse", "brian2", "snntorch-upstream", "norse-upstream")


@dataclass
class DemoResult:
    """What the demo produced: the check, where the report is, the trained accuracies and the wall time (s)."""

    result: ConformanceResult
    report: Path
    snn_train_accuracy: float
    ann_test_accuracy: float
    seconds: float


def run_demo(out: str | Path = "snnbridge-report", epochs: int = 5, samples: int = 200, quick: bool = False,
             T: int = 15, seed: int = 0, backends=BACKENDS, progress: bool = True, log=print,
             overwrite: bool = False) -> DemoResult:
    """Train, export, check and report; ``quick`` trains 1 epoch and checks 40 samples.

    ``out`` follows the output-folder rule (new, empty or written by snnbridge, else ``overwrite``)."""
    from snnbridge.data.digits import load_digits
    from snnbridge.fileio import check_output_folder
    from snnbridge.models import Network
    from snnbridge.models.encoders import bernoulli
    from snnbridge.models.export import export
    from snnbridge.models.training import train
    from snnbridge.validation.conformance import conform
    from snnbridge.validation.report import write_report

    check_output_folder(out, overwrite)  # before training, not after
    t0 = time.perf_counter()
    if quick:
        epochs, samples = min(epochs, 1), min(samples, 40)
    torch.manual_seed(seed)
    x_tr, y_tr, x_te, y_te = load_digits(size=8, seed=seed)
    samples = min(samples, len(y_te))
    log(f"[1/4] training {STRUCTURE} (LIF, T={T}, decay 0.25, threshold 0.5) on {len(y_tr)} embedded digits, "
        f"{epochs} epoch(s)")
    snn = Network(structure=STRUCTURE, input_shape=(1, 8, 8), mode="snn", neuron="lif", decay=0.25, threshold=0.5,
                  dt=1e-3, reset="zero")
    hist = train(snn, x_tr, y_tr, epochs=epochs, batch_size=50, lr=3e-3, T=T, encoder="bernoulli", seed=seed,
                 progress=progress)
    torch.manual_seed(seed)
    ann = Network(structure=STRUCTURE, input_shape=(1, 8, 8), mode="ann")
    train(ann, x_tr, y_tr, epochs=epochs, batch_size=50, lr=3e-3, seed=seed, progress=False)
    ann_acc = float((ann.predict(x_te) == y_te).double().mean())
    with tempfile.TemporaryDirectory(prefix="snnbridge-demo-") as tmp:
        nir_path = export(snn, Path(tmp) / "model.nir", encoder="bernoulli")
        log(f"[2/4] exported to NIR ({sum(p.numel() for p in snn.parameters()):,} weights); "
            f"ANN twin: {100 * ann_acc:.1f}% test accuracy")
        x = bernoulli(x_te[:samples], T, seed)
        log(f"[3/4] running {samples} test samples through {', '.join(backends)}")
        result = conform(nir_path, x, backends=list(backends), profile="exact", labels=y_te[:samples],
                         progress=progress, model=f"demo: {STRUCTURE} on digits",
                         data=f"embedded digits test split, {samples} samples, Bernoulli T={T}, seed {seed}",
                         seed=seed)
        points = [{"label": "ANN twin (trained)", "accuracy": ann_acc, "adds": result.ann_costs.adds, "kind": "ann"}]
        paths = write_report(result, out, extra_points=points, extra_files={"model.nir": nir_path},
                             overwrite=overwrite)
    secs = time.perf_counter() - t0
    log(f"[4/4] report written: {paths.html.resolve()}")
    return DemoResult(result, paths.html, hist.accuracy[-1] if hist.accuracy else float("nan"), ann_acc, secs)
