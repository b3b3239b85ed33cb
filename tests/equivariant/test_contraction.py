"""The compiled trilinear contraction (ase_phisnet/equivariant/contraction.cpp) and the tensor
products that use it, against the reference sparse-matrix path, in float64."""

import pytest
import torch

from ase_phisnet.equivariant import contraction
from ase_phisnet.equivariant.contraction import TrilinearTable, compiled_contraction, compiled_contraction_available, trilinear
from ase_phisnet.equivariant.irreps import so3_irreps
from ase_phisnet.equivariant.tensor_product import ChannelwiseTensorProduct, HarmonicTensorProduct


def random_table(generator, dims=(4, 5, 3, 6), n=40):
    index = [torch.randint(0, d, (n,), generator=generator) for d in dims]
    return TrilinearTable(*index, torch.randn(n, generator=generator, dtype=torch.float64), dims)


def dense_sum(table, a1, a2, a3):
    o, i1, i2, i3 = table.index
    terms = table.coef.to(a1.dtype)[:, None] * a1[i1] * a2[i2] * a3[i3]
    return torch.zeros(table.dims[0], a1.shape[1], dtype=a1.dtype).index_add_(0, o, terms)


def test_compiled_contraction_is_built():
    assert compiled_contraction_available(), "`pip install -e .` compiles ase_phisnet/equivariant/contraction.cpp (needs g++)"


@pytest.mark.parametrize("rows", [1, 3, 8, 37, 100])  # below one vector, one vector, and past a 32-row block with a tail
def test_contraction_equals_the_sum_over_entries(rows):
    g = torch.Generator().manual_seed(rows)
    table = random_table(g)
    a1, a2, a3 = (torch.randn(d, rows, generator=g, dtype=torch.float64) for d in table.dims[1:])
    calls = contraction.calls
    out = trilinear(table, a1, a2, a3)
    assert contraction.calls == calls + 1
    torch.testing.assert_close(out, dense_sum(table, a1, a2, a3), rtol=0, atol=1e-13)


def test_float32_agrees_with_float64():
    g = torch.Generator().manual_seed(3)
    table = random_table(g)
    operands = [torch.randn(d, 70, generator=g, dtype=torch.float64) for d in table.dims[1:]]
    exact = trilinear(table, *operands)
    single = trilinear(table, *(a.float() for a in operands))
    assert single.dtype == torch.float32
    assert (single.double() - exact).abs().max() < 1e-5 * exact.abs().max()


def test_first_and_second_derivatives():
    g = torch.Generator().manual_seed(4)
    table = random_table(g, dims=(3, 4, 2, 3), n=15)
    operands = tuple(torch.randn(d, 5, generator=g, dtype=torch.float64, requires_grad=True) for d in table.dims[1:])
    function = lambda *a: trilinear(table, *a)  # noqa: E731
    assert torch.autograd.gradcheck(function, operands)
    assert torch.autograd.gradgradcheck(function, operands)


def test_bad_operands_are_refused():
    table = random_table(torch.Generator().manual_seed(5))
    good = [torch.randn(d, 6, dtype=torch.float64) for d in table.dims[1:]]
    with pytest.raises(ValueError, match="operand 2"):
        trilinear(table, good[0], torch.randn(table.dims[2] + 1, 6, dtype=torch.float64), good[2])
    with pytest.raises(ValueError, match="operand 3"):
        trilinear(table, good[0], good[1], good[2].float())
    with pytest.raises(ValueError, match="float32 or float64"):
        trilinear(table, *(a.to(torch.bfloat16) for a in good))
    with pytest.raises(ValueError, match="outside"):
        TrilinearTable([0, 4], [0, 0], [0, 0], [0, 0], [1.0, 1.0], (4, 1, 1, 1))


def products():
    irreps = so3_irreps(3, 4)
    harmonic = HarmonicTensorProduct(irreps, so3_irreps(1, 4), 4)
    shared, per_row = ChannelwiseTensorProduct(irreps, irreps, 4, True), ChannelwiseTensorProduct(irreps, irreps, 4, False)
    torch.manual_seed(6)
    n = 7
    x, y, sh = (torch.randn(n, d, requires_grad=True) for d in (irreps.dim, irreps.dim, 25))
    return {
        "harmonic": (harmonic, (x, sh, torch.randn(n, harmonic.weight_numel, requires_grad=True))),
        "channelwise, shared weights": (shared, (x, y)),
        "channelwise, per-row weights": (per_row, (x, y, torch.randn(n, per_row.weight_numel, requires_grad=True))),
    }


@pytest.mark.parametrize("name", ["harmonic", "channelwise, shared weights", "channelwise, per-row weights"])
def test_products_equal_the_reference_path_to_second_derivatives(name):
    """Values, gradients and the gradients' gradients (what a force loss takes) of the products on
    the compiled contraction equal those of the outer products and sparse matrices."""
    tp, inputs = products()[name]
    leaves = [*inputs, *tp.parameters()]
    cotangent = torch.randn(inputs[0].shape[0], tp.irreps_out.dim)

    def evaluate():
        out = tp(*inputs)
        grads = torch.autograd.grad((out * cotangent).sum(), leaves, create_graph=True)
        second = torch.autograd.grad(sum((g * g).sum() for g in grads), leaves)
        return [out, *grads, *second]

    calls = contraction.calls
    fast = evaluate()
    assert contraction.calls >= calls + 1 + 3 + 3  # the forward, three gradients and more for the second derivatives ran compiled
    with compiled_contraction(False):
        calls = contraction.calls
        reference = evaluate()
        assert contraction.calls == calls
    for f, r in zip(fast, reference):
        torch.testing.assert_close(f, r, rtol=0, atol=1e-12 * max(1.0, r.abs().max().item()))
