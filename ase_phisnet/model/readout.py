"""A learned energy correction read out from the atom features, as MACE reads its energies.

PhiSNet's energy ``E = E_nn + 1/2 tr[P (F~ + H~core)]`` is not variational in F~: every error
of the predicted Hamiltonian enters E and the forces at first order. A model with
``energy_correction`` adds a per-atom term read from the invariants of the same atom features
that build the matrices,

    E = E_nn + 1/2 tr[P (F~ + H~core)] + sum_A e_corr(x_A) + sum_A e_{Z_A},

    e_corr(x_A) = scale * W2 silu(W1 (q_A - mean) / std + b1) + b2     (Hartree),

    q_A = [x_A^(l=0), |x_A^(l=1)|^2, ..., |x_A^(lmax)|^2]   (per channel; |.|^2 sums over m).

The squared norms carry the geometry: after the last interaction the scalar channels alone
vary too little with it to fit the energy residual of the Hamiltonian (water: no better than
a constant), while the norms of the higher orders hold it. ``mean`` and ``std`` are fixed
buffers set from the training frames when the correction is created
(:meth:`AtomicEnergyCorrection.set_normalization`): raw invariants sit far from zero and vary
little, and an MLP on them learns slowly.

trained through the energy and force terms of the loss. The orbitals, density matrix, dipole
and every other electronic property still come from the predicted F~ alone; the energy without
the correction (the Hamiltonian-only energy) is kept beside the total wherever energies are
reported. The output layer starts at zero, so a model that gains the correction (``init_from``
a trained model) starts with the energies it had.

Examples
--------
>>> import torch
>>> readout = AtomicEnergyCorrection(features=4, lmax=2)
>>> x = torch.randn(3, 4 * 9)                   # 3 atoms, 4 channels on orders 0, 1, 2
>>> readout.invariants(x).shape, readout(x).shape   # one energy per atom, zero before training
(torch.Size([3, 12]), torch.Size([3]))
"""

from __future__ import annotations

import torch
from torch import nn

#: Hartree per unit of the MLP's output: weights of order one give corrections of tens of meV,
#: the size of the Hamiltonian's energy errors, so that Adam's step sizes suit them.
ENERGY_SCALE = 1.0e-3


class AtomicEnergyCorrection(nn.Module):
    """Per-atom energy (Hartree) from the invariants of each atom's features.

    Parameters
    ----------
    features : int
        Channels per order of the atom features (the MLP's hidden width).
    lmax : int
        Highest order of the atom features, which hold ``features`` channels on every order
        ``0..lmax`` (e3nn's layout: order l's block is channel-major, ``u * (2l + 1) + m``).
    """

    def __init__(self, features: int, lmax: int):
        super().__init__()
        self.features, self.lmax = int(features), int(lmax)
        self.mlp = nn.Sequential(nn.Linear(features * (lmax + 1), features), nn.SiLU(), nn.Linear(features, 1))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)
        self.scale = ENERGY_SCALE
        self.register_buffer("mean", torch.zeros(features * (lmax + 1)))
        self.register_buffer("std", torch.ones(features * (lmax + 1)))

    @torch.no_grad()
    def set_normalization(self, x: torch.Tensor) -> None:
        """Set ``mean`` and ``std`` to those of the invariants of atom features ``x`` (training frames)."""
        q = self.invariants(x)
        self.mean.copy_(q.mean(0))
        self.std.copy_(q.std(0).clamp_min(1e-6 * float(q.std(0).max()) + 1e-12))

    def invariants(self, x: torch.Tensor) -> torch.Tensor:
        """``(n_atoms, features * (lmax + 1))``: the scalar channels, then per order l >= 1 the
        squared norm of each channel over its 2l+1 components."""
        C = self.features
        parts = [x[:, :C]] + [x[:, C * l * l : C * (l + 1) ** 2].reshape(len(x), C, 2 * l + 1).pow(2).sum(-1) for l in range(1, self.lmax + 1)]
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n_atoms,)`` energies from ``(n_atoms, features * (lmax + 1)**2)`` atom features."""
        return self.scale * self.mlp((self.invariants(x) - self.mean) / self.std).squeeze(-1)
