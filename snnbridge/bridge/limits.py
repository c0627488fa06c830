"""Resource limits decided before anything is allocated: what a graph, a run or its inputs imply, checked against
the memory budget of :mod:`snnbridge.memory` (re-exported here).

A small hostile file can declare shapes, delays or datasets that imply gigabytes; snnbridge estimates the
memory a graph, a run or a file implies from the declared numbers and refuses with
:class:`ResourceLimitError` (naming the numbers) when it exceeds the budget.

The budget is **2 GiB** by default.  Change it with the environment variable ``SNNBRIDGE_MEMORY_BUDGET``
(``4GiB``, ``512MB``, ``1.5G``, ``3000000000``; ``0`` or ``none`` turns the check off), for the process with
:func:`set_memory_budget`, or for a block with ``with memory_budget("8GiB"): ...``.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

from snnbridge.memory import (  # noqa: F401 - re-exported: the budget's documented home was this module
    DEFAULT_BUDGET,
    ENV_VAR,
    ResourceLimitError,
    check_bytes,
    check_shape,
    fmt_bytes,
    get_memory_budget,
    memory_budget,
    numel,
    parse_size,
    set_memory_budget,
)


def delay_depth(delay, dt: float) -> int:
    """Ring-buffer depth of a Delay node: ``max(round(delay / dt)) + 1`` (non-finite values count as 1)."""
    import numpy as np

    try:
        d = np.asarray(delay, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return 1
    d = d[np.isfinite(d)]
    if d.size == 0 or not dt or not math.isfinite(dt) or dt <= 0:
        return 1
    return int(round(float(np.max(np.abs(d))) / float(dt))) + 1


def run_bytes(fg, T: int, B: int, itemsize: int = 8, membranes: bool = True,
              record: Iterable[str] | None = None) -> tuple[int, str]:
    """Estimated bytes a run of ``fg`` over ``T`` steps and ``B`` samples keeps, and the largest contributor.

    Counts the inputs, every node's output ``[T, B, *out]`` (all nodes are live at once in the worst case),
    neuron membranes when recorded, and each Delay node's buffer ``depth x B x *shape``.
    """
    from snnbridge.bridge import semantics as sem

    keep = set(fg.order) if record is None else set(record)
    total = 0
    top, top_n = "", -1
    dt = float(getattr(fg.semantics, "dt", 0) or 0)
    for name in fg.order:
        per = numel(fg.out_shapes[name])
        n = T * B * per
        kind = fg.type_of(name)
        if membranes and name in keep and kind in sem.NEURON_TYPES:
            n *= 2
        if kind == "Delay":
            n += delay_depth(getattr(fg.nodes[name], "delay", 0), dt) * B * per
        if n > top_n:
            top, top_n = name, n
        total += n
    for name in fg.inputs:
        total += T * B * numel(fg.out_shapes[name])
    return total * itemsize, top


def check_run(fg, T: int, B: int, itemsize: int = 8, membranes: bool = True, record: Iterable[str] | None = None,
              backend: str = "reference") -> None:
    """Refuse a run whose estimated memory (see :func:`run_bytes`) exceeds the budget, before allocating."""
    need, top = run_bytes(fg, int(T), int(B), itemsize, membranes, record)
    check_bytes(need, f"running the graph on '{backend}' with T={int(T)}, batch={int(B)}",
                f"{itemsize}-byte values; largest: node '{top}'")


def check_run_inputs(fg, inputs, dtype, membranes: bool = True, record: Iterable[str] | None = None,
                     backend: str = "reference") -> None:
    """:func:`check_run` with ``T`` and ``B`` read from raw ``inputs`` (a tensor/array or a dict by input name).

    Inputs without a ``[T, B, ...]`` shape are left to the input checks that follow.
    """
    dims = input_dims(inputs)
    if dims is not None:
        check_run(fg, dims[0], dims[1], itemsize_of(dtype), membranes, record, backend)


def input_dims(inputs) -> tuple[int, int] | None:
    """``(T, B)`` from raw inputs (a tensor/array or a dict of them) without touching their values."""
    first = next(iter(inputs.values()), None) if isinstance(inputs, Mapping) else inputs
    shape = getattr(first, "shape", None)
    if shape is None or len(shape) < 2:
        return None
    try:
        return int(shape[0]), int(shape[1])
    except (TypeError, ValueError):
        return None


def itemsize_of(dtype) -> int:
    """Bytes per element of a torch or numpy dtype (8 when unknown)."""
    size = getattr(dtype, "itemsize", None)
    if isinstance(size, int) and size > 0:
        return size
    try:
        import numpy as np

        return int(np.dtype(dtype).itemsize)
    except TypeError:
        return 8


__all__ = ["DEFAULT_BUDGET", "ENV_VAR", "ResourceLimitError", "parse_size", "get_memory_budget", "set_memory_budget",
           "memory_budget", "fmt_bytes", "check_bytes", "check_shape", "delay_depth", "run_bytes", "check_run",
           "check_run_inputs", "input_dims", "itemsize_of", "numel"]
