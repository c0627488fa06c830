"""Define once: the paper's structure notation, ANN/SNN modules, training, conversion, encoders."""

from snnbridge.models.network import Network, NetworkConfig
from snnbridge.models.notation import TABLE1, TABLE1_INPUTS, Structure, parse_structure

__all__ = ["Network", "NetworkConfig", "Structure", "parse_structure", "TABLE1", "TABLE1_INPUTS"]
