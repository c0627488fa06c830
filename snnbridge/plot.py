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

import io
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure as _MplFigure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from snnbridge.bridge.recording import Recording
    from snnbridge.validation.conformance import ConformanceResult
    from snnbridge.validation.costs import Costs

__all__ = ["Figure", "raster", "membrane", "match_scores", "divergence", "costs", "accuracy_vs_cost", "png_bytes",
           "agreement"]

PALETTE = ["#1f2937", "#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#dc2626",
           "#a16207"]
MISMATCH = "#dc2626"
YARDSTICK_LABEL = "yardstick (f64)"
STYLE = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 10}


class Figure(_MplFigure):
    """A matplotlib ``Figure`` that also renders itself as PNG in Jupyter (``_repr_png_``), with or without
    ``%matplotlib inline``.  Use it like any figure: ``fig.savefig(...)``, ``fig.axes``."""

    def _repr_png_(self) -> bytes:
        return png_bytes(self)


def png_bytes(fig: _MplFigure, dpi: int = 110) -> bytes:
    """Render ``fig`` to PNG bytes (Agg canvas of the figure itself; no pyplot, no backend switch)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=dpi)
    return buf.getvalue()


def _style(ax: Axes) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


def new_figure(rows: int = 1, cols: int = 1, figsize: tuple[float, float] = (5.0, 3.0), **kw: Any) -> tuple:
    """A fresh :class:`Figure` with a ``[rows, cols]`` array of axes (``squeeze=False``)."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=figsize)
        axes = fig.subplots(rows, cols, squeeze=False, **kw)
    for ax in axes.ravel():
        _style(ax)
        ax.title.set_fontsize(10)
    return fig, axes


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[_MplFigure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, axes = new_figure(1, 1, figsize)
    return fig, axes[0, 0]


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


def pick_neurons(ref: torch.Tensor, others: Sequence[torch.Tensor] = (), limit: int = 48) -> np.ndarray:
    """Flat neuron indices to show from ``[T, N]`` rasters: differing neurons first, then the most active."""
    n = ref.shape[1]
    if n <= limit:
        return np.arange(n)
    diff = torch.zeros(n, dtype=torch.bool)
    for o in others:
        diff |= (o != ref).any(0)
    activity = ref.double().sum(0) + sum((o.double().sum(0) for o in others), torch.zeros(n, dtype=torch.float64))
    order = sorted(range(n), key=lambda i: (not bool(diff[i]), -float(activity[i]), i))
    return np.sort(np.array(order[:limit]))


# --------------------------------------------------------------------------- rasters


def draw_raster(ax: Axes, spikes: torch.Tensor, base: torch.Tensor | None, idx: np.ndarray, title: str) -> int:
    """Draw ``bool [T, N]`` ``spikes`` of the neurons ``idx`` on ``ax``; return how many spikes differ from ``base``.

    Spikes ``base`` also has are dark ticks; spikes only ``spikes`` has are red crosses; spikes ``base``
    has and ``spikes`` misses are red circles.
    """
    from matplotlib.ticker import MaxNLocator

    r = spikes.bool()[:, idx]
    b = r if base is None else base.bool()[:, idx]
    both = (r & b).nonzero().numpy()
    extra = (r & ~b).nonzero().numpy()
    missed = (~r & b).nonzero().numpy()
    ax.scatter(both[:, 0], both[:, 1], marker="|", s=40, color=PALETTE[0], linewidths=1.4)
    if base is not None:
        ax.scatter(extra[:, 0], extra[:, 1], marker="x", s=22, color=MISMATCH, linewidths=1.2)
        ax.scatter(missed[:, 0], missed[:, 1], marker="o", s=22, facecolors="none", edgecolors=MISMATCH,
                   linewidths=1.0)
    n_diff = len(extra) + len(missed)
    ax.set_title(f"{title}\n{int(r.sum())} spikes" + (f", {n_diff} differ" if base is not None else ""),
                 color=MISMATCH if n_diff else "black")
    ax.set_xlim(-0.5, r.shape[0] - 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    ax.set_ylim(-0.5, len(idx) - 0.5)
    ax.set_xlabel("step")
    if len(idx) <= 16:
        ax.set_yticks(range(len(idx)), [str(i) for i in idx], fontsize=7)
    return n_diff


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


def raster_panels(runs: Mapping[str, torch.Tensor], reference: str, title: str) -> _MplFigure:
    """Side-by-side rasters of one node and sample, one panel per run (``bool [T, N]`` each), compared with
    ``runs[reference]`` (the report's figure)."""
    ref = runs[reference].bool()
    others = [v.bool() for k, v in runs.items() if k != reference]
    idx = pick_neurons(ref, others)
    k = len(runs)
    cols = min(k, 5)
    rows = (k + cols - 1) // cols
    fig, axes = new_figure(rows, cols, (2.5 * cols, 0.4 + (1.9 + 0.035 * len(idx)) * rows), sharey=True)
    for ax in axes.ravel()[k:]:
        ax.set_visible(False)
    for ax, (name, r) in zip(axes.ravel(), runs.items()):
        draw_raster(ax, r, None if name == reference else ref, idx, name)
    for row in axes:
        row[0].set_ylabel("neuron" + ("" if len(idx) <= 16 else f" ({len(idx)} shown)"))
    fig.suptitle(title, fontsize=10, y=1.0)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- membranes


def draw_membrane(ax: Axes, traces: Mapping[str, torch.Tensor], spikes: Mapping[str, torch.Tensor], n: int,
                  threshold: float | None) -> None:
    """Membrane of flat neuron ``n`` from every run's ``[T, N]`` trace; spikes circled; ``threshold`` dashed."""
    from matplotlib.ticker import MaxNLocator

    styles = ["-", "--", ":", "-."]
    for i, (name, v) in enumerate(traces.items()):
        y = v[:, n].double().numpy()
        ax.plot(np.arange(len(y)), y, styles[i % 4], color=PALETTE[i % len(PALETTE)], lw=1.4, label=name,
                marker="o", ms=2.5)
        s = spikes.get(name)
        if s is not None:
            t = s[:, n].bool().nonzero().numpy().ravel()
            ax.scatter(t, y[t], s=28, facecolors="none", edgecolors=PALETTE[i % len(PALETTE)], zorder=3)
    if threshold is not None:
        ax.axhline(threshold, color=MISMATCH, lw=0.9, ls="--")
        ax.text(0, threshold, " θ", color=MISMATCH, va="bottom", fontsize=8)
    ax.set_title(f"neuron {n}")
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))


def membrane_panels(traces: Mapping[str, torch.Tensor], spikes: Mapping[str, torch.Tensor], neurons: Sequence[int],
                    threshold: np.ndarray | float | None, title: str) -> _MplFigure:
    """Membrane traces ``[T, N]`` of a few neurons, one panel per neuron, every run overlaid (the report's figure).

    ``threshold``: flat ``[N]`` or one value.
    """
    k = len(neurons)
    fig, axes = new_figure(1, k, (3.6 * k, 2.6))
    th = None if threshold is None else np.asarray(threshold, dtype=float).reshape(-1)
    for ax, n in zip(axes[0], neurons):
        draw_membrane(ax, traces, spikes, n, None if th is None else float(th[n if th.size > 1 else 0]))
    axes[0][0].set_ylabel("membrane (pre-reset)")
    axes[0][-1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(title, fontsize=10, y=1.02)
    fig.tight_layout()
    return fig


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


def _points(x: Any) -> list[dict]:
    if hasattr(x, "all_runs"):  # a ConformanceResult: every run with accuracy and #Add
        pts = []
        for name, b in x.all_runs().items():
            if b.costs is not None and b.costs.adds and b.accuracy is not None:
                pts.append({"label": YARDSTICK_LABEL if name == "yardstick" else name, "adds": b.costs.adds,
                            "accuracy": b.accuracy, "kind": "snn"})
        return pts
    return [dict(p) for p in x]


def accuracy_vs_cost(points: Iterable[dict] | ConformanceResult, ax: Axes | None = None, title: str | None = None,
                     extra: Iterable[dict] = ()) -> _MplFigure | None:
    """Top-1 accuracy against #Add per sample (log x), the trade-off of the paper's Fig. 13.

    Args:
        points: dicts with ``label``, ``adds`` (#Add per sample), ``accuracy`` (0-1), optional ``kind``
            (``"ann"``: square marker, else circle) and ``series`` (points of one series are joined by a line,
            e.g. one threshold over several T); or a ``ConformanceResult`` (every run with labels and costs).
        extra: more points (e.g. a trained ANN).

    Returns ``None`` when no point has both numbers.
    """
    pts = [p for p in [*_points(points), *map(dict, extra)] if p.get("adds") and p.get("accuracy") is not None]
    if not pts:
        return None
    fig, ax = _axes(ax, (5.8, 3.4))
    series: dict[str, list[dict]] = {}
    for p in pts:
        if p.get("series") is not None:
            series.setdefault(str(p["series"]), []).append(p)
    for k, (name, sel) in enumerate(series.items()):
        sel = sorted(sel, key=lambda p: p["adds"])
        ax.plot([p["adds"] for p in sel], [100 * p["accuracy"] for p in sel], "-o", ms=4, lw=1.2,
                color=PALETTE[(k + 1) % 10], label=name)
        for p in sel:
            ax.annotate(str(p.get("label", "")), (p["adds"], 100 * p["accuracy"]), fontsize=6.5, xytext=(3, 2),
                        textcoords="offset points")
    groups: list[dict] = []  # single points at (nearly) the same place share one marker and one label
    for p in pts:
        if p.get("series") is not None:
            continue
        for g in groups:
            if g["kind"] == p.get("kind") and abs(np.log10(g["adds"] / p["adds"])) < 0.02 and \
                    abs(g["accuracy"] - p["accuracy"]) < 0.005:
                g["labels"].append(str(p.get("label", "")))
                break
        else:
            groups.append({"adds": p["adds"], "accuracy": p["accuracy"], "kind": p.get("kind"),
                           "labels": [str(p.get("label", ""))]})
    for i, g in enumerate(groups):
        ax.scatter([g["adds"]], [100 * g["accuracy"]], s=60, marker="s" if g["kind"] == "ann" else "o",
                   color=PALETTE[i % len(PALETTE)], edgecolors="white", zorder=3)
        ax.annotate("\n".join(g["labels"]), (g["adds"], 100 * g["accuracy"]), textcoords="offset points",
                    xytext=(7, -4), fontsize=7.5, va="top")
    ax.set_xscale("log")
    xs = [p["adds"] for p in pts]
    ax.set_xlim(min(xs) / 2.5, max(xs) * 4)
    ys = [100 * p["accuracy"] for p in pts]
    ax.set_ylim(max(0, min(ys) - 8), min(100, max(ys) + 6))
    ax.set_xlabel("#Add per sample (log)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.grid(True, which="major", alpha=0.25)
    if series:
        ax.legend(fontsize=7, frameon=False)
    ax.set_title(title or ("accuracy vs. additions" + (" (squares: ANN, circles: SNN)" if groups else "")))
    return fig
