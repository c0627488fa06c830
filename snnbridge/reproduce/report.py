"""The reproduction report: ``results.json`` (every number), ``report.md`` and a self-contained ``report.html``
(inline CSS, figures as data URIs), plus ``figures/*.png``.  Files are written to a temporary folder and
moved into place, so an interrupted run never leaves half-written output.

The pages are rendered by the conformance report's templates (:mod:`snnbridge.validation.report.render`):
``paper.html.j2`` extends the shared ``base.html.j2`` and its stylesheet, ``paper.md.j2`` is the Markdown."""

from __future__ import annotations

import base64
import datetime as _dt
import json
import statistics
from pathlib import Path

from snnbridge.models.presets import Preset
from snnbridge.reproduce import figures
from snnbridge.reproduce.paper import paper_accuracy
from snnbridge.reproduce.workloads import Workload, read_prepared

SCHEMA = "snnbridge-reproduce/1"
PAPER_INPUTS = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32), "nmnist": (2, 34, 34), "dvs-cifar10": (2, 42, 42)}


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def _std(xs: list[float]) -> float | None:
    return statistics.pstdev(xs) if len(xs) > 1 else (0.0 if xs else None)


def _group(results: list[dict], cell: str) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in results:
        if "error" in r or r["spec"].get("cell") != cell:
            continue
        s = r["spec"]
        out.setdefault((s["workload"], s["network"], s["model"]), []).append(r)
    return out


def _paper_scale(paper: str, network: str, model: str, structure: str) -> dict | None:
    """Analytic #W and #A/#P of the published (Table-1) structure on the paper's input (validation.costs)."""
    try:
        from snnbridge.validation.costs import static_costs
    except Exception:  # noqa: BLE001
        return None
    if model == "4":
        if paper != "nmnist":
            return None
        shape = (1, 2 * 34 * 34, 316)  # 1 ms windows over N-MNIST's ~316 ms
    else:
        shape = PAPER_INPUTS[paper]
    mode = "ann" if model in ("1", "4", "5") else "snn"
    c = static_costs(structure, shape, mode=mode, conv_stride=2 if model == "4" else 1)
    return {"structure": structure, "input_shape": list(shape), "weights": c.weights, "values": c.values,
            "adds": c.adds if mode == "ann" else None, "muls": c.muls if mode == "ann" else None}


class PaperReport(dict):
    """The reproduction document (a plain ``dict``, JSON-able as is) that also displays itself: a concise
    ``repr`` and, in Jupyter, the report's tables (Tables 4-6, cross-simulator, Fig. 13 sweep)."""

    def __repr__(self) -> str:
        p = self.get("preset") or {}
        n4, n5, n6 = (len(self.get(k) or []) for k in ("table4", "table5", "table6"))
        wl = ", ".join(w.get("name", "?") for w in self.get("workloads") or [])
        return (f"PaperReport(preset={p.get('name')!r}, workloads=[{wl}], Table 4: {n4} rows, Table 5: {n5}, "
                f"Table 6: {n6}, cross-simulator: {len(self.get('cross_simulator') or [])}, "
                f"sweep: {len(self.get('sweep') or [])}, failed: {len(self.get('failed') or [])})")

    def _repr_html_(self) -> str:
        return paper_report_html(self)


def load_results(path: str | Path) -> PaperReport:
    """Read a reproduction's ``results.json`` (or the folder holding it) for display or further analysis."""
    p = Path(path)
    p = p / "results.json" if p.is_dir() else p
    return PaperReport(json.loads(p.read_text(encoding="utf-8")))


def build_document(preset: Preset, workloads: list[Workload], data_paths: dict[str, Path], results: list[dict],
                   backends: tuple[str, ...], data_dir: str | Path | None, seconds: float, run: dict) -> PaperReport:
    """Everything the report shows, as one JSON-able document (a :class:`PaperReport`, i.e. a ``dict``)."""
    from snnbridge.backends import status
    from snnbridge.models.encoders import sampling_mae
    from snnbridge.models.presets import PAPER

    st = status()
    tables: dict[str, list[dict]] = {"table4": [], "table5": [], "table6": []}
    cross: list[dict] = []
    tsne: list[dict] = []
    curves: dict[tuple, dict] = {}
    wl_by_name = {w.name: w for w in workloads}
    for (wl, net, m), rs in sorted(_group(results, "table").items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                                   kv[0][2])):
        w = wl_by_name[wl]
        s0 = rs[0]
        accs = [100 * r["accuracy"] for r in rs]
        paper = paper_accuracy(w.paper, net, m)
        row = {"workload": wl, "paper_dataset": w.paper, "network": net, "structure": s0["structure"], "model": m,
               "label": s0["label"], "accuracy": _mean(accs), "accuracy_std": _std(accs), "seeds": len(rs),
               "source": s0.get("accuracy_source"), "paper": paper,
               "gap": (_mean(accs) - paper) if paper is not None else None,  # type: ignore[operator]
               "T": (s0.get("spike") or {}).get("T"), "threshold": (s0.get("spike") or {}).get("threshold"),
               "train_seconds": _mean([r["train_seconds"] for r in rs]), "epochs": s0["train_settings"]["epochs"]}
        if m == "2":
            row["constrained_ann_accuracy"] = _mean([100 * r["ann_accuracy"] for r in rs])
        tables["table4" if w.kind == "ann" else "table5"].append(row)
        cost = s0.get("cost") or {}
        tables["table6"].append({
            "workload": wl, "network": net, "model": m, "label": s0["label"], "mode": s0.get("mode"),
            "weights": cost.get("weights"), "values": cost.get("values"), "values_label": cost.get("values_label"),
            "spikes": _mean([r["cost"]["spikes"] for r in rs if r.get("cost") and r["cost"].get("spikes") is not None]),
            "memory_bits": _mean([r["cost"]["memory_bits"] for r in rs if r.get("cost")
                                  and r["cost"].get("memory_bits") is not None]),
            "adds": _mean([r["cost"]["adds"] for r in rs if r.get("cost") and r["cost"].get("adds") is not None]),
            "muls": _mean([r["cost"]["muls"] for r in rs if r.get("cost") and r["cost"].get("muls") is not None]),
            "paper_scale": _paper_scale(w.paper, net, m, PAPER.structure(w.paper, net)),
        })
        for r in rs[:1]:
            for b, br in (r.get("backends") or {}).items():
                c = br.get("cost") or {}
                cross.append({"workload": wl, "network": net, "model": m, "backend": b, "status": br.get("status"),
                              "accuracy": 100 * br["accuracy"] if br.get("accuracy") is not None else None,
                              "samples": br.get("samples"), "agreement": br.get("agreement"),
                              "adds": c.get("adds"), "spikes": c.get("spikes"), "seconds": br.get("seconds")})
            if r.get("tsne") and m in ("4", "5", "6"):
                tsne.append({"title": f"{wl} {net} Model-{m}", "workload": wl, "network": net, "model": m,
                             **r["tsne"]})
            label = f"Model-{m}" + (" (ANN pre-training)" if m == "2" else "")
            curves.setdefault((wl, net), {"title": f"{wl} {net}", "series": {}})["series"][label] = \
                r["history"]["accuracy"]
    sweep = []
    for r in results:
        if "error" in r or r["spec"].get("cell") != "sweep":
            continue
        sweep.append({"workload": r["workload"], "network": r["network"], "T": r["spike"]["T"],
                      "threshold": r["spike"]["threshold"], "seed": r["seed"], "accuracy": 100 * r["accuracy"],
                      "adds": (r.get("cost") or {}).get("adds"), "spikes": (r.get("cost") or {}).get("spikes")})
    fig8 = {}
    for w in workloads:
        if w.kind == "ann":
            x = read_prepared(data_paths[w.name])["x_test"][:preset.mae_samples]
            Ts = [1, 2, 5, 10, 15, 20, 50, 100]
            fig8[w.name] = {enc: sampling_mae(x, Ts, enc, repeats=5, seed=0) for enc in ("bernoulli", "poisson")}
    failed = [{"spec": {k: r["spec"].get(k) for k in ("workload", "network", "model", "cell", "seed")},
               "error": r["error"]} for r in results if "error" in r]
    light = [{k: v for k, v in r.items() if k not in ("tsne",)} for r in results]
    return PaperReport({
        "schema": SCHEMA, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": seconds, "preset": preset.as_dict(), "run": run, "data_dir": str(data_dir) if data_dir else None,
        "workloads": [{"name": w.name, "kind": w.kind, "paper": w.paper, "offline": w.offline} for w in workloads],
        "backends": {b: st.get(b, "unknown") for b in backends},
        "cost_source": next((r.get("cost_source") for r in results if r.get("cost_source")), None)
        or "snnbridge.validation.costs",
        **tables, "cross_simulator": cross, "sweep": sweep, "fig8_mae": fig8, "tsne": tsne,
        "curves": list(curves.values()), "failed": failed, "cells": light,
    })


# --------------------------------------------------------------------------- formatting

def _f(v, digits: int = 2, scale: float = 1.0, unit: str = "") -> str:
    if v is None:
        return "—"
    return f"{v / scale:.{digits}f}{unit}"


def _m(v) -> str:
    """A count in units of 10^6 with three significant digits."""
    return "—" if v is None else f"{v / 1e6:.3g}"


def _acc_tables(doc: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    out = []
    for key, title in (("table4", "Table 4 — accuracy on ANN-oriented workloads (Models 1-3)"),
                       ("table5", "Table 5 — accuracy on SNN-oriented workloads (Models 4-6)")):
        head = ["workload", "network", "model", "ours (%)", "paper (%)", "gap (pp)", "T", "u_th", "epochs",
                "evaluated by"]
        rows = []
        for r in doc[key]:
            acc = _f(r["accuracy"]) + (f" ± {r['accuracy_std']:.2f}" if r["seeds"] > 1 else "")
            if r.get("constrained_ann_accuracy") is not None:
                acc += f" (constrained ANN {r['constrained_ann_accuracy']:.2f})"
            rows.append([r["workload"], f"{r['network']} `{r['structure']}`", f"{r['model']} {r['label']}", acc,
                         _f(r["paper"]), _f(r["gap"]), str(r["T"] or "—"), _f(r["threshold"], 2),
                         str(r["epochs"]), r["source"] or ""])
        out.append((title, head, rows))
    head = ["workload", "network", "model", "#W", "#A/#P", "#S", "M (Mbit)", "#Add", "#Mul",
            "paper-scale #W", "paper-scale #A/#P", "paper-scale ANN #Add/#Mul"]
    rows = []
    for r in doc["table6"]:
        ps = r.get("paper_scale") or {}
        rows.append([r["workload"], r["network"], f"{r['model']} {r['label']}", _m(r["weights"]), _m(r["values"]),
                     _m(r["spikes"]), _m(r["memory_bits"]), _m(r["adds"]), _m(r["muls"]), _m(ps.get("weights")),
                     _m(ps.get("values")), f"{_m(ps.get('adds'))}/{_m(ps.get('muls'))}" if ps.get("adds") else "—"])
    out.append(("Table 6 — memory and compute cost per sample (Eqs. 8-9; counts in 10^6, M in 10^6 bits)", head,
                rows))
    head = ["workload", "network", "model", "backend", "status", "accuracy (%)", "samples", "agrees with reference",
            "#Add (10^6)", "#S", "seconds"]
    rows = [[r["workload"], r["network"], r["model"], r["backend"], (r["status"] or "")[:80], _f(r["accuracy"]),
             str(r["samples"] or "—"), _f(None if r["agreement"] is None else 100 * r["agreement"], 1, unit="%"),
             _m(r["adds"]), _f(r["spikes"], 1), _f(r["seconds"], 1)] for r in doc["cross_simulator"]]
    out.append(("Cross-simulator evaluation of every SNN (same NIR graph, same inputs)", head, rows))
    head = ["workload", "network", "T", "u_th", "seed", "accuracy (%)", "#Add (10^6)", "spikes/sample"]
    rows = [[r["workload"], r["network"], str(r["T"]), f"{r['threshold']:g}", str(r["seed"]), _f(r["accuracy"]),
             _m(r["adds"]), _f(r["spikes"], 0)] for r in doc["sweep"]]
    out.append(("Fig. 13 — Model-6 sensitivity to T and u_th (reference backend)", head, rows))
    return out


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


def _intro(doc: dict) -> list[str]:
    p = doc["preset"]
    bk = ", ".join(f"{k}: {v}" for k, v in doc["backends"].items())
    wl = ", ".join(f"{w['name']} ({'offline' if w['offline'] else 'data-dir'}, stands for {w['paper']})"
                   for w in doc["workloads"])
    return [f"Preset **{p['name']}** — {p['description']}",
            f"Workloads: {wl}.",
            f"Backends: {bk}.",
            f"Costs: {doc['cost_source']} (Eqs. 8-9). Runtime {doc['seconds']:.0f} s "
            f"({doc['run']['scheduler']}, {doc['run']['workers']} workers, seeds {doc['run']['seeds']}).",
            "Accuracy of every SNN is read from the reference backend running its exported NIR graph on the full "
            "test split; the cross-simulator table gives every other backend on a subset."]


FIGS = (("fig8_mae.png", "Fig. 8b — MAE between pixels and normalised spike counts against T"),
        ("fig10_curves.png", "Fig. 10 — training curves"),
        ("fig12_tsne.png", "Fig. 12 — t-SNE of the last hidden layer (activations / firing rates)"),
        ("fig13_sweep.png", "Fig. 13 — accuracy vs compute cost of Model-6 over T and u_th"))


def _figures(doc: dict) -> dict[str, bytes]:
    out = {}
    for name, png in (("fig8_mae.png", figures.fig8_mae(doc["fig8_mae"])),
                      ("fig10_curves.png", figures.fig10_curves(doc["curves"])),
                      ("fig12_tsne.png", figures.fig12_tsne(doc["tsne"])),
                      ("fig13_sweep.png", figures.fig13_sweep(doc["sweep"]))):
        if png is not None:
            out[name] = png
    return out


def markdown(doc: dict, figs: dict[str, bytes]) -> str:
    """The report as Markdown (figures linked from ``figures/``)."""
    from snnbridge.validation.report.render import render

    return render("paper.md.j2", intro=_intro(doc), tables=_acc_tables(doc), failed=doc["failed"],
                  figures=[(name, title) for name, title in FIGS if name in figs])


def html_page(doc: dict, figs: dict[str, bytes]) -> str:
    """The report as one self-contained HTML page (the shared report stylesheet inline, figures as data URIs)."""
    from snnbridge.validation.report.render import render

    tables = [(title, head, [[str(c).replace("`", "") for c in r] for r in rows])
              for title, head, rows in _acc_tables(doc)]
    figures_ = [(title, "data:image/png;base64," + base64.b64encode(figs[name]).decode("ascii"))
                for name, title in FIGS if name in figs]
    return render("paper.html.j2", intro=[line.replace("**", "") for line in _intro(doc)], tables=tables,
                  figures=figures_, failed=[{"spec": str(f["spec"]), "error": f["error"]} for f in doc["failed"]])


def write_report(doc: dict, out: str | Path, overwrite: bool = False) -> dict[str, Path]:
    """Write ``results.json``, ``report.md``, ``report.html`` and ``figures/`` into ``out``; returns the paths.

    ``out`` follows the output-folder rule of :func:`snnbridge.fileio.write_folder`: new, empty or written by
    snnbridge before, else refused unless ``overwrite``; each file is replaced atomically, nothing else in the
    folder (nor in ``figures/``) is deleted.
    """
    from snnbridge.fileio import write_folder

    out = Path(out)
    figs = _figures(doc)
    files: dict = {f"figures/{name}": png for name, png in figs.items()}
    files["results.json"] = json.dumps(doc, indent=1, default=str)
    files["report.md"] = markdown(doc, figs)
    files["report.html"] = html_page(doc, figs)
    write_folder(out, files, "reproduce", overwrite=overwrite)
    return {"json": out / "results.json", "markdown": out / "report.md", "html": out / "report.html",
            "figures": out / "figures"}


def paper_report_html(doc: dict) -> str:
    """The reproduction report's text and tables (Tables 4-6, cross-simulator, Fig. 13 sweep), no figures."""
    from snnbridge.html_fragment import escape as _e
    from snnbridge.html_fragment import wrap

    parts = ["<div class='head'><b>Reproduction of Deng et al. 2020 (Tables 4-6)</b></div>"]
    parts += [f"<p class='note'>{_e(line).replace('**', '')}</p>" for line in _intro(doc)]
    for title, head, rows in _acc_tables(doc):
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
