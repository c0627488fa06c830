"""Run independent cells (one trained model each) in parallel through Dask, cached on disk by content hash.

A cell is a JSON-able spec; its result is stored as ``<cache>/cells/<hash>.json`` and its files (training
checkpoint, model, NIR) in ``<cache>/cells/<hash>/``.  A finished cell is never recomputed; an interrupted
one resumes from its last training checkpoint.  Schedulers: ``"local"`` (a ``distributed.LocalCluster``
of ``workers`` processes, one thread each — the default), ``"tcp://host:port"`` (an existing Dask
scheduler whose workers see the same file system), or ``"synchronous"`` (in this process, no Dask).
"""

from __future__ import annotations

import hashlib
import json
import traceback
from pathlib import Path
from typing import Callable

CACHE_VERSION = 1


def cell_key(spec: dict) -> str:
    """Content hash of a cell spec (the data file's own name carries the data's hash)."""
    blob = json.dumps({"v": CACHE_VERSION, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _write_json(path: Path, doc: dict) -> None:
    from snnbridge.fileio import atomic_write

    atomic_write(path, json.dumps(doc, indent=1, default=str))


def run_cell(spec: dict, cache: str, threads: int = 1) -> dict:
    """Run one cell (in a worker): its cached result, or compute, cache and return it.

    Errors are returned as ``{"error": ...}`` (and not cached) so that one failing cell does not lose the
    others.
    """
    import torch

    from snnbridge.reproduce.cells import run_model

    key = cell_key(spec)
    cells = Path(cache) / "cells"
    done = cells / f"{key}.json"
    if done.exists():
        return {**json.loads(done.read_text()), "cached": True}
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        res = run_model(spec, cells / key)
    except Exception as e:  # noqa: BLE001 - reported per cell, never cached
        return {"key": key, "spec": spec, "error": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(limit=6)}
    finally:
        torch.set_num_threads(before)
    res = {"key": key, "spec": spec, **res}
    cells.mkdir(parents=True, exist_ok=True)
    _write_json(done, res)
    return {**res, "cached": False}


def preload_simulators() -> bool:
    """Import the simulators that must be imported in a process's main thread (Brian2 installs a signal
    handler on import); returns whether this ran in the main thread."""
    import importlib.util
    import threading

    if importlib.util.find_spec("brian2") is not None:
        import brian2  # noqa: F401
    return threading.current_thread() is threading.main_thread()


try:
    from distributed.diagnostics.plugin import WorkerPlugin as _WorkerPlugin
except ImportError:  # dask[distributed] is optional
    _WorkerPlugin = object  # type: ignore[assignment,misc]


class PreloadPlugin(_WorkerPlugin):  # type: ignore[misc,valid-type]
    """Dask worker plugin: :func:`preload_simulators` in each worker's main (event-loop) thread at start-up,
    since tasks run in executor threads where Brian2 cannot be imported."""

    name = "snnbridge-preload"

    def setup(self, worker) -> None:  # noqa: D401
        preload_simulators()


def cached_result(spec: dict, cache: str | Path) -> dict | None:
    """The stored result of ``spec``, or ``None``."""
    p = Path(cache) / "cells" / f"{cell_key(spec)}.json"
    return {**json.loads(p.read_text()), "cached": True} if p.exists() else None


def run_cells(specs: list[dict], cache: str | Path, scheduler: str = "local", workers: int = 2,
              progress: bool = True, on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Run every spec (cached ones are read, not rerun) and return the results in the order of ``specs``."""
    from snnbridge.errors import SnnBridgeError
    from snnbridge.progress import progress_bar

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SnnBridgeError(f"workers must be an integer >= 1, got {workers!r}")  # 0 would wait forever
    cache = str(Path(cache).resolve())
    results: list[dict | None] = [cached_result(s, cache) for s in specs]
    todo = [i for i, r in enumerate(results) if r is None]
    bar = progress_bar(total=len(specs), initial=len(specs) - len(todo), desc="cells", unit="cell", progress=progress)
    for r in results:
        if r is not None and on_result:
            on_result(r)
    if todo and scheduler == "synchronous":
        for i in todo:
            results[i] = run_cell(specs[i], cache, threads=max(1, workers))
            bar.update(1)
            if on_result:
                on_result(results[i])  # type: ignore[arg-type]
    elif todo:
        from distributed import Client, LocalCluster, as_completed

        cluster = None
        if scheduler == "local":
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
            client = Client(cluster)
        else:
            client = Client(scheduler)
        try:
            client.register_plugin(PreloadPlugin())
            # longest cells first so the two workers finish together
            order = sorted(todo, key=lambda i: -_weight(specs[i]))
            futs = {client.submit(run_cell, specs[i], cache, 1, pure=False, key=f"cell-{cell_key(specs[i])}"): i
                    for i in order}
            for fut in as_completed(futs):
                i = futs[fut]
                results[i] = fut.result()
                bar.update(1)
                if on_result:
                    on_result(results[i])  # type: ignore[arg-type]
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    bar.close()
    return results  # type: ignore[return-value]


def _weight(spec: dict) -> float:
    """A rough cost estimate (bigger first) for scheduling."""
    sp = spec.get("spike") or {}
    base = {"cnn": 4.0, "mlp": 1.0}.get(spec.get("network", "mlp"), 1.0)
    return base * spec.get("train", {}).get("epochs", 1) * max(1, sp.get("T", 1))
