"""spherical_harmonics: e3nn's harmonics (y, z, x order, normalized vectors) as one matrix
product with the tensor powers of the unit vector (float64: tests/conftest.py)."""

import torch

from ase_phisnet.equivariant.harmonics import spherical_harmonics


def test_keeps_leading_dimensions_and_ignores_length():
    vectors = torch.randn(2, 5, 3)
    assert spherical_harmonics(vectors, 2).shape == (2, 5, 9)
    assert spherical_harmonics(vectors[:, :0], 4).shape == (2, 0, 25)  # no pairs
    assert torch.allclose(spherical_harmonics(7.5 * vectors, 3), spherical_harmonics(vectors, 3), atol=1e-14)
