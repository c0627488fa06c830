"""Resource limits decided before anything is allocated: one documented memory budget.

A small hostile file can declare shapes, delays or datasets that imply gigabytes; snnbridge estimates the
memory a graph, a run or a file implies from the declared numbers and refuses with
:class:`ResourceLimitError` (naming the numbers) when it exceeds the budget.

The budget is **2 GiB** by default.  Change it with the environment variable ``SNNBRIDGE_MEMORY_BUDGET``
(``4GiB``, ``512MB``, ``1.5G``, ``3000000000``; ``0`` or ``none`` turns the check off), for the process with
:func:`set_memory_budget`, or for a block with ``with memory_budget("8GiB"): ...``.
"""

from __future__ import annotations

import math
import os
import re
from contextlib import contextmanager
from typing import Iterable, Iterator, Mapping

from snnbridge.errors import SnnBridgeError

DEFAULT_BUDGET = 2 * 1024 ** 3
"""The default budget in bytes (2 GiB)."""

ENV_VAR = "SNNBRIDGE_MEMORY_BUDGET"

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000 ** 2, "mb": 1000 ** 2, "g": 1000 ** 3, "gb": 1000 ** 3,
          "t": 1000 ** 4, "tb": 1000 ** 4, "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "tib": 1024 ** 4}
_override: list[float] = []


class ResourceLimitError(SnnBridgeError):
    """What a graph, run or file implies exceeds the memory budget (the message gives the numbers)."""


def parse_size(text: str | int | float) -> float:
    """Bytes from ``4GiB``, ``512MB``, ``1.5G``, ``3e9`` or a number; ``0``/``none``/``off`` give ``inf`` (no limit)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip().lower().replace(" ", "").replace("_", "")
        if s in ("none", "off", "inf", "unlimited"):
            return math.inf
        m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[0-9]+)?)([a-z]*)", s)
        if m is None or m.group(2) not in _UNITS:
            raise ResourceLimitError(f"memory budget '{text}' is not a size such as 2GiB, 512MB or 3000000000")
        value = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(value) or value < 0:
        raise ResourceLimitError(f"memory budget '{text}' must be a size >= 0")
    return math.inf if value == 0 else value


def get_memory_budget() -> float:
    """The budget in bytes now in force (``inf``: no limit): the innermost override, else the env var, else 2 GiB."""
    if _override:
        return _override[-1]
    env = os.environ.get(ENV_VAR)
    if env:
        try:
            return parse_size(env)
        except ResourceLimitError as e:
            raise ResourceLimitError(f"{ENV_VAR}: {e}") from None
    return float(DEFAULT_BUDGET)


def set_memory_budget(size: str | int | float | None) -> None:
    """Set the budget for the process (``None``: back to the env var / default)."""
    _override.clear()
    if size is not None:
        _override.append(parse_size(size))


@contextmanager
def memory_budget(size: str | int | float) -> Iterator[float]:
    """``with memory_budget("8GiB"): ...`` — another budget for a block (nests)."""
    _override.append(parse_size(size))
    try:
        yield _override[-1]
    finally:
        _override.pop()


def fmt_bytes(n: float) -> str:
    """``2.00 GiB`` style."""
    if not math.isfinite(n):
        return "unlimited"
    for unit, f in (("TiB", 1024 ** 4), ("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if n >= f:
            return f"{n / f:.2f} {unit}"
    return f"{int(n)} B"


def check_bytes(need: float, what: str, detail: str = "") -> None:
    """Raise :class:`ResourceLimitError` when ``need`` bytes exceed the budget; ``what`` says what needs them."""
    budget = get_memory_budget()
    if need > budget:
        extra = f" ({detail})" if detail else ""
        raise ResourceLimitError(f"{what} needs about {fmt_bytes(need)}{extra}, over the memory budget of "
                                 f"{fmt_bytes(budget)}; raise it with {ENV_VAR}=<size> (e.g. 8GiB) if this is intended")


def numel(shape: Iterable[int]) -> int:
    """Element count of ``shape`` as an exact Python int (no overflow)."""
    n = 1
    for s in shape:
        n *= int(s)
    return n


def check_shape(shape: Iterable[int], itemsize: int, what: str) -> None:
    """Refuse allocating a tensor of ``shape`` with ``itemsize``-byte elements beyond the budget."""
    shape = tuple(int(s) for s in shape)
    check_bytes(numel(shape) * itemsize, what, f"shape {list(shape)} x {itemsize} B")


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
