"""The PySCF reference calculators, and the one chosen for a model's recorded reference method."""

from types import SimpleNamespace

import numpy as np
import pytest
from ase.build import molecule

from ase_phisnet.data import label_frame
from ase_phisnet.reference import PySCFCalculator, reference_calculator
from ase_phisnet.units import BOHR, HARTREE


def _model(reference):
    return SimpleNamespace(metadata={"reference": reference}, config=SimpleNamespace(basis="sto-3g"))


def test_reference_calculator_follows_the_model_reference():
    pbe = reference_calculator(_model({"method": "rks", "xc": "pbe"}))
    hf = reference_calculator(_model({"method": "rhf", "xc": None}))
    cc = reference_calculator(_model({"method": "ccsd(t)", "xc": None}))
    assert (pbe.xc, pbe.method, pbe.basis) == ("pbe", "scf", "sto-3g")
    assert (hf.xc, hf.method) == (None, "scf")
    assert (cc.xc, cc.method) == (None, "ccsd(t)") and "dipole" not in cc.implemented_properties
    with pytest.raises(ValueError, match="'scf' or 'ccsd\\(t\\)'"):
        PySCFCalculator(method="mp2")


def test_ccsd_t_calculator_matches_the_labels():
    """ASE units (eV, eV/Å) of the same CCSD(T) numbers the labeller stores (Hartree, Hartree/Bohr)."""
    atoms = molecule("H2O")
    atoms.positions[1] += [0.0, 0.05, 0.02]
    atoms.calc = PySCFCalculator(method="ccsd(t)", basis="6-31g")
    frame = label_frame(atoms.numbers, atoms.positions, method="ccsd(t)", basis="6-31g")
    assert atoms.get_potential_energy() == pytest.approx(frame["energy"] * HARTREE, abs=1e-6)
    np.testing.assert_allclose(atoms.get_forces(), frame["forces"] * HARTREE / BOHR, atol=1e-5)
