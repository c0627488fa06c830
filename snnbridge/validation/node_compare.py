"""Comparing one run with the yardstick node by node: metrics, where divergence starts, and why.

:func:`compare` takes whole recordings; :func:`judge` localises and explains divergences of per-node results
however they were computed (a streamed check accumulates them batch by batch, see
:mod:`~snnbridge.validation.stream`).
"""

from __future__ import annotations

import torch

from snnbridge.bridge.recording import Recording
from snnbridge.validation import explain as ex
from snnbridge.validation import metrics as m
from snnbridge.validation.accuracy import agreement
from snnbridge.validation.profiles import Profile, get_profile
from snnbridge.validation.results import BackendResult, NodeResult
from snnbridge.validation.stream import as_spikes

# --------------------------------------------------------------------------- comparing


_as_spikes = as_spikes  # the older private name (re-exported by conformance)


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


class ResetVariants:
    """Whole-graph reference runs under the other reset modes, by label (``reset='subtract'``, …): the hypotheses
    for nodes whose inputs were not recorded (:func:`~snnbridge.validation.explain.reset_variant_runs` computes
    them; the local per-node ones are :func:`~snnbridge.validation.explain.reset_variants`)."""

    def __init__(self, runs: dict[str, Recording]) -> None:
        self.runs = runs

    def get(self) -> dict[str, Recording]:
        return self.runs


_Variants = ResetVariants  # the older private name


def compare_nodes(fg, ref: Recording, rec: Recording, profile: str | Profile = "exact", tau: float = 5.0,
                  variants: ResetVariants | None = None) -> tuple[dict[str, NodeResult], str | None, list[str]]:
    """Compare recording ``rec`` with the yardstick ``ref`` on every node of ``fg``.

    Returns ``(nodes, first_divergent_node, failures)``: per-node results in evaluation order, the
    earliest node (topological order) where divergence starts, and one line per node the profile rejects.
    """
    p = get_profile(profile)
    nodes = {n: _compare_node(fg, n, ref, rec, p, tau) for n in fg.order if n in ref}
    origin, failures = judge(fg, nodes, p, lambda names: (ref, rec, variants))
    return nodes, origin, failures


def compare(*args, **kwargs) -> tuple[dict[str, NodeResult], str | None, list[str]]:
    """Deprecated alias of :func:`compare_nodes` (removed in 0.3)."""
    import warnings

    warnings.warn("snnbridge.validation.node_compare.compare is deprecated; use compare_nodes", DeprecationWarning,
                  stacklevel=2)
    return compare_nodes(*args, **kwargs)


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
             variants: ResetVariants | None) -> None:
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
