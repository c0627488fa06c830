"""The backend registry: every built-in backend is listed; a missing simulator is a clear, fixable error."""

import nir
import numpy as np
import pytest
import torch

from snnbridge import backends
from snnbridge.backends.reference import ReferenceBackend
from snnbridge.errors import BackendUnavailableError, UnsupportedNodeError
from snnbridge.validation.node_suite import node_cases


class _Missing(ReferenceBackend):
    name = "missing-sim"
    requires = ("snnbridge_no_such_simulator",)
    pip = "pip install snnbridge-no-such-simulator"


def test_builtin_backends_are_registered_and_available_here():
    st = backends.status()
    for name in ("reference", "snntorch", "norse", "brian2", "snntorch-upstream", "norse-upstream"):
        assert st[name] == "available", (name, st[name])


def test_missing_package_is_reported_with_the_pip_command():
    backends.register("missing-sim", _Missing)
    try:
        assert backends.status()["missing-sim"] == "unavailable: pip install snnbridge-no-such-simulator"
        with pytest.raises(BackendUnavailableError, match="pip install snnbridge-no-such-simulator"):
            backends.get("missing-sim")
    finally:
        backends.base._FACTORIES.pop("missing-sim")


def test_unknown_backend_name():
    with pytest.raises(BackendUnavailableError, match="unknown backend 'nest'.*reference"):
        backends.get("nest")


@pytest.mark.parametrize("name", ["spikingjelly", "rockpool"])
def test_unsupported_node_fails_at_compile_time_naming_node_and_backend(name):
    """Delay is outside these adapters' node set: refused by name at compile time, never dropped."""
    pytest.importorskip(name)
    case = next(c for c in node_cases() if c.name == "lif_zero")
    g = case.graph
    g.nodes["delay"] = nir.Delay(delay=np.full(8, 1e-3))
    g.edges = [("input", "fc"), ("fc", "delay"), ("delay", "lif"), ("lif", "output")]
    with pytest.raises(UnsupportedNodeError, match=f"node 'delay'.*backend '{name}'.*Delay"):
        backends.get(name).compile(g, dtype=torch.float64, **case.semantics)
