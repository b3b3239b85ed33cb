"""EquivariantLinear: e3nn's o3.Linear as one contraction per order (float64: tests/conftest.py)."""

import pytest
import torch
from e3nn import o3

from ase_phisnet.basis import AOBasis
from ase_phisnet.model.blocks import block_irreps_and_expansion
from ase_phisnet.equivariant.irreps import so3_irreps
from ase_phisnet.equivariant.linear import EquivariantLinear

O_BLOCK = block_irreps_and_expansion(*[AOBasis("def2-svp", [8]).shell_ls[8]] * 2)[0]


@pytest.mark.parametrize(
    "irreps_in, irreps_out",
    [
        (so3_irreps(6, 4), so3_irreps(6, 4)),
        (so3_irreps(3, 4) + so3_irreps(3, 4), O_BLOCK),  # pair features -> an O-O orbital block
        (o3.Irreps("4x0e+4x1e"), o3.Irreps("1x1e+2x0e+1x1e+3x2e")),  # an order with no input: zeros
    ],
)
def test_matches_e3nn_with_the_same_weights(irreps_in, irreps_out):
    torch.manual_seed(0)
    ref, ours = o3.Linear(irreps_in, irreps_out), EquivariantLinear(irreps_in, irreps_out)
    assert ours.weight.shape == ref.weight.shape
    ours.load_state_dict(ref.state_dict())  # e3nn's bias placeholder and output mask are dropped
    x = torch.randn(5, irreps_in.dim, requires_grad=True)
    a, b = ours(x), ref(x)
    assert torch.allclose(a, b, rtol=0, atol=1e-12 * float(b.abs().max()))
    cot = torch.randn_like(a)
    for ga, gb in zip(torch.autograd.grad((a * cot).sum(), (x, ours.weight)), torch.autograd.grad((b * cot).sum(), (x, ref.weight))):
        assert torch.allclose(ga, gb, rtol=0, atol=1e-12 * float(gb.abs().max()))


def test_equivariant_under_rotation():
    lin = EquivariantLinear(so3_irreps(3, 4), O_BLOCK)
    R = o3.rand_matrix()
    x = torch.randn(4, so3_irreps(3, 4).dim)
    D_in, D_out = so3_irreps(3, 4).D_from_matrix(R), O_BLOCK.D_from_matrix(R)
    assert torch.allclose(lin(x @ D_in.T), lin(x) @ D_out.T, atol=1e-12)
