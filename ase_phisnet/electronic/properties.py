"""One-electron properties of a closed-shell density matrix, PySCF style (molecule first).

Atomic units in and out: positions in Bohr, dipoles in e·Bohr (the calculator converts to
e·Å for ASE), charges in e.

Examples
--------
>>> from pyscf import gto, scf
>>> mol = gto.M(atom="O 0 0 0.2; H 0 1.4 -0.9; H 0 -1.4 -0.9", unit="Bohr", basis="sto-3g")
>>> P = scf.RHF(mol).run(verbose=0).make_rdm1()
>>> round(float(mulliken_charges(mol, P).sum()), 10)
0.0
"""

from __future__ import annotations

import numpy as np


def closed_shell_rdm1(fock: np.ndarray, overlap: np.ndarray, n_occ: int) -> np.ndarray:
    """``P = 2 C_occ C_occ^T`` of ``F C = S C eps`` (NumPy; the torch version with a
    degeneracy-safe backward is :func:`~ase_phisnet.electronic.closed_shell_density`)."""
    import scipy.linalg

    _, C = scipy.linalg.eigh(fock, overlap)
    return 2.0 * C[:, :n_occ] @ C[:, :n_occ].T


def dipole_moment(mol, P: np.ndarray) -> np.ndarray:
    """``mu = sum_A Z_A R_A - tr(P r)`` in e·Bohr (origin at 0; neutral molecules need none)."""
    with mol.with_common_orig((0.0, 0.0, 0.0)):
        r = mol.intor_symmetric("int1e_r", comp=3)
    electronic = np.einsum("xij,ji->x", r, P)
    nuclear = np.einsum("a,ax->x", mol.atom_charges(), mol.atom_coords())
    return nuclear - electronic


def mulliken_charges(mol, P: np.ndarray, S: np.ndarray | None = None) -> np.ndarray:
    """Mulliken charges ``q_A = Z_A - sum_{mu on A} (P S)_{mu mu}`` in e."""
    S = mol.intor_symmetric("int1e_ovlp") if S is None else S
    populations = np.einsum("ij,ji->i", P, S)
    per_atom = np.array([populations[start:stop].sum() for _, _, start, stop in mol.aoslice_by_atom()])
    return mol.atom_charges() - per_atom
