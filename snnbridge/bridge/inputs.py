"""Check and convert run-time inputs ``[T, B, *shape]`` for a prepared graph (shared by all backends)."""

from __future__ import annotations

from typing import Mapping, Union

import numpy as np
import torch

from snnbridge.bridge.graph import FlatGraph
from snnbridge.errors import InputError

Inputs = Union[torch.Tensor, np.ndarray, Mapping[str, Union[torch.Tensor, np.ndarray]]]


def is_binary(x: torch.Tensor | np.ndarray) -> bool:
    """Whether ``x`` holds spikes: a ``bool`` tensor/array, or every value exactly 0 or 1 (any shape)."""
    if x.dtype == torch.bool or x.dtype == np.bool_:
        return True
    if isinstance(x, torch.Tensor):
        return bool(((x == 0) | (x == 1)).all())
    return bool(np.all((x == 0) | (x == 1)))


def _all_finite(x: torch.Tensor) -> bool:
    """No NaN/Inf in ``x``: a NaN or Inf anywhere makes the sum NaN or Inf, so a finite sum settles it in one
    cheap reduction; only an overflowing sum needs the elementwise check."""
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def as_input_tensors(fg: FlatGraph, inputs: Inputs, dtype: torch.dtype = torch.float64,
                     device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Validate ``inputs`` against the graph's Input nodes and cast them to ``dtype``.

    A single tensor is accepted when the graph has one Input node.  Raises
    :class:`InputError` naming the input for a missing input, wrong shape,
    non-numeric dtype, NaN/Inf values, or an empty time/batch axis.
    """
    if not isinstance(inputs, Mapping):
        if len(fg.inputs) != 1:
            raise InputError(f"graph has {len(fg.inputs)} inputs ({', '.join(fg.inputs)}); pass a dict by name")
        inputs = {fg.inputs[0]: inputs}
    unknown = set(inputs) - set(fg.inputs)
    if unknown:
        raise InputError(f"unknown input(s) {sorted(unknown)}; graph inputs: {fg.inputs}")
    out = {}
    T = None
    B = None
    for name in fg.inputs:
        if name not in inputs:
            raise InputError(f"input '{name}' is missing")
        x = inputs[name]
        if isinstance(x, np.ndarray):
            if x.dtype.names is not None:
                raise InputError(f"input '{name}': got a structured (event) array; convert events to frames "
                                 "first (snnbridge.data.events_to_frames)")
            if x.dtype.kind not in "biuf":
                raise InputError(f"input '{name}': dtype {x.dtype} is not numeric")
            x = torch.from_numpy(np.ascontiguousarray(x))
        if not isinstance(x, torch.Tensor):
            raise InputError(f"input '{name}': expected a tensor or array, got {type(x).__name__}")
        if x.is_complex() or x.dtype in (torch.complex64, torch.complex128):
            raise InputError(f"input '{name}': dtype {x.dtype} is not real")
        want = fg.out_shapes[name]
        if x.dim() != 2 + len(want) or tuple(x.shape[2:]) != tuple(want):
            raise InputError(f"input '{name}': expected shape [T, B, {', '.join(map(str, want))}], "
                             f"got {list(x.shape)}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise InputError(f"input '{name}': empty time or batch axis (shape {list(x.shape)})")
        if T is not None and (x.shape[0] != T or x.shape[1] != B):
            raise InputError(f"input '{name}': T and B differ from the other inputs")
        T, B = x.shape[0], x.shape[1]
        x = x.to(device=device, dtype=dtype)
        if x.is_floating_point() and not _all_finite(x):
            raise InputError(f"input '{name}': contains NaN or Inf")
        out[name] = x
    return out
