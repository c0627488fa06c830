"""GPU check: conformance of the reference and torch backends run on CUDA, and their speed there.

    python benchmarks/gpu_check.py OUT_DIR                      # on a machine with CUDA (< 4 min on an H200)
    python benchmarks/gpu_check.py OUT_DIR --shared build/gpu-shared --large-batch 1000

(a) ``conform`` on the Table-1 MNIST MLP and on ``cnn_sinabs.nir`` (a small IF CNN on 2x34x34 events when that
    file is absent) with ``reference@device=cuda``, ``snntorch@device=cuda`` and ``norse@device=cuda``, in the
    ``exact`` (float64) and ``float32`` profiles, each against the CPU float64 yardstick; prints one verdict
    line per backend and writes ``conform-<workload>-<profile>.json`` (the full report) to OUT_DIR.
(b) ``benchmarks/bench_backends.py --device cuda`` on its workloads at batch 100 and ``--large-batch``, writing
    ``bench-cuda-b<B>.json``.  ``summary.json`` collects the verdicts, timings and the GPU's name.

The project's GPU machine has torch but not nir, snntorch or norse, and cannot reach a package index: carry the
pure-Python packages and the data (both folders are git-ignored)::

    mkdir -p build/gpu-site build/gpu-shared/nir-graphs build/gpu-shared/data/MNIST/raw
    cp -r .venv/lib/python3.11/site-packages/{nir,nirtorch,snntorch,norse}{,-*.dist-info} build/gpu-site/
    cp ../shared/nir-graphs/cnn_sinabs.nir build/gpu-shared/nir-graphs/
    cp ../shared/data/MNIST/raw/t10k-images-idx3-ubyte build/gpu-shared/data/MNIST/raw/
    # device run, carry ["build/gpu-site", "build/gpu-shared"]:
    PYTHONPATH=$PWD/build/gpu-site python3 benchmarks/gpu_check.py $OUT/gpu --shared build/gpu-shared

Needs only torch, numpy, nir, h5py, snntorch and norse (plus rich/typer/tqdm/jinja2): backends that are not
installed (Brian2, SpikingJelly, ...) are skipped, and missing data (``shared/data/MNIST``, N-MNIST) falls back
to the embedded digits or seeded random images/events, as ``bench_backends.py`` does.  Without CUDA it stops
with one error line (exit 2); ``--device cpu`` runs the same script on the CPU (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_backends as bb  # noqa: E402

from snnbridge.backends.base import resolve_device  # noqa: E402
from snnbridge.errors import SnnBridgeError  # noqa: E402

BACKENDS = ("reference", "snntorch", "norse")


def find_shared(given: Path | None) -> Path:
    """Folder with ``nir-graphs/`` and ``data/``: ``given``, else ``./shared``, ``../shared``, ``build/gpu-shared``."""
    if given is not None:
        return given
    for cand in (ROOT / "shared", ROOT.parent / "shared", ROOT / "build" / "gpu-shared"):
        if (cand / "nir-graphs").is_dir():
            return cand
    return ROOT.parent / "shared"


def small_cnn(B: int, T: int, seed: int) -> bb.Workload:
    """A small IF CNN ``Input-8C3-AP2-16C3-AP2-10`` on ``[T, B, 2, 34, 34]`` events (when cnn_sinabs.nir is absent)."""
    from snnbridge.bridge.export import to_nir
    from snnbridge.bridge.graph import prepare
    from snnbridge.models import Network
    from snnbridge.validation.node_suite import scale_to_fire

    frames, source = bb.nmnist_frames(B, T, seed)
    torch.manual_seed(seed)
    net = Network(structure="Input-8C3-AP2-16C3-AP2-10", input_shape=(2, 34, 34), neuron="lif", reset="zero",
                  threshold=0.5, decay=0.5).double()
    scale_to_fire(net, frames[:, :8].double(), low=0.02, high=0.1)
    graph = to_nir(net)
    return bb.Workload("cnn", graph, frames, prepare(graph), f"small LIF CNN (cnn_sinabs.nir absent) on {source}")


def conform_part(out: Path, device: str, samples: int, steps: int, seed: int, batch_size: int) -> list[dict]:
    """(a): every workload x profile, the three backends on ``device`` against the CPU float64 yardstick.

    ``batch_size`` samples per backend call (each batch moves to the device, its recording back to the CPU).
    """
    from snnbridge.validation.conformance import conform

    workloads = [bb.mlp_workload(samples, steps, seed)]
    cnn = bb.cnn_workload(samples, steps, seed)
    workloads.append(cnn if cnn is not None else small_cnn(samples, steps, seed))
    rows = []
    for w in workloads:
        for profile in ("exact", "float32"):
            specs = [f"{b}@device={device}" for b in BACKENDS]
            t0 = time.perf_counter()
            res = conform(w.graph, w.inputs, backends=specs, profile=profile, model=w.name, data=w.note, seed=seed,
                          batch_size=batch_size)
            wall = time.perf_counter() - t0
            (out / f"conform-{w.name}-{profile}.json").write_text(json.dumps(res.to_dict(), indent=1))
            print(f"\n### conform {w.name} ({w.note}), profile {profile}, {samples} samples x T={steps}, "
                  f"backends on {device}: {wall:.1f} s")
            print(res.summary())
            for b in res.backends.values():
                rows.append({"workload": w.name, "profile": profile, "backend": b.name, "status": b.status,
                             "device": b.device, "dtype": b.dtype, "runtime_s": round(b.runtime_s, 4),
                             "first_divergent_node": b.first_divergent_node, "reason": b.reason,
                             "nodes_compared": sum(1 for n in b.nodes.values() if n.compared),
                             "yardstick_runtime_s": round(res.yardstick.runtime_s, 4)})
    return rows


def bench_part(out: Path, device: str, batches: list[int], steps: int, shared: Path, repeats: int) -> dict:
    """(b): ``bench_backends`` on ``device`` at each batch size; the rows of each run."""
    found = {}
    for B in batches:
        path = out / f"bench-{device.replace(':', '')}-b{B}.json"
        argv = ["--device", device, "--samples", str(B), "--steps", str(steps), "--repeats", str(repeats),
                "--shared", str(shared), "--backends", *BACKENDS, "--json", str(path)]
        print(f"\n### bench_backends {' '.join(argv)}")
        t0 = time.perf_counter()
        rc = bb.main(argv)
        found[B] = {"rc": rc, "wall_s": round(time.perf_counter() - t0, 2),
                    "rows": json.loads(path.read_text()) if path.exists() else []}
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder for the JSON results")
    p.add_argument("--device", default="cuda")
    p.add_argument("--shared", type=Path, help="folder holding nir-graphs/ and data/ (default: found near the repo)")
    p.add_argument("--conform-samples", type=int, default=100)
    p.add_argument("--conform-batch", type=int, default=50, help="samples per backend call in (a)")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--large-batch", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-conform", action="store_true")
    p.add_argument("--skip-bench", action="store_true")
    args = p.parse_args(argv)
    try:
        device = str(resolve_device(args.device))
    except SnnBridgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("SNNBRIDGE_MEMORY_BUDGET", "48GiB")  # batch 1000 of the CNN: ~9 GiB per run
    shared = find_shared(args.shared)
    bb.SHARED = shared
    t0 = time.perf_counter()
    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else "cpu"
    print(f"device {device} ({gpu}), torch {torch.__version__}, shared data: {shared} "
          f"({'found' if shared.is_dir() else 'absent'}), {os.cpu_count()} CPUs")
    summary: dict = {"device": device, "gpu": gpu, "torch": torch.__version__, "shared": str(shared),
                     "steps": args.steps}
    if not args.skip_conform:
        summary["conform"] = conform_part(args.out, device, args.conform_samples, args.steps, args.seed,
                                          args.conform_batch)
    if not args.skip_bench:
        batches = sorted({100, args.large_batch})
        summary["bench"] = bench_part(args.out, device, batches, args.steps, shared, args.repeats)
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\n## verdicts (backends on {device} vs the CPU float64 yardstick)")
    for r in summary.get("conform", []):
        print(f"  {r['workload']:4s} {r['profile']:8s} {r['backend']:24s} {r['status']:12s} "
              f"{r['runtime_s']:8.3f}s  {r['first_divergent_node'] or ''} {r['reason'][:80]}")
    print(f"total {summary['wall_s']} s; results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
