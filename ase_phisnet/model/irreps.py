"""Irreps helpers shared by the model blocks.

The model is SE(3)-equivariant (rotations and translations, as PhiSNet): every irrep carries the
parity label ``e`` so that all Clebsch-Gordan paths ``l1 x l2 -> L`` with
``|l1 - l2| <= L <= l1 + l2`` are allowed, as an orbital block ``l_i x l_j`` needs them.
Spherical harmonics are taken of edge vectors in e3nn's (y, z, x) axis order, which makes
e3nn's irreps the standard real spherical harmonics that :mod:`ase_phisnet.basis` uses.
"""

from __future__ import annotations

import functools

import torch
from e3nn import o3

from ..basis import E3NN_AXES
from .tensor_product import ChannelwiseTensorProduct, HarmonicTensorProduct


def so3_irreps(mul: int, lmax: int) -> o3.Irreps:
    """``mul x 0e + mul x 1e + ... + mul x lmax e``."""
    return o3.Irreps([(mul, (l, 1)) for l in range(lmax + 1)])


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


def tensor_product(irreps_1: o3.Irreps, irreps_2: o3.Irreps, lmax: int, mode: str, shared_weights: bool):
    """A weighted tensor product over every allowed path ``l1 x l2 -> L <= lmax``.

    ``mode`` is e3nn's connection mode: ``"uvu"`` (channel-wise with a second input of any
    multiplicity, e.g. spherical harmonics) or ``"uuu"`` (element-wise over matching channels).
    All paths into the same order ``L`` are summed, each with its own weights, into one block
    of ``mul_1`` channels: the output irreps are ``mul_1 x 0e + ... + mul_1 x Le``. (Separate
    outputs per path would multiply the feature size by the number of paths.) The products
    are :class:`.tensor_product.HarmonicTensorProduct` (``"uvu"``, per-row weights) and
    :class:`.tensor_product.ChannelwiseTensorProduct` (``"uuu"``): e3nn's numbers in far
    fewer operations.
    Returns the tensor product and its output irreps.
    """
    mul = irreps_1[0].mul
    if any(m != mul for m, _ in irreps_1):
        raise ValueError(f"tensor_product needs one multiplicity for all of {irreps_1}")
    irreps_out = so3_irreps(mul, lmax)
    if mode == "uvu" and not shared_weights:
        return HarmonicTensorProduct(irreps_1, irreps_2, lmax), irreps_out
    if mode == "uuu":
        return ChannelwiseTensorProduct(irreps_1, irreps_2, lmax, shared_weights), irreps_out
    raise ValueError(f"tensor products are 'uvu' with per-row weights or 'uuu'; got mode {mode!r}, shared_weights={shared_weights}")


class RadialMLP(torch.nn.Sequential):
    """Two-layer MLP from radial basis features to tensor-product path weights."""

    def __init__(self, num_in: int, hidden: int, num_out: int):
        super().__init__(torch.nn.Linear(num_in, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, num_out))
