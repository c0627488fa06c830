"""Figures for notebooks and reports: rasters, membranes, per-node match scores, divergence, costs, accuracy vs.
cost.

Every function returns a :class:`matplotlib.figure.Figure`, or draws into the ``ax`` you pass and returns
its figure.  Figures are made with ``matplotlib.figure.Figure`` directly, never through ``pyplot``: nothing
here selects a backend (no ``matplotlib.use``), registers a figure with pyplot, or changes ``rcParams``, so a
notebook's inline backend and a script's interactive one are left as they were.  In Jupyter the returned
figure shows inline (it has a PNG repr); in a script, ``fig.savefig("x.png")``.

Conventions: time runs along x in steps (``dt`` is in the recording); neurons are flat indices into the
node's per-sample shape; spike tensors are ``bool [T, B, *shape]`` as in :class:`~snnbridge.bridge.recording.Recording`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure as _MplFigure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from snnbridge.bridge.recording import Recording
    from snnbridge.validation.conformance import ConformanceResult
    from snnbridge.validation.costs import Costs

from snnbridge.drawing import (  # noqa: F401 - the array-level drawing, part of this public API
    MISMATCH,
    PALETTE,
    STYLE,
    YARDSTICK_LABEL,
    Figure,
    _axes,
    _style,
    accuracy_vs_cost,
    draw_membrane,
    draw_raster,
    membrane_panels,
    new_figure,
    pick_neurons,
    png_bytes,
    raster_panels,
)

__all__ = ["Figure", "raster", "membrane", "match_scores", "divergence", "costs", "accuracy_vs_cost", "png_bytes",
           "agreement"]


# --------------------------------------------------------------------------- inputs


def _recording(x: Any) -> Recording:
    """A :class:`Recording` from a Recording, a BackendResult or a ConformanceResult (its yardstick)."""
    from snnbridge.bridge.recording import Recording

    if isinstance(x, Recording):
        return x
    rec = getattr(x, "recording", None)
    if isinstance(rec, Recording):
        return rec
    yard = getattr(x, "yardstick", None)
    if yard is not None and isinstance(getattr(yard, "recording", None), Recording):
        return yard.recording
    raise TypeError(f"expected a Recording, BackendResult or ConformanceResult, got {type(x).__name__}")


def _flat(t: torch.Tensor, sample: int) -> torch.Tensor:
    """``[T, B, *shape]`` → ``[T, N]`` of one sample."""
    if not 0 <= sample < t.shape[1]:
        raise IndexError(f"sample {sample} is out of range (0..{t.shape[1] - 1})")
    return t[:, sample].reshape(t.shape[0], -1)


def _spikes(t: torch.Tensor) -> torch.Tensor:
    return t.bool() if t.dtype == torch.bool else t > 0.5




# --------------------------------------------------------------------------- rasters




def raster(rec: Recording | Any, node: str, sample: int = 0, against: Recording | Any | None = None,
           ax: Axes | None = None, neurons: Iterable[int] | None = None, limit: int = 48) -> _MplFigure:
    """Spike raster of ``node`` in one sample; with ``against``, differences to that run are marked in red.

    Args:
        rec: a :class:`Recording` (or a ``BackendResult``/``ConformanceResult``: its recording / the yardstick).
        node: a spiking node (``bool [T, B, *shape]``; analog outputs count as spikes where > 0.5).
        sample: batch index.
        against: another run of the same graph, e.g. the reference: red × = extra spike, red ○ = missed spike.
        ax: draw here instead of a new figure.
        neurons: flat neuron indices to show (default: differing neurons first, then the most active, ≤ ``limit``).
    """
    r = _recording(rec)
    s = _spikes(_flat(r[node], sample))
    base = None
    if against is not None:
        a = _recording(against)
        base = _spikes(_flat(a[node], sample))
        if base.shape != s.shape:
            raise ValueError(f"node '{node}': shapes differ ({tuple(s.shape)} vs {tuple(base.shape)})")
    idx = np.asarray(list(neurons)) if neurons is not None else pick_neurons(s, [] if base is None else [base], limit)
    fig, ax = _axes(ax, (max(3.5, 0.22 * s.shape[0] + 2), 1.4 + 0.06 * len(idx)))
    who = r.backend + ("" if against is None else f" vs {_recording(against).backend}")
    draw_raster(ax, s, base, idx, f"{node} ({r.node_types.get(node, '?')}), sample {sample}: {who}")
    ax.set_ylabel("neuron" + ("" if len(idx) <= 16 else f" ({len(idx)} shown)"))
    return fig




# --------------------------------------------------------------------------- membranes






def _threshold(graph: Any, node: str) -> np.ndarray | None:
    if graph is None:
        return None
    from snnbridge.bridge.graph import FlatGraph, prepare
    from snnbridge.validation import explain as ex

    if not isinstance(graph, FlatGraph):
        if not hasattr(graph, "nodes"):
            from snnbridge.bridge.io import read_graph

            graph = read_graph(graph)
        graph = prepare(graph)
    th = ex.threshold_of(graph, node)
    return None if th is None else np.broadcast_to(th, graph.out_shapes[node]).reshape(-1)


def membrane(rec: Recording | ConformanceResult | Any, node: str, neurons: Iterable[int] | int = (0,),
             threshold: bool | float | np.ndarray = True, sample: int = 0, graph: Any = None,
             ax: Axes | None = None) -> _MplFigure:
    """Membrane potential (after integration, before reset) of a few neurons of ``node`` over time.

    Args:
        rec: a :class:`Recording`, or a ``ConformanceResult`` to overlay every run that recorded the membrane
            (yardstick and backends).
        node: a neuron node with a recorded membrane ``[T, B, *shape]``.
        neurons: flat indices into the node's shape; one panel each (a single ``ax`` overlays them).
        threshold: ``True`` draws θ when it is known (``rec`` is a ConformanceResult, or ``graph`` is given:
            a NIR graph, FlatGraph or ``.nir`` path); a number or ``[N]`` array draws that; ``False`` none.
        sample: batch index.
    """
    neurons = [int(neurons)] if isinstance(neurons, (int, np.integer)) else [int(n) for n in neurons]
    if not neurons:
        raise ValueError("membrane(): give at least one neuron index")
    traces: dict[str, torch.Tensor] = {}
    spikes: dict[str, torch.Tensor] = {}
    runs = rec.all_runs() if hasattr(rec, "all_runs") else {"": rec}
    for name, run in runs.items():
        r = _recording(run)
        label = YARDSTICK_LABEL if name == "yardstick" else (name or r.backend)
        if node in r.membranes:
            traces[label] = _flat(r.membranes[node], sample)
            if node in r and r[node].dtype == torch.bool:
                spikes[label] = _flat(r[node], sample)
    if not traces:
        raise KeyError(f"no membrane recorded for node '{node}'")
    n_max = next(iter(traces.values())).shape[1]
    bad = [n for n in neurons if not 0 <= n < n_max]
    if bad:
        raise IndexError(f"neuron(s) {bad} out of range for node '{node}' (0..{n_max - 1})")
    th: np.ndarray | None = None
    if threshold is True:
        th = _threshold(graph if graph is not None else getattr(rec, "graph", None), node)
    elif threshold is not False and threshold is not None:
        th = np.asarray(threshold, dtype=float).reshape(-1)

    def th_of(n: int) -> float | None:
        return None if th is None else float(th[n if th.size > 1 else 0])

    if ax is not None:
        for n in neurons:
            draw_membrane(ax, traces, spikes, n, th_of(n))
        ax.set_title(f"{node}, neurons {neurons}, sample {sample}")
        ax.set_ylabel("membrane (pre-reset)")
        return ax.figure
    fig, axes = new_figure(1, len(neurons), (3.4 * len(neurons), 2.6))
    for a, n in zip(axes[0], neurons):
        draw_membrane(a, traces, spikes, n, th_of(n))
    axes[0][0].set_ylabel("membrane (pre-reset)")
    if len(traces) > 1:
        axes[0][-1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(f"membrane of '{node}', sample {sample}", fontsize=10, y=1.02)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- conformance


def match_scores(result: ConformanceResult, ax: Axes | None = None) -> _MplFigure:
    """Every backend's per-node match score (:attr:`~snnbridge.validation.results.NodeResult.match_score`) as a
    heat map, nodes in evaluation order × backends: the report's "per-node agreement".

    Cells: spike-event F1 (spike nodes) or the fraction of values within tolerance (analog nodes), 0-1;
    hatched: not recorded by that backend.  Red text marks the node where a backend's divergence starts.
    """
    ran = [b for b in result.backends.values() if b.status in ("pass", "fail")]
    nodes = list(result.graph.order)
    fig, ax = _axes(ax, (1.6 + 1.25 * max(1, len(ran)), 0.8 + 0.32 * len(nodes)))
    grid = np.full((len(nodes), max(1, len(ran))), np.nan)
    for j, b in enumerate(ran):
        for i, n in enumerate(nodes):
            nr = b.nodes.get(n)
            if nr is not None and nr.compared:
                grid[i, j] = nr.match_score
    import matplotlib

    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="#e5e7eb")
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    for j, b in enumerate(ran):
        for i, n in enumerate(nodes):
            v = grid[i, j]
            origin = n == b.first_divergent_node
            txt = "—" if np.isnan(v) else f"{v:.3f}"
            ax.text(j, i, txt, ha="center", va="center", fontsize=7.5,
                    color=MISMATCH if origin else "#111827", fontweight="bold" if origin else "normal")
    ax.set_xticks(range(len(ran)), [b.name for b in ran] or ["(no backend ran)"], rotation=30, ha="right")
    ax.set_yticks(range(len(nodes)), [f"{n} ({result.graph.type_of(n)})" for n in nodes], fontsize=8)
    ax.set_title(f"agreement with the reference ({'PASS' if result.passed else 'FAIL'})")
    ax.figure.colorbar(im, ax=ax, fraction=0.05, pad=0.02, label="F1 / fraction within tol.")
    return fig


def agreement(result: ConformanceResult, ax: Axes | None = None) -> _MplFigure:
    """Deprecated alias of :func:`match_scores` (removed in 0.3)."""
    import warnings

    warnings.warn("snnbridge.plot.agreement is deprecated; use snnbridge.plot.match_scores", DeprecationWarning,
                  stacklevel=2)
    return match_scores(result, ax)


def divergence(result: ConformanceResult, backend: str, node: str | None = None, sample: int | None = None
               ) -> _MplFigure:
    """Where ``backend`` leaves the reference: the raster of its first divergent node (differences in red)
    next to the membrane of the first diverging neuron, both runs overlaid, θ dashed.

    Without a divergence it shows the output node (and says so).  ``node``/``sample`` choose another place.
    """
    if backend not in result.backends:
        raise KeyError(f"backend '{backend}' is not in the result; ran: {', '.join(result.backends)}")
    b = result.backends[backend]
    if b.recording is None:
        raise ValueError(f"backend '{backend}' has no recording ({b.status}: {b.reason})")
    ref = result.yardstick.recording
    fd = b.first_divergence
    node = node or b.first_divergent_node or result.graph.outputs[0]
    if sample is None:
        sample = fd.sample if fd is not None and node == b.first_divergent_node else 0
    from snnbridge.validation.conformance import _threshold_source

    src = _threshold_source(result.graph, node) or node
    has_mem = src in ref.membranes and src in b.recording.membranes
    fig, axes = new_figure(1, 2 if has_mem else 1, (9.0 if has_mem else 4.8, 3.2))
    s = _spikes(_flat(b.recording[node], sample))
    base = _spikes(_flat(ref[node], sample))
    draw_raster(axes[0][0], s, base, pick_neurons(base, [s], 32), f"{node}, sample {sample}")
    if has_mem:
        s_src, b_src = _spikes(_flat(b.recording[src], sample)), _spikes(_flat(ref[src], sample))
        n = fd.neuron if fd is not None and src == node and fd.sample == sample else \
            int(torch.argmax((s_src != b_src).any(0).double() * 1e6 + b_src.double().sum(0)))
        traces = {YARDSTICK_LABEL: _flat(ref.membranes[src], sample),
                  backend: _flat(b.recording.membranes[src], sample)}
        spk = {k: _flat(r[src], sample) for k, r in ((YARDSTICK_LABEL, ref), (backend, b.recording))
               if r[src].dtype == torch.bool}
        th = _threshold(result.graph, src)
        draw_membrane(axes[0][1], traces, spk, n, None if th is None else float(th[n if th.size > 1 else 0]))
        axes[0][1].set_title(f"membrane of '{src}', neuron {n}")
        axes[0][1].legend(fontsize=7, frameon=False)
    where = (f"first divergence at '{b.first_divergent_node}' step {fd.step}, sample {fd.sample}, neuron {fd.neuron}"
             f": {b.nodes[b.first_divergent_node].explanation.text}" if fd is not None else "no divergence")
    fig.suptitle(f"{backend} vs reference — {where}", fontsize=9.5, y=1.02)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- costs

COST_FIELDS = {"weights": "#W", "values": "#A / #P", "spikes": "#S", "memory_bits": "M (bits)", "adds": "#Add",
               "muls": "#Mul"}


def _cost_rows(results: Any) -> dict[str, dict]:
    """``{label: {field: number}}`` from Costs objects, dicts of them, or a ConformanceResult."""
    from snnbridge.validation.costs import Costs

    if hasattr(results, "all_runs"):  # a ConformanceResult: the analytic ANN, then every run with costs
        out = {"ANN (analytic)": results.ann_costs.to_dict()}
        for name, b in results.all_runs().items():
            if b.costs is not None:
                out[YARDSTICK_LABEL if name == "yardstick" else name] = b.costs.to_dict()
        return out
    if isinstance(results, Costs):
        results = {results.mode.upper(): results}
    if not isinstance(results, Mapping):
        results = {f"{i}: {c.mode}": c for i, c in enumerate(results)}
    return {str(k): (v.to_dict() if isinstance(v, Costs) else dict(v)) for k, v in results.items()}


def costs(results: Mapping[str, Costs] | Sequence[Costs] | Costs | ConformanceResult,
          metrics: Sequence[str] = ("weights", "values", "memory_bits", "adds"), ax: Axes | None = None,
          log: bool = True) -> _MplFigure:
    """Grouped bars of the paper's costs (Eqs. 8-9, per sample) for several models or runs.

    Args:
        results: ``{label: Costs}`` (e.g. the six Table-1 networks), a list of :class:`Costs`, or a
            ``ConformanceResult`` (its analytic ANN and every run).
        metrics: which fields, from ``weights``, ``values`` (#A/#P), ``spikes`` (#S), ``memory_bits``, ``adds``,
            ``muls``; a missing value (an SNN whose spikes are unknown) leaves a gap.
        log: log-scaled y axis (the counts span orders of magnitude).
    """
    rows = _cost_rows(results)
    bad = [m for m in metrics if m not in COST_FIELDS]
    if bad:
        raise ValueError(f"unknown cost metric(s) {bad}; known: {', '.join(COST_FIELDS)}")
    labels = list(rows)
    fig, ax = _axes(ax, (max(5.0, 1.1 * len(labels) * max(1, len(metrics)) / 2.2 + 2), 3.2))
    width = 0.8 / max(1, len(metrics))
    x = np.arange(len(labels))
    for k, m in enumerate(metrics):
        vals = [rows[lb].get(m) for lb in labels]
        ys = [np.nan if v is None else float(v) for v in vals]
        ax.bar(x + (k - (len(metrics) - 1) / 2) * width, ys, width, label=COST_FIELDS[m], color=PALETTE[(k + 1) % 10])
    if log:
        ax.set_yscale("log")
    ax.set_xticks(x, labels, rotation=25 if max(len(lb) for lb in labels or ["x"]) > 8 else 0, ha="right"
                  if max(len(lb) for lb in labels or ["x"]) > 8 else "center", fontsize=8)
    ax.set_ylabel("per sample" + (" (log)" if log else ""))
    ax.set_title("memory and compute cost (Eqs. 8-9)")
    ax.legend(fontsize=7, frameon=False, ncols=min(4, len(metrics)))
    ax.grid(True, axis="y", which="major", alpha=0.25)
    return fig




