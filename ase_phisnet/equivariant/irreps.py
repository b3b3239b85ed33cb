"""Irreps of the model: every order carries the parity label ``e``.

The model is SE(3)-equivariant (rotations and translations, as PhiSNet): with every irrep
even, all Clebsch-Gordan paths ``l1 x l2 -> L`` with ``|l1 - l2| <= L <= l1 + l2`` are
allowed, as an orbital block ``l_i x l_j`` needs them.

Examples
--------
>>> str(so3_irreps(2, 2))
'2x0e+2x1e+2x2e'
"""

from __future__ import annotations

from e3nn import o3


def so3_irreps(mul: int, lmax: int) -> o3.Irreps:
    """``mul x 0e + mul x 1e + ... + mul x lmax e``."""
    return o3.Irreps([(mul, (l, 1)) for l in range(lmax + 1)])
