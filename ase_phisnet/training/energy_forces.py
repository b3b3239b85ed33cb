"""Energy and force terms of the training loss, through PhiSNet's energy expression.

    E(R) = E_nn + 1/2 tr[P (F~ + H~core)],   F~ C = S C eps,   forces = -dE/dR

The network runs in its training dtype; the electronic-structure step (S, the density matrix,
the energy) runs in float64, so the ~76 Eh total energy keeps µEh resolution. A force loss
differentiates ``-dE/dR`` once more (``create_graph``), through the eigensolver's
degeneracy-safe backward (:mod:`ase_phisnet.electronic.eigensolver`).

H~core has no stored target for a DFT reference (DESIGN.md): the stored ``hcore`` (T + V_nuc)
misses E_xc - 1/2 tr[P V_xc]. :func:`effective_core_target` gives the matrix target used as
the H~core head's starting point and regulariser: the stored ``hcore`` plus the uniform shift
``lam * S`` that makes the energy expression exact at the reference density
(``1/2 tr[P S] = N_elec / 2``). For a Hartree-Fock reference ``lam`` is zero.
"""

from __future__ import annotations

import numpy as np
import torch

from ..electronic import ExactCoreHamiltonian, ExactOverlap, nuclear_repulsion, orbital_energies, phisnet_energy
from ..electronic.properties import closed_shell_rdm1
from ..molecule import build_mol
from ..units import BOHR


def effective_core_target(frame: dict, charge: int = 0) -> np.ndarray:
    """``hcore + lam * S`` (Hartree, PySCF order) with ``E_nn + 1/2 tr[P (F + H)] = E_ref``.

    Parameters
    ----------
    frame : dict
        A reference frame: ``numbers``, ``positions`` (Å), ``fock``, ``hcore``, ``overlap``,
        ``energy`` (Hartree).
    charge : int
        Total charge of the reference (closed shell).
    """
    numbers = np.asarray(frame["numbers"])
    F, h, S = (np.asarray(frame[k], dtype=np.float64) for k in ("fock", "hcore", "overlap"))
    n_elec = int(numbers.sum()) - int(charge)
    P = closed_shell_rdm1(F, S, n_elec // 2)
    R = torch.as_tensor(np.asarray(frame["positions"], dtype=np.float64) / BOHR)
    E_nn = float(nuclear_repulsion(torch.tensor(numbers), R))
    residual = float(frame["energy"]) - E_nn - 0.5 * float(np.sum(P * (F + h)))
    lam = 2.0 * residual / n_elec
    return h + lam * S


class EnergyForceTerms:
    """Predicted energies (Hartree) and forces (Hartree/Bohr) of a batch, differentiable.

    One :class:`ExactOverlap` per distinct molecule (atoms and order) is kept and moved to
    each geometry, so the basis and integral set-up are built once.

    Parameters
    ----------
    basis_name : str
        The model's AO basis.
    charge : int
        Total charge of every molecule (closed shell).
    """

    def __init__(self, basis_name: str, charge: int = 0):
        self.basis_name = basis_name
        self.charge = int(charge)
        self._integrals: dict[tuple, tuple[ExactOverlap, ExactCoreHamiltonian]] = {}

    def integrals(self, numbers) -> tuple[ExactOverlap, ExactCoreHamiltonian]:
        """S(R) and h(R) of a molecule, built once per atom list and reused."""
        key = tuple(int(z) for z in numbers)
        if key not in self._integrals:
            mol = build_mol(numbers, np.zeros((len(numbers), 3)) + np.arange(len(numbers))[:, None], self.basis_name, self.charge)
            self._integrals[key] = (ExactOverlap(mol), ExactCoreHamiltonian(mol))
        return self._integrals[key]

    def overlap(self, numbers) -> ExactOverlap:
        return self.integrals(numbers)[0]

    def __call__(self, model, numbers_list, positions_list, create_graph: bool = True, return_orbital_energies: bool = False):
        """``(energies (B,), forces list of (natm, 3), outputs)`` for molecules in Bohr.

        ``outputs`` are the model's padded irreps-order matrices, so the matrix loss can use
        the same forward pass. With ``return_orbital_energies`` a fourth item follows: the
        occupied orbital energies (Hartree) of each molecule, float64, differentiable when
        ``create_graph`` is (the graph is kept for the training step only).
        """
        param = next(model.parameters())
        R = [torch.as_tensor(p, dtype=param.dtype, device=param.device).detach().requires_grad_(True) for p in positions_list]
        out = model(model.graph(numbers_list, R))
        basis = model.basis
        energies, occupied = [], []
        for b, (z, r) in enumerate(zip(numbers_list, R)):
            n = basis.n_ao(z)
            F = basis.to_pyscf_order(out["fock"][b, :n, :n], z).double()
            H = basis.to_pyscf_order(out["hcore"][b, :n, :n], z).double()
            r64 = r.double()
            overlap, core = self.integrals(z)
            S = overlap(r64)
            if model.config.core_baseline:
                H = H + core(r64)
            n_occ = (int(np.sum(z)) - self.charge) // 2
            E, _ = phisnet_energy(F, H, S, n_occ, nuclear_repulsion(torch.tensor(np.asarray(z), device=r.device), r64))
            energies.append(E + model.atomic_energy(z))
            if return_orbital_energies:
                occupied.append(orbital_energies(F, S)[:n_occ])
        energies = torch.stack(energies)
        grads = torch.autograd.grad(energies.sum(), R, create_graph=create_graph)
        forces = [-g.double() for g in grads]
        return (energies, forces, out, occupied) if return_orbital_energies else (energies, forces, out)


def mse_plus_mae(delta):
    """``mean(delta^2) + mean(|delta|)``, the form of every loss term (tensor or array)."""
    return (delta**2).mean() + abs(delta).mean()


def energy_force_loss(energies, forces, ref_energies, ref_forces, weights: dict, occupied=None, ref_occupied=None) -> tuple[torch.Tensor, dict]:
    """``w_E (MSE + MAE)`` on energies (Hartree) plus ``w_F (MSE + MAE)`` on force components
    (Hartree/Bohr), plus ``w_eps (MSE + MAE)`` on occupied orbital energies (Hartree) when
    ``occupied`` and ``ref_occupied`` (lists of 1-D tensors) are given; the parts are reported
    as MAEs."""
    dE = energies - ref_energies.to(energies.device)
    dF = torch.cat([(f - g.to(f.device)).reshape(-1) for f, g in zip(forces, ref_forces)])
    total = 0.0
    parts = {"energy_mae": dE.abs().mean().detach(), "forces_mae": dF.abs().mean().detach()}
    deltas = {"energy": dE, "forces": dF}
    if occupied is not None:
        deps = torch.cat([(e - r.to(e.device)).reshape(-1) for e, r in zip(occupied, ref_occupied)])
        parts["orbital_energies_mae"] = deps.abs().mean().detach()
        deltas["orbital_energies"] = deps
    for term, delta in deltas.items():
        if weights.get(term, 0):
            total = total + float(weights[term]) * mse_plus_mae(delta)
    return total, parts


def element_counts(numbers_list, elements) -> np.ndarray:
    """``(n_molecules, n_elements)`` atom counts, the design matrix of per-element constants."""
    return np.array([[int(np.sum(np.asarray(z) == e)) for e in elements] for z in numbers_list], dtype=float)


def per_element_shift(counts: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """Least-squares constants per element (minimum norm) that best explain ``residual``.

    Frames of one molecule fix only the molecule's total, which the minimum-norm solution
    shares among its elements.
    """
    shift, *_ = np.linalg.lstsq(counts, residual, rcond=None)
    return shift


def offset_free(errors: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Energy errors with their best per-element constant taken out (same units as ``errors``).

    >>> offset_free(np.array([1.0, 3.0]), np.array([[1.0], [1.0]]))
    array([-1.,  1.])
    """
    return errors - counts @ per_element_shift(counts, errors)


def fit_atomic_energies(model, frames: list[dict], batch_size: int = 32) -> dict[int, float]:
    """Set ``model.config.atomic_energies`` so that the mean energy residual on ``frames`` vanishes.

    The residual ``E_ref - E_model`` of each frame is fitted by ``sum_A e_{Z_A}`` in least
    squares (minimum norm: frames of one molecule fix only the molecule's total); the result
    is added to the model's current atomic energies and returned (Hartree per element).
    Forces do not change.
    """
    from ..evaluation import predict_energies_forces

    energies, _ = predict_energies_forces(model, frames, batch_size=batch_size, progress=False)
    residual = np.array([float(f["energy"]) for f in frames]) - np.asarray(energies)
    elements = model.config.elements
    shift = per_element_shift(element_counts([f["numbers"] for f in frames], elements), residual)
    table = dict(model.config.atomic_energies or {})
    for z, e in zip(elements, shift):
        table[int(z)] = table.get(int(z), 0.0) + float(e)
    model.config.atomic_energies = table
    return table
