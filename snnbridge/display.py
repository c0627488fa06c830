"""Rich display for Jupyter: the ``_repr_html_`` bodies of results, recordings, costs and paper reports.

Each fragment is self-contained (inline, *scoped* CSS: every rule is prefixed with ``.snnb`` so the
notebook's own styles are untouched; no script, no external resource) and escapes every name, because
node and backend names come from untrusted ``.nir`` files.  The conformance fragment shows the same
verdict cards, per-node agreement, divergence and cost tables as ``report.html`` (rendered by the same
templates, :mod:`snnbridge.validation.report.render`).
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from snnbridge.bridge.recording import Recording
    from snnbridge.validation.conformance import BackendResult, ConformanceResult
    from snnbridge.validation.costs import Costs

SCOPE = ".snnb"
CSS_PATH = Path(__file__).parent / "validation" / "report" / "templates" / "report.css"
EXTRA_CSS = """
.snnb { font: 13px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #111827; }
.snnb .head { display: flex; align-items: center; gap: 14px; margin: 2px 0 6px; }
.snnb .head .verdict { font-size: 18px; padding: 3px 14px; }
.snnb section { padding: 10px 14px; margin-top: 10px; }
.snnb table { width: auto; }
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _scope_selectors(selectors: str) -> str:
    out = []
    for sel in selectors.split(","):
        sel = sel.strip()
        if sel in (":root", "body", "main", "*"):
            out.append(SCOPE if sel != "*" else f"{SCOPE}, {SCOPE} *")
        else:
            out.append(f"{SCOPE} {sel}")
    return ", ".join(out)


def scope_css(css: str) -> str:
    """Prefix every selector of ``css`` with ``.snnb`` (``:root``/``body``/``main`` become ``.snnb`` itself);
    ``@media`` blocks are scoped inside."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    out, i = [], 0
    while i < len(css):
        j = css.find("{", i)
        if j < 0:
            break
        head = css[i:j].strip()
        depth, k = 1, j + 1
        while k < len(css) and depth:
            depth += {"{": 1, "}": -1}.get(css[k], 0)
            k += 1
        body = css[j + 1:k - 1]
        if head.startswith("@media"):
            out.append(f"{head} {{ {scope_css(body)} }}")
        elif head.startswith("@"):
            out.append(f"{head} {{{body}}}")
        else:
            out.append(f"{_scope_selectors(head)} {{{body}}}")
        i = k
    return "\n".join(out)


@lru_cache(maxsize=1)
def css() -> str:
    """The report's stylesheet, scoped to ``.snnb`` for embedding in a notebook cell."""
    return scope_css(CSS_PATH.read_text(encoding="utf-8") + EXTRA_CSS)


def wrap(body: str) -> str:
    """A self-contained fragment: scoped ``<style>`` + ``<div class="snnb">``."""
    return f'<div class="snnb"><style>{css()}</style>{body}</div>'


def _num(x: float | int | None, digits: int = 3) -> str:
    from snnbridge.validation.report.render import si

    return si(x, digits)


# --------------------------------------------------------------------------- conformance


def conformance_html(result: ConformanceResult) -> str:
    """Verdict, the report's summary cards, per-node agreement, where divergence starts, accuracy and cost."""
    from snnbridge.validation.report.render import section

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
    from snnbridge.validation.report.render import section

    d = b.to_dict()
    summary = section("summary", {"backends": [d], "profile": {"name": "exact"},
                                   "reference": {"accuracy": None}})
    return wrap(summary)


# --------------------------------------------------------------------------- recording


def recording_html(rec: Recording) -> str:
    """Nodes of a recording: type, per-sample shape, spikes (total and per neuron per step), membrane recorded."""
    rows = []
    T, B = rec.steps, rec.batch_size
    for n in rec.nodes:
        t = rec[n]
        shape = tuple(t.shape[2:])
        neurons = max(1, int(torch.tensor(shape).prod().item()) if shape else 1)
        if t.dtype == torch.bool:
            total = int(t.sum())
            spikes = f"{total}"
            rate = f"{total / (T * B * neurons):.3f}"
        else:
            spikes, rate = "values", "—"
        mem = "yes" if n in rec.membranes else ""
        rows.append(f"<tr><td class='mono'>{_e(n)}</td><td>{_e(rec.node_types.get(n, '?'))}</td>"
                    f"<td class='mono'>{_e('×'.join(map(str, shape)) or '1')}</td><td class='num'>{spikes}</td>"
                    f"<td class='num'>{rate}</td><td>{mem}</td></tr>")
    body = (f"<div class='head'><b>Recording</b> <span class='mono'>{_e(rec.backend)}</span> · T = {T} steps × "
            f"B = {B} samples · dt = {rec.dt:g} s · {len(rec.nodes)} nodes</div>"
            "<table><thead><tr><th>node</th><th>type</th><th>shape</th><th class='num'>spikes</th>"
            "<th class='num'>spikes / neuron / step</th><th>membrane</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")
    return wrap(body)


# --------------------------------------------------------------------------- costs


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


# --------------------------------------------------------------------------- paper report


def paper_report_html(doc: dict) -> str:
    """The reproduction report's text and tables (Tables 4-6, cross-simulator, Fig. 13 sweep), no figures."""
    from snnbridge.reproduce import report as rr

    parts = ["<div class='head'><b>Reproduction of Deng et al. 2020 (Tables 4-6)</b></div>"]
    parts += [f"<p class='note'>{_e(line).replace('**', '')}</p>" for line in rr._intro(doc)]
    for title, head, rows in rr._acc_tables(doc):
        parts.append(f"<section><h2>{_e(title)}</h2>")
        if not rows:
            parts.append("<p class='note'><em>no cells</em></p></section>")
            continue
        parts.append("<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{_e(str(c)).replace('`', '')}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</tbody></table></section>")
    if doc.get("failed"):
        parts.append("<section><h2>Failed cells</h2><ul>" + "".join(
            f"<li>{_e(str(f.get('spec')))}: {_e(f.get('error'))}</li>" for f in doc["failed"]) + "</ul></section>")
    return wrap("".join(parts))
