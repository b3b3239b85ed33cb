"""The NumPy electronic step (closed-form gradients) against the torch step and finite differences."""

import numpy as np
import pytest
import torch

from ase_phisnet.electronic import IntegralCache, MolecularIntegrals, electronic_state, nuclear_repulsion
from ase_phisnet.electronic.analytic import closed_shell_energy, electronic_step, nuclear_repulsion_and_gradient
from ase_phisnet.units import BOHR

CACHE = IntegralCache("def2-svp")

#: Geometries in Å (rough equilibrium structures).
WATER = ([8, 1, 1], [[0.0, 0.0, 0.1173], [0.0, 0.7572, -0.4692], [0.0, -0.7572, -0.4692]])
FORMAMIDE = ([6, 8, 7, 1, 1, 1], [[0.0, 0.4187, 0.0], [1.1968, 0.2316, 0.0], [-0.9472, -0.5468, 0.0], [-0.377, 1.457, 0.0], [-0.676, -1.519, 0.0], [-1.922, -0.29, 0.0]])
_d = 1.09 / np.sqrt(3)  # CH4 at its Td geometry: the three occupied 1t2 orbitals are exactly degenerate
METHANE = ([6, 1, 1, 1, 1], [[0, 0, 0], [_d, _d, _d], [-_d, -_d, _d], [-_d, _d, -_d], [_d, -_d, -_d]])


def symmetric(n, rng, scale=1.0):
    A = rng.normal(size=(n, n)) * scale
    return 0.5 * (A + A.T)


def model_matrices(numbers, positions_A, seed=0):
    """F~ = h + a random symmetric perturbation, an H~core head (random, symmetric), positions in Bohr."""
    integrals = CACHE(numbers)
    R = np.asarray(positions_A, dtype=float) / BOHR
    h = integrals.evaluate(R, derivative=False).core
    rng = np.random.default_rng(seed)
    return integrals, R, h + symmetric(len(h), rng, 0.05), symmetric(len(h), rng, 0.05)


def relative(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("molecule, core_baseline, overlap", [(WATER, True, "exact"), (WATER, False, "exact"), (FORMAMIDE, True, "exact"), (WATER, True, "predicted")])
def test_numpy_step_equals_the_torch_step(molecule, core_baseline, overlap):
    integrals, R, F, H_head = model_matrices(*molecule)
    S_pred = integrals.evaluate(R, derivative=False).overlap + symmetric(len(F), np.random.default_rng(3), 1e-3) if overlap == "predicted" else None
    step = electronic_step(F, H_head, R, integrals, core_baseline, atomic_energy=-1.25, S=S_pred)

    Rt, Ft, Ht = (torch.tensor(x, requires_grad=True) for x in (R, F, H_head))
    matrices = {"fock": Ft, "hcore": Ht}
    if S_pred is not None:
        matrices["overlap"] = St = torch.tensor(S_pred, requires_grad=True)
    state = electronic_state(matrices, Rt, integrals, core_baseline, overlap=overlap, atomic_energy=-1.25)
    grads = torch.autograd.grad(state.energy, (Rt, Ft, Ht) + ((St,) if S_pred is not None else ()))

    assert abs(step.energy - float(state.energy.detach())) < 1e-12 * abs(step.energy)
    assert relative(step.state.density_matrix, state.density_matrix.detach()) < 1e-12
    assert relative(step.state.mo_energy, state.mo_energy.detach()) < 1e-12
    assert relative(step.dE_dR, grads[0]) < 1e-12
    assert relative(step.dE_dF, grads[1]) < 1e-12
    assert relative(step.dE_dH, grads[2]) < 1e-12
    if S_pred is not None:
        assert relative(step.dE_dS, grads[3]) < 1e-12


def test_nuclear_repulsion_and_its_gradient_equal_torch():
    numbers, pos = FORMAMIDE
    R = torch.tensor(np.asarray(pos) / BOHR, requires_grad=True)
    E = nuclear_repulsion(torch.tensor(numbers), R)
    (grad,) = torch.autograd.grad(E, R)
    E_np, grad_np = nuclear_repulsion_and_gradient(numbers, R.detach().numpy())
    assert abs(E_np - float(E.detach())) < 1e-13 * float(E.detach())
    assert relative(grad_np, grad) < 1e-13


def fd_mismatch(F, S, H, n_occ, gradient_of, h=1e-4, seed=1):
    """Worst relative mismatch over F, S, H of ``sum(G * D)`` against a five-point central
    difference of E_el along a random symmetric direction D (Frobenius norm 1);
    ``gradient_of(result) -> (dE_dF, dE_dS, dE_dH)``.

    The stencil's error is O(h^4): at h = 1e-4 it stays below 1e-8 relative here, where a
    three-point stencil at 1e-5 reaches 1e-7 along S (the overlap's small eigenvalues make E
    steep in S) and rounding reaches it along F and H.
    """
    energy = lambda F, S, H: closed_shell_energy(F, S, H, n_occ).energy_electronic  # noqa: E731
    grads = gradient_of(closed_shell_energy(F, S, H, n_occ))
    rng = np.random.default_rng(seed)
    worst = 0.0
    for k, G in enumerate(grads):
        D = symmetric(len(F), rng)
        D /= np.linalg.norm(D)
        e = {}
        for step in (-2, -1, 1, 2):
            args = [F, S, H]
            args[k] = args[k] + step * h * D
            e[step] = energy(*args)
        fd = (8 * (e[1] - e[-1]) - (e[2] - e[-2])) / (12 * h)
        worst = max(worst, abs(float(np.sum(G * D)) - fd) / max(abs(fd), 1e-3))
    return worst


def exact_gradients(result):
    return result.dE_dF, result.dE_dS, result.dE_dH


@pytest.mark.parametrize("molecule", [WATER, FORMAMIDE])
def test_gradient_matrices_match_finite_differences(molecule):
    integrals, R, F, H_head = model_matrices(*molecule)
    at = integrals.evaluate(R, derivative=False)
    result = closed_shell_energy(F, at.overlap, H_head + at.core, integrals.n_occ)
    for G in exact_gradients(result):
        assert np.array_equal(G, G.T)
    assert fd_mismatch(F, at.overlap, H_head + at.core, integrals.n_occ, exact_gradients) < 1e-7


def test_forces_of_the_numpy_step_match_finite_differences():
    """dE/dR through E_nn, S(R) and h(R), with the network's F~ and H~core head held fixed."""
    integrals, R, F, H_head = model_matrices(*WATER)
    step = electronic_step(F, H_head, R, integrals, core_baseline=True)
    h, worst = 1e-3, 0.0  # five-point stencil
    for atom in range(len(R)):
        for axis in range(3):
            d = np.zeros_like(R)
            d[atom, axis] = h
            e = {k: electronic_step(F, H_head, R + k * d, integrals, core_baseline=True).energy for k in (-2, -1, 1, 2)}
            fd = (8 * (e[1] - e[-1]) - (e[2] - e[-2])) / (12 * h)
            worst = max(worst, abs(step.dE_dR[atom, axis] - fd))
    assert worst < 1e-7 * np.abs(step.dE_dR).max()


def test_degenerate_occupied_orbitals_have_exact_gradients():
    numbers, pos = METHANE
    integrals = MolecularIntegrals(numbers, "def2-svp")
    R = np.asarray(pos) / BOHR
    at = integrals.evaluate(R, derivative=False)
    F = H = at.core  # the exact core Hamiltonian keeps the Td symmetry
    result = closed_shell_energy(F, at.overlap, H, integrals.n_occ)
    eps, n = result.mo_energy, integrals.n_occ
    assert eps[n - 1] - eps[n - 3] < 1e-10  # the HOMO is triply degenerate
    assert eps[n - 3] - eps[n - 4] > 1e-2 and result.homo_lumo_gap > 1e-2
    assert all(np.isfinite(G).all() for G in exact_gradients(result))
    assert fd_mismatch(F, at.overlap, H, n, exact_gradients) < 1e-7
    # and the positions: the degeneracy-safe torch backward gives the same dE/dR
    step = electronic_step(F, np.zeros_like(F), R, integrals, core_baseline=True)
    Rt = torch.tensor(R, requires_grad=True)
    state = electronic_state({"fock": torch.tensor(F), "hcore": torch.zeros(F.shape)}, Rt, integrals, core_baseline=True)
    (grad,) = torch.autograd.grad(state.energy, Rt)
    assert relative(step.dE_dR, grad) < 1e-12


def test_a_wrong_sign_of_dE_dS_fails_the_finite_difference_check():
    integrals, R, F, H_head = model_matrices(*WATER)
    at = integrals.evaluate(R, derivative=False)
    wrong = lambda r: (r.dE_dF, -r.dE_dS, r.dE_dH)  # noqa: E731
    assert fd_mismatch(F, at.overlap, H_head + at.core, integrals.n_occ, wrong) > 1e-2


def test_a_nearly_vanishing_homo_lumo_gap_gives_the_torch_step_numbers():
    """A molecule pulled apart (an H atom beyond the cutoff) closes the gap: the energy and P stay
    defined, and the gradient grows as 1/gap exactly as in the torch step (the calculator warns)."""
    from ase_phisnet.electronic import closed_shell_orbitals

    F = torch.diag(torch.tensor([-1.0, 0.5, 0.5 + 1e-9, 2.0], dtype=torch.float64))
    F[0, 1] = F[1, 0] = F[2, 3] = F[3, 2] = 1e-3  # couplings that keep the HOMO (1) and LUMO (2) 1e-9 apart
    S = torch.eye(4, dtype=torch.float64)
    H = torch.zeros(4, 4, dtype=torch.float64)
    H[1, 2] = H[2, 1] = 1e-3  # H~core couples HOMO and LUMO: the gradient feels the gap
    F.requires_grad_(True), S.requires_grad_(True)
    P, _, _ = closed_shell_orbitals(F, S, 2)
    energy = 0.5 * (P * (F + H)).sum()
    gF, gS = (0.5 * (g + g.T) for g in torch.autograd.grad(energy, (F, S)))
    result = closed_shell_energy(F.detach().numpy(), S.detach().numpy(), H.numpy(), n_occ=2)
    assert abs(result.energy_electronic - float(energy)) < 1e-12 and result.homo_lumo_gap < 1e-5
    assert np.abs(gF.numpy()).max() > 100  # the 1/gap growth: 4 (H_12 / 2) / gap
    assert np.abs(result.dE_dF - gF.numpy()).max() <= 1e-10 * np.abs(gF.numpy()).max()
    assert np.abs(result.dE_dS - gS.numpy()).max() <= 1e-10 * np.abs(gS.numpy()).max()


def test_the_torch_backward_of_the_integrals_stays_differentiable():
    """The shared contractions, called by the torch backward, keep a force loss differentiable."""
    integrals = MolecularIntegrals(WATER[0], "sto-3g")
    R = torch.tensor(np.asarray(WATER[1]) / BOHR, requires_grad=True)

    def forces(W):
        E = (W * integrals.overlap(R)).sum() + (W.T * integrals.core(R)).sum()
        return torch.autograd.grad(E, R, create_graph=True)[0]

    W = torch.randn(7, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(forces, (W,))
