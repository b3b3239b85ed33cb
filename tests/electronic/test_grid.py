"""Orbitals and densities on points, and cube files, against PySCF's own integration grid."""

import numpy as np
import pytest
from pyscf import dft, gto

from ase_phisnet.electronic.grid import density_on_points, orbital_on_points, read_cube, write_density_cube, write_orbital_cube


@pytest.fixture(scope="module")
def water_pbe():
    mol = gto.M(atom="O 0 0 0.1173; H 0 0.7572 -0.4692; H 0 -0.7572 -0.4692", basis="def2-svp", verbose=0)
    mf = dft.RKS(mol, xc="pbe").run()
    grids = dft.gen_grid.Grids(mol)
    grids.level = 4
    grids.build()
    return mol, mf, grids


def test_density_integrates_to_the_electron_count(water_pbe):
    mol, mf, grids = water_pbe
    rho = density_on_points(mol, mf.make_rdm1(), grids.coords)
    assert float(grids.weights @ rho) == pytest.approx(10.0, abs=1e-4)
    assert rho.min() >= -1e-12


def test_orbitals_are_normalized_and_orthogonal(water_pbe):
    mol, mf, grids = water_pbe
    psi = orbital_on_points(mol, mf.mo_coeff[:, 3:7], grids.coords)
    gram = psi.T @ (grids.weights[:, None] * psi)
    assert np.allclose(gram, np.eye(4), atol=1e-4)
    # one orbital as a vector gives a 1-D result
    assert orbital_on_points(mol, mf.mo_coeff[:, 4], grids.coords[:5]).shape == (5,)


def test_cube_files_hold_the_values_at_their_grid_points(water_pbe, tmp_path):
    mol, mf, _ = water_pbe
    P = mf.make_rdm1()
    values, origin, axes = read_cube(write_density_cube(mol, P, tmp_path / "rho.cube", resolution=0.3))
    idx = np.array([[5, 7, 9], [values.shape[0] // 2, values.shape[1] // 2, values.shape[2] // 2], [3, 20, 11]])
    points = origin + idx @ axes
    expected = density_on_points(mol, P, points)
    assert np.allclose(values[tuple(idx.T)], expected, rtol=1e-4, atol=1e-9)  # cube files keep 6 significant digits
    # the box reaches the default 3 Bohr beyond the atoms on every side
    assert np.allclose(origin, mol.atom_coords().min(axis=0) - 3.0, atol=1e-6)

    homo = mf.mo_coeff[:, 4]
    psi, origin, axes = read_cube(write_orbital_cube(mol, homo, tmp_path / "homo.cube", resolution=0.3))
    points = origin + idx @ axes
    assert np.allclose(psi[tuple(idx.T)], orbital_on_points(mol, homo, points), rtol=1e-4, atol=1e-9)  # cube files keep 6 significant digits
