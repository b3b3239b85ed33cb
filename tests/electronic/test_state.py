"""The electronic-state step: one diagonalization gives P and eps with exact gradients, the
charge sets the occupation, and the calculator runs the step once per geometry."""

import numpy as np
import pytest
import scipy.linalg
import torch
from ase import Atoms
from pyscf import scf

from ase_phisnet.electronic import MolecularIntegrals, closed_shell_orbitals, eigensolver, electronic_state, orbital_energies
from ase_phisnet.molecule import build_mol
from ase_phisnet.units import BOHR

from ..conftest import WATER_H5, random_energy_model, shared_frame

pytestmark = pytest.mark.fast


def random_pair(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    B = torch.randn(n, n, generator=g, dtype=torch.float64)
    return (A + A.T) / 2, B @ B.T / n + torch.eye(n, dtype=torch.float64)


def test_orbital_energies_of_the_one_diagonalization_have_exact_gradients():
    F, S = random_pair()
    F.requires_grad_(True), S.requires_grad_(True)
    weights = torch.linspace(0.5, 2.0, 6, dtype=torch.float64)
    _, eps, C = closed_shell_orbitals(F, S, 2)
    assert not C.requires_grad
    assert torch.allclose(eps, orbital_energies(F, S), atol=1e-12)
    ours = torch.autograd.grad((eps * weights).sum(), (F, S))
    ref = torch.autograd.grad((orbital_energies(F, S) * weights).sum(), (F, S))
    for a, b in zip(ours, ref):
        assert torch.allclose(a, b, atol=1e-10)

    def both(F, S):  # P and eps together, as a training step uses them
        P, eps, _ = closed_shell_orbitals((F + F.T) / 2, (S + S.T) / 2, 2)
        return (P * F).sum() + (eps * weights).sum()

    assert torch.autograd.gradcheck(both, (F, S))
    assert torch.autograd.gradgradcheck(both, (F, S))


def test_the_charge_sets_the_occupation_and_the_state_matches_pyscf():
    numbers, pos = shared_frame(WATER_H5, 2)
    mol = build_mol(numbers, pos, "def2-svp", charge=2)
    mf = scf.RHF(mol).run(conv_tol=1e-12, verbose=0)
    integrals = MolecularIntegrals(numbers, "def2-svp", charge=2)
    assert integrals.n_occ == 4
    R = torch.tensor(pos / BOHR)
    F = torch.as_tensor(mf.get_fock())
    state = electronic_state({"fock": F, "hcore": torch.as_tensor(mf.get_hcore())}, R, integrals, core_baseline=False)
    assert abs(float((state.density_matrix * state.overlap).sum()) - 8.0) < 1e-10
    assert np.abs(state.density_matrix.numpy() - mf.make_rdm1()).max() < 1e-6
    assert np.abs(state.mo_energy.numpy() - scipy.linalg.eigh(mf.get_fock(), mf.get_ovlp(), eigvals_only=True)).max() < 1e-12
    assert abs(float(state.energy) - mf.e_tot) < 1e-7  # E_nn + 1/2 tr[P (F + h)] is the HF energy (to the SCF convergence)


@pytest.mark.parametrize("engine", ["native", "torch"])
def test_the_calculator_diagonalizes_once_per_geometry(monkeypatch, engine):
    from ase_phisnet import PhiSNetCalculator
    from ase_phisnet.electronic import analytic

    calls = []
    for module in (eigensolver, analytic):  # the torch step's eigensolver and the NumPy step's
        original = module.generalized_eigh
        monkeypatch.setattr(module, "generalized_eigh", lambda F, S, original=original: calls.append(1) or original(F, S))
    numbers, pos = shared_frame(WATER_H5, 4)
    atoms = Atoms(numbers=numbers, positions=pos)
    atoms.calc = PhiSNetCalculator(random_energy_model(WATER_H5), engine=engine)
    atoms.get_forces()
    assert len(calls) == 1
    atoms.get_potential_energy(), atoms.get_dipole_moment(), atoms.calc.get_eigenvalues()
    assert len(calls) == 1  # everything else comes from the same state
