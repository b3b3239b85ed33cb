"""One Kohn-Sham step from a given density, and its two energies.

The density comes either in an auxiliary basis (route 2, :func:`one_step_energies`) or as a
density matrix in the orbital basis (route 1, :func:`one_step_energies_from_density_matrix`).

From rho~(r) = sum_Q c_Q chi_Q(r): the Coulomb matrix J_mu,nu = sum_Q (mu nu|Q) c_Q, the
exchange-correlation matrix from rho~ and its gradient on PySCF's DFT grid, F = h + J + V_xc,
one diagonalization F C = S C eps, P1 = 2 C_occ C_occ^T. Then

* the Harris-Foulkes energy at rho~ (non-self-consistent; first-order error in rho~)::

      E_HF = sum_i f_i eps_i - 1/2 (rho~|rho~) - int v_xc[rho~] rho~ + E_xc[rho~] + E_nn

* the Kohn-Sham energy of P1 (PySCF's ``energy_tot``).

Energies in Hartree. Closed shell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg


@dataclass
class OneStepResult:
    """Energies of one KS step from an auxiliary-basis density (Hartree).

    ``harris_foulkes`` and ``kohn_sham`` are totals; ``components`` names their terms.
    """

    harris_foulkes: float
    kohn_sham: float
    components: dict
    mo_energy: np.ndarray
    density_matrix: np.ndarray


def _xc_on_grid(ni, xc: str, auxmol, coeff, grids):
    """rho~ and its gradient on the grid, and libxc's energy density and potential there."""
    from pyscf.dft import numint

    xctype = ni._xc_type(xc)
    deriv = 0 if xctype == "LDA" else 1
    ao = numint.eval_ao(auxmol, grids.coords, deriv=deriv)
    rho = ao @ coeff if deriv == 0 else np.einsum("xgq,q->xg", ao, coeff)
    exc, vxc = ni.eval_xc_eff(xc, rho, deriv=1, xctype=xctype)[:2]
    return rho, exc, vxc, xctype


def _xc_matrix(mol, grids, vxc, xctype) -> np.ndarray:
    """V_xc,mu,nu = int v_rho phi_mu phi_nu (+ GGA term), assembled as PySCF does."""
    from pyscf.dft import numint

    if xctype == "LDA":
        ao = numint.eval_ao(mol, grids.coords)
        return ao.T @ ((grids.weights * vxc.reshape(-1))[:, None] * ao)
    ao = numint.eval_ao(mol, grids.coords, deriv=1)
    wv = grids.weights * vxc
    wv[0] *= 0.5  # the symmetrisation below doubles the rho term
    aow = np.einsum("xg,xgi->gi", wv, ao)
    V = ao[0].T @ aow
    return V + V.T


def _rks(mol, xc: str, grids_level: int, grids=None):
    """A PySCF RKS object of ``mol`` whose grid is ``grids`` or a new one of ``grids_level``."""
    from pyscf import dft

    mf = dft.RKS(mol, xc=xc)
    if grids is None:
        mf.grids.level = grids_level
        mf.grids.build()
    else:
        mf.grids = grids
    return mf


def _kohn_sham_energy(mf, h: np.ndarray, P: np.ndarray) -> tuple[float, dict]:
    """The KS energy of the density matrix P and its components (Hartree)."""
    e_ks = float(mf.energy_tot(dm=P))
    e_one = float(np.einsum("ij,ji->", h, P))
    e_coul = 0.5 * float(np.einsum("ij,ji->", mf.get_j(mf.mol, P), P))
    e_nn = float(mf.mol.energy_nuc())
    return e_ks, {"one_electron": e_one, "hartree": e_coul, "xc": e_ks - e_one - e_coul - e_nn, "nuclear_repulsion": e_nn}


def one_step_energies(mol, auxmol, coeff: np.ndarray, xc: str = "pbe", grids_level: int = 3, eri3c=None, metric=None, grids=None) -> OneStepResult:
    """Harris-Foulkes energy at rho~ and KS energy after one diagonalization (Hartree).

    Parameters
    ----------
    mol : pyscf.gto.Mole
        The molecule in the orbital basis.
    auxmol : pyscf.gto.Mole
        The same atoms in the auxiliary basis of ``coeff``.
    coeff : ndarray (n_aux,)
        rho~ coefficients, PySCF's auxiliary AO order.
    eri3c, metric : ndarray, optional
        (mu nu|Q) and (Q|R) if already at hand (a :class:`DensityFit` holds them); computed
        otherwise.
    grids : pyscf.dft.gen_grid.Grids, optional
        A built DFT grid of ``mol``; by default one of ``grids_level`` is built.
    """
    from .fitting import three_center

    mf = _rks(mol, xc, grids_level, grids)
    grids, ni = mf.grids, mf._numint
    coeff = np.asarray(coeff, dtype=float)
    eri3c = three_center(mol, auxmol) if eri3c is None else eri3c
    metric = auxmol.intor("int2c2e") if metric is None else metric

    J = np.einsum("ijq,q->ij", eri3c, coeff)
    hartree = 0.5 * float(coeff @ metric @ coeff)
    rho, exc, vxc, xctype = _xc_on_grid(ni, xc, auxmol, coeff, grids)
    n_points = len(grids.weights)
    # rho (LDA) or (rho, grad rho) (GGA) against libxc's v_rho or (v_rho, 2 v_sigma grad rho)
    rho_parts, v_parts = rho.reshape(-1, n_points), vxc.reshape(-1, n_points)
    e_xc = float(grids.weights @ (exc * rho_parts[0]))
    v_xc_rho = float(grids.weights @ (v_parts * rho_parts).sum(axis=0))
    V_xc = _xc_matrix(mol, grids, vxc, xctype)

    h = mf.get_hcore()
    S = mol.intor_symmetric("int1e_ovlp")
    eps, C = scipy.linalg.eigh(h + J + V_xc, S)
    n_occ = mol.nelectron // 2
    P1 = 2.0 * C[:, :n_occ] @ C[:, :n_occ].T
    band = 2.0 * float(eps[:n_occ].sum())
    e_nn = float(mol.energy_nuc())
    harris = band - hartree - v_xc_rho + e_xc + e_nn

    e_ks, ks_parts = _kohn_sham_energy(mf, h, P1)
    components = {
        "harris_foulkes": {"band": band, "hartree": -hartree, "xc_potential": -v_xc_rho, "xc": e_xc, "nuclear_repulsion": e_nn},
        "kohn_sham": ks_parts,
    }
    return OneStepResult(harris, e_ks, components, eps, P1)


def one_step_energies_from_density_matrix(mol, density_matrix: np.ndarray, xc: str = "pbe", grids_level: int = 3, grids=None) -> OneStepResult:
    """The same two energies for a density given as a density matrix P0 (Hartree).

    F = h + J[P0] + V_xc[P0] (exact four-centre Coulomb, PySCF's ``get_veff``), one
    diagonalization, P1 = 2 C_occ C_occ^T; Harris-Foulkes at P0's density::

        E_HF = sum_i f_i eps_i - tr(P0 (J + V_xc)) + 1/2 tr(P0 J) + E_xc[P0] + E_nn

    and the KS energy of P1. Route 1 of the density comparison: P0 from the predicted F~.
    """
    mf = _rks(mol, xc, grids_level, grids)
    P0 = np.asarray(density_matrix, dtype=float)
    h = mf.get_hcore()
    veff = mf.get_veff(mol, P0)
    eps, C = scipy.linalg.eigh(h + veff, mol.intor_symmetric("int1e_ovlp"))
    n_occ = mol.nelectron // 2
    P1 = 2.0 * C[:, :n_occ] @ C[:, :n_occ].T
    band = 2.0 * float(eps[:n_occ].sum())
    potential = float(np.einsum("ij,ji->", veff, P0))
    e_nn = float(mol.energy_nuc())
    harris = band - potential + float(veff.ecoul) + float(veff.exc) + e_nn
    e_ks, ks_parts = _kohn_sham_energy(mf, h, P1)
    components = {
        "harris_foulkes": {"band": band, "potential": -potential, "hartree": float(veff.ecoul), "xc": float(veff.exc), "nuclear_repulsion": e_nn},
        "kohn_sham": ks_parts,
    }
    return OneStepResult(harris, e_ks, components, eps, P1)
