"""One Kohn-Sham step from an auxiliary-basis density: both energies approach the SCF energy
as the fitted density approaches the exact one, and the KS energy is variational."""

import numpy as np
import pytest
import scipy.linalg
from pyscf import df, dft, gto

from ase_phisnet.density import fit_density
from ase_phisnet.density.kohn_sham import one_step_energies

MEV_PER_ATOM = 27211.386 / 3


@pytest.fixture(scope="module")
def water():
    mol = gto.M(atom="O 0 0 0.1173; H 0 0.7572 -0.4692; H 0 -0.7572 -0.4692", basis="def2-svp", verbose=0)
    mf = dft.RKS(mol, xc="pbe")
    mf.conv_tol = 1e-11
    mf.kernel()
    return mol, mf


def test_one_step_energies_converge_to_the_scf_energy(water):
    mol, mf = water
    errors = []
    for aux in ("def2-universal-jfit", df.aug_etb(mol, beta=1.6)):
        fit = fit_density(mol, mf.make_rdm1(), aux)
        r = one_step_energies(mol, fit.auxmol, fit.coeff)
        hf, ks = (r.harris_foulkes - mf.e_tot) * MEV_PER_ATOM, (r.kohn_sham - mf.e_tot) * MEV_PER_ATOM
        assert ks > -1e-6  # variational: no density matrix goes below the SCF minimum
        assert sum(r.components["harris_foulkes"].values()) == pytest.approx(r.harris_foulkes, abs=1e-10)
        assert sum(r.components["kohn_sham"].values()) == pytest.approx(r.kohn_sham, abs=1e-10)
        errors.append((abs(hf), ks))
    # a larger auxiliary basis fits better, and both energies move towards the SCF energy
    assert errors[1][0] < 0.2 < errors[0][0] and errors[1][1] < errors[0][1] < 0.05
    # the one diagonalization gives an idempotent, N-electron density matrix
    S = mol.intor_symmetric("int1e_ovlp")
    assert np.trace(r.density_matrix @ S) == pytest.approx(10.0, abs=1e-10)
    assert np.allclose(r.density_matrix @ S @ r.density_matrix, 2 * r.density_matrix, atol=1e-10)


def test_hartree_term_equals_the_coulomb_energy_of_the_fitted_density(water):
    mol, mf = water
    fit = fit_density(mol, mf.make_rdm1())
    r = one_step_energies(mol, fit.auxmol, fit.coeff)
    J_aux = fit.auxmol.intor("int2c2e")
    assert -r.components["harris_foulkes"]["hartree"] == pytest.approx(0.5 * fit.coeff @ J_aux @ fit.coeff, rel=1e-12)


def test_one_step_from_a_density_matrix_is_exact_at_the_scf_density_and_second_order_off_it(water):
    from ase_phisnet.density.kohn_sham import one_step_energies_from_density_matrix

    mol, mf = water
    r = one_step_energies_from_density_matrix(mol, mf.make_rdm1(), grids=mf.grids)
    assert r.harris_foulkes == pytest.approx(mf.e_tot, abs=1e-8)
    assert r.kohn_sham == pytest.approx(mf.e_tot, abs=1e-8)
    assert sum(r.components["harris_foulkes"].values()) == pytest.approx(r.harris_foulkes, abs=1e-10)
    # a density matrix from a perturbed Fock matrix: both errors shrink quadratically with the
    # perturbation (Harris-Foulkes is stationary at the SCF density), the KS energy from above
    S, F = mol.intor_symmetric("int1e_ovlp"), mf.get_fock()
    rng = np.random.default_rng(0)
    D = rng.normal(size=F.shape)
    errors = []
    for size in (4e-3, 2e-3):
        C = scipy.linalg.eigh(F + size * (D + D.T), S)[1]
        P = 2 * C[:, :5] @ C[:, :5].T
        r = one_step_energies_from_density_matrix(mol, P, grids=mf.grids)
        assert r.kohn_sham > mf.e_tot
        errors.append((abs(r.harris_foulkes - mf.e_tot), r.kohn_sham - mf.e_tot))
    for big, small in zip(*errors):
        assert 3.0 < big / small < 5.0
