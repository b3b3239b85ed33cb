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

from ..electronic import IntegralCache, energies_and_forces, nuclear_repulsion
from ..electronic.properties import closed_shell_rdm1
from ..errors import InputError
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
    """Predicted energies (Hartree) and forces (Hartree/Bohr) of a training batch, differentiable.

    The electronic-state step (:func:`ase_phisnet.electronic.energies_and_forces`) in float64,
    with one set of exact integrals per distinct molecule (atoms and order), built once.

    Parameters
    ----------
    basis_name : str
        The model's AO basis.
    charge : int
        Total charge of every molecule (closed shell).
    """

    def __init__(self, basis_name: str, charge: int = 0):
        self.cache = IntegralCache(basis_name, charge)

    def __call__(self, model, numbers_list, positions_list, create_graph: bool = True, return_orbital_energies: bool = False):
        """``(energies (B,), forces list of (natm, 3), outputs)`` for molecules in Bohr.

        ``outputs`` are the model's padded irreps-order matrices, so the matrix loss can use
        the same forward pass. With ``return_orbital_energies`` a fourth item follows: the
        occupied orbital energies (Hartree) of each molecule, float64, from the same
        diagonalization, differentiable (the graph is kept for the training step only).
        """
        energies, forces, states, out = energies_and_forces(model, numbers_list, positions_list, self.cache, create_graph=create_graph)
        if return_orbital_energies:
            return energies, forces, out, [s.mo_energy[: s.n_occ] for s in states]
        return energies, forces, out


def predict_energies_forces(
    model, frames: list[dict], batch_size: int = 32, progress: bool = True, hamiltonian_only: bool = False
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Energies (Hartree) and forces (Hartree/Bohr, one (natm, 3) array per frame) of a model
    with an H~core head, through the electronic-state step with the exact overlap.

    ``frames`` are dicts with ``numbers`` and ``positions`` (Å); closed shell, the charge as
    recorded in the model's reference metadata (default neutral). ``hamiltonian_only`` leaves
    out a learned energy correction (:mod:`ase_phisnet.model.readout`).
    """
    from tqdm.auto import tqdm

    if "hcore" not in model.config.heads:
        raise InputError(f"energies need an H~core head; this model has {model.config.heads}")
    charge = int(getattr(model, "metadata", {}).get("reference", {}).get("charge") or 0)
    cache = IntegralCache(model.config.basis, charge)
    energies, forces = [], []
    bar = tqdm(total=len(frames), desc="Hamiltonian-only energies and forces" if hamiltonian_only else "energies and forces", disable=not progress, unit="frame")
    for start in range(0, len(frames), batch_size):
        chunk = frames[start : start + batch_size]
        numbers, positions = [np.asarray(f["numbers"], dtype=int) for f in chunk], [np.asarray(f["positions"]) / BOHR for f in chunk]
        E, F, _, _ = energies_and_forces(model, numbers, positions, cache, hamiltonian_only=hamiltonian_only)
        energies.extend(E.detach().cpu().numpy().tolist())
        forces.extend(g.detach().cpu().numpy() for g in F)
        bar.update(len(chunk))
    bar.close()
    return np.asarray(energies), forces


def mse_plus_mae(delta, count=None):
    """``mean(delta^2) + mean(|delta|)``, the form of every loss term (tensor or array).

    With ``count`` the sums are divided by it instead of by ``delta``'s size: one process's
    share of a mean over the whole batch of several processes (:mod:`.distributed`)."""
    if count is None:
        return (delta**2).mean() + abs(delta).mean()
    return ((delta**2).sum() + abs(delta).sum()) / count


def energy_force_loss(energies, forces, ref_energies, ref_forces, weights: dict, occupied=None, ref_occupied=None, counts: dict | None = None) -> tuple[torch.Tensor, dict]:
    """``w_E (MSE + MAE)`` on energies (Hartree) plus ``w_F (MSE + MAE)`` on force components
    (Hartree/Bohr), plus ``w_eps (MSE + MAE)`` on occupied orbital energies (Hartree) when
    ``occupied`` and ``ref_occupied`` (lists of 1-D tensors) are given; the parts are reported
    as MAEs. ``counts`` (``{"energy": molecules, "forces": components, "orbital_energies": ...}``
    of the whole batch) makes each mean one over the batch of all processes."""
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
            total = total + float(weights[term]) * mse_plus_mae(delta, None if counts is None else counts[term])
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
    energies, _ = predict_energies_forces(model, frames, batch_size=batch_size, progress=False)
    residual = np.array([float(f["energy"]) for f in frames]) - np.asarray(energies)
    elements = model.config.elements
    shift = per_element_shift(element_counts([f["numbers"] for f in frames], elements), residual)
    table = dict(model.config.atomic_energies or {})
    for z, e in zip(elements, shift):
        table[int(z)] = table.get(int(z), 0.0) + float(e)
    model.config.atomic_energies = table
    return table
