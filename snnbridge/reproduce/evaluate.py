"""Evaluate a trained model across simulators: export the SNN through NIR, run it on every available backend,
and read accuracy (Eq. 7) and cost (Eqs. 8-9) from each backend's own recording."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from snnbridge.models.export import export, to_nir
from snnbridge.models.network import Network

Batches = Callable[[int, int], torch.Tensor]
"""``make(start, stop) -> inputs [T, stop - start, ...]`` — deterministic, the same for every backend."""


def _costs_api():
    try:
        from snnbridge.validation import costs as c

        return c
    except Exception:  # noqa: BLE001 - the colleague's module absent or broken: no costs, clearly marked
        return None


def ann_costs(network: Network) -> dict | None:
    """Eq. 8-9 of an ANN-mode network (static counts per sample) via :mod:`snnbridge.validation.costs`."""
    c = _costs_api()
    if c is None:
        return None
    costs = c.static_costs(network.structure.text, network.config.input_shape, mode="ann",
                           conv_stride=network.config.conv_stride)
    return c.costs_table_row(costs)


def _merge(rows: list[tuple[int, dict]]) -> dict | None:
    """Sample-weighted mean of per-batch cost rows."""
    if not rows or any(r is None for _, r in rows):
        return None
    n = sum(b for b, _ in rows)
    out = dict(rows[0][1])
    for k in ("spikes", "memory_bits", "adds", "muls"):
        vals = [r[k] for _, r in rows]
        out[k] = None if any(v is None for v in vals) else sum(b * r[k] for b, r in rows) / n
    return out


def evaluate_backends(network: Network, make: Batches, labels: torch.Tensor, backends: tuple[str, ...],
                      limits: dict[str, int | None], batch_size: int = 100, dtype: torch.dtype = torch.float32,
                      nir_path: str | Path | None = None, encoder: str | None = None,
                      hidden_samples: int = 0) -> dict:
    """Run the SNN ``network`` on each backend in ``backends`` through its NIR graph.

    ``limits``: test samples per backend (``None``: all of ``labels``); ``make(i, j)`` encodes samples ``i..j``
    ``[T, j - i, ...]`` and is always called with the same batch boundaries, so that a backend limited to fewer
    samples runs exactly the reference's first encoded samples.  Returns ``{"nir": path,
    "backends": {name: {"status", "accuracy", "samples", "seconds", "agreement", "cost"}}, "hidden": rates}``
    where ``agreement`` is the fraction of samples predicted like the reference and ``hidden`` the reference's
    firing rates ``[hidden_samples, n]`` of the last hidden spiking layer (for t-SNE).
    """
    from snnbridge.backends import get
    from snnbridge.bridge.graph import prepare
    from snnbridge.errors import SnnBridgeError
    from snnbridge.validation.accuracy import accuracy, agreement, rate_predictions

    c = _costs_api()
    graph = to_nir(network, encoder=encoder)
    if nir_path is not None:
        export(network, nir_path, encoder=encoder)
    fg = prepare(graph)
    neurons = [n for _, n in network.plan if n is not None]
    hidden_node = neurons[-2] if len(neurons) >= 2 else None
    results: dict[str, dict] = {}
    preds: dict[str, torch.Tensor] = {}
    hidden: list[torch.Tensor] = []
    for name in backends:
        n = len(labels) if limits.get(name) is None else min(len(labels), int(limits[name]))  # type: ignore[arg-type]
        t0 = time.perf_counter()
        try:
            sim = get(name).compile(graph, dtype=dtype)
            ps, cost_rows = [], []
            for i in range(0, n, batch_size):
                # the reference's batch boundaries, cut to this backend's limit: every backend sees the very same
                # encoded samples (a Bernoulli draw for 20 images differs from the first 20 of a draw for 100)
                j_all, j = min(len(labels), i + batch_size), min(n, i + batch_size)
                rec = sim.run(make(i, j_all)[:, :j - i])
                ps.append(rate_predictions(rec["output"]))
                if c is not None:
                    cost_rows.append((j - i, c.costs_table_row(c.recorded_costs(fg, rec))))
                if name == backends[0] and hidden_node is not None and i < hidden_samples and hidden_node in rec:
                    hidden.append(rec[hidden_node].to(torch.float32).mean(0).reshape(j - i, -1))
        except SnnBridgeError as e:
            results[name] = {"status": f"unavailable: {e}"}
            continue
        except Exception as e:  # noqa: BLE001 - one backend failing must not lose the others' numbers
            results[name] = {"status": f"failed: {type(e).__name__}: {e}"}
            continue
        p = torch.cat(ps) if ps else torch.zeros(0, dtype=torch.long)
        preds[name] = p
        results[name] = {"status": "ok", "samples": n, "accuracy": accuracy(p, labels[:n]),
                         "seconds": time.perf_counter() - t0, "cost": _merge(cost_rows) if c is not None else None}
    ref = next((b for b in backends if b in preds), None)
    for name, p in preds.items():
        if ref is not None:
            m = min(len(p), len(preds[ref]))
            results[name]["agreement"] = agreement(p[:m], preds[ref][:m])
    h = torch.cat(hidden)[:hidden_samples] if hidden else None
    return {"nir": str(nir_path) if nir_path else None, "backends": results, "reference": ref,
            "hidden": h, "cost_source": "snnbridge.validation.costs" if c is not None else None}
