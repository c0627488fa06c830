"""Render report documents through the jinja2 templates of ``templates/``.

One :class:`jinja2.Environment` serves every report (the conformance report, its Markdown summary, the
reproduction report and the notebook fragments of :mod:`snnbridge.display`).  Templates whose name ends in
``.html.j2`` are autoescaped — every value from a report document (node and backend names come from untrusted
``.nir`` files) is escaped as :func:`html.escape` escapes it, quotes included — and ``.md.j2`` templates are
not.  The stylesheet ``templates/report.css`` is shared by every HTML page.
"""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from snnbridge.validation.results import YARDSTICK

TEMPLATES = Path(__file__).with_name("templates")
CSS_PATH = TEMPLATES / "report.css"


# --------------------------------------------------------------------------- formatting


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
    """``0.1234 → '12.3%'``; ``None → '—'``."""
    return "—" if x is None else f"{100 * x:.{digits}f}%"


def fmt(value: Any, spec: str = "", none: str | None = None) -> str:
    """``format(value, spec)``; ``none`` (when given) stands for ``None``."""
    if value is None and none is not None:
        return none
    return format(value, spec)


def clamp01(x: float) -> float:
    """``x`` clamped to [0, 1] (as the agreement bars draw it)."""
    return max(0.0, min(1.0, x))


def run_label(name: str) -> str:
    """The yardstick's display name, other runs as they are."""
    return "yardstick (f64)" if name == YARDSTICK else name


def neuron_label(fd: dict) -> str:
    """A first divergence's neuron: its flat index, then its index in the node's shape (multi-dimensional)."""
    idx = fd.get("index") or []
    return f"{fd.get('neuron')}" + (f" {tuple(idx)}" if len(idx) > 1 else "")


def shape_text(shape: list[int]) -> str:
    """``[2, 34, 34] → '2×34×34'``; a scalar node's empty shape → ``'1'``."""
    return "×".join(map(str, shape)) or "1"


def versions_text(versions: dict[str, str | None]) -> str:
    """``{"torch": "2.4", "norse": None} → 'torch 2.4'``: the installed packages' versions."""
    return ", ".join(f"{k} {v}" for k, v in versions.items() if v)


def node_entry(b: dict, name: str) -> dict | None:
    """Backend ``b``'s result for node ``name`` (``None`` where it has none)."""
    return next((x for x in b["nodes"] if x["name"] == name), None)


def ann_accuracy(doc: dict) -> float | None:
    """The accuracy of the first ``extra_points`` entry of kind ``ann`` (the trained ANN twin), if any."""
    return next((p["accuracy"] for p in doc.get("extra_points", []) if p.get("kind") == "ann"), None)


def md_cell(x: Any) -> str:
    """A Markdown table cell: ``|`` escaped."""
    return str(x).replace("|", "\\|")


@jinja2.pass_eval_context
def _finalize(ctx: jinja2.nodes.EvalContext, value: Any) -> Any:
    """Escape exactly as :func:`html.escape` (``quote=True``) does in autoescaped templates."""
    if ctx.autoescape and not hasattr(value, "__html__"):
        return Markup(html.escape(str(value), quote=True))
    return value


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The templates' environment: HTML autoescaped, Markdown not; block tags leave no blank lines."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html"), disabled_extensions=("md.j2",),
                                            default_for_string=False, default=False),
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, finalize=_finalize,
        undefined=jinja2.StrictUndefined)
    env.filters.update(si=si, pct=pct, fmt=fmt, md=md_cell)
    env.globals.update(si=si, pct=pct, fmt=fmt, clamp01=clamp01, run_label=run_label, neuron_label=neuron_label,
                       shape_text=shape_text, versions_text=versions_text,
                       node_entry=node_entry, ann_accuracy=ann_accuracy)
    return env


def stylesheet() -> Markup:
    """The shared report stylesheet (``templates/report.css``), as read from the package."""
    return Markup(CSS_PATH.read_text())


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context`` (``css``: the shared stylesheet, unless given)."""
    context.setdefault("css", stylesheet())
    return environment().get_template(template).render(**context)


def section(name: str, *args: Any) -> str:
    """One section of the conformance page (a macro of ``sections.html.j2``: ``summary``, ``agreement``,
    ``divergence``, ``plots``, ``cost``, ``pairwise``, ``details``), e.g. for a notebook fragment."""
    module = environment().get_template("sections.html.j2").module
    return str(getattr(module, name)(*args))


# --------------------------------------------------------------------------- the conformance report


def render_html(doc: dict, figs: dict) -> str:
    """The self-contained page for a report document ``doc`` and figure data URIs ``figs``."""
    return render("report.html.j2", doc=doc, figs=figs)


def render_markdown(doc: dict) -> str:
    """A short Markdown summary for CI logs and PR comments."""
    return render("summary.md.j2", doc=doc)
