"""Gated nonlinearity for equivariant features (e3nn's ``Gate``) in four tensor operations.

The scalars pass a normalized SiLU; every higher-order irrep is multiplied by its own gate, a
normalized sigmoid of one extra scalar channel:

    out = [ silu~(s),  sigmoid~(g_k) * v_k ]

``~`` marks e3nn's second-moment normalization (``act(x) * c`` with ``c`` chosen so that unit
Gaussian input keeps unit second moment); the constants are read from e3nn's own ``Gate``, so
the numbers are e3nn's. e3nn splits and multiplies irrep by irrep; :class:`GatedActivation`
slices once, spreads the gates over the components of their irreps with one gather, and
multiplies once.

Examples
--------
>>> import torch
>>> gate = GatedActivation("4x0e", "1x1e+1x2e")
>>> str(gate.irreps_in), str(gate.irreps_out)
('6x0e+1x1e+1x2e', '4x0e+1x1e+1x2e')
>>> gate(torch.randn(3, 14)).shape
torch.Size([3, 12])
"""

from __future__ import annotations

import torch
from e3nn import o3
from e3nn.nn import Gate
from torch import nn

from .e3nn_state import E3nnStateOnLoad


class GatedActivation(E3nnStateOnLoad):
    """SiLU on the scalars, sigmoid gates on the higher orders.

    Parameters
    ----------
    irreps_scalars : o3.Irreps
        Scalars passed through SiLU (``n x 0e``).
    irreps_gated : o3.Irreps
        Irreps that are gated, one gate scalar each, sorted and simplified (as
        ``so3_irreps`` gives them: e3nn's Gate would reorder any others).

    Attributes
    ----------
    irreps_in : o3.Irreps
        ``scalars + gates + gated``.
    irreps_out : o3.Irreps
        ``scalars + gated``.
    """

    def __init__(self, irreps_scalars, irreps_gated):
        super().__init__()
        irreps_scalars, irreps_gated = o3.Irreps(irreps_scalars), o3.Irreps(irreps_gated)
        if irreps_gated != irreps_gated.sort().irreps.simplify() or not irreps_gated.num_irreps:
            raise ValueError(f"gated irreps must be non-empty, sorted and simplified (e.g. 8x1e+8x2e); got {irreps_gated}")
        reference = Gate(irreps_scalars, [nn.functional.silu], f"{irreps_gated.num_irreps}x0e", [torch.sigmoid], irreps_gated)
        self.irreps_in, self.irreps_out = reference.irreps_in, reference.irreps_out
        self.scale_scalars = float(reference.act_scalars.acts[0].cst)
        self.scale_gates = float(reference.act_gates.acts[0].cst)
        self.n_scalars, self.n_gates = irreps_scalars.dim, irreps_gated.num_irreps
        # gate k of each component of the gated irreps
        spread = torch.cat([torch.full((ir.dim,), k) for k, ir in enumerate(ir for mul, ir in irreps_gated for _ in range(mul))])
        self.register_buffer("spread", spread, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, irreps_out.dim)`` from ``(n, irreps_in.dim)``."""
        scalars, gates, gated = x.split([self.n_scalars, self.n_gates, x.shape[-1] - self.n_scalars - self.n_gates], dim=-1)
        scalars = nn.functional.silu(scalars) * self.scale_scalars
        gates = torch.sigmoid(gates) * self.scale_gates
        return torch.cat([scalars, gated * gates.index_select(-1, self.spread)], dim=-1)

    @staticmethod
    def _is_e3nn_state(name: str) -> bool:
        # e3nn's element-wise product: an empty weight and its output mask
        return name.startswith("mul.")
