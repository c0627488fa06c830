"""The reference executor behind the backend interface (the yardstick the others are compared with)."""

from __future__ import annotations

import torch

from snnbridge.backends.base import Backend, Simulation
from snnbridge.bridge import semantics as sem
from snnbridge.bridge.executor import ReferenceExecutor


class _ReferenceSimulation(Simulation):
    def __init__(self, executor: ReferenceExecutor) -> None:
        self.executor = executor
        self.graph = executor.graph
        self.dtype = executor.dtype
        self.backend = "reference"

    def run(self, inputs, record=None, membranes=True):
        return self.executor.run(inputs, record=record, membranes=membranes)


class ReferenceBackend(Backend):
    name = "reference"
    requires = ("torch",)
    pip = "pip install snnbridge"
    supported_nodes = frozenset(sem.SUPPORTED_TYPES)

    def compile(self, graph, dt=None, reset=None, integration=None, dtype=torch.float64, device="cpu",
                **options):
        fg = self.prepare(graph, dt, reset, integration, dtype)
        return _ReferenceSimulation(ReferenceExecutor(fg, dtype=dtype, device=device))
