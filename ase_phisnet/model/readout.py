"""A learned energy correction read out from the atom features, as MACE reads its energies.

PhiSNet's energy ``E = E_nn + 1/2 tr[P (F~ + H~core)]`` is not variational in F~: every error
of the predicted Hamiltonian enters E and the forces at first order. A model with
``energy_correction`` adds a per-atom term read from the invariant (l = 0) channels of the same
atom features that build the matrices,

    E = E_nn + 1/2 tr[P (F~ + H~core)] + sum_A e_corr(x_A) + sum_A e_{Z_A},

    e_corr(x_A) = scale * W2 silu(W1 x_A^(l=0) + b1) + b2     (Hartree),

trained through the energy and force terms of the loss. The orbitals, density matrix, dipole
and every other electronic property still come from the predicted F~ alone; the energy without
the correction (the Hamiltonian-only energy) is kept beside the total wherever energies are
reported. The output layer starts at zero, so a model that gains the correction (``init_from``
a trained model) starts with the energies it had.

Examples
--------
>>> import torch
>>> readout = AtomicEnergyCorrection(features=4)
>>> readout(torch.randn(3, 4)).shape          # one energy per atom, zero before training
torch.Size([3])
"""

from __future__ import annotations

import torch
from torch import nn

#: Hartree per unit of the MLP's output: weights of order one give corrections of tens of meV,
#: the size of the Hamiltonian's energy errors, so that Adam's step sizes suit them.
ENERGY_SCALE = 1.0e-3


class AtomicEnergyCorrection(nn.Module):
    """Per-atom energy (Hartree) from the ``features`` scalar channels of each atom.

    Parameters
    ----------
    features : int
        Scalar (l = 0) channels of the atom features, the MLP's input and hidden width.
    """

    def __init__(self, features: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(features, features), nn.SiLU(), nn.Linear(features, 1))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)
        self.scale = ENERGY_SCALE

    def forward(self, scalars: torch.Tensor) -> torch.Tensor:
        """``(n_atoms,)`` energies from ``(n_atoms, features)`` invariant features."""
        return self.scale * self.mlp(scalars).squeeze(-1)
