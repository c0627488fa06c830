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
from snnbridge.validation.accuracy import accuracy, agreement, rate_predictions
from snnbridge.validation.costs import Conventions, Costs, graph_costs, recorded_costs, static_costs
from snnbridge.validation.runners import (
    BackendSpec,
    RunOutcome,
    check_devices,
    original_spec,
    parse_specs,
    run_spec,
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
    r = ref[name]
    spiking = r.dtype == torch.bool
    res = NodeResult(name, fg.type_of(name), spiking, tuple(r.shape[2:]))
    if name not in rec:
        res.compared = False
        res.explanation = ex.Explanation("agree", "not recorded by this backend")
        return res
    g = rec[name]
    if tuple(g.shape) != tuple(r.shape):
        res.agree, res.agreement, res.allowed = False, 0.0, False
        res.explanation = ex.Explanation("unexplained", f"shape {list(g.shape)} differs from the reference "
                                                        f"{list(r.shape)} ([T, B, ...])")
        return res
    if spiking:
        gs = _as_spikes(g)
        if gs is None:
            res.agree, res.agreement, res.allowed = False, 0.0, False
            res.explanation = ex.Explanation("unexplained", "backend emits non-binary values where the reference "
                                                            "emits spikes")
            return res
        res.events = m.event_scores(r, gs)
        res.counts = m.count_difference(r, gs)
        res.van_rossum_mean, res.van_rossum_max = m.van_rossum(r, gs, tau)
        res.cosine = m.cosine_activity(r, gs)
        res.first_divergence = m.first_divergence(r, gs)
        res.agree = res.first_divergence is None
        res.agreement = res.events.f1
    else:
        atol = _atol(r, p)
        mask = m.mismatch_mask(r, g, atol)
        res.max_abs = m.max_abs_difference(r, g)
        res.first_divergence = m.first_divergence(r, g, atol)
        res.agree = res.first_divergence is None
        res.agreement = 1.0 - float(mask.double().mean()) if mask.numel() else 1.0
    if name in ref.membranes and name in rec.membranes and ref.membranes[name].shape == rec.membranes[name].shape:
        res.membrane_max_abs = m.max_abs_difference(ref.membranes[name], rec.membranes[name])
    return res


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
        _explain(fg, name, res, ref, rec, p, variants)
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
    return nodes, origin, failures


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


def _run_outputs(fg, res: BackendResult, rec: Recording, labels, conventions: Conventions) -> None:
    res.recording = rec
    try:
        res.predictions = rate_predictions(rec.output())
    except (ValueError, KeyError):
        out = [n for n in fg.outputs if n in rec]
        res.predictions = rate_predictions(rec[out[0]]) if out else None
    if labels is not None and res.predictions is not None and len(res.predictions) == len(labels):
        res.accuracy = accuracy(res.predictions, labels)
    try:
        res.costs = recorded_costs(fg, rec, conventions)
    except Exception:  # noqa: BLE001 - costs are best effort for odd recordings (e.g. renamed nodes)
        res.costs = None


def conform(graph, inputs, backends=("reference",), profile: str | Profile = "exact",
            labels: torch.Tensor | np.ndarray | None = None, dt: float | None = None, reset: str | None = None,
            integration: str | None = None, conventions: Conventions | None = None, batch_size: int | None = None,
            progress: bool = False, tau: float = 5.0, model: str | None = None, data: str | None = None,
            seed: int | None = None, original=None, device: str | torch.device | None = None) -> ConformanceResult:
    """Run ``inputs`` ``[T, B, *input_shape]`` through ``backends`` and compare each with the float64 reference.

    Args:
        graph: a ``nir.NIRGraph``, a ``.nir`` path, or a prepared ``FlatGraph``.
        inputs: spikes or analog values ``[T, B, ...]`` (tensor or array).
        backends: names/specs (``"norse"``, ``"reference@reset=subtract"``, :class:`BackendSpec`) or a
            comma-separated string.
        profile: ``"exact"`` or ``"float32"`` (or a :class:`Profile`).
        labels: ``[B]`` class labels for top-1 accuracy (rate decoding, Eq. 7).
        dt, reset, integration: override the graph's semantics for every run.
        conventions: cost counting conventions (:class:`~snnbridge.validation.costs.Conventions`).
        batch_size: samples per backend call (``None``: all at once; smaller batches bound memory).
        tau: van Rossum kernel time constant in steps.
        model, data, seed: descriptions kept in the report.
        original: the user's own native module (snnTorch or Norse) that the graph was imported from
            (``backends.get(lib).from_native``); it runs natively as a row of its own, named ``original``,
            compared node by node with the reference like any backend.
        device: where the backends run (``"cpu"``, ``"cuda"``, ``"cuda:1"``; a spec's ``@device=`` wins): the
            reference and torch backends run there, each batch moves to it and its recording comes back to the
            CPU for comparison; the yardstick always runs on the CPU in float64.  A backend that cannot run on
            a GPU (Brian2, the upstream audits) or a machine without CUDA is one :class:`SnnBridgeError`.
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
    fg = graph if isinstance(graph, FlatGraph) else prepare(graph, **sem_kw)
    if isinstance(graph, FlatGraph) and any(v is not None for v in sem_kw.values()):
        raise SnnBridgeError("pass dt/reset/integration with a nir.NIRGraph, not a prepared FlatGraph")
    if len(fg.inputs) != 1:
        raise InputError(f"conformance checks need a graph with exactly one Input node, it has {len(fg.inputs)}")
    x = as_input_tensors(fg, inputs, torch.float64)[fg.inputs[0]]
    if labels is not None:
        labels = torch.as_tensor(np.asarray(labels)).long().reshape(-1)
        if len(labels) != x.shape[1]:
            raise InputError(f"{len(labels)} labels for {x.shape[1]} samples")
    conventions = conventions or Conventions()
    run_graph = graph

    yard_spec = BackendSpec(YARDSTICK, runner=lambda g, xb, dtype, **kw: ReferenceExecutor(fg, dtype=dtype).run(xb))
    y_out: RunOutcome = run_spec(yard_spec, fg, x, torch.float64, {}, batch_size, progress)
    if y_out.status != "ok":
        raise SnnBridgeError(f"the reference run failed: {y_out.reason}")
    ref = y_out.recording
    yard = BackendResult(YARDSTICK, "reference", False, "pass", dtype="float64", runtime_s=y_out.runtime_s)
    _run_outputs(fg, yard, ref, labels, conventions)
    yard.nodes, _, _ = compare(fg, ref, ref, p, tau)

    variants = None
    if isinstance(graph, nir.NIRGraph):
        variants = _Variants(graph, x, {k: v for k, v in sem_kw.items() if v is not None})
    results: dict[str, BackendResult] = {}
    from snnbridge.progress import progress_bar

    bar = progress_bar(specs, desc="backends", unit="backend", progress=progress, leave=False)
    for spec in bar:
        bar.set_postfix_str(spec.name)
        out = run_spec(spec, run_graph, x, p.dtype, sem_kw, batch_size, progress, device)
        res = BackendResult(spec.name, spec.backend or (spec.native and f"{spec.native}-native"), spec.audit, "pass",
                            out.reason,
                            str(out.dtype).replace("torch.", ""), dict(spec.overrides), out.runtime_s,
                            device=spec.device(device))
        if out.status != "ok":
            res.status = out.status
            res.failures = [out.reason]
            results[spec.name] = res
            continue
        rec = out.recording
        if rec.steps != ref.steps or rec.batch_size != ref.batch_size:
            res.status, res.reason = "error", (f"recording is [T={rec.steps}, B={rec.batch_size}], expected "
                                               f"[T={ref.steps}, B={ref.batch_size}]")
            res.failures = [res.reason]
            results[spec.name] = res
            continue
        res.nodes, res.first_divergent_node, res.failures = compare(fg, ref, rec, p, tau, variants)
        if not any(n.compared for n in res.nodes.values()):
            res.failures.append("no node in common with the reference recording")
        res.status = "fail" if res.failures else "pass"
        _run_outputs(fg, res, rec, labels, conventions)
        if res.predictions is not None and yard.predictions is not None:
            res.agreement = agreement(res.predictions, yard.predictions)
        results[spec.name] = res

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
    runs = {YARDSTICK: yard, **{k: v for k, v in results.items() if v.recording is not None}}
    meta = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "samples": int(x.shape[1]), "steps": int(x.shape[0]), "model": model, "data": data, "seed": seed,
        "environment": _environment(), "runtime_s": time.perf_counter() - t_start, "van_rossum_tau": tau,
    }
    return ConformanceResult(fg, p, yard, results, x, labels, pairwise(runs), graph_costs(fg, conventions),
                             structure_costs, meta)
