"""Energy and forces from predicted matrices: exact S derivative, nuclear repulsion, finite differences."""

import numpy as np
import pytest
import torch

from ase_phisnet.electronic import ExactCoreHamiltonian, ExactOverlap, MolecularIntegrals, electronic_states, nuclear_repulsion
from ase_phisnet.molecule import build_mol
from ase_phisnet.units import BOHR, HARTREE

from ..conftest import ETHANOL_H5, WATER_H5, random_energy_model, shared_frame


def test_exact_overlap_and_its_derivative():
    numbers, pos = shared_frame(WATER_H5, 3)
    mol = build_mol(numbers, pos)
    overlap = ExactOverlap(mol)
    R = torch.tensor(pos / BOHR, requires_grad=True)
    S = overlap(R)
    assert np.allclose(S.detach().numpy(), mol.intor("int1e_ovlp"), atol=1e-14)
    W = torch.randn(S.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    (g,) = torch.autograd.grad((S * W).sum(), R)
    h = 1e-5
    for atom, axis in [(0, 0), (1, 2), (2, 1)]:
        d = torch.zeros_like(R)
        d[atom, axis] = h
        with torch.no_grad():
            fd = ((overlap(R + d) * W).sum() - (overlap(R - d) * W).sum()) / (2 * h)
        assert abs(float(g[atom, axis]) - float(fd)) < 1e-8


def test_nuclear_repulsion_matches_pyscf():
    numbers, pos = shared_frame(ETHANOL_H5, 0)
    E = nuclear_repulsion(torch.tensor(numbers), torch.tensor(pos / BOHR))
    assert abs(float(E) - build_mol(numbers, pos).energy_nuc()) < 1e-10


def model_state(model, integrals, numbers, R):
    """The electronic state at R (Bohr): the model's F~ and H~core, the exact S and h(R)."""
    (state,), _ = electronic_states(model, [numbers], [R], lambda _: integrals)
    return state


def model_energy(model, integrals, numbers, R):
    """E(R) in Hartree."""
    return model_state(model, integrals, numbers, R).energy


def methane():
    """CH4 at its Td geometry (C-H 1.09 Å): the three 1t2 orbitals are exactly degenerate."""
    d = 1.09 / np.sqrt(3)
    return np.array([6, 1, 1, 1, 1]), np.array([[0, 0, 0], [d, d, d], [-d, -d, d], [-d, d, -d], [d, -d, -d]], dtype=float)


@pytest.mark.parametrize("system", ["water", "ethanol", "methane"])
def test_forces_match_central_finite_differences(system):
    if system == "methane":
        numbers, pos = methane()
        model = random_energy_model(ETHANOL_H5, [1, 6, 7, 8])
    else:
        h5 = {"water": WATER_H5, "ethanol": ETHANOL_H5}[system]
        numbers, pos = shared_frame(h5, 1)
        model = random_energy_model(h5, [1, 6, 7, 8])
    integrals = MolecularIntegrals(numbers, model.config.basis)
    R = torch.tensor(pos / BOHR, requires_grad=True)
    E = model_energy(model, integrals, numbers, R)
    (grad,) = torch.autograd.grad(E, R)
    assert torch.isfinite(grad).all()
    if system == "methane":  # the degenerate level lies wholly below the HOMO-LUMO gap
        with torch.no_grad():
            eps = model_state(model, integrals, numbers, R).mo_energy
        n_occ = 5
        assert float(eps[n_occ - 1] - eps[n_occ - 3]) < 1e-10  # HOMO triply degenerate
        assert float(eps[n_occ - 3] - eps[n_occ - 4]) > 1e-2 and float(eps[n_occ] - eps[n_occ - 1]) > 1e-2
        assert grad.abs().max() > 1e-4  # not the zeros of the original code
    # Seven-point central stencil, truncation error O(h^6). The energy itself is exact only to
    # about 1e-14 relative (6e-12 Eh for ethanol), which a difference quotient divides by h: with
    # five points at h = 1e-3 Bohr that noise reached 9e-7 eV/Å on ethanol. At h = 3e-3 Bohr
    # with seven points the worst component is 1.2e-7 eV/Å on ethanol, 2e-9 on water.
    h = 3e-3
    worst = 0.0
    for atom in range(len(numbers)):
        for axis in range(3):
            d = torch.zeros_like(R)
            d[atom, axis] = h
            with torch.no_grad():
                e = {k: model_energy(model, integrals, numbers, R + k * d) for k in (-3, -2, -1, 1, 2, 3)}
            fd = (45 * (e[1] - e[-1]) - 9 * (e[2] - e[-2]) + (e[3] - e[-3])) / (60 * h)
            worst = max(worst, abs(float(grad[atom, axis] - fd)))
    assert worst * HARTREE / BOHR < 1e-6, f"worst {worst * HARTREE / BOHR:.2e} eV/Å"


def test_exact_core_hamiltonian_and_its_derivative():
    numbers, pos = shared_frame(WATER_H5, 3)
    mol = build_mol(numbers, pos)
    core = ExactCoreHamiltonian(mol)
    R0 = torch.tensor(pos / BOHR)
    assert np.abs(core(R0).numpy() - (mol.intor("int1e_kin") + mol.intor("int1e_nuc"))).max() < 1e-12
    W = torch.as_tensor(np.random.default_rng(0).normal(size=(mol.nao, mol.nao)))
    R = R0.clone().requires_grad_(True)
    ((core(R) * W).sum()).backward()
    h = 1e-3  # five-point stencil
    for atom in range(len(numbers)):
        for axis in range(3):
            d = torch.zeros_like(R0)
            d[atom, axis] = h
            e = {k: float((core(R0 + k * d) * W).sum()) for k in (-2, -1, 1, 2)}
            fd = (8 * (e[1] - e[-1]) - (e[2] - e[-2])) / (12 * h)
            assert abs(float(R.grad[atom, axis]) - fd) < 1e-7 * max(1.0, abs(fd))
