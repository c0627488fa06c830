"""The direction of every import between snnbridge's packages (docs/architecture.md), read from the source.

Every ``import snnbridge.X`` / ``from snnbridge.X import`` (module level or inside a function) is an edge from the
importing unit (a package under ``snnbridge/`` or a top-level module) to ``X``.  The layers allow only downward
edges; the few upward ones that remain are listed in ``KNOWN_BACK_EDGES`` with the file that makes them, so that
a new one fails here instead of growing a cycle unnoticed.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "snnbridge"

# lower layers first: a unit may import units of its own layer index or lower ones
LAYERS = {
    "errors": 0, "__version__": 0,
    "progress": 1, "fileio": 1, "memory": 1, "drawing": 1, "html_fragment": 1,
    "bridge": 2,
    "models": 3, "backends": 3, "data": 3,
    "validation": 4,
    "reproduce": 5,
    "display": 6, "plot": 6,
    "cli": 7, "snnbridge": 7,
}

# upward edges that remain, each with the only files allowed to make it (lazy imports; see docs/architecture.md)
KNOWN_BACK_EDGES = {
    ("bridge", "models"): {"bridge/export.py"},  # the deprecated alias of models.export, resolved on first use
}


def _unit(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("").parts
    return "snnbridge" if rel == ("__init__",) else rel[0]


def import_edges() -> dict[tuple[str, str], set[str]]:
    """``{(importer, imported): {files}}`` over every module of the package."""
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for f in ROOT.rglob("*.py"):
        src = _unit(f)
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + ([f"{node.module}.{a.name}" for a in node.names]
                                         if node.module == "snnbridge" else [])
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "snnbridge" and len(parts) > 1 and parts[1] != src:
                    edges[(src, parts[1])].add(str(f.relative_to(ROOT)))
    return edges


def test_every_unit_has_a_layer():
    units = {_unit(f) for f in ROOT.rglob("*.py")}
    assert units <= set(LAYERS), f"give these a layer in LAYERS and docs/architecture.md: {units - set(LAYERS)}"


def test_no_library_module_imports_the_command_line():
    offenders = {files for (src, dst), files in import_edges().items() if dst == "cli" and src != "snnbridge"}
    assert not offenders, offenders


def test_imports_point_down_the_layers():
    bad = []
    for (src, dst), files in import_edges().items():
        if dst not in LAYERS or LAYERS[dst] <= LAYERS[src]:
            continue
        allowed = KNOWN_BACK_EDGES.get((src, dst), set())
        extra = files - allowed
        if extra:
            bad.append(f"{src} -> {dst} in {sorted(extra)}")
    assert not bad, "imports against the layers (docs/architecture.md):\n" + "\n".join(bad)


def test_known_back_edges_still_exist():
    """An entry of KNOWN_BACK_EDGES that no file makes any more is deleted (the list only shrinks)."""
    edges = import_edges()
    stale = [k for k, files in KNOWN_BACK_EDGES.items() if not files & edges.get(k, set())]
    assert not stale, stale


def test_no_two_packages_import_each_other_except_the_known_edges():
    edges = import_edges()
    cycles = sorted({tuple(sorted((a, b))) for (a, b) in edges if (b, a) in edges})
    known = {tuple(sorted(k)) for k in KNOWN_BACK_EDGES}
    assert set(cycles) <= known, set(cycles) - known
