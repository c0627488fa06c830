"""The float32 check of ``backend_checks`` itself: it accepts a genuine rounding flip and rejects a real one."""

import nir
import numpy as np
import pytest
import torch

from snnbridge.backends import get
from snnbridge.bridge.executor import ReferenceExecutor
from snnbridge.bridge.graph import prepare
from snnbridge.bridge.recording import Recording
from snnbridge.validation.node_suite import chain

from .backend_checks import check_near_threshold_only


@pytest.mark.parametrize("backend", ["snntorch", "norse", "brian2"])
def test_float32_near_threshold_helper_accepts_rounding_and_rejects_real_differences(backend):
    """0.1 + 0.1 + 0.1 > 0.3 in float64 but not in float32: a genuine rounding flip the helper must accept."""
    n = 3
    g = chain([("fc", nir.Linear(weight=np.full((n, 1), 0.1))),
               ("if", nir.IF(r=np.ones(n), v_threshold=np.full(n, 0.3), v_reset=np.zeros(n)))], (1,), (n,))
    x = torch.ones(9, 2, 1, dtype=torch.float64)
    ref64 = ReferenceExecutor(g, dt=1e-3).run(x)
    got = get(backend).run(g, x, dt=1e-3, dtype=torch.float32)
    fg = prepare(g, dt=1e-3)
    assert check_near_threshold_only(fg, ref64, got) > 0  # float32 fires one step later
    tampered = Recording(dict(ref64.outputs), dict(ref64.membranes), ref64.node_types, ref64.dt, "x", ref64.order)
    tampered.outputs["if"] = ref64.outputs["if"].clone()
    tampered.outputs["if"][0, 1, 2] = True  # v = 0.1, far from 0.3
    with pytest.raises(AssertionError, match="not a near-threshold rounding case"):
        check_near_threshold_only(fg, ref64, tampered)
