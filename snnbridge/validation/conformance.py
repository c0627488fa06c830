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
"""

from __future__ import annotations

import datetime as _dt
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import nir
import numpy as np
import torch

from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.graph import FlatGraph, prepare
from snnbridge.bridge.inputs import as_input_tensors
from snnbridge.bridge.io import read_graph
from snnbridge.bridge.recording import Recording
from snnbridge.errors import InputError, SnnBridgeError
from snnbridge.validation import explain as ex
from snnbridge.validation import metrics as m
from snnbridge.validation.accuracy import accuracy, agreement
from snnbridge.validation.costs import Conventions, Costs, graph_costs, static_costs
from snnbridge.validation.runners import (
    BackendSpec,
    RunOutcome,
    check_devices,
    original_spec,
    parse_specs,
)

SCHEMA_NAME = "snnbridge-conformance-report"
SCHEMA_VERSION = 1
YARDSTICK = "yardstick"


@dataclass(frozen=True)
class Profile:
    """A tolerance profile.

    Attributes:
        name: ``exact`` or ``float32``.
        dtype: precision the backends run in (the yardstick is always float64).
        analog_rtol / analog_atol: analog values agree when ``|Δ| <= atol + rtol·max|ref|`` (per node).
        near_threshold: near-threshold flips that originate at a node are allowed.
        max_flip_fraction: at most this fraction of a node's spike trains may flip.
        threshold_tol: a flip is near-threshold when ``|v − θ| <= threshold_tol·max(1, |θ|)``.
    """

    name: str
    dtype: torch.dtype
    analog_rtol: float
    analog_atol: float
    near_threshold: bool
    max_flip_fraction: float
    threshold_tol: float

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": str(self.dtype).replace("torch.", ""), "analog_rtol": self.analog_rtol,
                "analog_atol": self.analog_atol, "near_threshold_allowed": self.near_threshold,
                "max_flip_fraction": self.max_flip_fraction, "threshold_tol": self.threshold_tol}


PROFILES = {
    "exact": Profile("exact", torch.float64, 1e-9, 1e-12, False, 0.0, 1e-9),
    "float32": Profile("float32", torch.float32, 1e-4, 1e-6, True, 0.01, 1e-4),
}


def get_profile(profile: str | Profile) -> Profile:
    """A :class:`Profile` by name (``exact``/``float32``) or as given."""
    if isinstance(profile, Profile):
        return profile
    if profile not in PROFILES:
        raise SnnBridgeError(f"unknown profile '{profile}'; choose {' or '.join(PROFILES)}")
    return PROFILES[profile]


# --------------------------------------------------------------------------- results


@dataclass
class NodeResult:
    """One node of one backend compared with the yardstick (numbers per node over all samples)."""

    name: str
    type: str
    spiking: bool
    shape: tuple[int, ...]
    compared: bool = True
    agree: bool = True
    agreement: float = 1.0
    """Spike nodes: event F1; analog nodes: fraction of values within tolerance."""
    events: m.EventScores | None = None
    counts: m.CountDifference | None = None
    van_rossum_mean: float | None = None
    van_rossum_max: float | None = None
    cosine: float | None = None
    max_abs: float | None = None
    membrane_max_abs: float | None = None
    first_divergence: m.Divergence | None = None
    inputs_agree: bool | None = None
    origin: bool | None = None
    explanation: ex.Explanation = field(default_factory=lambda: ex.Explanation("agree", "identical"))
    allowed: bool = True

    def to_dict(self) -> dict:
        return {
            "name": self.name, "type": self.type, "spiking": self.spiking, "shape": list(self.shape),
            "compared": self.compared, "agree": self.agree, "agreement": self.agreement,
            "events": self.events.to_dict() if self.events else None,
            "counts": self.counts.to_dict() if self.counts else None,
            "van_rossum_mean": self.van_rossum_mean, "van_rossum_max": self.van_rossum_max, "cosine": self.cosine,
            "max_abs": self.max_abs, "membrane_max_abs": self.membrane_max_abs,
            "first_divergence": self.first_divergence.to_dict() if self.first_divergence else None,
            "inputs_agree": self.inputs_agree, "origin": self.origin,
            "classification": self.explanation.kind, "explanation": self.explanation.text,
            "details": self.explanation.details, "allowed": self.allowed,
        }


@dataclass
class BackendResult:
    """One backend run: status (``pass``/``fail``/``error``/``unavailable``), per-node results, accuracy, costs."""

    name: str
    backend: str | None
    audit: bool
    status: str
    reason: str = ""
    dtype: str = "float64"
    overrides: dict = field(default_factory=dict)
    runtime_s: float = 0.0
    nodes: dict[str, NodeResult] = field(default_factory=dict)
    first_divergent_node: str | None = None
    failures: list[str] = field(default_factory=list)
    predictions: torch.Tensor | None = None
    accuracy: float | None = None
    agreement: float | None = None
    costs: Costs | None = None
    recording: Recording | None = None
    device: str = "cpu"
    """Where the backend ran (recordings come back to the CPU for comparison)."""

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def counted(self) -> bool:
        """Whether this backend's outcome decides the check (not an audit run, and it ran)."""
        return not self.audit and self.status in ("pass", "fail", "error")

    @property
    def first_divergence(self) -> m.Divergence | None:
        n = self.nodes.get(self.first_divergent_node or "")
        return n.first_divergence if n else None

    @property
    def verdict(self) -> str:
        """``PASS``, ``FAIL``, ``ERROR``, ``UNAVAILABLE`` (``AUDIT:`` prefixed for audit runs)."""
        v = self.status.upper()
        return f"AUDIT {v}" if self.audit else v

    def to_dict(self) -> dict:
        fd = self.first_divergence
        origin = self.nodes.get(self.first_divergent_node or "")
        return {
            "name": self.name, "backend": self.backend, "audit": self.audit, "status": self.status,
            "verdict": self.verdict, "reason": self.reason, "dtype": self.dtype,
            "overrides": {k: (str(v).replace("torch.", "") if k == "dtype" else v) for k, v in self.overrides.items()},
            "runtime_s": self.runtime_s, "first_divergent_node": self.first_divergent_node,
            "first_divergence": fd.to_dict() if fd else None,
            "classification": origin.explanation.kind if origin else None,
            "explanation": origin.explanation.text if origin else None,
            "failures": list(self.failures),
            "nodes_compared": sum(1 for n in self.nodes.values() if n.compared),
            "nodes_agreeing": sum(1 for n in self.nodes.values() if n.compared and n.agree),
            "accuracy": self.accuracy, "prediction_agreement": self.agreement,
            "costs": self.costs.to_dict() if self.costs else None,
            "nodes": [n.to_dict() for n in self.nodes.values()],
            **({"device": self.device} if self.device != "cpu" else {}),
        }

    def __repr__(self) -> str:
        where = ""
        if self.status in ("unavailable", "error"):
            where = f", {self.reason[:100]!r}"
        elif self.first_divergent_node:
            fd = self.first_divergence
            where = f", first diverges at {self.first_divergent_node!r}" + (
                f" (step {fd.step}, sample {fd.sample}, neuron {fd.neuron})" if fd else "")
        acc = "" if self.accuracy is None else f", accuracy {100 * self.accuracy:.1f}%"
        return f"BackendResult({self.name!r}: {self.verdict}, {self.dtype}{acc}{where})"

    def _repr_html_(self) -> str:
        """This backend's verdict card, as in the HTML report (Jupyter rich display)."""
        from snnbridge.display import backend_html

        return backend_html(self)


@dataclass
class ConformanceResult:
    """Everything one check measured; :meth:`to_dict` is the versioned JSON report."""

    graph: FlatGraph
    profile: Profile
    yardstick: BackendResult
    backends: dict[str, BackendResult]
    inputs: torch.Tensor
    labels: torch.Tensor | None
    pairwise: dict
    ann_costs: Costs
    structure_costs: dict | None
    meta: dict

    @property
    def passed(self) -> bool:
        """All counted backends pass (audit and unavailable runs do not count)."""
        return all(b.passed for b in self.backends.values() if b.counted)

    @property
    def failed(self) -> list[str]:
        return [n for n, b in self.backends.items() if b.counted and not b.passed]

    @property
    def exit_code(self) -> int:
        """0 when every counted backend passes, 1 otherwise."""
        return 0 if self.passed else 1

    def all_runs(self) -> dict[str, BackendResult]:
        """The yardstick followed by every backend that produced a recording."""
        out = {YARDSTICK: self.yardstick}
        out.update({k: v for k, v in self.backends.items() if v.recording is not None})
        return out

    def summary(self) -> str:
        """A few plain-text lines: the verdict per backend and where each diverges first."""
        lines = [f"profile {self.profile.name}: {'PASS' if self.passed else 'FAIL'} "
                 f"({self.meta['samples']} samples, T={self.meta['steps']})"]
        for b in self.backends.values():
            line = f"  {b.name:28s} {b.verdict:16s}"
            if b.accuracy is not None:
                line += f" acc {100 * b.accuracy:5.1f}%"
            if b.status in ("unavailable", "error"):
                line += f" {b.reason}"
            elif b.first_divergent_node:
                fd = b.first_divergence
                n = b.nodes[b.first_divergent_node]
                where = f" at step {fd.step}, sample {fd.sample}, neuron {fd.neuron}" if fd else ""
                line += f" first diverges at '{b.first_divergent_node}'{where}: {n.explanation.text}"
            lines.append(line)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The JSON report (schema ``report_schema.json``), every number of the check."""
        fg = self.graph
        d = {
            "schema": SCHEMA_NAME,
            "version": SCHEMA_VERSION,
            "created": self.meta["created"],
            "passed": self.passed,
            "exit_code": self.exit_code,
            "profile": self.profile.to_dict(),
            "metrics": {"van_rossum_tau_steps": self.meta.get("van_rossum_tau", 5.0)},
            "model": {
                "name": self.meta.get("model"),
                "structure": fg.metadata.get("structure"),
                "semantics": {"dt": fg.semantics.dt, "reset": fg.semantics.reset,
                              "integration": fg.semantics.integration},
                "nodes": [{"name": n, "type": fg.type_of(n), "input_shape": list(fg.in_shapes[n]),
                           "output_shape": list(fg.out_shapes[n]), "preds": list(fg.preds[n])} for n in fg.order],
            },
            "data": {"description": self.meta.get("data"), "samples": self.meta["samples"],
                     "steps": self.meta["steps"], "labels": self.labels is not None, "seed": self.meta.get("seed")},
            "environment": self.meta["environment"],
            "conventions": self.ann_costs.conventions.to_dict(),
            "reference": self.yardstick.to_dict(),
            "backends": [b.to_dict() for b in self.backends.values()],
            "pairwise": self.pairwise,
            "ann_costs": self.ann_costs.to_dict(),
            "structure_costs": self.structure_costs,
            "runtime_s": self.meta.get("runtime_s"),
        }
        return _clean(d)

    def __repr__(self) -> str:
        """The verdict per backend and where each diverges first (:meth:`summary`), under a one-line header."""
        name = self.meta.get("model") or self.graph.metadata.get("structure") or "graph"
        return f"ConformanceResult({name!r}, {len(self.graph.order)} nodes)\n{self.summary()}"

    def _repr_html_(self) -> str:
        """Jupyter rich display: the report's verdict cards, per-node agreement, divergence and cost tables."""
        from snnbridge.display import conformance_html

        return conformance_html(self)


def _clean(x):
    """JSON-safe: NaN/Inf → None, tuples → lists, numpy scalars → Python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.generic,)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# --------------------------------------------------------------------------- comparing


def _as_spikes(t: torch.Tensor) -> torch.Tensor | None:
    """A 0/1-valued tensor as bool, else ``None``."""
    if t.dtype == torch.bool:
        return t
    if bool(((t == 0) | (t == 1)).all()):
        return t > 0.5
    return None


def _compare_node(fg, name: str, ref: Recording, rec: Recording, p: Profile, tau: float) -> NodeResult:
    """Node ``name`` of ``rec`` against ``ref`` (all samples at once; a streamed check accumulates the same)."""
    from snnbridge.validation.stream import NodeAcc

    r = ref[name]
    acc = NodeAcc(name, r.dtype == torch.bool, tuple(r.shape[2:]), tau=tau)
    acc.update(r, rec.outputs.get(name), ref.membranes.get(name), rec.membranes.get(name), 0,
               lambda mx: p.analog_atol + p.analog_rtol * mx)
    return acc.result(fg, ref.steps, ref.batch_size, lambda mx: p.analog_atol + p.analog_rtol * mx)


def _atol(r: torch.Tensor, p: Profile) -> float:
    scale = float(r.double().abs().max()) if r.numel() else 0.0
    return p.analog_atol + p.analog_rtol * scale


def _threshold_source(fg, name: str) -> str | None:
    """The node whose membrane/threshold decides ``name``'s spikes (itself, or up a chain of pass-through nodes)."""
    seen = set()
    while name not in seen:
        seen.add(name)
        if ex.threshold_of(fg, name) is not None:
            return name
        preds = fg.preds.get(name, [])
        if len(preds) != 1:
            return None
        name = preds[0]
    return None


class _Variants:
    """Whole-graph reference re-runs with other reset modes (for nodes whose inputs were not recorded)."""

    def __init__(self, graph, x: torch.Tensor, semantics: dict) -> None:
        self.graph, self.x, self.semantics = graph, x, semantics
        self._runs: dict[str, Recording] | None = None

    def get(self) -> dict[str, Recording]:
        if self._runs is None:
            self._runs = {}
            current = prepare(self.graph, **self.semantics).semantics.reset
            kw = {k: v for k, v in self.semantics.items() if k != "reset"}
            for mode in ("zero", "subtract", "none"):
                if mode != current:
                    self._runs[f"reset='{mode}'"] = ReferenceExecutor(self.graph, reset=mode, **kw).run(self.x)
        return self._runs


def compare(fg, ref: Recording, rec: Recording, profile: str | Profile = "exact", tau: float = 5.0,
            variants: _Variants | None = None) -> tuple[dict[str, NodeResult], str | None, list[str]]:
    """Compare recording ``rec`` with the yardstick ``ref`` on every node of ``fg``.

    Returns ``(nodes, first_divergent_node, failures)``: per-node results in evaluation order, the
    earliest node (topological order) where divergence starts, and one line per node the profile rejects.
    """
    p = get_profile(profile)
    nodes = {n: _compare_node(fg, n, ref, rec, p, tau) for n in fg.order if n in ref}
    origin, failures = judge(fg, nodes, p, lambda names: (ref, rec, variants))
    return nodes, origin, failures


def judge(fg, nodes: dict[str, NodeResult], p: Profile, traces) -> tuple[str | None, list[str]]:
    """Localise and explain the divergences of ``nodes`` (metrics already set); returns ``(origin, failures)``.

    ``traces(names)`` gives ``(ref, rec, variants)`` holding at least those nodes, their inputs and threshold
    sources over all samples (called once, only when some node needs explaining).
    """
    need = []
    for name, res in nodes.items():
        if not res.compared:
            continue
        ff = [q for q in fg.preds[name] if (q, name) not in fg.recurrent]
        known = all(q in nodes and nodes[q].compared for q in ff)
        res.inputs_agree = all(nodes[q].agree for q in ff) if known else None
        if res.inputs_agree and not res.agree:
            # a recurrent input reaches this node one step later: it explains a divergence only if it came first
            mine = res.first_divergence.step if res.first_divergence else None
            for q in fg.preds[name]:
                r = nodes.get(q)
                if (q, name) in fg.recurrent and r is not None and r.compared and not r.agree:
                    theirs = r.first_divergence.step if r.first_divergence else None
                    if mine is None or theirs is None or theirs + 1 <= mine:
                        res.inputs_agree = False
        if res.agree:
            res.origin = False
            res.explanation = ex.Explanation("agree", "identical spikes" if res.spiking else "values within tolerance")
            continue
        if not res.allowed:  # a structural mismatch (shape, non-binary spikes), already explained
            res.origin = True
            continue
        need.append(name)
    if need:
        ref, rec, variants = traces(need)
        for name in need:
            _explain(fg, name, nodes[name], ref, rec, p, variants)
    for res in nodes.values():
        if res.compared and not res.agree:
            res.allowed = _allowed(res, p)
    origin = next((n for n, r in nodes.items() if r.compared and not r.agree and r.origin), None)
    if origin is None:
        origin = next((n for n, r in nodes.items() if r.compared and not r.agree and r.inputs_agree), None)
    if origin is None:
        origin = next((n for n, r in nodes.items() if r.compared and not r.agree), None)
    _name_upstream(fg, nodes)
    failures = [f"{n}: {r.explanation.text}" for n, r in nodes.items() if r.compared and not r.allowed]
    return origin, failures


def _explain(fg, name: str, res: NodeResult, ref: Recording, rec: Recording, p: Profile,
             variants: _Variants | None) -> None:
    g = rec[name]
    if res.spiking:
        g = _as_spikes(g)
    if name in fg.inputs:
        res.origin = True
        res.explanation = ex.Explanation("unexplained", "the backend recorded different inputs than it was given")
        return
    x = ex.node_input(fg, rec, name)
    if x is not None:
        exp, v = ex.resimulate(fg, name, x, spikes=res.spiking)
        if res.spiking:
            local_ok = torch.equal(exp, g)
        else:
            local_ok = not bool(m.mismatch_mask(exp, g, _atol(exp, p)).any())
        if local_ok and res.inputs_agree is False:
            res.origin = False
            res.explanation = ex.Explanation("propagated", "inherits the divergence of its inputs")
            return
        res.origin = True
        if not local_ok:
            if res.spiking:
                res.explanation = ex.classify(exp, g, v, ex.threshold_of(fg, name), ex.reset_variants(fg, name, x),
                                              p.threshold_tol)
            else:
                res.explanation = ex.classify_analog(exp, g, _atol(exp, p))
            return
        # the node reproduces the backend given the backend's inputs, and those agree with the reference's
        # within tolerance: the tiny input difference decided it; judge against the reference run itself
        xr = ex.node_input(fg, ref, name)
        if res.spiking and xr is not None:
            _, vr = ex.resimulate(fg, name, xr, spikes=True)
            res.explanation = ex.classify(ref[name], g, vr, ex.threshold_of(fg, name),
                                          ex.reset_variants(fg, name, xr), p.threshold_tol)
        else:
            res.explanation = ex.classify_analog(ref[name], g, _atol(ref[name], p))
        return
    # inputs not recorded: judge against the yardstick itself
    res.origin = None
    if not res.spiking:
        res.explanation = ex.classify_analog(ref[name], g, _atol(ref[name], p))
        return
    src = _threshold_source(fg, name)
    v = ref.membranes.get(src) if src else None
    th = ex.threshold_of(fg, src) if src else None
    if v is not None and src != name and fg.type_of(src) == "Threshold":
        v = None
    alts = {}
    if variants is not None:
        alts = {k: r[name] for k, r in variants.get().items() if name in r}
    res.explanation = ex.classify(ref[name], g, v if v is not None and v.shape == ref[name].shape else None,
                                  th, alts, p.threshold_tol)


def _allowed(res: NodeResult, p: Profile) -> bool:
    kind = res.explanation.kind
    if kind == "propagated":
        return True
    if kind == "near_threshold" and p.near_threshold:
        return res.explanation.details.get("fraction_trains", 1.0) <= p.max_flip_fraction
    return False


def _name_upstream(fg, nodes: dict[str, NodeResult]) -> None:
    """Say which upstream origin(s) a propagated divergence comes from."""
    for name, res in nodes.items():
        if res.explanation.kind != "propagated":
            continue
        found, stack, seen = [], list(fg.preds[name]), set()
        while stack:
            q = stack.pop()
            if q in seen:
                continue
            seen.add(q)
            r = nodes.get(q)
            if r is not None and r.compared and not r.agree and r.origin:
                found.append(q)
            else:
                stack.extend(fg.preds.get(q, []))
        if found:
            order = {n: i for i, n in enumerate(fg.order)}
            src = ", ".join(f"'{q}'" for q in sorted(found, key=order.get))
            res.explanation = ex.Explanation("propagated", f"inherits the divergence of upstream {src}",
                                             {"from": sorted(found, key=order.get)})


def pairwise(runs: dict[str, BackendResult]) -> dict:
    """Spike-event F1 over all common spiking nodes and prediction agreement, for every pair of runs."""
    names = list(runs)
    f1: dict[str, dict[str, float | None]] = {a: {} for a in names}
    pred: dict[str, dict[str, float | None]] = {a: {} for a in names}
    for a in names:
        for b in names:
            ra, rb = runs[a].recording, runs[b].recording
            tp = fp = fn = 0
            common = [n for n in ra.spiking_nodes if n in rb and rb[n].shape == ra[n].shape] if ra and rb else []
            for n in common:
                gb = _as_spikes(rb[n])
                if gb is None:
                    continue
                s = m.event_scores(ra[n], gb)
                tp, fp, fn = tp + s.tp, fp + s.fp, fn + s.fn
            f1[a][b] = (2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0) if common else None
            pa, pb = runs[a].predictions, runs[b].predictions
            pred[a][b] = agreement(pa, pb) if pa is not None and pb is not None else None
    return {"names": names, "spike_f1": f1, "prediction_agreement": pred}


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

    def __init__(self, graph, fg: FlatGraph, specs: list[BackendSpec], p: Profile, sem_kw: dict, tau: float,
                 conventions: Conventions, device) -> None:
        self.graph, self.fg, self.specs, self.p, self.sem_kw = graph, fg, specs, p, sem_kw
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

    def graph_for(self, spec: BackendSpec, prepared: dict):
        """The graph ``spec`` compiles: the prepared FlatGraph (one per distinct semantics), or the NIR graph."""
        kw = {k: v for k, v in self.sem_kw.items() if v is not None}
        if spec.runner is not None or spec.audit or isinstance(self.graph, FlatGraph):
            return self.graph, kw, True
        own = {k: v for k, v in spec.overrides.items() if k in ("dt", "reset", "integration")}
        if not own:
            return self.fg, {}, False
        kw.update(own)
        key = tuple(sorted(kw.items()))
        if key not in prepared:
            prepared[key] = prepare(self.graph, **kw)
        return prepared[key], {}, False

    def compile(self) -> dict:
        """``{name: (run, dtype) or RunOutcome}``: a batch runner per spec, or why it cannot run."""
        from snnbridge.validation.runners import compile_spec

        if self._compiled is None:
            prepared: dict = {}
            out = {YARDSTICK: (ReferenceExecutor(self.fg, dtype=torch.float64).run, torch.float64)}
            for spec in self.specs:
                graph, kw, own = self.graph_for(spec, prepared)
                out[spec.name] = compile_spec(spec, graph, self.p.dtype, kw, self.device, overrides=own)
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
            current = plan.fg.semantics.reset
            kw = {k: v for k, v in plan.sem_kw.items() if v is not None and k != "reset"}
            for mode in ("zero", "subtract", "none"):
                if mode != current:
                    variant_runs[f"reset='{mode}'"] = ReferenceExecutor(plan.graph, reset=mode, **kw)
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
        variants = _Fixed({k: joined[k] for k in variant_runs}) if variant_runs else None
        return joined[YARDSTICK], joined[self.name], variants


def _only(rec: Recording, names: set) -> Recording:
    return Recording({k: v for k, v in rec.outputs.items() if k in names},
                     {k: v for k, v in rec.membranes.items() if k in names}, dict(rec.node_types), rec.dt,
                     rec.backend, list(rec.order))


class _Fixed:
    """Reset-variant recordings already computed (the interface of :class:`_Variants`)."""

    def __init__(self, runs: dict[str, Recording]) -> None:
        self.runs = runs

    def get(self) -> dict[str, Recording]:
        return self.runs


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
            res.agreement = agreement(res.predictions, yard.predictions)
    ran = {YARDSTICK: yard, **{k: v for k, v in results.items() if v.status in ("pass", "fail")}}
    names = list(ran)
    f1 = {a: {b: pairs.f1(a, b) for b in names} for a in names}
    pred = {a: {b: (agreement(ran[a].predictions, ran[b].predictions)
                    if ran[a].predictions is not None and ran[b].predictions is not None else None) for b in names}
            for a in names}
    return yard, results, {"names": names, "spike_f1": f1, "prediction_agreement": pred}


def conform(graph, inputs, backends=("reference",), profile: str | Profile = "exact",
            labels: torch.Tensor | np.ndarray | None = None, dt: float | None = None, reset: str | None = None,
            integration: str | None = None, conventions: Conventions | None = None, batch_size: int | None = None,
            progress: bool = False, tau: float = 5.0, model: str | None = None, data: str | None = None,
            seed: int | None = None, original=None, device: str | torch.device | None = None,
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
        dt, reset, integration: override the graph's semantics for every run.
        conventions: cost counting conventions (:class:`~snnbridge.validation.costs.Conventions`).
        batch_size: samples per batch (``None``: all at once; smaller batches bound memory).
        tau: van Rossum kernel time constant in steps.
        model, data, seed: descriptions kept in the report.
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
    specs: list[BackendSpec] = parse_specs(backends)
    if original is not None:
        specs = [original_spec(original), *[s for s in specs if s.name != "original"]]
    check_devices(specs, device)
    if isinstance(graph, (str, Path)):
        model = model or Path(graph).name
        graph = read_graph(graph)
    if not isinstance(graph, (nir.NIRGraph, FlatGraph)):
        raise SnnBridgeError(f"graph must be a nir.NIRGraph, FlatGraph or .nir path, got {type(graph).__name__}")
    sem_kw = {"dt": dt, "reset": reset, "integration": integration}
    if isinstance(graph, FlatGraph) and any(v is not None for v in sem_kw.values()):
        raise SnnBridgeError("pass dt/reset/integration with a nir.NIRGraph, not a prepared FlatGraph")
    fg = graph if isinstance(graph, FlatGraph) else (prepared if prepared is not None else prepare(graph, **sem_kw))
    if len(fg.inputs) != 1:
        raise InputError(f"conformance checks need a graph with exactly one Input node, it has {len(fg.inputs)}")
    source = _as_source(fg, inputs)
    samples, steps = int(source.samples), int(source.steps)
    if labels is not None:
        labels = torch.as_tensor(np.asarray(labels)).long().reshape(-1)
        if len(labels) != samples:
            raise InputError(f"{len(labels)} labels for {samples} samples")
    if batch_size is not None and batch_size < 0:
        raise InputError(f"batch_size must be >= 0, got {batch_size}")
    conventions = conventions or Conventions()
    plan = _Plan(graph, fg, specs, p, sem_kw, tau, conventions, device)
    if scheduler is not None:
        from snnbridge.validation.distributed import run_sharded

        runs, pairs = run_sharded(plan, source, samples, batch_size, scheduler, shards, progress)
    else:
        runs, pairs = _stream(plan, source, 0, samples, batch_size, progress)
    yard, results, pw = _finish(plan, runs, pairs, source, batch_size, labels, steps, samples)
    structure_costs = None
    structure = fg.metadata.get("structure")
    if isinstance(structure, str):
        try:
            shape = fg.out_shapes[fg.inputs[0]]
            structure_costs = {
                "structure": structure, "input_shape": list(shape),
                "ann": static_costs(structure, shape, "ann", conventions=conventions).to_dict(),
                "snn": static_costs(structure, shape, "snn", conventions=conventions).to_dict(),
            }
        except (SnnBridgeError, ValueError):
            structure_costs = None
    first = batch_size if batch_size and batch_size > 0 else samples
    x0 = _as_input(fg, source.batch(0, min(samples, first)))
    meta = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "samples": samples, "steps": steps, "model": model, "data": data, "seed": seed,
        "environment": _environment(), "runtime_s": time.perf_counter() - t_start, "van_rossum_tau": tau,
    }
    return ConformanceResult(fg, p, yard, results, x0, labels, pw, graph_costs(fg, conventions),
                             structure_costs, meta)


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
