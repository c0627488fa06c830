"""The platform matrix: every graph × every backend (and audit mode) in one table.

The NIR paper ran its graphs on eight platforms by hand; :func:`matrix` regenerates that table with one call::

    result = matrix(["cnn_sinabs.nir", "lif_norse.nir"], backends="all",
                    data=["cnn_sinabs=../shared/data/NMNIST", "random"], samples=10, T=30)
    print(result.markdown()); write_matrix(result, "matrix-report")

Each graph is checked with :func:`~snnbridge.validation.conformance.conform` (the float64 reference is the
yardstick); each row holds the verdict, the accuracy (when the data has labels), the first divergence and
its cause, and the runtime.  Verdicts:

``PASS`` / ``FAIL`` / ``ERROR``
    as in a conformance check (``AUDIT …`` for the simulators' own NIR importers, which never count).
``REFUSED``
    the backend refused the graph by node name (:class:`~snnbridge.errors.UnsupportedNodeError`): a documented
    limitation of that simulator, reported with its reason, not counted as a failure.
``NOT INSTALLED``
    the simulator is missing; the row says ``not installed: pip install …``.

Data per graph (``data``: one spec or a list, tried in order; ``STEM=SPEC`` applies to the graph ``STEM.nir``
only): anything :func:`snnbridge.validation.sources.resolve` understands (``digits``, ``.npz``, an N-MNIST or
MNIST folder), or ``random`` / ``random:P`` — seeded Bernoulli spikes of probability ``P`` (default 0.2) in
the graph's input shape, without labels (for graphs whose dataset is not at hand).  The first spec that fits a
graph's input shape wins; when none fits, :class:`~snnbridge.errors.InputError` names the graph.

:attr:`MatrixResult.exit_code`: 0 when every counted row passes, 1 otherwise.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from snnbridge.errors import InputError, SnnBridgeError
from snnbridge.validation.sources import random_spikes  # noqa: F401 - re-exported: its home was here

SCHEMA_NAME = "snnbridge-matrix-report"
SCHEMA_VERSION = 1
REFUSAL_PREFIX = "compile failed: UnsupportedNodeError:"
"""How :func:`snnbridge.validation.runners.run_spec` words a backend's refusal by node name."""
NOT_INSTALLED = "not installed"
CSS_PATH = Path(__file__).parent / "report" / "templates" / "report.css"


# --------------------------------------------------------------------------- results


@dataclass
class MatrixRow:
    """One graph on one backend (or audit mode)."""

    graph: str
    backend: str
    audit: bool
    status: str
    """``pass``, ``fail``, ``error``, ``refused``, ``unavailable`` or ``not-installed``."""
    dtype: str = "float64"
    accuracy: float | None = None
    prediction_agreement: float | None = None
    nodes_compared: int = 0
    nodes_agreeing: int = 0
    first_divergent_node: str | None = None
    first_divergence: dict | None = None
    cause: str | None = None
    """The classification of the first divergence (``reset``, ``near-threshold``, ``unexplained`` …)."""
    explanation: str | None = None
    reason: str = ""
    runtime_s: float = 0.0

    @property
    def counted(self) -> bool:
        """Whether this row decides the exit code: a non-audit run that passed, failed or crashed."""
        return not self.audit and self.status in ("pass", "fail", "error")

    @property
    def verdict(self) -> str:
        v = {"not-installed": "NOT INSTALLED"}.get(self.status, self.status.upper())
        return f"AUDIT {v}" if self.audit and self.status in ("pass", "fail", "error", "refused") else v

    def details(self) -> str:
        """One line: why it did not run, where it diverges first and why, or that every node agrees."""
        if self.status in ("error", "refused", "unavailable", "not-installed"):
            return self.reason
        if self.first_divergent_node:
            fd = self.first_divergence
            at = f" @ step {fd['step']}, sample {fd['sample']}, neuron {fd['neuron']}" if fd else ""
            why = self.explanation or ""
            why = why if why.startswith(f"{self.cause}:") else f"{self.cause}: {why}"
            return f"{self.first_divergent_node}{at}: {why}"
        return f"all {self.nodes_compared} recorded nodes agree"

    def to_dict(self) -> dict:
        return {"graph": self.graph, "backend": self.backend, "audit": self.audit, "status": self.status,
                "verdict": self.verdict, "counted": self.counted, "dtype": self.dtype, "accuracy": self.accuracy,
                "prediction_agreement": self.prediction_agreement, "nodes_compared": self.nodes_compared,
                "nodes_agreeing": self.nodes_agreeing, "first_divergent_node": self.first_divergent_node,
                "first_divergence": self.first_divergence, "cause": self.cause, "explanation": self.explanation,
                "reason": self.reason, "runtime_s": self.runtime_s, "details": self.details()}


@dataclass
class GraphEntry:
    """One checked graph: where it came from, the data it ran on and the reference's numbers."""

    name: str
    path: str
    data: str
    samples: int
    steps: int
    labels: bool
    reference_accuracy: float | None
    reference_runtime_s: float
    nodes: int
    semantics: dict

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class MatrixResult:
    """Every row of the matrix; :meth:`to_dict` is the JSON report."""

    graphs: list[GraphEntry]
    rows: list[MatrixRow]
    profile: str
    meta: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.status == "pass" for r in self.rows if r.counted)

    @property
    def failed(self) -> list[tuple[str, str]]:
        return [(r.graph, r.backend) for r in self.rows if r.counted and r.status != "pass"]

    @property
    def exit_code(self) -> int:
        """0 when every counted row passes, 1 otherwise."""
        return 0 if self.passed else 1

    def row(self, graph: str, backend: str) -> MatrixRow:
        """The row of ``graph`` (its file stem) on ``backend``; ``KeyError`` if absent."""
        for r in self.rows:
            if r.graph == graph and r.backend == backend:
                return r
        raise KeyError((graph, backend))

    def to_dict(self) -> dict:
        from snnbridge.validation.conformance import _clean

        return _clean({"schema": SCHEMA_NAME, "version": SCHEMA_VERSION, "created": self.meta.get("created"),
                       "passed": self.passed, "exit_code": self.exit_code, "profile": self.profile,
                       "graphs": [g.to_dict() for g in self.graphs], "rows": [r.to_dict() for r in self.rows],
                       "environment": self.meta.get("environment"), "runtime_s": self.meta.get("runtime_s")})

    def summary(self) -> str:
        """Plain text: one line per row."""
        lines = [f"matrix ({self.profile}): {'PASS' if self.passed else 'FAIL'} — {len(self.graphs)} graph(s), "
                 f"{len(self.rows)} row(s)"]
        for r in self.rows:
            acc = "" if r.accuracy is None else f" acc {100 * r.accuracy:5.1f}%"
            lines.append(f"  {r.graph:32s} {r.backend:24s} {r.verdict:16s}{acc} {r.details()[:160]}")
        return "\n".join(lines)

    def markdown(self) -> str:
        return render_markdown(self.to_dict())

    def __repr__(self) -> str:
        return f"MatrixResult({len(self.graphs)} graphs × {len(self.rows)} rows)\n{self.summary()}"


# --------------------------------------------------------------------------- running


def _backend_names(backends: str | Sequence[str]) -> list[str]:
    from snnbridge.backends import names

    known = names()
    raw = backends.split(",") if isinstance(backends, str) else [str(s) for s in backends]
    items = [s.strip() for s in raw]
    items = [s for s in items if s]
    out: list[str] = []
    for s in items:
        for n in (known if s == "all" else [s]):
            if n not in out:
                out.append(n)
    if not out:
        raise SnnBridgeError("no backends to check")
    for n in out:
        if n.partition("@")[0] not in known:
            raise SnnBridgeError(f"unknown backend '{n}'; known: {', '.join(known)}, or 'all'")
    return out


def _data_plan(data: str | Sequence[str], stems: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """``STEM=SPEC`` entries per graph stem, and the specs for every graph (in order)."""
    items = [data] if isinstance(data, str) else list(data)
    per: dict[str, list[str]] = {}
    common: list[str] = []
    for item in items:
        item = str(item).strip()
        stem, eq, spec = item.partition("=")
        if eq and stem in stems and spec:
            per.setdefault(stem, []).append(spec)
        elif eq and stem and not Path(item).exists() and "/" not in stem:
            raise InputError(f"--data '{item}': no graph named '{stem}' (graphs: {', '.join(stems)})")
        elif item:
            common.append(item)
    return per, common


def _resolve_data(stem: str, specs: list[str], input_shape: tuple[int, ...], samples: int, T: int, seed: int):
    from snnbridge.validation.sources import DataRequest, resolve

    errors = []
    for spec in specs:
        try:
            return resolve(spec, DataRequest(input_shape, samples, T, seed))
        except InputError as e:
            errors.append(f"'{spec}': {e}")
    why = "; ".join(errors) if errors else "no --data given"
    raise InputError(f"graph '{stem}' (input {list(input_shape)}): no --data fits it ({why}); add "
                     f"'{stem}=SPEC' or 'random'")


def _row_from(stem: str, b) -> MatrixRow:
    d = b.to_dict()
    status = b.status
    if status == "error" and b.reason.startswith(REFUSAL_PREFIX):
        status = "refused"
    return MatrixRow(stem, b.name, b.audit, status, d["dtype"], d["accuracy"], d["prediction_agreement"],
                     d["nodes_compared"], d["nodes_agreeing"], d["first_divergent_node"], d["first_divergence"],
                     d["classification"], d["explanation"], b.reason.removeprefix(REFUSAL_PREFIX).strip()
                     if status == "refused" else b.reason, b.runtime_s)


def parse_graph_arg(arg: str | Path) -> tuple[Path, dict]:
    """``PATH`` or ``PATH@reset=subtract+dt=1e-3+integration=exact``: the graph file and its own semantics overrides
    (they win over the matrix-wide ``dt``/``reset``/``integration``).  A path that exists as given is never split."""
    text = str(arg)
    base, at, opts = text.rpartition("@")
    if not at or Path(text).exists():
        return Path(text), {}
    from snnbridge.validation.runners import parse_spec

    try:
        spec = parse_spec(f"graph@{opts}")
    except SnnBridgeError as e:  # worded for a backend: name the graph instead
        raise InputError(f"graph '{text}': {str(e).split(': ', 1)[-1]}") from None
    if "dtype" in spec.overrides:
        raise InputError(f"graph '{text}': only reset=, dt= and integration= can follow '@'")
    return Path(base), dict(spec.overrides)


def matrix(graphs: Iterable[str | Path], backends: str | Sequence[str] = "all",
           data: str | Sequence[str] = "digits", samples: int = 20, T: int = 20, seed: int = 0,
           profile: str = "exact", dt: float | None = None, reset: str | None = None,
           integration: str | None = None, batch_size: int | None = None, progress: bool = False,
           tau: float = 5.0, log: Callable[[str], object] | None = None) -> MatrixResult:
    """Check every graph on every backend (``"all"``: every registered one, audit modes included).

    Args:
        graphs: ``.nir`` paths (each named by its file stem in the table; stems must differ), optionally with the
            graph's own semantics after ``@`` (``braille.nir@reset=subtract``, see :func:`parse_graph_arg`).
        backends: ``"all"``, names/specs (``"norse"``, ``"reference@reset=subtract"``) or a comma-separated string.
        data: one data spec or a list tried in order; ``STEM=SPEC`` for one graph (see the module docstring).
        samples: how many samples per graph.
        T: how many steps for rate-coded data.
        seed: the rate coding's seed.
        profile: as for :func:`~snnbridge.validation.conformance.conform`.
        dt: as for :func:`~snnbridge.validation.conformance.conform`.
        reset: as for :func:`~snnbridge.validation.conformance.conform`.
        integration: as for :func:`~snnbridge.validation.conformance.conform`.
        batch_size: as for :func:`~snnbridge.validation.conformance.conform`.
        tau: as for :func:`~snnbridge.validation.conformance.conform`.
        log: optional ``callable(str)`` told which graph runs.

    Raises :class:`InputError` for an unreadable graph, duplicate stems or data that fits no graph.
    """
    from snnbridge.backends import status
    from snnbridge.bridge.graph import prepare
    from snnbridge.bridge.io import read_graph
    from snnbridge.validation.conformance import conform, get_profile
    from snnbridge.validation.runners import parse_spec

    t0 = time.perf_counter()
    get_profile(profile)
    parsed = [parse_graph_arg(g) for g in graphs]
    paths = [p for p, _ in parsed]
    if not paths:
        raise InputError("no graphs to check")
    stems = [p.stem for p in paths]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise InputError(f"two graphs share the name {', '.join(dup)}; rename one (rows are named by file stem)")
    names = _backend_names(backends)
    specs = [parse_spec(n) for n in names]
    st = status()
    missing = {s.name: st.get(s.backend, "") for s in specs if st.get(s.backend, "") != "available"}
    run_specs = [s for s in specs if s.name not in missing]
    per, common = _data_plan(data, stems)

    loaded = []
    given = {"dt": dt, "reset": reset, "integration": integration}
    for (path, own), stem in zip(parsed, stems):  # read every graph and its data before hours of simulation
        graph = read_graph(path)
        sem_kw = {k: own.get(k, v) for k, v in given.items()}
        fg = prepare(graph, **sem_kw)
        if len(fg.inputs) != 1:
            raise InputError(f"{path}: the matrix needs graphs with one Input node, it has {len(fg.inputs)}")
        shape = tuple(int(d) for d in fg.out_shapes[fg.inputs[0]])
        ds = _resolve_data(stem, per.get(stem, []) + common, shape, samples, T, seed)
        loaded.append((path, stem, graph, fg, ds, sem_kw))

    entries: list[GraphEntry] = []
    rows: list[MatrixRow] = []
    for path, stem, graph, fg, ds, sem_kw in loaded:
        if log:
            log(f"{stem}: {len(run_specs)} backend(s) on {ds.description}")
        if run_specs:
            res = conform(graph, ds.x, backends=run_specs, profile=profile, labels=ds.y, **sem_kw, prepared=fg,
                          batch_size=batch_size, progress=progress, tau=tau,
                          model=path.name, data=ds.description, seed=seed)
            ref_acc, ref_rt = res.yardstick.accuracy, res.yardstick.runtime_s
            by_name = {b.name: b for b in res.backends.values()}
        else:
            ref_acc, ref_rt, by_name = None, 0.0, {}
        s = fg.semantics
        entries.append(GraphEntry(stem, str(path), ds.description, int(ds.x.shape[1]), int(ds.x.shape[0]),
                                  ds.y is not None, ref_acc, ref_rt, len(fg.order),
                                  {"dt": s.dt, "reset": s.reset, "integration": s.integration}))
        for spec in specs:
            if spec.name in missing:
                hint = missing[spec.name].removeprefix("unavailable: ")
                rows.append(MatrixRow(stem, spec.name, spec.audit, "not-installed", reason=f"{NOT_INSTALLED}: {hint}"))
            else:
                rows.append(_row_from(stem, by_name[spec.name]))
    meta = {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "environment": _environment(), "runtime_s": time.perf_counter() - t0,
            "samples": samples, "T": T, "seed": seed}
    return MatrixResult(entries, rows, profile, meta)


def _environment() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    vers = {}
    for pkg in ("snnbridge", "torch", "nir", "numpy", "snntorch", "norse", "brian2", "spikingjelly", "rockpool",
                "sinabs", "spyx", "nengo"):
        try:
            vers[pkg] = version(pkg)
        except PackageNotFoundError:
            vers[pkg] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "versions": vers}


# --------------------------------------------------------------------------- rendering


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: dict) -> str:
    """The summary table (one row per graph × backend) as Markdown."""
    lines = [f"## snnbridge matrix: **{'PASS' if doc['passed'] else 'FAIL'}** — {len(doc['graphs'])} graph(s), "
             f"profile `{doc['profile']}`", "",
             "| graph | data | reference accuracy |", "|---|---|---:|"]
    for g in doc["graphs"]:
        lines.append(f"| `{_md(g['name'])}` | {_md(g['data'])}, {g['samples']} samples × T={g['steps']} | "
                     f"{_pct(g['reference_accuracy'])} |")
    lines += ["", "| graph | backend | verdict | accuracy | first divergence / reason | runtime |",
              "|---|---|---|---:|---|---:|"]
    for r in doc["rows"]:
        lines.append(f"| `{_md(r['graph'])}` | `{_md(r['backend'])}` | {r['verdict']} | {_pct(r['accuracy'])} | "
                     f"{_md(r['details'])} | {r['runtime_s']:.2f} s |")
    lines += ["", "PASS/FAIL/ERROR rows decide the exit code; AUDIT rows (the simulators' own NIR importers), "
              "REFUSED rows (a documented limitation, refused by node name) and NOT INSTALLED rows do not.", ""]
    return "\n".join(lines)


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


_CLASS = {"pass": "pass", "fail": "fail", "error": "error", "refused": "unavailable", "unavailable": "unavailable",
          "not-installed": "unavailable"}


def render_html(doc: dict) -> str:
    """A self-contained page (inline CSS, no scripts); every string from a graph or backend is escaped."""
    css = CSS_PATH.read_text(encoding="utf-8")
    passed = doc["passed"]
    graphs = "".join(f"<tr><td class='mono'>{_e(g['name'])}</td><td>{_e(g['data'])}</td>"
                     f"<td class='num'>{g['samples']} × T={g['steps']}</td><td class='num'>{g['nodes']}</td>"
                     f"<td>dt = {g['semantics']['dt']:g} s, reset = {_e(g['semantics']['reset'])}, "
                     f"{_e(g['semantics']['integration'])}</td>"
                     f"<td class='num'>{_pct(g['reference_accuracy'])}</td></tr>" for g in doc["graphs"])
    rows = []
    for r in doc["rows"]:
        cls = _CLASS.get(r["status"], "error")
        audit = " <span class='badge unavailable'>audit</span>" if r["audit"] else ""
        rows.append(f"<tr><td class='mono'>{_e(r['graph'])}</td><td class='mono'>{_e(r['backend'])}</td>"
                    f"<td><span class='badge {cls}'>{_e(r['verdict'])}</span>{audit}</td>"
                    f"<td class='num'>{_pct(r['accuracy'])}</td><td>{_e(r['details'])}</td>"
                    f"<td class='num'>{_e(r['dtype'])}</td><td class='num'>{r['runtime_s']:.2f} s</td></tr>")
    env = doc.get("environment") or {}
    vers = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items() if v)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>snnbridge matrix — {len(doc['graphs'])} graphs</title>
<style>{css}</style></head>
<body><main>
<header class="top"><div>
<h1>Platform matrix — {len(doc['graphs'])} graph(s) × {len({r['backend'] for r in doc['rows']})} backend(s)</h1>
<div class="sub">profile <b>{_e(doc['profile'])}</b> · yardstick: the reference executor in float64 ·
{_e(doc.get('created') or '')}</div>
</div><div class="verdict {'pass' if passed else 'fail'}">{'PASS' if passed else 'FAIL'}</div></header>
<section><h2>Graphs</h2>
<div class="scroll"><table><thead><tr><th>graph</th><th>data</th><th class="num">samples</th><th class="num">nodes</th>
<th>semantics</th><th class="num">reference accuracy</th></tr></thead><tbody>{graphs}</tbody></table></div></section>
<section><h2>Every graph on every backend</h2>
<p class="note">PASS/FAIL/ERROR rows decide the verdict. Audit rows (the simulators' own NIR importers), REFUSED rows
(the simulator cannot express a node, refused by name) and NOT INSTALLED rows are reported only.</p>
<div class="scroll"><table><thead><tr><th>graph</th><th>backend</th><th>verdict</th><th class="num">accuracy</th>
<th>first divergence and cause / reason</th><th class="num">dtype</th><th class="num">runtime</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table></div></section>
<footer><p>Every number of this page is in <code>matrix.json</code> (schema <code>{_e(doc['schema'])}</code>
v{doc['version']}). Semantics: <code>docs/semantics.md</code>.</p>
<p>Python {_e(env.get('python', ''))} on {_e(env.get('platform', ''))}; {_e(vers)}. The matrix took
{doc.get('runtime_s') or 0:.1f} s.</p></footer></main></body></html>
"""


@dataclass
class MatrixPaths:
    """Where the matrix report's files are."""

    directory: Path
    html: Path
    markdown: Path
    json: Path


def write_matrix(result: MatrixResult, out_dir: str | Path, overwrite: bool = False) -> MatrixPaths:
    """Write ``matrix.html``, ``matrix.md`` and ``matrix.json`` into ``out_dir`` (:func:`snnbridge.fileio.write_folder`:
    a new, empty or snnbridge-written folder, or any folder with ``overwrite``; only these files are replaced)."""
    from snnbridge.fileio import check_output_folder, write_folder

    out = check_output_folder(out_dir, overwrite)
    doc = result.to_dict()
    files = {"matrix.html": render_html(doc), "matrix.md": render_markdown(doc),
             "matrix.json": json.dumps(doc, indent=1)}
    write_folder(out, files, "matrix-report", overwrite=overwrite)
    return MatrixPaths(out, out / "matrix.html", out / "matrix.md", out / "matrix.json")


__all__ = ["GraphEntry", "MatrixPaths", "MatrixResult", "MatrixRow", "matrix", "parse_graph_arg", "random_spikes",
           "render_html", "render_markdown", "write_matrix"]
