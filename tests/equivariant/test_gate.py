"""GatedActivation: e3nn's Gate in four operations (float64: tests/conftest.py)."""

import pytest
import torch
from e3nn import o3
from e3nn.nn import Gate

from ase_phisnet.equivariant.gate import GatedActivation
from ase_phisnet.equivariant.irreps import so3_irreps


@pytest.mark.parametrize("scalars, gated", [("8x0e", "8x1e+8x2e+8x3e+8x4e"), ("3x0e", "2x1e+1x2e")])
def test_matches_e3nn_and_its_gradient(scalars, gated):
    torch.manual_seed(0)
    gated_irreps = o3.Irreps(gated)
    ref = Gate(scalars, [torch.nn.functional.silu], f"{gated_irreps.num_irreps}x0e", [torch.sigmoid], gated_irreps)
    ours = GatedActivation(scalars, gated_irreps)
    assert ours.irreps_in == ref.irreps_in and ours.irreps_out == ref.irreps_out
    x = torch.randn(6, ref.irreps_in.dim, requires_grad=True)
    a, b = ours(x), ref(x)
    assert torch.allclose(a, b, rtol=0, atol=1e-14)
    cot = torch.randn_like(a)
    (ga,), (gb,) = torch.autograd.grad((a * cot).sum(), x), torch.autograd.grad((b * cot).sum(), x)
    assert torch.allclose(ga, gb, rtol=0, atol=1e-14)


@pytest.mark.parametrize("gated", ["2x1e+1x2e+2x1e", "1x2e+1x1e", ""])
def test_refuses_gated_irreps_it_would_order_differently_from_e3nn(gated):
    with pytest.raises(ValueError, match="sorted and simplified"):
        GatedActivation("2x0e", gated)


def test_equivariant_under_rotation():
    gate = GatedActivation("4x0e", so3_irreps(4, 4)[1:])
    R = o3.rand_matrix(dtype=torch.float64)
    x = torch.randn(5, gate.irreps_in.dim)
    D_in, D_out = gate.irreps_in.D_from_matrix(R), gate.irreps_out.D_from_matrix(R)
    assert torch.allclose(gate(x @ D_in.T), gate(x) @ D_out.T, atol=1e-12)


def test_files_written_with_e3nns_gate_load():
    """Model files hold e3nn's Gate state (an empty weight and an output mask); they load."""
    ref = Gate("2x0e", [torch.nn.functional.silu], "1x0e", [torch.sigmoid], "1x1e")
    ours = GatedActivation("2x0e", "1x1e")
    assert set(ref.state_dict()) == {"mul.weight", "mul.output_mask"}
    ours.load_state_dict(ref.state_dict())
    assert not ours.state_dict()
