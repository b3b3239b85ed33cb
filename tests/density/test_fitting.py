"""Density fitting (SALTED's reference coefficients) and the metric loss, against PySCF grids."""

import numpy as np
import pytest
from pyscf import dft, gto
from pyscf.dft import numint

from ase_phisnet.density import aux_norms, fit_density, make_auxmol, metric_loss
from ase_phisnet.density.metrics import density_error_percent, density_matrix_error_percent, dft_grid
from ase_phisnet.electronic.grid import density_on_points


@pytest.fixture(scope="module")
def water():
    mol = gto.M(atom="O 0 0 0.1173; H 0 0.7572 -0.4692; H 0 -0.7572 -0.4692", basis="def2-svp", verbose=0)
    mf = dft.RKS(mol, xc="pbe").run()
    return mol, mf.make_rdm1()


def test_aux_norms_are_the_integrals_of_the_functions(water):
    mol, _ = water
    aux = make_auxmol(mol)
    grids = dft_grid(aux, level=6)
    numerical = grids.weights @ numint.eval_ao(aux, grids.coords)
    assert np.allclose(aux_norms(aux), numerical, atol=1e-8)
    assert np.count_nonzero(aux_norms(aux)) < aux.nao  # p, d, ... functions integrate to zero


def test_fitted_density_holds_the_exact_electron_count(water):
    mol, P = water
    fit = fit_density(mol, P)
    assert fit.n_electrons == pytest.approx(10.0, abs=1e-10)
    grids = dft_grid(mol, level=7)
    rho_fit = numint.eval_ao(fit.auxmol, grids.coords) @ fit.coeff
    assert float(grids.weights @ rho_fit) == pytest.approx(10.0, abs=1e-8)
    # the Coulomb energy of the fitting error is positive and small (Hartree)
    assert 0 < fit.coulomb_error < 1e-3
    # a charged count is honoured as asked
    assert fit_density(mol, P, n_electrons=9.5).n_electrons == pytest.approx(9.5, abs=1e-10)


def test_fit_is_the_coulomb_optimum_under_the_constraint(water):
    """Moving the coefficients along any count-conserving direction raises the Coulomb error."""
    mol, P = water
    fit = fit_density(mol, P)
    from ase_phisnet.density.fitting import three_center

    b = np.einsum("ijq,ji->q", three_center(mol, fit.auxmol), P)
    error = lambda c: float(c @ fit.metric @ c - 2 * c @ b)  # noqa: E731  (up to the constant (rho|rho))
    rng = np.random.default_rng(0)
    for _ in range(5):
        d = rng.normal(size=fit.coeff.shape)
        d -= (fit.norms @ d) / (fit.norms @ fit.norms) * fit.norms  # keep the electron count
        assert error(fit.coeff + 1e-3 * d) > error(fit.coeff)


def test_metric_loss_is_the_integral_of_the_squared_density_difference(water):
    mol, P = water
    fit = fit_density(mol, P)
    rng = np.random.default_rng(1)
    other = fit.coeff + 0.01 * rng.normal(size=fit.coeff.shape)
    S_aux = fit.auxmol.intor_symmetric("int1e_ovlp")
    grids = dft_grid(fit.auxmol, level=6)
    ao = numint.eval_ao(fit.auxmol, grids.coords)
    on_grid = float(grids.weights @ (ao @ (other - fit.coeff)) ** 2)
    assert metric_loss(other, fit.coeff, S_aux) == pytest.approx(on_grid, rel=1e-6)


def test_density_error_metric(water):
    mol, P = water
    grids = dft_grid(mol)
    assert density_matrix_error_percent(mol, P, P, grids) == 0.0
    # scaling the density by 1.01 moves 1 % of the electrons: eps_rho = 1 %
    assert density_matrix_error_percent(mol, 1.01 * P, P, grids) == pytest.approx(1.0, rel=1e-6)
    rho = density_on_points(mol, P, grids.coords)
    assert density_error_percent(rho[::-1], rho, grids) > 10


def test_bad_input_is_named(water):
    mol, P = water
    with pytest.raises(ValueError, match="24 AOs"):
        fit_density(mol, P[:5, :5])
    with pytest.raises(ValueError, match="auxiliary basis 'no-such-fit'"):
        make_auxmol(mol, "no-such-fit")


def test_even_tempered_auxiliary_basis_fits_below_half_a_percent(water):
    """def2-universal-jfit is a Coulomb-fitting basis: its fit misses ~1.5 % of the density
    (in eps_rho); PySCF's even-tempered basis with progression 1.6 brings it under 0.5 %."""
    mol, P = water
    grids = dft_grid(mol)
    rho = density_on_points(mol, P, grids.coords)
    errors = {}
    for aux in ("def2-universal-jfit", "etb:1.6"):
        fit = fit_density(mol, P, aux)
        errors[aux] = density_error_percent(numint.eval_ao(fit.auxmol, grids.coords) @ fit.coeff, rho, grids)
        assert fit.n_electrons == pytest.approx(10.0, abs=1e-10)
    assert errors["etb:1.6"] < 0.5 < 1.0 < errors["def2-universal-jfit"]
    with pytest.raises(ValueError, match="progression factor"):
        make_auxmol(mol, "etb:wide")
