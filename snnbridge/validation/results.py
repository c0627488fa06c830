"""What a conformance check measured: per-node, per-backend and whole-check results, and the JSON report."""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from snnbridge.bridge.graph import FlatGraph
from snnbridge.bridge.recording import Recording
from snnbridge.validation import explain as ex
from snnbridge.validation import metrics as m
from snnbridge.validation.costs import Costs
from snnbridge.validation.profiles import Profile

SCHEMA_NAME = "snnbridge-conformance-report"
SCHEMA_VERSION = 1
YARDSTICK = "yardstick"


def _renamed_attribute(cls_name: str, old: str, new: str) -> property:
    """A deprecated property ``old`` that reads and writes the field ``new`` (with a ``DeprecationWarning``)."""
    message = f"{cls_name}.{old} is deprecated (removed in 0.3); use {cls_name}.{new}"

    def fget(self):
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return getattr(self, new)

    def fset(self, value) -> None:
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        setattr(self, new, value)

    return property(fget, fset, doc=f"Deprecated alias of :attr:`{new}`.")


def _accept_renamed_keyword(cls: type, old: str, new: str) -> type:
    """Let ``cls(..., old=x)`` mean ``cls(..., new=x)`` (with a ``DeprecationWarning``)."""
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs) -> None:
        if old in kwargs:
            warnings.warn(f"{cls.__name__}({old}=...) is deprecated (removed in 0.3); use {new}=...",
                          DeprecationWarning, stacklevel=2)
            kwargs[new] = kwargs.pop(old)
        init(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[method-assign]
    return cls


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
    match_score: float = 1.0
    """How closely the node matches the yardstick, 1.0 when identical: spike nodes, the spike-event F1; analog
    nodes, the fraction of values within tolerance (``"agreement"`` in ``report.json``)."""
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

    agreement = _renamed_attribute("NodeResult", "agreement", "match_score")

    def to_dict(self) -> dict:
        """This node's entry of ``report.json`` (``match_score`` under its schema key ``agreement``)."""
        return {
            "name": self.name, "type": self.type, "spiking": self.spiking, "shape": list(self.shape),
            "compared": self.compared, "agree": self.agree, "agreement": self.match_score,
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
    prediction_agreement: float | None = None
    """The fraction of samples for which this backend predicts the yardstick's class."""
    costs: Costs | None = None
    recording: Recording | None = None
    device: str = "cpu"
    """Where the backend ran (recordings come back to the CPU for comparison)."""

    agreement = _renamed_attribute("BackendResult", "agreement", "prediction_agreement")

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
            "accuracy": self.accuracy, "prediction_agreement": self.prediction_agreement,
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
        from snnbridge.validation.report.notebook import backend_html

        return backend_html(self)


_accept_renamed_keyword(NodeResult, "agreement", "match_score")
_accept_renamed_keyword(BackendResult, "agreement", "prediction_agreement")


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
        from snnbridge.validation.report.notebook import conformance_html

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
