"""Interaction module: equivariant message passing between atoms.

Atom ``i`` receives from each neighbour ``j`` the tensor product of ``j``'s features with the
spherical harmonics of ``r_ij = r_j - r_i``, weighted per path by an MLP of the radial basis.
Summed messages pass a linear layer and a gated nonlinearity and are added to the features
(a residual update), so the irreps of the atom features stay the same through all modules.
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from ..equivariant.gate import GatedActivation
from ..equivariant.linear import EquivariantLinear
from ..equivariant.tensor_product import tensor_product
from .radial import RadialMLP


class Interaction(nn.Module):
    """One message-passing update of equivariant atom features.

    Parameters
    ----------
    irreps : e3nn.o3.Irreps
        Irreps of the atom features (input and output).
    irreps_sh : e3nn.o3.Irreps
        Irreps of the edge spherical harmonics.
    num_radial, radial_hidden : int
        Radial basis size and MLP width.
    lmax : int
        Highest output order.
    avg_neighbors : float
        Message sums are divided by this number.
    """

    def __init__(self, irreps, irreps_sh, num_radial: int, radial_hidden: int, lmax: int, avg_neighbors: float):
        super().__init__()
        self.avg_neighbors = float(avg_neighbors)
        self.pre = EquivariantLinear(irreps, irreps)
        self.tp, irreps_mid = tensor_product(irreps, irreps_sh, lmax, "uvu", shared_weights=False)
        self.radial = RadialMLP(num_radial, radial_hidden, self.tp.weight_numel)
        scalars = o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l == 0])
        gated = o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l > 0])
        self.gate = GatedActivation(scalars, gated)
        self.post = EquivariantLinear(irreps_mid, self.gate.irreps_in)
        self.out = EquivariantLinear(self.gate.irreps_out, irreps)

    def forward(self, x, sh, rbf, receiver, sender):
        """x: (N, dim) atom features; sh, rbf: per edge; messages flow sender -> receiver."""
        messages = self.tp(self.pre(x)[sender], sh, self.radial(rbf))
        summed = torch.zeros(x.shape[0], messages.shape[1], dtype=x.dtype, device=x.device)
        summed = summed.index_add(0, receiver, messages) / self.avg_neighbors
        return x + self.out(self.gate(self.post(summed)))
