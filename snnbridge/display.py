"""Rich display for Jupyter: the ``_repr_html_`` bodies of results, recordings, costs and paper reports.

Each fragment is self-contained (inline, *scoped* CSS: every rule is prefixed with ``.snnb`` so the
notebook's own styles are untouched; no script, no external resource) and escapes every name, because
node and backend names come from untrusted ``.nir`` files.  The conformance fragment shows the same
verdict cards, per-node agreement, divergence and cost tables as ``report.html`` (rendered by the same
templates, :mod:`snnbridge.validation.report.render`).

Each renderer lives next to the type it renders (``bridge.recording``, ``validation.report.notebook``,
``reproduce.report``) on the scoped stylesheet of :mod:`snnbridge.html_fragment`; this module collects them.
"""

from __future__ import annotations

from snnbridge.bridge.recording import recording_html
from snnbridge.html_fragment import CSS_PATH, EXTRA_CSS, SCOPE, css, scope_css, wrap
from snnbridge.reproduce.report import paper_report_html
from snnbridge.validation.report.notebook import backend_html, conformance_html, costs_html

__all__ = ["conformance_html", "backend_html", "recording_html", "costs_html", "paper_report_html", "css",
           "scope_css", "wrap", "SCOPE", "CSS_PATH", "EXTRA_CSS"]
