"""PhiSNet: equivariant atom features -> pair features -> AO matrices.

Examples
--------
>>> import numpy as np, torch
>>> from ase_phisnet.model import PhiSNet, PhiSNetConfig
>>> model = PhiSNet(PhiSNetConfig.from_preset("small", elements=[1, 8]))
>>> out = model.predict([8, 1, 1], [[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]])
>>> out["fock"].shape
(24, 24)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..basis import AOBasis, default_dtype
from ..equivariant.harmonics import spherical_harmonics
from ..equivariant.irreps import so3_irreps
from ..equivariant.tensor_product import ChannelwiseTensorProduct
from ..units import BOHR
from .blocks import MatrixHead
from .config import PhiSNetConfig
from .graph import MolecularGraph, build_graph
from .interaction import Interaction
from .radial import ExpBernsteinBasis
from .readout import AtomicEnergyCorrection


class PhiSNet(nn.Module):
    """The PhiSNet Hamiltonian model.

    Parameters
    ----------
    config : PhiSNetConfig
        Architecture; the basis and elements fix the shape of every matrix head.

    Notes
    -----
    ``forward`` takes a :class:`MolecularGraph` (positions in Bohr) and returns a dict of
    zero-padded ``(B, n, n)`` matrices in irreps order, Hartree, one per head; a model with
    ``energy_correction`` adds ``"energy_correction"``, ``(B,)`` Hartree, the learned term of
    each molecule's energy (:mod:`.readout`). :meth:`predict` is the
    convenience path for one molecule in Å, returning NumPy matrices in PySCF order.
    """

    def __init__(self, config: PhiSNetConfig):
        super().__init__()
        self.config = config
        self.basis = AOBasis(config.basis, config.elements)
        # 2 x the highest shell l (an l_i x l_j block needs L up to l_i + l_j); at least 1
        self.lmax = config.lmax if config.lmax is not None else max(2 * self.basis.lmax, 1)
        self.irreps = so3_irreps(config.features, self.lmax)
        self.irreps_sh = so3_irreps(1, self.lmax)
        self.dim_features = self.irreps.dim  # a plain int for forward (tracers such as torch.compile cannot guard on Irreps)
        table = torch.full((119,), -1, dtype=torch.long)
        table[torch.tensor(self.basis.elements)] = torch.arange(len(self.basis.elements))
        self.register_buffer("element_index", table, persistent=False)
        self.embedding = nn.Embedding(len(self.basis.elements), config.features)
        self.radial_basis = ExpBernsteinBasis(config.num_radial, config.cutoff)
        self.interactions = nn.ModuleList(
            Interaction(self.irreps, self.irreps_sh, config.num_radial, config.radial_hidden, self.lmax, config.avg_neighbors)
            for _ in range(config.num_interactions)
        )
        self.heads = nn.ModuleDict(
            {name: MatrixHead(self.basis, self.irreps, self.irreps_sh, config.num_radial, config.radial_hidden, self.lmax) for name in config.heads}
        )
        self.energy_correction = AtomicEnergyCorrection(config.features, self.lmax) if config.energy_correction else None

    @property
    def elements(self) -> tuple[int, ...]:
        return self.basis.elements

    def atom_features(self, graph: MolecularGraph):
        """Equivariant atom features and the per-pair geometry (harmonics, radial basis), which every module shares."""
        vectors = graph.positions[graph.dst] - graph.positions[graph.src]  # r_ij = r_j - r_i
        distances = vectors.norm(dim=-1)
        sh = spherical_harmonics(vectors, self.lmax)
        rbf = self.radial_basis(distances)
        scalars = self.embedding(self.element_index[graph.numbers])
        x = torch.zeros(len(graph.numbers), self.dim_features, dtype=scalars.dtype, device=scalars.device)
        x = torch.cat([scalars, x[:, scalars.shape[1] :]], dim=1)
        for interaction in self.interactions:
            x = interaction(x, sh, rbf, receiver=graph.src, sender=graph.dst)
        return x, sh, rbf

    def forward(self, graph: MolecularGraph) -> dict[str, torch.Tensor]:
        x, sh, rbf = self.atom_features(graph)
        # the channel-wise products of all heads in one evaluation (same numbers, far fewer operations)
        prepared = {name: head.channelwise_calls(graph, x, rbf) for name, head in self.heads.items()}
        products = iter(ChannelwiseTensorProduct.evaluate_together([call for calls, _ in prepared.values() for call in calls]))
        out = {
            name: head.assemble(graph, x, sh, radial, [next(products) for _ in calls])
            for (name, head), (calls, radial) in zip(self.heads.items(), prepared.values())
        }
        if self.energy_correction is not None:
            per_atom = self.energy_correction(x)
            out["energy_correction"] = torch.zeros(graph.num_molecules, dtype=per_atom.dtype, device=per_atom.device).index_add(0, graph.batch, per_atom)
        return out

    def atomic_energy(self, numbers) -> float:
        """``sum_A e_{Z_A}`` (Hartree) of the configuration's ``atomic_energies`` (0 without)."""
        table = self.config.atomic_energies or {}
        return float(sum(table.get(int(z), 0.0) for z in numbers))

    def graph(self, numbers_list, positions_bohr_list) -> MolecularGraph:
        """Batch molecules (positions in Bohr) for :meth:`forward`, on the model's device and dtype."""
        param = next(self.parameters())
        positions = [torch.as_tensor(p, dtype=param.dtype, device=param.device) for p in positions_bohr_list]
        return build_graph(self.basis, numbers_list, positions, self.config.cutoff).to(param.device)

    @torch.no_grad()
    def predict(self, numbers, positions) -> dict[str, np.ndarray]:
        """Matrices of one molecule, positions in Å; NumPy, PySCF AO order, Hartree."""
        numbers = self.basis.check_numbers(numbers)
        positions = np.asarray(positions, dtype=float) / BOHR
        out = self(self.graph([numbers], [positions]))
        return {k: self.basis.to_pyscf_order(v[0].cpu().numpy().astype(np.float64), numbers) for k, v in out.items() if k in self.heads}


def build_model(config: PhiSNetConfig, dtype=torch.float64, device="cpu") -> PhiSNet:
    """Construct a model whose every constant is exact in ``dtype``.

    e3nn bakes Clebsch-Gordan coefficients into its compiled tensor products in the default
    dtype at construction time; a model built in float32 and cast with ``.double()`` keeps their
    float32 rounding (equivariance then holds only to ~1e-8). Build under the target dtype.
    """
    with default_dtype(dtype):
        return PhiSNet(config).to(device=device, dtype=dtype)
