"""What every library's ``from_native`` shares: the per-sample input shape and dt, checked once, and the final
type-checked graph."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import nir
import numpy as np

from snnbridge.errors import NativeModelError

if TYPE_CHECKING:
    from snnbridge.bridge.graph import FlatGraph


def native_input_shape(input_shape: Sequence[int] | int) -> tuple[int, ...]:
    """``input_shape`` (per sample: no time, no batch axis) as a tuple of positive ints, else one
    :class:`NativeModelError`."""
    try:
        shape = tuple(int(s) for s in np.atleast_1d(np.asarray(input_shape, dtype=np.int64)))
    except (TypeError, ValueError, OverflowError):
        raise NativeModelError(f"input_shape must be a tuple of ints (per sample), got {input_shape!r}") from None
    if not shape or any(s <= 0 for s in shape):
        raise NativeModelError(f"input_shape must be a non-empty tuple of positive ints, got {list(shape)}")
    return shape


def native_dt(dt: float) -> float:
    """``dt`` (seconds) as a positive finite float, else one :class:`NativeModelError`."""
    if isinstance(dt, bool) or not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise NativeModelError(f"dt must be a positive number of seconds, got {dt!r}")
    return float(dt)


def export_chain(backend, graph, dt: float | None, reset: str | None, integration: str | None,
                 dtype) -> FlatGraph:
    """What every library's ``to_native`` starts with: ``graph`` (a ``nir.NIRGraph``, a ``FlatGraph`` or a ``.nir``
    path) prepared by ``backend`` (its refusals name node and field) and checked to be one chain with one Input, one
    Output and no recurrence (else one :class:`NativeModelError`)."""
    from pathlib import Path

    from snnbridge.bridge.io import read_graph

    if isinstance(graph, (str, Path)):
        graph = read_graph(graph)
    fg = backend.prepare(graph, dt, reset, integration, dtype)
    if len(fg.inputs) != 1 or len(fg.outputs) != 1 or fg.is_recurrent:
        raise NativeModelError(f"backend '{backend.name}' to_native needs a chain with one Input and one Output node "
                               "and no recurrence")
    return fg


def native_graph(nodes: dict, edges: list[tuple[str, str]], metadata: dict) -> nir.NIRGraph:
    """The imported ``nir.NIRGraph``, type-checked by nir; one :class:`NativeModelError` when it does not check.

    nir 1.0.8 derives a convolution's types wrongly in two cases: the output of a non-square kernel (it takes the
    kernel's first spatial size for every axis) and the input channels of a grouped one (from the weight, without
    the groups).  Those two fields are set right (:func:`conv_types`) before nir checks the graph.
    """
    for node in nodes.values():
        if type(node).__name__ in ("Conv1d", "Conv2d") and getattr(node, "input_shape", None) is not None:
            node.input_type, node.output_type = conv_types(node)
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=True)
    except Exception as e:  # noqa: BLE001 - nir's type check raises anything
        raise NativeModelError(f"the imported graph does not type-check: {e}") from None


def conv_types(node) -> tuple[dict, dict]:
    """``(input_type, output_type)`` of a NIR ``Conv1d`` / ``Conv2d`` with its ``input_shape``, computed per axis
    from the weight ``[C_out, C_in / groups, *kernel]``, stride, padding (ints or ``"same"``/``"valid"``) and
    dilation (the formula of ``torch.nn.Conv2d``)."""
    w = np.asarray(node.weight)
    spatial = np.atleast_1d(np.asarray(node.input_shape, dtype=np.int64))
    nd = len(spatial)

    def axis(v, i):
        a = np.atleast_1d(np.asarray(v))
        return int(a[i] if a.size > 1 else a[0])

    out = []
    for i in range(nd):
        if isinstance(node.padding, str):
            if node.padding == "same":
                out.append(int(spatial[i]))
                continue
            pad = 0
        else:
            pad = axis(node.padding, i)
        k, d, st = int(w.shape[2 + i]), axis(node.dilation, i), axis(node.stride, i)
        out.append((int(spatial[i]) + 2 * pad - d * (k - 1) - 1) // st + 1)
    groups = int(getattr(node, "groups", 1) or 1)
    return ({"input": np.array([w.shape[1] * groups, *spatial.tolist()])},
            {"output": np.array([w.shape[0], *out])})
