"""Read and write ``.nir`` files with one clear error for every way a file can be bad."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import h5py
import nir

from snnbridge.errors import GraphError, NIRFileError

MAX_DEPTH = 32
"""Deepest group nesting a ``.nir`` file may have (nested graphs); deeper structures are refused."""

MAX_OBJECTS = 200_000
"""Most groups and datasets a ``.nir`` file may hold."""

_H5_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError, AttributeError, UnicodeError)


def _msg(e: BaseException) -> str:
    text = str(e).strip("'\"").splitlines()[0] if str(e) else type(e).__name__
    return text[:300]


def read_graph(path: str | Path, type_check: bool = False) -> nir.NIRGraph:
    """Read a NIR graph from ``path``.

    ``type_check`` is off by default because files written by other tools
    (e.g. snnTorch) often fail NIR's own type check yet run fine; snnbridge
    checks shapes itself in :func:`snnbridge.bridge.graph.prepare`.
    Raises :class:`NIRFileError` for a missing, non-HDF5, truncated or non-NIR file
    and :class:`GraphError` for an unknown node type.
    """
    path = check_regular_file(path)
    if not h5py.is_hdf5(path):
        raise NIRFileError(f"{path}: not an HDF5 file (a .nir file is HDF5)")
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise NIRFileError(f"{path}: HDF5 file has no 'node' group, so it is not a NIR graph")
            declared = check_hdf5_structure(f, path)
    except _H5_ERRORS as e:  # h5py reports corrupt headers as KeyError, ValueError, RuntimeError, ...
        raise NIRFileError(f"{path}: cannot open as HDF5 (truncated or corrupt?): {_msg(e)}") from None
    # HDF5 itself may allocate what a corrupt file says (e.g. a variable-length string whose heap reference points
    # at garbage): while it parses, the process may grow by what the declared datasets need and no more
    with allocation_cap(2 * declared + READ_SLACK):
        _raise_node_error(path)
        try:
            graph = nir.read(path, type_check=type_check)
        except Exception as e:  # noqa: BLE001 - nir raises anything from AssertionError to KeyError
            msg = str(e).strip("'\"") or type(e).__name__
            if isinstance(e, MemoryError) or "memory" in msg.lower() or "allocat" in msg.lower():
                msg += " (refused to allocate more than the file's declared datasets need: corrupt?)"
            raise NIRFileError(f"{path}: cannot read NIR graph: {type(e).__name__}: {msg}") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NIRFileError(f"{path}: top-level node is a {type(graph).__name__}, not a NIRGraph")
    return graph


def check_regular_file(path: str | Path, what: str = "a .nir file") -> Path:
    """Refuse a missing path, a folder, a FIFO, a device or a socket before opening it (a FIFO would hang)."""
    from snnbridge.fileio import check_input_file

    return check_input_file(path, what, NIRFileError)


READ_SLACK = 256 * 1024 ** 2
"""Bytes the process may grow by while HDF5 parses a file, beyond what its declared datasets need."""


@contextlib.contextmanager
def allocation_cap(extra_bytes: float) -> Iterator[None]:
    """Cap the process's data segment (Linux ``RLIMIT_DATA``) at its current size plus ``extra_bytes`` for the
    duration: a corrupt file cannot make the HDF5 library allocate gigabytes (the allocation fails, the read
    raises).  A no-op where the limit or ``/proc/self/status`` is not available."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        vm_data = next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines()
                       if line.startswith("VmData:"))
    except (ImportError, OSError, ValueError, StopIteration):
        yield
        return
    limit = int(vm_data + extra_bytes)
    if soft != resource.RLIM_INFINITY and soft < limit:
        limit = soft
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    except (ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


READ_COPIES = 3
"""Float64-sized copies of a parameter that reading and preparing a graph holds at once (see check_hdf5_structure)."""


def check_hdf5_structure(f: h5py.File, path: str | Path) -> int:
    """Refuse what could read outside the file, loop, or inflate: before any dataset is read.

    Soft and external links, external or virtual datasets, group nesting deeper than :data:`MAX_DEPTH`, hard-link
    cycles, more than :data:`MAX_OBJECTS` objects, and datasets whose declared size exceeds the memory budget,
    alone or together.  The size counted is what holding the parameter costs, not its bytes in the file: a
    dataset with no storage (a fill value), or a compressed one, reads as its full declared shape, and every
    parameter is then held as read, as float64 and as a torch tensor (:data:`READ_COPIES` float64-sized copies).
    Returns the bytes counted.
    """
    from snnbridge.bridge import limits

    total = 0
    count = 0
    stack: list[tuple[h5py.Group, str, tuple[int, ...]]] = [(f, "", ())]
    while stack:
        group, where, ancestors = stack.pop()
        addr = h5py.h5o.get_info(group.id).addr
        if addr in ancestors:
            raise NIRFileError(f"{path}: HDF5 group '{where or '/'}' contains itself (a hard-link cycle)")
        if len(ancestors) > MAX_DEPTH:
            raise NIRFileError(f"{path}: HDF5 groups nested deeper than {MAX_DEPTH} levels at '{where}'")
        for key in group.keys():
            name = f"{where}/{key}"
            node_field = _node_field(name)
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.SoftLink):
                raise NIRFileError(f"{path}: {node_field} is an HDF5 soft link (to '{link.path}'); refused")
            if isinstance(link, h5py.ExternalLink):
                raise NIRFileError(f"{path}: {node_field} is an HDF5 external link (to '{link.filename}:{link.path}'); "
                                   "a .nir file must not read other files")
            if not isinstance(link, h5py.HardLink):
                raise NIRFileError(f"{path}: {node_field} is an unsupported HDF5 link type")
            count += 1
            if count > MAX_OBJECTS:
                raise NIRFileError(f"{path}: more than {MAX_OBJECTS:,} HDF5 objects; refused")
            obj = group[key]
            if isinstance(obj, h5py.Group):
                stack.append((obj, name, ancestors + (addr,)))
                continue
            if not isinstance(obj, h5py.Dataset):
                raise NIRFileError(f"{path}: {node_field} is neither a group nor a dataset")
            if obj.external:
                raise NIRFileError(f"{path}: {node_field} stores its data in an external file; refused")
            if obj.is_virtual:
                raise NIRFileError(f"{path}: {node_field} is a virtual dataset (reads other files); refused")
            shape = obj.shape or ()
            nbytes = limits.numel(shape) * max(int(obj.dtype.itemsize), 8) * READ_COPIES
            limits.check_bytes(nbytes, f"{path}: {node_field}", f"declared shape {list(shape)}, dtype {obj.dtype}")
            total += nbytes
    limits.check_bytes(total, f"{path}: reading all datasets", "their declared sizes together")
    return total


def _node_field(name: str) -> str:
    """``node 'a.b', field 'weight'`` for an HDF5 path such as ``/node/nodes/a/nodes/b/weight``."""
    parts = [p for p in name.split("/") if p]
    if parts[:1] != ["node"]:
        return f"HDF5 object '{name}'"
    nodes, rest = [], parts[1:]
    while len(rest) >= 2 and rest[0] == "nodes":
        nodes.append(rest[1])
        rest = rest[2:]
    where = f"node '{'.'.join(nodes)}'" if nodes else "the graph"
    return where + (f", field '{'/'.join(rest)}'" if rest else "")


def _raise_node_error(path: Path) -> None:
    """Check every node's type and required fields before handing the file to ``nir.read``."""
    try:
        with h5py.File(path, "r") as f:
            bad = _scan(f["node"], "")
    except _H5_ERRORS as e:
        raise NIRFileError(f"{path}: file is truncated or corrupt: {_msg(e)}") from None
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
    """Write ``graph`` atomically (temporary file, then rename): no half-written file on failure or interrupt."""
    from snnbridge.fileio import atomic_file

    path = Path(path)
    with atomic_file(path, suffix=".nir.tmp") as tmp:
        nir.write(tmp, graph)
    return path


__all__ = ["read_graph", "write_graph", "GraphError", "NIRFileError"]
