"""The electronic-state step: from the model's matrices at a geometry to orbitals and energy.

    F~ C = S C eps,   C^T S C = 1,   P = 2 C_o C_o^T
    E = E_nn + 1/2 tr[P (F~ + H~core)] + sum_A e_{Z_A}

(closed shell, Hartree, PySCF AO order). S is exact from PySCF's integrals (or the model's S~),
and a model whose H~core head is a correction (``core_baseline``) adds the exact T + V_nuc.
The calculator, the training loss, evaluation and transfer learning all take their numbers
from :func:`electronic_state` (one molecule) or :func:`electronic_states` (a batch through the
model): one diagonalization per molecule, the charge honoured everywhere.

Everything is differentiable with respect to the positions and the model's matrices (forces
are ``-dE/dR`` by one backward pass; a force loss differentiates once more).

Examples
--------
>>> import torch
>>> from ase_phisnet.molecule import build_mol
>>> integrals = IntegralCache("sto-3g")([8, 1, 1])
>>> R = torch.tensor([[0.0, 0.0, 0.22], [0.0, 1.43, -0.89], [0.0, -1.43, -0.89]], dtype=torch.float64)
>>> h = integrals.core(R)
>>> state = electronic_state({"fock": h, "hcore": torch.zeros_like(h)}, R, integrals, core_baseline=True)
>>> state.n_occ, tuple(state.density_matrix.shape), bool(state.energy < 0)
(5, (7, 7), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..molecule import build_mol, check_charge_multiplicity
from .core import ExactCoreHamiltonian
from .eigensolver import closed_shell_orbitals
from .energy import nuclear_repulsion
from .overlap import ExactOverlap, set_geometry


class MolecularIntegrals:
    """Exact S(R) and h(R) = T + V_nuc of one molecule: fixed atoms, basis and charge.

    The PySCF ``Mole`` is built once; each call moves its atoms (``set_geom_``).

    Parameters
    ----------
    numbers : sequence of int
        Atomic numbers, in the molecule's order.
    basis : str
        PySCF basis name.
    charge : int
        Total charge (closed shell): sets the number of doubly occupied orbitals ``n_occ``.
    """

    def __init__(self, numbers, basis: str, charge: int = 0):
        self.numbers = np.asarray(numbers, dtype=int)
        self.n_occ = check_charge_multiplicity(self.numbers, charge, 1) // 2
        mol = build_mol(self.numbers, np.arange(len(self.numbers))[:, None] + np.zeros((len(self.numbers), 3)), basis, charge)
        self.mol = mol
        self.overlap = ExactOverlap(mol)
        self.core = ExactCoreHamiltonian(mol)

    def evaluate(self, positions_bohr: np.ndarray, derivative: bool = True) -> OneElectronIntegrals:
        """S and h = T + V_nuc at ``positions_bohr`` (natm, 3), NumPy float64, with what their
        gradient needs (no torch): the atoms are moved once, one PySCF call per integral type.

        Examples
        --------
        >>> integrals = MolecularIntegrals([8, 1, 1], "sto-3g")
        >>> at = integrals.evaluate([[0.0, 0.0, 0.22], [0.0, 1.43, -0.89], [0.0, -1.43, -0.89]])
        >>> at.overlap.shape, at.gradient(np.eye(7), np.zeros((7, 7))).shape
        ((7, 7), (3, 3))
        """
        set_geometry(self.mol, positions_bohr)
        S, ovlp_ip = self.overlap.integrals(None, derivative)
        h, core_ip, rinv_ip = self.core.integrals(None, derivative)
        return OneElectronIntegrals(S, h, ovlp_ip, core_ip, rinv_ip, self)


@dataclass
class OneElectronIntegrals:
    """S and h of one molecule at one geometry (:meth:`MolecularIntegrals.evaluate`), NumPy float64.

    Attributes
    ----------
    overlap : (nao, nao) ndarray
        S.
    core : (nao, nao) ndarray
        h = T + V_nuc, Hartree.
    ovlp_ip, core_ip, rinv_ip : ndarray or None
        The derivative integrals (Bohr^-1, Hartree/Bohr; :meth:`ExactOverlap.integrals`,
        :meth:`ExactCoreHamiltonian.integrals`); None when evaluated without them.
    integrals : MolecularIntegrals
        The molecule they belong to.
    """

    overlap: np.ndarray
    core: np.ndarray
    ovlp_ip: np.ndarray | None
    core_ip: np.ndarray | None
    rinv_ip: np.ndarray | None
    integrals: MolecularIntegrals

    def gradient(self, dE_dS: np.ndarray | None, dE_dh: np.ndarray | None) -> np.ndarray:
        """dE/dR (natm, 3), Hartree/Bohr, through S(R) and h(R), from the gradient matrices dE/dS
        and dE/dh (nao, nao; None: E does not depend on that matrix)."""
        if self.ovlp_ip is None:
            raise ValueError("evaluated without derivative integrals: call evaluate(positions, derivative=True)")
        grad = np.zeros((len(self.integrals.numbers), 3))
        if dE_dS is not None:
            grad += self.integrals.overlap.gradient(dE_dS, self.ovlp_ip)
        if dE_dh is not None:
            grad += self.integrals.core.gradient(dE_dh, self.core_ip, self.rinv_ip)
        return grad


class IntegralCache:
    """One :class:`MolecularIntegrals` per atom list, for one basis and charge.

    Parameters
    ----------
    basis : str
        PySCF basis name (the model's).
    charge : int
        Total charge of every molecule.
    """

    def __init__(self, basis: str, charge: int = 0):
        self.basis = basis
        self.charge = int(charge)
        self._integrals: dict[tuple, MolecularIntegrals] = {}

    def __call__(self, numbers) -> MolecularIntegrals:
        key = tuple(int(z) for z in numbers)
        if key not in self._integrals:
            self._integrals[key] = MolecularIntegrals(key, self.basis, self.charge)
        return self._integrals[key]


@dataclass
class ElectronicState:
    """One molecule's electronic state (PySCF AO order, Hartree).

    Attributes
    ----------
    fock : (nao, nao) tensor
        F~, the predicted Fock/Kohn-Sham matrix.
    overlap : (nao, nao) tensor
        S, exact or predicted.
    density_matrix : (nao, nao) tensor
        P = 2 C_o C_o^T.
    mo_energy : (nao,) tensor
        Orbital energies eps, ascending, differentiable.
    mo_coeff : (nao, nao) tensor
        C, S-orthonormal columns (values only).
    n_occ : int
        Doubly occupied orbitals.
    hcore : (nao, nao) tensor or None
        H~core as the energy uses it (the exact T + V_nuc included for a ``core_baseline`` model).
    energy : 0-d tensor or None
        E = E_nn + 1/2 tr[P (F~ + H~core)] + the model's atomic energies, plus the learned
        energy correction of a model that has one (:mod:`ase_phisnet.model.readout`).
    hamiltonian_energy : 0-d tensor or None
        The same energy without the learned correction (equal to ``energy`` for a model
        without one): what the predicted Hamiltonian alone gives.
    """

    fock: torch.Tensor
    overlap: torch.Tensor
    density_matrix: torch.Tensor
    mo_energy: torch.Tensor
    mo_coeff: torch.Tensor
    n_occ: int
    hcore: torch.Tensor | None = None
    energy: torch.Tensor | None = None
    hamiltonian_energy: torch.Tensor | None = None

    @property
    def homo_lumo_gap(self) -> float:
        """eps_LUMO - eps_HOMO in Hartree."""
        return float(self.mo_energy[self.n_occ].detach() - self.mo_energy[self.n_occ - 1].detach())


def electronic_state(
    matrices: dict,
    positions_bohr: torch.Tensor,
    integrals: MolecularIntegrals,
    core_baseline: bool,
    overlap: str = "exact",
    energy: bool = True,
    atomic_energy: float = 0.0,
    energy_correction: torch.Tensor | None = None,
) -> ElectronicState:
    """The electronic state of one molecule from the model's matrices.

    Parameters
    ----------
    matrices : dict of (nao, nao) tensors
        The model's ``"fock"`` and, for energies, ``"hcore"`` (and ``"overlap"`` for a predicted
        S), PySCF AO order, Hartree, in the dtype the step runs in.
    positions_bohr : (natm, 3) tensor
        Positions in Bohr, same dtype; differentiate the energy with respect to them for forces.
    integrals : MolecularIntegrals
        The molecule's exact integrals (its atoms in the same order).
    core_baseline : bool
        The H~core head is a correction on top of the exact T + V_nuc.
    overlap : {"exact", "predicted"}
        S from PySCF's integrals or the model's S~ head.
    energy : bool
        Compute E (needs ``matrices["hcore"]``).
    atomic_energy : float
        The model's per-element constants summed over the atoms (Hartree).
    energy_correction : 0-d tensor, optional
        The model's learned energy term of this molecule (Hartree), added to E.
    """
    if overlap not in ("exact", "predicted"):
        raise ValueError(f"overlap must be 'exact' or 'predicted', got {overlap!r}")
    F = matrices["fock"]
    S = matrices["overlap"] if overlap == "predicted" else integrals.overlap(positions_bohr)
    P, eps, C = closed_shell_orbitals(F, S, integrals.n_occ)
    state = ElectronicState(fock=F, overlap=S, density_matrix=P, mo_energy=eps, mo_coeff=C, n_occ=integrals.n_occ)
    if energy:
        H = matrices["hcore"] + integrals.core(positions_bohr) if core_baseline else matrices["hcore"]
        numbers = torch.as_tensor(integrals.numbers, device=positions_bohr.device)
        state.hcore = H
        state.hamiltonian_energy = nuclear_repulsion(numbers, positions_bohr) + 0.5 * (P * (F + H)).sum((-1, -2)) + atomic_energy
        state.energy = state.hamiltonian_energy if energy_correction is None else state.hamiltonian_energy + energy_correction.to(P.dtype)
    return state


def electronic_states(
    model,
    numbers_list,
    positions_list,
    cache: IntegralCache,
    energy: bool = True,
    overlap: str = "exact",
    dtype: torch.dtype | None = None,
    graph=None,
    network=None,
) -> tuple[list[ElectronicState], dict]:
    """Run the model once on a batch of molecules and build each one's electronic state.

    Parameters
    ----------
    model : PhiSNet
    numbers_list : list of int arrays
    positions_list : list of (natm, 3) tensors
        Positions in Bohr, in the model's dtype (``requires_grad`` for forces).
    cache : IntegralCache
        Integrals of the model's basis and the molecules' charge.
    energy, overlap
        As for :func:`electronic_state`.
    dtype : torch.dtype, optional
        Dtype of the electronic step (matrices and positions are cast, keeping the graph);
        default: the model's. Training runs a float32 network with a float64 step.
    graph : MolecularGraph, optional
        The batch's graph, when the caller keeps one between steps.
    network : callable, optional
        What evaluates the model on the graph, returning what ``model(graph)`` returns: the
        calculator passes :class:`ase_phisnet.native.NativePhiSNet` (the compiled engine,
        differentiable with respect to the positions only). Default: the model itself.

    Returns
    -------
    (states, outputs)
        One :class:`ElectronicState` per molecule, and the model's padded irreps-order
        outputs (what the matrix loss compares).
    """
    outputs = (network or model)(graph if graph is not None else model.graph(numbers_list, positions_list))
    heads = ["fock"] + (["hcore"] if energy else []) + (["overlap"] if overlap == "predicted" else [])
    states = []
    for b, (numbers, R) in enumerate(zip(numbers_list, positions_list)):
        n = model.basis.n_ao(numbers)
        matrices = {h: model.basis.to_pyscf_order(outputs[h][b, :n, :n], numbers) for h in heads}
        if dtype is not None:
            matrices = {h: m.to(dtype) for h, m in matrices.items()}
            R = R.to(dtype)
        atomic = model.atomic_energy(numbers) if energy else 0.0
        correction = outputs["energy_correction"][b] if energy and "energy_correction" in outputs else None
        states.append(electronic_state(matrices, R, cache(numbers), model.config.core_baseline, overlap, energy, atomic, correction))
    return states, outputs


def energies_and_forces(
    model, numbers_list, positions_list, cache: IntegralCache, create_graph: bool = False, dtype: torch.dtype = torch.float64, hamiltonian_only: bool = False
):
    """Energies (Hartree) and forces (Hartree/Bohr) of a batch, from one model evaluation.

    Parameters
    ----------
    model : PhiSNet
        A model with F~ and H~core heads.
    numbers_list : list of int arrays
    positions_list : list of (natm, 3) arrays or tensors
        Positions in Bohr.
    cache : IntegralCache
    create_graph : bool
        Keep the graph of the forces, for a loss on them.
    dtype : torch.dtype
        Dtype of the electronic step (float64 keeps µEh resolution of a ~76 Eh energy).
    hamiltonian_only : bool
        Energies and forces without the model's learned energy correction (the same as the
        default for a model without one).

    Returns
    -------
    (energies, forces, states, outputs)
        ``energies`` (B,) tensor, ``forces`` a list of (natm, 3) float64 tensors, the
        :class:`ElectronicState` of each molecule and the model's padded outputs.
    """
    param = next(model.parameters())
    R = [torch.as_tensor(p, dtype=param.dtype, device=param.device).detach().requires_grad_(True) for p in positions_list]
    states, outputs = electronic_states(model, numbers_list, R, cache, energy=True, dtype=dtype)
    energies = torch.stack([s.hamiltonian_energy if hamiltonian_only else s.energy for s in states])
    grads = torch.autograd.grad(energies.sum(), R, create_graph=create_graph)
    return energies, [-g.double() for g in grads], states, outputs
