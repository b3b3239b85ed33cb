"""The electronic structure a picture shows: orbitals and density of one geometry.

:class:`ElectronicStructure` holds what every figure needs (PySCF molecule, orbital energies,
MO coefficients, density matrix, occupied count), built either from a PhiSNet calculator
(:func:`from_model`) or from a converged PySCF Kohn-Sham calculation (:func:`from_pyscf`), so
model and DFT are drawn by the same code. Atomic units: energies in Hartree, AO matrices in
PySCF's AO order.

Examples
--------
>>> orbital_index("homo", n_occ=5, n_mo=24), orbital_index("lumo+1", 5, 24), orbital_index("7", 5, 24)
(4, 6, 7)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..molecule import build_mol, check_charge_multiplicity


@dataclass
class ElectronicStructure:
    """Closed-shell orbitals and density of one geometry.

    Attributes
    ----------
    mol : pyscf.gto.Mole
    mo_energy : ndarray (n_mo,), Hartree, ascending
    mo_coeff : ndarray (n_ao, n_mo), S-orthonormal columns
    density_matrix : ndarray (n_ao, n_ao), P = 2 C_occ C_occ^T
    n_occ : int, doubly occupied orbitals
    label : str, what made it ("PhiSNet", "PBE/def2-SVP")
    """

    mol: object
    mo_energy: np.ndarray
    mo_coeff: np.ndarray
    density_matrix: np.ndarray
    n_occ: int
    label: str


def from_model(atoms, calc) -> ElectronicStructure:
    """The predicted electronic structure of ``atoms`` from a :class:`PhiSNetCalculator`."""
    calc.orbital_result("mo_coeff", atoms.copy())
    atoms = calc.atoms
    charge = calc.parameters.charge
    n_occ = check_charge_multiplicity(atoms.get_atomic_numbers(), charge, 1) // 2
    mol = build_mol(atoms.get_atomic_numbers(), atoms.get_positions(), calc.model.config.basis, charge)
    r = calc.results
    return ElectronicStructure(mol, r["mo_energy"], r["mo_coeff"], r["density_matrix"], n_occ, "PhiSNet")


def from_pyscf(atoms, xc: str | None = "pbe", basis: str = "def2-svp", charge: int = 0, grids_level: int = 3) -> ElectronicStructure:
    """The converged PySCF Kohn-Sham (``xc=None``: Hartree-Fock) electronic structure of ``atoms``,
    from the reference calculator's SCF (:class:`~ase_phisnet.reference.PySCFCalculator`)."""
    from ..reference import PySCFCalculator

    n_occ = check_charge_multiplicity(atoms.get_atomic_numbers(), charge, 1) // 2
    mf = PySCFCalculator(xc=xc, basis=basis, charge=charge, grids_level=grids_level).mean_field(atoms)
    label = f"{xc.upper() if xc else 'HF'}/{basis}"
    return ElectronicStructure(mf.mol, mf.mo_energy, mf.mo_coeff, mf.make_rdm1(), n_occ, label)


def reference_for(calc) -> dict:
    """``from_pyscf`` keyword arguments matching the reference a model was trained on."""
    from ..reference import reference_xc

    ref = getattr(calc.model, "metadata", {}).get("reference", {})
    return dict(xc=reference_xc(calc.model), basis=calc.model.config.basis, charge=calc.parameters.charge, grids_level=ref.get("grids_level", 3))


_LABEL = re.compile(r"^(homo|lumo)\s*([+-]\s*\d+)?$")


def orbital_index(label, n_occ: int, n_mo: int) -> int:
    """0-based orbital index of ``"homo"``, ``"lumo"``, ``"homo-2"``, ``"lumo+1"`` or an integer.

    Raises ``ValueError`` naming the accepted forms when the label is not one of them or the
    orbital does not exist.
    """
    text = str(label).strip().lower()
    match = _LABEL.match(text)
    if match:
        base = n_occ - 1 if match.group(1) == "homo" else n_occ
        index = base + int(match.group(2).replace(" ", "")) if match.group(2) else base
    elif re.fullmatch(r"\d+", text):
        index = int(text)
    else:
        raise InputError(f"orbital {label!r} not understood; use homo, lumo, homo-N, lumo+N or a 0-based index")
    if not 0 <= index < n_mo:
        raise InputError(f"orbital {label!r} is index {index}, outside the {n_mo} orbitals (0..{n_mo - 1})")
    return index


def orbital_name(index: int, n_occ: int) -> str:
    """``"HOMO"``, ``"HOMO-1"``, ``"LUMO+2"``... for a 0-based orbital index."""
    if index < n_occ:
        k = n_occ - 1 - index
        return "HOMO" if k == 0 else f"HOMO-{k}"
    k = index - n_occ
    return "LUMO" if k == 0 else f"LUMO+{k}"


def aligned_sign(coeff: np.ndarray, reference: np.ndarray, overlap: np.ndarray) -> np.ndarray:
    """``coeff`` with its sign flipped if needed so its overlap with ``reference`` is positive.

    An orbital's sign is arbitrary; aligning the model's to DFT's makes their pictures comparable.
    """
    return coeff if float(coeff @ overlap @ reference) >= 0 else -coeff
