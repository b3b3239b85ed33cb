"""The exact one-electron core Hamiltonian h(R) = T + V_nuc from PySCF integrals, differentiable.

A model's H~core head may predict a correction on top of h(R) (``PhiSNetConfig.core_baseline``):
the large, steeply geometry-dependent nuclear attraction and its derivatives are then exact, and
the network learns only the smooth remainder (for a DFT reference, the exchange-correlation term
that the Hartree-Fock-like energy expression misses; DESIGN.md).

The derivative follows PySCF's ``hcore_generator``: for atom A,

    dh/dR_A = V_A + V_A^T,   V_A = -Z_A <nabla mu | 1/|r - R_A| | nu> - [mu on A] <nabla mu | T + V_nuc | nu>

As for :mod:`.overlap`, the backward is a contraction with these fixed integrals written in
torch, so a force loss can differentiate it again with respect to the network's output.
"""

from __future__ import annotations

import numpy as np
import torch


class ExactCoreHamiltonian:
    """h(R) = T + V_nuc for one molecule (fixed atoms and basis), PySCF AO order, Hartree.

    Parameters
    ----------
    mol : pyscf.gto.Mole
        The molecule; its geometry is replaced at every call (the basis is not rebuilt).

    Examples
    --------
    >>> import torch
    >>> from ase_phisnet.molecule import build_mol
    >>> mol = build_mol([8, 1, 1], [[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]])
    >>> h = ExactCoreHamiltonian(mol)(torch.tensor(mol.atom_coords()))
    >>> tuple(h.shape)
    (24, 24)
    """

    def __init__(self, mol):
        self.mol = mol
        self.ao_ranges = [(p0, p1) for _, _, p0, p1 in mol.aoslice_by_atom()]

    def __call__(self, positions_bohr: torch.Tensor) -> torch.Tensor:
        """h at ``positions_bohr`` (natm, 3), differentiable with respect to them."""
        return _CoreHamiltonian.apply(positions_bohr, self)

    def integrals(self, positions_bohr: np.ndarray, derivative: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """``(h, dh)``: h (nao, nao) and, if asked, the per-atom halves V_A (natm, 3, nao, nao)."""
        mol = self.mol
        mol.set_geom_(np.asarray(positions_bohr, dtype=np.float64), unit="Bohr", symmetry=False)
        h = mol.intor("int1e_kin") + mol.intor("int1e_nuc")
        if not derivative:
            return h, None
        charges = mol.atom_charges()
        # <nabla mu | 1/|r - R_A| | nu> for every nucleus A in one call: (3, natm, nao, nao)
        rinv = mol.intor("int1e_grids_ip", grids=mol.atom_coords())
        V = -charges[:, None, None, None] * rinv.transpose(1, 0, 2, 3)
        # <nabla mu | T + V_nuc | nu>, with V_nuc = -sum_A Z_A / |r - R_A|
        ip = -(mol.intor("int1e_ipkin", comp=3) - np.einsum("a,xamn->xmn", charges, rinv))
        for atom, (p0, p1) in enumerate(self.ao_ranges):
            V[atom][:, p0:p1] += ip[:, p0:p1]
        return h, V


class _CoreHamiltonian(torch.autograd.Function):
    @staticmethod
    def forward(ctx, positions, core: ExactCoreHamiltonian):
        h, V = core.integrals(positions.detach().cpu().numpy(), derivative=positions.requires_grad)
        if V is not None:
            ctx.save_for_backward(torch.as_tensor(V, dtype=positions.dtype, device=positions.device))
        return torch.as_tensor(h, dtype=positions.dtype, device=positions.device)

    @staticmethod
    def backward(ctx, gh):
        (V,) = ctx.saved_tensors
        # dE/dR_A = sum_{mu nu} (gh + gh^T)_{mu nu} (V_A)_{mu nu}
        return torch.einsum("axmn,mn->ax", V, gh + gh.transpose(-1, -2)), None
