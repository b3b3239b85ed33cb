"""Total energy from predicted matrices, PhiSNet's expression, and its exact derivative.

    E = E_nn + 1/2 tr[P (F~ + H~core)],   P = 2 C_o C_o^T,   F~ C = S C eps

(closed shell, Hartree). It is the Hartree-Fock energy expression; H~core is learned so that E
matches the reference (DESIGN.md). Forces are ``-dE/dR`` by autograd through the network, the
degeneracy-safe density matrix (:mod:`.eigensolver`) and the exact overlap (:mod:`.overlap`).
"""

from __future__ import annotations

import torch

from .eigensolver import closed_shell_density


def nuclear_repulsion(numbers: torch.Tensor, positions_bohr: torch.Tensor) -> torch.Tensor:
    """``sum_{A<B} Z_A Z_B / |R_A - R_B|`` in Hartree (positions in Bohr), differentiable."""
    Z = numbers.to(positions_bohr.dtype)
    i, j = torch.triu_indices(len(Z), len(Z), offset=1, device=positions_bohr.device)
    r = (positions_bohr[i] - positions_bohr[j]).norm(dim=-1)
    return (Z[i] * Z[j] / r).sum()


def phisnet_energy(F: torch.Tensor, H_core: torch.Tensor, S: torch.Tensor, n_occ: int, E_nn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(E, P)``: PhiSNet's energy (Hartree) and the closed-shell density matrix.

    All matrices in one AO order; ``n_occ`` doubly occupied orbitals.
    """
    P = closed_shell_density(F, S, n_occ)
    return E_nn + 0.5 * (P * (F + H_core)).sum((-1, -2)), P
