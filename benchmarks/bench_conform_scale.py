"""Conformance at dataset scale: ``snnbridge conform`` on real MNIST, its wall time and peak memory.

Runs the command line a user runs, each in a fresh process, on the Table-1 MNIST MLP (``784-512-10``, LIF,
seeded random weights scaled so the hidden layer fires, as in ``bench_backends.py``) written to a ``.nir``
file, with ``--data ../shared/data`` (the real MNIST test digits, Bernoulli-coded per batch), T = 100:

1. a warm-up (100 samples) so that Brian2's compiled code is cached, as a user's second check finds it;
2. 1,000 samples on reference + snnTorch + Norse + Brian2: wall time (target < 60 s on 2 cores) and peak RSS;
3. peak RSS at 1,000 and at 10,000 samples with the same backends (``--big-backends``, default all four):
   streamed batches keep it flat (target: 10,000 within 10 % of 1,000).

Prints measured / target / pass per target, and writes ``results/bench-conform-scale.json``.

    python benchmarks/bench_conform_scale.py
    python benchmarks/bench_conform_scale.py --big-backends reference,snntorch,norse   # 10,000 without Brian2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SHARED = ROOT.parent / "shared"
WALL_TARGET_S = 60.0
RSS_GROWTH_TARGET = 0.10

_MEASURE = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(f"{rc.returncode} {wall:.3f} {peak}")
sys.stderr.write(rc.stderr[-2000:])
"""


def write_model(path: Path, seed: int = 0) -> None:
    """The benchmark's Table-1 MNIST MLP as a ``.nir`` file."""
    import bench_backends as bb

    from snnbridge.bridge.io import write_graph

    w = bb.mlp_workload(20, 20, seed)
    write_graph(path, w.graph)


def measure(args: list[str], threads: int) -> dict:
    """Run ``snnbridge`` ``args`` in a fresh process: exit code, wall seconds, peak RSS (bytes)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "SNNBRIDGE_PROGRESS": "off"}
    exe = Path(sys.executable).with_name("snnbridge")
    cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "snnbridge.cli"]
    cmd = [sys.executable, "-c", _MEASURE, *cli, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "99 0 0"
    rc, wall, peak = line.split()
    if int(rc) not in (0, 1):
        print(out.stderr[-1500:], file=sys.stderr)
    return {"exit_code": int(rc), "wall_s": float(wall), "peak_rss_bytes": int(peak), "args": args}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(SHARED / "data"), help="MNIST folder (MNIST/raw inside)")
    p.add_argument("--backends", default="reference,snntorch,norse,brian2")
    p.add_argument("--big-backends", help="backends of the 1,000 vs 10,000 memory runs (default: --backends)")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--big-samples", type=int, default=10000)
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-big", action="store_true")
    p.add_argument("--json", type=Path, default=ROOT / "results" / "bench-conform-scale.json")
    args = p.parse_args(argv)
    big_backends = args.big_backends or args.backends
    load0 = os.getloadavg()[0]
    print(f"load average before: {load0:.2f} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "mnist_mlp.nir"
        write_model(model)
        common = [str(model), "--data", args.data, "--T", str(args.T), "--batch-size", str(args.batch_size),
                  "--no-progress"]
        runs: dict[str, dict] = {}
        print("warm-up (100 samples, fills Brian2's code cache) ...", flush=True)
        runs["warmup"] = measure(["conform", *common, "-b", args.backends, "--samples", "100"], args.threads)
        print(f"  {runs['warmup']['wall_s']:.1f} s", flush=True)
        print(f"{args.samples} samples, {args.backends} ...", flush=True)
        runs["main"] = measure(["conform", *common, "-b", args.backends, "--samples", str(args.samples)], args.threads)
        print(f"  {runs['main']['wall_s']:.1f} s, peak RSS {runs['main']['peak_rss_bytes'] / 2**20:.0f} MiB",
              flush=True)
        if not args.skip_big:
            if big_backends != args.backends:
                runs["mem_small"] = measure(["conform", *common, "-b", big_backends, "--samples", str(args.samples)],
                                            args.threads)
            else:
                runs["mem_small"] = runs["main"]
            print(f"{args.big_samples} samples, {big_backends} ...", flush=True)
            runs["mem_big"] = measure(["conform", *common, "-b", big_backends, "--samples", str(args.big_samples)],
                                      args.threads)
            print(f"  {runs['mem_big']['wall_s']:.1f} s, peak RSS {runs['mem_big']['peak_rss_bytes'] / 2**20:.0f} MiB",
                  flush=True)
    load1 = os.getloadavg()[0]
    rows = [{"target": f"wall, {args.samples} samples x T={args.T}, {args.backends}",
             "measured": runs["main"]["wall_s"], "limit": WALL_TARGET_S, "unit": "s",
             "pass": runs["main"]["wall_s"] < WALL_TARGET_S and runs["main"]["exit_code"] in (0, 1)}]
    if "mem_big" in runs:
        small, big = runs["mem_small"]["peak_rss_bytes"], runs["mem_big"]["peak_rss_bytes"]
        growth = big / small - 1 if small else float("nan")
        rows.append({"target": f"peak RSS {args.big_samples} vs {args.samples} samples ({big_backends})",
                     "measured": growth, "limit": RSS_GROWTH_TARGET, "unit": "growth",
                     "small_mib": small / 2**20, "big_mib": big / 2**20, "pass": growth <= RSS_GROWTH_TARGET
                     and runs["mem_big"]["exit_code"] in (0, 1)})
    print(f"\nload average after: {load1:.2f}\n")
    print(f"{'target':70s} {'measured':>12s} {'target':>10s}  pass")
    for r in rows:
        m = f"{r['measured']:.1f} s" if r["unit"] == "s" else (f"{100 * r['measured']:+.1f}% "
                                                                f"({r['small_mib']:.0f}->{r['big_mib']:.0f} MiB)")
        t = f"< {r['limit']:.0f} s" if r["unit"] == "s" else f"<= {100 * r['limit']:.0f}%"
        print(f"{r['target']:70s} {m:>12s} {t:>10s}  {'PASS' if r['pass'] else 'FAIL'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"load_before": load0, "load_after": load1, "threads": args.threads,
                                     "cpus": os.cpu_count(), "runs": runs, "targets": rows}, indent=1))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
