"""The tutorial notebooks in ``docs/notebooks`` run top to bottom in a real Jupyter kernel, show their results
inline (rich HTML displays and PNG figures), and are committed without outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "docs" / "notebooks"
SHARED = ROOT.parent / "shared"
NEEDS_SHARED = {"2_nir_paper_graph_nmnist.ipynb": [SHARED / "nir-graphs" / "cnn_sinabs.nir",
                                                   SHARED / "data" / "NMNIST"]}
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
OUT = ROOT / "build" / "notebooks"  # executed copies, for .ci/render_notebooks.py


def test_there_are_at_least_three_notebooks():
    assert len(ALL) >= 3, ALL


@pytest.mark.parametrize("name", ALL)
def test_committed_notebooks_have_no_outputs(name):
    nb = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, \
                f"{name}: cell {i} holds outputs; strip them (jupyter nbconvert --clear-output --inplace)"


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL)
def test_notebook_runs_and_shows_results(name):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    missing = [str(p) for p in NEEDS_SHARED.get(name, []) if not p.exists()]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    t0 = time.perf_counter()
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    seconds = time.perf_counter() - t0
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    htmls = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert len(pngs) >= 2, f"{name}: {len(pngs)} figures shown inline"
    assert any('<div class="snnb">' in h for h in htmls), f"{name}: no snnbridge rich display"
    for o in outputs:  # no carriage-return progress output in the notebook either
        assert "\r" not in "".join(o.get("text", "")), o
    OUT.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, OUT / name)
    print(f"{name}: {seconds:.1f} s, {len(pngs)} figures, {len(htmls)} HTML displays")
