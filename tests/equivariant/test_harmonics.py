"""spherical_harmonics: e3nn's harmonics (y, z, x order, normalized vectors) as one matrix
product with the tensor powers of the unit vector (float64: tests/conftest.py)."""

import torch
from e3nn import o3

from ase_phisnet.basis import E3NN_AXES
from ase_phisnet.equivariant.harmonics import spherical_harmonics


def e3nn_harmonics(vectors, lmax):
    return o3.spherical_harmonics(list(range(lmax + 1)), vectors[..., E3NN_AXES.tolist()], normalize=True, normalization="component")


def test_matches_e3nn_and_its_gradients():
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


def test_keeps_leading_dimensions_and_ignores_length():
    vectors = torch.randn(2, 5, 3)
    assert spherical_harmonics(vectors, 2).shape == (2, 5, 9)
    assert spherical_harmonics(vectors[:, :0], 4).shape == (2, 0, 25)  # no pairs
    assert torch.allclose(spherical_harmonics(7.5 * vectors, 3), spherical_harmonics(vectors, 3), atol=1e-14)
