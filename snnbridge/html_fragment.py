"""Self-contained HTML fragments for Jupyter (``_repr_html_``): the report's stylesheet scoped to ``.snnb``.

Each fragment carries inline, *scoped* CSS (every rule is prefixed with ``.snnb`` so the notebook's own styles are
untouched; no script, no external resource).  The types render themselves next to their definitions
(``Recording``, the conformance results, ``Costs``, the paper report) with :func:`wrap` and :func:`escape`; every
name is escaped because node and backend names come from untrusted ``.nir`` files.  The public collection of the
renderers is :mod:`snnbridge.display`.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

SCOPE = ".snnb"
CSS_PATH = Path(__file__).parent / "validation" / "report" / "templates" / "report.css"
EXTRA_CSS = """
.snnb { font: 13px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #111827; }
.snnb .head { display: flex; align-items: center; gap: 14px; margin: 2px 0 6px; }
.snnb .head .verdict { font-size: 18px; padding: 3px 14px; }
.snnb section { padding: 10px 14px; margin-top: 10px; }
.snnb table { width: auto; }
"""


def escape(x: Any) -> str:
    """``str(x)`` escaped for HTML text and attributes."""
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
