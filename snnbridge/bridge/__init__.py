"""NIR export/import, the reference semantics and the reference executor."""

from snnbridge.bridge.executor import ReferenceExecutor, load, run_reference
from snnbridge.bridge.graph import FlatGraph, prepare
from snnbridge.bridge.io import read_graph, write_graph
from snnbridge.bridge.recording import Recording
from snnbridge.bridge.semantics import Semantics

__all__ = ["ReferenceExecutor", "run_reference", "FlatGraph", "prepare", "load", "read_graph", "write_graph",
           "Recording", "Semantics"]
