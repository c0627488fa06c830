"""``pip install snnbridge`` with no extras can check a graph on the reference and write a report.

The check runs the real CLI in a fresh interpreter in which every package that only an extra installs cannot
be imported (a ``sys.meta_path`` finder refuses them, as if they were absent), and compares the core
dependencies declared in ``pyproject.toml`` with what that run imported.  A second check builds the wheel that
``pip install .`` installs (no editable checkout: only the files the package data declares) and writes the
report with the CLI from it, so a template or stylesheet missing from the wheel fails here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# top-level modules that only an extra (or the dev tools) installs
OPTIONAL = ("snntorch", "norse", "brian2", "dask", "distributed", "tonic", "torchvision", "spikingjelly", "rockpool",
            "sinabs", "nengo", "jax", "jaxlib", "spyx", "flax", "haiku", "hypothesis", "pytest", "nbclient",
            "nbformat", "nbconvert", "ipykernel", "mkdocs", "cython", "Cython")
# distribution name → top-level module, where they differ
MODULE_OF = {"scikit-learn": "sklearn", "pyyaml": "yaml"}

_RUNNER = textwrap.dedent("""
    import importlib.abc, json, sys
    OPTIONAL = set({optional!r})

    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in OPTIONAL:
                raise ModuleNotFoundError(f"No module named '{{name}}' (not installed without extras)")
            return None

    sys.meta_path.insert(0, Absent())
    sys.argv = ["snnbridge", "conform", {graph!r}, "--backends", "reference", "--samples", "8", "--T", "5",
                "--report", {out!r}]
    from snnbridge.cli import main
    try:
        main()
    except SystemExit as e:
        code = e.code
    else:
        code = 0
    imported = sorted({{m.split(".")[0] for m in sys.modules}})
    print("IMPORTED=" + json.dumps(imported))
    sys.exit(code or 0)
""")


def _write_report(tmp_path: Path, source: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """Run ``snnbridge conform model.nir --backends reference --report out`` with snnbridge from ``source``."""
    from snnbridge.models import Network
    from snnbridge.models.export import export

    graph = tmp_path / "model.nir"
    export(Network(structure="Input-16-10", input_shape=(1, 8, 8)), graph)
    out = tmp_path / "report"
    code = _RUNNER.format(optional=OPTIONAL, graph=str(graph), out=str(out))
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env={"PYTHONPATH": str(source), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg",
                            "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for name in ("report.html", "report.json", "summary.md"):
        assert (out / name).stat().st_size > 200, name
    doc = json.loads((out / "report.json").read_text())
    assert [b["status"] for b in doc["backends"]] == ["pass"], doc["backends"]
    return r, out


def test_core_install_writes_a_report(tmp_path):
    r, _ = _write_report(tmp_path, ROOT)

    imported = set(json.loads(r.stdout.split("IMPORTED=")[-1].splitlines()[0]))
    assert not imported & set(OPTIONAL)
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = {MODULE_OF.get(n, n) for n in (d.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower()
                                              for d in deps)}
    # every third-party package the run imported directly is a declared core dependency (jinja2, jsonschema, ...)
    for module in ("jinja2", "jsonschema", "torch", "numpy", "nir", "h5py", "typer", "rich"):
        if module in imported:
            assert module in declared, f"the core imports {module} but pyproject.toml does not declare it"


def test_installed_wheel_ships_the_templates_and_writes_a_report(tmp_path):
    """The wheel of ``pip install .`` (built from a copy of the sources, no network) holds every report template
    and the stylesheet, and the CLI run from its files alone writes the same report as from the checkout."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "snnbridge", src / "snnbridge", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = subprocess.run([sys.executable, "-c", "from setuptools import build_meta as b; print(b.build_wheel('d'))"],
                           cwd=src, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    wheel = src / "d" / build.stdout.strip().splitlines()[-1]
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = ROOT / "snnbridge" / "validation" / "report" / "templates"
    expected = {f"snnbridge/validation/report/templates/{p.name}" for p in templates.iterdir() if p.is_file()}
    assert {n for n in expected if n.endswith((".j2", ".css"))} and expected <= names, sorted(expected - names)
    assert "snnbridge/validation/report_schema.json" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    run = tmp_path / "run"
    run.mkdir()
    _, out = _write_report(run, site)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<style>:root {" in page and "Conformance report" in page and "<footer>" in page
