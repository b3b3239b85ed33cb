"""Matrix heads: AO matrices assembled block by block from the Clebsch-Gordan expansion.

The block of a matrix between a shell ``a`` (angular momentum ``l_a``) of atom ``i`` and a shell
``b`` (``l_b``) of atom ``j`` transforms as ``l_a x l_b``. It is built as

    M_ab[m, n] = sum_{L=|l_a-l_b|}^{l_a+l_b}  sum_M  C(l_a, m; l_b, n | L, M) f^{(a,b,L)}_M

from one irrep ``f^{(a,b,L)}`` of order ``L`` per path, which an element-pair specific linear
layer makes from equivariant pair features (``i != j``) or atom features (``i = j``). The whole
matrix is then symmetrized, ``H = M + M^T``. Per element, a fixed reference diagonal block
(rotation-invariant: a constant on each ``l_a = l_b`` shell pair, fitted to the training data)
is added, so that the network learns deviations of order 0.1 Eh, not core levels of -20 Eh.
All matrices are in irreps order (see :mod:`ase_phisnet.basis`).
"""

from __future__ import annotations

import math

import torch
from e3nn import o3
from torch import nn

from ..basis import AOBasis
from ..equivariant.linear import EquivariantLinear
from ..equivariant.tensor_product import ChannelwiseTensorProduct, tensor_product
from .graph import MolecularGraph
from .radial import RadialMLP


def block_irreps_and_expansion(shells_i, shells_j) -> tuple[o3.Irreps, torch.Tensor]:
    """Irreps of the CG expansion of an ``(atom i, atom j)`` block and the expansion tensor.

    Returns
    -------
    irreps : o3.Irreps
        One ``1 x L`` entry per path ``(a, b, L)``.
    expansion : (irreps.dim, n_i, n_j) tensor
        ``block = einsum('k,kmn->mn', f, expansion)``. Paths are scaled so that unit-variance
        ``f`` gives unit-variance block entries.
    """
    n_i = sum(2 * l + 1 for l in shells_i)
    n_j = sum(2 * l + 1 for l in shells_j)
    irreps, pieces = [], []
    row = 0
    for la in shells_i:
        col = 0
        for lb in shells_j:
            Ls = range(abs(la - lb), la + lb + 1)
            for L in Ls:
                cg = o3.wigner_3j(la, lb, L, dtype=torch.float64)  # (2la+1, 2lb+1, 2L+1)
                scale = math.sqrt((2 * la + 1) * (2 * lb + 1) / ((2 * L + 1) * len(Ls)))
                piece = torch.zeros(2 * L + 1, n_i, n_j, dtype=torch.float64)
                piece[:, row : row + 2 * la + 1, col : col + 2 * lb + 1] = scale * cg.permute(2, 0, 1)
                pieces.append(piece)
                irreps.append((1, (L, 1)))
            col += 2 * lb + 1
        row += 2 * la + 1
    return o3.Irreps(irreps), torch.cat(pieces, dim=0)


def pair_key(zi: int, zj: int | None = None) -> str:
    return f"{zi}" if zj is None else f"{zi}-{zj}"


class MatrixHead(nn.Module):
    """One AO matrix (Fock/KS F~, overlap S~ or effective core Hamiltonian H~core).

    Parameters
    ----------
    basis : AOBasis
        Shells of every element.
    irreps : o3.Irreps
        Irreps of the atom features.
    irreps_sh : o3.Irreps
        Irreps of the pair spherical harmonics.
    num_radial, radial_hidden : int
        Radial basis size and MLP width.
    lmax : int
        Highest order of the pair features (2 x the basis' highest l).
    """

    def __init__(self, basis: AOBasis, irreps, irreps_sh, num_radial: int, radial_hidden: int, lmax: int):
        super().__init__()
        self.basis = basis
        # pair features: x_i (x) x_j element-wise, and x_i + x_j against the pair direction
        self.pair_a, self.pair_b, self.pair_c = (EquivariantLinear(irreps, irreps) for _ in range(3))
        self.pair_tp, irreps_pp = tensor_product(irreps, irreps, lmax, "uuu", shared_weights=False)
        self.pair_sh_tp, irreps_ps = tensor_product(irreps, irreps_sh, lmax, "uvu", shared_weights=False)
        self.pair_radial = RadialMLP(num_radial, radial_hidden, self.pair_tp.weight_numel + self.pair_sh_tp.weight_numel)
        irreps_pair = irreps_pp + irreps_ps
        # diagonal (one-centre) features: x_i (x) x_i and x_i itself
        self.diag_a, self.diag_b = EquivariantLinear(irreps, irreps), EquivariantLinear(irreps, irreps)
        self.diag_tp, irreps_dd = tensor_product(irreps, irreps, lmax, "uuu", shared_weights=True)
        irreps_diag = irreps_dd + irreps

        self.off_linear, self.diag_linear = nn.ModuleDict(), nn.ModuleDict()
        for zi in basis.elements:
            irr, expansion = block_irreps_and_expansion(basis.shell_ls[zi], basis.shell_ls[zi])
            self.diag_linear[pair_key(zi)] = EquivariantLinear(irreps_diag, irr)
            self.register_buffer(f"expansion_{pair_key(zi)}", expansion.to(torch.get_default_dtype()))
            n = basis.n_ao_element(zi)
            self.register_buffer(f"reference_{zi}", torch.zeros(n, n))
            for zj in basis.elements:
                irr, expansion = block_irreps_and_expansion(basis.shell_ls[zi], basis.shell_ls[zj])
                self.off_linear[pair_key(zi, zj)] = EquivariantLinear(irreps_pair, irr)
                self.register_buffer(f"expansion_{pair_key(zi, zj)}", expansion.to(torch.get_default_dtype()))

    def set_reference(self, Z: int, block: torch.Tensor) -> None:
        """Set element ``Z``'s reference diagonal block (irreps order, Hartree)."""
        ref = getattr(self, f"reference_{Z}")
        ref.copy_(torch.as_tensor(block, dtype=ref.dtype))

    def forward(self, graph: MolecularGraph, x, sh, rbf) -> torch.Tensor:
        """The symmetric matrix of every molecule, ``(B, n, n)``, zero-padded, irreps order."""
        calls, radial = self.channelwise_calls(graph, x, rbf)
        return self.assemble(graph, x, sh, radial, ChannelwiseTensorProduct.evaluate_together(calls))

    def channelwise_calls(self, graph: MolecularGraph, x, rbf):
        """The head's two channel-wise products, ``x_i (x) x_j`` per pair and ``x_i (x) x_i`` per
        atom, as calls for :meth:`.ChannelwiseTensorProduct.evaluate_together` (a model runs
        those of all its heads in one evaluation), and the per-pair radial weights."""
        radial = self.pair_radial(rbf)
        pair = (self.pair_tp, self.pair_a(x)[graph.src], self.pair_b(x)[graph.dst], radial[:, : self.pair_tp.weight_numel])
        return [pair, (self.diag_tp, self.diag_a(x), self.diag_b(x), None)], radial

    def assemble(self, graph: MolecularGraph, x, sh, radial, products) -> torch.Tensor:
        """The matrix from the outputs of :meth:`channelwise_calls` (``[pair, one-centre]``)."""
        B, n = graph.num_molecules, graph.max_ao
        c = self.pair_c(x)
        f_pair = torch.cat([products[0], self.pair_sh_tp(c[graph.src] + c[graph.dst], sh, radial[:, self.pair_tp.weight_numel :])], dim=-1)
        f_diag = torch.cat([products[1], x], dim=-1)

        values, indices = [], []
        for block in graph.block_layout(self.basis):
            if block.one_centre:
                ref = getattr(self, f"reference_{block.zi}")
                f = self.diag_linear[pair_key(block.zi)](f_diag[block.rows])
                values.append(torch.einsum("pk,kmn->pmn", f, getattr(self, f"expansion_{pair_key(block.zi)}")) + 0.5 * ref)
            else:
                f = self.off_linear[pair_key(block.zi, block.zj)](f_pair[block.rows])
                values.append(torch.einsum("pk,kmn->pmn", f, getattr(self, f"expansion_{pair_key(block.zi, block.zj)}")))
            indices.append(block.index)
        flat = torch.cat([v.reshape(-1) for v in values])
        index = torch.cat([k.reshape(-1) for k in indices])
        M = torch.zeros(B * n * n, dtype=flat.dtype, device=flat.device).index_put((index,), flat).view(B, n, n)
        return M + M.transpose(-1, -2)
