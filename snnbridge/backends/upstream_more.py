"""Audit modes of the added simulators' own NIR importers, run exactly as a user would.

Same machinery as :mod:`snnbridge.backends.upstream` (the imported module is stepped with
``out, state = model(x[t], state)``; the Output node and every node the importer exposes under its own name are
recorded; no membranes).  Nothing here fixes the importers; their failures are
:class:`~snnbridge.backends.upstream.UpstreamError`.  The measured departures from the reference semantics are the
strict xfails of ``tests/test_upstream_more.py``.

* ``rockpool-upstream``: ``rockpool.nn.modules.from_nir(graph)`` (no options), a nirtorch ``GraphExecutor``.
* ``spikingjelly-upstream``: ``spikingjelly.activation_based.nir_exchange.import_from_nir(graph)`` (defaults:
  ``dt = 1e-4`` s, float32, single-step), an ``fx.GraphModule`` returning ``(output, state)``.
* ``sinabs-upstream``: ``sinabs.from_nir(graph, batch_size=B)``, a nirtorch ``GraphExecutor`` of Sinabs'
  ``*Squeeze`` layers fed the whole sequence with batch and time folded (``[B·T, ...]``, batch-major).
* ``spyx-upstream``: ``spyx.nir.from_nir(graph, x)`` (``dt = 1``), which builds the Spyx model and runs it on the
  time-major input ``[T, B, ...]`` itself.

The sequence importers (Sinabs needs the batch size at import; Spyx imports and runs in one call) import in
``run``; an import failure is then raised from ``run`` as an :class:`UpstreamError`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Iterable

import nir
import torch

from snnbridge.backends.base import Simulation
from snnbridge.backends.upstream import (
    UpstreamError,
    _binary,
    _captured,
    _loop_stateless,
    _UpstreamBackend,
    single_input,
)
from snnbridge.bridge.graph import FlatGraph
from snnbridge.bridge.inputs import Inputs
from snnbridge.bridge.io import read_graph
from snnbridge.bridge.recording import Recording
from snnbridge.bridge.walk import spike_valued


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


# --------------------------------------------------------------------------- whole-sequence importers


class SequenceUpstreamSimulation(Simulation):
    """A graph for an importer whose model takes the whole sequence at once (Sinabs, Spyx).

    ``run`` lays the inputs ``[T, B, *shape]`` out as the importer's users do (:meth:`_SequenceUpstream.call`),
    records the Output node, the Input and (torch models) every node the importer exposes under its own name; no
    membranes.
    """

    def __init__(self, backend: "_SequenceUpstream", graph: nir.NIRGraph, fg: FlatGraph, dtype: torch.dtype) -> None:
        self.backend = backend.name
        self.owner = backend
        self.importer = backend.importer
        self.nir_graph = graph
        self.graph = fg
        self.dtype = dtype
        self.log: list[str] = []

    def run(self, inputs: Inputs, record: Iterable[str] | None = None, membranes: bool = True) -> Recording:
        """Import (for this batch size) and run ``inputs`` ``[T, B, *shape]`` through the imported model."""
        fg = self.graph
        xs, x = single_input(fg, inputs, self.dtype, self.importer)
        T, B = x.shape[:2]
        try:
            with _captured(self.log):
                y, traces = self.owner.call(copy.deepcopy(self.nir_graph), fg, x, self.dtype)
        except UpstreamError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever the importer or its model raises is an upstream failure
            raise UpstreamError(f"upstream failure: {self.importer}: {type(e).__name__}: {e}".strip()) from e
        out_name = fg.outputs[0]
        want = (T, B) + tuple(fg.out_shapes[out_name])
        if tuple(y.shape) != want:
            raise UpstreamError(f"upstream failure: {self.importer} output has shape {list(y.shape)}, expected "
                                f"{list(want)}")
        recorded = {fg.inputs[0]: x, out_name: y}
        skip = _loop_stateless(fg)
        for node, v in traces.items():
            if node not in skip and tuple(v.shape) == (T, B) + tuple(fg.out_shapes[node]):
                recorded[node] = v
        keep = set(fg.order) if record is None else set(record)
        flags = spike_valued(fg, {k: _binary(v) for k, v in xs.items()})
        outputs = {k: (v > 0.5 if flags[k] and _binary(v) else v.to(self.dtype))
                   for k, v in recorded.items() if k in keep}
        return Recording(outputs, {}, {n: fg.type_of(n) for n in fg.order}, fg.semantics.dt, self.backend,
                         list(fg.order))


class _SequenceUpstream(_UpstreamBackend):
    """An audit mode whose importer builds (or runs) a model on whole sequences; imports at run time."""

    def call(self, graph: nir.NIRGraph, fg: FlatGraph, x: torch.Tensor,
             dtype: torch.dtype) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Import ``graph`` and run ``x`` ``[T, B, *shape]``: ``(output [T, B, *out], {node: [T, B, *out]})``."""
        raise NotImplementedError

    def compile(self, graph: nir.NIRGraph | FlatGraph | str | Path, dt: float | None = None,
                reset: str | None = None, integration: str | None = None, dtype: torch.dtype = torch.float64,
                **options) -> SequenceUpstreamSimulation:
        """Check ``graph``; the importer runs in :meth:`SequenceUpstreamSimulation.run` (it needs the batch size)."""
        options.pop("device", None)
        if options:
            raise TypeError(f"unknown option(s) for backend '{self.name}': {', '.join(options)}")
        if isinstance(graph, FlatGraph):
            raise TypeError(f"backend '{self.name}' needs the nir.NIRGraph (the importer reads the graph itself)")
        if isinstance(graph, (str, Path)):
            graph = read_graph(graph)
        fg = self.prepare(graph, dt, reset, integration, dtype)
        return SequenceUpstreamSimulation(self, graph, fg, dtype)


class SinabsUpstream(_SequenceUpstream):
    """``sinabs.from_nir(graph, batch_size=B)`` as a user calls it.

    Sinabs' imported layers (``IAFSqueeze``, ``LIFSqueeze``, ``ExpLeakSqueeze``) take the batch and time folded into
    one leading dimension, batch-major: the audit feeds ``x.transpose(0, 1).reshape(B·T, ...)`` in one call
    (``out, state = model(x)``, a nirtorch ``GraphExecutor``) and unfolds every recorded tensor back to
    ``[T, B, ...]``.  The model is converted with ``.to(dtype)``, as a user would.
    """

    name = "sinabs-upstream"
    importer = "sinabs.from_nir"
    requires = ("sinabs", "nirtorch")
    pip = "pip install --no-deps 'sinabs==3.1.3' pbr"

    def call(self, graph, fg, x, dtype):
        from sinabs import from_nir

        T, B = x.shape[:2]
        try:
            model = from_nir(graph, batch_size=B).to(dtype)
        except Exception as e:  # noqa: BLE001
            raise UpstreamError(f"upstream failure: {self.importer} could not import the graph: "
                                f"{type(e).__name__}: {e}") from e
        folded = x.transpose(0, 1).reshape((B * T,) + tuple(x.shape[2:]))
        by_module = {n.replace(".", "_"): n for n in fg.order if n not in fg.inputs + fg.outputs}
        seen: dict[str, torch.Tensor] = {}
        hooks = []
        for mod_name, module in model.named_modules():
            if mod_name in by_module:
                def hook(mod, args, out, node=by_module[mod_name]):
                    seen[node] = out[0] if isinstance(out, (tuple, list)) else out

                hooks.append(module.register_forward_hook(hook))
        try:
            with torch.no_grad():
                y = model(folded)
        finally:
            for h in hooks:
                h.remove()
        y = y[0] if isinstance(y, (tuple, list)) else y

        def unfold(v: torch.Tensor) -> torch.Tensor:
            if v.shape[0] != B * T:
                return v
            return v.reshape((B, T) + tuple(v.shape[1:])).transpose(0, 1)

        return unfold(y), {n: unfold(v) for n, v in seen.items() if isinstance(v, torch.Tensor)}


class SpyxUpstream(_SequenceUpstream):
    """``spyx.nir.from_nir(graph, x)`` as a user calls it (``dt`` default 1, time-major input ``[T, B, ...]``).

    The importer builds the model and runs it on the input in one call, returning ``(model, outputs)``.  The
    audit passes the input as a JAX array in the run dtype (float64 turns on ``jax_enable_x64``, as the ``spyx``
    backend does); only the Output node is observable.
    """

    name = "spyx-upstream"
    importer = "spyx.nir.from_nir"
    requires = ("spyx", "jax", "flax")
    pip = "pip install 'snnbridge[spyx]'"

    def call(self, graph, fg, x, dtype):
        import jax.numpy as jnp
        import numpy as np
        import spyx.nir

        from snnbridge.backends.spyx_backend import enable_x64

        if dtype == torch.float64:
            enable_x64()
        jx = jnp.asarray(x.numpy(), dtype=jnp.float64 if dtype == torch.float64 else jnp.float32)
        try:
            _, out = spyx.nir.from_nir(graph, jx)
        except Exception as e:  # noqa: BLE001
            raise UpstreamError(f"upstream failure: {self.importer}: {type(e).__name__}: {e}") from e
        return torch.from_numpy(np.array(out)).to(dtype), {}
