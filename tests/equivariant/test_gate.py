"""GatedActivation: e3nn's Gate in four operations (float64: tests/conftest.py)."""

import pytest
import torch
from e3nn import o3
from e3nn.nn import Gate

from ase_phisnet.equivariant.gate import GatedActivation
from ase_phisnet.equivariant.irreps import so3_irreps


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
