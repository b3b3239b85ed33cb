"""The electronic-state step in NumPy, float64, with its gradients in closed form (no torch).

The same numbers as :func:`ase_phisnet.electronic.electronic_state` followed by a torch backward,
for a caller that needs E and its gradients at one geometry and no higher derivatives.

Closed shell, n_occ doubly occupied orbitals, PySCF AO order, Hartree and Bohr:

    F C = S C eps,   C^T S C = 1,   P = 2 C_o C_o^T,   E_el = 1/2 tr[P (F + H)]

With X = 1/2 (F + H), E_el = tr[P X] and, for symmetric perturbations dF, dS, dH, the
first-order change of the occupied space (only occupied-virtual pairs rotate) gives

    X_mo = C^T X C,   Z_ai = 4 X_ai / (eps_i - eps_a)      (i occupied, a virtual)
    dE/dF = 1/2 P + sym(C_v Z C_o^T)
    dE/dS = sym(-C_v (Z eps_o) C_o^T - 2 C_o X_oo C_o^T)
    dE/dH = 1/2 P

with sym(G) = 1/2 (G + G^T), so that dE = sum(dE/dF * dF) + sum(dE/dS * dS) + sum(dE/dH * dH).
(From dC = C Q: the occupied-virtual rotations Q_ai = (dF_ai - eps_i dS_ai) / (eps_i - eps_a), in
the MO basis, give the Z terms; the occupied orbitals' renormalization, Q_oo + Q_oo^T = -dS_oo,
gives the X_oo term; rotations among occupied orbitals leave P unchanged.)
Only occupied-virtual denominators appear: degenerate occupied or virtual orbitals are fine; as
the HOMO-LUMO gap closes the gradient grows as 1/gap, as the torch step's does.

:func:`electronic_step` assembles the whole step of a model with exact S(R) and, for a
``core_baseline`` model, H~core = head + h(R): E = E_nn + E_el + sum_A e_Z, its gradient
matrices with respect to the network's F~ and H~core, and the explicit dE/dR through S(R), h(R)
and E_nn(R) (the integral contractions of :mod:`.overlap` and :mod:`.core`). The total force is
``-(dE_dR + what the network's backward gives for dE_dF, dE_dH)``.

Examples
--------
>>> import numpy as np
>>> F = np.diag([-1.0, -1.0, 0.5])         # two exactly degenerate occupied orbitals
>>> result = closed_shell_energy(F, np.eye(3), np.zeros((3, 3)), n_occ=2)
>>> float(result.energy_electronic), bool(np.isfinite(result.dE_dS).all())
(-2.0, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

from ..errors import ConvergenceError

_sygvd = lapack.get_lapack_funcs("sygvd", dtype=np.float64)


@dataclass
class ClosedShellEnergy:
    """E_el = 1/2 tr[P (F + H)] of one closed-shell molecule and its gradient matrices.

    Attributes
    ----------
    energy_electronic : float
        1/2 tr[P (F + H)], Hartree.
    density_matrix : (nao, nao) ndarray
        P = 2 C_o C_o^T.
    mo_energy : (nao,) ndarray
        Orbital energies eps, ascending, Hartree.
    mo_coeff : (nao, nao) ndarray
        C, S-orthonormal columns.
    n_occ : int
        Doubly occupied orbitals.
    dE_dF, dE_dS, dE_dH : (nao, nao) ndarray
        Symmetric gradient matrices: dE = sum(dE_dF * dF) + sum(dE_dS * dS) + sum(dE_dH * dH)
        for symmetric perturbations (dE_dF, dE_dH dimensionless, dE_dS in Hartree).
    """

    energy_electronic: float
    density_matrix: np.ndarray
    mo_energy: np.ndarray
    mo_coeff: np.ndarray
    n_occ: int
    dE_dF: np.ndarray
    dE_dS: np.ndarray
    dE_dH: np.ndarray

    @property
    def homo_lumo_gap(self) -> float:
        """eps_LUMO - eps_HOMO in Hartree."""
        return float(self.mo_energy[self.n_occ] - self.mo_energy[self.n_occ - 1])


def generalized_eigh(F: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(eps, C)`` of ``F C = S C eps``: ascending eps, S-orthonormal C (LAPACK ``dsygvd``).

    What ``scipy.linalg.eigh(F, S)`` returns, by one direct LAPACK call (no input checks).
    Reads the lower triangles of the symmetric F and positive-definite S.
    """
    eps, C, info = _sygvd(F, S)  # lower triangles (uplo "L")
    if info > F.shape[0]:
        raise np.linalg.LinAlgError(f"the overlap matrix is not positive definite (leading minor of order {info - F.shape[0]})")
    if info != 0:
        raise ConvergenceError(f"the generalized eigensolver (LAPACK dsygvd) did not converge (info {info})")
    return eps, C


def closed_shell_energy(F: np.ndarray, S: np.ndarray, H: np.ndarray, n_occ: int) -> ClosedShellEnergy:
    """E_el = 1/2 tr[P (F + H)] with P from ``F C = S C eps``, and dE/dF, dE/dS, dE/dH.

    Parameters
    ----------
    F : (nao, nao) ndarray
        Symmetric Fock/Kohn-Sham matrix, Hartree.
    S : (nao, nao) ndarray
        Symmetric positive-definite overlap matrix.
    H : (nao, nao) ndarray
        Symmetric effective core Hamiltonian, Hartree.
    n_occ : int
        Number of doubly occupied orbitals.

    Returns
    -------
    ClosedShellEnergy

    Notes
    -----
    The gradient divides by the occupied-virtual gaps: it grows without bound as the HOMO-LUMO
    gap closes (a molecule pulled apart), exactly as the torch step's does; the calculator warns
    when the gap falls below 0.1 eV.
    """
    nao = F.shape[0]
    if not 0 < n_occ < nao:
        raise ValueError(f"n_occ must be between 1 and n_ao - 1 = {nao - 1}, got {n_occ}")
    eps, C = generalized_eigh(F, S)
    eps_o, eps_v = eps[:n_occ], eps[n_occ:]
    C_o, C_v = C[:, :n_occ], C[:, n_occ:]
    X = F + H
    X *= 0.5
    X_mo_o = C.T @ (X @ C_o)  # (nao, n_occ): X_oo on top, X_vo below
    X_oo, X_vo = X_mo_o[:n_occ], X_mo_o[n_occ:]
    Z = 4.0 * X_vo / (eps_o[None, :] - eps_v[:, None])
    CvZ = C_v @ Z
    half_P = C_o @ C_o.T
    dE_dF = (CvZ + C_o) @ C_o.T  # 1/2 P + C_v Z C_o^T
    dE_dS = (CvZ * eps_o + 2.0 * C_o @ X_oo) @ C_o.T
    return ClosedShellEnergy(
        energy_electronic=2.0 * float(np.trace(X_oo)),
        density_matrix=2.0 * half_P,
        mo_energy=eps,
        mo_coeff=C,
        n_occ=int(n_occ),
        dE_dF=_symmetrized(dE_dF, 0.5),
        dE_dS=_symmetrized(dE_dS, -0.5),
        dE_dH=half_P,
    )


def _symmetrized(G: np.ndarray, factor: float) -> np.ndarray:
    """``factor (G + G^T)``, in place of G."""
    G += G.T
    G *= factor
    return G


def nuclear_repulsion_and_gradient(charges, positions_bohr) -> tuple[float, np.ndarray]:
    """``E_nn = sum_{A<B} Z_A Z_B / |R_A - R_B|`` (Hartree) and dE_nn/dR (natm, 3), Hartree/Bohr.

    >>> E, grad = nuclear_repulsion_and_gradient([1, 1], [[0.0, 0, 0], [0, 0, 1.4]])
    >>> round(E, 12), grad[:, 2].round(6).tolist()  # dE_nn/dz: pushing the atoms together costs energy
    (0.714285714286, [0.510204, -0.510204])
    """
    Z = np.asarray(charges, dtype=np.float64)
    R = np.asarray(positions_bohr, dtype=np.float64)
    d = R[:, None, :] - R[None, :, :]  # R_A - R_B
    r = np.sqrt(np.einsum("abx,abx->ab", d, d))
    np.fill_diagonal(r, np.inf)
    ZZ_r = np.outer(Z, Z) / r
    # dE_nn/dR_A = -sum_B Z_A Z_B (R_A - R_B) / |R_A - R_B|^3
    return 0.5 * float(ZZ_r.sum()), -np.einsum("ab,abx->ax", ZZ_r / r**2, d)


@dataclass
class ElectronicStep:
    """E and its gradients at one geometry (:func:`electronic_step`), NumPy float64.

    Attributes
    ----------
    energy : float
        E = E_nn + 1/2 tr[P (F~ + H~core)] + the atomic energies, Hartree.
    state : ClosedShellEnergy
        Orbitals, density matrix and the gradient matrices with respect to F~, S, H~core.
    overlap : (nao, nao) ndarray
        S as used.
    hcore : (nao, nao) ndarray
        H~core as the energy uses it (h(R) included for a ``core_baseline`` model).
    dE_dF : (nao, nao) ndarray
        dE/dF~, for the network's backward.
    dE_dH : (nao, nao) ndarray
        dE/d(H~core head), for the network's backward (equal to dE/dH~core).
    dE_dS : (nao, nao) ndarray
        dE/dS, for the network's backward of a predicted S (its contribution through the exact
        S(R) is already in ``dE_dR``).
    dE_dR : (natm, 3) ndarray
        Explicit dE/dR, Hartree/Bohr: through E_nn(R), the exact S(R) and, for a ``core_baseline``
        model, h(R); not through the network.
    """

    energy: float
    state: ClosedShellEnergy
    overlap: np.ndarray
    hcore: np.ndarray
    dE_dF: np.ndarray
    dE_dH: np.ndarray
    dE_dS: np.ndarray
    dE_dR: np.ndarray


def electronic_step(F, H_head, positions_bohr, integrals, core_baseline: bool, atomic_energy: float = 0.0, S=None) -> ElectronicStep:
    """The NumPy electronic step of one molecule: what :func:`ase_phisnet.electronic.electronic_state`
    and a backward give, the network left out.

    Parameters
    ----------
    F : (nao, nao) ndarray
        The network's F~, PySCF AO order, Hartree.
    H_head : (nao, nao) ndarray
        The network's H~core head (a correction on top of h(R) for a ``core_baseline`` model).
    positions_bohr : (natm, 3) array
        Positions in Bohr.
    integrals : MolecularIntegrals
        The molecule's exact integrals (its atoms in the same order).
    core_baseline : bool
        H~core = head + h(R).
    atomic_energy : float
        The model's per-element constants summed over the atoms, Hartree.
    S : (nao, nao) ndarray, optional
        A predicted overlap; default: the exact S(R).
    """
    R = np.asarray(positions_bohr, dtype=np.float64)
    need_S = S is None
    at = integrals.evaluate(R, derivative=True) if (need_S or core_baseline) else None
    S_used = at.overlap if need_S else S
    H = H_head + at.core if core_baseline else H_head
    state = closed_shell_energy(F, S_used, H, integrals.n_occ)
    E_nn, dE_dR = nuclear_repulsion_and_gradient(integrals.numbers, R)
    if at is not None:
        dE_dR += at.gradient(state.dE_dS if need_S else None, state.dE_dH if core_baseline else None)
    return ElectronicStep(
        energy=E_nn + state.energy_electronic + float(atomic_energy),
        state=state,
        overlap=S_used,
        hcore=H,
        dE_dF=state.dE_dF,
        dE_dH=state.dE_dH,
        dE_dS=state.dE_dS,
        dE_dR=dE_dR,
    )
