import torch

from ase_phisnet.model.radial import ExpBernsteinBasis, smooth_cutoff


def test_cutoff_is_smooth_and_exactly_zero_beyond():
    r = torch.linspace(0.5, 20.0, 400, requires_grad=True)
    f = smooth_cutoff(r, 15.0)
    (g,) = torch.autograd.grad(f.sum(), r)
    assert torch.all(f[r.detach() >= 15.0] == 0) and torch.all(g[r.detach() >= 15.0] == 0)
    assert torch.all(f[r.detach() < 14.0] > 0)
    # derivative goes to zero smoothly at the cutoff
    near = (r.detach() > 14.5) & (r.detach() < 15.0)
    assert g[near].abs().max() < 1e-3


def test_bernstein_basis_shape_positive_and_alpha_learnable():
    rbf = ExpBernsteinBasis(num_basis=12, cutoff=15.0)
    b = rbf(torch.tensor([0.8, 2.0, 5.0, 16.0]))
    assert b.shape == (4, 12)
    assert torch.all(b[:3] > 0) and torch.all(b[3] == 0)
    b.sum().backward()
    assert rbf.raw_alpha.grad is not None and rbf.raw_alpha.grad != 0
    assert abs(float(rbf.alpha) - 0.9448630629184640) < 1e-12
