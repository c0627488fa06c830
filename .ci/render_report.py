#!/usr/bin/env python3
"""Render an snnbridge HTML report in headless Chromium: screenshot it, fail on console messages or network use.

Usage::

    .venv/bin/python .ci/render_report.py [REPORT_DIR_OR_HTML] [--out build/report-render/screenshot.png]

Without a report it makes one first (a small seeded network on the embedded digits, checked against the
reference, the installed backends and a planted reset divergence, so every section of the page has content).
Checks: the page references nothing outside itself; Chromium logs no console message (the page has no
script, so any message is an error); the screenshot is a real, non-blank page.  Exit 0 on success, 1 on a
failed check; without Chromium it prints ``SKIP`` and exits 0.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:|//)|url\(\s*["']?\s*(?:https?:|//)|@import""", re.I)


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def make_report(out: Path) -> Path:
    """A small but complete report (seeded): reference, available backends, a planted reset divergence."""
    sys.path.insert(0, str(ROOT))
    import torch

    from snnbridge import backends
    from snnbridge.models import Network
    from snnbridge.models.export import to_nir
    from snnbridge.validation import conform
    from snnbridge.validation.report import write_report
    from snnbridge.validation.sources import DataRequest, resolve

    torch.manual_seed(0)
    net = Network(structure="Input-32-10", input_shape=(1, 8, 8), decay=0.25, threshold=0.5)
    with torch.no_grad():
        for mod in net.synapses.values():
            if hasattr(mod, "weight"):
                mod.weight.mul_(3.0)
    data = resolve("digits", DataRequest((1, 8, 8), samples=40, T=12, seed=0))
    avail = []
    for name in ("snntorch", "norse"):
        try:
            backends.get(name)
            avail.append(name)
        except Exception:  # noqa: BLE001 - not installed / not written yet
            pass
    result = conform(to_nir(net), data.x, ["reference", *avail, "reference@reset=subtract"], labels=data.y,
                     model="render-check (random weights)", data=data.description)
    return write_report(result, out).html


def render(html: Path, shot: Path, browser: str, height: int = 7000) -> list[str]:
    """Screenshot ``html``; return the problems found (empty when fine)."""
    problems = []
    text = html.read_text(encoding="utf-8")
    for m in EXTERNAL.finditer(text):
        problems.append(f"page refers outside itself: ...{text[max(0, m.start() - 30): m.end() + 40]}...")
    shot.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="snnbridge-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--hide-scrollbars", "--enable-logging=stderr", "--v=0", f"--window-size=1280,{height}",
               f"--screenshot={shot}", html.resolve().as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return problems + ["chromium did not finish within 120 s"]
    log = proc.stdout + proc.stderr
    for line in log.splitlines():
        if ":CONSOLE" in line:
            problems.append(f"console: {line.split(']', 1)[-1].strip()}")
    if proc.returncode != 0:
        problems.append(f"chromium exited with {proc.returncode}: {log.strip().splitlines()[-1:]}")
    if not shot.exists() or shot.stat().st_size < 5000:
        problems.append(f"no usable screenshot at {shot}")
        return problems
    try:
        from PIL import Image, ImageChops
    except ImportError:
        return problems
    img = Image.open(shot).convert("RGB")
    bg = Image.new("RGB", img.size, img.getpixel((img.width - 1, img.height - 1)))
    box = ImageChops.difference(img, bg).getbbox()
    if box is None:
        problems.append("the screenshot is blank")
    else:
        img.crop((0, 0, img.width, min(img.height, box[3] + 24))).save(shot)
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", nargs="?", help="report folder or report.html (default: make one)")
    ap.add_argument("--out", default=str(ROOT / "build" / "report-render" / "screenshot.png"),
                    help="where to write the screenshot (PNG)")
    args = ap.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print("SKIP: no chromium found (apt-get install -y chromium); the HTML report was not rendered")
        return 0
    if args.report:
        html = Path(args.report)
        html = html / "report.html" if html.is_dir() else html
        if not html.is_file():
            print(f"error: {html} does not exist", file=sys.stderr)
            return 1
    else:
        html = make_report(ROOT / "build" / "report-render" / "report")
    shot = Path(args.out)
    problems = render(html, shot, browser)
    if problems:
        print(f"FAIL: {html} in {Path(browser).name}:")
        for p in problems:
            print(f"  - {p}")
        return 1
    print(f"OK: {html} rendered in {Path(browser).name} without console messages; screenshot {shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
