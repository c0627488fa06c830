"""Overhead of the snnTorch and Norse adapters against hand-written native networks with the same weights.

Workload: the Table-1 MNIST MLP ``784-512-10`` (LIF, zero reset, ``dt = 1 ms``, ``tau = 2 ms`` so
``decay = 0.5``, ``r = 2`` so the input gain is 1), 100 samples x 100 steps by default, on Bernoulli-coded
real MNIST test digits (``../shared/data/MNIST``; random images when absent), with weights scaled
(seeded) so that the hidden layer fires at a realistic rate (~10 % of neurons per step).

Compared, in float32 by default (``--dtype float64`` also works), best of ``--repeats`` interleaved warm runs:

* ``adapter``: ``backends.get(name).compile(graph).run(x, record=["output"], membranes=False)``;
* ``adapter (record all)``: the same with every node and membrane recorded (the validation setting);
* ``native``: what a user writes by hand — ``nn.Linear`` + ``snn.Leaky(beta=0.5, reset_mechanism="zero",
  reset_delay=False)`` (snnTorch) or ``nn.Linear`` + ``norse.LIFBoxCell`` (Norse), looping over time.

The ratio adapter/native is printed for wall and CPU time (target <= 1.2); both produce the same output
spikes (checked).

    python benchmarks/bench_adapters.py                   # snntorch and norse
    python benchmarks/bench_adapters.py --backends norse --samples 50 --steps 200
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from snnbridge import backends  # noqa: E402

MNIST = ROOT.parent / "shared" / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
DT, TAU, R, THR = 1e-3, 2e-3, 2.0, 1.0  # decay = 1 - dt/tau = 0.5, gain = r·dt/tau = 1


def mnist_spikes(samples: int, steps: int, seed: int) -> tuple[torch.Tensor, str]:
    """Bernoulli rate code of MNIST test digits, ``[T, B, 784]`` (p = pixel intensity per step)."""
    g = torch.Generator().manual_seed(seed)
    if MNIST.exists():
        raw = np.fromfile(MNIST, dtype=np.uint8, offset=16).reshape(-1, 784)[:samples]
        img, source = torch.from_numpy(raw.astype(np.float32) / 255.0), "real MNIST test digits"
    else:
        img, source = torch.rand((samples, 784), generator=g) * 0.3, "random images (MNIST not found)"
    return (torch.rand((steps,) + tuple(img.shape), generator=g) < img).float(), source


def build_graph(x: torch.Tensor, seed: int, target: float = 0.1) -> tuple[nir.NIRGraph, float]:
    """The MLP as NIR, hidden weights scaled (by bisection on a small subset) to fire at ``target`` per step."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 1.0 / np.sqrt(784), (512, 784)).astype(np.float32)
    w2 = rng.normal(0, 1.0 / np.sqrt(512), (10, 512)).astype(np.float32)
    b1, b2 = np.zeros(512, np.float32), np.zeros(10, np.float32)

    def lif(n):
        return nir.LIF(tau=np.full(n, TAU), r=np.full(n, R), v_leak=np.zeros(n), v_threshold=np.full(n, THR),
                       v_reset=np.zeros(n))

    def graph(s1, s2):
        nodes = {"input": nir.Input(input_type={"input": np.array([784])}),
                 "fc1": nir.Affine(weight=w1 * s1, bias=b1), "lif1": lif(512),
                 "fc2": nir.Affine(weight=w2 * s2, bias=b2), "lif2": lif(10),
                 "output": nir.Output(output_type={"output": np.array([10])})}
        edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")]
        return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)

    ref = backends.get("reference")
    sub = x[:30, :10]
    lo, hi = 0.5, 64.0
    for _ in range(14):  # geometric bisection on the hidden layer's firing rate
        s1 = (lo * hi) ** 0.5
        rate = ref.run(graph(s1, 1.0), sub, dt=DT, dtype=torch.float32).outputs["lif1"].float().mean().item()
        lo, hi = (s1, hi) if rate < target else (lo, s1)
    s1 = (lo * hi) ** 0.5
    return graph(s1, 2.0), s1


class NativeSnnTorch(nn.Module):
    """A hand-written snnTorch MLP with the graph's weights."""

    def __init__(self, graph: nir.NIRGraph, dtype: torch.dtype) -> None:
        super().__init__()
        import snntorch as snn

        self.fc1, self.fc2 = _linear(graph.nodes["fc1"], dtype), _linear(graph.nodes["fc2"], dtype)
        self.lif1 = snn.Leaky(beta=1 - DT / TAU, threshold=THR, reset_mechanism="zero", reset_delay=False)
        self.lif2 = snn.Leaky(beta=1 - DT / TAU, threshold=THR, reset_mechanism="zero", reset_delay=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem1, mem2 = self.lif1.reset_mem(), self.lif2.reset_mem()
        out = []
        for t in range(x.shape[0]):
            spk1, mem1 = self.lif1(self.fc1(x[t]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            out.append(spk2)
        return torch.stack(out)


class NativeNorse(nn.Module):
    """A hand-written Norse MLP with the graph's weights (``r`` folded into the Linear weights)."""

    def __init__(self, graph: nir.NIRGraph, dtype: torch.dtype) -> None:
        super().__init__()
        import norse.torch as norse

        self.fc1, self.fc2 = _linear(graph.nodes["fc1"], dtype, R), _linear(graph.nodes["fc2"], dtype, R)
        def t(v: float) -> torch.Tensor:
            return torch.tensor(v, dtype=dtype)

        p = norse.LIFBoxParameters(tau_mem_inv=t(1 / TAU), v_leak=t(0.0), v_th=t(THR), v_reset=t(0.0))
        self.lif1, self.lif2 = norse.LIFBoxCell(p, dt=DT), norse.LIFBoxCell(p, dt=DT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from norse.torch.functional.lif_box import LIFBoxFeedForwardState

        B = x.shape[1]
        s1 = LIFBoxFeedForwardState(v=torch.zeros(B, 512, dtype=x.dtype))
        s2 = LIFBoxFeedForwardState(v=torch.zeros(B, 10, dtype=x.dtype))
        out = []
        for t in range(x.shape[0]):
            z1, s1 = self.lif1(self.fc1(x[t]), s1)
            z2, s2 = self.lif2(self.fc2(z1), s2)
            out.append(z2)
        return torch.stack(out)


def _linear(node: nir.Affine, dtype: torch.dtype, scale: float = 1.0) -> nn.Linear:
    mod = nn.Linear(node.weight.shape[1], node.weight.shape[0], dtype=dtype)
    mod.weight.data = torch.as_tensor(node.weight * scale, dtype=dtype)
    mod.bias.data = torch.as_tensor(node.bias * scale, dtype=dtype)
    return mod.requires_grad_(False)


def best_of(fns: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """Best ``(wall, cpu)`` seconds of each zero-argument callable, in interleaved rounds after one warm-up.

    CPU time (this process, all threads) is reported too because wall time on a shared machine is noisy.
    """
    for fn in fns.values():
        fn()
    best = {k: (float("inf"), float("inf")) for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            w, c = time.perf_counter() - w0, time.process_time() - c0
            best[k] = (min(best[k][0], w), min(best[k][1], c))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", nargs="+", default=["snntorch", "norse"])
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x, source = mnist_spikes(args.samples, args.steps, args.seed)
    graph, s1 = build_graph(x, args.seed)
    x = x.to(dtype)
    warnings.filterwarnings("ignore", category=FutureWarning)  # Norse's torch.jit.script on import
    print(f"MLP 784-512-10 LIF, {args.samples} samples x {args.steps} steps, {args.dtype}, {source}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.repeats}")
    natives = {"snntorch": NativeSnnTorch, "norse": NativeNorse}
    for name in args.backends:
        if not backends.get(name).available():
            print(f"{name}: not installed")
            continue
        sim = backends.get(name).compile(graph, dt=DT, reset="zero", dtype=dtype)
        native = natives[name](graph, dtype)
        with torch.no_grad():
            rec = sim.run(x, record=["output", "lif1"], membranes=False)
            same = torch.equal(rec.outputs["output"], native(x) > 0.5)
            rate = rec.outputs["lif1"].float().mean().item()
            t = best_of({"native": lambda: native(x),  # noqa: B023 - called right here
                         "adapter": lambda: sim.run(x, record=["output"], membranes=False),  # noqa: B023
                         "all": lambda: sim.run(x)}, args.repeats)  # noqa: B023
        print(f"{name:9s} hidden rate {rate:.3f}/step, output rate {rec.outputs['output'].float().mean():.3f}/step, "
              f"adapter == native: {same}")
        (wn, cn), (wa, ca), (wl, cl) = t["native"], t["adapter"], t["all"]
        print(f"{'':9s} wall: native {wn * 1e3:7.1f} ms | adapter {wa * 1e3:7.1f} ms (ratio {wa / wn:.2f}) | "
              f"adapter, record all {wl * 1e3:7.1f} ms (ratio {wl / wn:.2f})")
        print(f"{'':9s} cpu:  native {cn * 1e3:7.1f} ms | adapter {ca * 1e3:7.1f} ms (ratio {ca / cn:.2f}) | "
              f"adapter, record all {cl * 1e3:7.1f} ms (ratio {cl / cn:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
