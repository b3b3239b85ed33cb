"""Tensor products of equivariant features, as a few dense and two sparse operations.

The messages and pair features couple features ``x`` (``mul x 0e + ... + mul x l1max e``)
with the spherical harmonics ``Y`` of an edge (one channel, ``0e + ... + l2max e``), or with
other features channel by channel, over every path ``l1 x l2 -> L <= lmax``, with one weight
per path, channel and row (e3nn's ``"uvu"`` and ``"uuu"``):

    out[u, (L, M)] = sum_paths  w[p, u] * c_p * sum_{m1, m2} C(l1 m1, l2 m2 | L M) x[u, (l1, m1)] y[(l2, m2)]

with ``C`` e3nn's ``wigner_3j`` and ``c_p`` e3nn's path normalization (same numbers, weight
layout and files as e3nn's ``o3.TensorProduct``; checked to 1e-12 in float64). e3nn evaluates
this path by path, 65 einsums for ``lmax = 4``, forward and backward. Here the components go
first and the rows (channel, pair) last: one gather puts each input in that layout, one
broadcast multiplication forms the outer products, and :class:`.path_sum.PathSum` contracts them
with the sparse Clebsch-Gordan coefficients and sums the weighted paths (two sparse products),
whatever the number of paths. One gather puts the result back in e3nn's layout.

Examples
--------
>>> import torch
>>> from ase_phisnet.equivariant.irreps import so3_irreps
>>> tp = HarmonicTensorProduct(so3_irreps(4, 2), so3_irreps(1, 2), lmax=2)
>>> x, sh = torch.randn(5, so3_irreps(4, 2).dim), torch.randn(5, 9)
>>> tp(x, sh, torch.randn(5, tp.weight_numel)).shape
torch.Size([5, 36])
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from .contraction import use_compiled_contraction
from .e3nn_state import E3nnStateOnLoad
from .irreps import so3_irreps
from .path_sum import PathSum


def _e3nn_reference(irreps_1: o3.Irreps, irreps_2: o3.Irreps, lmax: int, mode: str, shared_weights: bool) -> o3.TensorProduct:
    """e3nn's tensor product over every path ``l1 x l2 -> L <= lmax`` into ``mul x 0e + ... + mul x lmax e``:
    built once to read its paths, their normalization and its initial weights. Its compiled forward
    is never called, so e3nn's einsum optimization (most of its construction time) is skipped."""
    irreps_out = o3.Irreps([(irreps_1[0].mul, (L, 1)) for L in range(lmax + 1)])
    instructions = [(i1, i2, ir3.l, mode, True) for i1, (_, ir1) in enumerate(irreps_1) for i2, (_, ir2) in enumerate(irreps_2) for ir3 in ir1 * ir2 if ir3.l <= lmax]
    return o3.TensorProduct(irreps_1, irreps_2, irreps_out, instructions, shared_weights=shared_weights, internal_weights=shared_weights, _optimize_einsums=False)


def _component_major(irreps: o3.Irreps) -> torch.Tensor:
    """Position in e3nn's layout (irrep blocks of ``mul x (2l+1)``) of each (component, channel),
    components ``sum_l (2l+1)`` first: ``x.index_select(1, this)`` is ``(rows, components, mul)``."""
    mul = irreps[0].mul
    index, start = [], 0
    for _, ir in irreps:
        block = torch.arange(mul * ir.dim).view(mul, ir.dim) + start
        index.append(block.T.reshape(-1))
        start += mul * ir.dim
    return torch.cat(index)


class _PathProduct(E3nnStateOnLoad):
    """What both products share: the paths (:class:`.path_sum.PathSum`) and the gathers between
    e3nn's layout and the (component, channel, row) one."""

    def _set_paths(self, reference: o3.TensorProduct) -> None:
        self.irreps_out, self.n_paths, self.weight_numel = reference.irreps_out, len(reference.instructions), reference.weight_numel
        self.dim_out = self.irreps_out.dim  # plain ints for forward (no e3nn objects on the hot path)
        paths = [(ins.i_in1, ins.i_in2, ins.i_out, ins.path_weight) for ins in reference.instructions]
        self.paths = PathSum(self.irreps_in1, self.irreps_in2, self.irreps_out, paths)
        self.register_buffer("gather_1", _component_major(self.irreps_in1), persistent=False)
        self.register_buffer("order_out", torch.argsort(_component_major(self.irreps_out)), persistent=False)

    def _path_weights(self, weight: torch.Tensor, n: int) -> torch.Tensor:
        """Weights in e3nn's layout, ``(n, weight_numel)`` or, shared, ``(weight_numel,)``, as
        ``(n_paths, 1 or n, mul)``."""
        return weight.view(self.n_paths, 1, self.mul) if weight.dim() == 1 else weight.view(n, self.n_paths, self.mul).transpose(0, 1)

    def _sum(self, outer: torch.Tensor, weight: torch.Tensor, n: int) -> torch.Tensor:
        """``(n, irreps_out.dim)`` from the outer products ``(dim_1 dim_2, n mul)`` and the weights."""
        return self._layout_out(self.paths(outer, self._path_weights(weight, n)), n)

    def _contract(self, a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor, n: int) -> torch.Tensor:
        """``(n, irreps_out.dim)`` from ``a (dim_1, n, mul)`` and ``b (dim_2, n, mul)`` (either may
        be broadcast) by the compiled contraction, without the outer products."""
        w = self._path_weights(weight, n).expand(self.n_paths, n, self.mul)
        rows = n * self.mul
        operands = [t.expand(-1, n, self.mul).reshape(t.shape[0], rows) for t in (a, b, w)]
        return self._layout_out(self.paths.contract(*operands), n)

    def _layout_out(self, out: torch.Tensor, n: int) -> torch.Tensor:
        """``(components, n mul)`` -> ``(n, irreps_out.dim)`` in e3nn's layout."""
        return out.view(self.paths.dim_out, n, self.mul).transpose(0, 1).reshape(n, self.dim_out).index_select(1, self.order_out)

    def _components(self, x: torch.Tensor, gather: torch.Tensor) -> torch.Tensor:
        """``(n, irreps.dim)`` in e3nn's layout -> ``(components, n, mul)``, contiguous."""
        return x.index_select(1, gather).view(x.shape[0], len(gather) // self.mul, self.mul).transpose(0, 1).contiguous()


class HarmonicTensorProduct(_PathProduct):
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
    """

    def __init__(self, irreps_1: o3.Irreps, irreps_2: o3.Irreps, lmax: int):
        super().__init__()
        mul = irreps_1[0].mul
        if any(m != mul for m, _ in irreps_1) or any(m != 1 for m, _ in irreps_2):
            raise ValueError(f"needs one multiplicity on every order of {irreps_1} and one channel per order of {irreps_2}")
        self.mul = mul
        self.irreps_in1, self.irreps_in2 = o3.Irreps(irreps_1), o3.Irreps(irreps_2)
        self._set_paths(_e3nn_reference(self.irreps_in1, self.irreps_in2, lmax, "uvu", shared_weights=False))

    def forward(self, x: torch.Tensor, sh: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``(n, irreps_out.dim)`` from features ``(n, irreps_in1.dim)``, harmonics
        ``(n, irreps_in2.dim)`` and weights ``(n, weight_numel)``."""
        n = x.shape[0]
        a = self._components(x, self.gather_1)  # (dim_1, n, mul)
        if use_compiled_contraction(a):
            return self._contract(a, sh.T[:, :, None], weight, n)
        outer = a[:, None] * sh.T.contiguous()[None, :, :, None]  # (dim_1, dim_2, n, mul): the harmonics have one channel
        return self._sum(outer.reshape(self.paths.dim_1 * self.paths.dim_2, self.mul * n), weight, n)

    @staticmethod
    def _is_e3nn_state(name: str) -> bool:
        # e3nn's Wigner-3j buffers, output mask, and empty weight placeholder
        return name in ("output_mask", "weight") or name.startswith("_compiled_main_")


class ChannelwiseTensorProduct(_PathProduct):
    """Weighted ``"uuu"`` tensor product of two feature sets, channel by channel, every path ``l1 x l2 -> L <= lmax``.

    ``out[u, (L, M)] = sum_paths w[p, u] c_p sum C(l1 m1, l2 m2 | L M) x1[u, (l1, m1)] x2[u, (l2, m2)]``.
    Products with equal tables (a model's pair and one-centre products, in every head) can run
    as one evaluation over all their rows (:meth:`evaluate_together`): for a small molecule the
    number of operations, which sets the time, is then that of one product.

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
        self.weight = nn.Parameter(reference.weight.detach().clone()) if shared_weights else None
        # products with equal keys have equal tables
        self.table_key = (str(self.irreps_in1), str(self.irreps_in2), lmax, tuple(ins.path_weight for ins in reference.instructions))
        self._set_paths(reference)
        self.register_buffer("gather_2", _component_major(self.irreps_in2), persistent=False)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``(n, irreps_out.dim)`` from ``(n, irreps_in1.dim)``, ``(n, irreps_in2.dim)`` and, without
        shared weights, per-row weights ``(n, weight_numel)``."""
        n = x1.shape[0]
        a, b = self._components(x1, self.gather_1), self._components(x2, self.gather_2)
        if use_compiled_contraction(a):
            return self._contract(a, b, self.weight if weight is None else weight, n)
        outer = a.view(self.paths.dim_1, 1, -1) * b.view(1, self.paths.dim_2, -1)  # (dim_1, dim_2, n mul)
        return self._sum(outer.reshape(self.paths.dim_1 * self.paths.dim_2, self.mul * n), self.weight if weight is None else weight, n)

    @staticmethod
    def evaluate_together(calls, max_rows: int = 2048) -> list[torch.Tensor]:
        """Outputs of several products with equal tables, evaluated together where they are small.

        For a small molecule a product's time is its number of operations, the same for 10 rows
        as for 100: calls are merged (inputs concatenated, one evaluation, outputs split) up to
        ``max_rows`` rows times channels. Larger ones run alone, since merged intermediates
        (the outer products, ``rows x channels x dim_1 x dim_2``: about 10 MB at the limit for
        ``l <= 4``, float64) would outgrow the caches and the products would get slower, not
        faster. (The limit was set for the dense products before :mod:`.path_sum`; it was not
        measured again for the sparse ones.)

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


def tensor_product(irreps_1: o3.Irreps, irreps_2: o3.Irreps, lmax: int, mode: str, shared_weights: bool):
    """A weighted tensor product over every allowed path ``l1 x l2 -> L <= lmax``.

    ``mode`` is e3nn's connection mode: ``"uvu"`` (channel-wise with a second input of any
    multiplicity, e.g. spherical harmonics) or ``"uuu"`` (element-wise over matching channels).
    All paths into the same order ``L`` are summed, each with its own weights, into one block
    of ``mul_1`` channels: the output irreps are ``mul_1 x 0e + ... + mul_1 x Le``. (Separate
    outputs per path would multiply the feature size by the number of paths.) The products
    are :class:`HarmonicTensorProduct` (``"uvu"``, per-row weights) and
    :class:`ChannelwiseTensorProduct` (``"uuu"``): e3nn's numbers in far
    fewer operations.
    Returns the tensor product and its output irreps.
    """
    mul = irreps_1[0].mul
    if any(m != mul for m, _ in irreps_1):
        raise ValueError(f"tensor_product needs one multiplicity for all of {irreps_1}")
    irreps_out = so3_irreps(mul, lmax)
    if mode == "uvu" and not shared_weights:
        return HarmonicTensorProduct(irreps_1, irreps_2, lmax), irreps_out
    if mode == "uuu":
        return ChannelwiseTensorProduct(irreps_1, irreps_2, lmax, shared_weights), irreps_out
    raise ValueError(f"tensor products are 'uvu' with per-row weights or 'uuu'; got mode {mode!r}, shared_weights={shared_weights}")
