"""The atomic-orbital basis: shells, AO slices, orbital order and rotations.

This module owns the orbital-order convention of the package (see DESIGN.md, "Orbital order").

* **PySCF order** (everything outside the model): atom by atom, shell by shell, spherical
  functions, p shells as (px, py, pz), d shells as (dxy, dyz, dz2, dxz, dx2-y2), i.e. m = -l..l
  for l >= 2.
* **Irreps order** (inside the model): the same, except that every p shell is (py, pz, px), so
  that each shell of angular momentum l is a standard real spherical-harmonic irrep, m = -l..l.

A rotation ``R`` (3x3, acting on Cartesian positions as ``x' = R @ x``) acts on a matrix ``X`` in
the AO basis as ``X(Rx) = D X(x) D^T``, with ``D`` block-diagonal over shells. e3nn's Wigner
matrices are defined in its own Cartesian frame: its real spherical harmonics equal the standard
ones (and PySCF's) when fed vectors in (y, z, x) order. The standard-order Wigner block of a
rotation ``R`` is therefore e3nn's block of ``P R P^T``, ``P = eye(3)[[1, 2, 0]]``.

Examples
--------
>>> import numpy as np
>>> from ase_phisnet.basis import AOBasis
>>> basis = AOBasis("def2-svp", elements=[1, 8])
>>> basis.shell_ls[8]
(0, 0, 0, 1, 1, 2)
>>> basis.n_ao([8, 1, 1])
24
>>> D = basis.wigner_d(np.eye(3), [8, 1, 1])
>>> bool(np.allclose(D, np.eye(24)))
True
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import cached_property
from typing import Iterable, Sequence

import numpy as np
import torch
from ase.data import chemical_symbols
from e3nn import o3

from .errors import BasisError

#: Cartesian axis permutation from (x, y, z) to e3nn's (y, z, x) frame.
E3NN_AXES = np.array([1, 2, 0])
#: Index permutation of one p shell from PySCF's (px, py, pz) to the standard (py, pz, px).
P_SHELL_TO_IRREPS = np.array([1, 2, 0])


def element_shells(basis: str | dict, Z: int) -> tuple[int, ...]:
    """Angular momenta of the AO shells of element ``Z`` in PySCF's order.

    Each contraction of a generally contracted PySCF shell counts as one shell.

    Parameters
    ----------
    basis : str or dict
        Any basis name PySCF knows (``"def2-svp"``, ``"sto-3g"``, ...), or a PySCF basis dict.
    Z : int
        Atomic number.

    Returns
    -------
    tuple of int
        ``l`` of each shell, in the order PySCF lays out the AOs of this atom.

    Raises
    ------
    BasisError
        If PySCF does not know the basis or the basis has no functions for ``Z``.
    """
    from pyscf import gto

    Z = int(Z)
    if not 1 <= Z < len(chemical_symbols):
        raise BasisError(f"atomic number {Z} is not an element (accepted: 1..{len(chemical_symbols) - 1})")
    symbol = chemical_symbols[Z]
    try:
        mol = gto.M(atom=[[symbol, (0.0, 0.0, 0.0)]], basis=basis, spin=Z % 2, unit="Bohr", verbose=0)
    except Exception as err:  # PySCF raises several types for unknown basis names/elements
        raise BasisError(f"basis {basis!r} has no functions for element {symbol} (Z={Z}): {err}") from None
    shells: list[int] = []
    for ib in range(mol.nbas):
        shells += [int(mol.bas_angular(ib))] * int(mol.bas_nctr(ib))
    if not shells:
        raise BasisError(f"basis {basis!r} has no functions for element {symbol} (Z={Z})")
    if sum(2 * l + 1 for l in shells) != mol.nao_nr():
        raise BasisError(f"could not lay out the shells of {symbol} in basis {basis!r}")
    return tuple(shells)


class AOBasis:
    """Shell layout of an AO basis for a set of elements.

    Parameters
    ----------
    basis : str or dict
        PySCF basis name (or a PySCF basis dict); spherical functions are assumed throughout.
    elements : iterable of int
        Atomic numbers the basis must cover.

    Attributes
    ----------
    basis : str
    elements : tuple of int
        Sorted atomic numbers.
    shell_ls : dict[int, tuple[int, ...]]
        ``l`` of each shell of each element, PySCF's shell order.
    """

    def __init__(self, basis: str | dict = "def2-svp", elements: Iterable[int] = (1, 8)):
        # a PySCF basis name, or a PySCF basis dict {symbol: shells} (e.g. a generated
        # even-tempered auxiliary basis)
        self.basis = dict(basis) if isinstance(basis, dict) else str(basis)
        self.elements = tuple(sorted({int(z) for z in elements}))
        if not self.elements:
            raise BasisError("AOBasis needs at least one element")
        self.shell_ls = {Z: element_shells(self.basis, Z) for Z in self.elements}
        self._perm_cache: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}

    def __repr__(self) -> str:
        symbols = ",".join(chemical_symbols[z] for z in self.elements)
        name = self.basis if isinstance(self.basis, str) else "<basis dict>"
        return f"AOBasis({name!r}, elements=[{symbols}])"

    # ------------------------------------------------------------------ sizes and slices
    @cached_property
    def lmax(self) -> int:
        """Highest shell angular momentum over all elements."""
        return max(max(ls) for ls in self.shell_ls.values())

    def check_numbers(self, numbers: Sequence[int]) -> np.ndarray:
        """Return ``numbers`` as an int array, or raise naming the elements the basis lacks."""
        numbers = np.asarray(numbers, dtype=int).reshape(-1)
        missing = sorted(set(numbers.tolist()) - set(self.elements))
        if missing:
            have = ", ".join(chemical_symbols[z] for z in self.elements)
            lack = ", ".join(chemical_symbols[z] if 0 < z < len(chemical_symbols) else str(z) for z in missing)
            raise BasisError(f"element(s) {lack} not covered; this {self.basis} basis set-up covers {have}")
        return numbers

    def n_ao_element(self, Z: int) -> int:
        """Number of AOs of one atom of element ``Z``."""
        return sum(2 * l + 1 for l in self.shell_ls[int(Z)])

    def n_ao(self, numbers: Sequence[int]) -> int:
        """Number of AOs of a molecule."""
        return sum(self.n_ao_element(z) for z in self.check_numbers(numbers))

    def ao_slices(self, numbers: Sequence[int]) -> list[slice]:
        """AO index range of each atom of a molecule (same in both orders)."""
        out, start = [], 0
        for z in self.check_numbers(numbers):
            n = self.n_ao_element(z)
            out.append(slice(start, start + n))
            start += n
        return out

    def irreps(self, Z: int, parity: bool = True) -> o3.Irreps:
        """e3nn irreps of one atom's AO vector in irreps order, e.g. ``3x0e+2x1o+1x2e`` for O.

        Shells are listed one by one in PySCF's shell order (not simplified), so that the
        irreps line up with the AO indices. ``parity=False`` gives them as SO(3) irreps
        (``l e`` for every l: how a real spherical-harmonic shell transforms under rotations
        alone), to match features that carry no parity.
        """
        return o3.Irreps([(1, (l, (-1) ** l if parity else 1)) for l in self.shell_ls[int(Z)]])

    # ------------------------------------------------------------------ orbital order
    def element_perm(self, Z: int) -> np.ndarray:
        """Permutation taking one atom's AOs from PySCF order to irreps order."""
        perm, start = [], 0
        for l in self.shell_ls[int(Z)]:
            idx = np.arange(start, start + 2 * l + 1)
            perm.append(idx[P_SHELL_TO_IRREPS] if l == 1 else idx)
            start += 2 * l + 1
        return np.concatenate(perm)

    def perm_to_irreps(self, numbers: Sequence[int]) -> np.ndarray:
        """Index array ``p`` with ``x_irreps = x_pyscf[p]`` for AO vectors of the molecule (read-only;
        kept per molecule, since an MD run asks for the same one at every step)."""
        return self._perms(numbers)[0]

    def perm_to_pyscf(self, numbers: Sequence[int]) -> np.ndarray:
        """Inverse of :meth:`perm_to_irreps`: ``x_pyscf = x_irreps[p]`` (read-only)."""
        return self._perms(numbers)[1]

    def _perms(self, numbers: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        key = tuple(self.check_numbers(numbers).tolist())
        cache = self._perm_cache
        if key not in cache:
            perms, start = [], 0
            for z in key:
                perms.append(self.element_perm(z) + start)
                start += self.n_ao_element(z)
            to_irreps = np.concatenate(perms)
            to_pyscf = np.argsort(to_irreps)
            to_irreps.flags.writeable = to_pyscf.flags.writeable = False
            cache[key] = (to_irreps, to_pyscf)
        return cache[key]

    def to_irreps_order(self, matrix, numbers: Sequence[int]):
        """Reorder the last two (AO, AO) axes of ``matrix`` from PySCF order to irreps order.

        Works on NumPy arrays and torch tensors, with any leading batch axes.
        """
        p = self.perm_to_irreps(numbers)
        return _reorder(matrix, p)

    def to_pyscf_order(self, matrix, numbers: Sequence[int]):
        """Reorder the last two (AO, AO) axes of ``matrix`` from irreps order to PySCF order."""
        p = self.perm_to_pyscf(numbers)
        return _reorder(matrix, p)

    # ------------------------------------------------------------------ rotations
    def wigner_d(self, rotation, numbers: Sequence[int], order: str = "pyscf") -> np.ndarray:
        """Wigner-D matrix of the whole AO basis for a rotation.

        Parameters
        ----------
        rotation : (3, 3) array_like
            Orthogonal matrix acting on Cartesian positions as ``x' = R @ x`` (any units).
            Improper rotations are accepted: a shell of angular momentum l then also picks up
            the parity (-1)**l.
        numbers : sequence of int
            Atomic numbers of the molecule.
        order : {"pyscf", "irreps"}
            AO order of the returned matrix.

        Returns
        -------
        D : (nao, nao) ndarray, float64
            Orthogonal, with ``X(Rx) = D @ X(x) @ D.T`` for any one-electron AO matrix.
        """
        if order not in ("pyscf", "irreps"):
            raise ValueError(f"order must be 'pyscf' or 'irreps', got {order!r}")
        numbers = self.check_numbers(numbers)
        blocks = shell_wigner_blocks(rotation, self.lmax)
        D_atoms = []
        for z in numbers:
            D_atoms.append(_block_diag([blocks[l] for l in self.shell_ls[int(z)]]))
        D = _block_diag(D_atoms)
        if order == "pyscf":
            p = self.perm_to_pyscf(numbers)
            D = D[np.ix_(p, p)]
        return D


def shell_wigner_blocks(rotation, lmax: int) -> list[np.ndarray]:
    """Standard real-spherical-harmonic Wigner blocks ``D_l(R)`` for ``l = 0..lmax``.

    ``Y_l(R r) = D_l(R) Y_l(r)`` with ``Y_l`` the real spherical harmonics in m = -l..l order
    (p as y, z, x), as PySCF defines them.
    """
    R = np.asarray(rotation, dtype=np.float64)
    if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3), atol=1e-8):
        raise ValueError("rotation must be an orthogonal 3x3 matrix")
    R_e3nn = torch.from_numpy(R[np.ix_(E3NN_AXES, E3NN_AXES)].copy())
    with default_dtype(torch.float64):  # e3nn builds some constants in the default dtype
        return [o3.Irrep(l, (-1) ** l).D_from_matrix(R_e3nn).numpy() for l in range(lmax + 1)]


@contextmanager
def default_dtype(dtype: torch.dtype):
    """Temporarily set torch's default dtype.

    e3nn creates constants (Wigner and Clebsch-Gordan tables, compiled tensor-product
    coefficients) in the default dtype; float64 work must run under a float64 default, or it is
    exact only to float32 rounding (~1e-7).
    """
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def random_rotation(seed: int | None = None) -> np.ndarray:
    """A uniformly random proper rotation matrix (float64), reproducible by ``seed``."""
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    q = torch.randn(4, generator=gen, dtype=torch.float64)
    return o3.quaternion_to_matrix(q / q.norm()).numpy()


def _reorder(matrix, p: np.ndarray):
    if isinstance(matrix, torch.Tensor):
        idx = torch.tensor(p, device=matrix.device)
        return matrix.index_select(-2, idx).index_select(-1, idx)
    matrix = np.asarray(matrix)
    return matrix[..., p, :][..., :, p]


def _block_diag(blocks: list[np.ndarray]) -> np.ndarray:
    n = sum(b.shape[0] for b in blocks)
    out = np.zeros((n, n))
    i = 0
    for b in blocks:
        k = b.shape[0]
        out[i : i + k, i : i + k] = b
        i += k
    return out
