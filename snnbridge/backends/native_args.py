"""The two arguments every library's ``from_native`` shares, checked once: the per-sample input shape and dt."""

from __future__ import annotations

import math
from typing import Sequence

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
