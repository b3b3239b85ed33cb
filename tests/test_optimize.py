"""Minimum comparison helpers and the PySCF reference calculator."""

import numpy as np
from ase.build import molecule

from ase_phisnet.basis import random_rotation
from ase_phisnet.optimize import bond_angles, bonds, kabsch_rmsd
from ase_phisnet.reference import PySCFCalculator


def test_kabsch_rmsd_removes_rotation_and_translation_only():
    pos = molecule("CH3CH2OH").positions
    turned = pos @ random_rotation(3).T + np.array([1.0, -2.0, 0.5])
    assert kabsch_rmsd(pos, turned) < 1e-10
    shifted = pos.copy()
    shifted[0, 0] += 0.3
    assert 0.01 < kabsch_rmsd(pos, shifted) < 0.3 / np.sqrt(len(pos)) + 1e-9


def test_bonds_and_angles_of_ethanol():
    atoms = molecule("CH3CH2OH")
    pairs = bonds(atoms)
    assert len(pairs) == 8  # C-C, C-O, O-H, 5 C-H
    assert len(bond_angles(atoms, pairs)) == 13  # 6 on the CH3 carbon, 6 on CH2, 1 on O


def test_pyscf_calculator_forces_are_minus_the_energy_gradient():
    atoms = molecule("H2O")
    atoms.calc = PySCFCalculator()
    forces = atoms.get_forces()
    h = 1e-3
    e = {}
    for k in (-1, 1):
        shifted = atoms.copy()
        shifted.positions[1, 1] += k * h
        shifted.calc = PySCFCalculator()
        e[k] = shifted.get_potential_energy()
    # PySCF gradients leave out the grid response: agreement to ~1e-4 eV/Å on grid level 3
    assert abs(forces[1, 1] + (e[1] - e[-1]) / (2 * h)) < 5e-4  # eV/Å
    assert abs(np.linalg.norm(atoms.get_dipole_moment()) - 0.405) < 0.01  # e·Å, PBE/def2-SVP
