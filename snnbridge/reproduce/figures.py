"""The report's figures: Fig. 8b MAE vs T, Fig. 10 training curves, Fig. 12 t-SNE, Fig. 13 accuracy/cost
trade-off.  Each returns PNG bytes (or ``None`` when there is nothing to plot).

Drawn with :mod:`snnbridge.drawing` (beneath :mod:`snnbridge.plot`) on ``matplotlib.figure.Figure`` objects
(no pyplot, no ``matplotlib.use``):
writing a report leaves the caller's matplotlib backend as it was."""

from __future__ import annotations

from snnbridge import drawing as plot
from snnbridge.drawing import PALETTE


class _Fig:
    """``plt.subplots``-shaped access to a pyplot-free figure: ``_Fig.subplots(rows, cols, figsize=...)``."""

    @staticmethod
    def subplots(rows: int = 1, cols: int = 1, figsize: tuple[float, float] = (4.2, 3), squeeze: bool = True):
        fig, axes = plot.new_figure(rows, cols, figsize)
        return fig, (axes if not squeeze else axes[0, 0] if axes.size == 1 else axes.ravel())


def _png(fig) -> bytes:
    return plot.png_bytes(fig, dpi=100)


def fig8_mae(mae: dict[str, dict[str, list[dict]]]) -> bytes | None:
    """``{workload: {encoder: [{"T", "mae_mean", "mae_std"}]}}`` → MAE vs T with ±std bands."""
    if not mae:
        return None
    fig, ax = _Fig.subplots(figsize=(4.2, 3))
    k = 0
    for wl, per_enc in mae.items():
        for enc, rows in per_enc.items():
            T = [r["T"] for r in rows]
            m = [r["mae_mean"] for r in rows]
            s = [r["mae_std"] for r in rows]
            ax.errorbar(T, m, yerr=s, marker="o", ms=3, capsize=2, color=PALETTE[k % 10], label=f"{wl} / {enc}")
            k += 1
    ax.set_xscale("log")
    ax.set_xlabel("time window T (steps)")
    ax.set_ylabel("MAE(pixel, count/T)")
    ax.set_title("Fig. 8b: sampling precision loss")
    ax.legend(fontsize=7)
    return _png(fig)


def fig10_curves(curves: list[dict]) -> bytes | None:
    """``[{"title", "series": {label: [acc per epoch]}}]`` → one panel per workload/network."""
    if not curves:
        return None
    n = len(curves)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = _Fig.subplots(rows, cols, figsize=(3.3 * cols, 2.5 * rows), squeeze=False)
    for ax, c in zip(axes.flat, curves):
        for k, (label, ys) in enumerate(c["series"].items()):
            ax.plot(range(1, len(ys) + 1), [100 * y for y in ys], marker="o", ms=2, color=PALETTE[k % 10],
                    label=label)
        ax.set_title(c["title"])
        ax.set_xlabel("epoch")
        ax.set_ylabel("train accuracy (%)")
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return _png(fig)


def fig12_tsne(panels: list[dict]) -> bytes | None:
    """``[{"title", "labels", "embeddings": {ppl: [[x, y]]}}]`` → rows = models, columns = perplexities."""
    panels = [p for p in panels if p.get("embeddings")]
    if not panels:
        return None
    ppls = sorted({k for p in panels for k in p["embeddings"]}, key=float)
    fig, axes = _Fig.subplots(len(panels), len(ppls), figsize=(2.8 * len(ppls), 2.6 * len(panels)), squeeze=False)
    for r, p in enumerate(panels):
        for c, ppl in enumerate(ppls):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            emb = p["embeddings"].get(ppl)
            if emb is None:
                ax.axis("off")
                continue
            xs, ys = zip(*emb)
            ax.scatter(xs, ys, s=4, c=[PALETTE[int(y) % 10] for y in p["labels"][:len(xs)]], linewidths=0)
            ax.set_title(f"{p['title']}, ppl={ppl}", fontsize=7)
    fig.tight_layout()
    return _png(fig)


def fig13_sweep(rows: list[dict]) -> bytes | None:
    """``[{"T", "threshold", "accuracy", "adds"}]`` → accuracy vs #Add, one colour per ``u_th``, labelled by T."""
    rows = [r for r in rows if r.get("accuracy") is not None and r.get("adds") is not None]
    if not rows:
        return None
    pts = [{"label": f"T={r['T']}", "adds": r["adds"], "accuracy": r["accuracy"] / 100,
            "series": f"u_th={r['threshold']:g}"} for r in sorted(rows, key=lambda r: (r["threshold"], r["T"]))]
    fig = plot.accuracy_vs_cost(pts, title="Fig. 13: Model-6, T x u_th")
    return None if fig is None else _png(fig)
