"""Deprecated location of the Brian2 backend: use :mod:`snnbridge.backends.brian2` (``backend.py``).

Kept so that ``from snnbridge.backends.brian2_backend import Brian2Backend`` (and the registry entry that
loads it) keeps working; every name is the one of :mod:`snnbridge.backends.brian2.backend`.
"""

from __future__ import annotations

from snnbridge.backends.brian2.backend import (  # noqa: F401
    BUILD_VERSION,
    BYTES_PER_NEURON,
    BYTES_PER_SYNAPSE,
    DEFAULT_MAX_SYNAPSES,
    TARGETS,
    Brian2Backend,
    Brian2Simulation,
    cache_root,
    choose_target,
    cython_available,
    default_target,
)

__all__ = ["BUILD_VERSION", "BYTES_PER_NEURON", "BYTES_PER_SYNAPSE", "DEFAULT_MAX_SYNAPSES", "TARGETS",
           "Brian2Backend", "Brian2Simulation", "cache_root", "choose_target", "cython_available", "default_target"]
