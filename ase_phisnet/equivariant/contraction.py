"""Sparse trilinear contraction over rows, compiled, differentiable any number of times.

For constant entries ``(o, i1, i2, i3, c)``,

    out[o, r] = sum_{entries t of o}  c_t  a1[i1_t, r]  a2[i2_t, r]  a3[i3_t, r]

with every operand ``(components, R)`` and the ``R`` rows (channel x pair or atom) last. A
tensor product's weighted path sum (:mod:`.path_sum`) is this contraction of the two inputs and
the path weights, with ``c`` the Clebsch-Gordan coefficient times the path normalization. It
never forms the outer products ``a1[i, r] a2[j, r]`` (``dim_1 x dim_2 x R`` numbers) that the
sparse-matrix evaluation needs.

The gradient with respect to one operand is the same contraction with that operand's index and
the output's exchanged, ``grad_a1[i, r] = sum c g[o, r] a2[j, r] a3[k, r]``, so the backward
calls the contraction again, and a force loss (which differentiates the gradient) gets its
second derivative the same way.

The kernel is ``contraction.cpp``, built at install time; :func:`compiled_contraction_available`
says whether it loads. It runs on CPU tensors in float32 and float64.

Examples
--------
>>> import torch
>>> table = TrilinearTable(out=[0, 0, 1], i1=[0, 1, 1], i2=[0, 0, 1], i3=[0, 0, 0], coef=[1.0, 2.0, 3.0], dims=(2, 2, 2, 1))
>>> a1, a2, a3 = torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [4.0]]), torch.tensor([[0.5]])
>>> trilinear(table, a1, a2, a3).flatten().tolist()  # [(1*1*3 + 2*2*3) * 0.5, 3*2*4 * 0.5]
[7.5, 12.0]
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
from ctypes import c_int, c_int32, c_int64, c_void_p
from functools import lru_cache

import numpy as np
import torch

ABI_VERSION = 1


@lru_cache(maxsize=None)
def _library():
    """The compiled kernel, or ``None`` where it is not built (or is a stale build)."""
    spec = importlib.util.find_spec("ase_phisnet.equivariant._contraction")
    if spec is None or not spec.origin:
        return None
    try:
        lib = ctypes.CDLL(spec.origin)
    except OSError:
        return None
    lib.contraction_abi_version.restype = c_int
    if lib.contraction_abi_version() != ABI_VERSION:
        return None
    for suffix in ("f64", "f32"):
        function = getattr(lib, f"trilinear_{suffix}")
        function.argtypes = [c_int32, c_int64] + [c_void_p] * 9
        function.restype = None
    return lib


def compiled_contraction_available() -> bool:
    """Whether the compiled kernel is built and loads (``pip install -e .`` builds it with g++)."""
    return _library() is not None


_SUFFIX = {torch.float64: "f64", torch.float32: "f32"}
calls = 0  # evaluations by the compiled kernel so far: tests check that it actually ran
_enabled = True


def use_compiled_contraction(tensor: torch.Tensor) -> bool:
    """Whether the tensor products contract ``tensor`` (and its partners) with the compiled kernel:
    it is built, enabled (:func:`compiled_contraction`), and the tensor is a float32 or float64
    CPU tensor. Elsewhere (CUDA, or no compiler at install) they form the outer products and use
    sparse matrices (:meth:`.path_sum.PathSum.forward`), the reference that tests compare against."""
    return _enabled and tensor.device.type == "cpu" and tensor.dtype in _SUFFIX and compiled_contraction_available()


@contextlib.contextmanager
def compiled_contraction(enabled: bool):
    """Within this block the tensor products use the compiled contraction (``True``, the default
    where it is built) or the reference sparse-matrix evaluation (``False``)."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    try:
        yield
    finally:
        _enabled = previous


class TrilinearTable:
    """The constant entries of a trilinear contraction, grouped by output component.

    Parameters
    ----------
    out, i1, i2, i3 : sequence of int
        Per entry: the output component and the component of each operand.
    coef : sequence of float
        Per entry: the coefficient (kept in float64; cast to the operands' dtype once per dtype).
    dims : (n_out, n_1, n_2, n_3)
        Number of components of the output and of each operand.
    """

    def __init__(self, out, i1, i2, i3, coef, dims):
        index = torch.stack([torch.as_tensor(v, dtype=torch.long) for v in (out, i1, i2, i3)])
        coef = torch.as_tensor(coef, dtype=torch.float64)
        self.dims = tuple(int(d) for d in dims)
        for k, d in enumerate(self.dims):
            if index[k].numel() and (index[k].min() < 0 or index[k].max() >= d):
                raise ValueError(f"index {k} of the entries runs outside its {d} components")
        order = torch.sort(index[0], stable=True).indices  # entries in their given order within each output
        self.index, self.coef = index[:, order], coef[order]
        counts = torch.bincount(self.index[0], minlength=self.dims[0])
        self.start = np.ascontiguousarray(torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)]).numpy().astype(np.int32))
        self._int_columns = [np.ascontiguousarray(self.index[k].numpy().astype(np.int32)) for k in (1, 2, 3)]
        self._coef = {}
        self._swapped = {}

    def coefficients(self, dtype: torch.dtype) -> np.ndarray:
        if dtype not in self._coef:
            self._coef[dtype] = np.ascontiguousarray(self.coef.to(dtype).numpy())
        return self._coef[dtype]

    def swapped(self, k: int) -> TrilinearTable:
        """The table of the gradient with respect to operand ``k`` (1, 2 or 3): operand ``k``'s
        index becomes the output's, and the output's (the incoming gradient) takes its place."""
        if k not in self._swapped:
            index, dims = self.index.clone(), list(self.dims)
            index[[0, k]] = index[[k, 0]]
            dims[0], dims[k] = dims[k], dims[0]
            self._swapped[k] = TrilinearTable(*index, self.coef, dims)
        return self._swapped[k]


def _evaluate(table: TrilinearTable, a1: torch.Tensor, a2: torch.Tensor, a3: torch.Tensor) -> torch.Tensor:
    global calls
    lib = _library()
    if lib is None:
        raise RuntimeError("the compiled contraction is not built (ase_phisnet/equivariant/_contraction*.so): reinstall with a C++ compiler")
    operands = [a.contiguous() for a in (a1, a2, a3)]
    R = operands[0].shape[1]
    for k, a in enumerate(operands, 1):
        if a.dim() != 2 or a.shape != (table.dims[k], R) or a.dtype != operands[0].dtype or a.device.type != "cpu":
            raise ValueError(f"operand {k}: expected a CPU tensor ({table.dims[k]}, {R}) of {operands[0].dtype}, got {tuple(a.shape)} {a.dtype} on {a.device}")
    if a1.dtype not in _SUFFIX:
        raise ValueError(f"the compiled contraction runs in float32 or float64, not {a1.dtype}")
    out = torch.empty(table.dims[0], R, dtype=a1.dtype)
    coef = table.coefficients(a1.dtype)
    columns = table._int_columns
    getattr(lib, f"trilinear_{_SUFFIX[a1.dtype]}")(
        table.dims[0], R, table.start.ctypes.data, columns[0].ctypes.data, columns[1].ctypes.data, columns[2].ctypes.data,
        coef.ctypes.data, *(a.data_ptr() for a in operands), out.data_ptr(),
    )
    calls += 1
    return out


class _Trilinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table, a1, a2, a3):
        ctx.table = table
        ctx.save_for_backward(a1, a2, a3)
        return _evaluate(table, a1, a2, a3)

    @staticmethod
    def backward(ctx, grad):
        operands = ctx.saved_tensors
        grads = [None, None, None]
        for k in (1, 2, 3):
            if ctx.needs_input_grad[k]:
                others = list(operands)
                others[k - 1] = grad
                grads[k - 1] = _Trilinear.apply(ctx.table.swapped(k), *others)
        return (None, *grads)


def trilinear(table: TrilinearTable, a1: torch.Tensor, a2: torch.Tensor, a3: torch.Tensor) -> torch.Tensor:
    """``(n_out, R)`` contraction of ``a1 (n_1, R)``, ``a2 (n_2, R)`` and ``a3 (n_3, R)`` (CPU,
    float32 or float64, one dtype) by ``table``; differentiable with respect to every operand,
    any number of times."""
    return _Trilinear.apply(table, a1, a2, a3)
