"""The report's figures as self-contained ``data:image/png;base64`` URIs (matplotlib, Agg, no network)."""

from __future__ import annotations

import base64
import io

import numpy as np
import torch

PALETTE = ["#1f2937", "#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d"]
MISMATCH = "#dc2626"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "axes.titlesize": 10, "figure.dpi": 110})
    return plt


def to_data_uri(fig) -> str:
    """Render a matplotlib figure to a PNG data URI and close it."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def pick_neurons(ref: torch.Tensor, others: list[torch.Tensor], limit: int = 48) -> np.ndarray:
    """Flat neuron indices to show from ``[T, N]`` rasters: differing neurons first, then the most active."""
    n = ref.shape[1]
    if n <= limit:
        return np.arange(n)
    diff = torch.zeros(n, dtype=torch.bool)
    for o in others:
        diff |= (o != ref).any(0)
    activity = ref.double().sum(0) + sum(o.double().sum(0) for o in others)
    order = sorted(range(n), key=lambda i: (not bool(diff[i]), -float(activity[i]), i))
    return np.sort(np.array(order[:limit]))


def raster(runs: dict[str, torch.Tensor], reference: str, title: str) -> str:
    """Side-by-side rasters of one node and sample, one panel per run (``bool [T, N]`` each).

    Spikes the reference also emits are dark; spikes only this run emits are red crosses; spikes
    this run misses are red circles.
    """
    plt = _plt()
    ref = runs[reference].bool()
    others = [v.bool() for k, v in runs.items() if k != reference]
    idx = pick_neurons(ref, others)
    T = ref.shape[0]
    k = len(runs)
    from matplotlib.ticker import MaxNLocator

    cols = min(k, 5)
    rows = (k + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols, 0.4 + (1.9 + 0.035 * len(idx)) * rows),
                             sharey=True, squeeze=False)
    for ax in axes.ravel()[k:]:
        ax.set_visible(False)
    for ax, (name, r) in zip(axes.ravel(), runs.items()):
        r = r.bool()[:, idx]
        base = ref[:, idx]
        both = (r & base).nonzero().numpy()
        extra = (r & ~base).nonzero().numpy()
        missed = (~r & base).nonzero().numpy()
        ax.scatter(both[:, 0], both[:, 1], marker="|", s=40, color=PALETTE[0], linewidths=1.4)
        if name != reference:
            ax.scatter(extra[:, 0], extra[:, 1], marker="x", s=22, color=MISMATCH, linewidths=1.2)
            ax.scatter(missed[:, 0], missed[:, 1], marker="o", s=22, facecolors="none", edgecolors=MISMATCH,
                       linewidths=1.0)
        n_diff = len(extra) + len(missed)
        ax.set_title(f"{name}\n{int(r.sum())} spikes" + (f", {n_diff} differ" if name != reference else ""),
                     color=MISMATCH if n_diff and name != reference else "black")
        ax.set_xlim(-0.5, T - 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        ax.set_ylim(-0.5, len(idx) - 0.5)
        ax.set_xlabel("step")
        if len(idx) <= 16:
            ax.set_yticks(range(len(idx)), [str(i) for i in idx], fontsize=7)
    for row in axes:
        row[0].set_ylabel("neuron" + ("" if len(idx) <= 16 else f" ({len(idx)} shown)"))
    fig.suptitle(title, fontsize=10, y=1.0)
    fig.tight_layout()
    return to_data_uri(fig)


def membranes(traces: dict[str, torch.Tensor], spikes: dict[str, torch.Tensor], neurons: list[int],
              threshold: np.ndarray | None, title: str) -> str:
    """Membrane traces ``[T, N]`` of a few neurons, one panel per neuron, every run overlaid.

    ``threshold``: flat ``[N]`` (or one value); spikes are circled on the trace.
    """
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    k = len(neurons)
    fig, axes = plt.subplots(1, k, figsize=(3.6 * k, 2.6), squeeze=False)
    th = None if threshold is None else np.asarray(threshold, dtype=float).reshape(-1)
    styles = ["-", "--", ":", "-."]
    for ax, n in zip(axes[0], neurons):
        for i, (name, v) in enumerate(traces.items()):
            y = v[:, n].double().numpy()
            ax.plot(np.arange(len(y)), y, styles[i % 4], color=PALETTE[i % len(PALETTE)], lw=1.4, label=name,
                    marker="o", ms=2.5)
            s = spikes.get(name)
            if s is not None:
                t = s[:, n].bool().nonzero().numpy().ravel()
                ax.scatter(t, y[t], s=28, facecolors="none", edgecolors=PALETTE[i % len(PALETTE)], zorder=3)
        if th is not None:
            val = float(th[n if th.size > 1 else 0])
            ax.axhline(val, color=MISMATCH, lw=0.9, ls="--")
            ax.text(0, val, " θ", color=MISMATCH, va="bottom", fontsize=8)
        ax.set_title(f"neuron {n}")
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    axes[0][0].set_ylabel("membrane (pre-reset)")
    axes[0][-1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(title, fontsize=10, y=1.02)
    fig.tight_layout()
    return to_data_uri(fig)


def accuracy_vs_adds(points: list[dict]) -> str | None:
    """Scatter of top-1 accuracy against #Add (log x) for every run with both; ``None`` when nothing to plot.

    ``points``: dicts with ``label``, ``adds``, ``accuracy`` (0-1), ``kind`` (``ann``/``snn``).
    """
    pts = [p for p in points if p.get("adds") and p.get("accuracy") is not None]
    if not pts:
        return None
    plt = _plt()
    groups: list[dict] = []  # runs at (nearly) the same place share one marker and one label
    for p in pts:
        for g in groups:
            if g["kind"] == p.get("kind") and abs(np.log10(g["adds"] / p["adds"])) < 0.02 and \
                    abs(g["accuracy"] - p["accuracy"]) < 0.005:
                g["labels"].append(p["label"])
                break
        else:
            groups.append({"adds": p["adds"], "accuracy": p["accuracy"], "kind": p.get("kind"), "labels": [p["label"]]})
    fig, ax = plt.subplots(figsize=(5.8, 3.4))
    for i, g in enumerate(groups):
        marker = "s" if g["kind"] == "ann" else "o"
        ax.scatter([g["adds"]], [100 * g["accuracy"]], s=60, marker=marker, color=PALETTE[i % len(PALETTE)],
                   edgecolors="white", zorder=3)
        ax.annotate("\n".join(g["labels"]), (g["adds"], 100 * g["accuracy"]), textcoords="offset points",
                    xytext=(7, -4), fontsize=7.5, va="top")
    ax.set_xscale("log")
    xs = [p["adds"] for p in pts]
    lo, hi = min(xs), max(xs)
    ax.set_xlim(lo / 2.5, hi * 4)
    ys = [100 * p["accuracy"] for p in pts]
    ax.set_ylim(max(0, min(ys) - 8), min(100, max(ys) + 6))
    ax.set_xlabel("#Add per sample (log)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.grid(True, which="major", alpha=0.25)
    ax.set_title("accuracy vs. additions (squares: ANN, circles: SNN)")
    fig.tight_layout()
    return to_data_uri(fig)
