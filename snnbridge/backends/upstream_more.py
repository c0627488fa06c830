"""Audit modes of the added simulators' own NIR importers, run exactly as a user would.

Same machinery as :mod:`snnbridge.backends.upstream` (the imported module is stepped with
``out, state = model(x[t], state)``; the Output node and every node the importer exposes under its own name are
recorded; no membranes).  Nothing here fixes the importers; their failures are
:class:`~snnbridge.backends.upstream.UpstreamError`.  The measured departures from the reference semantics are the
strict xfails of ``tests/test_upstream_more.py``.

* ``rockpool-upstream``: ``rockpool.nn.modules.from_nir(graph)`` (no options), a nirtorch ``GraphExecutor``.
* ``spikingjelly-upstream``: ``spikingjelly.activation_based.nir_exchange.import_from_nir(graph)`` (defaults:
  ``dt = 1e-4`` s, float32, single-step), an ``fx.GraphModule`` returning ``(output, state)``.
"""

from __future__ import annotations

from snnbridge.backends.upstream import _UpstreamBackend


class SpikingJellyUpstream(_UpstreamBackend):
    """``spikingjelly.activation_based.nir_exchange.import_from_nir`` as a user calls it."""

    name = "spikingjelly-upstream"
    importer = "spikingjelly.activation_based.nir_exchange.import_from_nir"
    requires = ("spikingjelly", "nirtorch")
    pip = "pip install 'snnbridge[spikingjelly]'"

    def _import(self, graph, **kwargs):
        from spikingjelly.activation_based.nir_exchange import import_from_nir

        return import_from_nir(graph, **kwargs)


class RockpoolUpstream(_UpstreamBackend):
    """``rockpool.nn.modules.from_nir`` as a user calls it (a nirtorch ``GraphExecutor`` of Rockpool modules)."""

    name = "rockpool-upstream"
    importer = "rockpool.nn.modules.from_nir"
    requires = ("rockpool", "nirtorch")
    pip = "pip install 'snnbridge[rockpool]'"

    def _import(self, graph, **kwargs):
        from rockpool.nn.modules import from_nir

        return from_nir(graph, **kwargs)
