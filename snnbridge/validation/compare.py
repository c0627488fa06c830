"""Deprecated alias of :mod:`snnbridge.validation.report.diff` (the report diff; removed in 0.3).

``compare_reports`` is now :func:`~snnbridge.validation.report.diff.diff_reports`; ``Change``, ``rows``,
``markdown`` and ``HEADERS`` are the same objects as there.
"""

from __future__ import annotations

import warnings

from snnbridge.validation.report.diff import HEADERS, Change, diff_reports, markdown, rows

__all__ = ["HEADERS", "Change", "compare_reports", "markdown", "rows"]

warnings.warn("snnbridge.validation.compare is deprecated; use snnbridge.validation.report.diff "
              "(compare_reports is now diff_reports)", DeprecationWarning, stacklevel=2)


def compare_reports(old: dict, new: dict) -> list[Change]:
    """Deprecated: :func:`snnbridge.validation.report.diff.diff_reports`."""
    warnings.warn("compare_reports is deprecated; use snnbridge.validation.report.diff.diff_reports",
                  DeprecationWarning, stacklevel=2)
    return diff_reports(old, new)
