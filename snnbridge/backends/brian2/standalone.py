"""The ``cpp_standalone`` target: one compiled project per graph and batch layout, reused across processes.

A build directory ``cache_dir/standalone/<hash>`` is keyed by the content of the plan (every constant and
weight), the layout, the recorded nodes, the float type, ``dt``, the OpenMP threads, the compiler flags, the
Brian2 version and :data:`BUILD_VERSION`.  A run writes the inputs as ``TimedArray`` run arguments (files in
``/dev/shm`` where it exists), starts the binary and reads the monitors' arrays back: a re-run of the same graph,
even in a new process, skips Brian2 and gcc.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snnbridge.backends.brian2 import patches
from snnbridge.backends.brian2.build import COMPILE_ARGS, Layout, brian2_prefs, build, to_columns
from snnbridge.backends.brian2.plan import Plan

BUILD_VERSION = 5
"""Bumped whenever the generated standalone project changes (part of the build-directory hash)."""


@dataclass(frozen=True)
class Request:
    """What one standalone build records and how its inputs behave (part of the build-directory hash)."""

    layout: Layout
    input_spiking: tuple[tuple[str, bool], ...]
    spike_nodes: tuple[str, ...]
    v_nodes: tuple[str, ...]


def plan_digest(plan: Plan) -> str:
    """SHA-256 of every group constant and projection of ``plan`` (cached on the plan object)."""
    cached = getattr(plan, "_snnbridge_digest", None)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    for g in plan.groups.values():
        h.update(repr((g.node, g.index, g.kind, g.size, g.reset, g.timing, g.zero_target, g.inclusive, g.folded,
                       sorted(g.lag_bias))).encode())
        arrays = [g.threshold, g.b0, g.v_init, g.i_init, *g.lag_bias.values()]
        if g.coeff is not None:
            c = g.coeff
            arrays += [c.decay, c.gain, c.bias, c.threshold, c.v_reset, c.syn_decay, c.syn_gain]
        for a in arrays:
            h.update(b"-" if a is None else np.ascontiguousarray(a, dtype=np.float64).tobytes())
    for p in plan.projections:
        h.update(repr((p.src, p.dst, p.lag)).encode())
        for a in (p.pre.astype(np.int64), p.post.astype(np.int64), p.w):  # int64: the hash of earlier builds
            h.update(np.ascontiguousarray(a).tobytes())
    digest = h.hexdigest()
    plan._snnbridge_digest = digest  # type: ignore[attr-defined]
    return digest


def build_dir(plan: Plan, request: Request, dtype: torch.dtype, threads: int, cache_dir: Path) -> Path:
    """Build directory of one layout: ``cache_dir/standalone/<hash>`` (same graph and layout → same binary)."""
    h = hashlib.sha256(plan_digest(plan).encode())
    h.update(repr((request.layout, list(request.input_spiking), list(request.spike_nodes), list(request.v_nodes),
                   str(dtype), plan.graph.semantics.dt, threads, COMPILE_ARGS, patches.brian2_version(),
                   BUILD_VERSION)).encode())
    return cache_dir / "standalone" / h.hexdigest()[:24]


def ensure_built(plan: Plan, request: Request, dtype: torch.dtype, threads: int, cache_dir: Path) -> Path:
    """The build directory of ``request``, generated and compiled first if it does not exist (file-locked)."""
    from filelock import FileLock

    directory = build_dir(plan, request, dtype, threads, cache_dir)
    manifest = directory / "snnbridge_manifest.json"
    if not manifest.exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(directory) + ".lock"):
            if not manifest.exists():
                generate(plan, request, dtype, threads, cache_dir, directory)
    return directory


def run_binary(directory: Path, layout: Layout, columns: dict[str, torch.Tensor],
               threads: int) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray], float | None]:
    """Run the binary in ``directory`` on the TimedArray ``columns``; returns spike events ``(i, t)`` and
    membranes by node, and the binary's own simulation-loop time (``None`` if it did not report one)."""
    manifest = json.loads((directory / "snnbridge_manifest.json").read_text())
    missing = set(manifest.get("timed", [])) - set(columns)
    if missing:  # the binary does not read their build-time values (patches.skip_static_load): every run sets them
        raise RuntimeError(f"Brian2 standalone run without the TimedArray values {sorted(missing)}")
    scratch = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else directory
    results = Path(tempfile.mkdtemp(prefix="snnbridge-brian2-", dir=scratch))
    try:
        args = [str(directory / "main"), "--results_dir", str(results) + os.sep]
        for name, vals in columns.items():
            f = results / f"{name}.dat"
            ncols = int(vals[0, 0].numel()) * layout.copies
            out = np.memmap(f, dtype=np.float64, mode="w+", shape=(layout.total_steps, ncols))  # no copy of the file
            to_columns(vals, layout, out=out)
            out.flush()
            del out
            args.append(f"{name}.values={f}")
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        proc = subprocess.run(args, cwd=directory, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"Brian2 standalone binary failed in {directory}: {proc.stdout}{proc.stderr}")
        info = results / "last_run_info.txt"
        loop = float(info.read_text().split()[0]) if info.exists() else None
        spikes = {n: (np.fromfile(results / fi, dtype=np.dtype(di)), np.fromfile(results / ft, dtype=np.dtype(dtt)))
                  for n, ((fi, di), (ft, dtt)) in manifest["spikes"].items()}
        vs = {n: np.fromfile(results / fv, dtype=np.dtype(dt)) for n, (fv, dt) in manifest["v"].items()}
    finally:
        shutil.rmtree(results, ignore_errors=True)
    return spikes, vs, loop


def generate(plan: Plan, request: Request, dtype: torch.dtype, threads: int, cache_dir: Path,
             directory: Path) -> None:
    """Generate and compile the standalone project of ``request`` into ``directory`` (with its manifest)."""
    import brian2 as b2
    from brian2 import prefs
    from brian2.codegen.cpp_prefs import get_compiler_and_args
    from brian2.devices.device import get_device, reset_device, set_device

    dt = plan.graph.semantics.dt
    saved = (prefs["devices.cpp_standalone.openmp_threads"], prefs["devices.cpp_standalone.extra_make_args_unix"])
    with brian2_prefs("cpp_standalone", dtype, cache_dir / "cython"):
        prefs["devices.cpp_standalone.openmp_threads"] = threads if threads > 1 else 0
        prefs["devices.cpp_standalone.extra_make_args_unix"] = [f"-j{os.cpu_count() or 1}"]
        set_device("cpp_standalone", build_on_run=False)
        try:
            device = get_device()
            built = build(plan, request.layout, dt, dict(request.input_spiking), set(request.spike_nodes),
                          set(request.v_nodes))
            built.net.run(built.duration_steps * dt * b2.second, namespace={})
            device.build(directory=str(directory), compile=False, run=False, with_output=False)
            keep = [device.get_array_filename(m.variables[v]) for m in built.spike_monitors.values()
                    for v in ("i", "t")]
            keep += [device.get_array_filename(m.variables["v"]) for m in built.v_monitors.values()]
            patches.write_only(directory / "objects.cpp", keep)
            patches.skip_static_load(directory / "objects.cpp", sorted(f"{n}_values" for n in built.timed))
            device.compile_source(str(directory), get_compiler_and_args()[0], False, False)
            manifest = {
                "spikes": {n: [[device.get_array_filename(m.variables[v]), np.dtype(m.variables[v].dtype).str]
                               for v in ("i", "t")] for n, m in built.spike_monitors.items()},
                "v": {n: [device.get_array_filename(m.variables["v"]), np.dtype(m.variables["v"].dtype).str]
                      for n, m in built.v_monitors.items()},
                "timed": sorted(built.timed),
            }
            (directory / "snnbridge_manifest.json").write_text(json.dumps(manifest, indent=1))
        finally:
            prefs["devices.cpp_standalone.openmp_threads"] = saved[0]
            prefs["devices.cpp_standalone.extra_make_args_unix"] = saved[1]
            get_device().reinit()
            reset_device()
