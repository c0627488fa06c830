"""Data errors: a dataset that is missing, empty or in the wrong format (CLI: one line, exit 2)."""

from __future__ import annotations

from snnbridge.errors import SnnBridgeError


class DataError(SnnBridgeError):
    """A dataset or event array cannot be used as it is (wrong dtype, empty, out of range)."""


class DatasetNotFoundError(DataError):
    """A dataset is not on disk; the message says where to put it and how to get it (nothing is downloaded)."""
