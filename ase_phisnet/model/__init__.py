"""The PhiSNet Hamiltonian model: radial basis, interactions, matrix heads, configuration."""

from .config import PRESETS, PhiSNetConfig
from .graph import MolecularGraph, build_graph
from .phisnet import PhiSNet, build_model

__all__ = ["PRESETS", "PhiSNet", "build_model", "PhiSNetConfig", "MolecularGraph", "build_graph"]
