"""The toolkit's error types: one clear message that names the node or field at fault."""

from __future__ import annotations


class SnnBridgeError(Exception):
    """Base class of every error snnbridge raises on purpose (the CLI turns these into exit code 2)."""


class GraphError(SnnBridgeError):
    """A NIR graph is malformed or unsupported.

    ``node`` and ``field`` name where the problem is, when known.
    """

    def __init__(self, message: str, node: str | None = None, field: str | None = None) -> None:
        where = ""
        if node is not None:
            where = f"node '{node}'"
            if field is not None:
                where += f", field '{field}'"
        elif field is not None:
            where = f"field '{field}'"
        super().__init__(f"{where}: {message}" if where else message)
        self.node = node
        self.field = field


class NIRFileError(SnnBridgeError):
    """A ``.nir`` file cannot be read (missing, not HDF5, truncated, not a NIR graph)."""


class InputError(SnnBridgeError):
    """Run-time input does not fit the graph (shape, dtype, NaN, empty)."""


class NotationError(SnnBridgeError):
    """A structure string such as ``Input-32C3-AP2-10`` cannot be parsed."""


class UnsupportedNodeError(GraphError):
    """A backend cannot run one of the graph's node types."""


class BackendUnavailableError(SnnBridgeError):
    """A backend's simulator package is not installed."""


class NativeModelError(SnnBridgeError):
    """A native simulator model (a torch module, a Brian2 network) cannot be imported: the message names the
    layer's path and class (``layer '3' (snntorch.Alpha)``) and why."""

    def __init__(self, message: str, layer: str | None = None, cls: str | None = None) -> None:
        where = ""
        if layer is not None:
            where = f"layer '{layer}'" + (f" ({cls})" if cls else "")
        super().__init__(f"{where}: {message}" if where else message)
        self.layer = layer
        self.cls = cls
