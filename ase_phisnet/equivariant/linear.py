"""Equivariant linear map between irreps, one batched matrix product for all orders.

An equivariant linear map mixes only channels of the same order ``L`` (Schur's lemma):

    y[c_out, (L, M)] = sum_{c_in of order L}  W_L[c_in, c_out] x[c_in, (L, M)]

e3nn's ``o3.Linear`` evaluates it as one einsum per (input irrep, output irrep) pair. For the
matrix heads, whose outputs are one ``1 x L`` irrep per Clebsch-Gordan path of an orbital block
(56 of them for an O-O block of def2-SVP), that is over a hundred einsums per block type.
:class:`EquivariantLinear` builds every ``W_L`` from the same flat weight vector (e3nn's layout
and ``1/sqrt(fan_in)`` path normalization, so weights and files are interchangeable; checked
against e3nn to 1e-12 in float64) and stacks them, zero-padded to the largest channel counts,
into one ``(orders, c_in, c_out)`` tensor. The input is gathered into the matching padded
``(orders, rows x components, c_in)`` layout, so the whole map is one gather, one batched
matrix product and one gather back: five tensor operations whatever the irreps, where one
per order costs several each. (Padded channels meet exact zero weights; for one molecule the
number of operations, not their size, sets the time.)

Examples
--------
>>> import torch
>>> from e3nn import o3
>>> lin = EquivariantLinear(o3.Irreps("4x0e+4x1e"), o3.Irreps("1x1e+2x0e+1x1e"))
>>> lin(torch.randn(3, 16)).shape
torch.Size([3, 8])
"""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

from .e3nn_state import E3nnStateOnLoad


def _component_index(irreps: o3.Irreps) -> dict[int, torch.Tensor]:
    """For each order L: positions in e3nn's layout of all channels of order L, ``(channels, 2L+1)``."""
    out: dict[int, list] = {}
    start = 0
    for mul, ir in irreps:
        block = torch.arange(mul * ir.dim).view(mul, ir.dim) + start
        out.setdefault(ir.l, []).append(block)
        start += mul * ir.dim
    return {l: torch.cat(blocks) for l, blocks in out.items()}


def _paths(irreps_in: o3.Irreps, irreps_out: o3.Irreps) -> list[tuple[int, int, int, int, float]]:
    """The paths of e3nn's ``o3.Linear`` (its defaults): every pair of an input and an output irrep
    of the same order and parity, as ``(i_in, i_out, mul_in, mul_out, path_weight)``, with
    ``path_weight = 1/sqrt(fan_in)`` over every input channel that feeds output ``i_out``."""
    pairs = [(i, j) for i, (_, ir_in) in enumerate(irreps_in) for j, (_, ir_out) in enumerate(irreps_out) if ir_in == ir_out]
    fan_in = {j: sum(irreps_in[i].mul for i, k in pairs if k == j) for _, j in pairs}
    return [(i, j, irreps_in[i].mul, irreps_out[j].mul, (fan_in[j] or 1) ** -0.5) for i, j in pairs]


class EquivariantLinear(E3nnStateOnLoad):
    """``x -> W x`` between irreps (no biases), e3nn's ``o3.Linear`` as one product per order.

    Parameters
    ----------
    irreps_in, irreps_out : o3.Irreps
        Every path between input and output irreps of equal order is connected.

    Attributes
    ----------
    weight : (weight_numel,) parameter
        e3nn's flat weight vector: per path ``(mul_in, mul_out)``, path-major.
    """

    def __init__(self, irreps_in, irreps_out):
        super().__init__()
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        self.dim_in, self.dim_out = self.irreps_in.dim, self.irreps_out.dim  # plain ints in forward
        self._gathers: dict = {}  # row count -> flat gathers (see _row_gathers)
        paths = _paths(self.irreps_in, self.irreps_out)
        self.weight_numel = sum(mul_in * mul_out for _, _, mul_in, mul_out, _ in paths)
        # e3nn's initialisation: one standard normal draw of the flat vector (none when empty)
        self.weight = nn.Parameter(torch.randn(self.weight_numel) if self.weight_numel else torch.empty(0))

        index_in, index_out = _component_index(self.irreps_in), _component_index(self.irreps_out)
        # channel offsets of each irrep within its order
        first = {}
        for irreps, key in ((self.irreps_in, "in"), (self.irreps_out, "out")):
            seen: dict[int, int] = {}
            for k, (mul, ir) in enumerate(irreps):
                first[key, k] = seen.get(ir.l, 0)
                seen[ir.l] = first[key, k] + mul
        self.orders = sorted(index_out)
        n_orders = len(self.orders)
        c_in = max([len(index_in.get(l, [])) for l in self.orders] + [1])
        c_out = max(len(index_out[l]) for l in self.orders)
        n_comp = max(2 * l + 1 for l in self.orders)
        # weights: (order, c_in, c_out) positions in the flat weight vector, and their scales;
        # padding reads weight 0 and scales it by an exact 0
        gather_w = torch.zeros((n_orders, c_in, c_out), dtype=torch.long)
        scale = torch.zeros(n_orders, c_in, c_out, dtype=torch.float64)
        offset = 0
        for i_in, i_out, mul_in, mul_out, path_weight in paths:
            o = self.orders.index(self.irreps_in[i_in].ir.l)
            a, b = first["in", i_in], first["out", i_out]
            gather_w[o, a : a + mul_in, b : b + mul_out] = torch.arange(offset, offset + mul_in * mul_out).view(mul_in, mul_out)
            scale[o, a : a + mul_in, b : b + mul_out] = path_weight
            offset += mul_in * mul_out
        # input: (order, component, c_in) positions in x; padding reads column 0, which meets
        # zero weights (padded channels) or lands in outputs nobody reads (padded components)
        gather_x = torch.zeros((n_orders, n_comp, c_in), dtype=torch.long)
        # output: where each of e3nn's output positions sits in the flat (order, component, c_out) result
        out_position = torch.empty(self.irreps_out.dim, dtype=torch.long)
        for o, l in enumerate(self.orders):
            if l in index_in:
                gather_x[o, : 2 * l + 1, : len(index_in[l])] = index_in[l].T
            positions = index_out[l]  # (channels, 2l+1)
            channel, comp = torch.meshgrid(torch.arange(positions.shape[0]), torch.arange(2 * l + 1), indexing="ij")
            out_position[positions.reshape(-1)] = ((o * n_comp + comp) * c_out + channel).reshape(-1)
        self.shape = (n_orders, n_comp, c_in, c_out)
        self.register_buffer("gather_w", gather_w.reshape(-1), persistent=False)
        self.register_buffer("scale", scale.to(torch.get_default_dtype()), persistent=False)
        self.register_buffer("gather_x", gather_x.reshape(-1), persistent=False)
        self.register_buffer("out_position", out_position, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, irreps_out.dim)`` from ``(n, irreps_in.dim)``."""
        n = x.shape[0]
        if self.weight_numel == 0:  # no path: nothing to gather
            return x.new_zeros(n, self.dim_out)
        n_orders, n_comp, c_in, c_out = self.shape
        W = self.weight.index_select(0, self.gather_w).view(n_orders, c_in, c_out) * self.scale
        into, back = self._row_gathers(n, x.device)
        X = x.reshape(-1).index_select(0, into).view(n_orders, n * n_comp, c_in)
        return torch.bmm(X, W).view(-1).index_select(0, back).view(n, self.dim_out)

    def _row_gathers(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat positions for ``n`` rows: from ``x`` into the ``(order, row, component, c_in)``
        layout of the product, and from its ``(order, row, component, c_out)`` result back to
        e3nn's ``(row, irreps_out)``. Kept for the last few row counts (a calculator's every step,
        a training run's batches), so that the map is one gather, one product, one gather."""
        key = (n, str(device))
        if key not in self._gathers:
            n_orders, n_comp, c_in, c_out = self.shape
            rows = torch.arange(n, device=device)
            into = rows[None, :, None, None] * self.dim_in + self.gather_x.view(n_orders, 1, n_comp, c_in)
            order, rest = self.out_position // (n_comp * c_out), self.out_position % (n_comp * c_out)
            back = order[None, :] * (n * n_comp * c_out) + rows[:, None] * (n_comp * c_out) + rest[None, :]
            if len(self._gathers) >= 8:
                self._gathers.pop(next(iter(self._gathers)))
            self._gathers[key] = (into.reshape(-1), back.reshape(-1))
        return self._gathers[key]

    @staticmethod
    def _is_e3nn_state(name: str) -> bool:
        # e3nn's empty bias and its output mask
        return name in ("bias", "output_mask")
