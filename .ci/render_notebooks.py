#!/usr/bin/env python3
"""Render the executed tutorial notebooks to HTML (nbconvert) and check each in headless Chromium for a figure.

Usage::

    .venv/bin/python .ci/render_notebooks.py [EXECUTED_DIR] [--out build/notebook-render]

``EXECUTED_DIR`` (default ``build/notebooks``) holds the notebooks as ``tests/test_notebooks.py`` executed them.
For each one: ``<name>.html`` (the page a reader sees: inline rich displays and figures) and ``<name>.png``, one
screenshot of that page in which everything but the output figures is hidden (layout kept), so the check is
that Chromium really drew a non-empty figure.  Checks: the HTML embeds at least one PNG figure and an snnbridge
rich display; the screenshot has enough non-background pixels in more than a few colours.  Exit 0 on success,
1 on a failed check; without Chromium it prints ``SKIP`` and exits 0 (without executed notebooks, ``SKIP`` too).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render_report import find_browser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIGURES_ONLY = """<style>
.jp-Cell-inputWrapper, .jp-InputArea, .jp-InputPrompt, .jp-OutputPrompt, .jp-MarkdownCell,
.jp-OutputArea-output:not(:has(img)) { display: none !important; }
body { background: #fff !important; }
</style>"""


def to_html(ipynb: Path) -> str:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(ipynb, as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    return body


def screenshot(html: str, shot: Path, browser: str, height: int = 6000) -> str | None:
    """Screenshot ``html`` (figures only); return a problem or ``None``."""
    with tempfile.TemporaryDirectory(prefix="snnbridge-nb-") as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(html.replace("</head>", FIGURES_ONLY + "</head>", 1), encoding="utf-8")
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp}/profile",
               "--hide-scrollbars", f"--window-size=1280,{height}", f"--screenshot={shot}", page.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return "chromium did not finish within 120 s"
    if proc.returncode != 0 or not shot.exists():
        return f"chromium exited with {proc.returncode}: {(proc.stdout + proc.stderr).strip().splitlines()[-1:]}"
    try:
        from PIL import Image
    except ImportError:
        return None
    img = Image.open(shot).convert("RGB")
    import numpy as np

    px = np.asarray(img.resize((img.width // 4, img.height // 4))).reshape(-1, 3).astype(int)
    ink = px[(px.max(1) - px.min(1) > 40) | (px.max(1) < 200)]  # coloured or dark: drawn, not background
    colours = {tuple(c) for c in (ink // 32).tolist()}
    if len(ink) < 500 or len(colours) < 4:
        return f"no figure drawn in the screenshot ({len(ink)} drawn pixels, {len(colours)} colours)"
    box = Image.new("RGB", img.size, (255, 255, 255))
    from PIL import ImageChops

    bbox = ImageChops.difference(img, box).getbbox()
    if bbox:
        img.crop((0, 0, img.width, min(img.height, bbox[3] + 24))).save(shot)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("executed", nargs="?", default=str(ROOT / "build" / "notebooks"))
    ap.add_argument("--out", default=str(ROOT / "build" / "notebook-render"))
    args = ap.parse_args(argv)
    notebooks = sorted(Path(args.executed).glob("*.ipynb"))
    if not notebooks:
        print(f"SKIP: no executed notebooks in {args.executed} (pytest tests/test_notebooks.py writes them)")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    browser = find_browser()
    failed = False
    for nb in notebooks:
        html = to_html(nb)
        (out / f"{nb.stem}.html").write_text(html, encoding="utf-8")
        problems = []
        if html.count("data:image/png;base64,") < 1:
            problems.append("no inline PNG figure in the rendered HTML")
        if 'class="snnb"' not in html:
            problems.append("no snnbridge rich display in the rendered HTML")
        if browser is None:
            print(f"SKIP: no chromium found (apt-get install -y chromium); {nb.name} rendered to HTML only")
        else:
            p = screenshot(html, out / f"{nb.stem}.png", browser)
            if p:
                problems.append(p)
        if problems:
            failed = True
            print(f"FAIL: {nb.name}:")
            for p in problems:
                print(f"  - {p}")
        elif browser is not None:
            print(f"OK: {nb.name} rendered ({out / (nb.stem + '.html')}); figure drawn in {out / (nb.stem + '.png')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
