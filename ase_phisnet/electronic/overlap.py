"""The exact AO overlap S(R) from PySCF integrals, as a differentiable function of positions.

``S = mol.intor('int1e_ovlp')`` at the given geometry; its derivative comes from
``int1e_ipovlp`` (``<nabla mu | nu>``): for an AO ``mu`` on atom A,
``dS_{mu nu}/dR_A = -<nabla mu | nu>`` (and the transpose for ``nu`` on A). The backward is a
contraction with these fixed integrals, written in torch, so it is differentiable again with
respect to the incoming cotangent (what training on forces needs). The second derivative of S
itself (``int1e_ipipovlp``) is not provided: Hessians come from finite differences of forces.

One :class:`ExactOverlap` per molecule keeps its PySCF ``Mole`` and only moves the atoms
(``set_geom_``), so a step rebuilds neither the basis nor the integral set-up.
"""

from __future__ import annotations

import numpy as np
import torch


class ExactOverlap:
    """S(R) for one molecule (fixed atoms and basis), PySCF AO order.

    Parameters
    ----------
    mol : pyscf.gto.Mole
        The molecule; its geometry is replaced at every call.
    """

    def __init__(self, mol):
        self.mol = mol
        self.ao_atom = torch.as_tensor(np.concatenate([[a] * (stop - start) for a, (_, _, start, stop) in enumerate(mol.aoslice_by_atom())]), dtype=torch.long)

    def __call__(self, positions_bohr: torch.Tensor) -> torch.Tensor:
        """S at ``positions_bohr`` (natm, 3), differentiable with respect to them."""
        return _Overlap.apply(positions_bohr, self)

    def integrals(self, positions_bohr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.mol.set_geom_(np.asarray(positions_bohr, dtype=np.float64), unit="Bohr", symmetry=False)
        return self.mol.intor("int1e_ovlp"), self.mol.intor("int1e_ipovlp")


class _Overlap(torch.autograd.Function):
    @staticmethod
    def forward(ctx, positions, overlap: ExactOverlap):
        S, ip = overlap.integrals(positions.detach().cpu().numpy())
        ctx.natm = positions.shape[0]
        ctx.save_for_backward(torch.as_tensor(ip, dtype=positions.dtype, device=positions.device), overlap.ao_atom.to(positions.device))
        return torch.as_tensor(S, dtype=positions.dtype, device=positions.device)

    @staticmethod
    def backward(ctx, gS):
        ip, ao_atom = ctx.saved_tensors
        # dE/dR_A = -sum_{mu on A, nu} <nabla mu|nu> (gS + gS^T)_{mu nu}
        per_ao = -torch.einsum("xmn,mn->mx", ip, gS + gS.transpose(-1, -2))
        grad = torch.zeros(ctx.natm, 3, dtype=gS.dtype, device=gS.device).index_add(0, ao_atom, per_ao)
        return grad, None
