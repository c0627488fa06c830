"""Drawing on plain arrays: the figures of :mod:`snnbridge.plot` and of the reports, with no snnbridge types.

Rasters and membrane panels of ``[T, N]`` tensors, accuracy against #Add, the palette and a :class:`Figure` that
shows itself in Jupyter.  Figures are ``matplotlib.figure.Figure`` objects made directly, never through
``pyplot``: nothing here selects a backend, registers a figure with pyplot or changes ``rcParams``.  It sits below
every package (it imports none), so the reports (``validation``, ``reproduce``) and the public plotting API
(:mod:`snnbridge.plot`, which takes recordings and results) draw with the same functions.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure as _MplFigure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

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


def _points(x: Any) -> list[dict]:
    if hasattr(x, "all_runs"):  # a ConformanceResult: every run with accuracy and #Add
        pts = []
        for name, b in x.all_runs().items():
            if b.costs is not None and b.costs.adds and b.accuracy is not None:
                pts.append({"label": YARDSTICK_LABEL if name == "yardstick" else name, "adds": b.costs.adds,
                            "accuracy": b.accuracy, "kind": "snn"})
        return pts
    return [dict(p) for p in x]


def accuracy_vs_cost(points: Iterable[dict] | Any, ax: Axes | None = None, title: str | None = None,
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
