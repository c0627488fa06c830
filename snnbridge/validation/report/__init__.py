"""Write a conformance check as a report folder: ``report.html`` (self-contained), ``summary.md``, ``report.json``.

The HTML page needs no network: CSS is inline and every figure is an embedded PNG.  The JSON holds
every number and validates against ``report_schema.json`` (versioned by ``schema``/``version``).
The folder is written to a temporary sibling and renamed into place, so a failed run never leaves a
half-written report.

The package: this module builds the JSON document and writes the folder; :mod:`.render` renders documents
through the jinja2 templates of ``templates/`` (``report.html.j2``, ``summary.md.j2``, the shared
``report.css``; HTML autoescaped, Markdown not); :mod:`.figures` draws the embedded figures; :mod:`.diff`
tells what changed between two reports (``snnbridge diff``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from snnbridge.errors import InputError
from snnbridge.validation import explain as ex
from snnbridge.validation.conformance import YARDSTICK, ConformanceResult
from snnbridge.validation.report.figures import chart_points
from snnbridge.validation.report.figures import draw as draw_figures
from snnbridge.validation.report.render import CSS_PATH, TEMPLATES, pct, render_html, render_markdown, si

SCHEMA_PATH = Path(__file__).parent.parent / "report_schema.json"

__all__ = ["CSS_PATH", "SCHEMA_PATH", "TEMPLATES", "YARDSTICK", "ConformanceResult", "ReportPaths", "chart_points",
           "choose_focus", "draw_figures", "load_report", "pct", "render_html", "render_markdown", "report_dict",
           "schema", "si", "validate", "write_report"]


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
    figs = draw_figures(result, node, sample, extra_points)
    files: dict = {"report.html": render_html(doc, figs), "summary.md": render_markdown(doc),
                   "report.json": json.dumps(doc, indent=1)}
    for name, src in (extra_files or {}).items():
        files[name] = Path(src)
    write_folder(out, files, "conformance-report", overwrite=overwrite)
    return ReportPaths(out, out / "report.html", out / "summary.md", out / "report.json")
