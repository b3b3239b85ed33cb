"""The exact AO overlap S(R) from PySCF integrals, as a differentiable function of positions.

``S = mol.intor('int1e_ovlp')`` at the given geometry; its derivative comes from
``int1e_ipovlp``: for an AO ``nu`` on atom A, moving A moves ``nu``, so

    dS_{mu nu}/dR_A = -[nu on A] <mu | d nu/dr> - [mu on A] <d mu/dr | nu>

and for a gradient matrix G = dE/dS, ``dE/dR_A = -sum_{nu on A} sum_mu (G + G^T)_{mu nu} <mu | d nu/dr>``
(:func:`overlap_gradient`). That one contraction serves both the NumPy step
(:mod:`.analytic`) and the torch backward: it is written with operations that NumPy arrays and
torch tensors share, so in torch it stays differentiable with respect to G (what training on
forces needs). The second derivative of S itself (``int1e_ipipovlp``) is not provided: Hessians
come from finite differences of forces.

One :class:`ExactOverlap` per molecule keeps its PySCF ``Mole`` and only moves the atoms
(``set_geom_``), so a step rebuilds neither the basis nor the integral set-up. Derivative
integrals are kept with the derivative on the ket, ``[x, mu, nu] = <mu | d nu/dr_x>``, the layout
in which PySCF's buffer is already contiguous.
"""

from __future__ import annotations

import numpy as np
import torch
from pyscf.gto import moleintor
from pyscf.gto.mole import NGRIDS, PTR_GRIDS


def set_geometry(mol, positions_bohr) -> None:
    """Move the atoms of ``mol`` to ``positions_bohr`` (natm, 3), in place (basis and charge kept)."""
    mol.set_geom_(np.asarray(positions_bohr, dtype=np.float64), unit="Bohr", symmetry=False)


def atom_of_ao(mol) -> np.ndarray:
    """(natm, nao) float64: 1 where the AO (column) sits on the atom (row), else 0.

    ``atom_of_ao(mol) @ x`` sums a per-AO quantity ``x`` (nao, ...) over each atom's AOs.
    """
    A = np.zeros((mol.natm, mol.nao))
    for atom, (_, _, p0, p1) in enumerate(mol.aoslice_by_atom()):
        A[atom, p0:p1] = 1.0
    return A


class OneElectronIntor:
    """One PySCF one-electron integral of a fixed ``Mole``, called with fewer Python layers.

    What ``mol.intor(name, comp=comp, hermi=hermi, grids=...)`` returns, with the integral's
    name, the AO offsets and the shell range worked out once (``pyscf.gto.moleintor.getints2c``),
    at whatever geometry the ``Mole`` has when called.

    Parameters
    ----------
    mol : pyscf.gto.Mole
    name : str
        PySCF integral name without the ``_sph``/``_cart`` suffix, e.g. ``"int1e_ovlp"``.
    comp : int
        Number of components (3 for a gradient integral).
    hermi : int
        1 for a symmetric integral (only one triangle is computed), else 0.
    """

    def __init__(self, mol, name: str, comp: int = 1, hermi: int = 0):
        self.mol = mol
        self.name = name + ("_cart" if mol.cart else "_sph")
        self.comp, self.hermi = int(comp), int(hermi)
        self.ao_loc = moleintor.make_loc(mol._bas, self.name)
        self.shls_slice = (0, mol.nbas, 0, mol.nbas)

    def __call__(self, grids: np.ndarray | None = None) -> np.ndarray:
        """The integrals; ``grids`` (ngrids, 3), Bohr, for the ``int1e_grids*`` family."""
        mol = self.mol
        env = mol._env
        if grids is not None:
            env = np.append(env, grids.ravel())
            env[NGRIDS] = grids.shape[0]
            env[PTR_GRIDS] = env.size - grids.size
        return moleintor.getints2c(self.name, mol._atm, mol._bas, env, self.shls_slice, self.comp, self.hermi, self.ao_loc)


def ket_derivative(ip: np.ndarray) -> np.ndarray:
    """``[x, mu, nu] = <mu | ... | d nu/dr_x>`` from PySCF's ``[x, mu, nu] = <d mu/dr_x | ... | nu>``
    (real AOs: the swap of the AO indices; a view, copied only if PySCF's layout ever changes)."""
    return np.ascontiguousarray(ip.swapaxes(-1, -2))


def overlap_gradient(dE_dS, ovlp_ip, atom_of_ao):
    """dE/dR (natm, 3) from a gradient matrix G = dE/dS (nao, nao), Hartree/Bohr.

    ``dE/dR_A = -sum_{nu on A} sum_mu (G + G^T)_{mu nu} <mu | d nu/dr>``. NumPy arrays or torch
    tensors (all of one kind); in torch it is differentiable with respect to G.

    Parameters
    ----------
    dE_dS : (nao, nao) array
        G, need not be symmetric.
    ovlp_ip : (3, nao, nao) array
        ``<mu | d nu/dr_x>`` (:meth:`ExactOverlap.integrals`).
    atom_of_ao : (natm, nao) array
        :func:`atom_of_ao`.
    """
    G = dE_dS + dE_dS.T
    return -(atom_of_ao @ (ovlp_ip * G).sum(-2).T)


class ExactOverlap:
    """S(R) for one molecule (fixed atoms and basis), PySCF AO order.

    Parameters
    ----------
    mol : pyscf.gto.Mole
        The molecule; its geometry is replaced at every call.
    """

    def __init__(self, mol):
        self.mol = mol
        self.atom_of_ao = atom_of_ao(mol)
        self._ovlp = OneElectronIntor(mol, "int1e_ovlp", hermi=1)
        self._ipovlp = OneElectronIntor(mol, "int1e_ipovlp", comp=3)

    def __call__(self, positions_bohr: torch.Tensor) -> torch.Tensor:
        """S at ``positions_bohr`` (natm, 3), differentiable with respect to them."""
        return _Overlap.apply(positions_bohr, self)

    def integrals(self, positions_bohr: np.ndarray | None, derivative: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """``(S, ovlp_ip)``: S (nao, nao) and, if asked, ``<mu | d nu/dr_x>`` (3, nao, nao), Bohr^-1.

        ``positions_bohr`` None: at the geometry the ``Mole`` already has.
        """
        if positions_bohr is not None:
            set_geometry(self.mol, positions_bohr)
        return self._ovlp(), (ket_derivative(self._ipovlp()) if derivative else None)

    def gradient(self, dE_dS: np.ndarray, ovlp_ip: np.ndarray) -> np.ndarray:
        """dE/dR (natm, 3), Hartree/Bohr, from dE/dS and this geometry's ``ovlp_ip`` (:func:`overlap_gradient`)."""
        return overlap_gradient(dE_dS, ovlp_ip, self.atom_of_ao)


class _Overlap(torch.autograd.Function):
    @staticmethod
    def forward(ctx, positions, overlap: ExactOverlap):
        S, ovlp_ip = overlap.integrals(positions.detach().cpu().numpy(), derivative=positions.requires_grad)
        if ovlp_ip is not None:
            like = {"dtype": positions.dtype, "device": positions.device}
            ctx.save_for_backward(torch.as_tensor(ovlp_ip, **like), torch.as_tensor(overlap.atom_of_ao, **like))
        return torch.as_tensor(S, dtype=positions.dtype, device=positions.device)

    @staticmethod
    def backward(ctx, gS):
        ovlp_ip, atom_of_ao_ = ctx.saved_tensors
        return overlap_gradient(gS, ovlp_ip, atom_of_ao_), None
