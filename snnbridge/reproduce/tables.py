"""The README's and docs/reproduce.md's result tables, generated from the committed ``results/*.json``.

Each committed file is the ``results.json`` of one ``snnbridge reproduce`` run (``results/README.md`` names the
command).  :func:`render_blocks` turns them into Markdown blocks; each block lives in a document between
``<!-- results:<name>:begin -->`` and ``<!-- results:<name>:end -->`` (the README's main block is
``<!-- results:begin -->`` / ``<!-- results:end -->``).  ``python -m snnbridge.reproduce.tables`` rewrites the
blocks in place; ``--check`` exits 1 when a document's block differs from what the results give (the test
suite runs the check, so the tables cannot drift from the results).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
QUICK = "quick-real.json"
"""``snnbridge reproduce --preset quick --data-dir ../shared/data --seeds 0,1,2``."""

DOCS = {"README.md": ("main", "matrix", "demo"), "docs/reproduce.md": ("quick-detail",)}
DEMO = "demo-report.json"
"""``report.json`` of one ``make demo`` (``snnbridge demo``) on a fresh clone."""
MATRIX = "matrix-peer-graphs.json"
"""``snnbridge matrix`` over the four NIR-paper graphs (command in results/README.md)."""
NODE_CASES = "upstream-node-cases.json"
"""Per upstream importer, the node cases of ``node_suite`` it reproduces (checked against the strict xfails of
``tests/test_upstream_audit.py`` / ``tests/test_upstream_more.py``)."""
"""Which blocks each document holds."""


def load(name: str, results: Path = RESULTS) -> dict:
    """One committed results document."""
    return json.loads((results / name).read_text())


def _acc(row: dict) -> str:
    if row.get("accuracy") is None:
        return "—"
    if (row.get("seeds") or 1) > 1:
        return f"{row['accuracy']:.2f} ± {row['accuracy_std']:.2f}"
    return f"{row['accuracy']:.2f}"


def _paper(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def _m(v: float | None) -> str:
    return "—" if v is None else f"{v / 1e6:.4f}"


def _cost_means(doc: dict) -> dict[tuple[str, str, str], dict]:
    """Mean #Add / #Mul (10^6 per sample) of each (workload, network, model) over its seeds."""
    acc: dict[tuple[str, str, str], list[dict]] = {}
    for c in doc["cells"]:
        s = c.get("spec", {})
        if s.get("cell") != "table" or not isinstance(c.get("cost"), dict):
            continue
        acc.setdefault((s["workload"], s["network"], s["model"]), []).append(c["cost"])
    out = {}
    for k, rows in acc.items():
        out[k] = {f: (sum(r[f] for r in rows) / len(rows) if all(r.get(f) is not None for r in rows) else None)
                  for f in ("adds", "muls", "spikes")}
    return out


WALLS = "quick-real-walls.json"
"""Wall times of the runs that filled :data:`QUICK` (their console output)."""


def _timing(doc: dict) -> str:
    """Cell compute (sum over cells of their own seconds, cached ones included) and the runs' wall time."""
    secs = sum(c.get("seconds") or 0.0 for c in doc["cells"])
    out = f"cell compute {secs / 60:.1f} min"
    walls = RESULTS / WALLS
    if walls.exists():
        total = sum(r["wall_s"] for r in json.loads(walls.read_text())["runs"])
        out += f", wall {total / 60:.1f} min on the shared 2-core machine (its load: `results/{WALLS}`)"
    return out


def main_block(doc: dict) -> str:
    """The README's tables: Models 1-3 and 4-6 (mean ± std over seeds) next to the paper's Tables 4-5."""
    seeds = doc["run"]["seeds"]
    costs = _cost_means(doc)
    lines = [f"Quick preset on the real data (`snnbridge reproduce --preset quick --data-dir ../shared/data "
             f"--seeds {','.join(map(str, seeds))}`; {len(seeds)} seed(s), mean ± std; {_timing(doc)}). "
             f"Generated from `results/{QUICK}` by `python -m snnbridge.reproduce.tables`.", ""]
    for table, title in (("table4", "ANN-oriented (Table 4)"), ("table5", "SNN-oriented (Table 5)")):
        rows = list(doc[table])
        if not rows:
            continue
        lines += [f"| {title} | network | model | accuracy % | paper % | #Add / #Mul (10^6) |",
                  "|---|---|---|---|---|---|"]
        for r in sorted(rows, key=lambda r: (r["workload"], r["network"], r["model"])):
            c = costs.get((r["workload"], r["network"], r["model"]), {})
            extra = f" (T = {r['T']}, u_th = {r['threshold']})" if r.get("T") else ""
            lines.append(f"| {r['workload']} | `{r['structure']}` | {r['model']} {r['label']}{extra} | {_acc(r)} | "
                         f"{_paper(r.get('paper'))} | {_m(c.get('adds'))} / {_m(c.get('muls'))} |")
        lines.append("")
    lines += _ranking(doc) + _agreement(doc)
    return "\n".join(lines).rstrip() + "\n"


def _ranking(doc: dict) -> list[str]:
    """Per seed on each event workload: does the paper's ranking Model-6 ≥ Model-5 ≥ Model-4 (Table 5) hold?"""
    acc: dict[tuple[str, str, int], dict[str, float]] = {}
    for c in doc["cells"]:
        s = c.get("spec", {})
        if s.get("cell") == "table" and s.get("model") in ("4", "5", "6") and c.get("accuracy") is not None:
            acc.setdefault((s["workload"], s["network"], int(s["seed"])), {})[s["model"]] = 100 * c["accuracy"]
    out = []
    for (w, net, seed), a in sorted(acc.items()):
        if len(a) == 3:
            ok = a["6"] >= a["5"] >= a["4"]
            out.append(f"- {w} {net}, seed {seed}: Model-6 {a['6']:.1f} / Model-5 {a['5']:.1f} / Model-4 {a['4']:.1f} "
                       f"— Model-6 ≥ Model-5 ≥ Model-4 {'holds' if ok else 'does not hold'}")
    return (["Table 5's ranking per seed (test accuracy %):", ""] + out + [""]) if out else []


def _agreement(doc: dict) -> list[str]:
    """Each simulator's agreement with the reference's predictions, over every SNN cell it ran."""
    rows: dict[str, list[dict]] = {}
    for r in doc.get("cross_simulator") or []:
        if r.get("backend") != "reference" and r.get("status") == "ok":
            rows.setdefault(r["backend"], []).append(r)
    if not rows:
        return []
    def n(rs: list[dict]) -> str:
        lo, hi = min(x["samples"] for x in rs), max(x["samples"] for x in rs)
        return f"{lo}" if lo == hi else f"{lo}-{hi}"

    parts = [f"{b}: {100 * min(x['agreement'] for x in rs):.0f} % (lowest over its {len(rs)} SNN table row(s), "
             f"{n(rs)} test samples each)" for b, rs in sorted(rows.items())]
    return ["Agreement of the simulators with the reference executor's predictions on the same NIR graphs — "
            + "; ".join(parts) + ".", ""]


def detail_block(doc: dict) -> str:
    """docs/reproduce.md: Model-2's threshold tuning and accuracy vs T (Fig. 9b), Fig. 13, training time."""
    lines: list[str] = []
    m2 = [c for c in doc["cells"] if c.get("spec", {}).get("model") == "2" and c.get("threshold_tuning")]
    if m2:
        ths = list(m2[0]["threshold_tuning"]["accuracy"])
        lines += ["**Model-2 threshold tuning** (accuracy % on training images not used for calibration, T = "
                  f"{m2[0]['threshold_tuning']['T']}; the table uses Table 2's u_th):", "",
                  "| workload | network | seed | " + " | ".join(f"u_th {t}" for t in ths) + " | best |",
                  "|---|---|---|" + "---|" * len(ths) + "---|"]
        for c in sorted(m2, key=lambda c: (c["workload"], c["network"], c["seed"])):
            a = c["threshold_tuning"]["accuracy"]
            row = " | ".join(f"{100 * a[t]:.1f}" for t in ths)
            best = c["threshold_tuning"]["best"]
            lines.append(f"| {c['workload']} | {c['network']} | {c['seed']} | {row} | {best} |")
        Ts = list(m2[0]["accuracy_vs_T"]["accuracy"])
        lines += ["", f"**Fig. 9b** (Model-2, u_th = {m2[0]['accuracy_vs_T']['threshold']}, accuracy % on the first "
                  f"{m2[0]['accuracy_vs_T']['samples']} test images; constrained ANN for reference):", "",
                  "| workload | network | seed | ANN | " + " | ".join(f"T = {t}" for t in Ts) + " |",
                  "|---|---|---|---|" + "---|" * len(Ts)]
        for c in sorted(m2, key=lambda c: (c["workload"], c["network"], c["seed"])):
            a = c["accuracy_vs_T"]["accuracy"]
            lines.append(f"| {c['workload']} | {c['network']} | {c['seed']} | {100 * c['ann_accuracy']:.1f} | "
                         + " | ".join(f"{100 * a[t]:.1f}" for t in Ts) + " |")
        lines.append("")
    sweep = doc.get("sweep") or []
    if sweep:
        thr = sorted({r["threshold"] for r in sweep})
        lines += [f"**Fig. 13** (Model-6, {sweep[0]['workload']} {sweep[0]['network']}, seed {sweep[0]['seed']}; "
                  "accuracy % / #Add in 10^6 per sample; Table 3: T = 15, u_th = 0.3):", "",
                  "| T | " + " | ".join(f"u_th {t}" for t in thr) + " |", "|---|" + "---|" * len(thr)]
        for T in sorted({r["T"] for r in sweep}):
            cells = {r["threshold"]: r for r in sweep if r["T"] == T}
            lines.append(f"| {T} | " + " | ".join(
                f"{cells[t]['accuracy']:.1f} / {_m(cells[t]['adds'])}" if t in cells else "—" for t in thr) + " |")
        lines.append("")
    lines += _model6_window(doc)
    lines.append(f"Cells: {len(doc['cells'])}; {_timing(doc)}.")
    walls = RESULTS / WALLS
    if walls.exists():
        w = json.loads(walls.read_text())
        lines += ["", "Runs behind these numbers (`results/" + WALLS + "`): " + "; ".join(
            f"`{r['command']}` {r['wall_s'] / 60:.1f} min" for r in w["runs"]) + ". " + w["note"]]
    return "\n".join(lines).rstrip() + "\n"


PENDING = ("No committed result yet: `results/{name}` is written by `snnbridge reproduce --preset quick --data-dir "
           "../shared/data --seeds 0,1,2` (copy its `results.json`), then `python -m snnbridge.reproduce.tables`.\n")


T25 = "nmnist-model6-T25.json"
"""Model-6 on N-MNIST with T = 25 windows of 3 ms (the same quick settings otherwise)."""


def _model6_window(doc: dict) -> list[str]:
    """Model-6 per seed: last-epoch training accuracy and test accuracy at Table 3's T and at T = 25."""
    docs = [doc] + ([load(T25)] if (RESULTS / T25).exists() else [])
    rows = []
    for d in docs:
        for c in d["cells"]:
            s = c.get("spec", {})
            if s.get("cell") == "table" and s.get("model") == "6" and s.get("workload") == "nmnist":
                rows.append((c["spike"]["T"], s["seed"], 100 * c["history"]["accuracy"][-1], 100 * c["accuracy"]))
    if not rows:
        return []
    out = ["**Model-6 per seed** (N-MNIST MLP; T windows of 3 ms; training accuracy at the last epoch / test "
           "accuracy %):", "", "| T | seed | train | test |", "|---|---|---|---|"]
    out += [f"| {T} ({3 * T} ms) | {seed} | {tr:.1f} | {te:.1f} |" for T, seed, tr, te in sorted(rows)]
    return out + [""]


_GRAPH_TITLES = {"braille_noDelay_bias_zero": "Braille zero", "braille_noDelay_noBias_subtract": "Braille subtract",
                 "cnn_sinabs": "`cnn_sinabs` (N-MNIST)", "lif_norse": "`lif_norse`"}


def matrix_block(doc: dict, node_cases: dict | None) -> str:
    """The README's summary of ``snnbridge matrix``: one row per backend / audit mode, one column per graph
    (verdict, accuracy where the graph has labels) and the node cases each upstream importer reproduces."""
    graphs = [g["name"] for g in doc["graphs"]]
    cells: dict[str, dict[str, str]] = {}
    for r in doc["rows"]:
        v = r["verdict"]
        if r.get("accuracy") is not None:
            v += f" ({100 * r['accuracy']:.0f} %)"
        cells.setdefault(r["backend"], {})[r["graph"]] = v
    n_cases = (node_cases or {}).get("cases")
    right = (node_cases or {}).get("right", {})
    samples = {g["samples"] for g in doc["graphs"]}
    steps = {g["steps"] for g in doc["graphs"]}
    counted = [b for b in cells if not b.endswith("-upstream")]
    audits = [b for b in cells if b.endswith("-upstream")]
    lines = [f"{len(graphs)} graphs × {len(counted)} backends and {len(audits)} audit modes, "
             f"{'/'.join(map(str, sorted(samples)))} samples × {'/'.join(map(str, sorted(steps)))} steps each, "
             f"{doc['runtime_s'] / 60:.1f} minutes wall (`results/{MATRIX}`):", "",
             "| backend | " + " | ".join(_GRAPH_TITLES.get(g, f"`{g}`") for g in graphs) + " | node cases right |",
             "|---|" + "---|" * len(graphs) + "---:|"]
    for b in counted + audits:
        nc = f" {len(right[b])} of {n_cases} |" if b in right and n_cases else " |"
        lines.append(f"| `{b}` | " + " | ".join(cells[b].get(g, "—") for g in graphs) + " |" + nc)
    return "\n".join(lines) + "\n"


def demo_block(doc: dict) -> str:
    """The README's demo numbers: verdicts and top-1 of the counted backends, the ANN twin, the paper's costs."""
    counted = [b for b in doc["backends"] if not b.get("audit")]
    names = {"reference": "reference", "snntorch": "snnTorch", "norse": "Norse", "brian2": "Brian2"}
    who = [names.get(b["name"], b["name"]) for b in counted]
    verdicts = {b["verdict"] for b in counted}
    accs = {b["accuracy"] for b in counted}
    ann = next((p["accuracy"] for p in doc.get("extra_points") or [] if p.get("kind") == "ann"), None)
    c, a = doc["reference"]["costs"], doc["ann_costs"]
    verdict = f"all **{verdicts.pop()}**" if len(verdicts) == 1 else "give " + ", ".join(sorted(verdicts))
    acc = f"{100 * accs.pop():.1f} %" if len(accs) == 1 else "/".join(f"{100 * x:.1f} %" for x in sorted(accs))
    return (f"{', '.join(who[:-1])} and {who[-1]} {verdict} the bit-exact profile with {acc} top-1 on "
            f"{doc['data']['samples']} test digits (the ANN twin: {100 * ann:.1f} %); #W {c['weights']:,}, "
            f"#P {c['values']}, #S {c['spikes']:.1f}, M ≈ {c['memory_bits'] / 1000:.0f} kbit, "
            f"≈ {c['adds'] / 1000:.0f}k additions per sample against {a['muls']:,.0f} MACs for the ANN "
            f"(`results/{DEMO}`, {doc['environment']['platform'].split('-')[0]}, "
            f"{doc['created'][:10]}).\n")


def render_blocks(results: Path = RESULTS) -> dict[str, str]:
    """Every block's Markdown from the committed results (a short note while a result file is missing)."""
    blocks = {}
    if not (results / QUICK).exists():
        note = PENDING.format(name=QUICK)
        blocks.update({"main": note, "quick-detail": note})
    else:
        doc = load(QUICK, results)
        blocks.update({"main": main_block(doc), "quick-detail": detail_block(doc)})
    if (results / MATRIX).exists():
        cases = load(NODE_CASES, results) if (results / NODE_CASES).exists() else None
        blocks["matrix"] = matrix_block(load(MATRIX, results), cases)
    else:
        blocks["matrix"] = (f"No committed result yet: `results/{MATRIX}` is written by the `snnbridge matrix` "
                            "command in results/README.md, then `python -m snnbridge.reproduce.tables`.\n")
    blocks["demo"] = demo_block(load(DEMO, results)) if (results / DEMO).exists() else (
        f"No committed result yet: `results/{DEMO}` is the `report.json` of `make demo`.\n")
    return blocks


def _markers(name: str) -> tuple[str, str]:
    if name == "main":
        return "<!-- results:begin -->", "<!-- results:end -->"
    return f"<!-- results:{name}:begin -->", f"<!-- results:{name}:end -->"


def splice(text: str, name: str, block: str) -> str:
    """``text`` with the block ``name`` replaced by ``block``; ValueError when the markers are missing."""
    begin, end = _markers(name)
    pat = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.S)
    if not pat.search(text):
        raise ValueError(f"markers {begin} … {end} not found")
    return pat.sub(lambda _: f"{begin}\n{block}{end}", text, count=1)


def drift(root: Path = ROOT) -> list[str]:
    """The documents whose blocks differ from the committed results (empty: all in sync)."""
    blocks = render_blocks(root / "results")
    bad = []
    for doc, names in DOCS.items():
        text = (root / doc).read_text()
        for n in names:
            if splice(text, n, blocks[n]) != text:
                bad.append(f"{doc} [{n}]")
    return bad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when a document's tables differ from the results")
    args = ap.parse_args(argv)
    if args.check:
        bad = drift()
        for b in bad:
            print(f"out of date: {b} (run python -m snnbridge.reproduce.tables)", file=sys.stderr)
        return 1 if bad else 0
    blocks = render_blocks()
    for doc, names in DOCS.items():
        path = ROOT / doc
        text = path.read_text()
        for n in names:
            text = splice(text, n, blocks[n])
        path.write_text(text)
        print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
