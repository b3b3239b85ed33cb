"""Calling the compiled engine: loading the library, batches, and the autograd function.

:class:`NativePhiSNet` wraps a :class:`~ase_phisnet.model.PhiSNet`: ``native(graph)`` returns
the model's ``{head: (B, n, n)}`` matrices (irreps order, Hartree), and a backward through them
gives the gradient with respect to ``graph.positions``. The weights are packed once; the pack is
redone when any parameter has been modified in place since (an optimizer step).
"""

from __future__ import annotations

import ctypes
import importlib.util
from ctypes import c_int, c_void_p
from functools import lru_cache

import numpy as np
import torch

from ..errors import PhiSNetError
from .pack import STRUCTS, NotSupported, PackedModel

ABI_VERSION = 3
SUFFIX = {np.float64: "f64", np.float32: "f32"}


class NativeUnavailable(PhiSNetError, RuntimeError):
    """The compiled engine is not built here, or does not cover this model or device."""


@lru_cache(maxsize=None)
def _library():
    spec = importlib.util.find_spec("ase_phisnet.native._phisnet")
    if spec is None or not spec.origin:
        raise NativeUnavailable(
            "the native engine is not built (ase_phisnet/native/_phisnet*.so is missing): reinstall with a C++ compiler "
            "(`pip install -e .` runs g++), or use engine='torch'"
        )
    lib = ctypes.CDLL(spec.origin)
    lib.phisnet_abi_version.restype = c_int
    if lib.phisnet_abi_version() != ABI_VERSION:
        raise NativeUnavailable(f"the built native engine has interface {lib.phisnet_abi_version()}, this package needs {ABI_VERSION}: reinstall")
    for suffix in SUFFIX.values():
        getattr(lib, f"phisnet_engine_create_{suffix}").restype = c_void_p
        getattr(lib, f"phisnet_engine_create_{suffix}").argtypes = [c_void_p]
        getattr(lib, f"phisnet_engine_destroy_{suffix}").argtypes = [c_void_p]
        for name in ("forward", "backward"):
            getattr(lib, f"phisnet_{name}_{suffix}").argtypes = [c_void_p, c_void_p, c_void_p]
            getattr(lib, f"phisnet_{name}_{suffix}").restype = c_int
    return lib


def native_available() -> bool:
    """Whether the compiled engine is built and loads."""
    try:
        _library()
    except (NativeUnavailable, OSError):
        return False
    return True


class NativePhiSNet:
    """A PhiSNet model's forward on the native engine (CPU).

    Parameters
    ----------
    model : PhiSNet
        The model; its weights are read at construction and again whenever one changed.
    dtype : torch.dtype, optional
        Precision of the network: ``torch.float64`` or ``torch.float32``; default, the model's.
        The matrices come back in this dtype.

    Raises
    ------
    NativeUnavailable
        The library is not built, the model is not on the CPU, or its layout is not covered.
    """

    def __init__(self, model, dtype: torch.dtype | None = None):
        self.lib = _library()
        param = next(model.parameters())
        if param.device.type != "cpu":
            raise NativeUnavailable(f"the native engine runs on the CPU; the model is on {param.device}")
        self.model = model
        self.dtype = dtype or param.dtype
        if self.dtype not in (torch.float64, torch.float32):
            raise NativeUnavailable(f"the native engine runs in float64 or float32, not {self.dtype}")
        self.np_dtype = np.float64 if self.dtype == torch.float64 else np.float32
        self.suffix = SUFFIX[self.np_dtype]
        self._engine = None
        self.calls = 0  # forward calls so far: a backward checks that the engine still holds its forward
        self._pack()

    def _versions(self) -> tuple:
        return tuple(p._version for p in self.model.parameters())

    def _pack(self) -> None:
        try:
            packed = PackedModel(self.model, self.np_dtype)
        except NotSupported as error:
            raise NativeUnavailable(f"the native engine does not cover this model: {error}") from None
        self._close()
        self.packed, self.output_names = packed, packed.output_names
        self._engine = getattr(self.lib, f"phisnet_engine_create_{self.suffix}")(ctypes.addressof(packed.struct))
        if not self._engine:
            raise MemoryError("the native engine could not allocate its workspace")
        self.versions = self._versions()

    def _close(self) -> None:
        if self._engine:
            getattr(self.lib, f"phisnet_engine_destroy_{self.suffix}")(self._engine)
            self._engine = None

    def __del__(self):
        try:
            self._close()
        except Exception:  # interpreter shutdown
            pass

    def __call__(self, graph) -> dict[str, torch.Tensor]:
        """``{head: (B, n, n)}`` (and ``energy_correction``, ``(B,)``) as ``model(graph)``,
        differentiable with respect to ``graph.positions``."""
        if self._versions() != self.versions:
            self._pack()
        outputs = _NativeMatrices.apply(graph.positions, self, graph)
        return dict(zip(self.output_names, outputs))

    # ------------------------------------------------------------------ the two calls
    def _batch(self, graph, positions: np.ndarray):
        """The ``Batch`` struct of a graph: integer arrays kept in the graph's cache, which a
        calculator reuses while only the positions move."""
        key = ("native_batch", id(self.model))
        if key not in graph._cache:
            element = self.model.element_index.cpu()[graph.numbers.cpu()]
            ints = [np.ascontiguousarray(t.cpu().numpy(), dtype=np.int32) for t in (element, graph.batch, graph.ao_offset, graph.src, graph.dst)]
            graph._cache[key] = ints
        element, molecule, ao_offset, src, dst = graph._cache[key]
        struct = STRUCTS[self.np_dtype]["Batch"](
            len(element), len(src), graph.num_molecules, graph.max_ao,
            positions.ctypes.data, element.ctypes.data, molecule.ctypes.data, ao_offset.ctypes.data, src.ctypes.data, dst.ctypes.data,
        )  # fmt: skip
        return struct

    def forward_arrays(self, graph, positions: np.ndarray) -> list[np.ndarray]:
        """The outputs (NumPy, the engine's dtype) of ``graph`` at ``positions`` (Bohr), in the order
        of ``output_names``: the heads' ``(B, n, n)`` matrices, then a model's ``(B,)`` energy
        correction (Hartree)."""
        positions = np.ascontiguousarray(positions, dtype=self.np_dtype)
        batch = self._batch(graph, positions)
        n = graph.max_ao
        shapes = {"energy_correction": (graph.num_molecules,)}
        out = [np.empty(shapes.get(name, (graph.num_molecules, n, n)), dtype=self.np_dtype) for name in self.output_names]
        pointers = (c_void_p * len(out))(*[m.ctypes.data for m in out])
        status = getattr(self.lib, f"phisnet_forward_{self.suffix}")(self._engine, ctypes.addressof(batch), pointers)
        if status == 3:
            raise ValueError("the graph has a pair (i, j) without its reverse (j, i): the native engine needs every pair both ways, as build_graph makes them")
        if status == 4:
            raise NativeUnavailable("the native engine handles at most 256 channels per order")
        if status:
            raise MemoryError("the native engine ran out of memory")
        self.calls += 1
        return out

    def backward_arrays(self, matrices_bar: list[np.ndarray], n_atoms: int) -> np.ndarray:
        """``dL/dpositions`` (n_atoms, 3) from ``dL/doutputs`` of the last forward (``output_names`` order)."""
        bars = [np.ascontiguousarray(g, dtype=self.np_dtype) for g in matrices_bar]
        pointers = (c_void_p * len(bars))(*[g.ctypes.data for g in bars])
        pos_bar = np.empty((n_atoms, 3), dtype=self.np_dtype)
        status = getattr(self.lib, f"phisnet_backward_{self.suffix}")(self._engine, pointers, pos_bar.ctypes.data)
        if status:
            raise MemoryError("the native engine ran out of memory") if status == 1 else RuntimeError("native backward before a forward")
        return pos_bar


class _NativeMatrices(torch.autograd.Function):
    """positions -> the heads' matrices through the engine; the backward gives dL/dpositions,
    once: a loss on forces needs the torch model."""

    @staticmethod
    def forward(ctx, positions, native: NativePhiSNet, graph):
        pos = positions.detach().cpu().numpy()
        out = native.forward_arrays(graph, pos)
        ctx.native, ctx.graph, ctx.positions, ctx.call = native, graph, pos, native.calls
        ctx.shapes = [m.shape for m in out]
        ctx.input_dtype = positions.dtype
        return tuple(torch.from_numpy(m) for m in out)

    @staticmethod
    def backward(ctx, *grads):
        if torch.is_grad_enabled():  # create_graph=True: a derivative of the forces is coming
            raise RuntimeError(
                "the native engine cannot differentiate twice (create_graph=True): it gives forces, not their derivatives; "
                "run the torch model (engine='torch') for a loss on forces or for Hessians"
            )
        native = ctx.native
        if native.calls != ctx.call:  # the engine has run another forward since: redo this one
            native.forward_arrays(ctx.graph, ctx.positions)
        bars = [np.zeros(shape, dtype=native.np_dtype) if g is None else g.detach().cpu().numpy() for g, shape in zip(grads, ctx.shapes)]
        pos_bar = native.backward_arrays(bars, ctx.positions.shape[0])
        return torch.from_numpy(pos_bar).to(ctx.input_dtype), None, None
