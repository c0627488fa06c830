"""The report's figures as self-contained ``data:image/png;base64`` URIs.

Drawn by :mod:`snnbridge.drawing` (the same functions :mod:`snnbridge.plot` gives a notebook) on
``matplotlib.figure.Figure`` objects: no pyplot, no ``matplotlib.use``, so writing a report never changes the
caller's matplotlib backend.
"""

from __future__ import annotations

import base64

import numpy as np
import torch

from snnbridge import drawing as plot
from snnbridge.drawing import MISMATCH, PALETTE, pick_neurons  # noqa: F401 - re-exported for older callers


def to_data_uri(fig) -> str:
    """Render a matplotlib figure to a PNG data URI."""
    return "data:image/png;base64," + base64.b64encode(plot.png_bytes(fig)).decode("ascii")


def raster(runs: dict[str, torch.Tensor], reference: str, title: str) -> str:
    """Side-by-side rasters of one node and sample, one panel per run (``bool [T, N]`` each).

    Spikes the reference also emits are dark; spikes only this run emits are red crosses; spikes
    this run misses are red circles.
    """
    return to_data_uri(plot.raster_panels(runs, reference, title))


def membranes(traces: dict[str, torch.Tensor], spikes: dict[str, torch.Tensor], neurons: list[int],
              threshold: np.ndarray | None, title: str) -> str:
    """Membrane traces ``[T, N]`` of a few neurons, one panel per neuron, every run overlaid.

    ``threshold``: flat ``[N]`` (or one value); spikes are circled on the trace.
    """
    return to_data_uri(plot.membrane_panels(traces, spikes, neurons, threshold, title))


def accuracy_vs_adds(points: list[dict]) -> str | None:
    """Scatter of top-1 accuracy against #Add (log x) for every run with both; ``None`` when nothing to plot.

    ``points``: dicts with ``label``, ``adds``, ``accuracy`` (0-1), ``kind`` (``ann``/``snn``).
    """
    fig = plot.accuracy_vs_cost(points, title="accuracy vs. additions (squares: ANN, circles: SNN)")
    return None if fig is None else to_data_uri(fig)
