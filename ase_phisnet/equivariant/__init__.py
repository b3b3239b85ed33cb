"""Equivariant building blocks in place of e3nn's: irreps, spherical harmonics, linears,
tensor products (sparse Clebsch-Gordan path sums) and the gate.

Each gives e3nn's numbers (values and gradients, float64, ``tests/equivariant``) in far fewer
operations; e3nn itself is used only to build the constants.
"""

from .gate import GatedActivation
from .harmonics import spherical_harmonics
from .irreps import so3_irreps
from .linear import EquivariantLinear
from .tensor_product import ChannelwiseTensorProduct, HarmonicTensorProduct, tensor_product

__all__ = ["ChannelwiseTensorProduct", "EquivariantLinear", "GatedActivation", "HarmonicTensorProduct", "so3_irreps", "spherical_harmonics", "tensor_product"]
