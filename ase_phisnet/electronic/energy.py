"""Nuclear repulsion, the one energy term that needs no electrons.

The electronic part of PhiSNet's energy, E = E_nn + 1/2 tr[P (F~ + H~core)], is assembled by the
electronic-state step (:mod:`.state`).
"""

from __future__ import annotations

import torch


def nuclear_repulsion(numbers: torch.Tensor, positions_bohr: torch.Tensor) -> torch.Tensor:
    """``sum_{A<B} Z_A Z_B / |R_A - R_B|`` in Hartree (positions in Bohr), differentiable.

    >>> round(float(nuclear_repulsion(torch.tensor([1, 1]), torch.tensor([[0.0, 0, 0], [0, 0, 1.4]], dtype=torch.float64))), 12)
    0.714285714286
    """
    Z = numbers.to(positions_bohr.dtype)
    i, j = torch.triu_indices(len(Z), len(Z), offset=1, device=positions_bohr.device)
    r = (positions_bohr[i] - positions_bohr[j]).norm(dim=-1)
    return (Z[i] * Z[j] / r).sum()
