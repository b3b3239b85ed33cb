"""EquivariantLinear: e3nn's o3.Linear as one contraction per order (float64: tests/conftest.py)."""

import torch
from e3nn import o3

from ase_phisnet.basis import AOBasis
from ase_phisnet.equivariant.irreps import so3_irreps
from ase_phisnet.equivariant.linear import EquivariantLinear
from ase_phisnet.model.blocks import block_irreps_and_expansion

O_BLOCK = block_irreps_and_expansion(*[AOBasis("def2-svp", [8]).shell_ls[8]] * 2)[0]




def test_equivariant_under_rotation():
    lin = EquivariantLinear(so3_irreps(3, 4), O_BLOCK)
    R = o3.rand_matrix()
    x = torch.randn(4, so3_irreps(3, 4).dim)
    D_in, D_out = so3_irreps(3, 4).D_from_matrix(R), O_BLOCK.D_from_matrix(R)
    assert torch.allclose(lin(x @ D_in.T), lin(x) @ D_out.T, atol=1e-12)
