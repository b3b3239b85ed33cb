"""The closed-shell density matrix P(F, S) with a degeneracy-safe, differentiable backward.

Forward: solve ``F C = S C eps`` (``C^T S C = 1``), ``P = 2 C_o C_o^T``, ``W = 2 C_o eps_o C_o^T``.

Backward (DESIGN.md, "The degeneracy-safe backward of P(F, S)"): for a symmetric cotangent
``G = dE/dP``, with ``A = C_v^T G C_o``, ``B = C_o^T G C_o``, ``Y_ai = 4 A_ai / (eps_i - eps_a)``,

    dE/dF = sym(C_v Y C_o^T)
    dE/dS = sym(-C_v (Y * eps_o) C_o^T - 2 C_o B C_o^T)

Only occupied-virtual gaps appear, so degenerate occupied (or virtual) orbitals give finite,
correct gradients, where ``torch.linalg.eigh``'s own backward divides by zero. The backward is
written in torch operations on eigenpairs that are recomputed with autograd on when a higher
derivative is asked for (``create_graph=True``), so training on forces differentiates it again
(check: ``gradgradcheck`` away from degeneracy).

Examples
--------
>>> import torch
>>> F = torch.diag(torch.tensor([-1.0, -1.0, 0.5], dtype=torch.float64)).requires_grad_()
>>> S = torch.eye(3, dtype=torch.float64, requires_grad=True)
>>> P = closed_shell_density(F, S, n_occ=2)      # two exactly degenerate occupied orbitals
>>> (P * torch.eye(3, dtype=torch.float64)).sum().backward()
>>> bool(torch.isfinite(F.grad).all())
True
"""

from __future__ import annotations

import torch


def generalized_eigh(F: torch.Tensor, S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve ``F C = S C eps`` for symmetric F and positive-definite S (batched).

    Returns ascending ``eps`` (..., n) and S-orthonormal ``C`` (..., n, n), via the Cholesky
    factor ``S = L L^T``: ``L^-1 F L^-T`` is diagonalised, ``C = L^-T C'``.
    """
    L, F_orth = _cholesky_orthogonalized(F, S)
    eps, C_orth = torch.linalg.eigh(F_orth)
    C = torch.linalg.solve_triangular(L.transpose(-1, -2), C_orth, upper=True)
    return eps, C


def _cholesky_orthogonalized(F: torch.Tensor, S: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L, sym(L^-1 F L^-T))`` with ``S = L L^T``."""
    L = torch.linalg.cholesky(S)
    Linv_F = torch.linalg.solve_triangular(L, F, upper=False)
    F_orth = torch.linalg.solve_triangular(L, Linv_F.transpose(-1, -2), upper=False)
    return L, 0.5 * (F_orth + F_orth.transpose(-1, -2))


def orbital_energies(F: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """Ascending eigenvalues of ``F C = S C eps`` (Hartree), differentiable.

    Only the eigenvalues are returned, so the backward (``dE/dF = C diag(g) C^T``) needs no
    eigenvalue gaps and stays finite at degeneracies.
    """
    return torch.linalg.eigvalsh(_cholesky_orthogonalized(F, S)[1])


def _sym(M: torch.Tensor) -> torch.Tensor:
    return 0.5 * (M + M.transpose(-1, -2))


def density_backward(G, eps, C, n_occ: int):
    """``(dE/dF, dE/dS)`` for the cotangent ``G = dE/dP`` (see the module docstring)."""
    G = _sym(G)
    Co, Cv = C[..., :n_occ], C[..., n_occ:]
    eo, ev = eps[..., :n_occ], eps[..., n_occ:]
    A = Cv.transpose(-1, -2) @ G @ Co
    B = Co.transpose(-1, -2) @ G @ Co
    Y = 4 * A / (eo[..., None, :] - ev[..., :, None])
    dF = _sym(Cv @ Y @ Co.transpose(-1, -2))
    dS = _sym(-Cv @ (Y * eo[..., None, :]) @ Co.transpose(-1, -2) - 2 * Co @ B @ Co.transpose(-1, -2))
    return dF, dS


def eigenvalue_backward(g, eps, C):
    """``(dL/dF, dL/dS)`` for the cotangent ``g = dL/d eps`` of the orbital energies.

    ``d eps_k = c_k^T dF c_k - eps_k c_k^T dS c_k`` for S-normalised ``c_k``: no eigenvalue
    differences appear, so degenerate orbitals are safe.
    """
    dF = (C * g[..., None, :]) @ C.transpose(-1, -2)
    dS = -(C * (g * eps)[..., None, :]) @ C.transpose(-1, -2)
    return dF, dS


class _ClosedShellOrbitals(torch.autograd.Function):
    """``(P, eps, C)`` from one diagonalization; P and eps carry gradients, C does not."""

    @staticmethod
    def forward(ctx, F, S, n_occ: int):
        eps, C = generalized_eigh(F, S)
        Co = C[..., :n_occ]
        ctx.n_occ = n_occ
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(F, S, eps, C)
        ctx.mark_non_differentiable(C)
        return 2 * Co @ Co.transpose(-1, -2), eps, C

    @staticmethod
    def backward(ctx, gP, g_eps, _gC):
        F, S, eps, C = ctx.saved_tensors
        if torch.is_grad_enabled():
            # create_graph: recompute the eigenpairs as live functions of F and S, so that the
            # second derivative also follows their dependence on F and S
            eps, C = generalized_eigh(F, S)
        dF = dS = None
        for part in (density_backward(gP, eps, C, ctx.n_occ) if gP is not None else None, eigenvalue_backward(g_eps, eps, C) if g_eps is not None else None):
            if part is not None:
                dF = part[0] if dF is None else dF + part[0]
                dS = part[1] if dS is None else dS + part[1]
        return dF, dS, None


def closed_shell_orbitals(F: torch.Tensor, S: torch.Tensor, n_occ: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(P, eps, C)`` of ``F C = S C eps`` from one diagonalization, degeneracy-safe.

    ``P = 2 C_o C_o^T`` (the closed-shell density matrix) and the ascending orbital energies
    ``eps`` (Hartree) are differentiable with respect to F and S (see the module docstring);
    the S-orthonormal coefficients ``C`` are returned as values only.

    Parameters
    ----------
    F : (..., n, n) tensor
        Symmetric Fock/KS matrix, Hartree.
    S : (..., n, n) tensor
        Overlap matrix.
    n_occ : int
        Number of doubly occupied orbitals.
    """
    if not 0 < n_occ < F.shape[-1]:
        raise ValueError(f"n_occ must be between 1 and n_ao - 1 = {F.shape[-1] - 1}, got {n_occ}")
    return _ClosedShellOrbitals.apply(F, S, int(n_occ))


def closed_shell_density(F: torch.Tensor, S: torch.Tensor, n_occ: int) -> torch.Tensor:
    """Closed-shell density matrix ``P = 2 C_o C_o^T`` of ``F C = S C eps``, degeneracy-safe
    (the first item of :func:`closed_shell_orbitals`)."""
    return closed_shell_orbitals(F, S, n_occ)[0]
