"""The exact one-electron core Hamiltonian h(R) = T + V_nuc from PySCF integrals, differentiable.

A model's H~core head may predict a correction on top of h(R) (``PhiSNetConfig.core_baseline``):
the large, steeply geometry-dependent nuclear attraction and its derivatives are then exact, and
the network learns only the smooth remainder (for a DFT reference, the exchange-correlation term
that the Hartree-Fock-like energy expression misses; DESIGN.md).

The derivative follows PySCF's ``hcore_generator``. Moving atom A moves its AOs and its nucleus
(charge Z_A, V_nuc = -sum_A Z_A / |r - R_A|); by translational invariance the nucleus alone gives
``-Z_A (<d mu/dr | 1/|r - R_A| | nu> + <mu | 1/|r - R_A| | d nu/dr>)``. For a gradient matrix
G = dE/dh, with Gs = G + G^T,

    dE/dR_A = -sum_{nu on A} sum_mu Gs_{mu nu} <mu | h | d nu/dr> - Z_A sum_{mu nu} Gs_{mu nu} <mu | 1/|r - R_A| | d nu/dr>

(:func:`core_hamiltonian_gradient`). As for :mod:`.overlap`, that one contraction serves both the
NumPy step and the torch backward, in operations that NumPy arrays and torch tensors share, so a
force loss can differentiate it again with respect to the network's output.
"""

from __future__ import annotations

import numpy as np
import torch

from .overlap import OneElectronIntor, atom_of_ao, ket_derivative, set_geometry


def core_hamiltonian_gradient(dE_dh, core_ip, rinv_ip, charges, atom_of_ao):
    """dE/dR (natm, 3) from a gradient matrix G = dE/dh (nao, nao), Hartree/Bohr.

    NumPy arrays or torch tensors (all of one kind); in torch it is differentiable with respect to G.

    Parameters
    ----------
    dE_dh : (nao, nao) array
        G, need not be symmetric.
    core_ip : (3, nao, nao) array
        ``<mu | T + V_nuc | d nu/dr_x>`` (:meth:`ExactCoreHamiltonian.integrals`).
    rinv_ip : (3, nao, nao, natm) array
        ``<mu | 1/|r - R_A| | d nu/dr_x>`` for every nucleus A.
    charges : (natm,) array
        Nuclear charges Z_A.
    atom_of_ao : (natm, nao) array
        :func:`ase_phisnet.electronic.overlap.atom_of_ao`.
    """
    G = dE_dh + dE_dh.T
    moving_aos = atom_of_ao @ (core_ip * G).sum(-2).T
    moving_nuclei = charges[:, None] * (G.reshape(-1) @ rinv_ip.reshape(rinv_ip.shape[0], -1, rinv_ip.shape[-1])).T
    return -(moving_aos + moving_nuclei)


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
        self.charges = mol.atom_charges().astype(np.float64)
        self.atom_of_ao = atom_of_ao(mol)
        self._kin = OneElectronIntor(mol, "int1e_kin", hermi=1)
        self._nuc = OneElectronIntor(mol, "int1e_nuc", hermi=1)
        self._ipkin = OneElectronIntor(mol, "int1e_ipkin", comp=3)
        self._rinv_ip = OneElectronIntor(mol, "int1e_grids_ip", comp=3)

    def __call__(self, positions_bohr: torch.Tensor) -> torch.Tensor:
        """h at ``positions_bohr`` (natm, 3), differentiable with respect to them."""
        return _CoreHamiltonian.apply(positions_bohr, self)

    def integrals(self, positions_bohr: np.ndarray | None, derivative: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(h, core_ip, rinv_ip)``: h (nao, nao), Hartree, and, if asked, the derivative integrals
        (Hartree/Bohr) that :func:`core_hamiltonian_gradient` contracts.

        ``core_ip`` (3, nao, nao) is ``<mu | T + V_nuc | d nu/dr_x>``, ``rinv_ip`` (3, nao, nao, natm)
        is ``<mu | 1/|r - R_A| | d nu/dr_x>``. ``positions_bohr`` None: at the geometry the ``Mole``
        already has.
        """
        if positions_bohr is not None:
            set_geometry(self.mol, positions_bohr)
        h = self._kin() + self._nuc()
        if not derivative:
            return h, None, None
        # <d mu/dr | 1/|r - R_A| | nu> for every nucleus A in one call, PySCF's (3, natm, nao, nao)
        # (contiguous as (3, nu, mu, A)), turned to the ket derivative (3, mu, nu, A)
        rinv_ip = np.ascontiguousarray(self._rinv_ip(grids=self.mol.atom_coords()).transpose(0, 3, 2, 1))
        # <mu | V_nuc | d nu/dr> = -sum_A Z_A <mu | 1/|r - R_A| | d nu/dr>
        core_ip = ket_derivative(self._ipkin()) - rinv_ip @ self.charges
        return h, core_ip, rinv_ip

    def gradient(self, dE_dh: np.ndarray, core_ip: np.ndarray, rinv_ip: np.ndarray) -> np.ndarray:
        """dE/dR (natm, 3), Hartree/Bohr, from dE/dh and this geometry's derivative integrals (:func:`core_hamiltonian_gradient`)."""
        return core_hamiltonian_gradient(dE_dh, core_ip, rinv_ip, self.charges, self.atom_of_ao)


class _CoreHamiltonian(torch.autograd.Function):
    @staticmethod
    def forward(ctx, positions, core: ExactCoreHamiltonian):
        h, core_ip, rinv_ip = core.integrals(positions.detach().cpu().numpy(), derivative=positions.requires_grad)
        if core_ip is not None:
            like = {"dtype": positions.dtype, "device": positions.device}
            ctx.save_for_backward(*(torch.as_tensor(x, **like) for x in (core_ip, rinv_ip, core.charges, core.atom_of_ao)))
        return torch.as_tensor(h, dtype=positions.dtype, device=positions.device)

    @staticmethod
    def backward(ctx, gh):
        return core_hamiltonian_gradient(gh, *ctx.saved_tensors), None
