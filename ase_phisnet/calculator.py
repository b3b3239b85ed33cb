"""The ASE calculator: PhiSNet's predicted Hamiltonian, diagonalized at every step.

Energies in eV, forces in eV/Å, dipole in e·Å (ASE's units). The AO matrices under
``results`` are in PySCF's AO order and atomic units, so they drop straight into PySCF:

==================== ======================================================= =========
key                  what                                                    unit
==================== ======================================================= =========
``hamiltonian``      predicted Fock/KS matrix F~                             Hartree
``overlap``          S (exact from PySCF integrals, or predicted)            --
``density_matrix``   closed-shell P = 2 C_occ C_occ^T                        --
``mo_coeff``         C, columns S-orthonormal                                --
``mo_energy``        orbital energies                                        Hartree
``homo_lumo_gap``    eps_LUMO - eps_HOMO                                     eV
==================== ======================================================= =========

The energy, E = E_nn + 1/2 tr[P (F~ + H~core)], needs a model with an H~core head trained
through energies; a model trained on F~ alone gives orbitals, density, dipole and charges, and
says so when asked for an energy.

Examples
--------
>>> from ase.build import molecule
>>> from ase_phisnet import PhiSNetCalculator
>>> atoms = molecule("H2O")
>>> atoms.calc = PhiSNetCalculator("water-pbe-def2svp")          # doctest: +SKIP
>>> atoms.get_dipole_moment(), atoms.calc.get_eigenvalues()[:5]  # doctest: +SKIP
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.data import chemical_symbols

from . import allocator
from .electronic import ExactCoreHamiltonian, ExactOverlap, closed_shell_density, generalized_eigh, nuclear_repulsion, phisnet_energy
from .electronic.properties import dipole_moment, mulliken_charges
from .model.io import load_model
from .molecule import build_mol, check_charge_multiplicity
from .units import BOHR, HARTREE

#: Two atoms closer than this (Å) are refused: no training set has them, and the AO basis
#: becomes near-linearly dependent.
MIN_DISTANCE = 0.5


class PhiSNetCalculator(Calculator):
    """ASE calculator driven by a PhiSNet Hamiltonian model.

    Parameters
    ----------
    model : str or path or PhiSNet
        Shipped model name (``"water-pbe-def2svp"``), a model folder, or a loaded model.
    device : str
        ``"cpu"`` or ``"cuda"``.
    dtype : str
        ``"float64"`` (default; what finite-difference-exact forces need) or ``"float32"``.
    charge, multiplicity : int
        Total charge and 2S+1. Closed shell only: multiplicity 1.
    overlap : {"exact", "predicted"}
        S from PySCF's integrals (default) or the model's S~ head.
    keep_freed_memory : bool
        Huge pages for large tensors and glibc's malloc keeping freed memory for the next step
        (:func:`ase_phisnet.allocator.keep_freed_memory`; process-wide settings). Without
        them a step pays a page fault for every fresh page of its intermediates.
    """

    implemented_properties = ["energy", "free_energy", "forces", "dipole", "charges"]
    default_parameters = dict(model="water-pbe-def2svp", device="cpu", dtype="float64", charge=0, multiplicity=1, overlap="exact")

    def __init__(self, model="water-pbe-def2svp", device="cpu", dtype="float64", charge=0, multiplicity=1, overlap="exact", keep_freed_memory=True, **kwargs):
        super().__init__(**kwargs)
        if keep_freed_memory:
            allocator.keep_freed_memory()
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        if overlap not in ("exact", "predicted"):
            raise ValueError(f"overlap must be 'exact' or 'predicted', got {overlap!r}")
        if int(multiplicity) != 1:
            raise ValueError(f"multiplicity {multiplicity} asked for; PhiSNetCalculator is closed-shell only (multiplicity 1)")
        self.model = model if isinstance(model, torch.nn.Module) else load_model(model, device=device, dtype=getattr(torch, dtype))
        heads = self.model.config.heads
        if overlap == "predicted" and "overlap" not in heads:
            raise ValueError(f"overlap='predicted' needs a model with an overlap head; this one has {heads}")
        trained_charge = getattr(self.model, "metadata", {}).get("reference", {}).get("charge", 0) or 0
        if int(charge) != int(trained_charge):
            raise ValueError(f"charge {charge} asked for; this model was trained on charge {trained_charge} molecules only")
        self.parameters.update(model=str(model) if not isinstance(model, torch.nn.Module) else "<PhiSNet>", device=device, dtype=dtype, charge=int(charge), multiplicity=1, overlap=overlap)
        self._mol_cache = {}
        self._graph_cache = (None, None)

    # ------------------------------------------------------------------ input checks
    def check_atoms(self, atoms) -> None:
        """Refuse what the model cannot describe, with the reason and what is accepted."""
        numbers = atoms.get_atomic_numbers()
        unsupported = sorted(set(numbers.tolist()) - set(self.model.elements))
        if unsupported:
            raise ValueError(
                f"element(s) {', '.join(chemical_symbols[z] for z in unsupported)} not supported; "
                f"this model covers {', '.join(chemical_symbols[z] for z in self.model.elements)}"
            )
        if atoms.pbc.any():
            raise ValueError("periodic cells are not supported: PhiSNetCalculator is for molecules (set atoms.pbc = False)")
        pos = atoms.get_positions()
        if not np.all(np.isfinite(pos)):
            raise ValueError("atomic positions contain NaN or infinite values")
        if len(atoms) > 1:
            d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + np.eye(len(atoms)) * 1e9
            i, j = np.unravel_index(np.argmin(d), d.shape)
            if d[i, j] < MIN_DISTANCE:
                raise ValueError(f"atoms {i} and {j} are {d[i, j]:.3f} Å apart; PhiSNetCalculator needs at least {MIN_DISTANCE} Å")
        check_charge_multiplicity(numbers, self.parameters.charge, 1)

    def check_training_range(self, atoms) -> None:
        """Warn when an element pair is closer than any pair of that kind seen in training.

        The range is the model's ``metadata["training_range"]`` (shortest distance per element
        pair, Å); a model without that record is not checked.
        """
        seen = getattr(self.model, "metadata", {}).get("training_range", {}).get("pair_distance_A")
        if not seen or len(atoms) < 2:
            return
        numbers, pos = atoms.get_atomic_numbers(), atoms.get_positions()
        i, j = np.triu_indices(len(atoms), k=1)
        d = np.linalg.norm(pos[i] - pos[j], axis=-1)
        for a, b, dist in zip(i, j, d):
            za, zb = sorted((int(numbers[a]), int(numbers[b])))
            pair = f"{chemical_symbols[numbers[a]]}-{chemical_symbols[numbers[b]]}"
            low = seen.get(f"{za}-{zb}", [None])[0]
            if low is None:
                warnings.warn(f"atoms {a} and {b} form a {pair} pair, which the training data never had; the prediction is an extrapolation", stacklevel=3)
            elif dist < low:
                warnings.warn(
                    f"atoms {a} and {b} ({pair}) are {dist:.3f} Å apart, shorter than any such pair in training "
                    f"({low:.3f} Å): the geometry is outside the training range and the prediction is an extrapolation",
                    stacklevel=3,
                )

    def _integrals(self, atoms) -> tuple[ExactOverlap, ExactCoreHamiltonian]:
        key = tuple(atoms.get_atomic_numbers().tolist())
        if key not in self._mol_cache:  # the basis and integral set-up are built once per molecule
            mol = build_mol(atoms.get_atomic_numbers(), atoms.get_positions(), self.model.config.basis, self.parameters.charge)
            self._mol_cache = {key: (ExactOverlap(mol), ExactCoreHamiltonian(mol))}
        return self._mol_cache[key]

    def _graph(self, numbers, R: torch.Tensor):
        """The model's graph at ``R`` (Bohr); its bookkeeping is reused while the atoms and the
        pairs within the cutoff stay the same (every step of an MD run of a small molecule)."""
        with torch.no_grad():
            pairs = (torch.cdist(R, R) < self.model.config.cutoff).cpu().numpy()
        key = (tuple(numbers.tolist()), pairs.tobytes())
        cached_key, graph = self._graph_cache
        if key != cached_key:
            graph = self.model.graph([numbers], [R])
            self._graph_cache = (key, graph)
            return graph
        return graph.with_positions(R)

    # ------------------------------------------------------------------ the calculation
    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        self.check_atoms(atoms)
        self.check_training_range(atoms)
        numbers = atoms.get_atomic_numbers()
        n_occ = check_charge_multiplicity(numbers, self.parameters.charge, 1) // 2
        wants_energy = any(p in properties for p in ("energy", "free_energy", "forces"))
        has_hcore = "hcore" in self.model.config.heads
        if wants_energy and not has_hcore:
            raise PropertyNotImplementedError(
                "this model predicts F~ only (no H~core head trained through energies), so it gives orbitals, "
                "density, dipole and charges but no energy or forces; use a model trained with an energy loss"
            )
        param = next(self.model.parameters())
        R = torch.tensor(atoms.get_positions() / BOHR, dtype=param.dtype, device=param.device, requires_grad="forces" in properties)
        overlap, core = self._integrals(atoms)
        with torch.set_grad_enabled("forces" in properties):
            out = self.model(self._graph(numbers, R))
            to_pyscf = lambda name: self.model.basis.to_pyscf_order(out[name][0], numbers)  # noqa: E731
            F = to_pyscf("fock")
            S = to_pyscf("overlap") if self.parameters.overlap == "predicted" else overlap(R)
            if wants_energy:
                H = to_pyscf("hcore") + core(R) if self.model.config.core_baseline else to_pyscf("hcore")
                E, P = phisnet_energy(F, H, S, n_occ, nuclear_repulsion(torch.as_tensor(numbers, device=R.device), R))
                E = E + self.model.atomic_energy(numbers)
            else:
                P = closed_shell_density(F, S, n_occ)
        if "forces" in properties:
            (grad,) = torch.autograd.grad(E, R)
            self.results["forces"] = -grad.detach().cpu().double().numpy() * HARTREE / BOHR
        if wants_energy:
            self.results["energy"] = self.results["free_energy"] = float(E.detach()) * HARTREE

        F_np, S_np, P_np = (x.detach().cpu().double().numpy() for x in (F, S, P))
        eps, C = (x.numpy() for x in generalized_eigh(torch.from_numpy(F_np), torch.from_numpy(S_np)))
        mol = overlap.mol
        gap = (eps[n_occ] - eps[n_occ - 1]) * HARTREE
        self.results.update(
            hamiltonian=F_np,
            overlap=S_np,
            density_matrix=P_np,
            mo_coeff=C,
            mo_energy=eps,
            homo_lumo_gap=gap,
            dipole=dipole_moment(mol, P_np) * BOHR,
            charges=mulliken_charges(mol, P_np, S_np),
        )
        if gap < 0.1:
            warnings.warn(f"predicted HOMO-LUMO gap collapsed to {gap:.3f} eV: the geometry is probably outside the training range", stacklevel=2)

    # ------------------------------------------------------------------ ASE orbital conventions
    def orbital_result(self, key: str, atoms=None):
        """``results[key]`` for an orbital quantity, calculating first if the geometry changed."""
        atoms = atoms or self.atoms
        if atoms is None:
            raise ValueError("no atoms: attach the calculator to an Atoms object first")
        if self.calculation_required(atoms, ["dipole"]) or key not in self.results:
            self.calculate(atoms, properties=["dipole"])
        return self.results[key]

    def get_eigenvalues(self, kpt=0, spin=0):
        """Orbital energies in eV (ASE's convention), ascending."""
        return self.orbital_result("mo_energy") * HARTREE

    def get_occupation_numbers(self, kpt=0, spin=0):
        n_occ = check_charge_multiplicity(self.atoms.get_atomic_numbers(), self.parameters.charge, 1) // 2
        occ = np.zeros(len(self.get_eigenvalues()))
        occ[:n_occ] = 2.0
        return occ

    def get_number_of_spins(self):
        return 1

    def get_homo_lumo(self):
        eps = self.get_eigenvalues()
        n_occ = int(self.get_occupation_numbers().astype(bool).sum())
        return eps[n_occ - 1], eps[n_occ]

    # ------------------------------------------------------------------ PySCF hand-off
    def initial_guess(self, atoms=None) -> np.ndarray:
        """The predicted density matrix (PySCF AO order), for ``mf.kernel(dm0=...)``."""
        return self.orbital_result("density_matrix", atoms)

    def to_pyscf(self, xc: str | None = None):
        """A PySCF mean-field object holding the predicted wavefunction.

        ``mo_coeff``, ``mo_energy`` and ``mo_occ`` are the model's, so PySCF analysis (Molden
        export, populations, ``make_rdm1``) works on it. ``xc=None`` gives an RKS object with
        the reference functional recorded in the model (an RHF object for an HF or CCSD(T) model,
        whose orbitals are Hartree–Fock-like).
        """
        from pyscf import dft, scf

        mo_coeff = self.orbital_result("mo_coeff")
        mol = build_mol(self.atoms.get_atomic_numbers(), self.atoms.get_positions(), self.model.config.basis, self.parameters.charge)
        reference = getattr(self.model, "metadata", {}).get("reference", {})
        xc = xc or reference.get("xc")
        mf = scf.RHF(mol) if (reference.get("method") in ("rhf", "ccsd(t)") or not xc) else dft.RKS(mol, xc=xc)
        mf.mo_coeff = mo_coeff
        mf.mo_energy = self.results["mo_energy"]
        mf.mo_occ = self.get_occupation_numbers()
        return mf
