"""What NIR cannot say, kept in graph metadata: dt, reset mode, integration, encoder, producer.

Keys (flat, so that ``nir.write`` stores them as plain HDF5 datasets):

==================  =========================================================
``producer``        ``"snnbridge"`` (or whatever tool wrote the file)
``producer_version`` version string of that tool
``dt``              step in seconds (float)
``reset``           ``zero`` | ``subtract`` | ``none``
``integration``     ``euler`` | ``exact``
``threshold``       ``strict`` (``v > θ``, default) | ``inclusive`` (``v >= θ``); written only when inclusive
``encoder``         how raw data became the input (free text, e.g. ``bernoulli``)
``structure``       the paper-notation structure string, when known
==================  =========================================================

A graph without these keys (written by another tool) runs with
:data:`~snnbridge.bridge.semantics.DEFAULT_DT`, ``reset="zero"`` (to the
node's ``v_reset``) and ``integration="euler"``; callers override any of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snnbridge.bridge import semantics as sem

KEYS = ("producer", "producer_version", "dt", "reset", "integration", "threshold", "encoder", "structure")


def plain(value: Any) -> Any:
    """HDF5-read metadata value → plain Python (bytes → str, numpy scalar → number)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SO":
            return [plain(v) for v in value.tolist()]
        return value.item() if value.size == 1 else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def make_metadata(semantics: sem.Semantics, **extra: Any) -> dict[str, Any]:
    """Graph metadata recording ``semantics`` and the producer, plus ``extra`` string/number keys."""
    from snnbridge import __version__

    meta: dict[str, Any] = {
        "producer": "snnbridge",
        "producer_version": __version__,
        "dt": float(semantics.dt),
        "reset": semantics.reset,
        "integration": semantics.integration,
    }
    if semantics.threshold != "strict":
        meta["threshold"] = semantics.threshold
    for k, v in extra.items():
        if v is not None:
            meta[k] = v if isinstance(v, (str, int, float)) else str(v)
    return meta


def semantics_from_metadata(
    metadata: dict | None,
    dt: float | None = None,
    reset: str | None = None,
    integration: str | None = None,
) -> tuple[sem.Semantics, dict[str, Any]]:
    """``(Semantics, plain metadata)``: explicit arguments win over metadata, metadata over defaults."""
    meta = plain(dict(metadata or {}))
    dt = dt if dt is not None else meta.get("dt", sem.DEFAULT_DT)
    reset = reset if reset is not None else meta.get("reset", sem.DEFAULT_RESET)
    integration = integration if integration is not None else meta.get("integration", sem.DEFAULT_INTEGRATION)
    threshold = meta.get("threshold", "strict")
    try:
        return sem.Semantics(float(dt), str(reset), str(integration), str(threshold)), meta
    except (TypeError, ValueError) as e:
        from snnbridge.errors import GraphError

        raise GraphError(str(e), field="metadata") from None
