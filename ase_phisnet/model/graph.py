"""Batches of molecules as graphs: atoms, ordered atom pairs within the cutoff, AO offsets.

Everything here is bookkeeping without learnable parameters. Positions are in Bohr. Pairs
(``src``, ``dst``) are all ordered pairs ``i != j`` of the same molecule closer than the cutoff;
the AO layout (offset of each atom's first AO in its molecule, irreps order) is what the matrix
heads need to place the blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..basis import AOBasis


@dataclass
class MolecularGraph:
    """A batch of molecules.

    Attributes
    ----------
    numbers : (N,) long tensor
        Atomic numbers of all atoms of the batch.
    positions : (N, 3) tensor
        Cartesian positions in Bohr (may require grad, for forces).
    batch : (N,) long tensor
        Molecule index of each atom.
    src, dst : (E,) long tensors
        Ordered pairs ``i = src, j = dst``, ``i != j``, same molecule, within the cutoff.
    ao_offset : (N,) long tensor
        First AO of each atom within its molecule.
    n_ao : (B,) long tensor
        AOs per molecule; matrices are padded to ``n_ao.max()``.
    """

    numbers: torch.Tensor
    positions: torch.Tensor
    batch: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    ao_offset: torch.Tensor
    n_ao: torch.Tensor
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_molecules(self) -> int:
        return int(self.n_ao.shape[0])

    @property
    def max_ao(self) -> int:
        if "max_ao" not in self._cache:
            self._cache["max_ao"] = int(self.n_ao.max())
        return self._cache["max_ao"]

    def to(self, device=None, dtype=None) -> "MolecularGraph":
        pos = self.positions.to(device=device, dtype=dtype or self.positions.dtype)
        ints = {k: getattr(self, k).to(device) for k in ("numbers", "batch", "src", "dst", "ao_offset", "n_ao")}
        return MolecularGraph(positions=pos, **ints)

    def with_positions(self, positions: torch.Tensor) -> "MolecularGraph":
        """The same atoms and pairs at new positions (Bohr), sharing the bookkeeping (block
        layouts). Only valid while the pairs within the cutoff are unchanged: the caller checks."""
        if positions.shape != self.positions.shape:
            raise ValueError(f"positions of shape {tuple(positions.shape)} for a graph of {tuple(self.positions.shape)}")
        return MolecularGraph(self.numbers, positions, self.batch, self.src, self.dst, self.ao_offset, self.n_ao, self._cache)

    def block_layout(self, basis: AOBasis) -> list["BlockLayout"]:
        """Where every AO block of this graph goes: computed once per graph and kept.

        The matrix heads read it, so that their forward pass has no data-dependent control
        flow (``nonzero``, ``any``) and a graph reused across steps does the bookkeeping once.
        The layout depends on the basis only through its elements and their AO counts.
        """
        key = ("blocks", basis.elements, tuple(basis.n_ao_element(z) for z in basis.elements))
        if key not in self._cache:
            self._cache[key] = _block_layout(self, basis)
        return self._cache[key]


@dataclass(frozen=True)
class BlockLayout:
    """One kind of AO block: an element's one-centre blocks or an element pair's two-centre ones.

    Attributes
    ----------
    zi, zj : int
        Elements of the row and column atom (equal for one-centre blocks).
    one_centre : bool
        Diagonal blocks ``(i, i)``, one per atom of element ``zi``.
    rows : (P,) long tensor
        Atoms (one-centre) or pairs (two-centre) whose features make these blocks.
    index : (P, n_i, n_j) long tensor
        Flat position of every block entry in the ``(B, n, n)`` output.
    """

    zi: int
    zj: int
    one_centre: bool
    rows: torch.Tensor
    index: torch.Tensor


def _block_index(base, row0, col0, n_rows: int, n_cols: int, n: int) -> torch.Tensor:
    rows = row0[:, None, None] + torch.arange(n_rows, device=base.device)[None, :, None]
    cols = col0[:, None, None] + torch.arange(n_cols, device=base.device)[None, None, :]
    return base[:, None, None] + rows * n + cols


def _block_layout(graph: MolecularGraph, basis: AOBasis) -> list[BlockLayout]:
    n = graph.max_ao
    numbers, i, j = graph.numbers, graph.src, graph.dst
    atom_base = graph.batch * (n * n)
    layout = []
    for zi in basis.elements:
        on_i = numbers == zi
        if not bool(on_i.any()):
            continue
        atoms = torch.nonzero(on_i, as_tuple=True)[0]
        n_i = basis.n_ao_element(zi)
        index = _block_index(atom_base[atoms], graph.ao_offset[atoms], graph.ao_offset[atoms], n_i, n_i, n)
        layout.append(BlockLayout(zi, zi, True, atoms, index))
        for zj in basis.elements:
            sel = torch.nonzero(on_i[i] & (numbers[j] == zj), as_tuple=True)[0]
            if sel.numel() == 0:
                continue
            ii, jj = i[sel], j[sel]
            index = _block_index(atom_base[ii], graph.ao_offset[ii], graph.ao_offset[jj], n_i, basis.n_ao_element(zj), n)
            layout.append(BlockLayout(zi, zj, False, sel, index))
    return layout


def build_graph(basis: AOBasis, numbers_list, positions_list, cutoff: float) -> MolecularGraph:
    """Batch molecules into a :class:`MolecularGraph`.

    Parameters
    ----------
    basis : AOBasis
        Sets the AO layout; every element must be covered.
    numbers_list : list of (natm,) int arrays
    positions_list : list of (natm, 3) tensors or arrays, Bohr
        Tensors keep their autograd graph.
    cutoff : float
        Pair cutoff in Bohr.
    """
    numbers, positions, batch, src, dst, ao_offset, n_ao = [], [], [], [], [], [], []
    start = 0
    for b, (z, pos) in enumerate(zip(numbers_list, positions_list)):
        z = basis.check_numbers(z)
        pos = torch.as_tensor(pos) if not isinstance(pos, torch.Tensor) else pos
        natm = len(z)
        sizes = np.array([basis.n_ao_element(zz) for zz in z])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        with torch.no_grad():
            dist = torch.cdist(pos.detach(), pos.detach())
            i, j = torch.nonzero((dist < cutoff) & ~torch.eye(natm, dtype=torch.bool, device=pos.device), as_tuple=True)
        numbers.append(torch.tensor(z, dtype=torch.long))
        positions.append(pos)
        batch.append(torch.full((natm,), b, dtype=torch.long))
        src.append(i.cpu() + start)
        dst.append(j.cpu() + start)
        ao_offset.append(torch.as_tensor(offsets, dtype=torch.long))
        n_ao.append(int(sizes.sum()))
        start += natm
    return MolecularGraph(
        numbers=torch.cat(numbers),
        positions=torch.cat(positions),
        batch=torch.cat(batch),
        src=torch.cat(src),
        dst=torch.cat(dst),
        ao_offset=torch.cat(ao_offset),
        n_ao=torch.tensor(n_ao, dtype=torch.long),
    )
