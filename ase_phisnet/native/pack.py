"""A PhiSNet model laid out for the native engine: its weights as the C structs of ``phisnet.cpp``.

Every number is read from the torch modules as their forward uses it (linear maps already
scaled, the radial decay through its softplus, the Clebsch-Gordan coefficients with their path
weights from :class:`~ase_phisnet.equivariant.path_sum.PathSum`), so the engine computes what
the model computes. Feature rows in the engine are component-major: component ``c = l^2 + m``,
then the channels (``phisnet.cpp``, "Layouts").

The structs below mirror the C ones field by field; pointers are ``void*`` into NumPy arrays
that :class:`PackedModel` keeps alive.
"""

from __future__ import annotations

import ctypes
from ctypes import c_int32, c_void_p

import numpy as np
import torch

from ..equivariant.harmonics import _harmonic_coefficients
from ..equivariant.linear import EquivariantLinear
from ..model.blocks import block_irreps_and_expansion, pair_key
from ..model.phisnet import PhiSNet

MAX_LMAX = 8  # phisnet.cpp's MAX_HARMONICS = (MAX_LMAX + 1)^2


class NotSupported(ValueError):
    """The model has a layout the native engine does not cover (it then runs on torch)."""


def _structs(real):
    """The C structs for one scalar type (``ctypes.c_double`` or ``c_float``)."""

    class Linear(ctypes.Structure):
        _fields_ = [("n_orders", c_int32), ("order_l", c_void_p), ("c_out", c_void_p), ("c_in", c_int32), ("dim_out", c_int32), ("weight", c_void_p)]

    class Mlp(ctypes.Structure):
        _fields_ = [("n_in", c_int32), ("n_hidden", c_int32), ("n_out", c_int32), ("w1", c_void_p), ("b1", c_void_p), ("w2t", c_void_p), ("b2", c_void_p)]

    class Paths(ctypes.Structure):
        _fields_ = [("n_rows", c_int32), ("n_paths", c_int32), ("dim_2", c_int32)] + [(k, c_void_p) for k in ("row_start", "row_path", "row_out", "row_sign", "c1", "c2", "coef")]

    class BlockMap(ctypes.Structure):
        _fields_ = [("linear", Linear), ("n_rows", c_int32), ("n_cols", c_int32), ("n_entries", c_int32)] + [(k, c_void_p) for k in ("entry_block", "entry_f", "entry_coef")]

    class Interaction(ctypes.Structure):
        _fields_ = [("pre", Linear), ("post", Linear), ("out", Linear), ("radial", Mlp), ("paths", Paths), ("n_scalars", c_int32), ("n_gates", c_int32)] + [
            (k, real) for k in ("scale_scalars", "scale_gates", "inv_avg_neighbors")
        ]

    class Head(ctypes.Structure):
        _fields_ = (
            [(k, Linear) for k in ("pair_a", "pair_b", "pair_c", "diag_a", "diag_b")]
            + [("radial", Mlp), ("pair_paths", Paths), ("sh_paths", Paths), ("diag_paths", Paths)]
            + [(k, c_void_p) for k in ("diag_weight", "diag", "off", "reference")]
        )

    class Model(ctypes.Structure):
        _fields_ = (
            [(k, c_int32) for k in ("channels", "lmax", "n_radial", "n_elements", "n_interactions", "n_heads")]
            + [("embedding", c_void_p), ("alpha", real), ("cutoff", real)]
            + [(k, c_void_p) for k in ("log_binom", "sh_coef", "n_ao", "interactions", "heads", "energy_readout")]
            + [("energy_scale", real)]
        )

    class Batch(ctypes.Structure):
        _fields_ = [(k, c_int32) for k in ("n_atoms", "n_edges", "n_molecules", "n_max")] + [(k, c_void_p) for k in ("positions", "element", "molecule", "ao_offset", "src", "dst")]

    return dict(Linear=Linear, Mlp=Mlp, Paths=Paths, BlockMap=BlockMap, Interaction=Interaction, Head=Head, Model=Model, Batch=Batch)


STRUCTS = {np.float64: _structs(ctypes.c_double), np.float32: _structs(ctypes.c_float)}


class PackedModel:
    """A model's weights in the engine's layout, for one floating-point type.

    Parameters
    ----------
    model : PhiSNet
    dtype : numpy float type
        ``np.float64`` or ``np.float32``.

    Attributes
    ----------
    struct : ctypes.Structure
        The ``Model`` struct to hand to the engine.
    """

    def __init__(self, model: PhiSNet, dtype=np.float64):
        self.dtype = np.dtype(dtype).type
        if self.dtype not in STRUCTS:
            raise NotSupported(f"the native engine runs in float64 or float32, not {np.dtype(dtype)}")
        self.types = STRUCTS[self.dtype]
        self._keep: list = []  # every array and struct a pointer points into
        self.struct = self._model(model)

    # ------------------------------------------------------------------ arrays
    def _ptr(self, values, dtype=None) -> int:
        array = np.ascontiguousarray(values, dtype=dtype or self.dtype)
        self._keep.append(array)
        return array.ctypes.data

    def _ints(self, values) -> int:
        return self._ptr(np.asarray(values).reshape(-1), np.int32)

    def _array_of(self, struct_type, items) -> int:
        array = (struct_type * max(len(items), 1))(*items)
        self._keep.append(array)
        return ctypes.addressof(array)

    @staticmethod
    def _numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().double().numpy()

    # ------------------------------------------------------------------ pieces
    def _linear(self, lin: EquivariantLinear, c_in: int):
        """``lin`` as one matrix per output order; ``c_in`` channels of every input order."""
        n_orders, _, c_in_pad, c_out_pad = lin.shape
        W = self._numpy(lin.weight.index_select(0, lin.gather_w).view(n_orders, c_in_pad, c_out_pad) * lin.scale)
        counts_in = {l: sum(mul for mul, ir in lin.irreps_in if ir.l == l) for l in lin.orders}
        counts_out = [sum(mul for mul, ir in lin.irreps_out if ir.l == l) for l in lin.orders]
        if any(counts_in[l] != c_in for l in lin.orders):
            raise NotSupported(f"a linear map {lin.irreps_in} -> {lin.irreps_out} without {c_in} input channels on every order")
        weight = np.concatenate([W[o, :c_in, :k].reshape(-1) for o, k in enumerate(counts_out)])
        dim_out = sum((2 * l + 1) * k for l, k in zip(lin.orders, counts_out))
        return self.types["Linear"](len(lin.orders), self._ints(lin.orders), self._ints(counts_out), c_in, dim_out, self._ptr(weight))

    def _mlp(self, mlp, w1=None, b1=None):
        """A ``Linear, SiLU, Linear`` sequence; ``w1``, ``b1`` replace the first layer's weights."""
        first, last = mlp[0], mlp[2]
        w1 = self._numpy(first.weight) if w1 is None else w1
        b1 = self._numpy(first.bias) if b1 is None else b1
        return self.types["Mlp"](
            first.in_features, first.out_features, last.out_features,
            self._ptr(w1), self._ptr(b1), self._ptr(self._numpy(last.weight).T), self._ptr(self._numpy(last.bias)),
        )  # fmt: skip

    def _readout_mlp(self, readout):
        """The energy readout's MLP with its input normalisation folded into the first layer:
        W1 (q - mean) / std + b1 = (W1 / std) q + (b1 - (W1 / std) mean)."""
        first = readout.mlp[0]
        W1 = self._numpy(first.weight) / self._numpy(readout.std)[None, :]
        return self._mlp(readout.mlp, W1, self._numpy(first.bias) - W1 @ self._numpy(readout.mean))

    def _paths(self, paths):
        """A :class:`PathSum` as rows (path, M) of non-zero coefficients (c1, c2, coefficient)."""
        crow, col = paths.K_crow.numpy(), paths.K_col.numpy()
        if not np.array_equal(np.diff(paths.ST_crow.numpy()), np.ones(paths.n_rows, dtype=np.int64)):
            raise NotSupported("a path row that feeds more than one output component")
        c1, c2 = col // paths.dim_2, col % paths.dim_2
        # (-1)^l2 of each row: the sign of its harmonics for the reversed pair
        l2 = np.zeros(paths.n_rows, dtype=np.int64)
        filled = np.diff(crow) > 0
        l2[filled] = np.floor(np.sqrt(c2[crow[:-1][filled]] + 0.5)).astype(np.int64)
        return self.types["Paths"](
            paths.n_rows, int(paths.row_path.max()) + 1, paths.dim_2,
            self._ints(crow), self._ints(paths.row_path.numpy()), self._ints(paths.ST_col.numpy()), self._ints((-1) ** l2),
            self._ints(c1), self._ints(c2), self._ptr(self._numpy(paths.K_values)),
        )  # fmt: skip

    def _block_map(self, head, zi: int, zj: int | None, channels: int):
        """An element's one-centre blocks (``zj`` None) or an element pair's two-centre ones.
        The expansion is the head's buffer (a model file holds it), not a recomputed one."""
        key = pair_key(zi, zj)
        lin = head.diag_linear[key] if zj is None else head.off_linear[key]
        shells = self._basis.shell_ls
        irreps, _ = block_irreps_and_expansion(shells[zi], shells[zi if zj is None else zj])
        expansion = getattr(head, f"expansion_{key}").detach().cpu().double()
        linear = self._linear(lin, channels)
        orders = list(lin.orders)
        count = {l: sum(1 for _, ir in irreps if ir.l == l) for l in orders}
        start, offset = {}, 0
        for l in orders:
            start[l] = offset
            offset += (2 * l + 1) * count[l]
        # position of each row (path k, component M) of the expansion in the linear map's output
        position, seen = [], {}
        for _, ir in irreps:
            rank = seen.get(ir.l, 0)
            seen[ir.l] = rank + 1
            position += [start[ir.l] + M * count[ir.l] + rank for M in range(2 * ir.l + 1)]
        q, r, c = np.nonzero(expansion.numpy())
        n_cols = expansion.shape[2]
        return self.types["BlockMap"](
            linear, expansion.shape[1], n_cols, len(q), self._ints(r * n_cols + c), self._ints(np.asarray(position)[q]), self._ptr(expansion.numpy()[q, r, c])
        )

    def _model(self, model: PhiSNet):
        cfg, basis = model.config, model.basis
        self._basis = basis
        C, lmax = cfg.features, model.lmax
        if lmax > MAX_LMAX:
            raise NotSupported(f"irrep orders up to {lmax}; the native engine handles up to {MAX_LMAX}")
        if model.irreps.dim != C * (lmax + 1) ** 2:
            raise NotSupported(f"features {model.irreps} are not {C} channels on every order 0..{lmax}")
        T = self.types
        interactions = []
        for inter in model.interactions:
            gate = inter.gate
            if gate.n_scalars != C or gate.n_gates != C * lmax:
                raise NotSupported("a gate other than one per channel and order")
            interactions.append(
                T["Interaction"](
                    self._linear(inter.pre, C), self._linear(inter.post, C), self._linear(inter.out, C), self._mlp(inter.radial), self._paths(inter.tp.paths),
                    gate.n_scalars, gate.n_gates, gate.scale_scalars, gate.scale_gates, 1.0 / inter.avg_neighbors,
                )  # fmt: skip
            )
        heads = []
        elements = basis.elements
        for name in cfg.heads:
            head = model.heads[name]
            diag = [self._block_map(head, z, None, 2 * C) for z in elements]
            off = [self._block_map(head, zi, zj, 2 * C) for zi in elements for zj in elements]
            references = (c_void_p * len(elements))(*[self._ptr(self._numpy(getattr(head, f"reference_{z}"))) for z in elements])
            self._keep.append(references)
            heads.append(
                T["Head"](
                    *(self._linear(getattr(head, k), C) for k in ("pair_a", "pair_b", "pair_c", "diag_a", "diag_b")),
                    self._mlp(head.pair_radial), self._paths(head.pair_tp.paths), self._paths(head.pair_sh_tp.paths), self._paths(head.diag_tp.paths),
                    self._ptr(self._numpy(head.diag_tp.weight)), self._array_of(T["BlockMap"], diag), self._array_of(T["BlockMap"], off), ctypes.addressof(references),
                )  # fmt: skip
            )
        rb = model.radial_basis
        self.head_names = list(cfg.heads)
        # the outputs in the engine's order: one matrix per head, then the energy correction
        self.output_names = self.head_names + ["energy_correction"] * (model.energy_correction is not None)
        readout = None if model.energy_correction is None else self._array_of(T["Mlp"], [self._readout_mlp(model.energy_correction)])
        scale = 0.0 if model.energy_correction is None else model.energy_correction.scale
        return T["Model"](
            C, lmax, rb.num_basis, len(elements), len(interactions), len(heads),
            self._ptr(self._numpy(model.embedding.weight)), float(rb.alpha.detach()), rb.cutoff,
            self._ptr(self._numpy(rb.log_binom)), self._ptr(_harmonic_coefficients(lmax).numpy()), self._ints([basis.n_ao_element(z) for z in elements]),
            self._array_of(T["Interaction"], interactions), self._array_of(T["Head"], heads), readout, scale,
        )  # fmt: skip
