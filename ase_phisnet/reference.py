"""PySCF as an ASE calculator: the reference the learned model is compared against.

:class:`PySCFCalculator` runs a closed-shell Kohn-Sham SCF (PBE/def2-SVP, grid level 3 by
default, the settings of the shared reference data), or Hartree-Fock, or CCSD(T) on Hartree-Fock,
and the analytic nuclear gradient, so ASE's optimizers, MD and vibrations can run on the
reference with the same scripts as on the model. Each new geometry starts from the previous
converged density matrix. :func:`reference_calculator` builds the one matching a model.

Examples
--------
>>> from ase.build import molecule
>>> from ase_phisnet.reference import PySCFCalculator
>>> atoms = molecule("H2O")
>>> atoms.calc = PySCFCalculator()                          # doctest: +SKIP
>>> atoms.get_potential_energy(), atoms.get_forces()        # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.units import Debye

from .errors import ConvergenceError, InputError
from .molecule import build_mol
from .units import BOHR, HARTREE


class PySCFCalculator(Calculator):
    """Closed-shell PySCF RKS (or RHF with ``xc=None``) energy, forces and dipole for ASE;
    with ``method="ccsd(t)"``, CCSD(T) energy and forces on RHF (no dipole).

    Parameters
    ----------
    xc : str or None
        Exchange-correlation functional; ``None`` for Hartree-Fock (and CCSD(T)).
    method : {"scf", "ccsd(t)"}
        ``"scf"``: the SCF energy (RKS or RHF by ``xc``); ``"ccsd(t)"``: all-electron CCSD(T).
    basis : str
        PySCF basis name.
    charge : int
        Total charge (multiplicity 1).
    conv_tol : float
        SCF energy convergence, Hartree.
    grids_level : int
        PySCF DFT grid level.
    """

    implemented_properties = ["energy", "free_energy", "forces", "dipole"]

    def __init__(self, xc="pbe", basis="def2-svp", charge=0, conv_tol=1e-10, grids_level=3, method="scf", **kwargs):
        super().__init__(**kwargs)
        if method not in ("scf", "ccsd(t)"):
            raise InputError(f"method must be 'scf' or 'ccsd(t)', got {method!r}")
        if method == "ccsd(t)":
            xc = None
            self.implemented_properties = ["energy", "free_energy", "forces"]
        self.method = method
        self.xc, self.basis, self.charge = xc, basis, int(charge)
        self.conv_tol, self.grids_level = conv_tol, grids_level
        self._dm = None
        self.scf = None

    def mean_field(self, atoms):
        """A converged PySCF mean-field object at ``atoms``' geometry."""
        from pyscf import dft, scf

        mol = build_mol(atoms.get_atomic_numbers(), atoms.get_positions(), self.basis, self.charge)
        if self.xc:
            mf = dft.RKS(mol, xc=self.xc)
            mf.grids.level = self.grids_level
        else:
            mf = scf.RHF(mol)
        mf.conv_tol = self.conv_tol
        mf.verbose = 0
        dm0 = self._dm if self._dm is not None and self._dm.shape == (mol.nao, mol.nao) else None
        mf.kernel(dm0=dm0)
        if not mf.converged:
            raise ConvergenceError(f"PySCF SCF did not converge (conv_tol {self.conv_tol}) at this geometry")
        self._dm = mf.make_rdm1()
        return mf

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        mf = self.scf = self.mean_field(self.atoms)
        if self.method == "ccsd(t)":
            from .data.label import ccsd_t_energy_forces

            energy, forces, converged = ccsd_t_energy_forces(mf, conv_tol=min(self.conv_tol, 1e-10))
            if not converged:
                raise ConvergenceError("PySCF CCSD(T) amplitudes or (T) lambdas did not converge at this geometry")
            self.results["energy"] = self.results["free_energy"] = energy * HARTREE
            self.results["forces"] = forces * HARTREE / BOHR
            return
        self.results["energy"] = self.results["free_energy"] = float(mf.e_tot) * HARTREE
        if "forces" in properties:
            self.results["forces"] = -mf.nuc_grad_method().kernel() * HARTREE / BOHR
        self.results["dipole"] = np.asarray(mf.dip_moment(unit="Debye", verbose=0)) * Debye  # e·Å


def reference_xc(model) -> str | None:
    """The exchange-correlation functional of a model's reference (its ``metadata.reference``);
    ``None`` for a Hartree-Fock-based reference (RHF, or CCSD(T) on RHF), ``"pbe"`` if unrecorded."""
    ref = getattr(model, "metadata", {}).get("reference", {})
    if ref.get("method") in ("rhf", "ccsd(t)"):
        return None
    return ref.get("xc") or "pbe"


def reference_calculator(model, **kwargs) -> PySCFCalculator:
    """The PySCF calculator of the method a model was trained on (its ``metadata.reference``):
    RKS with the recorded functional, RHF, or CCSD(T); in the model's basis."""
    kwargs.setdefault("basis", model.config.basis)
    if getattr(model, "metadata", {}).get("reference", {}).get("method") == "ccsd(t)":
        return PySCFCalculator(method="ccsd(t)", **kwargs)
    return PySCFCalculator(xc=reference_xc(model), **kwargs)
