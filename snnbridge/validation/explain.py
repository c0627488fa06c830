"""Why two runs of one node differ: local re-simulation and the classification of a divergence.

**Local re-simulation.** A node is re-run with the reference semantics (float64) on the inputs the
*other* backend recorded for it (its predecessors' outputs summed, a recurrent edge delayed one
step).  If that reproduces the backend's output, the node itself is conformant and its divergence is
*propagated* from upstream; otherwise the node is an *origin* of divergence.

**Classes** of an origin's divergence, tested in this order:

``reset`` (exact)
    re-simulating the node with another reset mode (``zero``/``subtract``/``none``) or with the reset
    applied one step late reproduces every spike of the backend.
``near_threshold``
    every spike train that differs first differs at a step where the reference membrane is within
    ``tol·max(1, |θ|)`` of the threshold ``θ`` (rounding decided a tie).
``latency``
    the backend's spikes are the reference's shifted by a constant ``k ≠ 0`` steps (event F1 on
    the overlap ≥ 0.99, better than without the shift).
``reset`` (approximate)
    one of those re-simulations reproduces the backend's spike events with F1 ≥ 0.99.
``unexplained``
    none of the above; the details say how close each hypothesis came.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from snnbridge.bridge import semantics as sem
from snnbridge.bridge.executor import ReferenceExecutor, _Node
from snnbridge.validation.metrics import best_lag, event_scores

KINDS = ("agree", "near_threshold", "latency", "reset", "propagated", "numeric", "unexplained")
MATCH_F1 = 0.99


@dataclass
class Explanation:
    """A divergence class (one of :data:`KINDS`), a one-line text, and the numbers behind it."""

    kind: str
    text: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "details": self.details}


# --------------------------------------------------------------------------- local re-simulation


def node_input(fg, rec, name: str) -> torch.Tensor | None:
    """Input of node ``name`` as recorded by ``rec``: sum of its predecessors' outputs, float64 ``[T, B, *in]``.

    A recurrent predecessor contributes its previous step (zero at ``t = 0``).  ``None`` when a
    predecessor was not recorded or ``name`` is an Input.
    """
    preds = fg.preds[name]
    if not preds or not all(p in rec for p in preds):
        return None
    total = None
    for p in preds:
        x = rec[p].double()
        if (p, name) in fg.recurrent:
            x = torch.cat([torch.zeros_like(x[:1]), x[:-1]], 0)
        x = x.reshape(x.shape[:2] + tuple(fg.in_shapes[name]))
        total = x if total is None else total + x
    return total


def resimulate(fg, name: str, x: torch.Tensor, reset: str | None = None, delayed: bool = False,
               spikes: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run node ``name`` alone on ``x [T, B, *in]`` in float64 → ``(output, membrane or None)``.

    ``reset`` overrides the node's reset mode; ``delayed`` applies each reset one step late (the
    threshold test of step ``t`` resets the state after the integration of step ``t+1``).
    Spike outputs are ``bool`` when ``spikes``.  A Threshold node's "membrane" is its input.
    """
    node = _Node(fg, name, torch.float64, "cpu")
    if reset is not None:
        node.reset = reset
    if delayed and node.coeff is not None and node.coeff.threshold is not None:
        # the reset decided at step t acts on the membrane integrated at step t+1 (semantics: reset timing)
        node.options = replace(node.options, reset_timing="delayed", zero_reset_target="membrane")
    out, v = node.over_time(x, True)
    if fg.type_of(name) == "Threshold":
        v = x
    if spikes and out.dtype != torch.bool:
        out = out > 0.5
    return out, v


def threshold_of(fg, name: str) -> np.ndarray | None:
    """The firing threshold of a spiking node (LIF/IF/CubaLIF/Threshold) as float64, else ``None``."""
    kind = fg.type_of(name)
    if kind in ("LIF", "IF", "CubaLIF"):
        return fg.coefficients(name).threshold
    if kind == "Threshold":
        return np.asarray(fg.nodes[name].threshold, dtype=np.float64)
    return None


def other_reset_modes(current: str) -> list[str]:
    """The reset hypotheses tried against a divergence: every mode of the semantics but ``current``."""
    return [mode for mode in sem.RESET_MODES if mode != current]


def reset_variants(fg, name: str, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of node ``name`` re-simulated alone on ``x`` under every other reset hypothesis, by label."""
    if fg.type_of(name) not in ("LIF", "IF", "CubaLIF"):
        return {}
    current = fg.node_reset[name]
    out = {f"reset='{mode}'": resimulate(fg, name, x, reset=mode)[0] for mode in other_reset_modes(current)}
    if current != "none":
        out[f"reset='{current}' applied one step late"] = resimulate(fg, name, x, delayed=True)[0]
    return out


def reset_variant_runs(graph, overrides: sem.SemanticsOverrides, current: str) -> dict:
    """The whole ``graph`` (a ``nir.NIRGraph``) on the reference executor under every other reset mode than
    ``current``, by the labels of :func:`reset_variants`: ``{label: ReferenceExecutor}`` (for nodes whose inputs
    were not recorded, so that they cannot be re-simulated alone).  ``overrides``: the check's ``dt`` /
    ``integration``; its ``reset`` is replaced by each hypothesis."""
    kw = overrides.without_reset().kwargs()
    return {f"reset='{mode}'": ReferenceExecutor(graph, reset=mode, **kw) for mode in other_reset_modes(current)}


# --------------------------------------------------------------------------- classification


def _first_mismatch(expected: torch.Tensor, got: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each (sample, neuron) train that differs: ``(train index [K, 2] (b, n), first step [K])``."""
    T, B = expected.shape[:2]
    diff = (expected.reshape(T, B, -1) != got.reshape(T, B, -1))
    trains = diff.any(0)  # [B, N]
    idx = torch.nonzero(trains, as_tuple=False)
    first = diff.int().argmax(0)  # first True (diff is 0/1)
    return idx, first[idx[:, 0], idx[:, 1]] if len(idx) else torch.zeros(0, dtype=torch.long)


def near_threshold_margins(expected: torch.Tensor, got: torch.Tensor, v: torch.Tensor,
                           threshold: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per differing train: ``(|v - θ| at its first mismatch, scale max(1, |θ|))``, float64 ``[K]``."""
    T, B = expected.shape[:2]
    idx, first = _first_mismatch(expected, got)
    vf = v.double().reshape(T, B, -1)
    th = torch.as_tensor(np.broadcast_to(threshold, tuple(expected.shape[2:])).reshape(-1).copy())
    if len(idx) == 0:
        return torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.float64)
    vv = vf[first, idx[:, 0], idx[:, 1]]
    tt = th[idx[:, 1]]
    return (vv - tt).abs(), tt.abs().clamp_min(1.0)


def classify(expected: torch.Tensor, got: torch.Tensor, v: torch.Tensor | None = None,
             threshold: np.ndarray | None = None, variants: dict[str, torch.Tensor] | None = None,
             tol: float = 1e-4, max_lag: int = 5) -> Explanation:
    """Classify how spikes ``got`` differ from ``expected`` (both ``bool [T, B, ...]``).

    ``v`` is the expected run's membrane (compared with ``threshold``), ``variants`` the outputs of
    alternative reset hypotheses.  See the module docstring for the order of the tests.
    """
    if torch.equal(expected, got):
        return Explanation("agree", "identical spikes")
    idx, _ = _first_mismatch(expected, got)
    n_trains = int(np.prod(expected.shape[1:]))
    details: dict = {"trains_differing": len(idx), "trains": n_trains,
                     "fraction_trains": len(idx) / max(1, n_trains)}
    exact = [label for label, alt in (variants or {}).items() if torch.equal(alt, got)]
    if exact:  # a reset hypothesis reproduces every spike: stronger evidence than any margin
        details.update(variant_f1={label: 1.0 for label in exact})
        return Explanation("reset", f"reset semantics: behaves like {exact[0]} (identical spikes)", details)
    if v is not None and threshold is not None:
        margin, scale = near_threshold_margins(expected, got, v, threshold)
        near = margin <= tol * scale
        details.update(near_threshold_trains=int(near.sum()), max_margin=float(margin.max()),
                       min_margin=float(margin.min()), tolerance=tol)
        if bool(near.all()):
            return Explanation("near_threshold",
                               f"near-threshold rounding: {len(idx)} of {n_trains} spike trains flip first where "
                               f"|v − θ| ≤ {float(margin.max()):.2g}", details)
    lag, f1 = best_lag(expected, got, max_lag)
    base_f1 = event_scores(expected, got).f1
    details.update(best_lag=lag, lag_f1=f1, f1=base_f1)
    if lag != 0 and f1 >= MATCH_F1:
        side = "late" if lag > 0 else "early"
        return Explanation("latency", f"constant latency: spikes {abs(lag)} step{'s' if abs(lag) > 1 else ''} "
                                      f"{side} (event F1 {f1:.3f} after the shift, {base_f1:.3f} before)", details)
    scores = {label: event_scores(alt, got).f1 for label, alt in (variants or {}).items()}
    if scores:
        label, f1v = max(scores.items(), key=lambda kv: kv[1])
        details.update(variant_f1=scores)
        if f1v >= MATCH_F1 and f1v > base_f1:
            return Explanation("reset", f"reset semantics: behaves like {label} (event F1 {f1v:.3f})", details)
    text = f"unexplained: {len(idx)} of {n_trains} spike trains differ (event F1 {base_f1:.3f})"
    if "near_threshold_trains" in details:
        text += f"; {details['near_threshold_trains']} flip near threshold"
    return Explanation("unexplained", text, details)


def classify_analog(expected: torch.Tensor, got: torch.Tensor, atol: float) -> Explanation:
    """Classify an analog (non-spike) difference: within ``atol`` → agree, else numeric."""
    d = (got.double() - expected.double()).abs()
    m = float(d.max()) if d.numel() else 0.0
    if m <= atol:
        return Explanation("agree", f"max |Δ| = {m:.3g} within tolerance {atol:.3g}")
    frac = float((d > atol).double().mean())
    return Explanation("numeric", f"values differ: max |Δ| = {m:.3g} (tolerance {atol:.3g}), "
                                  f"{100 * frac:.2f}% of values out of tolerance",
                       {"max_abs": m, "tolerance": atol, "fraction_out": frac})
