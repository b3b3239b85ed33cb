"""3-D isosurfaces of molecular orbitals (marching cubes from scikit-image, drawn by matplotlib).

The positive lobe (psi = +iso) is red, the negative (psi = -iso) blue; atoms are spheres in
Jmol colours joined by bonds. Coordinates in Å, the isovalue in Bohr^-3/2.
"""

from __future__ import annotations

import numpy as np

from ..electronic.grid import orbital_on_points
from ..units import BOHR, HARTREE


def orbital_box(mol, coeff: np.ndarray, spacing: float = 0.3, margin: float = 6.0):
    """Orbital values on a box around the molecule: ``(values[nx, ny, nz], origin, spacing)`` in Bohr."""
    coords = mol.atom_coords()
    low, high = coords.min(axis=0) - margin, coords.max(axis=0) + margin
    axes = [np.arange(lo, hi + spacing, spacing) for lo, hi in zip(low, high)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    values = orbital_on_points(mol, coeff, grid).reshape([len(a) for a in axes])
    return values, low, spacing


def _draw_molecule(ax, mol) -> None:
    from ase.data import covalent_radii
    from ase.data.colors import jmol_colors

    xyz = mol.atom_coords() * BOHR
    numbers = [int(z) for z in mol.atom_charges()]
    for a in range(len(xyz)):
        for b in range(a + 1, len(xyz)):
            if np.linalg.norm(xyz[a] - xyz[b]) < 1.25 * (covalent_radii[numbers[a]] + covalent_radii[numbers[b]]):
                ax.plot(*zip(xyz[a], xyz[b]), color="0.3", lw=3)
    ax.scatter(*xyz.T, s=[250 if z > 1 else 120 for z in numbers], c=[jmol_colors[z] for z in numbers], edgecolors="k", depthshade=False)


def plot_orbital_isosurface(structures, index: int, title: str, iso: float = 0.05, spacing: float = 0.3):
    """One 3-D panel per :class:`ElectronicStructure`: the ±``iso`` surfaces of orbital ``index``.

    Orbitals after the first are sign-aligned to the first's. Returns the figure.
    """
    import matplotlib.pyplot as plt
    from skimage.measure import marching_cubes

    from .structure import aligned_sign

    first = structures[0]
    S = first.mol.intor_symmetric("int1e_ovlp")
    fig = plt.figure(figsize=(4.8 * len(structures), 4.8), constrained_layout=True)
    for k, s in enumerate(structures):
        ax = fig.add_subplot(1, len(structures), k + 1, projection="3d")
        coeff = aligned_sign(s.mo_coeff[:, index], first.mo_coeff[:, index], S)
        values, origin, h = orbital_box(s.mol, coeff, spacing)
        drawn = [s.mol.atom_coords() * BOHR]  # what the view must hold, Å
        for sign, colour in ((1, "tab:red"), (-1, "tab:blue")):
            if (sign * values).max() <= iso:
                continue  # no lobe of this sign reaches the isovalue
            verts, faces, _, _ = marching_cubes(sign * values, level=iso, spacing=(h, h, h))
            verts = (verts + origin) * BOHR
            drawn.append(verts)
            ax.plot_trisurf(verts[:, 0], verts[:, 1], faces, verts[:, 2], color=colour, alpha=0.45, linewidth=0, shade=True)
        _draw_molecule(ax, s.mol)
        ax.set_box_aspect((1, 1, 1))
        drawn = np.concatenate(drawn)
        low, high = drawn.min(axis=0), drawn.max(axis=0)
        span, centre = 0.5 * float(max(high - low)) + 0.5, 0.5 * (low + high)
        for setter, c in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), centre):
            setter(c - span, c + span)
        ax.set_xlabel("x (Å)")
        ax.set_ylabel("y (Å)")
        ax.set_zlabel("z (Å)")
        ax.set_title(f"{s.label}: ε = {s.mo_energy[index] * HARTREE:.2f} eV", fontsize=10)
    fig.suptitle(f"{title}, isosurfaces ψ = ±{iso:g} Bohr$^{{-3/2}}$ (red +, blue −)")
    return fig
