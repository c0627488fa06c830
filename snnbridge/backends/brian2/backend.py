"""Brian2 backend: snnbridge's own NIR → Brian2 compiler, following :mod:`snnbridge.bridge.semantics`.

Every discrete-time constant comes from ``FlatGraph.coefficients`` (float64, cast to the run dtype by
Brian2's variable dtype); Brian2's integrators are not used.  The graph becomes (see
:mod:`snnbridge.backends.brian2.plan`):

* one ``NeuronGroup`` per neuron node (LIF, IF, CubaLIF, LI, I, CubaLI) and ``Threshold`` node, with
  per-neuron constants ``decay, gain, bias, thr, vr, syn_decay, syn_gain`` (arrays, never literals in the
  generated code: graphs of the same structure share their compiled code);
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
``order``, targets in topological order (:mod:`snnbridge.backends.brian2.build`).  Zero-delay pathways
deliver in the step they are pushed, so a spike emitted by layer k drives layer k+1 in the same step.  A
pathway from a source that runs at or after its target (a recurrent edge) sees the source's previous-step
spikes — exactly the one-step lag of a recurrent edge; longer lags (Delay nodes) are synaptic delays.  The
update evaluates ``isyn = syn_decay*isyn + syn_gain*drive`` (Cuba nodes) then
``v = decay*v + (gain*drive + bias)`` in that order; the threshold is strict (``v > thr``); the membrane
monitor reads ``v`` before the reset; the cython/cpp code is compiled without ``-ffast-math`` and with
``-ffp-contract=off`` so that float64 runs match the reference bit for bit up to the summation order of
synaptic inputs.

**Batches** run in one Brian2 run as ``copies`` parallel copies of every group (preferred: one pass over
time) and, when the synapse count of all copies would exceed ``max_synapses`` (or the memory budget of
:mod:`snnbridge.bridge.limits`), in several rounds of ``steps`` steps, each starting from the zero state
(round resets and gated lagged inputs).  The memory a layout needs is estimated before anything is built;
a graph whose single copy does not fit the budget is refused with ``ResourceLimitError``.

**Targets**: ``auto`` (default: ``cython`` when the compiled code of this network is already in the cache,
else ``numpy``, which starts in seconds — see :func:`choose_target`), ``numpy``, ``cython`` (Brian2's on-disk
cache of compiled code) and ``cpp_standalone`` (:mod:`snnbridge.backends.brian2.standalone`: a build
directory per graph/layout keyed by a content hash; a re-run, even in a new process, runs the existing
binary with the inputs passed as ``TimedArray`` run arguments, skipping Brian2 and gcc).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from snnbridge.backends.base import Backend, Simulation
from snnbridge.backends.brian2 import patches, standalone
from snnbridge.backends.brian2.build import (
    COMPILE_ARGS,
    Built,
    Layout,
    assign_parameters,
    brian2_prefs,
    build,
    from_columns,
    spikes_from_events,
    to_columns,
)
from snnbridge.backends.brian2.plan import Plan, is_group, make_plan
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.graph import FlatGraph
from snnbridge.bridge.inputs import Inputs, as_input_tensors
from snnbridge.bridge.recording import Recording
from snnbridge.bridge.walk import add_all as _sum
from snnbridge.bridge.walk import spike_valued
from snnbridge.errors import UnsupportedNodeError

TARGETS = ("auto", "numpy", "cython", "cpp_standalone")
BUILD_VERSION = standalone.BUILD_VERSION
DEFAULT_MAX_SYNAPSES = {"numpy": 10_000_000, "cython": 10_000_000, "cpp_standalone": 500_000}
"""Synapses (all parallel copies together) above which a batch is split into rounds, per target.

Runtime targets pay Python overhead per code object per step, so they want many copies per round; the
standalone binary has almost no per-step overhead but rebuilds its synapses at every start, and the synaptic
arrays one event loop walks should stay in the core's cache, so it wants few: one copy of the MNIST MLP
(406 k synapses) per round took 0.55 s of CPU against 0.82 s for 4 copies (``docs/benchmarks.md``).  ``auto``
uses the runtime value."""

BYTES_PER_SYNAPSE = 48
"""Peak bytes per synapse while a runtime network is built and run, measured (``benchmarks/bench_brian2.py``,
``results/bench-brian2.json``: ``bytes_per_synapse``; numpy target, float64, one sample): 41.9 B on the full-size
N-MNIST CNN (123.5 M synapses), 43.6 B on CIFAR10 (54.2 M), 44.5 B on DVS-CIFAR10 (33.9 M).  Of these, the plan's
``pre``/``post``/``w`` (int32, int32, float64: 16 B, kept for other layouts), Brian2's ``_synaptic_pre``,
``_synaptic_post`` and ``w`` (16 B; 12 B in float32), the spike queue's per-source lists (~7.5 B: 4 B per synapse
in vectors grown by doubling) and the transients of chunked creation (~3.5 B); the stored initial state leaves the
synaptic arrays out (``patches.store_without``)."""

CONSTANT_SYNAPTIC = {"_synaptic_pre", "_synaptic_post", "w", "N_incoming", "N_outgoing"}
"""Variables of a simulation's ``Synapses`` that no run changes: left out of the stored initial state."""

BYTES_PER_NEURON = 96
"""Peak bytes per neuron (all copies) of a runtime network: state, constants, spike space, input columns."""


_SHARED: "weakref.WeakValueDictionary[tuple, Built]" = weakref.WeakValueDictionary()
"""Runtime networks by (code key, connectivity digest): a new graph of the same structure and connectivity (other
weights or constants) runs on a live network instead of building its own; alive while a simulation holds it."""


def default_target() -> str:
    """The target ``target=None`` means: ``"auto"`` (see :func:`choose_target`)."""
    return "auto"


def cython_available() -> bool:
    """Whether Brian2 can compile Cython code here."""
    try:
        from brian2.codegen.runtime.cython_rt import CythonCodeObject

        return bool(CythonCodeObject.is_available())
    except ImportError:
        return False


def cache_root() -> Path:
    """Compiled code of this backend: ``$SNNBRIDGE_CACHE/brian2`` (default ``~/.cache/snnbridge/brian2``).

    ``cython/`` holds Brian2's compiled Cython modules (and ``cython/snnbridge-warm/``, one marker per network
    code whose modules are there), ``standalone/<hash>/`` one cpp_standalone build each.
    """
    base = os.environ.get("SNNBRIDGE_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "snnbridge") / "brian2"


def _synapses_in_budget() -> float:
    """Synapses per sample the memory budget allows (one copy; :data:`BYTES_PER_SYNAPSE` each)."""
    from snnbridge.bridge import limits

    return limits.get_memory_budget() / BYTES_PER_SYNAPSE


def choose_target(requested: str, warm: bool) -> str:
    """The target a run uses: ``requested`` unless it is ``"auto"``.

    ``auto`` takes ``cython`` when the Cython modules of this network (same structure, layout and recorded
    nodes; weights and constants may differ, they are arrays) are already compiled in the cache (``warm``),
    else ``numpy``: numpy starts in seconds where Cython compiles each code object for seconds (~1 min for a
    Table-1 network on one core), and is at most ~2x slower per step (``docs/benchmarks.md``).  Without a
    Cython compiler ``auto`` is always ``numpy``.
    """
    if requested != "auto":
        return requested
    return "cython" if warm and cython_available() else "numpy"


@dataclass
class _Run:
    """What one :meth:`Brian2Simulation.run` call asks for, decided before anything is built."""

    xs: dict[str, torch.Tensor]
    T: int
    B: int
    keep: set[str]
    need: set[str]
    flags: dict[str, bool]
    input_spiking: dict[str, bool]
    spike_nodes: set[str]
    v_nodes: set[str]
    layout: Layout
    membranes: bool


class Brian2Backend(Backend):
    """Compile NIR graphs to Brian2 networks that follow the reference semantics step for step.

    Options of :meth:`compile`:
        target: ``"auto"`` (default, :func:`choose_target`), ``"numpy"``, ``"cython"`` or ``"cpp_standalone"``.
        input_projection: ``"current"`` (fold input-only layers into a TimedArray current) or ``"synapses"``.
        copies: parallel copies per round (default: the whole batch, within ``max_synapses`` and the memory budget).
        max_synapses: synapse budget of all copies together (default :data:`DEFAULT_MAX_SYNAPSES`).
        threads: OpenMP threads of the cpp_standalone binary (default 1).
        cache_dir: root of the compiled-code caches (default :func:`cache_root`, ``$SNNBRIDGE_CACHE/brian2``).
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
        plan = make_plan(fg, input_projection, max_synapses=_synapses_in_budget())
        budget = "cpp_standalone" if target == "cpp_standalone" else "cython"
        max_synapses = DEFAULT_MAX_SYNAPSES[budget] if max_synapses is None else int(max_synapses)
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

        ``target``: ``numpy`` or ``cython`` (default: ``cython`` where a Cython compiler is available);
        ``inputs``: ``"spikes"`` (SpikeGeneratorGroup) or ``"analog"`` (TimedArray), or a dict by Input node;
        ``plasticity``: extra Synapses code per ``(src, dst)`` node pair (e.g. STDP).
        """
        if options:
            raise TypeError(f"unknown option(s) for Brian2Backend.to_native: {', '.join(sorted(options))}")
        from snnbridge.backends.brian2.native import to_native

        fg = self.prepare(graph, dt, reset, integration, dtype)
        if target in (None, "auto"):
            target = "cython" if cython_available() else "numpy"
        return to_native(fg, batch_size=batch_size, target=target, dtype=dtype, inputs=inputs,
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
        self._built: tuple[tuple, Built] | None = None  # (key, Built) of the last runtime layout
        self._params: dict[str, dict[str, torch.Tensor]] = {}
        self.last_layout: Layout | None = None
        self.last_target: str | None = None
        """The target the last run used (``auto`` resolved)."""
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
        are kept across runs (a network handed out here is no longer shared with other simulations of the same
        structure).  For a network of your own with documented names, use ``to_native``."""
        if self._built is None:
            return None
        self._built[1].exclusive = True
        return self._built[1].net

    def layout(self, T: int, B: int) -> Layout:
        """How a batch of ``B`` samples of ``T`` steps is laid out (parallel copies x rounds), within
        ``max_synapses`` and the memory budget (:func:`snnbridge.bridge.limits.get_memory_budget`)."""
        per_copy = max(1, self.plan.synapses_per_copy())
        fit = max(1, self.max_synapses // per_copy)
        if self.target != "cpp_standalone":
            fit = min(fit, max(1, self.copies_in_memory(T)))
        copies = min(B, self.copies or fit)
        rounds = math.ceil(B / copies)
        if self.copies is None:
            copies = math.ceil(B / rounds)  # as even as possible: no idle copies in the last round
        return Layout(T, copies, rounds)

    def memory_estimate(self, layout: Layout, v_neurons: int | None = None) -> int:
        """Peak bytes a runtime network of ``layout`` needs (see :data:`BYTES_PER_SYNAPSE`); membrane monitors
        of ``v_neurons`` neurons per copy (default: every group) add ``total_steps x copies x v_neurons x 8``."""
        neurons = sum(g.size for g in self.plan.groups.values())
        v = neurons if v_neurons is None else v_neurons
        return int(layout.copies * (self.plan.synapses_per_copy() * BYTES_PER_SYNAPSE + neurons * BYTES_PER_NEURON
                                    + layout.total_steps * v * 8))

    def copies_in_memory(self, T: int) -> int:
        """How many parallel copies fit the memory budget (0: not even one)."""
        from snnbridge.bridge import limits

        budget = limits.get_memory_budget()
        if math.isinf(budget):
            return 1 << 30
        return int(budget // max(1, self.memory_estimate(Layout(T, 1, 1), v_neurons=0)))

    def run(self, inputs: Inputs, record: Iterable[str] | None = None, membranes: bool = True) -> Recording:
        """Run ``inputs`` ``[T, B, *shape]`` (or a dict by input name); record every node (or ``record``)."""
        from snnbridge.bridge import limits

        limits.check_run_inputs(self.graph, inputs, self.dtype, membranes, None, "brian2")  # before allocating
        t0 = time.perf_counter()
        self._extra_timings = {}
        req = self._request(inputs, record, membranes)
        self._check_memory(req)
        columns, pure = self._columns(req)
        t1 = time.perf_counter()
        spikes, vs = self._simulate(req, columns)
        t2 = time.perf_counter()
        rec = self._recording(req, pure, spikes, vs)
        self.timings = {"inputs": t1 - t0, "simulate": t2 - t1, "record": time.perf_counter() - t2,
                        **self._extra_timings}
        return rec

    # ----------------------------------------------------------------- the steps of a run
    def _request(self, inputs: Inputs, record: Iterable[str] | None, membranes: bool) -> _Run:
        """Inputs as tensors, what to record and monitor, which inputs are spikes, the batch layout."""
        fg, plan = self.graph, self.plan
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
        for p in plan.projections:
            if plan.groups[p.src].is_input and p.lag > 0 and not input_spikes[p.src]:
                raise UnsupportedNodeError(f"backend 'brian2' cannot delay analog input values by {p.lag} step(s)",
                                           node=p.dst)
        spike_nodes = {g.node for g in plan.sinks if g.spiking and g.node in need}
        v_nodes = {g.node for g in plan.sinks if (g.analog and g.node in need)
                   or (membranes and g.kind in sem.NEURON_TYPES and g.node in keep)}
        layout = self.layout(T, B)
        self.last_layout = layout
        return _Run(xs, T, B, keep, need, spike_valued(fg, input_spikes), {k: input_spikes[k] for k in used_inputs},
                    spike_nodes, v_nodes, layout, membranes)

    def _check_memory(self, req: _Run) -> None:
        """Refuse (``ResourceLimitError``) a run whose estimated peak memory exceeds the budget, before building."""
        from snnbridge.bridge import limits

        if self.target == "cpp_standalone" or not self.plan.sinks:
            return
        v_neurons = sum(self.plan.groups[n].size for n in req.v_nodes)
        need = self.memory_estimate(req.layout, v_neurons)
        budget = limits.get_memory_budget()
        if need > budget:
            raise limits.ResourceLimitError(
                f"backend 'brian2': {req.layout.copies} cop{'y' if req.layout.copies == 1 else 'ies'} of "
                f"{self.plan.synapses_per_copy():,} synapses and {len(self.plan.groups)} groups over "
                f"{req.layout.total_steps} steps need ~{need / 1024 ** 3:.2f} GiB (~{BYTES_PER_SYNAPSE} B per "
                f"synapse), over the memory budget of {budget / 1024 ** 3:.2f} GiB "
                f"({limits.ENV_VAR} or limits.memory_budget(...) raises it)")

    def _columns(self, req: _Run) -> tuple[dict[str, torch.Tensor], "_PureValues"]:
        """TimedArray contents ``[T, B, ...]`` by array name: used inputs and folded input-layer currents."""
        plan = self.plan
        columns = {f"ix{plan.groups[k].index}": req.xs[k] for k in req.input_spiking}
        pure = _PureValues(self, req.xs)
        for g in plan.sinks:
            if g.folded:
                columns[f"ie{g.index}"] = _sum([pure.value(p) for p in g.folded])
        return columns, pure

    def _simulate(self, req: _Run, columns: dict[str, torch.Tensor]):
        """Spikes ``bool [T, B, *shape]`` and membranes by node from Brian2 (on the resolved target)."""
        if not self.plan.sinks:
            self.last_target = choose_target(self.target, False)
            return {}, {}
        if self.target == "cpp_standalone":
            self.last_target = "cpp_standalone"
            return self._run_standalone(req, columns)
        return self._run_runtime(req, columns)

    def _recording(self, req: _Run, pure: "_PureValues", spikes, vs) -> Recording:
        """Every kept node's value: groups from Brian2, stateless nodes evaluated like the reference."""
        fg = self.graph
        values: dict[str, torch.Tensor] = {}
        for name in fg.order:  # groups first: a stateless node on a loop may come before its (lagged) source
            if name not in req.need:
                continue
            if name in fg.inputs:
                values[name] = req.xs[name]
            elif name in spikes:
                values[name] = spikes[name].to(self.dtype)
            elif is_group(fg, name):
                values[name] = vs[name]
            elif name in pure.cache:
                values[name] = pure.cache[name]
        for name in fg.order:
            if name in req.need and name not in values:
                self._stateless(name, values)
        outs = {n: (values[n] > 0.5 if req.flags[n] else values[n]) for n in fg.order if n in req.keep}
        mems = {n: vs[n] for n in fg.order
                if n in req.keep and req.membranes and fg.type_of(n) in sem.NEURON_TYPES}
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
            if not is_group(self.graph, n):
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
    def code_key(self, req: _Run) -> str:
        """Hash of everything the generated code of a runtime network depends on — the plan's structure (not
        its weights or constants, which are arrays), the layout (TimedArray sizes are literals in the code),
        the recorded nodes, the float type, ``dt``, the compiler flags and the Brian2 version."""
        plan = self.plan
        h = hashlib.sha256()
        for g in plan.groups.values():
            h.update(repr((g.index, g.kind, g.size, g.reset, g.timing, g.zero_target, g.inclusive, bool(g.folded),
                           g.v_init is not None, g.i_init is not None, bool(np.any(g.b0 != 0)) if g.b0 is not None
                           else None, sorted(g.lag_bias))).encode())
        for p in plan.projections:
            h.update(repr((plan.groups[p.src].index, plan.groups[p.dst].index, p.lag)).encode())
        h.update(repr((req.layout, sorted(req.input_spiking.items()), sorted(req.spike_nodes), sorted(req.v_nodes),
                       str(self.dtype), plan.graph.semantics.dt, COMPILE_ARGS, patches.brian2_version())).encode())
        return h.hexdigest()[:24]

    def _warm_marker(self, key: str) -> Path:
        return self.cache_dir / "cython" / "snnbridge-warm" / key

    def _run_runtime(self, req: _Run, columns: dict[str, torch.Tensor]):
        import brian2 as b2

        layout = req.layout
        code_key = self.code_key(req)
        target = choose_target(self.target, self._warm_marker(code_key).exists())
        self.last_target = target
        key = (target, code_key, layout, tuple(sorted(req.input_spiking.items())), frozenset(req.spike_nodes),
               frozenset(req.v_nodes))
        dt = self.graph.semantics.dt
        with brian2_prefs(target, self.dtype, self.cache_dir / "cython"), _runtime_device():
            if self._built is None or self._built[0] != key:
                self._built = None
                shared_key = (key, connectivity_digest(self.plan))
                built = _SHARED.get(shared_key)
                if built is None or built.exclusive or not built.frozen:
                    built = build(self.plan, layout, dt, req.input_spiking, req.spike_nodes, req.v_nodes)
                    patches.store_without(built.net, "init", {syn: CONSTANT_SYNAPTIC
                                                              for syn in built.synapses.values()})
                    built.stored = {o.name for o in built.net.objects}
                    built.owner = built.current = weakref.ref(self)
                    _SHARED[shared_key] = built
                self._built = (key, built)
            built = self._built[1]
            _restore(built, "init")
            if built.owner() is not self or built.current() is not self:  # shared with a graph of this structure
                assign_parameters(built, self.plan)
                built.current = weakref.ref(self)
            for name, vals in columns.items():
                to_columns(vals, layout, out=built.timed[name].values)
            with patches.skip_gc_collect():
                built.net.run(built.duration_steps * dt * b2.second, namespace={})
            if not built.frozen:
                patches.reuse_code_objects(built.net)
                built.frozen = True
                if target == "cython":
                    marker = self._warm_marker(code_key)
                    marker.parent.mkdir(parents=True, exist_ok=True)
                    marker.touch()
            spikes = {n: spikes_from_events(m.variables["i"].get_value(), m.variables["t"].get_value(), dt, layout,
                                            req.B, self.graph.in_shapes[n]) for n, m in built.spike_monitors.items()}
            vs = {n: self._v_tensor(m.variables["v"].get_value(), layout, req.B, n)
                  for n, m in built.v_monitors.items()}
        return spikes, vs

    def _v_tensor(self, raw: np.ndarray, layout: Layout, B: int, name: str) -> torch.Tensor:
        g = self.plan.groups[name]
        raw = np.asarray(raw).reshape(layout.total_steps, layout.copies * g.size)
        return from_columns(raw, layout, B, self.graph.in_shapes[name]).to(self.dtype)

    # ----------------------------------------------------------------- cpp_standalone
    def _standalone_request(self, layout: Layout, input_spiking, spike_nodes, v_nodes) -> standalone.Request:
        return standalone.Request(layout, tuple(sorted(input_spiking.items())), tuple(sorted(spike_nodes)),
                                  tuple(sorted(v_nodes)))

    def build_dir(self, layout: Layout, input_spiking, spike_nodes, v_nodes) -> Path:
        """Build directory of one layout: ``cache_dir/standalone/<hash>`` (same graph and layout → same binary)."""
        return standalone.build_dir(self.plan, self._standalone_request(layout, input_spiking, spike_nodes, v_nodes),
                                    self.dtype, self.threads, self.cache_dir)

    def _run_standalone(self, req: _Run, columns: dict[str, torch.Tensor]):
        request = self._standalone_request(req.layout, req.input_spiking, req.spike_nodes, req.v_nodes)
        directory = standalone.ensure_built(self.plan, request, self.dtype, self.threads, self.cache_dir)
        self.last_build_dir = directory
        events, raw_v, loop = standalone.run_binary(directory, req.layout, columns, self.threads)
        if loop is not None:  # the binary's own time in the simulation loop (the rest is start-up and I/O)
            self._extra_timings["binary_loop"] = loop
        dt = self.graph.semantics.dt
        spikes = {n: spikes_from_events(i, t, dt, req.layout, req.B, self.graph.in_shapes[n])
                  for n, (i, t) in events.items()}
        vs = {n: self._v_tensor(v, req.layout, req.B, n) for n, v in raw_v.items()}
        return spikes, vs


def connectivity_digest(plan: Plan) -> str:
    """SHA-256 of the connections of ``plan`` (each projection's source, target, lag and pre/post indices; not the
    weights), cached on the plan: plans with equal code keys and digests can share one runtime network."""
    cached = getattr(plan, "_snnbridge_connectivity", None)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    for p in plan.projections:
        h.update(repr((p.src, p.dst, p.lag, p.size, str(p.pre.dtype), str(p.post.dtype))).encode())
        h.update(np.ascontiguousarray(p.pre).data)
        h.update(np.ascontiguousarray(p.post).data)
    digest = h.hexdigest()
    plan._snnbridge_connectivity = digest  # type: ignore[attr-defined]
    return digest


def _restore(built: Built, name: str) -> None:
    """``net.restore(name)`` that tolerates objects added after the state was stored (e.g. a user's
    ``StateMonitor`` on :attr:`Brian2Simulation.network`): those are kept out of the restore and left as they
    are (Brian2's own restore raises ``KeyError`` for them)."""
    net = built.net
    extra = [o for o in net.objects if o.name not in built.stored]
    if extra:
        net.remove(*extra)
    try:
        net.restore(name)
    finally:
        if extra:
            net.add(*extra)


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
