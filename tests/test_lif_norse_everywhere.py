"""The LIF neuron of ``lif_norse.nir`` fires at the same steps on every installed backend (the reference and the
eight simulators: snnTorch, Norse, Brian2, SpikingJelly, Rockpool, Sinabs, Nengo, Spyx).

Driven by a held input of 0.2 for 200 steps (``docs/semantics.md``: forward Euler fires first at step 17), under
zero and subtract reset.  Every one of the nine realises both (Rockpool and Spyx, whose neurons only subtract, compose
the zero reset after their own step), so none may refuse.
"""

from __future__ import annotations

import pytest
import torch

from snnbridge import backends
from snnbridge.bridge import read_graph
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.errors import UnsupportedNodeError

from .conftest import NIR_GRAPHS

NATIVE = ["reference", "snntorch", "norse", "brian2", "spikingjelly", "rockpool", "sinabs", "nengo", "spyx"]
"""The nine backends of issue 13 (the audit modes, the simulators' own importers, are not among them)."""


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_lif_norse_fires_at_the_same_steps_on_every_backend(reset):
    path = NIR_GRAPHS / "lif_norse.nir"
    if not path.exists():
        pytest.skip(f"{path} not available (needs ../shared)")
    graph = read_graph(path)
    x = torch.full((200, 1, 1), 0.2, dtype=torch.float64)
    ref = ReferenceExecutor(graph, reset=reset).run(x).output().reshape(-1).nonzero().reshape(-1)
    assert ref[0].item() == 16 and len(ref) > 5  # step 17, counted from 1
    ran, refused = [], []
    status = backends.status()
    for name in NATIVE:
        if status[name] != "available":
            continue
        try:
            rec = backends.get(name).run(graph, x, reset=reset)
        except UnsupportedNodeError as e:
            assert "field 'reset'" in str(e) and "node '" in str(e), e
            refused.append(name)
            continue
        steps = rec.output().reshape(-1).nonzero().reshape(-1)
        assert torch.equal(steps, ref), f"{name} fires at {steps[:5].tolist()}..., reference at {ref[:5].tolist()}..."
        ran.append(name)
    assert ran, "no backend installed"
    installed = [n for n in NATIVE if status[n] == "available"]
    assert sorted(ran + refused) == sorted(installed)
    assert not refused, f"{refused} refused reset {reset!r}"
