"""Speed of every available backend against a hand-written snnTorch network, measured in one process.

Workloads (batch 100, 100 steps by default):

* ``mlp`` — the Table-1 MNIST MLP ``784-512-10`` (LIF, zero reset), random weights scaled so the hidden
  layer fires at a realistic rate, on Bernoulli-coded real MNIST test digits (``../shared/data/MNIST``;
  scikit-learn's digits upscaled to 28x28 when absent);
* ``cnn`` — ``cnn_sinabs.nir`` (IF CNN, SumPool2d) on 1 ms event-count frames of real N-MNIST test
  recordings (``../shared/data/NMNIST``; random events when absent).

Every backend runs ``sim.run(x, record=[output], membranes=False)`` (the same call for all); the time is
the best of ``--repeats`` warm runs after one untimed compile-and-run (reported separately: Brian2
builds its network and code there).  The baseline is a hand-written snnTorch network (``nn.Linear`` /
``nn.Conv2d`` + ``snn.Leaky(reset_delay=False)``, looping over time) with the same weights.  Each
backend's output spikes are compared with the reference executor's (``mismatch`` = differing spikes).

    python benchmarks/bench_backends.py                      # all workloads, all available backends
    python benchmarks/bench_backends.py --workloads mlp --brian2-targets cython cpp_standalone
    python benchmarks/bench_backends.py --profile            # also profile the Brian2 runs
    python benchmarks/bench_backends.py --device cuda --samples 1000   # reference + torch backends on a GPU

``--device cuda`` runs the reference executor, the torch backends (those whose ``compile`` takes ``device``) and
the hand-written snnTorch network on the GPU (inputs moved there once, before timing; every timed call ends
with ``torch.cuda.synchronize()``; IEEE float32 unless ``--tf32``); backends that run on the CPU only (Brian2,
the upstream audits) are skipped with a note.  Spike mismatches are counted against the reference executor
run on the CPU.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snnbridge import backends  # noqa: E402
from snnbridge.backends.base import devices_of, resolve_device  # noqa: E402
from snnbridge.bridge import ReferenceExecutor, read_graph  # noqa: E402
from snnbridge.bridge.graph import FlatGraph, prepare  # noqa: E402
from snnbridge.errors import BackendUnavailableError, SnnBridgeError, UnsupportedNodeError  # noqa: E402

SHARED = ROOT.parent / "shared"
UPSTREAM = ("snntorch-upstream", "norse-upstream")


@dataclass
class Workload:
    name: str
    graph: object
    inputs: torch.Tensor  # [T, B, ...]
    fg: FlatGraph
    note: str
    extra: dict = field(default_factory=dict)

    @property
    def output(self) -> str:
        return self.fg.outputs[0]


# --------------------------------------------------------------------------- workloads


def mnist_images(n: int, seed: int) -> tuple[torch.Tensor, str]:
    """``n`` seeded MNIST test images ``[n, 1, 28, 28]`` in [0, 1] and where they came from."""
    raw = SHARED / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    g = torch.Generator().manual_seed(seed)
    if raw.exists():  # the IDX file (what torchvision's MNIST(train=False).data holds) is simple to read directly
        data = torch.from_numpy(np.fromfile(raw, dtype=np.uint8, offset=16).reshape(-1, 28, 28).copy())
        idx = torch.randperm(len(data), generator=g)[:n]
        return data[idx].float().div(255).unsqueeze(1), "real MNIST test digits"
    try:
        from snnbridge.data.digits import load_digits_mnist_like

        _, _, x, _ = load_digits_mnist_like(seed=seed)
    except ImportError:  # no scikit-learn either (a bare GPU box): seeded random intensities, digit-like density
        x = (torch.rand((n, 1, 28, 28), generator=g) * (torch.rand((n, 1, 28, 28), generator=g) < 0.2)).float()
        return x, "random images (neither MNIST nor scikit-learn found)"
    if len(x) < n:  # fewer digits than asked: repeat them
        x = x.repeat((n + len(x) - 1) // len(x), 1, 1, 1)
    return x[:n], "scikit-learn digits upscaled to 28x28 (MNIST not found)"


def mlp_workload(B: int, T: int, seed: int) -> Workload:
    from snnbridge.bridge.export import to_nir
    from snnbridge.models import TABLE1, Network
    from snnbridge.models.encoders import bernoulli
    from snnbridge.validation.node_suite import scale_to_fire

    images, source = mnist_images(B, seed)
    x = bernoulli(images.reshape(B, 784), T, seed=seed).to(torch.float32)
    torch.manual_seed(seed)
    net = Network(structure=TABLE1["mnist_mlp"], input_shape=(784,), neuron="lif", reset="zero", threshold=0.5,
                  decay=0.5).double()
    scale_to_fire(net, x[:, :20].double(), low=0.03, high=0.1)
    graph = to_nir(net)
    fg = prepare(graph)
    return Workload("mlp", graph, x, fg, f"Table-1 MNIST MLP 784-512-10 (LIF), Bernoulli-coded {source}")


def nmnist_frames(B: int, T: int, seed: int) -> tuple[torch.Tensor, str]:
    """``[T, B, 2, 34, 34]`` 1 ms event-count frames of ``B`` seeded N-MNIST test recordings."""
    files = sorted((SHARED / "data" / "NMNIST" / "Test").glob("*/*.bin"))
    if files:
        try:
            from tonic.io import read_mnist_file
        except ImportError:
            read_mnist_file = None
        if read_mnist_file is not None:
            pick = np.random.default_rng(seed).permutation(len(files))[:B]
            frames = np.zeros((T, B, 2, 34, 34), dtype=np.float32)
            dtype = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
            for b, i in enumerate(pick):
                ev = read_mnist_file(str(files[i]), dtype=dtype)
                ev = ev[ev["t"] < T * 1000]
                np.add.at(frames, (ev["t"] // 1000, b, ev["p"], ev["y"], ev["x"]), 1.0)
            return torch.from_numpy(frames), "real N-MNIST test recordings"
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((T, B, 2, 34, 34), generator=g) < 0.01).float(), "random events (N-MNIST not found)"


def cnn_workload(B: int, T: int, seed: int) -> Workload | None:
    path = SHARED / "nir-graphs" / "cnn_sinabs.nir"
    if not path.exists():
        print(f"skipping cnn: {path} not found (--shared names the folder holding nir-graphs/ and data/)")
        return None
    graph = read_graph(path)
    frames, source = nmnist_frames(B, T, seed)
    fg = prepare(graph)
    return Workload("cnn", graph, frames, fg, f"cnn_sinabs.nir (IF CNN) on 1 ms frames of {source}")


# --------------------------------------------------------------------------- hand-written snnTorch


class NativeSnnTorch(torch.nn.Module):
    """A plain snnTorch network with the workload's weights: synaptic modules + ``snn.Leaky`` per neuron node."""

    def __init__(self, fg: FlatGraph, dtype: torch.dtype) -> None:
        import snntorch as snn
        import torch.nn.functional as F

        from snnbridge.bridge import semantics as sem

        super().__init__()
        self.layers = torch.nn.ModuleList()
        self.kinds: list[str] = []
        for name in fg.order:
            node, kind = fg.nodes[name], fg.type_of(name)
            if kind in ("Linear", "Affine"):
                w = torch.as_tensor(np.asarray(node.weight, dtype=np.float64))
                m = torch.nn.Linear(w.shape[1], w.shape[0], bias=kind == "Affine")
                m.weight.data = w
                if kind == "Affine":
                    m.bias.data = torch.as_tensor(np.asarray(node.bias, dtype=np.float64))
            elif kind == "Conv2d":
                w = torch.as_tensor(np.asarray(node.weight, dtype=np.float64))
                p = sem.conv2d_params(node)
                m = torch.nn.Conv2d(w.shape[1] * p["groups"], w.shape[0], tuple(w.shape[2:]), stride=p["stride"],
                                    padding=p["padding"], dilation=p["dilation"], groups=p["groups"],
                                    bias=node.bias is not None)
                m.weight.data = w
                if node.bias is not None:
                    m.bias.data = torch.as_tensor(np.asarray(node.bias, dtype=np.float64))
            elif kind == "SumPool2d":
                k, s, pad = sem.pool_params(node)
                m = _SumPool(k, s, pad, F)
            elif kind == "Flatten":
                m = torch.nn.Flatten()
            elif kind in ("LIF", "IF"):
                c = fg.coefficients(name)
                beta = float(np.asarray(c.decay).ravel()[0])
                thr = float(np.asarray(c.threshold).ravel()[0])
                m = snn.Leaky(beta=beta, threshold=thr, reset_mechanism="zero", reset_delay=False)
            else:
                continue
            self.layers.append(m)
            self.kinds.append(kind)
        self.to(dtype)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mems = [layer.init_leaky() if k in ("LIF", "IF") else None for layer, k in zip(self.layers, self.kinds)]
        out = []
        for t in range(x.shape[0]):
            h = x[t]
            for i, (layer, k) in enumerate(zip(self.layers, self.kinds)):
                if k in ("LIF", "IF"):
                    h, mems[i] = layer(h, mems[i])
                else:
                    h = layer(h)
            out.append(h)
        return torch.stack(out)


class _SumPool(torch.nn.Module):
    def __init__(self, k, s, p, F) -> None:
        super().__init__()
        self.k, self.s, self.p, self.F = k, s, p, F

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.F.avg_pool2d(x, self.k, self.s, self.p, count_include_pad=True, divisor_override=1)


# --------------------------------------------------------------------------- timing


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work (a no-op on the CPU), so that a timed call includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_of(fn, repeats: int, device: torch.device = torch.device("cpu")) -> float:
    times = []
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return min(times)


def profile_call(fn, top: int = 12) -> str:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    return "\n".join(lines[start:start + top + 1])


def run_workload(w: Workload, args) -> list[dict]:
    dtype = getattr(torch, args.dtype)
    device = torch.device(args.device)
    x_cpu = w.inputs.to(dtype)
    x = x_cpu.to(device)  # [T, B, ...] on the device, once (not timed)
    T, B = x.shape[:2]
    print(f"\n## {w.name}: {w.note}; T={T}, B={B}, {args.dtype}, device {device}, "
          f"torch threads={torch.get_num_threads()}")
    ref = ReferenceExecutor(w.graph, dtype=dtype).run(x_cpu, record=[w.output], membranes=False)[w.output]
    rates = ReferenceExecutor(w.graph, dtype=dtype).run(x_cpu[:, :10], membranes=False)
    fr = {n: f"{rates[n].float().mean().item():.3f}" for n in rates.spiking_nodes if rates.node_types[n] != "Output"}
    print(f"firing rates (reference, 10 samples): {fr}")
    native = NativeSnnTorch(w.fg, dtype).to(device)
    native(x[:, :2])
    entries = [{"workload": w.name, "backend": "snntorch (hand-written)", "compile_s": 0.0,
                "mismatch": int((native(x) > 0.5).cpu().ne(ref).sum()), "fn": lambda: native(x), "times": []}]
    configs = []
    for name in backends.names():
        if name in UPSTREAM and not args.upstream:
            continue
        if args.backends and name not in args.backends:
            continue
        kinds = devices_of(name)
        if device.type != "cpu" and kinds is not None and device.type not in kinds:
            print(f"{name:40s} skipped: runs on {' or '.join(kinds)} only")
            continue
        opts_device = {"device": device} if device.type != "cpu" else {}
        if name == "brian2":
            configs += [(name, {"target": t, "threads": args.threads, "input_projection": ip})
                        for ip in args.brian2_input for t in args.brian2_targets]
        else:
            configs.append((name, dict(opts_device)))
    sims = {}
    for name, opts in configs:  # compile + first run (untimed for the ratio)
        label = name
        if "target" in opts:
            label += f"[{opts['target']}" + (", input synapses]" if opts["input_projection"] == "synapses" else "]")
        try:
            be = backends.get(name)
            t0 = time.perf_counter()
            sim = be.compile(w.graph, dtype=dtype, **opts)
            rec = sim.run(x, record=[w.output], membranes=False)
            synchronize(device)
            t_compile = time.perf_counter() - t0
        except (BackendUnavailableError, ImportError, UnsupportedNodeError) as e:
            print(f"{label:40s} skipped: {type(e).__name__}: {str(e)[:150]}")
            continue
        except Exception as e:  # the upstream importers fail on some graphs: that is what they audit
            if name not in UPSTREAM:
                raise
            print(f"{label:40s} failed: {type(e).__name__}: {str(e)[:150]}")
            continue
        out = rec[w.output].cpu()
        sims[label] = sim
        entries.append({"workload": w.name, "backend": label, "compile_s": t_compile,
                        "mismatch": int(out.ne(ref).sum()) if out.dtype == torch.bool else -1,
                        "fn": lambda sim=sim: sim.run(x, record=[w.output], membranes=False), "times": []})
    for _ in range(args.repeats):  # interleaved, so that load from other processes hits every backend alike
        for e in entries:
            synchronize(device)
            t0 = time.perf_counter()
            e["fn"]()
            synchronize(device)
            e["times"].append(time.perf_counter() - t0)
    t_native = min(entries[0]["times"])
    rows = []
    for e in entries:
        row = {k: v for k, v in e.items() if k not in ("fn", "times")}
        row.update({"device": str(device), "samples": int(B), "steps": int(T), "dtype": args.dtype})
        row["run_s"] = min(e["times"])
        row["ratio"] = row["run_s"] / t_native
        sim = sims.get(e["backend"])
        if sim is not None and hasattr(sim, "timings"):
            sim.run(x, record=[w.output], membranes=False)
            row["phases"] = {k: round(v, 4) for k, v in sim.timings.items()}
            if getattr(sim, "last_layout", None) is not None:
                row["layout"] = f"{sim.last_layout.copies} copies x {sim.last_layout.rounds} rounds"
        if sim is not None and args.full_record:
            row["run_all_s"] = best_of(lambda sim=sim: sim.run(x), 1, device)
        rows.append(row)
        if sim is not None and args.profile and e["backend"].startswith("brian2"):
            print(f"\n### profile {e['backend']} ({w.name})\n" + profile_call(
                lambda sim=sim: sim.run(x, record=[w.output], membranes=False)))
    print(f"load average now: {os.getloadavg()[0]:.2f}")
    print(f"\n{'backend':40s} {'compile+1st run':>16s} {'run':>9s} {'x snnTorch':>10s} {'mismatch':>9s}  phases")
    for r in rows:
        extra = ""
        if "phases" in r:
            extra = "  " + " ".join(f"{k}={v:.3f}" for k, v in r["phases"].items()) + f"  ({r.get('layout', '')})"
        if "run_all_s" in r:
            extra += f"  all-nodes run={r['run_all_s']:.3f}s"
        print(f"{r['backend']:40s} {r['compile_s']:15.2f}s {r['run_s']:8.3f}s {r['ratio']:9.2f}x "
              f"{r['mismatch']:9d}{extra}")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backends", nargs="*", help="only these registry names (default: all available)")
    p.add_argument("--brian2-targets", nargs="+", default=["numpy", "cython", "cpp_standalone"])
    p.add_argument("--threads", type=int, default=1, help="OpenMP threads of Brian2's cpp_standalone binary")
    p.add_argument("--brian2-input", nargs="+", default=["current"], choices=["current", "synapses"],
                   help="Brian2 input_projection: fold the input layer into a current, or Synapses from inputs")
    p.add_argument("--upstream", action="store_true", help="also time the upstream audit modes")
    p.add_argument("--full-record", action="store_true", help="also time a run recording every node")
    p.add_argument("--profile", action="store_true", help="cProfile one Brian2 run per target")
    p.add_argument("--torch-threads", type=int, help="torch.set_num_threads for every torch backend (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: where the reference, the torch backends and "
                                                   "the hand-written snnTorch run (others are skipped off the CPU)")
    p.add_argument("--shared", type=Path, help="folder holding nir-graphs/ and data/ (default: ../shared)")
    p.add_argument("--json", type=Path, help="write the result rows here")
    p.add_argument("--tf32", action="store_true", help="on CUDA, let matmuls/convolutions use TF32 (default: "
                                                        "IEEE float32, as conformance runs do)")
    args = p.parse_args(argv)
    try:
        args.device = str(resolve_device(args.device))
    except SnnBridgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = bool(args.tf32)
    if args.shared is not None:
        global SHARED
        SHARED = args.shared
    torch.manual_seed(args.seed)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    if args.device.startswith("cuda"):
        print(f"GPU: {torch.cuda.get_device_name(torch.device(args.device))}, torch {torch.__version__}")
    rows = []
    for name in args.workloads:
        w = (mlp_workload if name == "mlp" else cnn_workload)(args.samples, args.steps, args.seed)
        if w is not None:
            rows += run_workload(w, args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
