"""Density fitting in the Coulomb metric with the exact electron count (SALTED's reference).

Given a density matrix P, the coefficients c of rho~(r) = sum_Q c_Q chi_Q(r) minimise the
Coulomb self-energy of the error, (rho - rho~ | rho - rho~), subject to sum_Q c_Q n_Q = N with
n_Q = integral chi_Q dr. With J_QR = (Q|R) and b_Q = sum P_mu,nu (mu nu|Q) the Lagrangian gives

    c = J^-1 (b - lambda n),   lambda = (n^T J^-1 b - N) / (n^T J^-1 n).

Atomic units throughout; ``def2-universal-jfit`` is the default auxiliary basis, and
``"etb:BETA"`` names PySCF's even-tempered basis (larger, for fits below 1 % in eps_rho).

Examples
--------
>>> from pyscf import gto, scf
>>> mol = gto.M(atom="O 0 0 0.12; H 0 0.76 -0.47; H 0 -0.76 -0.47", basis="def2-svp", verbose=0)
>>> fit = fit_density(mol, scf.RHF(mol).run().make_rdm1())
>>> round(float(fit.n_electrons), 8)
10.0
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.linalg

from ..errors import InputError

#: libcint's angular factor of an s function, 1 / (2 sqrt(pi)).
_S_ANGULAR = 0.5 / np.sqrt(np.pi)


def resolve_auxbasis(auxbasis: str, orbital_basis: str, elements) -> str | dict:
    """A PySCF basis (name or dict) for an auxiliary-basis spec.

    ``"etb:BETA"`` is PySCF's even-tempered basis generated from the orbital basis
    (``pyscf.df.aug_etb`` with progression ``BETA``; smaller BETA, more functions, better fit);
    any other string is a PySCF basis name (``"def2-universal-jfit"``).
    """
    if not str(auxbasis).startswith("etb:"):
        return auxbasis
    from ase.data import chemical_symbols
    from pyscf import df, gto

    try:
        beta = float(str(auxbasis)[4:])
    except ValueError:
        raise InputError(f"auxiliary basis {auxbasis!r}: 'etb:' must be followed by the progression factor, e.g. etb:1.6") from None
    if not beta > 1.0:
        raise InputError(f"auxiliary basis {auxbasis!r}: the even-tempered progression must be > 1")
    basis = {}
    for z in sorted({int(z) for z in elements}):
        atom = gto.M(atom=[[chemical_symbols[z], (0.0, 0.0, 0.0)]], basis=orbital_basis, spin=z % 2, verbose=0)
        basis.update(df.aug_etb(atom, beta=beta))
    return basis


def make_auxmol(mol, auxbasis: str = "def2-universal-jfit"):
    """The auxiliary-basis molecule of ``mol`` (same atoms), with a clear error for a bad basis.

    ``auxbasis`` is a PySCF basis name or ``"etb:BETA"`` (see :func:`resolve_auxbasis`).
    """
    from pyscf import df

    elements = [int(z) for z in mol.atom_charges()]
    try:
        return df.addons.make_auxmol(mol, resolve_auxbasis(auxbasis, mol.basis, elements))
    except (KeyError, RuntimeError, ValueError) as err:
        raise InputError(f"auxiliary basis {auxbasis!r} is not available for {sorted(set(mol.elements))}: {err}") from None


def aux_norms(auxmol) -> np.ndarray:
    """n_Q = integral chi_Q(r) dr for every auxiliary function (zero for l > 0), analytic."""
    n = np.zeros(auxmol.nao)
    loc = auxmol.ao_loc_nr()
    for shell in range(auxmol.nbas):
        if auxmol.bas_angular(shell) == 0:
            # each primitive exp(-a r^2) integrates to (pi / a)^(3/2); libcint's coefficients
            # carry the radial normalisation, the angular factor of an s function is 1/(2 sqrt(pi))
            n[loc[shell] : loc[shell + 1]] = _S_ANGULAR * (np.pi / auxmol.bas_exp(shell)) ** 1.5 @ auxmol._libcint_ctr_coeff(shell)
    return n


@dataclass
class DensityFit:
    """Fitted auxiliary coefficients and the integrals that made them (reused by the one-step
    Kohn-Sham energies, :func:`~ase_phisnet.density.kohn_sham.one_step_energies`).

    Attributes
    ----------
    mol : pyscf.gto.Mole, the molecule in the orbital basis
    density_matrix : ndarray (n_ao, n_ao), the fitted P
    auxmol : pyscf.gto.Mole, the auxiliary basis on the atoms
    coeff : ndarray (n_aux,), c_Q
    metric : ndarray (n_aux, n_aux), Coulomb metric J_QR = (Q|R), Hartree
    eri3c : ndarray (n_ao, n_ao, n_aux), (mu nu|Q), Hartree
    norms : ndarray (n_aux,), n_Q
    """

    mol: object
    density_matrix: np.ndarray
    auxmol: object
    coeff: np.ndarray
    metric: np.ndarray
    eri3c: np.ndarray
    norms: np.ndarray

    @property
    def n_electrons(self) -> float:
        return float(self.norms @ self.coeff)

    @cached_property
    def coulomb_error(self) -> float:
        """(rho - rho~ | rho - rho~) in Hartree: the Coulomb energy of the fitting error.

        Computed on first use, since (rho|rho) needs the four-centre integrals.
        """
        from pyscf import scf

        P, c = self.density_matrix, self.coeff
        rho_rho = float(np.einsum("ij,ji->", scf.hf.get_jk(self.mol, P, with_k=False)[0], P))
        b = np.einsum("ijq,ji->q", self.eri3c, P)
        return rho_rho - 2 * float(c @ b) + float(c @ self.metric @ c)


def three_center(mol, auxmol) -> np.ndarray:
    """(mu nu|Q), shape (n_ao, n_ao, n_aux), Hartree."""
    from pyscf import df

    return df.incore.aux_e2(mol, auxmol, intor="int3c2e", aosym="s1")


def fit_density(mol, density_matrix: np.ndarray, auxbasis: str = "def2-universal-jfit", n_electrons: float | None = None) -> DensityFit:
    """Coulomb-metric fit of the density of ``density_matrix`` with the exact electron count.

    Parameters
    ----------
    mol : pyscf.gto.Mole
    density_matrix : ndarray (n_ao, n_ao), PySCF AO order
    auxbasis : str
        Auxiliary basis (PySCF name).
    n_electrons : float, optional
        The count to conserve; default tr(P S).
    """
    P = np.asarray(density_matrix, dtype=float)
    if P.shape != (mol.nao, mol.nao):
        raise InputError(f"density matrix has shape {P.shape}; this molecule has {mol.nao} AOs in its basis")
    auxmol = make_auxmol(mol, auxbasis)
    N = float(np.einsum("ij,ji->", P, mol.intor_symmetric("int1e_ovlp"))) if n_electrons is None else float(n_electrons)
    J = auxmol.intor("int2c2e")
    eri3c = three_center(mol, auxmol)
    b = np.einsum("ijq,ji->q", eri3c, P)
    n = aux_norms(auxmol)
    factor = scipy.linalg.cho_factor(J)
    Jb, Jn = scipy.linalg.cho_solve(factor, b), scipy.linalg.cho_solve(factor, n)
    lam = (n @ Jb - N) / (n @ Jn)
    return DensityFit(mol, P, auxmol, Jb - lam * Jn, J, eri3c, n)
