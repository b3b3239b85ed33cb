"""Parity with e3nn: the package's equivariant blocks give e3nn's values and gradients.

Each block is checked against the e3nn primitive it replaces, with the same (copied) weights,
in float64 (the autouse fixture in tests/conftest.py): values and gradients agree to 1e-12 of
their largest magnitude (harmonics and gate: absolute 1e-12 / 1e-14).

* :func:`~ase_phisnet.equivariant.harmonics.spherical_harmonics` vs ``o3.spherical_harmonics``
* :class:`~ase_phisnet.equivariant.linear.EquivariantLinear` vs ``o3.Linear``
* :class:`~ase_phisnet.equivariant.tensor_product.HarmonicTensorProduct` ("uvu") and
  :class:`~ase_phisnet.equivariant.tensor_product.ChannelwiseTensorProduct` ("uuu") vs ``o3.TensorProduct``
* :class:`~ase_phisnet.equivariant.gate.GatedActivation` vs ``e3nn.nn.Gate``
"""

import pytest
import torch
from e3nn import o3
from e3nn.nn import Gate

from ase_phisnet.basis import E3NN_AXES, AOBasis
from ase_phisnet.equivariant.gate import GatedActivation
from ase_phisnet.equivariant.harmonics import spherical_harmonics
from ase_phisnet.equivariant.irreps import so3_irreps
from ase_phisnet.equivariant.linear import EquivariantLinear
from ase_phisnet.equivariant.tensor_product import ChannelwiseTensorProduct, HarmonicTensorProduct
from ase_phisnet.model.blocks import block_irreps_and_expansion

pytestmark = pytest.mark.fast

O_BLOCK = block_irreps_and_expansion(*[AOBasis("def2-svp", [8]).shell_ls[8]] * 2)[0]


def e3nn_harmonics(vectors, lmax):
    return o3.spherical_harmonics(list(range(lmax + 1)), vectors[..., E3NN_AXES.tolist()], normalize=True, normalization="component")


def test_spherical_harmonics():
    torch.manual_seed(0)
    for lmax in (0, 1, 4):
        vectors = (3 * torch.randn(200, 3)).requires_grad_()
        ours, ref = spherical_harmonics(vectors, lmax), e3nn_harmonics(vectors, lmax)
        assert ours.shape == ref.shape == (200, (lmax + 1) ** 2)
        assert torch.allclose(ours, ref, rtol=0, atol=1e-13)
        if lmax == 0:  # Y_0 = 1 has no gradient
            continue
        cot = torch.randn_like(ref)
        g_ours, g_ref = (torch.autograd.grad((y * cot).sum(), vectors)[0] for y in (ours, ref))
        assert torch.allclose(g_ours, g_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "irreps_in, irreps_out",
    [
        (so3_irreps(6, 4), so3_irreps(6, 4)),
        (so3_irreps(3, 4) + so3_irreps(3, 4), O_BLOCK),  # pair features -> an O-O orbital block
        (o3.Irreps("4x0e+4x1e"), o3.Irreps("1x1e+2x0e+1x1e+3x2e")),  # an order with no input: zeros
    ],
)
def test_linear(irreps_in, irreps_out):
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


def e3nn_product(irreps_1, irreps_2, lmax):
    instructions = [(i1, i2, ir3.l, "uvu", True) for i1, (_, ir1) in enumerate(irreps_1) for i2, (_, ir2) in enumerate(irreps_2) for ir3 in ir1 * ir2 if ir3.l <= lmax]
    return o3.TensorProduct(irreps_1, irreps_2, so3_irreps(irreps_1[0].mul, lmax), instructions, shared_weights=False, internal_weights=False)


@pytest.mark.parametrize("l1, l2, lmax", [(4, 4, 4), (2, 4, 3), (1, 2, 2)])
def test_harmonic_tensor_product(l1, l2, lmax):
    torch.manual_seed(l1 + l2 + lmax)
    irreps_1, irreps_2 = so3_irreps(5, l1), so3_irreps(1, l2)
    ours, ref = HarmonicTensorProduct(irreps_1, irreps_2, lmax), e3nn_product(irreps_1, irreps_2, lmax)
    assert ours.weight_numel == ref.weight_numel and ours.irreps_out == ref.irreps_out
    x = torch.randn(7, irreps_1.dim, dtype=torch.float64, requires_grad=True)
    sh = torch.randn(7, irreps_2.dim, dtype=torch.float64, requires_grad=True)
    w = torch.randn(7, ref.weight_numel, dtype=torch.float64, requires_grad=True)
    a, b = ours(x, sh, w), ref(x, sh, w)
    assert torch.allclose(a, b, rtol=0, atol=1e-12 * float(b.abs().max()))
    cot = torch.randn_like(a)
    for ga, gb in zip(torch.autograd.grad((a * cot).sum(), (x, sh, w)), torch.autograd.grad((b * cot).sum(), (x, sh, w))):
        assert torch.allclose(ga, gb, rtol=0, atol=1e-12 * float(gb.abs().max()))


@pytest.mark.parametrize("shared", [True, False])
def test_channelwise_tensor_product(shared):
    """The "uuu" product (x_i (x) x_j per channel) against e3nn's, shared and per-row weights."""
    torch.manual_seed(int(shared))
    irreps = so3_irreps(4, 4)
    instructions = [(i1, i2, ir3.l, "uuu", True) for i1, (_, ir1) in enumerate(irreps) for i2, (_, ir2) in enumerate(irreps) for ir3 in ir1 * ir2 if ir3.l <= 4]
    ref = o3.TensorProduct(irreps, irreps, irreps, instructions, shared_weights=shared, internal_weights=shared)
    ours = ChannelwiseTensorProduct(irreps, irreps, 4, shared)
    ours.load_state_dict(ref.state_dict())  # e3nn's constants dropped, a shared weight kept
    x1, x2 = (torch.randn(6, irreps.dim, requires_grad=True) for _ in range(2))
    w = None if shared else torch.randn(6, ref.weight_numel, requires_grad=True)
    args = (x1, x2) if shared else (x1, x2, w)
    a, b = ours(*args), ref(*args)
    assert torch.allclose(a, b, rtol=0, atol=1e-12 * float(b.abs().max()))
    cot = torch.randn_like(a)
    wrt = (x1, x2, ours.weight if shared else w), (x1, x2, ref.weight if shared else w)
    for ga, gb in zip(torch.autograd.grad((a * cot).sum(), wrt[0]), torch.autograd.grad((b * cot).sum(), wrt[1])):
        assert torch.allclose(ga, gb, rtol=0, atol=1e-12 * float(gb.abs().max()))
    assert ours(x1[:0], x2[:0], *(() if shared else (w[:0],))).shape == (0, irreps.dim)  # no rows


@pytest.mark.parametrize("scalars, gated", [("8x0e", "8x1e+8x2e+8x3e+8x4e"), ("3x0e", "2x1e+1x2e")])
def test_gate(scalars, gated):
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
