"""Prove that backends agree: conformance checks, spike metrics, accuracy, the paper's cost metrics, reports.

Entry points: :func:`conform` (→ :class:`ConformanceResult`), :func:`assert_conformant` (pytest),
:func:`static_costs` / :func:`recorded_costs` (Eqs. 8-9), :func:`write_report` (HTML/Markdown/JSON).
"""

from snnbridge.validation.conformance import PROFILES, ConformanceResult, Profile, conform
from snnbridge.validation.costs import Conventions, Costs, graph_costs, recorded_costs, static_costs
from snnbridge.validation.runners import BackendSpec
from snnbridge.validation.testing import assert_conformant


def write_report(*args, **kwargs):
    """See :func:`snnbridge.validation.report.write_report` (imported lazily: matplotlib)."""
    from snnbridge.validation.report import write_report as _write

    return _write(*args, **kwargs)


__all__ = ["PROFILES", "BackendSpec", "ConformanceResult", "Conventions", "Costs", "Profile", "assert_conformant",
           "conform", "graph_costs", "recorded_costs", "static_costs", "write_report"]
