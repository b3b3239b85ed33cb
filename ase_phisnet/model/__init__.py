"""The PhiSNet Hamiltonian model: radial basis, interactions, matrix heads, configuration."""

from .config import PRESETS, PhiSNetConfig
from .graph import MolecularGraph, build_graph
from .phisnet import PhiSNet

__all__ = ["PRESETS", "PhiSNet", "PhiSNetConfig", "MolecularGraph", "build_graph"]
