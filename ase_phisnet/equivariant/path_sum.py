"""Weighted sums over Clebsch-Gordan paths, as two sparse matrix products.

Both tensor products of the model (:mod:`.tensor_product`) compute, for every row ``r`` (one
channel of one pair or atom),

    out[(L, M), r] = sum_{paths p -> L}  w[p, r]  sum_{m1, m2}  c_p C(l1 m1, l2 m2 | L M) a[(l1, m1), r] b[(l2, m2), r]

with ``a`` and ``b`` vectors of ``sum_l (2l+1)`` components (25 for ``l <= 4``), ``C`` e3nn's
``wigner_3j`` and ``c_p`` e3nn's path normalization. With the rows last, every step runs over
long contiguous rows:

1. the outer product ``O[(c1, c2), r] = a[c1, r] b[c2, r]``, one broadcast multiplication (by
   the caller, which knows whether ``b`` has channels);
2. ``z = K O``, where ``K`` holds every path's coefficients, one row per ``(path, M)``. It is
   sparse (2,052 non-zeros of 234,375 entries for ``l <= 4``) and applied as a CSR matrix, so
   the work is that of the non-zero coefficients, not of dense Wigner-3j blocks;
3. ``out = S (w * z)``: each path's weight spread over its ``2L + 1`` rows, then ``S`` (0/1,
   sparse) sums the paths of every output component.

The backward of a product with a constant sparse matrix is the product with its transpose
(:class:`ConstantSparseMatmul`), itself differentiable: training on forces differentiates twice.

On the CPU the same sum runs as one compiled contraction of ``a``, ``b`` and the weights
(:meth:`PathSum.contract`, :mod:`.contraction`), without the outer products; the two agree to
rounding (``tests/equivariant/test_contraction.py``).

Examples
--------
>>> import torch
>>> from e3nn import o3
>>> paths = PathSum(o3.Irreps("0e+1e"), o3.Irreps("0e+1e"), o3.Irreps("0e+1e"), [(1, 1, 0, 1.0), (0, 1, 1, 1.0)])
>>> a, b = torch.randn(4, 5), torch.randn(4, 5)
>>> paths((a[:, None] * b[None]).reshape(16, 5), torch.ones(2, 5, 1)).shape
torch.Size([4, 5])
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from e3nn import o3
from torch import nn

from .contraction import TrilinearTable, trilinear


class ConstantSparseMatmul(torch.autograd.Function):
    """``M @ dense`` for a constant sparse ``M``; the backward is ``M^T @ grad``, by this function
    again, so it can be differentiated any number of times."""

    @staticmethod
    def forward(ctx, dense: torch.Tensor, M: torch.Tensor, MT: torch.Tensor) -> torch.Tensor:
        ctx.M, ctx.MT = M, MT
        return M @ dense.contiguous()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ConstantSparseMatmul.apply(grad, ctx.MT, ctx.M), None, None


@contextlib.contextmanager
def _quiet_csr():
    """PyTorch warns that its CSR support is beta; the products used here are stable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _csr_parts(dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with _quiet_csr():
        csr = dense.to_sparse_csr()
    return csr.crow_indices(), csr.col_indices(), csr.values()


class PathSum(nn.Module):
    """Weighted sum over Clebsch-Gordan paths between component vectors (see module docstring).

    Parameters
    ----------
    irreps_1, irreps_2, irreps_out : o3.Irreps
        Orders of ``a``, ``b`` and the output, one component block per entry (channels do not
        count: the rows carry them).
    paths : list of (i_1, i_2, i_out, path_weight)
        The paths, in the order of the weights, as e3nn's instructions give them.

    Attributes
    ----------
    row_path : (rows,) long tensor
        Path of each row ``(path, M)`` of ``z``.
    """

    def __init__(self, irreps_1, irreps_2, irreps_out, paths):
        super().__init__()
        irreps_1, irreps_2, irreps_out = o3.Irreps(irreps_1), o3.Irreps(irreps_2), o3.Irreps(irreps_out)
        self.dim_1, self.dim_2, self.dim_out = (sum(ir.dim for _, ir in irreps) for irreps in (irreps_1, irreps_2, irreps_out))
        off_1, off_2, off_out = ([0] + torch.cumsum(torch.tensor([ir.dim for _, ir in irreps]), 0).tolist() for irreps in (irreps_1, irreps_2, irreps_out))
        coefficients, summation, row_path = [], [], []
        for p, (i1, i2, i_out, path_weight) in enumerate(paths):
            l1, l2, L = irreps_1[i1].ir.l, irreps_2[i2].ir.l, irreps_out[i_out].ir.l
            block = torch.zeros(2 * L + 1, self.dim_1, self.dim_2, dtype=torch.float64)
            block[:, off_1[i1] : off_1[i1] + 2 * l1 + 1, off_2[i2] : off_2[i2] + 2 * l2 + 1] = path_weight * o3.wigner_3j(l1, l2, L, dtype=torch.float64).permute(2, 0, 1)
            coefficients.append(block.reshape(2 * L + 1, -1))
            into = torch.zeros(2 * L + 1, self.dim_out, dtype=torch.float64)
            into[torch.arange(2 * L + 1), off_out[i_out] + torch.arange(2 * L + 1)] = 1.0
            summation.append(into)
            row_path += [p] * (2 * L + 1)
        K = torch.cat(coefficients)
        K = torch.where(K.abs() > 1e-14, K, torch.zeros_like(K))  # Wigner-3j's rounding-level zeros
        S = torch.cat(summation).T
        self.n_rows = K.shape[0]
        dtype = torch.get_default_dtype()
        for name, matrix in (("K", K), ("KT", K.T), ("S", S), ("ST", S.T)):
            crow, col, values = _csr_parts(matrix.contiguous())
            self.register_buffer(f"{name}_crow", crow, persistent=False)
            self.register_buffer(f"{name}_col", col, persistent=False)
            self.register_buffer(f"{name}_values", values.to(dtype), persistent=False)
        self.register_buffer("row_path", torch.tensor(row_path, dtype=torch.long), persistent=False)
        self._sparse: dict = {}
        # the same coefficients as entries (output component, c1, c2, path) of one contraction
        row, col = K.nonzero(as_tuple=True)
        row_out = S.argmax(0)  # output component of each row (path, M)
        self.table = TrilinearTable(row_out[row], col // self.dim_2, col % self.dim_2, self.row_path[row], K[row, col], (self.dim_out, self.dim_1, self.dim_2, len(paths)))

    def __getstate__(self):
        # the CSR matrices are a cache of the buffers (and cannot be pickled or deep-copied)
        return {**super().__getstate__(), "_sparse": {}}

    def _matrix(self, name: str, shape) -> torch.Tensor:
        """The CSR matrix ``name``, rebuilt only when its buffers move (device or dtype)."""
        values = getattr(self, f"{name}_values")
        key = (name, values.data_ptr(), values.dtype, values.device)
        if key not in self._sparse:
            with _quiet_csr():
                matrix = torch.sparse_csr_tensor(getattr(self, f"{name}_crow"), getattr(self, f"{name}_col"), values, shape)
            self._sparse = {k: v for k, v in self._sparse.items() if k[0] != name}
            self._sparse[key] = matrix
        return self._sparse[key]

    def forward(self, outer: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``(dim_out, R)`` from the outer products ``(dim_1 * dim_2, R)`` and the path weights
        ``(n_paths, A, C)`` (rows ``R = A x C``, ``C`` the fastest; ``A`` may be 1: one weight
        for every block of ``C`` rows)."""
        K = self._matrix("K", (self.n_rows, self.dim_1 * self.dim_2))
        KT = self._matrix("KT", (self.dim_1 * self.dim_2, self.n_rows))
        S, ST = self._matrix("S", (self.dim_out, self.n_rows)), self._matrix("ST", (self.n_rows, self.dim_out))
        z = ConstantSparseMatmul.apply(outer, K, KT)
        weighted = z.view(self.n_rows, -1, weight.shape[2]) * weight.index_select(0, self.row_path)
        return ConstantSparseMatmul.apply(weighted.view(self.n_rows, -1), S, ST)

    def contract(self, a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``(dim_out, R)``, as :meth:`forward`, from ``a (dim_1, R)``, ``b (dim_2, R)`` and the
        path weights ``(n_paths, R)``, by the compiled contraction (CPU, float32 or float64)."""
        return trilinear(self.table, a, b, weight)
