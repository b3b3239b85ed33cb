"""Real spherical harmonics of edge vectors, one matrix product with their tensor powers.

The harmonics are taken of vectors in e3nn's (y, z, x) axis order, which makes e3nn's irreps
the standard real spherical harmonics that :mod:`ase_phisnet.basis` uses. The values equal
e3nn's ``o3.spherical_harmonics`` (component normalization), the parity suite checks it.
"""

from __future__ import annotations

import functools

import torch
from e3nn import o3

from ..basis import E3NN_AXES


def spherical_harmonics(vectors: torch.Tensor, lmax: int) -> torch.Tensor:
    """Real spherical harmonics ``l = 0..lmax`` (component normalization) of Cartesian vectors.

    The vectors are in the package's (x, y, z) frame; the output is in the standard m = -l..l
    order of :mod:`ase_phisnet.basis`: e3nn's ``o3.spherical_harmonics`` of the vectors in its
    (y, z, x) order, ``normalize=True``. ``Y_l`` is a homogeneous polynomial of degree ``l`` in
    the unit vector ``u``, so all of them are one matrix product with the tensor powers
    ``1, u, u (x) u, ...`` (:func:`_harmonic_coefficients`): a few operations forward and
    backward, where e3nn's generated code takes about a hundred for ``lmax = 4``.
    """
    u = (vectors / vectors.norm(dim=-1, keepdim=True)).reshape(-1, 3)
    coefficients = _harmonic_coefficients(lmax).to(dtype=vectors.dtype, device=vectors.device)
    return (torch.cat(_tensor_powers(u, lmax), dim=1) @ coefficients).reshape(*vectors.shape[:-1], (lmax + 1) ** 2)


def _tensor_powers(u: torch.Tensor, lmax: int) -> list[torch.Tensor]:
    """``1, u, u (x) u, ...`` up to ``u^{(x) lmax}`` of unit vectors ``(n, 3)``: ``(n, 3^l)`` each."""
    powers = [torch.ones_like(u[:, :1])]
    for l in range(1, lmax + 1):
        powers.append((powers[-1][:, :, None] * u[:, None, :]).reshape(u.shape[0], 3**l))
    return powers


@functools.lru_cache(maxsize=None)
def _harmonic_coefficients(lmax: int) -> torch.Tensor:
    """``(sum_l 3^l, (lmax+1)^2)``: e3nn's harmonics as linear maps of the tensor powers
    ``u^{(x) l}`` (package frame). Least squares on 1000 random unit vectors in float64, per
    order (the harmonics of order ``l`` are exactly linear in ``u^{(x) l}``); the fit
    reproduces e3nn to about 1e-15."""
    generator = torch.Generator().manual_seed(0)
    u = torch.randn(1000, 3, generator=generator, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    reference = o3.spherical_harmonics(list(range(lmax + 1)), u[:, E3NN_AXES.tolist()], normalize=True, normalization="component")
    C = torch.zeros(sum(3**l for l in range(lmax + 1)), (lmax + 1) ** 2, dtype=torch.float64)
    row = 0
    for l, power in enumerate(_tensor_powers(u, lmax)):
        C[row : row + 3**l, l**2 : (l + 1) ** 2] = torch.linalg.lstsq(power, reference[:, l**2 : (l + 1) ** 2], driver="gelsd").solution
        row += 3**l
    return C
