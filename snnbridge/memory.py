"""The memory budget: decided before anything is allocated, one documented number for the whole package.

A small hostile file can declare shapes, delays or datasets that imply gigabytes; snnbridge estimates the memory
a graph, a run, a checkpoint or a file implies from the declared numbers and refuses with
:class:`ResourceLimitError` (naming the numbers) when it exceeds the budget.  The estimators for graphs and runs
are in :mod:`snnbridge.bridge.limits`; this module holds the budget itself (below every package that checks it).

The budget is **2 GiB** by default.  Change it with the environment variable ``SNNBRIDGE_MEMORY_BUDGET``
(``4GiB``, ``512MB``, ``1.5G``, ``3000000000``; ``0`` or ``none`` turns the check off), for the process with
:func:`set_memory_budget`, or for a block with ``with memory_budget("8GiB"): ...``.
"""

from __future__ import annotations

import math
import os
import re
from contextlib import contextmanager
from typing import Iterable, Iterator

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
