"""Read and write ``.nir`` files with one clear error for every way a file can be bad."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import h5py
import nir

from snnbridge.errors import GraphError, NIRFileError


def read_graph(path: str | Path, type_check: bool = False) -> nir.NIRGraph:
    """Read a NIR graph from ``path``.

    ``type_check`` is off by default because files written by other tools
    (e.g. snnTorch) often fail NIR's own type check yet run fine; snnbridge
    checks shapes itself in :func:`snnbridge.bridge.graph.prepare`.
    Raises :class:`NIRFileError` for a missing, non-HDF5, truncated or non-NIR file
    and :class:`GraphError` for an unknown node type.
    """
    path = Path(path)
    if not path.exists():
        raise NIRFileError(f"{path}: no such file")
    if path.is_dir():
        raise NIRFileError(f"{path}: is a directory, not a .nir file")
    if not h5py.is_hdf5(path):
        raise NIRFileError(f"{path}: not an HDF5 file (a .nir file is HDF5)")
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise NIRFileError(f"{path}: HDF5 file has no 'node' group, so it is not a NIR graph")
    except OSError as e:
        raise NIRFileError(f"{path}: cannot open as HDF5 (truncated or corrupt?): {e}") from None
    _raise_node_error(path)
    try:
        graph = nir.read(path, type_check=type_check)
    except Exception as e:  # noqa: BLE001 - nir raises anything from AssertionError to KeyError
        msg = str(e).strip("'\"") or type(e).__name__
        raise NIRFileError(f"{path}: cannot read NIR graph: {type(e).__name__}: {msg}") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NIRFileError(f"{path}: top-level node is a {type(graph).__name__}, not a NIRGraph")
    return graph


def _raise_node_error(path: Path) -> None:
    """Check every node's type and required fields before handing the file to ``nir.read``."""
    try:
        with h5py.File(path, "r") as f:
            bad = _scan(f["node"], "")
    except OSError as e:
        raise NIRFileError(f"{path}: file is truncated or corrupt: {e}") from None
    if bad is not None:
        name, problem = bad
        raise GraphError(f"{problem} (in {path})", node=name or "<graph>")


def _scan(group: h5py.Group, name: str):
    known = {c.__name__ for c in nir.NIRNode.__subclasses__()} | {"NIRGraph"}
    t = group.get("type")
    if t is None:
        return name, "has no 'type' field"
    tname = t[()].decode() if isinstance(t[()], bytes) else str(t[()])
    if tname not in known:
        return name, f"unknown node type '{tname}'"
    from snnbridge.bridge.graph import _REQUIRED

    for field in _REQUIRED.get(tname, ()):
        if field not in group:
            return name, f"{tname} node is missing parameter '{field}'"
    if tname == "NIRGraph" and "nodes" in group:
        for k in group["nodes"]:
            r = _scan(group["nodes"][k], f"{name}.{k}" if name else k)
            if r is not None:
                return r
    return None


def write_graph(path: str | Path, graph: nir.NIRGraph) -> Path:
    """Write ``graph`` atomically (temporary file, then rename): no half-written file on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".nir.tmp", dir=path.parent)
    os.close(fd)
    try:
        nir.write(tmp, graph)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | Path, dt: float | None = None, reset: str | None = None,
         integration: str | None = None):
    """Import a ``.nir`` file into the reference executor (metadata or documented defaults, overridable)."""
    from snnbridge.bridge.executor import ReferenceExecutor

    return ReferenceExecutor(read_graph(path), dt=dt, reset=reset, integration=integration)


__all__ = ["read_graph", "write_graph", "load", "GraphError", "NIRFileError"]
