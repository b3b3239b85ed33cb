"""Radial basis on pair distances: exponential Bernstein polynomials with a smooth cutoff.

As in PhiSNet (Unke et al. 2021, and SpookyNet before it):

    b_k(r) = binom(K-1, k) * x**k * (1 - x)**(K-1-k) * f_cut(r),   x = exp(-alpha r)

with a learnable ``alpha > 0`` (1/Bohr) and the smooth cutoff
``f_cut(r) = exp(-r**2 / ((r_c - r)(r_c + r)))`` for ``r < r_c``, 0 beyond: infinitely
differentiable, so energies and forces stay smooth when a pair crosses the cutoff.

Examples
--------
>>> import torch
>>> rbf = ExpBernsteinBasis(num_basis=8, cutoff=15.0)
>>> rbf(torch.tensor([1.0, 2.0, 20.0])).shape
torch.Size([3, 8])
"""

from __future__ import annotations

import math

import torch
from torch import nn


def smooth_cutoff(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """``exp(-r^2 / ((rc - r)(rc + r)))`` inside the cutoff, exactly 0 at and beyond it."""
    inside = r < cutoff
    r_safe = torch.where(inside, r, torch.zeros_like(r))
    value = torch.exp(-(r_safe**2) / ((cutoff - r_safe) * (cutoff + r_safe)))
    return torch.where(inside, value, torch.zeros_like(r))


class ExpBernsteinBasis(nn.Module):
    """Exponential Bernstein radial basis with a learnable decay ``alpha``.

    Parameters
    ----------
    num_basis : int
        Number K of radial functions.
    cutoff : float
        Cutoff radius r_c in Bohr.
    alpha : float
        Initial decay constant in 1/Bohr (PhiSNet's default, 0.5 / 0.529... = 0.9449).
    """

    def __init__(self, num_basis: int = 16, cutoff: float = 15.0, alpha: float = 0.9448630629184640):
        super().__init__()
        self.num_basis = int(num_basis)
        self.cutoff = float(cutoff)
        k = torch.arange(self.num_basis, dtype=torch.get_default_dtype())
        n = self.num_basis - 1
        log_binom = torch.tensor([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(n + 1)])
        self.register_buffer("k", k)
        self.register_buffer("log_binom", log_binom.to(k.dtype))
        # softplus^-1(alpha), so that alpha stays positive while it learns
        self.raw_alpha = nn.Parameter(torch.tensor(math.log(math.expm1(alpha)), dtype=k.dtype))

    @property
    def alpha(self) -> torch.Tensor:
        return nn.functional.softplus(self.raw_alpha)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """Radial features of distances ``r`` (Bohr, > 0): shape ``r.shape + (K,)``."""
        r = r.unsqueeze(-1)
        log_x = -self.alpha * r  # log exp(-alpha r)
        log_1mx = torch.log(-torch.expm1(log_x))  # log(1 - x), accurate for small r
        n = self.num_basis - 1
        log_b = self.log_binom + self.k * log_x + (n - self.k) * log_1mx
        return torch.exp(log_b) * smooth_cutoff(r, self.cutoff)


class RadialMLP(torch.nn.Sequential):
    """Two-layer MLP from radial basis features to tensor-product path weights."""

    def __init__(self, num_in: int, hidden: int, num_out: int):
        super().__init__(torch.nn.Linear(num_in, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, num_out))
