"""Brian2 backend: snnbridge's own NIR → Brian2 compiler, following :mod:`snnbridge.bridge.semantics`.

Every discrete-time constant comes from ``FlatGraph.coefficients`` (float64, cast to the run dtype by
Brian2's variable dtype); Brian2's integrators are not used.  The graph becomes (see
:mod:`snnbridge.backends.brian2.plan`):

* one ``NeuronGroup`` per neuron node (LIF, IF, CubaLIF, LI, I, CubaLI) and ``Threshold`` node, with
  per-neuron constants ``decay, gain, bias, thr, vr, syn_decay, syn_gain``;
* one ``Synapses`` per ``(source group, target group, lag)``: every path of stateless nodes (Affine,
  Linear, Scale, Conv1d/2d with stride/padding/dilation/groups, Avg/SumPool2d, Flatten, Delay) between two
  groups is composed into one sparse map — pre/post index and weight per connection — and the paths'
  biases into a constant drive ``b0``.  Spiking sources deliver events (``on_pre: I_in_post += w``);
  analog sources (LI/I/CubaLI membranes, analog inputs) use summed variables;
* inputs: a ``NeuronGroup`` driven by a ``TimedArray`` (``threshold x[t] > 0.5`` for spikes, ``x = x[t]``
  for analog values).  With ``input_projection="current"`` (default), a target's predecessor that depends
  on the inputs only (e.g. ``Input → Affine``) is evaluated once with the reference's own stateless
  operator and injected as a ``TimedArray`` current — no synapses for the input layer.

**Scheduling.**  The reference propagates a spike through every feed-forward layer within the step it
is emitted.  Brian2's default schedule (groups → thresholds → synapses → resets) adds one step per layer.
Here the per-step update is a ``run_regularly`` operation, and every target group's incoming pathways,
update, threshold, membrane monitor and reset are placed inside the ``synapses`` slot with increasing
``order``, targets in topological order.  Zero-delay pathways deliver in the step they are pushed, so a
spike emitted by layer k drives layer k+1 in the same step.  A pathway from a source that runs at or after
its target (a recurrent edge) sees the source's previous-step spikes — exactly the one-step lag of a
recurrent edge; longer lags (Delay nodes) are synaptic delays.  The update evaluates
``isyn = syn_decay*isyn + syn_gain*drive`` (Cuba nodes) then ``v = decay*v + (gain*drive + bias)`` in that
order; the threshold is strict (``v > thr``); the membrane monitor reads ``v`` before the reset; the
cython/cpp code is compiled without ``-ffast-math`` and with ``-ffp-contract=off`` so that float64 runs
match the reference bit for bit up to the summation order of synaptic inputs.

**Batches** run in one Brian2 run as ``copies`` parallel copies of every group (preferred: one pass over
time) and, when the synapse count of all copies would exceed ``max_synapses``, in several rounds of
``steps`` steps, each starting from the zero state (round resets and gated lagged inputs).

**Targets**: ``numpy``, ``cython`` (Brian2's on-disk cache of compiled code) and ``cpp_standalone``
(a build directory per graph/layout keyed by a content hash; a re-run, even in a new process, runs the
existing binary with the inputs passed as ``TimedArray`` run arguments, skipping Brian2 and gcc).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from snnbridge.backends.base import Backend, Simulation
from snnbridge.backends.brian2.build import (
    COMPILE_ARGS,
    Layout,
    brian2_prefs,
    build,
    from_columns,
    spikes_from_events,
    to_columns,
)
from snnbridge.backends.brian2.plan import GROUP_TYPES, Plan, make_plan
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph
from snnbridge.bridge.inputs import Inputs, as_input_tensors
from snnbridge.bridge.recording import Recording
from snnbridge.bridge.walk import add_all as _sum
from snnbridge.bridge.walk import spike_valued
from snnbridge.errors import UnsupportedNodeError

TARGETS = ("numpy", "cython", "cpp_standalone")
BUILD_VERSION = 4
"""Bumped whenever the generated standalone project changes (part of the build-directory hash)."""
DEFAULT_MAX_SYNAPSES = {"numpy": 10_000_000, "cython": 10_000_000, "cpp_standalone": 2_000_000}
"""Synapses (all parallel copies together) above which a batch is split into rounds, per target.

Runtime targets pay Python overhead per code object per step, so they want many copies per round; the
standalone binary has almost no per-step overhead but rebuilds its synapses at every start (and fewer
copies keep its working set in cache), so it wants few."""


def default_target() -> str:
    """The fastest target that works here: ``cython`` when Brian2 can compile Cython code, else ``numpy``.

    (``cpp_standalone`` is faster per step but starts a process and reloads its synapses on every run;
    see ``docs/benchmarks.md``.)
    """
    try:
        from brian2.codegen.runtime.cython_rt import CythonCodeObject

        return "cython" if CythonCodeObject.is_available() else "numpy"
    except ImportError:
        return "numpy"


def cache_root() -> Path:
    """Compiled code of this backend: ``$SNNBRIDGE_CACHE/brian2`` (default ``~/.cache/snnbridge/brian2``).

    ``cython/`` holds Brian2's compiled Cython modules, ``standalone/<hash>/`` one cpp_standalone build each.
    """
    base = os.environ.get("SNNBRIDGE_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "snnbridge") / "brian2"


class Brian2Backend(Backend):
    """Compile NIR graphs to Brian2 networks that follow the reference semantics step for step.

    Options of :meth:`compile`:
        target: ``"numpy"``, ``"cython"`` or ``"cpp_standalone"`` (default :func:`default_target`).
        input_projection: ``"current"`` (fold input-only layers into a TimedArray current) or ``"synapses"``.
        copies: parallel copies per round (default: the whole batch, within ``max_synapses``).
        max_synapses: synapse budget of all copies together (default :data:`DEFAULT_MAX_SYNAPSES`).
        threads: OpenMP threads of the cpp_standalone binary (default 1).
        cache_dir: root of the compiled-code caches (default :func:`cache_root`).
    """

    name = "brian2"
    requires = ("brian2",)
    pip = "pip install 'snnbridge[brian2]'"
    supported_nodes = frozenset(sem.SUPPORTED_TYPES)

    def compile(self, graph, dt: float | None = None, reset: str | None = None, integration: str | None = None,
                dtype: torch.dtype = torch.float64, target: str | None = None, input_projection: str = "current",
                copies: int | None = None, max_synapses: int | None = None, threads: int = 1,
                cache_dir: str | Path | None = None, **options) -> "Brian2Simulation":
        """Check and plan ``graph``; Brian2 objects are built on the first :meth:`Brian2Simulation.run`."""
        if options:
            raise TypeError(f"unknown option(s) for backend 'brian2': {', '.join(sorted(options))}")
        fg = self.prepare(graph, dt, reset, integration, dtype)
        target = target or default_target()
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        if copies is not None and copies < 1:
            raise ValueError(f"copies must be >= 1, got {copies}")
        plan = make_plan(fg, input_projection)
        max_synapses = DEFAULT_MAX_SYNAPSES[target] if max_synapses is None else int(max_synapses)
        return Brian2Simulation(plan, dtype, target, copies, max_synapses, int(threads),
                                Path(cache_dir) if cache_dir is not None else cache_root())


    def to_native(self, graph, dt: float | None = None, batch_size: int = 1, target: str | None = None,
                  reset: str | None = None, integration: str | None = None, dtype: torch.dtype = torch.float64,
                  inputs: str | dict[str, str] = "spikes", plasticity: dict | None = None,
                  cache_dir: str | Path | None = None, **options):
        """A real ``brian2.Network`` (:class:`~snnbridge.backends.brian2.native.SnnbridgeNetwork`) realising
        ``graph`` for ``batch_size`` samples: one ``NeuronGroup`` per neuron node named after it, inputs fed
        with ``net.set_inputs(x [T, B, *shape])``, then ``net.run(...)`` as often as you like; spikes equal the
        reference executor's.  Every name is documented in :mod:`snnbridge.backends.brian2.native`.

        ``target``: ``numpy`` or ``cython`` (default :func:`default_target`); ``inputs``: ``"spikes"``
        (SpikeGeneratorGroup) or ``"analog"`` (TimedArray), or a dict by Input node; ``plasticity``: extra
        Synapses code per ``(src, dst)`` node pair (e.g. STDP).
        """
        if options:
            raise TypeError(f"unknown option(s) for Brian2Backend.to_native: {', '.join(sorted(options))}")
        from snnbridge.backends.brian2.native import to_native

        fg = self.prepare(graph, dt, reset, integration, dtype)
        return to_native(fg, batch_size=batch_size, target=target or default_target(), dtype=dtype, inputs=inputs,
                         plasticity=plasticity, cache_dir=Path(cache_dir) if cache_dir is not None else None)

    def run_native(self, module, inputs: Inputs, dtype: torch.dtype = torch.float64,
                   dt: float | None = None) -> Recording:
        """Run a network made by :meth:`to_native` on ``inputs`` ``[T, B, *shape]`` from its current time
        (continuing its state) and return the :class:`Recording` of every group and Output node."""
        from snnbridge.backends.brian2.native import SnnbridgeNetwork
        from snnbridge.errors import NativeModelError

        if not isinstance(module, SnnbridgeNetwork):
            raise NativeModelError("only networks made by Brian2Backend.to_native can be run natively here",
                                   layer="", cls=type(module).__name__)
        if dtype != module.dtype:
            raise NativeModelError(f"the network was built for {module.dtype}, not {dtype}", layer="",
                                   cls=type(module).__name__)
        if dt is not None and float(dt) != module.dt:
            raise NativeModelError(f"the network steps dt={module.dt:g} s, not {dt:g}", layer="",
                                   cls=type(module).__name__)
        return module.record(inputs)


class Brian2Simulation(Simulation):
    """A planned graph; each :meth:`run` simulates the whole batch in one Brian2 run."""

    backend = "brian2"

    def __init__(self, plan: Plan, dtype: torch.dtype, target: str, copies: int | None, max_synapses: int,
                 threads: int, cache_dir: Path) -> None:
        self.plan = plan
        self.graph: FlatGraph = plan.graph
        self.dtype = dtype
        self.target = target
        self.copies = copies
        self.max_synapses = max_synapses
        self.threads = threads
        self.cache_dir = cache_dir
        self._built = None  # (key, Built) of the last runtime layout
        self._params: dict[str, dict[str, torch.Tensor]] = {}
        self.last_layout: Layout | None = None
        self.last_build_dir: Path | None = None
        self.timings: dict[str, float] = {}
        """Seconds spent in the last run: ``inputs`` (checks, folded currents, TimedArray columns), ``simulate``
        (Brian2 run or standalone binary, incl. building when needed), ``record`` (decoding, stateless nodes);
        cpp_standalone adds ``binary_loop`` (the binary's own simulation loop, without start-up and I/O)."""
        self._extra_timings: dict[str, float] = {}

    # ----------------------------------------------------------------- public
    @property
    def network(self):
        """The ``brian2.Network`` of the last run on a runtime target (``None`` before); objects you add to it
        are kept across runs.  For a network of your own with documented names, use ``to_native``."""
        return None if self._built is None else self._built[1].net

    def layout(self, T: int, B: int) -> Layout:
        """How a batch of ``B`` samples of ``T`` steps is laid out (parallel copies x rounds)."""
        per_copy = max(1, self.plan.synapses_per_copy())
        copies = min(B, self.copies or max(1, self.max_synapses // per_copy))
        rounds = math.ceil(B / copies)
        if self.copies is None:
            copies = math.ceil(B / rounds)  # as even as possible: no idle copies in the last round
        return Layout(T, copies, rounds)

    def run(self, inputs: Inputs, record: Iterable[str] | None = None, membranes: bool = True) -> Recording:
        """Run ``inputs`` ``[T, B, *shape]`` (or a dict by input name); record every node (or ``record``)."""
        from snnbridge.bridge import limits

        limits.check_run_inputs(self.graph, inputs, self.dtype, membranes, None, "brian2")  # before allocating
        fg, plan = self.graph, self.plan
        t0 = time.perf_counter()
        self._extra_timings = {}
        xs = as_input_tensors(fg, inputs, self.dtype)
        T, B = next(iter(xs.values())).shape[:2]
        keep = set(fg.order) if record is None else set(record)
        missing = keep - set(fg.order)
        if missing:
            raise KeyError(f"cannot record unknown node(s) {sorted(missing)}")
        need = self._needed(keep)
        used_inputs = sorted({p.src for p in plan.projections if plan.groups[p.src].is_input})
        # 0/1 check only where it matters: inputs that drive synapses or whose values are recorded
        input_spikes = {k: (k in need or k in used_inputs) and bool(((v == 0) | (v == 1)).all())
                        for k, v in xs.items()}
        flags = spike_valued(fg, input_spikes)
        input_spiking = {k: input_spikes[k] for k in used_inputs}
        for p in plan.projections:
            if plan.groups[p.src].is_input and p.lag > 0 and not input_spikes[p.src]:
                raise UnsupportedNodeError(f"backend 'brian2' cannot delay analog input values by {p.lag} step(s)",
                                           node=p.dst)
        spike_nodes = {g.node for g in plan.sinks if g.spiking and g.node in need}
        v_nodes = {g.node for g in plan.sinks if (g.analog and g.node in need)
                   or (membranes and g.kind in sem.NEURON_TYPES and g.node in keep)}
        layout = self.layout(T, B)
        self.last_layout = layout
        # TimedArray contents, [T, B, ...] each (laid out into columns by the runner)
        columns = {f"ix{plan.groups[k].index}": xs[k] for k in used_inputs}
        pure = _PureValues(self, xs)
        for g in plan.sinks:
            if g.folded:
                columns[f"ie{g.index}"] = _sum([pure.value(p) for p in g.folded])
        t1 = time.perf_counter()
        if plan.sinks:
            if self.target == "cpp_standalone":
                spikes, vs = self._run_standalone(layout, input_spiking, spike_nodes, v_nodes, columns, B)
            else:
                spikes, vs = self._run_runtime(layout, input_spiking, spike_nodes, v_nodes, columns, B)
        else:
            spikes, vs = {}, {}
        t2 = time.perf_counter()
        values: dict[str, torch.Tensor] = {}
        for name in fg.order:  # groups first: a stateless node on a loop may come before its (lagged) source
            if name not in need:
                continue
            if name in fg.inputs:
                values[name] = xs[name]
            elif name in spikes:
                values[name] = spikes[name].to(self.dtype)
            elif fg.type_of(name) in GROUP_TYPES:
                values[name] = vs[name]
            elif name in pure.cache:
                values[name] = pure.cache[name]
        for name in fg.order:
            if name in need and name not in values:
                self._stateless(name, values)
        outs = {n: (values[n] > 0.5 if flags[n] else values[n]) for n in fg.order if n in keep}
        mems = {n: vs[n] for n in fg.order if n in keep and membranes and fg.type_of(n) in sem.NEURON_TYPES}
        self.timings = {"inputs": t1 - t0, "simulate": t2 - t1, "record": time.perf_counter() - t2,
                        **self._extra_timings}
        return Recording(outs, mems, {n: fg.type_of(n) for n in fg.order}, fg.semantics.dt, self.backend,
                         list(fg.order))

    # ----------------------------------------------------------------- stateless values (torch, as the reference)
    def _needed(self, keep: set[str]) -> set[str]:
        """``keep`` plus every node a kept stateless node is computed from (back to groups/inputs)."""
        need: set[str] = set()
        stack = list(keep)
        while stack:
            n = stack.pop()
            if n in need:
                continue
            need.add(n)
            if self.graph.type_of(n) not in GROUP_TYPES:
                stack.extend(self.graph.preds[n])
        return need

    def params(self, name: str) -> dict[str, torch.Tensor]:
        """The node's weight/bias/scale/threshold cast to the run dtype (as the reference executor does)."""
        if name not in self._params:
            node = self.graph.nodes[name]
            out = {}
            for p in ("weight", "bias", "scale", "threshold"):
                v = getattr(node, p, None)
                if v is not None and isinstance(v, (np.ndarray, float, int)):
                    out[p] = torch.as_tensor(np.asarray(v, dtype=np.float64), dtype=self.dtype)
            if type(node).__name__ == "Affine" and out["bias"].dim() == 0:
                out["bias"] = out["bias"].expand(out["weight"].shape[0]).clone()
            self._params[name] = out
        return self._params[name]

    def _stateless(self, name: str, values: dict[str, torch.Tensor]) -> torch.Tensor:
        """Value of stateless node ``name`` from its predecessors' values (computed first where missing)."""
        if name in values:
            return values[name]
        fg = self.graph
        xs = [self._stateless(p, values) for p in fg.preds[name]]
        x = _sum([_shift(v, 1) if (p, name) in fg.recurrent else v for p, v in zip(fg.preds[name], xs)])
        values[name] = self.forward(name, x)
        return values[name]

    def forward(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """Output ``[T, B, *out]`` of stateless node ``name`` for its summed input ``x`` ``[T, B, *in]``."""
        fg = self.graph
        node = fg.nodes[name]
        T, B = x.shape[:2]
        if fg.type_of(name) == "Delay":
            d = np.broadcast_to(sem.delay_steps(node, fg.semantics), fg.in_shapes[name])
            out = torch.zeros_like(x)
            for step in np.unique(d):
                mask = torch.from_numpy(np.ascontiguousarray(d == step))
                out = torch.where(mask, _shift(x, int(step)), out)
            return out
        y = sem.stateless_forward(node, x.reshape((T * B,) + tuple(x.shape[2:])), self.params(name))
        return y.reshape((T, B) + tuple(y.shape[1:]))

    # ----------------------------------------------------------------- runtime targets (numpy, cython)
    def _run_runtime(self, layout: Layout, input_spiking, spike_nodes, v_nodes, columns, B):
        import brian2 as b2

        key = (layout, tuple(sorted(input_spiking.items())), frozenset(spike_nodes), frozenset(v_nodes))
        dt = self.graph.semantics.dt
        with brian2_prefs(self.target, self.dtype, self.cache_dir / "cython"), _runtime_device():
            if self._built is None or self._built[0] != key:
                self._built = None
                built = build(self.plan, layout, dt, input_spiking, spike_nodes, v_nodes)
                built.net.store("init")
                self._built = (key, built)
            built = self._built[1]
            _restore(built.net, "init")
            for name, vals in columns.items():
                to_columns(vals, layout, out=built.timed[name].values)
            with _skip_gc_collect():
                built.net.run(built.duration_steps * dt * b2.second, namespace={})
            if not built.frozen:
                _reuse_code_objects(built.net)
                built.frozen = True
            spikes = {n: spikes_from_events(m.variables["i"].get_value(), m.variables["t"].get_value(), dt, layout,
                                            B, self.graph.in_shapes[n]) for n, m in built.spike_monitors.items()}
            vs = {n: self._v_tensor(m.variables["v"].get_value(), layout, B, n) for n, m in built.v_monitors.items()}
        return spikes, vs

    def _v_tensor(self, raw: np.ndarray, layout: Layout, B: int, name: str) -> torch.Tensor:
        g = self.plan.groups[name]
        raw = np.asarray(raw).reshape(layout.total_steps, layout.copies * g.size)
        return from_columns(raw, layout, B, self.graph.in_shapes[name]).to(self.dtype)

    # ----------------------------------------------------------------- cpp_standalone
    def build_dir(self, layout: Layout, input_spiking, spike_nodes, v_nodes) -> Path:
        """Build directory of one layout: ``cache_dir/standalone/<hash>`` (same graph and layout → same binary)."""
        h = hashlib.sha256(self._plan_digest().encode())
        h.update(repr((layout, sorted(input_spiking.items()), sorted(spike_nodes), sorted(v_nodes), str(self.dtype),
                       self.graph.semantics.dt, self.threads, COMPILE_ARGS, _brian2_version(), BUILD_VERSION)).encode())
        return self.cache_dir / "standalone" / h.hexdigest()[:24]

    def _plan_digest(self) -> str:
        if not hasattr(self, "_digest"):
            h = hashlib.sha256()
            plan = self.plan
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
                for a in (p.pre, p.post, p.w):
                    h.update(np.ascontiguousarray(a).tobytes())
            self._digest = h.hexdigest()
        return self._digest

    def _run_standalone(self, layout: Layout, input_spiking, spike_nodes, v_nodes, columns, B):
        from filelock import FileLock

        directory = self.build_dir(layout, input_spiking, spike_nodes, v_nodes)
        self.last_build_dir = directory
        manifest_path = directory / "snnbridge_manifest.json"
        if not manifest_path.exists():
            directory.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(directory) + ".lock"):
                if not manifest_path.exists():
                    self._build_standalone(directory, layout, input_spiking, spike_nodes, v_nodes)
        manifest = json.loads(manifest_path.read_text())
        # inputs and results of this run: in memory (tmpfs) where there is one, else next to the build
        scratch = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else directory
        results = Path(tempfile.mkdtemp(prefix="snnbridge-brian2-", dir=scratch))
        try:
            args = [str(directory / "main"), "--results_dir", str(results) + os.sep]
            for name, vals in columns.items():
                f = results / f"{name}.dat"
                to_columns(vals, layout).tofile(f)
                args.append(f"{name}.values={f}")
            env = dict(os.environ, OMP_NUM_THREADS=str(self.threads))
            proc = subprocess.run(args, cwd=directory, env=env, capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(f"Brian2 standalone binary failed in {directory}: {proc.stdout}{proc.stderr}")
            info = results / "last_run_info.txt"
            if info.exists():  # the binary's own time in the simulation loop (the rest is start-up and I/O)
                self._extra_timings["binary_loop"] = float(info.read_text().split()[0])
            dt = self.graph.semantics.dt
            spikes = {}
            for n, ((fi, di), (ft, dtt)) in manifest["spikes"].items():
                i = np.fromfile(results / fi, dtype=np.dtype(di))
                t = np.fromfile(results / ft, dtype=np.dtype(dtt))
                spikes[n] = spikes_from_events(i, t, dt, layout, B, self.graph.in_shapes[n])
            vs = {}
            for n, (fv, dtype) in manifest["v"].items():
                vs[n] = self._v_tensor(np.fromfile(results / fv, dtype=np.dtype(dtype)), layout, B, n)
        finally:
            shutil.rmtree(results, ignore_errors=True)
        return spikes, vs

    def _build_standalone(self, directory: Path, layout: Layout, input_spiking, spike_nodes, v_nodes) -> None:
        import brian2 as b2
        from brian2 import prefs
        from brian2.devices.device import get_device, reset_device, set_device

        dt = self.graph.semantics.dt
        saved = (prefs["devices.cpp_standalone.openmp_threads"], prefs["devices.cpp_standalone.extra_make_args_unix"])
        with brian2_prefs("cpp_standalone", self.dtype, self.cache_dir / "cython"):
            prefs["devices.cpp_standalone.openmp_threads"] = self.threads if self.threads > 1 else 0
            prefs["devices.cpp_standalone.extra_make_args_unix"] = [f"-j{os.cpu_count() or 1}"]
            set_device("cpp_standalone", build_on_run=False)
            try:
                device = get_device()
                built = build(self.plan, layout, dt, input_spiking, spike_nodes, v_nodes)
                built.net.run(built.duration_steps * dt * b2.second, namespace={})
                device.build(directory=str(directory), compile=False, run=False, with_output=False)
                keep = [device.get_array_filename(m.variables[v]) for m in built.spike_monitors.values()
                        for v in ("i", "t")]
                keep += [device.get_array_filename(m.variables["v"]) for m in built.v_monitors.values()]
                _write_only(directory / "objects.cpp", keep)
                from brian2.codegen.cpp_prefs import get_compiler_and_args

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


def _restore(net, name: str) -> None:
    """``net.restore(name)`` that tolerates objects added after the state was stored (e.g. a user's
    ``StateMonitor`` on :attr:`Brian2Simulation.network`): those are kept out of the restore and left as they
    are (Brian2's own restore raises ``KeyError: Stored state does not have a stored state for ...``)."""
    stored = net._stored_state[name]
    extra = [o for o in net.objects if o.name not in stored]
    if extra:
        net.remove(*extra)
    try:
        net.restore(name)
    finally:
        if extra:
            net.add(*extra)


def _write_only(objects_cpp: Path, keep: list[str]) -> None:
    """Make the binary write only the monitors' arrays at exit (Brian2 writes every array, synapses included).

    Every other ``results_dir + "<file>"`` in ``_write_arrays()`` is pointed at ``/dev/null``.
    """
    src = objects_cpp.read_text()
    start = src.index("void _write_arrays()")
    end = src.index("\nvoid ", start + 1)
    keep_set = set(keep) | {"last_run_info.txt", "profiling_info.txt"}

    def sub(m: re.Match) -> str:
        return m.group(0) if m.group(1) in keep_set else 'std::string("/dev/null")'

    body = re.sub(r'results_dir \+ "([^"]+)"', sub, src[start:end])
    objects_cpp.write_text(src[:start] + body + src[end:])


def _brian2_version() -> str:
    from importlib.metadata import version

    return version("brian2")


class _PureValues:
    """Values ``[T, B, *shape]`` of nodes computable from the inputs alone, evaluated like the reference."""

    def __init__(self, sim: Brian2Simulation, xs: dict[str, torch.Tensor]) -> None:
        self.sim = sim
        self.cache: dict[str, torch.Tensor] = dict(xs)

    def value(self, name: str) -> torch.Tensor:
        if name not in self.cache:
            fg = self.sim.graph
            x = _sum([self.value(p) for p in fg.preds[name]])
            self.cache[name] = self.sim.forward(name, x)
        return self.cache[name]


def _shift(x: torch.Tensor, steps: int) -> torch.Tensor:
    """``x`` delayed by ``steps`` along time (zeros first)."""
    if steps == 0:
        return x
    out = torch.zeros_like(x)
    if steps < x.shape[0]:
        out[steps:] = x[:-steps]
    return out


@contextlib.contextmanager
def _runtime_device():
    """Make sure runtime targets build on Brian2's runtime device (even if a standalone device is active)."""
    from brian2.devices.device import get_device, reset_device, runtime_device, set_device

    if get_device() is runtime_device:
        yield
        return
    set_device("runtime")
    try:
        yield
    finally:
        reset_device()


def _reuse_code_objects(net) -> None:
    """Skip Brian2's code generation on later runs of ``net`` (it regenerates every code object per run).

    The generated code depends only on the network's structure, which never changes after building; the
    data it touches (state variables, monitors, the TimedArrays filled in place) is looked up when the code
    runs.  Each object's ``before_run`` still runs (spike queues are re-initialised, monitors resized).
    """
    from brian2.groups.group import CodeRunner

    for obj in net.sorted_objects:
        if isinstance(obj, CodeRunner) and obj.code_objects:
            obj.create_code_objects = lambda run_namespace: None


@contextlib.contextmanager
def _skip_gc_collect():
    """``Network.run`` starts with a full ``gc.collect()`` (tens of ms with torch loaded); skip it for our run."""
    from brian2.core import network

    real = network.gc

    class _NoCollect:
        def __getattr__(self, item):
            return getattr(real, item)

        @staticmethod
        def collect(*args, **kwargs) -> int:
            return 0

    network.gc = _NoCollect()
    try:
        yield
    finally:
        network.gc = real
