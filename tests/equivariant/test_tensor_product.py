"""HarmonicTensorProduct: e3nn's "uvu" tensor product in a few dense operations (float64:
the autouse fixture in tests/conftest.py)."""

import pytest
import torch
from e3nn import o3

from ase_phisnet import load_model
from ase_phisnet.equivariant.irreps import so3_irreps
from ase_phisnet.equivariant.tensor_product import HarmonicTensorProduct


def test_second_derivatives_of_both_products():
    """Force training differentiates the products twice: the sparse path sums' backward is a
    sparse product again (gradgradcheck in float64)."""
    from ase_phisnet.equivariant.tensor_product import ChannelwiseTensorProduct

    torch.manual_seed(2)
    irreps = so3_irreps(2, 2)
    harmonic, channelwise = HarmonicTensorProduct(irreps, so3_irreps(1, 2), 2), ChannelwiseTensorProduct(irreps, irreps, 2, False)
    x, y = torch.randn(3, irreps.dim, requires_grad=True), torch.randn(3, irreps.dim, requires_grad=True)
    sh = torch.randn(3, 9, requires_grad=True)
    w = torch.randn(3, harmonic.weight_numel, requires_grad=True)
    assert torch.autograd.gradgradcheck(harmonic, (x, sh, w))
    assert torch.autograd.gradgradcheck(channelwise, (x, y, torch.randn(3, channelwise.weight_numel, requires_grad=True)))


def test_path_sum_keeps_only_the_clebsch_gordan_non_zeros():
    """For l <= 4 the 65 paths have 2,052 non-zero coefficients of 13,075 dense Wigner-3j entries:
    the sparse contraction does the work of those."""
    tp = HarmonicTensorProduct(so3_irreps(1, 4), so3_irreps(1, 4), 4)
    assert tp.n_paths == 65 and tp.paths.K_values.numel() == 2052
    dense = sum((2 * l1 + 1) * (2 * l2 + 1) * (2 * L + 1) for l1 in range(5) for l2 in range(5) for L in range(abs(l1 - l2), min(l1 + l2, 4) + 1))
    assert dense == 13075 and tp.paths.n_rows == 375  # one row per (path, M)


def test_equivariant_under_rotation():
    irreps = so3_irreps(3, 4)
    tp = HarmonicTensorProduct(irreps, so3_irreps(1, 4), 4)
    R = o3.rand_matrix(dtype=torch.float64)
    x = torch.randn(4, irreps.dim, dtype=torch.float64)
    vec = torch.randn(4, 3, dtype=torch.float64)
    w = torch.randn(4, tp.weight_numel, dtype=torch.float64)
    sh = lambda v: o3.spherical_harmonics(list(range(5)), v, normalize=True)  # noqa: E731
    D_in, D_out = irreps.D_from_matrix(R), tp.irreps_out.D_from_matrix(R)
    assert torch.allclose(tp(x @ D_in.T, sh(vec @ R.T), w), tp(x, sh(vec), w) @ D_out.T, atol=1e-11)


def test_models_saved_with_e3nn_products_load_and_drop_their_constants():
    """The shipped model was written while these products and the linears were e3nn's (their
    Wigner-3j buffers, output masks, empty weights and biases are in the file); it loads, and
    the replacements keep only their weights."""
    from ase_phisnet.equivariant.e3nn_state import E3nnStateOnLoad

    model = load_model("water-pbe-def2svp")
    assert isinstance(model.interactions[0].tp, HarmonicTensorProduct)
    replaced = [name for name, m in model.named_modules() if isinstance(m, E3nnStateOnLoad)]
    assert len(replaced) > 20
    for name in replaced:
        keys = [k[len(name) + 1 :] for k in model.state_dict() if k.startswith(name + ".")]
        assert keys in ([], ["weight"]), (name, keys)
    with pytest.raises(ValueError, match="one channel"):
        HarmonicTensorProduct(so3_irreps(2, 2), so3_irreps(2, 2), 2)




@pytest.mark.parametrize("max_rows", [2048, 4])
def test_channelwise_products_evaluated_together_match_one_by_one(max_rows):
    """Several products with equal tables (per-row and shared weights, as a model's heads have)
    give, merged into one evaluation or run alone past ``max_rows``, each one's own numbers and
    gradients."""
    from ase_phisnet.equivariant.tensor_product import ChannelwiseTensorProduct

    torch.manual_seed(3)
    irreps = so3_irreps(2, 4)
    per_row, shared = ChannelwiseTensorProduct(irreps, irreps, 4, False), ChannelwiseTensorProduct(irreps, irreps, 4, True)
    rows = [5, 2, 3]
    inputs = [[torch.randn(n, irreps.dim, requires_grad=True) for _ in range(2)] for n in rows]
    weights = [torch.randn(rows[0], per_row.weight_numel, requires_grad=True), None, torch.randn(rows[2], per_row.weight_numel, requires_grad=True)]
    calls = [(per_row, *inputs[0], weights[0]), (shared, *inputs[1], None), (per_row, *inputs[2], weights[2])]
    together = ChannelwiseTensorProduct.evaluate_together(calls, max_rows=max_rows)
    alone = [tp(x1, x2, *(() if w is None else (w,))) for tp, x1, x2, w in calls]
    leaves = [t for pair in inputs for t in pair] + [weights[0], weights[2], shared.weight]
    cot = [torch.randn_like(a) for a in alone]
    g_together = torch.autograd.grad(sum((t * c).sum() for t, c in zip(together, cot)), leaves)
    g_alone = torch.autograd.grad(sum((a * c).sum() for a, c in zip(alone, cot)), leaves)
    for t, a in zip(together + list(g_together), alone + list(g_alone)):
        assert torch.allclose(t, a, rtol=0, atol=1e-13 * float(a.abs().max()))
    with pytest.raises(ValueError, match="equal irreps"):
        ChannelwiseTensorProduct.evaluate_together([calls[0], (ChannelwiseTensorProduct(irreps, irreps, 3, True), *inputs[1], None)])


def test_products_that_have_run_deep_copy_and_change_dtype():
    """The CSR matrices are a cache of plain buffers: a product deep-copies after a forward
    (they cannot be copied themselves) and follows the module to float32."""
    import copy

    torch.manual_seed(4)
    tp = HarmonicTensorProduct(so3_irreps(3, 2), so3_irreps(1, 2), 2)
    x, sh, w = torch.randn(4, so3_irreps(3, 2).dim), torch.randn(4, 9), torch.randn(4, tp.weight_numel)
    before = tp(x, sh, w)
    assert torch.equal(copy.deepcopy(tp)(x, sh, w), before)
    single = tp.float()(x.float(), sh.float(), w.float())
    assert single.dtype == torch.float32 and torch.allclose(single.double(), before, atol=1e-5)
