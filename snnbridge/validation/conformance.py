"""Conformance: run the same inputs through several backends and compare each, node by node, with the reference.

The *yardstick* is the reference executor in float64 under the graph's semantics (plus any
``dt``/``reset``/``integration`` override).  Every backend run is compared with it on every node both
recorded (spike metrics from :mod:`~snnbridge.validation.metrics`, membranes by max abs difference),
each divergence is localised and explained (:mod:`~snnbridge.validation.explain`), and a
:class:`Profile` decides pass/fail:

``exact``
    backends run in float64; every spike of every recorded node must be bit-identical and analog
    values must agree to ``1e-9`` relative.
``float32``
    backends run in float32; a node may differ only by near-threshold flips that originate there,
    on at most 1% of its spike trains (``max_flip_fraction``); analog values to ``1e-4`` relative.
    Divergence propagated from such a node is not counted again.

Example::

    result = conform("model.nir", spikes, backends=["snntorch", "norse"], profile="exact", labels=y)
    print(result.summary()); result.passed

This module is the orchestration (prepare once, compile each run once, stream the samples, merge, judge); the
concepts live beside it and are re-exported here: :mod:`~snnbridge.validation.profiles`,
:mod:`~snnbridge.validation.results` (result types, JSON), :mod:`~snnbridge.validation.node_compare` (node
comparison and explanation), :mod:`~snnbridge.validation.stream` (batches and exact accumulation) and
:mod:`~snnbridge.validation.distributed` (Dask shards).
"""

from __future__ import annotations

import datetime as _dt
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import nir
import numpy as np
import torch

from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.graph import FlatGraph, prepare
from snnbridge.bridge.inputs import Inputs, as_input_tensors
from snnbridge.bridge.io import read_graph
from snnbridge.bridge.recording import Recording
from snnbridge.bridge.semantics import SemanticsOverrides
from snnbridge.errors import InputError, SnnBridgeError
from snnbridge.validation import explain as ex
from snnbridge.validation.accuracy import accuracy, agreement
from snnbridge.validation.costs import Conventions, graph_costs, static_costs

if TYPE_CHECKING:
    from snnbridge.validation.stream import SampleSource
from snnbridge.validation.node_compare import (  # noqa: F401 - re-exported: the public path of these names
    ResetVariants,
    _allowed,
    _as_spikes,
    _atol,
    _compare_node,
    _explain,
    _name_upstream,
    _threshold_source,
    _Variants,
    compare,
    compare_nodes,
    judge,
    pairwise,
)
from snnbridge.validation.profiles import PROFILES, Profile, get_profile  # noqa: F401 - re-exported
from snnbridge.validation.results import (  # noqa: F401 - re-exported
    SCHEMA_NAME,
    SCHEMA_VERSION,
    YARDSTICK,
    BackendResult,
    ConformanceResult,
    NodeResult,
    _clean,
)
from snnbridge.validation.runners import (
    BackendSpec,
    RunOutcome,
    check_devices,
    original_spec,
    parse_specs,
)

# --------------------------------------------------------------------------- entry point


def _environment() -> dict:
    import importlib.metadata as md

    versions = {}
    for pkg in ("snnbridge", "torch", "nir", "snntorch", "norse", "brian2", "numpy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {"python": platform.python_version(), "platform": platform.platform(terse=True), "versions": versions}


class _Plan:
    """What one check runs, compiled once per process: the yardstick and every backend spec.

    Picklable before :meth:`compile` (a cluster's workers build their own); every registered backend receives
    the prepared ``FlatGraph`` (prepared once per distinct ``dt``/``reset``/``integration``), the upstream
    audits the ``nir.NIRGraph`` their importers read.
    """

    def __init__(self, graph, fg: FlatGraph, specs: list[BackendSpec], p: Profile, overrides: SemanticsOverrides,
                 tau: float, conventions: Conventions, device) -> None:
        self.graph, self.fg, self.specs, self.p, self.overrides = graph, fg, specs, p, overrides
        self.tau, self.conventions, self.device = tau, conventions, device
        self.specs_by_name = {s.name: s for s in specs}
        self._compiled: dict | None = None

    def __getstate__(self) -> dict:
        d = dict(self.__dict__)
        d["_compiled"] = None
        return d

    def atol(self, ref_absmax: float) -> float:
        """The analog tolerance of a node whose largest reference magnitude is ``ref_absmax``."""
        return self.p.analog_atol + self.p.analog_rtol * ref_absmax

    def graph_for(self, spec: BackendSpec, prepared: dict) -> tuple:
        """``(graph, overrides, apply the spec's own)`` for compiling ``spec``: the prepared FlatGraph (one per
        distinct semantics, nothing left to override), or the NIR graph its importer reads with the overrides."""
        if spec.runner is not None or spec.audit or isinstance(self.graph, FlatGraph):
            return self.graph, self.overrides, True
        own = SemanticsOverrides.of(spec.overrides)
        if not own:
            return self.fg, SemanticsOverrides(), False
        merged = self.overrides.then(own)
        if merged not in prepared:
            prepared[merged] = prepare(self.graph, **merged.kwargs())
        return prepared[merged], SemanticsOverrides(), False

    def compile(self) -> dict:
        """``{name: (run, dtype) or RunOutcome}``: a batch runner per spec, or why it cannot run."""
        from snnbridge.validation.runners import compile_spec

        if self._compiled is None:
            prepared: dict = {}
            out = {YARDSTICK: (ReferenceExecutor(self.fg, dtype=torch.float64).run, torch.float64)}
            for spec in self.specs:
                graph, overrides, own = self.graph_for(spec, prepared)
                out[spec.name] = compile_spec(spec, graph, self.p.dtype, overrides, self.device, overrides=own)
            self._compiled = out
        return self._compiled


def _stream(plan: _Plan, source, start: int, stop: int, batch_size: int | None, progress: bool,
            keep_first: bool = True) -> tuple[dict, object]:
    """Run samples ``start .. stop - 1`` batch by batch through every run; returns ``(runs, pairs)`` accumulators.

    Memory holds one batch of every run's recording at a time (and the first batch's, for figures).
    """
    from snnbridge.progress import progress_bar
    from snnbridge.validation.runners import run_batch
    from snnbridge.validation.stream import NodeAcc, PairAcc, RunAcc, batches, predictions_of

    fg = plan.fg
    compiled = plan.compile()
    runs = {name: RunAcc(name) for name in compiled}
    for name, c in compiled.items():
        if isinstance(c, RunOutcome):
            runs[name].fail(c.status, c.reason)
            runs[name].runtime_s = c.runtime_s
    pairs = PairAcc()
    bar = progress_bar(total=stop - start, desc="conform", unit="sample", progress=progress, leave=False)
    try:
        for a, b in batches(stop - start, batch_size):
            a, b = a + start, b + start
            xb = as_input_tensors(fg, source.batch(a, b), torch.float64)[fg.inputs[0]]
            recs: dict[str, Recording] = {}
            for name, c in compiled.items():
                acc = runs[name]
                if acc.status != "ok":
                    continue
                bar.set_postfix_str(name, refresh=False)
                rec, seconds, error = run_batch(c, xb, plan.device if name != YARDSTICK else None,
                                                plan.specs_by_name.get(name) if name != YARDSTICK else None)
                acc.runtime_s += seconds
                if error:
                    if name == YARDSTICK:
                        raise SnnBridgeError(f"the reference run failed: {error}")
                    acc.fail("error", error)
                    continue
                ref = recs.get(YARDSTICK, rec)
                if rec.steps != ref.steps or rec.batch_size != ref.batch_size:
                    acc.fail("error", f"recording is [T={rec.steps}, B={rec.batch_size}], expected "
                                      f"[T={ref.steps}, B={ref.batch_size}]")
                    continue
                recs[name] = rec
                for n in fg.order:
                    if n not in ref:
                        continue
                    node = acc.nodes.get(n)
                    if node is None:
                        node = acc.nodes[n] = NodeAcc(n, ref[n].dtype == torch.bool, tuple(ref[n].shape[2:]),
                                                      tau=plan.tau)
                    node.update(ref[n], rec.outputs.get(n), ref.membranes.get(n), rec.membranes.get(n), a,
                                plan.atol)
                preds = predictions_of(fg, rec)
                if preds is None:
                    acc.predictions_none = True
                else:
                    acc.predictions.append(preds)
                acc.costs.update(fg, rec, plan.conventions)
                if keep_first and a == start:
                    acc.recording = rec
            pairs.update(recs)
            bar.update(b - a)
    finally:
        bar.close()
    return runs, pairs


def _merge(parts: list[tuple[dict, object]]) -> tuple[dict, object]:
    """Shard results, in sample order, as one ``(runs, pairs)``."""
    runs, pairs = parts[0]
    for r, pp in parts[1:]:
        for name, acc in r.items():
            runs[name].merge(acc)
        pairs.merge(pp)
    return runs, pairs


class _Gathered:
    """Every sample of the nodes that need explaining (re-run batch by batch), for :func:`_explain`."""

    def __init__(self, plan: _Plan, source, batch_size, name: str, labels_of) -> None:
        self.plan, self.source, self.batch_size, self.name = plan, source, batch_size, name

    def __call__(self, names: list[str]):
        from snnbridge.validation.runners import run_batch
        from snnbridge.validation.stream import batches

        plan, fg = self.plan, self.plan.fg
        want = set(names)
        for n in names:
            want.update(fg.preds[n])
            src = _threshold_source(fg, n)
            if src:
                want.add(src)
        compiled = plan.compile()
        variant_runs = {}
        if isinstance(plan.graph, nir.NIRGraph):
            variant_runs = ex.reset_variant_runs(plan.graph, plan.overrides, plan.fg.semantics.reset)
        parts: dict[str, list[Recording]] = {YARDSTICK: [], self.name: [], **{k: [] for k in variant_runs}}
        for a, b in batches(self.source.samples, self.batch_size):
            xb = as_input_tensors(fg, self.source.batch(a, b), torch.float64)[fg.inputs[0]]
            for key in (YARDSTICK, self.name):
                rec, _, error = run_batch(compiled[key], xb, plan.device if key != YARDSTICK else None,
                                          plan.specs_by_name.get(key))
                if error:
                    raise SnnBridgeError(f"'{key}' failed when re-run to explain a divergence: {error}")
                parts[key].append(_only(rec, want))
            for key, executor in variant_runs.items():
                parts[key].append(_only(executor.run(xb), set(names)))
        joined = {k: Recording.concat(v) for k, v in parts.items()}
        variants = ResetVariants({k: joined[k] for k in variant_runs}) if variant_runs else None
        return joined[YARDSTICK], joined[self.name], variants


def _only(rec: Recording, names: set) -> Recording:
    return Recording({k: v for k, v in rec.outputs.items() if k in names},
                     {k: v for k, v in rec.membranes.items() if k in names}, dict(rec.node_types), rec.dt,
                     rec.backend, list(rec.order))


def _outputs(res: BackendResult, acc, labels, plan: _Plan, steps: int) -> None:
    res.recording = acc.recording
    res.predictions = None if acc.predictions_none or not acc.predictions else torch.cat(acc.predictions)
    if labels is not None and res.predictions is not None and len(res.predictions) == len(labels):
        res.accuracy = accuracy(res.predictions, labels)
    res.costs = acc.costs.result(plan.fg, steps, plan.conventions)


def _finish(plan: _Plan, runs: dict, pairs, source, batch_size, labels, steps: int, samples: int
            ) -> tuple[BackendResult, dict[str, BackendResult], dict]:
    """Per-node results, explanations, verdicts and pairwise numbers from the merged accumulators."""
    fg, p = plan.fg, plan.p
    y = runs[YARDSTICK]
    yard = BackendResult(YARDSTICK, "reference", False, "pass", dtype="float64", runtime_s=y.runtime_s)
    _outputs(yard, y, labels, plan, steps)
    yard.nodes = {n: a.result(fg, steps, samples, plan.atol) for n, a in y.nodes.items()}
    judge(fg, yard.nodes, p, lambda names: None)
    results: dict[str, BackendResult] = {}
    for spec in plan.specs:
        acc = runs[spec.name]
        res = BackendResult(spec.name, spec.backend or (spec.native and f"{spec.native}-native"), spec.audit, "pass",
                            "", str(spec.dtype(p.dtype)).replace("torch.", ""), dict(spec.overrides), acc.runtime_s,
                            device=spec.device(plan.device))
        results[spec.name] = res
        if acc.status != "ok":
            res.status, res.reason, res.failures = acc.status, acc.reason, [acc.reason]
            continue
        res.nodes = {n: a.result(fg, steps, samples, plan.atol) for n, a in acc.nodes.items()}
        res.first_divergent_node, res.failures = judge(fg, res.nodes, p,
                                                       _Gathered(plan, source, batch_size, spec.name, None))
        if not any(n.compared for n in res.nodes.values()):
            res.failures.append("no node in common with the reference recording")
        res.status = "fail" if res.failures else "pass"
        _outputs(res, acc, labels, plan, steps)
        if res.predictions is not None and yard.predictions is not None:
            res.prediction_agreement = agreement(res.predictions, yard.predictions)
    ran = {YARDSTICK: yard, **{k: v for k, v in results.items() if v.status in ("pass", "fail")}}
    names = list(ran)
    f1 = {a: {b: pairs.f1(a, b) for b in names} for a in names}
    pred = {a: {b: (agreement(ran[a].predictions, ran[b].predictions)
                    if ran[a].predictions is not None and ran[b].predictions is not None else None) for b in names}
            for a in names}
    return yard, results, {"names": names, "spike_f1": f1, "prediction_agreement": pred}


def conform(graph: nir.NIRGraph | FlatGraph | str | Path, inputs: Inputs | SampleSource,
            backends: str | Sequence[str | BackendSpec] = ("reference",), profile: str | Profile = "exact",
            labels: torch.Tensor | np.ndarray | None = None, dt: float | None = None, reset: str | None = None,
            integration: str | None = None, conventions: Conventions | None = None, batch_size: int | None = None,
            progress: bool = False, tau: float = 5.0, model: str | None = None, data: str | None = None,
            seed: int | None = None, original: torch.nn.Module | None = None, device: str | torch.device | None = None,
            scheduler: str | None = None, shards: int | None = None, prepared: FlatGraph | None = None
            ) -> ConformanceResult:
    """Run ``inputs`` ``[T, B, *input_shape]`` through ``backends`` and compare each with the float64 reference.

    The samples stream through in batches of ``batch_size``: every run sees one batch at a time, which is
    compared at once and accumulated exactly (:mod:`~snnbridge.validation.stream`), so memory does not grow
    with the number of samples and the result is the same for any batch size.  The recordings kept for
    figures (``BackendResult.recording``, ``ConformanceResult.inputs``) are the first batch's.

    Args:
        graph: a ``nir.NIRGraph``, a ``.nir`` path, or a prepared ``FlatGraph``.
        inputs: spikes or analog values ``[T, B, ...]`` (tensor or array), or a
            :class:`~snnbridge.validation.stream.SampleSource` that produces them batch by batch.
        backends: names/specs (``"norse"``, ``"reference@reset=subtract"``, :class:`BackendSpec`) or a
            comma-separated string.
        profile: ``"exact"`` or ``"float32"`` (or a :class:`Profile`).
        labels: ``[B]`` class labels for top-1 accuracy (rate decoding, Eq. 7).
        dt: step in seconds, overriding the graph's semantics for every run.
        reset: reset mode overriding the graph's semantics for every run.
        integration: integration overriding the graph's semantics for every run.
        conventions: cost counting conventions (:class:`~snnbridge.validation.costs.Conventions`).
        batch_size: samples per batch (``None``: all at once; smaller batches bound memory).
        tau: van Rossum kernel time constant in steps.
        model: a description of the model kept in the report.
        data: a description of the data kept in the report.
        seed: the data's seed, kept in the report.
        original: the user's own native module (snnTorch or Norse) that the graph was imported from
            (``backends.get(lib).from_native``); it runs natively as a row of its own, named ``original``,
            compared node by node with the reference like any backend.
        device: where the backends run (``"cpu"``, ``"cuda"``, ``"cuda:1"``; a spec's ``@device=`` wins): the
            reference and torch backends run there, each batch moves to it and its recording comes back to the
            CPU for comparison; the yardstick always runs on the CPU in float64.  A backend that cannot run on
            a GPU (Brian2, the upstream audits) or a machine without CUDA is one :class:`SnnBridgeError`.
        scheduler: a Dask scheduler address (``"tcp://host:8786"``): the samples are split into ``shards``
            contiguous shards (default: two per worker) run on the cluster's workers and merged in order into
            the result a local run gives (see :mod:`~snnbridge.validation.distributed`).
        prepared: ``graph`` already prepared with these ``dt``/``reset``/``integration`` (not prepared again).
    """
    t_start = time.perf_counter()
    p = get_profile(profile)
    specs = _specs(backends, original, device)
    graph, fg, overrides, model = _graph(graph, prepared, SemanticsOverrides(dt, reset, integration), model)
    source, labels = _samples(fg, inputs, labels, batch_size)
    samples, steps = int(source.samples), int(source.steps)
    conventions = conventions or Conventions()
    plan = _Plan(graph, fg, specs, p, overrides, tau, conventions, device)
    runs, pairs = _run(plan, source, batch_size, scheduler, shards, progress)
    yard, results, pairwise_ = _finish(plan, runs, pairs, source, batch_size, labels, steps, samples)
    first = batch_size if batch_size and batch_size > 0 else samples
    x0 = _as_input(fg, source.batch(0, min(samples, first)))
    meta = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "samples": samples, "steps": steps, "model": model, "data": data, "seed": seed,
        "environment": _environment(), "runtime_s": time.perf_counter() - t_start, "van_rossum_tau": tau,
    }
    return ConformanceResult(fg, p, yard, results, x0, labels, pairwise_, graph_costs(fg, conventions),
                             _structure_costs(fg, conventions), meta)


def _specs(backends, original: torch.nn.Module | None, device) -> list[BackendSpec]:
    """The backend specs to check (the user's own module first, as ``original``), their devices checked."""
    specs: list[BackendSpec] = parse_specs(backends)
    if original is not None:
        specs = [original_spec(original), *[s for s in specs if s.name != "original"]]
    check_devices(specs, device)
    return specs


def _graph(graph, prepared: FlatGraph | None, overrides: SemanticsOverrides, model: str | None) -> tuple:
    """``(graph, FlatGraph, overrides, model)``: a path read, the graph prepared once (or the one given)."""
    if isinstance(graph, (str, Path)):
        model = model or Path(graph).name
        graph = read_graph(graph)
    if not isinstance(graph, (nir.NIRGraph, FlatGraph)):
        raise SnnBridgeError(f"graph must be a nir.NIRGraph, FlatGraph or .nir path, got {type(graph).__name__}")
    if isinstance(graph, FlatGraph) and overrides:
        raise SnnBridgeError("pass dt/reset/integration with a nir.NIRGraph, not a prepared FlatGraph")
    fg = graph if isinstance(graph, FlatGraph) else (prepared if prepared is not None
                                                     else prepare(graph, **overrides.kwargs()))
    if len(fg.inputs) != 1:
        raise InputError(f"conformance checks need a graph with exactly one Input node, it has {len(fg.inputs)}")
    return graph, fg, overrides, model


def _samples(fg: FlatGraph, inputs, labels, batch_size: int | None) -> tuple:
    """``(source, labels)`` checked against each other; one batch of the yardstick (float64, membranes kept) must
    fit the memory budget before anything runs or prints."""
    from snnbridge.bridge import limits

    source = _as_source(fg, inputs)
    samples, steps = int(source.samples), int(source.steps)
    if labels is not None:
        labels = torch.as_tensor(np.asarray(labels)).long().reshape(-1)
        if len(labels) != samples:
            raise InputError(f"{len(labels)} labels for {samples} samples")
    if batch_size is not None and batch_size < 0:
        raise InputError(f"batch_size must be >= 0, got {batch_size}")
    limits.check_run(fg, steps, min(samples, batch_size or samples))
    return source, labels


def _run(plan: _Plan, source, batch_size: int | None, scheduler: str | None, shards: int | None,
         progress: bool) -> tuple[dict, object]:
    """Every sample through every run, here or sharded over a Dask cluster: the merged ``(runs, pairs)``."""
    if scheduler is None:
        return _stream(plan, source, 0, int(source.samples), batch_size, progress)
    from snnbridge.validation.distributed import run_sharded

    return run_sharded(plan, source, int(source.samples), batch_size, scheduler, shards, progress)


def _structure_costs(fg: FlatGraph, conventions: Conventions) -> dict | None:
    """The paper's static ANN/SNN costs of a Table-1 structure named in the graph's metadata, else ``None``."""
    structure = fg.metadata.get("structure")
    if not isinstance(structure, str):
        return None
    try:
        shape = fg.out_shapes[fg.inputs[0]]
        return {
            "structure": structure, "input_shape": list(shape),
            "ann": static_costs(structure, shape, "ann", conventions=conventions).to_dict(),
            "snn": static_costs(structure, shape, "snn", conventions=conventions).to_dict(),
        }
    except (SnnBridgeError, ValueError):
        return None


def _as_input(fg: FlatGraph, x) -> torch.Tensor:

    return as_input_tensors(fg, x, torch.float64)[fg.inputs[0]]


def _as_source(fg: FlatGraph, inputs):
    """``inputs`` as a :class:`~snnbridge.validation.stream.SampleSource` (a tensor is checked whole, once)."""
    from snnbridge.validation.stream import SampleSource, TensorSource

    if isinstance(inputs, SampleSource) and not isinstance(inputs, (torch.Tensor, np.ndarray)):
        if inputs.samples <= 0 or inputs.steps <= 0:
            raise InputError(f"no samples to check ([T={inputs.steps}, B={inputs.samples}])")
        return inputs
    return TensorSource(_as_input(fg, inputs))
