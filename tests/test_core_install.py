"""``pip install snnbridge`` with no extras can check a graph on the reference and write a report.

The check runs the real CLI in a fresh interpreter in which every package that only an extra installs cannot
be imported (a ``sys.meta_path`` finder refuses them, as if they were absent), and compares the core
dependencies declared in ``pyproject.toml`` with what that run imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
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


def test_core_install_writes_a_report(tmp_path):
    from snnbridge.models import Network
    from snnbridge.models.export import export

    graph = tmp_path / "model.nir"
    export(Network(structure="Input-16-10", input_shape=(1, 8, 8)), graph)
    out = tmp_path / "report"
    code = _RUNNER.format(optional=OPTIONAL, graph=str(graph), out=str(out))
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg",
                            "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for name in ("report.html", "report.json", "summary.md"):
        assert (out / name).stat().st_size > 200, name
    doc = json.loads((out / "report.json").read_text())
    assert [b["status"] for b in doc["backends"]] == ["pass"], doc["backends"]

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
