"""Conformance at dataset scale: inputs by batch, and per-node metrics accumulated exactly, batch by batch.

A check streams its samples: every run (the yardstick and each backend) sees one batch ``[T, b, ...]`` at a
time, the batch is compared at once, and only running sums stay — so memory does not grow with the number of
samples, and the result is *identical* whatever the batch size (or the shards a cluster ran, merged in order):

* integer counts (events, spike counts, trains, mismatching values) are summed exactly;
* float means (van Rossum distance, cosine similarity) are sums of exactly the same per-train / per-sample
  values, accumulated without rounding (:class:`ExactSum`) and rounded once at the end;
* maxima, minima and the first divergence (earliest step, then sample, then neuron) are order-free;
* an analog node's tolerance depends on ``max |ref|`` over *all* samples, so every value beyond the tolerance
  known so far is kept as a candidate and judged at the end (nothing is kept while a node agrees).

:class:`SampleSource` is what a check reads its samples from: :class:`TensorSource` wraps a tensor already in
memory, :class:`~snnbridge.validation.sources.EncodedImages` rate-codes images batch by batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from snnbridge.bridge.inputs import is_binary
from snnbridge.bridge.recording import Recording
from snnbridge.validation import explain as ex
from snnbridge.validation import metrics as m

# --------------------------------------------------------------------------- sources


@runtime_checkable
class SampleSource(Protocol):
    """Samples a check reads batch by batch: ``batch(start, stop)`` is ``[T, stop - start, *sample_shape]``."""

    samples: int
    steps: int

    def batch(self, start: int, stop: int) -> torch.Tensor:
        """Samples ``start .. stop - 1`` as ``[T, stop - start, *sample_shape]``, the same whatever the split."""


@dataclass
class TensorSource:
    """A tensor already in memory, ``x [T, B, ...]``, served in batches (views, no copies)."""

    x: torch.Tensor

    @property
    def samples(self) -> int:
        return int(self.x.shape[1])

    @property
    def steps(self) -> int:
        return int(self.x.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[2:])

    def batch(self, start: int, stop: int) -> torch.Tensor:
        return self.x[:, start:stop]


def batches(n: int, size: int | None) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``0 .. n - 1`` in batches of ``size`` (``None``/0: one batch)."""
    size = n if not size or size <= 0 else size
    return [(i, min(n, i + size)) for i in range(0, n, size)]


# --------------------------------------------------------------------------- exact sums


class ExactSum:
    """A float sum without rounding error (Shewchuk's partials, as :func:`math.fsum`), mergeable.

    The exact sum does not depend on the order of the terms, so :meth:`value` (the sum rounded once) is the same
    however the terms were split into batches.
    """

    __slots__ = ("partials",)

    def __init__(self) -> None:
        self.partials: list[float] = []

    def add(self, x: float) -> None:
        partials = self.partials
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]

    def add_many(self, values) -> None:
        for v in values:
            self.add(float(v))

    def merge(self, other: ExactSum) -> None:
        self.add_many(other.partials)

    def value(self) -> float:
        return math.fsum(self.partials)


# --------------------------------------------------------------------------- one node


def as_spikes(t: torch.Tensor) -> torch.Tensor | None:
    """A 0/1-valued tensor as bool, else ``None``."""
    if t.dtype == torch.bool:
        return t
    return t > 0.5 if is_binary(t) else None


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], x.shape[1], -1)


@dataclass
class NodeAcc:
    """One node of one run against the yardstick, accumulated over batches (see the module docstring).

    ``structural`` holds a mismatch that is not a matter of values (``"shape"``, ``"binary"``); then the node's
    numbers are not reported, as in an unstreamed check.
    """

    name: str
    spiking: bool
    shape: tuple[int, ...]
    compared: bool = True
    structural: tuple | None = None
    # spikes
    tp: int = 0
    fp: int = 0
    fn: int = 0
    count_abs_sum: int = 0
    count_abs_max: int = 0
    total_ref: int = 0
    total_got: int = 0
    trains_differing: int = 0
    trains: int = 0
    vr_sum: ExactSum = field(default_factory=ExactSum)
    vr_max: float = 0.0
    cos_sum: ExactSum = field(default_factory=ExactSum)
    cos_ones: int = 0
    cos_count: int = 0
    first: tuple | None = None
    """``(step, sample, neuron, index, ref value, got value)`` of the earliest mismatch so far."""
    # analog values
    numel: int = 0
    max_abs: float | None = None
    ref_absmax: float = 0.0
    candidates: list = field(default_factory=list)
    """Per batch ``(steps, samples, neurons, |Δ|, ref, got)`` tensors of values beyond the tolerance known then."""
    # membranes
    membrane_max_abs: float | None = None
    tau: float = 5.0
    """van Rossum kernel time constant in steps."""

    def update(self, r: torch.Tensor, g: torch.Tensor | None, rmem: torch.Tensor | None, gmem: torch.Tensor | None,
               offset: int, atol_of) -> None:
        """Add one batch: reference ``r`` and candidate ``g`` ``[T, b, ...]`` (``None``: not recorded), their
        membranes, the batch's first sample index ``offset``, and ``atol_of(max |ref|)`` the analog tolerance."""
        if g is None:
            self.compared = False
            return
        if self.structural is not None:
            return
        if tuple(g.shape) != tuple(r.shape):
            self.structural = ("shape", tuple(g.shape), tuple(r.shape))
            return
        if self.spiking:
            gs = as_spikes(g)
            if gs is None:
                self.structural = ("binary",)
                return
            self._spikes(r, gs, tau=self.tau, offset=offset)
        else:
            self._analog(r, g, offset, atol_of)
        if rmem is not None and gmem is not None and rmem.shape == gmem.shape:
            d = m.max_abs_difference(rmem, gmem)
            self.membrane_max_abs = d if self.membrane_max_abs is None else max(self.membrane_max_abs, d)

    def _spikes(self, r: torch.Tensor, g: torch.Tensor, tau: float, offset: int) -> None:
        rf, gf = _flat(r.bool()), _flat(g)
        n_ref = int(torch.count_nonzero(rf))
        same = torch.equal(rf, gf)  # the common case: one comparison instead of every count
        n_got = n_ref if same else int(torch.count_nonzero(gf))
        tp = n_ref if same else int(torch.count_nonzero(rf & gf))
        self.tp += tp
        self.fp += n_got - tp
        self.fn += n_ref - tp
        self.total_ref += n_ref
        self.total_got += n_got
        a = rf.sum(0, dtype=torch.int64)  # [b, N] spike counts
        c = a if same else gf.sum(0, dtype=torch.int64)
        self.trains += int(a.numel())
        if not same:
            d = c - a
            if d.numel():
                self.count_abs_sum += int(d.abs().sum())
                self.count_abs_max = max(self.count_abs_max, int(d.abs().max()))
            mismatch = rf != gf
            differ = mismatch.any(0)  # [b, N]
            self.trains_differing += int(differ.sum())
            # van Rossum distance of the differing trains (the others are 0)
            sel = differ.nonzero(as_tuple=True)
            diff = gf[:, sel[0], sel[1]].double() - rf[:, sel[0], sel[1]].double()  # [T, K]
            decay = math.exp(-1.0 / tau)
            acc = torch.zeros(diff.shape[1:], dtype=torch.float64)
            dk = torch.zeros_like(acc)
            for t in range(diff.shape[0]):
                dk = decay * dk + diff[t]
                acc += dk * dk
            dist = torch.sqrt(acc / tau)
            self.vr_sum.add_many(dist.tolist())
            self.vr_max = max(self.vr_max, float(dist.max()))
            idx = int(torch.nonzero(mismatch.reshape(-1), as_tuple=False)[0])
            T, B, N = mismatch.shape
            t, rem = divmod(idx, B * N)
            b, n = divmod(rem, N)
            self._first(t, offset + b, n, float(rf[t, b, n]), float(gf[t, b, n]))
        ad, cd = a.double(), c.double()
        na, nc = ad.norm(dim=1), cd.norm(dim=1)
        dot = (ad * cd).sum(1)
        both_zero = (na == 0) & (nc == 0)
        cos = torch.where(both_zero, torch.ones_like(dot), dot / (na * nc).clamp_min(1e-300))
        ones = cos == 1.0
        self.cos_ones += int(ones.sum())
        self.cos_sum.add_many(cos[~ones].tolist())
        self.cos_count += int(cos.numel())

    def _analog(self, r: torch.Tensor, g: torch.Tensor, offset: int, atol_of) -> None:
        if not r.numel():
            return
        rd, gd = r.double(), g.double()
        diff = (gd - rd).abs()
        mx = float(diff.max())
        self.max_abs = mx if self.max_abs is None else max(self.max_abs, mx)
        self.ref_absmax = max(self.ref_absmax, float(rd.abs().max()))
        self.numel += int(r.numel())
        low = atol_of(self.ref_absmax)  # the final tolerance is at least this
        over = _flat(diff) > low
        if bool(over.any()):
            t, b, n = over.nonzero(as_tuple=True)
            self.candidates.append((t, b + offset, n, _flat(diff)[t, b, n], _flat(r)[t, b, n].double(),
                                    _flat(g)[t, b, n].double()))

    def _first(self, t: int, b: int, n: int, rv: float, gv: float) -> None:
        if self.first is None or (t, b, n) < self.first[:3]:
            self.first = (t, b, n, rv, gv)

    def merge(self, o: NodeAcc) -> None:
        """Add the accumulator of other samples (any order gives the same result)."""
        self.compared = self.compared and o.compared
        if self.structural is None and o.structural is not None:
            self.structural = o.structural
        for k in ("tp", "fp", "fn", "count_abs_sum", "total_ref", "total_got", "trains_differing", "trains",
                  "cos_ones", "cos_count", "numel"):
            setattr(self, k, getattr(self, k) + getattr(o, k))
        self.count_abs_max = max(self.count_abs_max, o.count_abs_max)
        self.vr_sum.merge(o.vr_sum)
        self.vr_max = max(self.vr_max, o.vr_max)
        self.cos_sum.merge(o.cos_sum)
        if o.first is not None:
            self._first(*o.first)
        if o.max_abs is not None:
            self.max_abs = o.max_abs if self.max_abs is None else max(self.max_abs, o.max_abs)
        self.ref_absmax = max(self.ref_absmax, o.ref_absmax)
        self.candidates.extend(o.candidates)
        if o.membrane_max_abs is not None:
            self.membrane_max_abs = (o.membrane_max_abs if self.membrane_max_abs is None
                                     else max(self.membrane_max_abs, o.membrane_max_abs))

    def result(self, fg, steps: int, samples: int, atol_of):
        """The :class:`~snnbridge.validation.conformance.NodeResult` of all samples (explanation still to come)."""
        from snnbridge.validation.results import NodeResult

        res = NodeResult(self.name, fg.type_of(self.name), self.spiking, self.shape)
        if not self.compared:
            res.compared = False
            res.explanation = ex.Explanation("agree", "not recorded by this backend")
            return res
        if self.structural is not None:
            res.agree, res.match_score, res.allowed = False, 0.0, False
            if self.structural[0] == "shape":
                g, r = list(self.structural[1]), list(self.structural[2])
                g[1] = r[1] = samples
                res.explanation = ex.Explanation("unexplained", f"shape {g} differs from the reference {r} "
                                                                "([T, B, ...])")
            else:
                res.explanation = ex.Explanation("unexplained", "backend emits non-binary values where the "
                                                                "reference emits spikes")
            return res
        if self.spiking:
            tp, fp, fn = self.tp, self.fp, self.fn
            res.events = m.EventScores(tp, fp, fn, tp / (tp + fp) if tp + fp else 1.0,
                                       tp / (tp + fn) if tp + fn else 1.0,
                                       2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0)
            res.counts = m.CountDifference(self.count_abs_sum / self.trains if self.trains else 0.0,
                                           self.count_abs_max if self.trains else 0, self.total_ref, self.total_got,
                                           self.trains_differing, self.trains)
            if self.trains:
                res.van_rossum_mean, res.van_rossum_max = self.vr_sum.value() / self.trains, self.vr_max
            else:
                res.van_rossum_mean, res.van_rossum_max = 0.0, 0.0
            if self.cos_count:
                total = ExactSum()
                total.merge(self.cos_sum)
                total.add(float(self.cos_ones))
                res.cosine = total.value() / self.cos_count
            else:
                res.cosine = 1.0
            res.first_divergence = self._divergence(self.first)
            res.agree = res.first_divergence is None
            res.match_score = res.events.f1
        else:
            atol = atol_of(self.ref_absmax)
            res.max_abs = self.max_abs if self.max_abs is not None else 0.0
            out, first = 0, None
            for t, b, n, d, rv, gv in self.candidates:
                over = d > atol
                k = int(over.sum())
                if not k:
                    continue
                out += k
                tt, bb, nn = t[over], b[over], n[over]
                key = tt * (samples * max(1, _numel(self.shape))) + bb * max(1, _numel(self.shape)) + nn
                i = int(key.argmin())
                cand = (int(tt[i]), int(bb[i]), int(nn[i]), float(rv[over][i]), float(gv[over][i]))
                if first is None or cand[:3] < first[:3]:
                    first = cand
            res.first_divergence = self._divergence(first)
            res.agree = res.first_divergence is None
            res.match_score = 1.0 - out / self.numel if self.numel else 1.0
        res.membrane_max_abs = self.membrane_max_abs
        return res

    def _divergence(self, first: tuple | None) -> m.Divergence | None:
        if first is None:
            return None
        t, b, n, rv, gv = first
        shape = self.shape or (1,)
        multi = tuple(int(i) for i in np.unravel_index(n, shape)) if self.shape else ()
        return m.Divergence(t, b, n, multi, rv, gv)


def _numel(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape)) if shape else 1


# --------------------------------------------------------------------------- costs


@dataclass
class CostAcc:
    """:func:`~snnbridge.validation.costs.recorded_costs` summed over batches (exact: spike counts are integers)."""

    spike_adds: dict[str, float] = field(default_factory=dict)
    analog: set = field(default_factory=set)
    missing: bool = False
    spikes_sum: float = 0.0
    spikes_known: bool = True
    has_sources: bool = False
    samples: int = 0
    failed: bool = False

    def update(self, fg, rec: Recording, conventions) -> None:
        from snnbridge.validation import costs as cm

        if self.failed:
            return
        try:
            c = conventions
            T, B = rec.steps, rec.batch_size
            for name in fg.order:
                if name in fg.inputs or not cm._counted(fg, name, c):
                    continue
                preds = fg.preds[name]
                if not all(p in rec for p in preds):
                    self.missing = True
                    continue
                if all(rec[p].dtype == torch.bool for p in preds):
                    fo = cm.fan_out(fg, name, c.padded_taps).double()
                    tot = 0.0
                    for p in preds:  # spikes x fan-out: integers, summed exactly as counts per neuron first
                        count = rec[p].reshape((T, B) + tuple(fo.shape)).sum((0, 1), dtype=torch.int64)
                        tot += float((count.double() * fo).sum())
                    self.spike_adds[name] = self.spike_adds.get(name, 0.0) + tot
                else:
                    self.analog.add(name)
            srcs = cm.spike_sources(fg, rec, c.input_layer)
            if not all(n in rec for n in srcs):
                self.spikes_known = False
            elif srcs:
                self.has_sources = True
                per_step = torch.zeros((T, B), dtype=torch.int64)
                for n in srcs:
                    t = rec[n].reshape(T, B, -1)
                    per_step += t.sum(-1, dtype=torch.int64) if t.dtype == torch.bool else t.double().sum(-1).long()
                self.spikes_sum += float(per_step.max(0).values.sum())
            self.samples += B
        except Exception:  # noqa: BLE001 - costs are best effort for odd recordings (e.g. renamed nodes)
            self.failed = True

    def merge(self, o: CostAcc) -> None:
        self.failed = self.failed or o.failed
        for k, v in o.spike_adds.items():
            self.spike_adds[k] = self.spike_adds.get(k, 0.0) + v
        self.analog |= o.analog
        self.missing = self.missing or o.missing
        self.spikes_sum += o.spikes_sum
        self.spikes_known = self.spikes_known and o.spikes_known
        self.has_sources = self.has_sources or o.has_sources
        self.samples += o.samples

    def result(self, fg, steps: int, conventions):
        """The :class:`~snnbridge.validation.costs.Costs` of all samples, or ``None`` when it could not be counted."""
        from snnbridge.validation import costs as cm

        if self.failed or not self.samples:
            return None
        c, T, B = conventions, steps, self.samples
        layers, known = [], True
        for name in fg.order:
            kind = fg.type_of(name)
            if name in fg.inputs:
                if c.input_layer:
                    layers.append(cm.LayerCost(name, "Input", 0, int(np.prod(fg.out_shapes[name]))))
                continue
            w = cm._weight_count(fg.nodes[name], c)
            values = cm._state_count(fg, name)
            adds: float | None = 0.0
            muls: float | None = 0.0
            if cm._counted(fg, name, c):
                preds = fg.preds[name]
                if name in self.spike_adds and name not in self.analog:
                    adds = self.spike_adds[name] / B
                elif name in self.analog and name not in self.spike_adds:
                    macs = cm.nominal_macs(fg, name, c.padded_taps) * T * len(preds)
                    adds, muls = float(macs), float(macs)
                    if kind in cm.POOL_TYPES:
                        n_out = int(np.prod(fg.out_shapes[name]))
                        muls = float(n_out * T * len(preds)) if kind == "AvgPool2d" else 0.0
                elif name in self.analog:  # spike-valued in some batches, analog in others: count as analog
                    return None
                else:
                    adds = muls = None
                    known = False
                if adds is not None:
                    adds += T * cm._bias_outputs(fg, name, c)
            if w or values or adds or muls or adds is None:
                layers.append(cm.LayerCost(name, kind, w, values, adds, muls))
        spikes = None if not self.spikes_known else (self.spikes_sum / B if self.has_sources else 0.0)
        W = sum(x.weights for x in layers)
        P = sum(x.values for x in layers)
        adds_total = float(sum(x.adds for x in layers)) if known else None  # type: ignore[misc]
        muls_total = float(sum(x.muls for x in layers)) if known else None  # type: ignore[misc]
        return cm.Costs("snn", W, P, spikes, cm.memory_bits("snn", W, P, spikes, c), adds_total, muls_total, c,
                        layers)


# --------------------------------------------------------------------------- one run


@dataclass
class RunAcc:
    """Everything one run (the yardstick or a backend) contributes, over the batches it ran."""

    name: str
    status: str = "ok"
    reason: str = ""
    runtime_s: float = 0.0
    nodes: dict[str, NodeAcc] = field(default_factory=dict)
    predictions: list = field(default_factory=list)
    predictions_none: bool = False
    costs: CostAcc = field(default_factory=CostAcc)
    recording: Recording | None = None
    """The first batch's recording (for figures)."""

    def fail(self, status: str, reason: str) -> None:
        if self.status == "ok":
            self.status, self.reason = status, reason

    def merge(self, o: RunAcc) -> None:
        """Add the samples after this run's (``o`` covers later samples)."""
        if o.status != "ok":
            self.fail(o.status, o.reason)
        self.runtime_s += o.runtime_s
        for k, acc in o.nodes.items():
            if k in self.nodes:
                self.nodes[k].merge(acc)
            else:
                self.nodes[k] = acc
        self.predictions.extend(o.predictions)
        self.predictions_none = self.predictions_none or o.predictions_none
        self.costs.merge(o.costs)
        if self.recording is None:
            self.recording = o.recording


def predictions_of(fg, rec: Recording) -> torch.Tensor | None:
    """Rate-decoded classes ``[b]`` of a batch's recording (the Output node, else the first output recorded)."""
    from snnbridge.validation.accuracy import rate_predictions

    try:
        return rate_predictions(rec.output())
    except (ValueError, KeyError):
        out = [n for n in fg.outputs if n in rec]
        return rate_predictions(rec[out[0]]) if out else None


@dataclass
class PairAcc:
    """Spike-event counts between every two runs over their common spiking nodes."""

    counts: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    """``(a, b) -> [tp, fp, fn, common]``."""

    def update(self, recs: dict[str, Recording]) -> None:
        names = list(recs)
        counts: dict[tuple[str, str], int] = {}
        for i, a in enumerate(names):
            ra = recs[a]
            for b in names[i:]:
                rb = recs[b]
                cab = self.counts.setdefault((a, b), [0, 0, 0, 0])
                cba = self.counts.setdefault((b, a), [0, 0, 0, 0])
                common_ab = [n for n in ra.spiking_nodes if n in rb and rb[n].shape == ra[n].shape]
                common_ba = [n for n in rb.spiking_nodes if n in ra and ra[n].shape == rb[n].shape]
                cab[3] = max(cab[3], int(bool(common_ab)))
                cba[3] = max(cba[3], int(bool(common_ba)))
                for n in common_ab:
                    gb = as_spikes(rb[n])
                    if gb is None:
                        continue
                    r = ra[n]
                    nr = counts.setdefault((a, n), int(torch.count_nonzero(r)))
                    ng = counts.setdefault((b, n), int(torch.count_nonzero(gb)))
                    tp = nr if a == b or torch.equal(r, gb) else int(torch.count_nonzero(r & gb))
                    cab[0] += tp
                    cab[1] += ng - tp
                    cab[2] += nr - tp
                    if a != b and n in common_ba and as_spikes(r) is not None:
                        cba[0] += tp
                        cba[1] += nr - tp
                        cba[2] += ng - tp
                if a != b:
                    for n in common_ba:
                        if n in common_ab and as_spikes(rb[n]) is not None:
                            continue
                        ga = as_spikes(ra[n])
                        if ga is None:
                            continue
                        r = rb[n]
                        tp = int(torch.count_nonzero(r & ga))
                        cba[0] += tp
                        cba[1] += int(torch.count_nonzero(ga)) - tp
                        cba[2] += int(torch.count_nonzero(r)) - tp

    def merge(self, o: PairAcc) -> None:
        for k, v in o.counts.items():
            c = self.counts.setdefault(k, [0, 0, 0, 0])
            c[0] += v[0]
            c[1] += v[1]
            c[2] += v[2]
            c[3] = max(c[3], v[3])

    def f1(self, a: str, b: str) -> float | None:
        c = self.counts.get((a, b))
        if c is None or not c[3]:
            return None
        tp, fp, fn, _ = c
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
