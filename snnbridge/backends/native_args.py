"""What every library's ``from_native`` shares: the per-sample input shape and dt, checked once, and the final
type-checked graph."""

from __future__ import annotations

import math
from typing import Sequence

import nir
import numpy as np

from snnbridge.errors import NativeModelError


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


def native_graph(nodes: dict, edges: list[tuple[str, str]], metadata: dict) -> nir.NIRGraph:
    """The imported ``nir.NIRGraph``, type-checked (except with grouped convolutions, which NIR's check rejects);
    one :class:`NativeModelError` when it does not check."""
    # nir 1.0.8 derives a grouped convolution's input type from its weight (wrong channel count), so such a graph
    # is built without nir's type check; prepare() checks every shape itself
    grouped = any(int(getattr(n, "groups", 1) or 1) != 1 for n in nodes.values())
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=not grouped)
    except Exception as e:  # noqa: BLE001 - nir's type check raises anything
        raise NativeModelError(f"the imported graph does not type-check: {e}") from None
