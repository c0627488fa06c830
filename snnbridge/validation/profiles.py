"""Tolerance profiles of a conformance check: ``exact`` (float64, bit-identical spikes) and ``float32``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from snnbridge.errors import SnnBridgeError


@dataclass(frozen=True)
class Profile:
    """A tolerance profile.

    Attributes:
        name: ``exact`` or ``float32``.
        dtype: precision the backends run in (the yardstick is always float64).
        analog_rtol / analog_atol: analog values agree when ``|Δ| <= atol + rtol·max|ref|`` (per node).
        near_threshold: near-threshold flips that originate at a node are allowed.
        max_flip_fraction: at most this fraction of a node's spike trains may flip.
        threshold_tol: a flip is near-threshold when ``|v − θ| <= threshold_tol·max(1, |θ|)``.
    """

    name: str
    dtype: torch.dtype
    analog_rtol: float
    analog_atol: float
    near_threshold: bool
    max_flip_fraction: float
    threshold_tol: float

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": str(self.dtype).replace("torch.", ""), "analog_rtol": self.analog_rtol,
                "analog_atol": self.analog_atol, "near_threshold_allowed": self.near_threshold,
                "max_flip_fraction": self.max_flip_fraction, "threshold_tol": self.threshold_tol}


PROFILES = {
    "exact": Profile("exact", torch.float64, 1e-9, 1e-12, False, 0.0, 1e-9),
    "float32": Profile("float32", torch.float32, 1e-4, 1e-6, True, 0.01, 1e-4),
}


def get_profile(profile: str | Profile) -> Profile:
    """A :class:`Profile` by name (``exact``/``float32``) or as given."""
    if isinstance(profile, Profile):
        return profile
    if profile not in PROFILES:
        raise SnnBridgeError(f"unknown profile '{profile}'; choose {' or '.join(PROFILES)}")
    return PROFILES[profile]
