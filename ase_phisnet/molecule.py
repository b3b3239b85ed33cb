"""PySCF molecules from ASE-style input (atomic numbers, positions in Å), with checked electrons.

Examples
--------
>>> from ase_phisnet.molecule import build_mol
>>> mol = build_mol([8, 1, 1], [[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]])
>>> mol.nelectron, mol.nao
(10, 24)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from ase.data import chemical_symbols

from .basis import element_shells
from .errors import ElectronCountError, InputError
from .units import BOHR


def formula(numbers: Sequence[int]) -> str:
    """The Hill formula of a molecule (C first, then H, then the rest alphabetically), the name
    by which models record the molecules they were trained on and evaluation groups frames.

    Examples
    --------
    >>> formula([1, 8, 1]), formula([6, 6, 8, 1, 1, 1, 1, 1, 1])
    ('H2O', 'C2H6O')
    """
    from ase import Atoms

    return Atoms(numbers=[int(z) for z in numbers]).get_chemical_formula(mode="hill")


def check_charge_multiplicity(numbers: Sequence[int], charge: int = 0, multiplicity: int = 1) -> int:
    """Validate charge and spin multiplicity (2S+1) against the nuclear charges.

    Returns
    -------
    int
        The number of electrons.

    Raises
    ------
    ElectronCountError
        If the electron count is not positive, or its parity does not fit the multiplicity.
    """
    if int(charge) != charge:
        raise ElectronCountError(f"charge must be an integer, got {charge!r}")
    if int(multiplicity) != multiplicity or multiplicity < 1:
        raise ElectronCountError(f"multiplicity (2S+1) must be an integer >= 1, got {multiplicity!r}")
    nelec = int(np.sum(numbers)) - int(charge)
    unpaired = int(multiplicity) - 1
    if nelec <= 0:
        raise ElectronCountError(f"charge {charge} leaves {nelec} electrons; a molecule needs at least one")
    if unpaired > nelec or (nelec - unpaired) % 2:
        parity = "even" if nelec % 2 == 0 else "odd"
        allowed = "1, 3, 5, ..." if nelec % 2 == 0 else "2, 4, 6, ..."
        raise ElectronCountError(
            f"multiplicity {multiplicity} does not fit {nelec} electrons (charge {charge}): "
            f"an {parity} electron count allows multiplicity {allowed}"
        )
    return nelec


def build_mol(numbers, positions, basis: str = "def2-svp", charge: int = 0, multiplicity: int = 1, **kwargs):
    """Build a PySCF ``Mole`` in spherical AOs.

    Parameters
    ----------
    numbers : sequence of int
        Atomic numbers.
    positions : (natm, 3) array_like
        Cartesian positions in Å. They are handed to PySCF in Bohr (``ase.units.Bohr``), so the
        package uses one Bohr constant throughout.
    basis : str
        PySCF basis name.
    charge, multiplicity : int
        Total charge and spin multiplicity 2S+1.
    **kwargs
        Further ``gto.M`` keywords (``verbose``, ``max_memory``, ...).
    """
    from pyscf import gto

    numbers = np.asarray(numbers, dtype=int).reshape(-1)
    positions = np.asarray(positions, dtype=float)
    if positions.shape != (len(numbers), 3):
        raise InputError(f"positions must have shape ({len(numbers)}, 3), got {positions.shape}")
    if not np.all(np.isfinite(positions)):
        raise InputError("positions contain NaN or infinite values")
    for z in sorted(set(numbers.tolist())):
        element_shells(basis, z)  # raises BasisError naming the element
    check_charge_multiplicity(numbers, charge, multiplicity)
    kwargs.setdefault("verbose", 0)
    atom = [[chemical_symbols[z], tuple(p)] for z, p in zip(numbers, positions / BOHR)]
    return gto.M(atom=atom, basis=basis, charge=int(charge), spin=int(multiplicity) - 1, unit="Bohr", cart=False, **kwargs)


def one_electron_matrices(mol) -> dict[str, np.ndarray]:
    """The matrices that follow from the geometry alone, as a reference frame stores them.

    ``overlap`` is ``int1e_ovlp``; ``hcore`` is PySCF's core Hamiltonian
    (:func:`pyscf.scf.hf.get_hcore`: kinetic + nuclear attraction, plus the ECP where the basis
    has one), Hartree, (nao, nao) in PySCF's AO order. The labelling and the import of sets that
    do not store them both use this.
    """
    from pyscf.scf import hf

    return {"overlap": mol.intor("int1e_ovlp"), "hcore": np.asarray(hf.get_hcore(mol))}
