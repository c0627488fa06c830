"""Write a conformance check as a report folder: ``report.html`` (self-contained), ``summary.md``, ``report.json``.

The HTML page needs no network: CSS is inline and every figure is an embedded PNG.  The JSON holds
every number and validates against ``report_schema.json`` (versioned by ``schema``/``version``).
The folder is written to a temporary sibling and renamed into place, so a failed run never leaves a
half-written report.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snnbridge.errors import InputError
from snnbridge.validation import explain as ex
from snnbridge.validation import plots
from snnbridge.validation.conformance import YARDSTICK, ConformanceResult

SCHEMA_PATH = Path(__file__).with_name("report_schema.json")
CSS_PATH = Path(__file__).parent / "templates" / "report.css"


@dataclass
class ReportPaths:
    """Where the report's files are."""

    directory: Path
    html: Path
    markdown: Path
    json: Path


# --------------------------------------------------------------------------- JSON


def schema() -> dict:
    """The JSON schema of ``report.json``."""
    return json.loads(SCHEMA_PATH.read_text())


def validate(doc: dict) -> None:
    """Raise ``jsonschema.ValidationError`` when ``doc`` is not a valid report."""
    import jsonschema

    jsonschema.validate(doc, schema())


def load_report(path: str | Path) -> dict:
    """Read and validate a ``report.json`` (or the folder holding one); raises :class:`InputError`."""
    import jsonschema

    from snnbridge.fileio import read_text

    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    if not p.exists() and not p.is_symlink():
        raise InputError(f"{p}: no such report")
    text = read_text(p, "a report.json file", InputError)  # refuses a FIFO or device (would hang) and huge files
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise InputError(f"{p}: not a JSON report ({str(e)[:200]})") from None
    try:
        validate(doc)
    except jsonschema.ValidationError as e:
        where = "/".join(str(x) for x in e.absolute_path) or "<root>"
        raise InputError(f"{p}: not a valid snnbridge report at {where}: {e.message}") from None
    return doc


def choose_focus(result: ConformanceResult, node: str | None = None, sample: int | None = None) -> tuple[str, int]:
    """The node and sample the plots show: the earliest origin of divergence (and its first diverging
    sample), else the first spiking neuron node and sample 0.  Explicit choices are checked."""
    fg, ref = result.graph, result.yardstick.recording
    order = {n: i for i, n in enumerate(fg.order)}
    if node is None:
        origins = [(order[b.first_divergent_node], b) for b in result.backends.values()
                   if b.first_divergent_node and ref[b.first_divergent_node].dtype == torch.bool]
        origins.sort(key=lambda t: (t[1].audit, t[0]))
        if origins:
            b = origins[0][1]
            node = b.first_divergent_node
            if sample is None and b.first_divergence is not None and b.first_divergence.sample < ref.batch_size:
                sample = b.first_divergence.sample  # a streamed check keeps its first batch's recordings only
        else:
            neurons = [n for n in fg.order if ex.threshold_of(fg, n) is not None and ref[n].dtype == torch.bool]
            spiking = [n for n in fg.order if ref[n].dtype == torch.bool and n not in fg.inputs]
            stateful = [n for n in fg.order if n in ref.membranes]
            node = (neurons or spiking or stateful or fg.order[-1:])[0]
    if node not in ref:
        raise InputError(f"--plot-node '{node}' is not a node of the graph; nodes: {', '.join(fg.order)}")
    sample = 0 if sample is None else int(sample)
    if not 0 <= sample < ref.batch_size:
        raise InputError(f"--plot-sample {sample} is out of range (0..{ref.batch_size - 1})")
    return node, sample


def report_dict(result: ConformanceResult, node: str, sample: int, extra_points: list[dict] | None = None) -> dict:
    """The full JSON document: the check's numbers plus what the report shows."""
    doc = result.to_dict()
    doc["report"] = {"plot_node": node, "plot_sample": sample, "files": ["report.html", "summary.md", "report.json"]}
    doc["extra_points"] = [dict(p) for p in (extra_points or [])]
    return doc


# --------------------------------------------------------------------------- formatting


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def si(x: float | int | None, digits: int = 3) -> str:
    """``1234567 → '1.23 M'``; ``None → '—'``."""
    if x is None:
        return "—"
    x = float(x)
    if x != x:
        return "—"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.{digits}g} {unit}"
    return f"{x:.{digits}g}" if x != int(x) else f"{int(x)}"


def pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}%"


def _status_class(b: dict) -> str:
    return b["status"] + (" audit" if b["audit"] else "")


def _bar(value: float | None, cls: str) -> str:
    if value is None:
        return '<div class="bar none" title="not recorded by this backend"><em>not recorded</em></div>'
    return (f'<div class="bar"><span class="{cls}" style="width:{100 * max(0.0, min(1.0, value)):.1f}%"></span>'
            f'<em>{value:.3f}</em></div>')


# --------------------------------------------------------------------------- figures


def _figures(result: ConformanceResult, node: str, sample: int, extra_points: list[dict] | None) -> dict:
    runs = result.all_runs()
    ref = result.yardstick.recording
    figs: dict[str, str | None] = {}

    def raster_for(n: str) -> str | None:
        if ref[n].dtype != torch.bool:
            return None
        panel = {}
        for name, b in runs.items():
            r = b.recording
            if n in r and r[n].shape == ref[n].shape:
                t = r[n][:, sample].reshape(ref.steps, -1)
                panel["yardstick (f64)" if name == YARDSTICK else name] = t.bool() if t.dtype == torch.bool else t > 0.5
        return plots.raster(panel, "yardstick (f64)", f"node '{n}' ({result.graph.type_of(n)}), sample {sample}")

    figs["raster"] = raster_for(node)
    out = result.graph.outputs[0]
    figs["raster_output"] = raster_for(out) if out != node else None
    # membranes: the node's own, or the neuron that decides its spikes
    from snnbridge.validation.conformance import _threshold_source

    src = _threshold_source(result.graph, node) or node
    if src in ref.membranes:
        traces, spikes = {}, {}
        for name, b in runs.items():
            r = b.recording
            label = "yardstick (f64)" if name == YARDSTICK else name
            if src in r.membranes and r.membranes[src].shape == ref.membranes[src].shape:
                traces[label] = r.membranes[src][:, sample].reshape(ref.steps, -1)
                if src in r and r[src].dtype == torch.bool:
                    spikes[label] = r[src][:, sample].reshape(ref.steps, -1)
        chosen: list[int] = []
        for b in result.backends.values():
            nr = b.nodes.get(src)
            fd = nr.first_divergence if nr else None
            if fd is not None and fd.sample == sample and fd.neuron not in chosen:
                chosen.append(fd.neuron)
        if ref[src].dtype == torch.bool:  # then neurons that cross θ about every other step: the dynamics show
            count = ref[src][:, sample].reshape(ref.steps, -1).double().sum(0)
            score = (count - ref.steps / 2).abs() + ref.steps * (count == 0)
        else:
            score = -ref.membranes[src][:, sample].reshape(ref.steps, -1).double().abs().sum(0)
        for i in torch.argsort(score, stable=True).tolist():
            if len(chosen) >= 3:
                break
            if i not in chosen:
                chosen.append(i)
        th = ex.threshold_of(result.graph, src)
        if th is not None:
            th = np.broadcast_to(th, result.graph.out_shapes[src]).reshape(-1)
        figs["membranes"] = plots.membranes(traces, spikes, chosen[:3], th,
                                            f"membrane of '{src}', sample {sample}") if traces else None
        figs["membrane_node"] = src
    else:
        figs["membranes"] = None
    pts = _chart_points(result.to_dict(), extra_points)
    figs["chart"] = plots.accuracy_vs_adds(pts)
    return figs


def _chart_points(doc: dict, extra_points: list[dict] | None) -> list[dict]:
    pts = []
    ref = doc["reference"]
    if ref["costs"] and ref["accuracy"] is not None:
        pts.append({"label": "yardstick (f64)", "adds": ref["costs"]["adds"], "accuracy": ref["accuracy"],
                    "kind": "snn"})
    for b in doc["backends"]:
        if b["costs"] and b["accuracy"] is not None:
            pts.append({"label": b["name"], "adds": b["costs"]["adds"], "accuracy": b["accuracy"], "kind": "snn"})
    pts.extend(extra_points or [])
    return pts


# --------------------------------------------------------------------------- HTML


def render_html(doc: dict, figs: dict) -> str:
    """The self-contained page for a report document ``doc`` and figure data URIs ``figs``."""
    css = CSS_PATH.read_text()
    model = doc["model"]
    sem = model["semantics"]
    passed = doc["passed"]
    title = model.get("name") or model.get("structure") or "NIR graph"
    prof = doc["profile"]
    parts = [f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>snnbridge conformance — {_e(title)}</title>
<style>{css}</style></head>
<body><main>
<header class="top"><div>
<h1>Conformance report — {_e(title)}</h1>
<div class="sub">{_e(model.get('structure') or '')} · dt = {sem['dt']:g} s · reset = {_e(sem['reset'])} ·
integration = {_e(sem['integration'])} · profile <b>{_e(prof['name'])}</b> · {doc['data']['samples']} samples ×
T = {doc['data']['steps']} · {_e(doc['created'])}</div>
<div class="sub">data: {_e(doc['data'].get('description') or 'given tensor')}</div>
</div><div class="verdict {'pass' if passed else 'fail'}">{'PASS' if passed else 'FAIL'}</div></header>
"""]
    parts.append(_summary_section(doc))
    parts.append(_agreement_section(doc))
    parts.append(_divergence_section(doc))
    parts.append(_plots_section(doc, figs))
    parts.append(_cost_section(doc, figs))
    parts.append(_pairwise_section(doc))
    parts.append(_details_section(doc))
    env = doc["environment"]
    vers = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    parts.append(f"""<footer><p>Yardstick: the snnbridge reference executor in float64 under the graph's semantics
(<code>docs/semantics.md</code>). Metrics and counting conventions: <code>docs/validation.md</code>.
Every number of this page is in <code>report.json</code> (schema <code>{_e(doc['schema'])}</code> v{doc['version']}).
</p><p>Python {_e(env['python'])} on {_e(env['platform'])}; {_e(vers)}. Check took
{doc.get('runtime_s') or 0:.1f} s.</p></footer></main></body></html>
""")
    return "".join(parts)


def _summary_section(doc: dict) -> str:
    prof = doc["profile"]
    rule = ("every spike bit-identical to the float64 reference" if prof["name"] == "exact" else
            f"only near-threshold flips (|v − θ| ≤ {prof['threshold_tol']:g}·max(1,|θ|)) on ≤ "
            f"{100 * prof['max_flip_fraction']:g}% of a node's spike trains")
    cards = []
    for b in doc["backends"]:
        why = ""
        if b["status"] in ("unavailable", "error"):
            why = _e(b["reason"])
        elif b["first_divergent_node"]:
            fd = b["first_divergence"] or {}
            why = (f"first diverges at <b>{_e(b['first_divergent_node'])}</b>"
                   + (f", step {fd['step']}, sample {fd['sample']}, neuron {fd['neuron']}" if fd else "")
                   + f" — <span class='cls {_e(b['classification'])}'>{_e(b['classification'])}</span> "
                   + _e(b["explanation"] or ""))
        else:
            why = f"all {b['nodes_compared']} recorded nodes agree"
        audit = " <span class='badge unavailable'>audit</span>" if b["audit"] else ""
        cards.append(f"""<div class="card {_status_class(b)}"><h3><span class="mono">{_e(b['name'])}</span>
<span><span class="badge {b['status']}">{_e(b['status'].upper())}</span>{audit}</span></h3>
<div class="kv"><span>accuracy</span><span>{pct(b['accuracy'])}</span>
<span>same class as ref.</span><span>{pct(b['prediction_agreement'])} of samples</span>
<span>nodes agreeing</span><span>{b['nodes_agreeing']} / {b['nodes_compared']}</span>
<span>run</span><span>{_e(b['dtype'])}, {b['runtime_s']:.2f} s</span></div>
<div class="why">{why}</div></div>""")
    ref = doc["reference"]
    return f"""<section><h2>Summary</h2>
<p class="note">Profile <b>{_e(prof['name'])}</b>: a backend passes when {rule}. Audit runs (the simulators' own NIR
importers) are reported but do not decide the verdict. Reference accuracy: {pct(ref['accuracy'])}.</p>
<div class="cards">{''.join(cards)}</div></section>
"""


def _agreement_section(doc: dict) -> str:
    backends = doc["backends"]
    ran = [b for b in backends if b["status"] in ("pass", "fail")]
    if not ran:
        return "<section><h2>Per-node agreement</h2><p class='note'>No backend produced a recording.</p></section>"
    head = "".join(f"<th>{_e(b['name'])}</th>" for b in ran)
    rows = []
    for nd in doc["reference"]["nodes"]:
        cells = []
        for b in ran:
            r = next((x for x in b["nodes"] if x["name"] == nd["name"]), None)
            if r is None or not r["compared"]:
                cells.append(f"<td>{_bar(None, '')}</td>")
                continue
            cls = "" if r["agree"] else ("inherited" if r["classification"] == "propagated" else
                                         "allowed" if r["allowed"] else "bad")
            tip = _e(r["explanation"])
            cells.append(f"<td title='{tip}'>{_bar(r['agreement'], cls)}</td>")
        kind = "spikes" if nd["spiking"] else "values"
        rows.append(f"<tr><td class='mono'>{_e(nd['name'])}</td><td>{_e(nd['type'])}</td>"
                    f"<td class='mono'>{_e('×'.join(map(str, nd['shape'])) or '1')}</td><td>{kind}</td>"
                    f"{''.join(cells)}</tr>")
    return f"""<section><h2>Per-node agreement</h2>
<p class="note">Evaluation order, top to bottom. Bars: spike-event F1 against the reference (spike nodes) or the
fraction of values within tolerance (analog nodes). Green: identical; amber: differs within the profile; red:
differs beyond it (where a divergence starts); grey: inherits an upstream divergence. Hover a bar for the
explanation.</p>
<table><thead><tr><th>node</th><th>type</th><th>shape</th><th>output</th>{head}</tr></thead>
<tbody>{''.join(rows)}</tbody></table></section>
"""


def _divergence_section(doc: dict) -> str:
    rows = []
    for b in doc["backends"]:
        if b["status"] in ("unavailable", "error"):
            rows.append(f"<tr><td class='mono'>{_e(b['name'])}</td><td colspan='6'>{_e(b['status'])}: "
                        f"{_e(b['reason'])}</td></tr>")
            continue
        if not b["first_divergent_node"]:
            rows.append(f"<tr><td class='mono'>{_e(b['name'])}</td><td colspan='6'><span class='cls agree'>agree"
                        f"</span> no divergence on any recorded node</td></tr>")
            continue
        fd = b["first_divergence"] or {}
        idx = fd.get("index") or []
        neuron = f"{fd.get('neuron')}" + (f" {tuple(idx)}" if len(idx) > 1 else "")
        rows.append(f"<tr><td class='mono'>{_e(b['name'])}</td><td class='mono'>{_e(b['first_divergent_node'])}</td>"
                    f"<td class='num'>{fd.get('step', '—')}</td><td class='num'>{fd.get('sample', '—')}</td>"
                    f"<td class='num'>{_e(neuron)}</td><td><span class='cls {_e(b['classification'])}'>"
                    f"{_e(b['classification'])}</span></td><td>{_e(b['explanation'])}</td></tr>")
    return f"""<section><h2>Where divergence starts</h2>
<p class="note">The earliest node (evaluation order) that diverges although its inputs agree — found by re-running
each node alone, with the reference semantics, on the inputs the backend itself recorded. Step, sample and neuron
are 0-based (neuron: flat index, then the index in the node's shape).</p>
<table><thead><tr><th>backend</th><th>first divergent node</th><th class="num">step</th><th class="num">sample</th>
<th class="num">neuron</th><th>class</th><th>explanation</th></tr></thead><tbody>{''.join(rows)}</tbody></table>
</section>
"""


def _img(uri: str | None, alt: str, caption: str) -> str:
    if not uri:
        return ""
    return f'<figure><img src="{uri}" alt="{_e(alt)}"><figcaption>{caption}</figcaption></figure>'


def _plots_section(doc: dict, figs: dict) -> str:
    rep = doc["report"]
    node, sample = rep["plot_node"], rep["plot_sample"]
    body = _img(figs.get("raster"), f"raster of {node}",
                f"Spike rasters of node <b>{_e(node)}</b>, sample {sample}, side by side. Dark: spikes the reference "
                "also emits; red ×: extra spikes; red ○: missed spikes.")
    body += _img(figs.get("raster_output"), "raster of the output node", "The output node, same sample.")
    body += _img(figs.get("membranes"), "membrane traces",
                 f"Membrane (after integration, before reset) of node <b>{_e(figs.get('membrane_node', node))}</b>: "
                 "the first diverging neuron(s), then neurons that fire on about half of the steps; circles mark "
                 "spikes, dashed red is θ.")
    if not body:
        body = "<p class='note'>Nothing to plot for this node.</p>"
    return f"<section><h2>Rasters and membranes</h2>{body}</section>\n"


def _cost_section(doc: dict, figs: dict) -> str:
    rows = []

    def row(label: str, kind: str, acc, agree, c: dict | None, runtime=None) -> str:
        c = c or {}
        return (f"<tr><td class='mono'>{_e(label)}</td><td>{kind}</td><td class='num'>{pct(acc)}</td>"
                f"<td class='num'>{pct(agree)}</td><td class='num'>{si(c.get('weights'))}</td>"
                f"<td class='num'>{si(c.get('values'))}</td><td class='num'>{si(c.get('spikes'))}</td>"
                f"<td class='num'>{si(c.get('memory_bits'))}</td><td class='num'>{si(c.get('adds'))}</td>"
                f"<td class='num'>{si(c.get('muls'))}</td>"
                f"<td class='num'>{'' if runtime is None else f'{runtime:.2f} s'}</td></tr>")

    ann = doc["ann_costs"]
    ann_acc = next((p["accuracy"] for p in doc.get("extra_points", []) if p.get("kind") == "ann"), None)
    rows.append(row("ANN (same structure, analytic)", "ANN #A", ann_acc, None, ann))
    ref = doc["reference"]
    rows.append(row("yardstick (reference, float64)", "SNN #P", ref["accuracy"], 1.0, ref["costs"],
                    ref["runtime_s"]))
    for b in doc["backends"]:
        rows.append(row(b["name"], "SNN #P", b["accuracy"], b["prediction_agreement"], b["costs"],
                        b["runtime_s"] if b["status"] in ("pass", "fail") else None))
    conv = doc["conventions"]
    chart = _img(figs.get("chart"), "accuracy vs additions",
                 "Top-1 accuracy against additions per sample (Eq. 9).")
    return f"""<section><h2>Accuracy and cost</h2>
<p class="note">Top-1 accuracy by rate decoding (Eq. 7); "agrees" is the fraction of samples predicted like the
reference. Costs per sample (Eqs. 8-9), averaged over the samples: #W weights, #A activations (ANN) or #P membrane
potentials (SNN), #S the largest number of spikes at one step, M memory in bits (32-bit values, 1-bit spikes),
#Add/#Mul operations over all steps (SNN: spikes × fan-out). Conventions: bias {'counted' if conv['bias'] else
'not counted'}, pooling {'counted as a fixed-weight layer' if conv['pooling'] else 'free'}, input layer
{'counted' if conv['input_layer'] else 'not counted'}.</p>
<table><thead><tr><th>run</th><th>values</th><th class="num">accuracy</th><th class="num">agrees</th>
<th class="num">#W</th><th class="num">#A / #P</th><th class="num">#S</th><th class="num">M (bits)</th>
<th class="num">#Add</th><th class="num">#Mul</th><th class="num">runtime</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table>{chart}</section>
"""


def _pairwise_section(doc: dict) -> str:
    pw = doc["pairwise"]
    names = pw["names"]
    if len(names) < 2:
        return ""

    label = lambda n: "yardstick (f64)" if n == YARDSTICK else n  # noqa: E731

    def matrix(key: str, fmt) -> str:
        head = "".join(f"<th class='mono'>{_e(label(n))}</th>" for n in names)
        body = []
        for a in names:
            cells = "".join(f"<td>{fmt(pw[key][a][b])}</td>" for b in names)
            body.append(f"<tr><th class='mono'>{_e(label(a))}</th>{cells}</tr>")
        return (f"<div class='scroll'><table class='matrix'><thead><tr><th></th>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table></div>")

    f3 = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    return f"""<section><h2>Pairwise</h2>
<p class="note">Spike-event F1 over every spike node both runs recorded (row: reference side).</p>
{matrix('spike_f1', f3)}
<p class="note" style="margin-top:14px">Fraction of samples with the same predicted class.</p>
{matrix('prediction_agreement', pct)}</section>
"""


def _details_section(doc: dict) -> str:
    blocks = []
    for b in doc["backends"]:
        if not b["nodes"]:
            continue
        rows = []
        for r in b["nodes"]:
            if not r["compared"]:
                rows.append(f"<tr><td class='mono'>{_e(r['name'])}</td><td colspan='10'>not recorded</td></tr>")
                continue
            ev, cd = r["events"] or {}, r["counts"] or {}
            f = lambda v, d=3: "—" if v is None else f"{v:.{d}g}"  # noqa: E731
            rows.append(
                f"<tr><td class='mono'>{_e(r['name'])}</td><td class='num'>{f(ev.get('precision'))}</td>"
                f"<td class='num'>{f(ev.get('recall'))}</td><td class='num'>{f(cd.get('mean_abs'))}</td>"
                f"<td class='num'>{cd.get('max_abs', '—')}</td><td class='num'>{f(r['van_rossum_mean'])}</td>"
                f"<td class='num'>{f(r['cosine'], 4)}</td><td class='num'>{f(r['max_abs'])}</td>"
                f"<td class='num'>{f(r['membrane_max_abs'])}</td>"
                f"<td><span class='cls {_e(r['classification'])}'>{_e(r['classification'])}</span></td>"
                f"<td>{_e(r['explanation'])}</td></tr>")
        blocks.append(f"""<details><summary><span class="mono">{_e(b['name'])}</span> — every node</summary>
<table><thead><tr><th>node</th><th class="num">precision</th><th class="num">recall</th>
<th class="num">mean |Δcount|</th><th class="num">max |Δcount|</th><th class="num">van Rossum</th>
<th class="num">cosine</th><th class="num">max |Δ| out</th><th class="num">max |Δv|</th><th>class</th>
<th>explanation</th></tr></thead><tbody>{''.join(rows)}</tbody></table></details>""")
    if not blocks:
        return ""
    tau = doc["metrics"]["van_rossum_tau_steps"]
    return ("<section><h2>Node metrics</h2><p class='note'>Precision/recall of spike events, spike-count difference "
            f"per neuron, van Rossum distance (τ = {tau:g} steps, mean over trains), cosine similarity of per-neuron "
            "counts, max abs difference of analog outputs and of membranes.</p>" + "".join(blocks) + "</section>\n")


# --------------------------------------------------------------------------- Markdown


def render_markdown(doc: dict) -> str:
    """A short Markdown summary for CI logs and PR comments."""
    model = doc["model"]
    lines = [f"## snnbridge conformance: **{'PASS' if doc['passed'] else 'FAIL'}** — "
             f"{model.get('name') or model.get('structure') or 'graph'}", "",
             f"profile `{doc['profile']['name']}` · {doc['data']['samples']} samples × T={doc['data']['steps']} · "
             f"dt={model['semantics']['dt']:g} s, reset={model['semantics']['reset']}, "
             f"integration={model['semantics']['integration']}", "",
             "| backend | verdict | accuracy | agrees with ref | first divergence | class |",
             "|---|---|---:|---:|---|---|"]
    for b in doc["backends"]:
        fd = b["first_divergence"]
        if b["status"] in ("unavailable", "error"):
            where, cls = b["reason"].replace("|", "\\|"), ""
        elif b["first_divergent_node"]:
            where = f"`{b['first_divergent_node']}`" + (f" step {fd['step']}, sample {fd['sample']}, neuron "
                                                        f"{fd['neuron']}" if fd else "")
            cls = f"{b['classification']}: {b['explanation']}".replace("|", "\\|")
        else:
            where, cls = "—", "agree"
        lines.append(f"| `{b['name']}` | {b['verdict']} | {pct(b['accuracy'])} | {pct(b['prediction_agreement'])} | "
                     f"{where} | {cls} |")
    ref = doc["reference"]
    lines += ["", "| run | accuracy | #W | #A/#P | #S | M (bits) | #Add | #Mul |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def cost_row(label, acc, c):
        c = c or {}
        return (f"| {label} | {pct(acc)} | {si(c.get('weights'))} | {si(c.get('values'))} | {si(c.get('spikes'))} | "
                f"{si(c.get('memory_bits'))} | {si(c.get('adds'))} | {si(c.get('muls'))} |")

    lines.append(cost_row("ANN (analytic)", next((p["accuracy"] for p in doc.get("extra_points", [])
                                                  if p.get("kind") == "ann"), None), doc["ann_costs"]))
    lines.append(cost_row("yardstick (reference, float64)", ref["accuracy"], ref["costs"]))
    for b in doc["backends"]:
        if b["costs"]:
            lines.append(cost_row(f"`{b['name']}`", b["accuracy"], b["costs"]))
    lines += ["", "Full report: `report.html` (self-contained), numbers: `report.json`.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- writing


def write_report(result: ConformanceResult, out_dir: str | Path, plot_node: str | None = None,
                 plot_sample: int | None = None, extra_points: list[dict] | None = None,
                 extra_files: dict[str, str | Path] | None = None, overwrite: bool = False) -> ReportPaths:
    """Write ``report.html``, ``summary.md`` and ``report.json`` into ``out_dir``.

    ``extra_points``: more runs for the accuracy-vs-#Add chart and the cost table, dicts with
    ``label``, ``accuracy`` (0-1), ``adds`` and ``kind`` (``"ann"``/``"snn"``), e.g. a trained ANN.
    ``extra_files``: file name in the folder → existing file to copy there (e.g. the checked ``model.nir``).

    ``out_dir`` must be new, empty, or a folder snnbridge wrote before (it holds ``.snnbridge-output``);
    any other folder is refused with :class:`~snnbridge.fileio.OutputError` unless ``overwrite``.  A new
    folder appears all at once; in an existing one each file is replaced atomically and nothing else is
    touched (see :func:`snnbridge.fileio.write_folder`).
    """
    from snnbridge.fileio import check_output_folder, write_folder

    out = check_output_folder(out_dir, overwrite)  # refuse early, before the figures are drawn
    node, sample = choose_focus(result, plot_node, plot_sample)
    doc = report_dict(result, node, sample, extra_points)
    validate(doc)
    figs = _figures(result, node, sample, extra_points)
    files: dict = {"report.html": render_html(doc, figs), "summary.md": render_markdown(doc),
                   "report.json": json.dumps(doc, indent=1)}
    for name, src in (extra_files or {}).items():
        files[name] = Path(src)
    write_folder(out, files, "conformance-report", overwrite=overwrite)
    return ReportPaths(out, out / "report.html", out / "summary.md", out / "report.json")
