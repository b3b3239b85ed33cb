"""Equivariant linear map between irreps, one matrix product per order L.

An equivariant linear map mixes only channels of the same order ``L`` (Schur's lemma):

    y[c_out, (L, M)] = sum_{c_in of order L}  W_L[c_in, c_out] x[c_in, (L, M)]

e3nn's ``o3.Linear`` evaluates it as one einsum per (input irrep, output irrep) pair. For the
matrix heads, whose outputs are one ``1 x L`` irrep per Clebsch-Gordan path of an orbital block
(56 of them for an O-O block of def2-SVP), that is over a hundred einsums per block type.
:class:`EquivariantLinear` collects the channels of each order, builds ``W_L`` from the same
flat weight vector (e3nn's layout and ``1/sqrt(fan_in)`` path normalization, so weights and
files are interchangeable; checked against e3nn to 1e-12 in float64) and applies one
contraction per order.

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
        reference = o3.Linear(self.irreps_in, self.irreps_out)  # fixes the paths and their normalization
        self.weight_numel = reference.weight_numel
        self.weight = nn.Parameter(reference.weight.detach().clone().reshape(-1))  # e3nn's initialisation

        index_in, index_out = _component_index(self.irreps_in), _component_index(self.irreps_out)
        # channel offsets of each irrep within its order
        first = {}
        for irreps, key in ((self.irreps_in, "in"), (self.irreps_out, "out")):
            seen: dict[int, int] = {}
            for k, (mul, ir) in enumerate(irreps):
                first[key, k] = seen.get(ir.l, 0)
                seen[ir.l] = first[key, k] + mul
        self.orders = sorted(index_out)
        gather = {l: torch.full((len(index_in.get(l, [])), len(index_out[l])), self.weight_numel, dtype=torch.long) for l in self.orders}
        scale = {l: torch.zeros(g.shape, dtype=torch.float64) for l, g in gather.items()}
        offset = 0
        for ins in reference.instructions:
            l = self.irreps_in[ins.i_in].ir.l
            mul_in, mul_out = ins.path_shape
            a, b = first["in", ins.i_in], first["out", ins.i_out]
            gather[l][a : a + mul_in, b : b + mul_out] = torch.arange(offset, offset + mul_in * mul_out).view(mul_in, mul_out)
            scale[l][a : a + mul_in, b : b + mul_out] = ins.path_weight
            offset += mul_in * mul_out
        dtype = torch.get_default_dtype()
        for l in self.orders:
            self.register_buffer(f"gather_{l}", gather[l], persistent=False)
            self.register_buffer(f"scale_{l}", scale[l].to(dtype), persistent=False)
            self.register_buffer(f"inputs_{l}", index_in.get(l, torch.zeros(0, 2 * l + 1, dtype=torch.long)).reshape(-1), persistent=False)
        produced = torch.cat([index_out[l].reshape(-1) for l in self.orders])
        self.register_buffer("order_out", torch.argsort(produced), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, irreps_out.dim)`` from ``(n, irreps_in.dim)``."""
        n = x.shape[0]
        w = torch.cat([self.weight, self.weight.new_zeros(1)])  # index weight_numel: no path
        parts = []
        for l in self.orders:
            W = w[getattr(self, f"gather_{l}")] * getattr(self, f"scale_{l}")  # (c_in, c_out)
            x_l = x[:, getattr(self, f"inputs_{l}")].view(n, W.shape[0], 2 * l + 1)
            parts.append(torch.einsum("nim,io->nom", x_l, W).reshape(n, -1))
        return torch.cat(parts, dim=1)[:, self.order_out]

    @staticmethod
    def _is_e3nn_state(name: str) -> bool:
        # e3nn's empty bias and its output mask
        return name in ("bias", "output_mask")
