"""Tensor product of atom features with spherical harmonics, as a few dense operations.

The messages and pair features couple features ``x`` (``mul x 0e + ... + mul x l1max e``)
with the spherical harmonics ``Y`` of an edge (one channel, ``0e + ... + l2max e``) over every
path ``l1 x l2 -> L <= lmax``, with one weight per path, channel and edge (e3nn's ``"uvu"``):

    out[u, (L, M)] = sum_paths  w[p, u] * c_p * sum_{m1, m2} C(l1 m1, l2 m2 | L M) x[u, (l1, m1)] Y[(l2, m2)]

with ``C`` e3nn's ``wigner_3j`` and ``c_p`` e3nn's path normalization. e3nn's
``o3.TensorProduct`` evaluates this path by path: 65 einsums for ``lmax = 4``, each a few
microseconds of dispatch for the handful of edges of one molecule, forward and backward.
:class:`HarmonicTensorProduct` gives the same numbers (same weights, same layout; checked
against e3nn to 1e-12 in float64) from two gathers and one small matrix product per output
order: each path and input component ``(p, m1)`` is a row ``r`` of a coefficient table
``T[(l2, m2), r, (L, M)]``, and the rows are grouped by the order ``L`` of their path, so the
table of order ``L`` has only its ``2L+1`` columns. ``Y`` is contracted with the tables for all
edges at once (:meth:`HarmonicTensorProduct.couple`: it has one channel); the weighted
features are then contracted with the result, one batched product per order.

The coupled harmonics depend only on the edges and the orders, not on the weights: every
product of a model with the same orders can share them (:class:`HarmonicCoupling`), so a
model computes them once per geometry instead of once per module.

The channel-wise product of two feature sets (``"uuu"``, :class:`ChannelwiseTensorProduct`)
cannot use one table (the second input has ``mul`` channels too, so a dense table would cost
``2l+1`` times the sparse Wigner-3j arithmetic); it groups the paths by ``(l1, l2)`` instead.

Examples
--------
>>> import torch
>>> from ase_phisnet.model.irreps import so3_irreps
>>> tp = HarmonicTensorProduct(so3_irreps(4, 2), so3_irreps(1, 2), lmax=2)
>>> x, sh = torch.randn(5, so3_irreps(4, 2).dim), torch.randn(5, 9)
>>> tp(x, sh, torch.randn(5, tp.weight_numel)).shape
torch.Size([5, 36])
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from .e3nn_state import E3nnStateOnLoad


def _e3nn_reference(irreps_1: o3.Irreps, irreps_2: o3.Irreps, lmax: int, mode: str, shared_weights: bool) -> o3.TensorProduct:
    """e3nn's tensor product over every path ``l1 x l2 -> L <= lmax`` into ``mul x 0e + ... + mul x lmax e``:
    built once to read its paths, their normalization and its initial weights."""
    irreps_out = o3.Irreps([(irreps_1[0].mul, (L, 1)) for L in range(lmax + 1)])
    instructions = [(i1, i2, ir3.l, mode, True) for i1, (_, ir1) in enumerate(irreps_1) for i2, (_, ir2) in enumerate(irreps_2) for ir3 in ir1 * ir2 if ir3.l <= lmax]
    return o3.TensorProduct(irreps_1, irreps_2, irreps_out, instructions, shared_weights=shared_weights, internal_weights=shared_weights)


def _component_offsets(irreps: o3.Irreps) -> list[int]:
    """Start of each order's components within one channel (``sum_l (2l+1)`` in all), and the end."""
    return torch.cumsum(torch.tensor([0] + [ir.dim for _, ir in irreps]), 0).tolist()


def _channel_major(irreps: o3.Irreps) -> torch.Tensor:
    """Index that reorders e3nn's layout (irrep blocks of ``mul x (2l+1)``) to ``(mul, sum_l (2l+1))``."""
    mul = irreps[0].mul
    width = sum(ir.dim for _, ir in irreps)
    index = torch.empty(mul * width, dtype=torch.long)
    start, col = 0, 0
    for _, ir in irreps:
        block = torch.arange(mul * ir.dim).view(mul, ir.dim) + start
        for u in range(mul):
            index[u * width + col : u * width + col + ir.dim] = block[u]
        start += mul * ir.dim
        col += ir.dim
    return index


class HarmonicTensorProduct(E3nnStateOnLoad):
    """Weighted ``"uvu"`` tensor product of features with spherical harmonics, every path ``l1 x l2 -> L <= lmax``.

    Parameters
    ----------
    irreps_1 : o3.Irreps
        Features, ``mul x 0e + ... + mul x l1max e`` (one multiplicity for every order).
    irreps_2 : o3.Irreps
        Spherical harmonics, ``1 x 0e + ... + 1 x l2max e``.
    lmax : int
        Highest output order; the output irreps are ``mul x 0e + ... + mul x lmax e``.

    Attributes
    ----------
    weight_numel : int
        Number of weights per row, ``n_paths * mul``, in e3nn's order (path-major).
    irreps_out : o3.Irreps
    coupling_key : tuple
        Products with equal keys have equal coefficient tables (:meth:`couple`).
    """

    def __init__(self, irreps_1: o3.Irreps, irreps_2: o3.Irreps, lmax: int):
        super().__init__()
        mul = irreps_1[0].mul
        if any(m != mul for m, _ in irreps_1) or any(m != 1 for m, _ in irreps_2):
            raise ValueError(f"needs one multiplicity on every order of {irreps_1} and one channel per order of {irreps_2}")
        self.mul = mul
        self.irreps_in1, self.irreps_in2 = o3.Irreps(irreps_1), o3.Irreps(irreps_2)
        reference = _e3nn_reference(self.irreps_in1, self.irreps_in2, lmax, "uvu", shared_weights=False)
        self.irreps_out, self.n_paths, self.weight_numel = reference.irreps_out, len(reference.instructions), reference.weight_numel
        # plain ints for forward (no e3nn objects on the hot path; tracers such as torch.compile cannot guard on Irreps)
        self.dim_out, self.out_dims = self.irreps_out.dim, tuple(ir.dim for _, ir in self.irreps_out)
        # the tables depend on the orders and e3nn's path weights, not on the channel count
        self.coupling_key = (tuple(ir.l for _, ir in self.irreps_in1), tuple(ir.l for _, ir in self.irreps_in2), lmax, tuple(ins.path_weight for ins in reference.instructions))

        off1, off2 = _component_offsets(self.irreps_in1), _component_offsets(self.irreps_in2)
        # rows r = (path, m1), grouped by the path's output order L:
        # table_L[(l2, m2), r, M] = c_p C(l1 m1, l2 m2 | L M)
        rows_in, rows_path, self.row_ranges = [], [], []
        for i_out, (_, ir_out) in enumerate(self.irreps_out):
            blocks = []
            for p, ins in enumerate(reference.instructions):
                if ins.i_out != i_out:
                    continue
                l1, l2 = self.irreps_in1[ins.i_in1].ir.l, self.irreps_in2[ins.i_in2].ir.l
                w3j = ins.path_weight * o3.wigner_3j(l1, l2, ir_out.l, dtype=torch.float64)
                for m1 in range(2 * l1 + 1):
                    block = torch.zeros(self.irreps_in2.dim, ir_out.dim, dtype=torch.float64)
                    block[off2[ins.i_in2] : off2[ins.i_in2] + 2 * l2 + 1] = w3j[m1]
                    blocks.append(block)
                    rows_in.append(off1[ins.i_in1] + m1)
                    rows_path.append(p)
            start = self.row_ranges[-1][1] if self.row_ranges else 0
            self.row_ranges.append((start, start + len(blocks)))
            # Y (n, dim_2) @ table_L (dim_2, rows_L * (2L+1)) contracts the harmonics with the rows of order L
            table = torch.stack(blocks, dim=1).reshape(self.irreps_in2.dim, -1) if blocks else torch.zeros(self.irreps_in2.dim, 0, dtype=torch.float64)
            self.register_buffer(f"table_{i_out}", table.to(torch.get_default_dtype()), persistent=False)
        # features in e3nn's layout -> (order L, channel, row of order L), one gather
        channel_major = _channel_major(self.irreps_in1).view(mul, -1)
        rows_in, rows_path = torch.tensor(rows_in), torch.tensor(rows_path)
        gather_w = torch.arange(self.n_paths * mul).view(self.n_paths, mul)  # weights (path, channel)
        self.register_buffer("gather_1", torch.cat([channel_major[:, rows_in[r0:r1]].reshape(-1) for r0, r1 in self.row_ranges]), persistent=False)
        self.register_buffer("gather_w", torch.cat([gather_w[rows_path[r0:r1]].T.reshape(-1) for r0, r1 in self.row_ranges]), persistent=False)
        self.register_buffer("order_out", torch.argsort(_channel_major(self.irreps_out)), persistent=False)

    def couple(self, sh: torch.Tensor) -> list[torch.Tensor]:
        """Harmonics ``(n, irreps_in2.dim)`` contracted with the table of every output order:
        ``(n, rows_L, 2L+1)`` each. Depends on the edges only; see :class:`HarmonicCoupling`."""
        n = sh.shape[0]
        return [(sh @ getattr(self, f"table_{k}")).view(n, r1 - r0, dim) for k, ((r0, r1), dim) in enumerate(zip(self.row_ranges, self.out_dims))]

    def forward(self, x: torch.Tensor, sh: torch.Tensor, weight: torch.Tensor, coupled: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``(n, irreps_out.dim)`` from features ``(n, irreps_in1.dim)``, harmonics
        ``(n, irreps_in2.dim)`` and weights ``(n, weight_numel)``; ``coupled`` is
        ``couple(sh)`` where it has been computed already."""
        n = x.shape[0]
        coupled = self.couple(sh) if coupled is None else coupled
        # row r = (path, m1): x[u, (l1, m1)] * w[path, u], times the table contracted with Y
        left = (x.index_select(1, self.gather_1) * weight.index_select(1, self.gather_w)).split([self.mul * (r1 - r0) for r0, r1 in self.row_ranges], dim=1)
        out = torch.cat([torch.bmm(a.view(n, self.mul, right.shape[1]), right) for a, right in zip(left, coupled)], dim=2)
        return out.reshape(n, self.dim_out).index_select(1, self.order_out)

    @staticmethod
    def _is_e3nn_state(name: str) -> bool:
        # e3nn's Wigner-3j buffers, output mask, and empty weight placeholder
        return name in ("output_mask", "weight") or name.startswith("_compiled_main_")


class HarmonicCoupling:
    """The coupled harmonics of one set of edges, computed once and shared by every
    :class:`HarmonicTensorProduct` with the same orders.

    Examples
    --------
    >>> import torch
    >>> from ase_phisnet.model.irreps import so3_irreps
    >>> tp = HarmonicTensorProduct(so3_irreps(4, 2), so3_irreps(1, 2), lmax=2)
    >>> coupling = HarmonicCoupling(torch.randn(5, 9))
    >>> coupling(tp) is coupling(HarmonicTensorProduct(so3_irreps(8, 2), so3_irreps(1, 2), lmax=2))
    True
    """

    def __init__(self, sh: torch.Tensor):
        self.sh = sh
        self._coupled: dict[tuple, list[torch.Tensor]] = {}

    def __call__(self, tp: HarmonicTensorProduct) -> list[torch.Tensor]:
        if tp.coupling_key not in self._coupled:
            self._coupled[tp.coupling_key] = tp.couple(self.sh)
        return self._coupled[tp.coupling_key]


class ChannelwiseTensorProduct(E3nnStateOnLoad):
    """Weighted ``"uuu"`` tensor product of two feature sets, channel by channel, every path ``l1 x l2 -> L <= lmax``.

    ``out[u, (L, M)] = sum_paths w[p, u] c_p sum C(l1 m1, l2 m2 | L M) x1[u, (l1, m1)] x2[u, (l2, m2)]``.
    The paths are grouped by ``(l1, l2)``: per group one outer product and one matrix product
    with the group's Wigner-3j columns (all its ``L`` at once), then one weighting and one
    scatter into the output orders for all groups together. That is about 25 small products
    instead of e3nn's 65 einsums, with the same arithmetic as the sparse paths; same numbers
    and weight layout as e3nn (checked to 1e-12 in float64). Products with equal tables (a
    model's pair and one-centre products, in every head) can run as one evaluation over all
    their rows (:meth:`evaluate_together`): for a small molecule the number of operations,
    which sets the time, is then that of one product.

    Parameters
    ----------
    irreps_1, irreps_2 : o3.Irreps
        ``mul x 0e + ... + mul x lmax_in e``, the same multiplicity on every order of both.
    lmax : int
        Highest output order.
    shared_weights : bool
        One weight vector (parameter ``weight``) for all rows, or per-row weights in :meth:`forward`.
    """

    def __init__(self, irreps_1: o3.Irreps, irreps_2: o3.Irreps, lmax: int, shared_weights: bool):
        super().__init__()
        mul = irreps_1[0].mul
        if any(m != mul for m, _ in irreps_1) or any(m != mul for m, _ in irreps_2):
            raise ValueError(f"needs one multiplicity on every order of {irreps_1} and {irreps_2}")
        self.mul, self.shared_weights = mul, shared_weights
        self.irreps_in1, self.irreps_in2 = o3.Irreps(irreps_1), o3.Irreps(irreps_2)
        reference = _e3nn_reference(self.irreps_in1, self.irreps_in2, lmax, "uuu", shared_weights)
        self.irreps_out, self.n_paths, self.weight_numel = reference.irreps_out, len(reference.instructions), reference.weight_numel
        # plain ints for forward (no e3nn objects on the hot path; tracers such as torch.compile cannot guard on Irreps)
        self.dims_1, self.dims_2 = tuple(ir.dim for _, ir in self.irreps_in1), tuple(ir.dim for _, ir in self.irreps_in2)
        self.weight = nn.Parameter(reference.weight.detach().clone()) if shared_weights else None
        # products with equal keys have equal tables
        self.table_key = (str(self.irreps_in1), str(self.irreps_in2), lmax, tuple(ins.path_weight for ins in reference.instructions))
        off3 = _component_offsets(self.irreps_out)
        self.dim_out = off3[-1]
        # groups (l1, l2) with the columns (path, M) their paths produce
        self.groups, col_path, col_out = [], [], []
        for i1, (_, ir1) in enumerate(self.irreps_in1):
            for i2, (_, ir2) in enumerate(self.irreps_in2):
                blocks = []
                for p, ins in enumerate(reference.instructions):
                    if (ins.i_in1, ins.i_in2) != (i1, i2):
                        continue
                    L = self.irreps_out[ins.i_out].ir.l
                    w3j = ins.path_weight * o3.wigner_3j(ir1.l, ir2.l, L, dtype=torch.float64)
                    blocks.append(w3j.reshape(ir1.dim * ir2.dim, 2 * L + 1))
                    col_path += [p] * (2 * L + 1)
                    col_out += list(range(off3[ins.i_out], off3[ins.i_out] + 2 * L + 1))
                if blocks:
                    k = len(self.groups)
                    self.register_buffer(f"w3j_{k}", torch.cat(blocks, dim=1).to(torch.get_default_dtype()), persistent=False)
                    self.groups.append((i1, i2))
        self.register_buffer("col_path", torch.tensor(col_path), persistent=False)
        # (columns, dim_out) 0/1: sums each path's column into its output component
        sum_paths = torch.zeros(len(col_out), self.dim_out)
        sum_paths[torch.arange(len(col_out)), torch.tensor(col_out)] = 1.0
        self.register_buffer("sum_paths", sum_paths, persistent=False)
        self.register_buffer("order_1", _channel_major(self.irreps_in1), persistent=False)
        self.register_buffer("order_2", _channel_major(self.irreps_in2), persistent=False)
        self.register_buffer("order_out", torch.argsort(_channel_major(self.irreps_out)), persistent=False)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``(n, irreps_out.dim)`` from ``(n, irreps_in1.dim)``, ``(n, irreps_in2.dim)`` and, without
        shared weights, per-row weights ``(n, weight_numel)``."""
        n = x1.shape[0]
        a = x1.index_select(1, self.order_1).view(n * self.mul, sum(self.dims_1))
        b = x2.index_select(1, self.order_2).view(n * self.mul, sum(self.dims_2))
        # one piece per order (split, not slices: its backward is one concatenation)
        a, b = a.split(self.dims_1, dim=1), b.split(self.dims_2, dim=1)
        columns = []
        for k, (i1, i2) in enumerate(self.groups):
            outer = (a[i1][:, :, None] * b[i2][:, None, :]).flatten(1)
            columns.append(outer @ getattr(self, f"w3j_{k}"))
        z = torch.cat(columns, dim=1).view(n, self.mul, len(self.col_path))  # (n, mul, columns)
        w = (self.weight if weight is None else weight).reshape(-1, self.n_paths, self.mul)
        z = z * w.index_select(1, self.col_path).transpose(1, 2)
        return (z.reshape(n * self.mul, len(self.col_path)) @ self.sum_paths).reshape(n, self.mul * self.dim_out).index_select(1, self.order_out)

    @staticmethod
    def evaluate_together(calls, max_rows: int = 2048) -> list[torch.Tensor]:
        """Outputs of several products with equal tables, evaluated together where they are small.

        For a small molecule a product's time is its number of operations, the same for 10 rows
        as for 100: calls are merged (inputs concatenated, one evaluation, outputs split) up to
        ``max_rows`` rows times channels. Larger ones run alone, since merged intermediates
        (``rows x channels x (2 l1 + 1)(2 l2 + 1)``, about 1.3 MB at the limit, float64) would
        outgrow a core's cache and the products would get slower, not faster.

        Parameters
        ----------
        calls : list of (ChannelwiseTensorProduct, x1, x2, weight or None)
            As for :meth:`forward`; ``None`` uses that product's shared weights.
        max_rows : int
            Largest merged evaluation, in rows x channels.

        Returns
        -------
        list of tensors
            ``tp(x1, x2, weight)`` of each call, in order.
        """
        first = calls[0][0]
        if any(tp.table_key != first.table_key for tp, *_ in calls):
            raise ValueError("products evaluated together need equal irreps, orders and path weights")
        sizes = [x1.shape[0] * first.mul for _, x1, _, _ in calls]
        chunks, total = [], max_rows + 1
        for k in sorted(range(len(calls)), key=sizes.__getitem__):  # smallest first, greedily
            if total + sizes[k] > max_rows:
                chunks.append([])
                total = 0
            chunks[-1].append(k)
            total += sizes[k]
        out: list[torch.Tensor | None] = [None] * len(calls)
        for chunk in chunks:
            if len(chunk) == 1:
                out[chunk[0]] = calls[chunk[0]][0](*calls[chunk[0]][1:])
                continue
            rows = [calls[k][1].shape[0] for k in chunk]
            weights = [calls[k][0].weight.expand(n, -1) if calls[k][3] is None else calls[k][3] for n, k in zip(rows, chunk)]
            merged = first(torch.cat([calls[k][1] for k in chunk]), torch.cat([calls[k][2] for k in chunk]), torch.cat(weights))
            for k, piece in zip(chunk, merged.split(rows)):
                out[k] = piece
        return out

    def _is_e3nn_state(self, name: str) -> bool:
        # e3nn's Wigner-3j buffers, output mask and, with per-row weights, its empty weight
        return name == "output_mask" or name.startswith("_compiled_main_") or (name == "weight" and not self.shared_weights)
