"""Reproduce Deng et al. 2020: the six models on the paper's workloads, Tables 4-6, Figs. 8/10/12/13.

Entry point: :func:`reproduce` (also ``snnbridge reproduce``).
"""

from snnbridge.reproduce.runner import ReproduceResult, reproduce

__all__ = ["ReproduceResult", "reproduce"]
