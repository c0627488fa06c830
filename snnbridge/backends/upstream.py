"""Audit modes: run a graph through the simulators' *own* NIR importers, exactly as a user would.

``snntorch-upstream`` calls ``snntorch.import_nir.import_from_nir(graph)`` and ``norse-upstream`` calls
``norse.torch.from_nir(graph)`` (both build a ``torch.fx``/nirtorch module that is stepped with
``out, state = model(x[t], state)``).  Their :class:`~snnbridge.bridge.recording.Recording` holds what can be
observed — the Output node, the Input, and every node whose module the importer exposes under the node's name
(captured with forward hooks; a tuple result contributes its first element, the spikes) — so
that snnbridge can report how far the official importers are from the reference semantics of
:mod:`snnbridge.bridge.semantics`.  No membranes are recorded: the importers only keep post-reset states.

Nothing here fixes the importers.  Where they crash, :class:`UpstreamError` says so.  Measured departures
from the reference (snntorch 1.0.0, norse 1.1.0, nirtorch 2.6; see ``tests/test_upstream_audit.py``):

* snnTorch: LIF/CubaLIF use a hard-coded ``dt = 1e-4``, always reset to zero, reject ``v_leak ≠ 0`` and
  ``r ≠ tau_mem/dt`` (CubaLIF); IF becomes ``Leaky(beta=0.9, init_hidden=False)``, whose ``(spk, mem)``
  tuple breaks the next layer; LI, I, CubaLI, Scale, Threshold, SumPool2d are not mapped; ``Flatten``
  flattens the batch dimension; grouped convolutions get the wrong ``in_channels``; an AvgPool2d with a
  scalar kernel crashes; recurrent subgraphs crash under nirtorch 2.6.
* Norse: ``dt`` defaults to 1e-3 s whatever the graph's; ``r`` is ignored for LIF and IF; ``reset_method``
  is ignored for LIF and IF (only CubaLIF uses it) and ``v_reset`` is ignored for LIF; cells start at
  ``v = v_leak``; AvgPool2d, LI, I, CubaLI are dropped (silently replaced by identities);
  ``Flatten`` flattens the batch dimension; Scale and grouped convolutions crash.  The deprecated
  ``nirtorch.load`` it builds on returns the *last node of its execution order* as the graph output (a
  recurrent ``Linear`` or a second fan-in branch, not the Output node) and feeds a fan-in branch ordered
  after its target one step late.  Told ``dt`` (and ``reset_method=reset_subtract``), it reproduces the
  reference on r = 1 LIF graphs and on the Braille CubaLIF graphs.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import nir
import torch

from snnbridge.backends.base import Backend, Simulation
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.executor import spike_valued
from snnbridge.bridge.graph import FlatGraph
from snnbridge.bridge.inputs import Inputs, as_input_tensors, is_binary
from snnbridge.bridge.io import read_graph
from snnbridge.bridge.recording import Recording
from snnbridge.errors import SnnBridgeError


class UpstreamError(SnnBridgeError):
    """A simulator's own NIR importer (or the module it built) failed: an upstream failure, not snnbridge's."""


@contextlib.contextmanager
def _captured(log: list[str]):
    """Collect what the importers print or log (snnTorch prints, Norse logs) instead of spamming the user."""
    out = io.StringIO()

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            log.append(record.getMessage())

    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [_Handler(logging.WARNING)]  # non-empty, so logging.warning() does not call basicConfig()
    try:
        with contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.handlers = saved
        log.extend(line for line in out.getvalue().splitlines() if line.strip())


class UpstreamSimulation(Simulation):
    """A graph imported by an upstream importer; ``run`` steps the imported module over ``T``."""

    def __init__(self, backend: str, importer: str, graph: FlatGraph, model: torch.nn.Module, dtype: torch.dtype,
                 reset_state: Callable[[torch.nn.Module], None] | None, log: list[str]) -> None:
        self.backend = backend
        self.importer = importer
        self.graph = graph
        self.model = model
        self.dtype = dtype
        self.reset_state = reset_state
        self.log = log

    def _fail(self, what: str, e: BaseException) -> UpstreamError:
        return UpstreamError(f"upstream failure: {self.importer} {what}: {type(e).__name__}: {e}".strip())

    def run(self, inputs: Inputs, record: Iterable[str] | None = None, membranes: bool = True) -> Recording:
        """Step the imported module on ``inputs`` ``[T, B, *shape]``; records Output, Input and exposed nodes."""
        fg = self.graph
        xs, x = single_input(fg, inputs, self.dtype, self.importer)
        T, B = x.shape[:2]
        by_module = {n.replace(".", "_"): n for n in fg.order if n not in fg.inputs + fg.outputs}
        traces: dict[str, list[torch.Tensor]] = {}
        hooks = []
        for mod_name, module in self.model.named_modules():
            if mod_name in by_module:
                def hook(mod, args, out, node=by_module[mod_name]):
                    traces.setdefault(node, []).append(out[0] if isinstance(out, (tuple, list)) else out)

                hooks.append(module.register_forward_hook(hook))
        outs = []
        try:
            with _captured(self.log), torch.no_grad():
                if self.reset_state is not None:
                    self.reset_state(self.model)
                state = None
                for t in range(T):
                    y, state = self.model(x[t], state)
                    outs.append(y[0] if isinstance(y, (tuple, list)) else y)
            y = torch.stack(outs)
        except Exception as e:  # noqa: BLE001 - whatever the imported module raises is an upstream failure
            raise self._fail("module failed to run", e) from e
        finally:
            for h in hooks:
                h.remove()
        out_name = fg.outputs[0]
        want = (T, B) + tuple(fg.out_shapes[out_name])
        if tuple(y.shape) != want:
            raise UpstreamError(f"upstream failure: {self.importer} output has shape {list(y.shape)}, expected "
                                f"{list(want)}")
        recorded = {fg.inputs[0]: x, out_name: y}
        skip = _loop_stateless(fg)
        for node, seq in traces.items():
            if node in skip:
                continue
            if len(seq) == T and all(isinstance(s, torch.Tensor) for s in seq):
                v = torch.stack(seq)
                if tuple(v.shape) == (T, B) + tuple(fg.out_shapes[node]):
                    recorded[node] = v
        keep = set(fg.order) if record is None else set(record)
        flags = spike_valued(fg, {k: _binary(v) for k, v in xs.items()})
        # spike-valued in the reference and 0/1 here -> bool; anything else stays analog (and will not compare)
        outputs = {k: (v > 0.5 if flags[k] and _binary(v) else v.to(self.dtype))
                   for k, v in recorded.items() if k in keep}
        return Recording(outputs, {}, {n: fg.type_of(n) for n in fg.order}, fg.semantics.dt, self.backend,
                         list(fg.order))


def _loop_stateless(fg: FlatGraph) -> set[str]:
    """Stateless nodes inside a loop, after its one-step delay (e.g. a recurrent ``Linear``).

    The reference evaluates them at step ``t`` on the neuron's spikes of ``t-1``; nirtorch's executors evaluate
    them right after the neuron at ``t - 1``.  Same dynamics, traces one step apart: not recorded here.
    """
    out: set[str] = set()
    stack = [b for _, b in fg.recurrent]
    while stack:
        n = stack.pop()
        if n in out or fg.type_of(n) in sem.NEURON_TYPES or fg.type_of(n) == "Delay":
            continue
        out.add(n)
        stack.extend(m for m in fg.order if n in fg.preds[m] and (n, m) not in fg.recurrent)
    return out


_binary = is_binary


def single_input(fg: FlatGraph, inputs: Inputs, dtype: torch.dtype, importer: str
                 ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``(all input tensors, the one input [T, B, *shape])``; the upstream importers take one Input and one
    Output node, anything else is an :class:`UpstreamError`."""
    if len(fg.inputs) != 1 or len(fg.outputs) != 1:
        raise UpstreamError(f"upstream failure: {importer} supports one Input and one Output node only")
    xs = as_input_tensors(fg, inputs, dtype)
    return xs, xs[fg.inputs[0]]


class _UpstreamBackend(Backend):
    """Common part of the audit modes: import with the upstream importer, wrap failures as :class:`UpstreamError`."""

    importer = ""
    supported_nodes = frozenset(sem.SUPPORTED_TYPES)  # refuse nothing: the point is to see what upstream does

    def _import(self, graph: nir.NIRGraph, **kwargs) -> torch.nn.Module:
        raise NotImplementedError

    def _reset_state(self) -> Callable[[torch.nn.Module], None] | None:
        return None

    def compile(self, graph: nir.NIRGraph | FlatGraph | str | Path, dt: float | None = None,
                reset: str | None = None, integration: str | None = None, dtype: torch.dtype = torch.float64,
                importer_kwargs: dict[str, Any] | None = None, **options) -> UpstreamSimulation:
        """Import ``graph`` with the upstream importer (``importer_kwargs`` are passed on, e.g. Norse's ``dt``).

        ``dt``/``reset``/``integration`` only shape the recording (the importers cannot be told them).  The
        importers build float32 modules; ``dtype`` converts the module with ``.to(dtype)`` as a user would
        (parameters the importer keeps outside ``nn.Module`` buffers stay float32-rounded).
        """
        if options:
            raise TypeError(f"unknown option(s) for backend '{self.name}': {', '.join(options)}")
        if isinstance(graph, FlatGraph):
            raise TypeError(f"backend '{self.name}' needs the nir.NIRGraph (the importer reads the graph itself)")
        if isinstance(graph, (str, Path)):
            graph = read_graph(graph)
        fg = self.prepare(graph, dt, reset, integration, dtype)
        log: list[str] = []
        try:
            with _captured(log):
                model = self._import(copy.deepcopy(graph), **(importer_kwargs or {}))
                model = model.to(dtype)
        except Exception as e:  # noqa: BLE001 - whatever the importer raises is an upstream failure
            raise UpstreamError(f"upstream failure: {self.importer} could not import the graph: "
                                f"{type(e).__name__}: {e}") from e
        return UpstreamSimulation(self.name, self.importer, fg, model, dtype, self._reset_state(), log)


class SnnTorchUpstream(_UpstreamBackend):
    """``snntorch.import_nir.import_from_nir`` as a user calls it (state reset with ``snntorch.utils.reset``)."""

    name = "snntorch-upstream"
    importer = "snntorch.import_nir.import_from_nir"
    requires = ("snntorch", "nirtorch")
    pip = "pip install 'snnbridge[snntorch]'"

    def _import(self, graph, **kwargs):
        from snntorch.import_nir import import_from_nir

        return import_from_nir(graph, **kwargs)

    def _reset_state(self):
        from snntorch.utils import reset

        return reset


class NorseUpstream(_UpstreamBackend):
    """``norse.torch.from_nir`` as a user calls it (defaults unless ``importer_kwargs`` say otherwise)."""

    name = "norse-upstream"
    importer = "norse.torch.from_nir"
    requires = ("norse", "nirtorch")
    pip = "pip install 'snnbridge[norse]'"

    def _import(self, graph, **kwargs):
        from norse.torch import from_nir

        return from_nir(graph, **kwargs)
