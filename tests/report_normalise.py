"""Mask what legitimately differs between two runs of the same report — timestamps, timings, the machine — so
that everything else can be compared byte for byte.

Used by ``tests/test_report_golden.py`` and, from the shell, to compare two report folders::

    python -m tests.report_normalise OLD_DIR NEW_DIR     # exit 0: identical after masking; 1: a diff is printed

Masked: ISO timestamps; ``runtime_s``/``seconds`` numbers in JSON; run times in the HTML (``0.12 s`` in the
cards and the cost table, "Check took 0.8 s"); the ``environment`` object of ``report.json`` and the footer's
Python/platform/versions line; embedded PNG figures (``data:image/png;base64,...``; matplotlib's bytes depend on
its version).  Nothing else.
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path

_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")
_JSON_TIME = re.compile(r'("(?:runtime_s|seconds)": )(?:-?[0-9][0-9.eE+-]*|null)')
_JSON_ENV = re.compile(r'"environment": \{\n.*?\n \}', re.S)
_PNG = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]*")
_HTML_RUN = re.compile(r"(<span>run</span><span>[^<]*, )\d+\.\d\d s(</span>)")
_HTML_CELL = re.compile(r"(<td class='num'>)\d+\.\d\d s(</td>)")
_HTML_FOOT = re.compile(r"<p>Python .*? Check took\n\d+\.\d s\.</p>", re.S)


def normalise(text: str, kind: str) -> str:
    """``text`` of a report file with the run- and machine-specific parts masked; ``kind``: ``json``, ``html``
    or ``md`` (the file's suffix)."""
    text = _ISO.sub("<timestamp>", text)
    text = _PNG.sub("data:image/png;base64,<png>", text)
    if kind == "json":
        text = _JSON_TIME.sub(r"\1<seconds>", text)
        text = _JSON_ENV.sub('"environment": <environment>', text)
    elif kind == "html":
        text = _HTML_RUN.sub(r"\1<seconds> s\2", text)
        text = _HTML_CELL.sub(r"\1<seconds> s\2", text)
        text = _HTML_FOOT.sub("<p>Python <environment>. Check took\n<seconds> s.</p>", text)
    return text


def compare_folders(old: Path, new: Path, names: tuple[str, ...] = ("report.html", "summary.md", "report.json",
                                                                      "model.nir")) -> list[str]:
    """Unified diffs (empty: identical after masking) of the report files present in ``old``."""
    out = []
    for name in names:
        a, b = old / name, new / name
        if not a.exists():
            continue
        if not b.exists():
            out.append(f"{b}: missing")
            continue
        if name.endswith(".nir"):
            if a.read_bytes() != b.read_bytes():
                out.append(f"{name}: bytes differ")
            continue
        kind = name.rsplit(".", 1)[-1]
        x, y = normalise(a.read_text(encoding="utf-8"), kind), normalise(b.read_text(encoding="utf-8"), kind)
        if x != y:
            out.append("".join(difflib.unified_diff(x.splitlines(True), y.splitlines(True), str(a), str(b), n=1)))
    return out


if __name__ == "__main__":
    diffs = compare_folders(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(diffs)[:20000] if diffs else f"identical after masking: {sys.argv[1]} {sys.argv[2]}")
    sys.exit(1 if diffs else 0)
