import numpy as np
from pyscf import scf

from ase_phisnet.electronic.properties import dipole_moment, mulliken_charges
from ase_phisnet.molecule import build_mol

from ..conftest import WATER_H5, shared_frame


def test_dipole_and_charges_match_pyscf():
    numbers, pos = shared_frame(WATER_H5, 2)
    mol = build_mol(numbers, pos)
    mf = scf.RHF(mol).run()
    P = mf.make_rdm1()
    ref_dipole = mf.dip_moment(unit="AU", verbose=0)
    assert np.allclose(dipole_moment(mol, P), ref_dipole, atol=1e-10)
    _, ref_charges = mf.mulliken_pop(verbose=0)
    assert np.allclose(mulliken_charges(mol, P), ref_charges, atol=1e-10)
    assert abs(mulliken_charges(mol, P).sum()) < 1e-10
