"""Deprecated location (0.1): snnbridge's own networks export themselves from :mod:`snnbridge.models.export`.

``from snnbridge.bridge.export import export, to_nir, network_from_nir`` keeps working with a
``DeprecationWarning``; the names are resolved on first use, so that importing :mod:`snnbridge.bridge` never
imports :mod:`snnbridge.models` (``models → bridge`` is the only direction).  Removed in 0.3.
"""

from __future__ import annotations

import warnings

_MOVED = ("export", "to_nir", "network_from_nir")


def __getattr__(name: str):
    if name in _MOVED:
        warnings.warn(f"snnbridge.bridge.export.{name} moved to snnbridge.models.export.{name}", DeprecationWarning,
                      stacklevel=2)
        from snnbridge.models import export as moved  # deprecated alias: resolved lazily, see the module docstring

        return getattr(moved, name)
    raise AttributeError(f"module 'snnbridge.bridge.export' has no attribute '{name}'")
