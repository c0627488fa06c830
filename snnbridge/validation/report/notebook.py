"""The conformance results and costs as Jupyter fragments: the report's verdict cards, per-node match, divergence
and cost tables rendered by the report's own templates (:mod:`snnbridge.validation.report.render`), scoped by
:mod:`snnbridge.html_fragment`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from snnbridge.html_fragment import escape as _e
from snnbridge.html_fragment import wrap
from snnbridge.validation.report.render import section, si

if TYPE_CHECKING:
    from snnbridge.validation.costs import Costs
    from snnbridge.validation.results import BackendResult, ConformanceResult


def _num(x: float | int | None, digits: int = 3) -> str:
    return si(x, digits)


def conformance_html(result: ConformanceResult) -> str:
    """Verdict, the report's summary cards, per-node agreement, where divergence starts, accuracy and cost."""
    doc = result.to_dict()
    model = doc["model"]
    sem = model["semantics"]
    title = model.get("name") or model.get("structure") or "NIR graph"
    passed = doc["passed"]
    head = (f"<div class='head'><div class='verdict {'pass' if passed else 'fail'}'>{'PASS' if passed else 'FAIL'}"
            f"</div><div><b>{_e(title)}</b><div class='sub' style='color:#6b7280'>profile {_e(doc['profile']['name'])}"
            f" · {doc['data']['samples']} samples × T = {doc['data']['steps']} · dt = {sem['dt']:g} s · reset = "
            f"{_e(sem['reset'])} · integration = {_e(sem['integration'])}</div></div></div>")
    parts = [head, section("summary", doc), section("agreement", doc), section("divergence", doc),
             section("cost", doc, {})]
    return wrap("".join(parts))


def backend_html(b: BackendResult) -> str:
    """One backend's card (verdict, accuracy, first divergence)."""
    d = b.to_dict()
    summary = section("summary", {"backends": [d], "profile": {"name": "exact"},
                                   "reference": {"accuracy": None}})
    return wrap(summary)


def costs_html(c: Costs) -> str:
    """The paper's Eq. 8-9 numbers of one model, and its layers."""
    kind = "ANN" if c.mode == "ann" else "SNN"
    cells = [("#W", c.weights), (c.values_label, c.values), ("#S", c.spikes), ("M (bits)", c.memory_bits),
             ("#Add", c.adds), ("#Mul", c.muls)]
    head = "".join(f"<th class='num'>{_e(k)}</th>" for k, _ in cells)
    vals = "".join(f"<td class='num' title='{'' if v is None else f'{v:g}'}'>{_num(v)}</td>" for _, v in cells)
    conv = c.conventions
    layers = "".join(
        f"<tr><td class='mono'>{_e(lc.name)}</td><td>{_e(lc.kind)}</td><td class='num'>{_num(lc.weights)}</td>"
        f"<td class='num'>{_num(lc.values)}</td><td class='num'>{_num(lc.adds)}</td><td class='num'>{_num(lc.muls)}"
        f"</td></tr>" for lc in c.layers)
    layer_table = ("<details><summary>per layer</summary><table><thead><tr><th>layer</th><th>kind</th>"
                   f"<th class='num'>#W</th><th class='num'>{_e(c.values_label)}</th><th class='num'>#Add</th>"
                   f"<th class='num'>#Mul</th></tr></thead><tbody>{layers}</tbody></table></details>"
                   if c.layers else "")
    note = (f"per sample (Eqs. 8-9); bias {'counted' if conv.bias else 'not counted'}, pooling "
            f"{'counted' if conv.pooling else 'free'}, input layer {'counted' if conv.input_layer else 'not counted'}"
            + ("; estimate" if c.estimate else "") + (". #S, M and #Add need recorded spikes."
                                                      if c.mode == "snn" and c.spikes is None else "."))
    body = (f"<div class='head'><b>Costs</b> ({kind})</div><table><thead><tr>{head}</tr></thead>"
            f"<tbody><tr>{vals}</tr></tbody></table><p class='note' style='color:#6b7280'>{_e(note)}</p>"
            f"{layer_table}")
    return wrap(body)
