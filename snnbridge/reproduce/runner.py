"""``reproduce``: build the cells of Tables 4-6 and Fig. 13 for a preset and the workloads present, run them
(Dask, cached), and write the report (JSON + Markdown + self-contained HTML)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from snnbridge.errors import SnnBridgeError
from snnbridge.models.presets import NETWORKS, Preset, get_preset
from snnbridge.reproduce.sweep import run_cells
from snnbridge.reproduce.workloads import WORKLOADS, Workload, available_workloads, prepare_workload


@dataclass
class ReproduceResult:
    """What :func:`reproduce` produced: the results document and the report files."""

    document: dict
    paths: dict[str, Path]
    failed: list[dict]


def model_specs(w: Workload, data: Path, preset: Preset, seeds: Iterable[int], networks: Iterable[str] | None,
                models: Iterable[str] | None, backends: tuple[str, ...], device: str = "cpu") -> list[dict]:
    """One spec per network × model × seed of workload ``w`` (Tables 4-5)."""
    out = []
    default = preset.networks.get(w.paper) or NETWORKS[w.paper] if not w.offline else NETWORKS[w.paper]
    nets = [n for n in NETWORKS[w.paper] if (n in default if networks is None else n in networks)]
    tsne_net = "cnn" if "cnn" in nets else (nets[0] if nets else None)  # Fig. 12 shows the CNNs
    for net in nets:
        for m in w.models:
            if m == "3b" and w.paper not in preset.encoding_layer:
                continue
            if models is not None and m not in models and not (m == "3b" and "3" in models):
                continue
            spike_model = {"2": "2", "3": "3", "3b": "3", "6": "6"}.get(m)
            for seed in seeds:
                out.append(_spec(w, data, preset, net, m, seed, backends,
                                 asdict(preset.spike(w.paper, spike_model, net)) if spike_model else None,
                                 tsne=net == tsne_net, device=device))
    return out


def _spec(w: Workload, data: Path, preset: Preset, net: str, m: str, seed: int, backends: tuple[str, ...],
          spike: dict | None, epochs: int | None = None, tsne: bool = True, kind: str = "table",
          device: str = "cpu") -> dict:
    skipped = [b for b in backends if b != "reference" and net not in preset.backend_networks.get(b, (net,))]
    backends = tuple(b for b in backends if b not in skipped)
    limits = {b: preset.backend_sample_limits.get(b, preset.backend_samples) for b in backends if b != "reference"}
    limits["reference"] = None
    tr = asdict(preset.training(w.paper, net))
    if epochs is not None:
        tr["epochs"] = epochs
    spec = {"cell": kind, "workload": w.name, "paper": w.paper, "kind": w.kind, "model": m, "network": net,
            "structure": preset.structure(w.paper, net), "train": tr, "spike": spike, "seed": int(seed),
            "data": str(data), "frame_window_us": preset.frame_window_us, "calib_samples": preset.calib_samples,
            "binary_columns": preset.binary_columns, "threshold_candidates": list(preset.threshold_candidates),
            "curve_samples": preset.curve_samples,
            "backends": list(backends), "backend_limits": limits, "backends_skipped": skipped,
            "tsne_samples": preset.tsne_samples if tsne and m in ("4", "5", "6") else 0,
            "tsne_perplexities": list(preset.tsne_perplexities)}
    if spike is not None:  # the SNNs' firing rule (Models 2, 3, 6); ANN cells keep their hash
        spec["threshold_compare"] = preset.threshold_compare
    if device != "cpu":  # only then part of the cell's hash: CPU results stay cached across versions
        spec["device"] = device
    return spec


def sweep_specs(w: Workload, data: Path, preset: Preset, seeds: Iterable[int], device: str = "cpu") -> list[dict]:
    """Fig. 13: Model-6 on ``w`` over ``preset.sweep_T × preset.sweep_thresholds`` (reference backend; the
    grid brackets Table 3's T and u_th)."""
    net = preset.sweep_network if preset.sweep_network in NETWORKS[w.paper] else NETWORKS[w.paper][0]
    base = preset.spike(w.paper, "6", net)
    return [_spec(w, data, preset, net, "6", s, ("reference",), {**asdict(base), "T": T, "threshold": th},
                  epochs=preset.sweep_epochs, tsne=False, kind="sweep", device=device)
            for T in preset.sweep_T for th in preset.sweep_thresholds for s in seeds]


def reproduce(preset: str | Preset = "quick", data_dir: str | Path | None = None, out: str | Path = "reproduce-out",
              scheduler: str = "local", workers: int = 2, seeds: Iterable[int] = (0,),
              workloads: Iterable[str] | None = None, networks: Iterable[str] | None = None,
              models: Iterable[str] | None = None, backends: Iterable[str] | None = None, sweep: bool = True,
              progress: bool = True, device: str = "cpu", overwrite: bool = False) -> ReproduceResult:
    """Regenerate Tables 4, 5, 6 and Figs. 8/10/12/13 for the workloads present; write the report to ``out``.

    ``workloads``/``networks``/``models`` filter the cells (default: all available); ``backends`` defaults to
    the preset's; ``device`` is where the networks train (e.g. ``"cuda"``; evaluation runs the exported NIR
    graphs on the CPU backends).  Cells are cached in ``out/cache`` so a rerun (or an interrupted run) only
    computes what is missing.  ``out`` must be new, empty or an earlier snnbridge output folder (it holds
    ``.snnbridge-output``); any other folder is refused unless ``overwrite`` (only snnbridge's files are replaced).
    """
    from snnbridge.fileio import check_output_folder, mark_folder
    from snnbridge.reproduce.report import build_document, write_report

    t0 = time.perf_counter()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SnnBridgeError(f"workers must be an integer >= 1, got {workers!r}")
    check_output_folder(out, overwrite)
    p = get_preset(preset)
    if data_dir is not None and not Path(data_dir).is_dir():
        raise SnnBridgeError(f"--data-dir {data_dir} is not a directory")
    found = available_workloads(data_dir)
    if workloads is not None:
        wanted = list(workloads)
        unknown = [n for n in wanted if n not in WORKLOADS]
        if unknown:
            raise SnnBridgeError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")
        missing = [n for n in wanted if n not in {w.name for w in found}]
        if missing:
            raise SnnBridgeError(f"workload(s) {', '.join(missing)} not found under --data-dir {data_dir}")
        found = [w for w in found if w.name in wanted]
    else:  # an offline stand-in only where the dataset it stands for is absent
        real = {w.paper for w in found if not w.offline}
        found = [w for w in found if not (w.offline and w.paper in real)]
    bks = tuple(backends) if backends is not None else p.backends
    if "reference" not in bks:
        bks = ("reference",) + bks
    else:
        bks = ("reference",) + tuple(b for b in bks if b != "reference")
    out = mark_folder(Path(out), "reproduce")  # before the cache is written, so that a rerun may resume here
    cache = out / "cache"
    seeds = list(seeds)
    specs: list[dict] = []
    data_paths: dict[str, Path] = {}
    for w in found:
        data_paths[w.name] = prepare_workload(w, p, data_dir, cache, seed=0)
        specs += model_specs(w, data_paths[w.name], p, seeds, networks, models, bks, device)
    if sweep:  # Fig. 13 on every real event workload (N-MNIST, DVS-CIFAR10); the emulated one only without them
        ev = [w for w in found if w.kind == "snn" and not w.offline] or [w for w in found if w.kind == "snn"][:1]
        for w in ev:
            specs += sweep_specs(w, data_paths[w.name], p, seeds[:1], device)
    if not specs:
        raise SnnBridgeError("nothing to run: the filters leave no cell")
    results = run_cells(specs, cache, scheduler=scheduler, workers=workers, progress=progress)
    failed = [r for r in results if "error" in r]
    doc = build_document(p, found, data_paths, results, bks, data_dir, time.perf_counter() - t0,
                         {"scheduler": scheduler, "workers": workers, "seeds": seeds, "device": device})
    paths = write_report(doc, out, overwrite=overwrite)
    return ReproduceResult(doc, paths, failed)
