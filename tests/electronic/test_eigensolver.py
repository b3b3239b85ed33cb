"""P(F, S): gradients against finite differences, at degeneracy too, and second derivatives."""

import numpy as np
import pytest
import torch

from ase_phisnet.electronic import closed_shell_density, generalized_eigh, orbital_energies


def random_problem(n=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    F = 0.5 * (A + A.T)
    B = torch.randn(n, n, generator=g, dtype=torch.float64) * 0.2
    S = torch.eye(n, dtype=torch.float64) + 0.5 * (B + B.T)
    G = torch.randn(n, n, generator=g, dtype=torch.float64)
    return F, S, 0.5 * (G + G.T)


def energy(F, S, G, n_occ):
    return (closed_shell_density(F, S, n_occ) * G).sum()


def test_generalized_eigh_matches_scipy():
    import scipy.linalg

    F, S, _ = random_problem()
    eps, C = generalized_eigh(F, S)
    ref = scipy.linalg.eigh(F.numpy(), S.numpy(), eigvals_only=True)
    assert np.allclose(eps.numpy(), ref, atol=1e-12)
    assert torch.allclose(C.T @ S @ C, torch.eye(7, dtype=torch.float64), atol=1e-12)


def test_orbital_energies_match_scipy_and_finite_differences():
    import scipy.linalg

    F, S, G = random_problem()
    assert np.allclose(orbital_energies(F, S).numpy(), scipy.linalg.eigh(F.numpy(), S.numpy(), eigvals_only=True), atol=1e-12)
    F.requires_grad_(), S.requires_grad_()
    weights = torch.linspace(1.0, 2.0, 3, dtype=torch.float64)

    def occupied_sum(F, S):
        return (orbital_energies(F, S)[:3] * weights).sum()

    dF, dS = torch.autograd.grad(occupied_sum(F, S), (F, S))
    h = 1e-6
    with torch.no_grad():
        fd_F = (occupied_sum(F + h * G, S) - occupied_sum(F - h * G, S)) / (2 * h)
        fd_S = (occupied_sum(F, S + h * G) - occupied_sum(F, S - h * G)) / (2 * h)
    assert abs(float((dF * G).sum()) - float(fd_F)) < 1e-7
    assert abs(float((dS * G).sum()) - float(fd_S)) < 1e-7


def test_gradient_matches_finite_differences():
    F, S, G = random_problem()
    F.requires_grad_(), S.requires_grad_()
    dF, dS = torch.autograd.grad(energy(F, S, G, 3), (F, S))
    h = 1e-6
    for X, dX in ((F, dF), (S, dS)):
        E = torch.randn(7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
        E = 0.5 * (E + E.T)
        with torch.no_grad():
            fd = (energy(*(F + h * E, S) if X is F else (F, S + h * E), G, 3) - energy(*(F - h * E, S) if X is F else (F, S - h * E), G, 3)) / (2 * h)
        assert abs(float((dX * E).sum()) - float(fd)) < 1e-7


def test_degenerate_occupied_orbitals_give_correct_finite_gradients():
    """Two exactly degenerate occupied (and virtual) levels: the gradient is finite, non-zero and
    matches finite differences (only occupied-virtual gaps enter the backward)."""
    n = 6
    Q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    levels = torch.tensor([-2.0, -1.0, -1.0, 0.5, 1.0, 1.0], dtype=torch.float64)  # degenerate occ and virt
    F = (Q @ torch.diag(levels) @ Q.T).requires_grad_()
    S = torch.eye(n, dtype=torch.float64, requires_grad=True)
    G = random_problem(n, seed=3)[2]
    dF, dS = torch.autograd.grad(energy(F, S, G, 3), (F, S))
    assert torch.isfinite(dF).all() and torch.isfinite(dS).all()
    h = 1e-6
    E = random_problem(n, seed=4)[2]
    with torch.no_grad():
        fd_F = (energy(F + h * E, S, G, 3) - energy(F - h * E, S, G, 3)) / (2 * h)
        fd_S = (energy(F, S + h * E, G, 3) - energy(F, S - h * E, G, 3)) / (2 * h)
    assert abs(float((dF * E).sum()) - float(fd_F)) < 1e-7
    assert abs(float((dS * E).sum()) - float(fd_S)) < 1e-7
    # the gradient is not zero either (the original PhiSNet code returns zeros here)
    assert dF.abs().max() > 1e-3


def test_second_derivative_gradgradcheck():
    F, S, G = random_problem(5, seed=2)
    F.requires_grad_(), S.requires_grad_()

    def f(F, S):
        return closed_shell_density(_sym(F), _sym(S), 2)

    assert torch.autograd.gradgradcheck(f, (F, S), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradcheck(f, (F, S), eps=1e-6, atol=1e-6)


def _sym(M):
    return 0.5 * (M + M.T)


def test_bad_occupation():
    F, S, _ = random_problem()
    with pytest.raises(ValueError, match="n_occ"):
        closed_shell_density(F, S, 0)
