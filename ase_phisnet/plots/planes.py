"""Contour maps of orbitals and electron densities in a plane through the molecule.

The plane comes from the principal axes of the atomic positions: ``"molecular"`` spans the two
largest (for a planar molecule, its own plane), ``"perpendicular"`` the second and the third
(for water, the plane through the C2 axis normal to the molecule, where the 1b1 HOMO lives).
For orbitals, ``"auto"`` picks whichever of the two shows the larger orbital amplitude: an
out-of-plane orbital vanishes in the molecular plane.
Map axes are in Å; orbital values in Bohr^-3/2, densities in e/Bohr^3.
"""

from __future__ import annotations

import numpy as np

from ..electronic.grid import density_on_points, orbital_on_points
from ..errors import InputError
from ..units import BOHR, HARTREE

PLANES = ("auto", "molecular", "perpendicular")


def plane_axes(positions: np.ndarray, plane: str = "molecular") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(origin, u, v)``: the centroid and two orthonormal in-plane directions (any length unit).

    Axes are sorted by the spread of the atoms along them, each signed so that its largest
    component is positive, so the same molecule always gives the same picture.
    """
    if plane not in PLANES[1:]:
        raise InputError(f"plane {plane!r} not known; choose one of {', '.join(PLANES[1:])}")
    positions = np.asarray(positions, dtype=float)
    origin = positions.mean(axis=0)
    centred = positions - origin
    _, vectors = np.linalg.eigh(centred.T @ centred)
    axes = vectors[:, ::-1].T.copy()  # largest spread first
    for k, axis in enumerate(axes):
        axes[k] = axis if axis[np.argmax(np.abs(axis))] > 0 else -axis
    u, v = (axes[0], axes[1]) if plane == "molecular" else (axes[1], axes[2])
    return origin, u, v


def plane_grid(positions_A: np.ndarray, plane: str = "molecular", margin: float = 2.5, points: int = 161):
    """A square-pixel grid in the plane around the atoms.

    Returns ``(x, y, xyz_bohr, atoms_2d)``: the in-plane coordinates (Å, 1-D each), the grid
    points in space (Bohr, shape (len(y) * len(x), 3), row-major over y then x) and the atoms
    projected onto the plane (Å).
    """
    origin, u, v = plane_axes(positions_A, plane)
    atoms_2d = np.stack([(positions_A - origin) @ u, (positions_A - origin) @ v], axis=1)
    low, high = atoms_2d.min(axis=0) - margin, atoms_2d.max(axis=0) + margin
    half = 0.5 * max(high - low)
    centre = 0.5 * (low + high)
    x = np.linspace(centre[0] - half, centre[0] + half, points)
    y = np.linspace(centre[1] - half, centre[1] + half, points)
    X, Y = np.meshgrid(x, y)
    xyz = origin + X.reshape(-1, 1) * u + Y.reshape(-1, 1) * v
    return x, y, xyz / BOHR, atoms_2d


def _draw_atoms(ax, atoms_2d, symbols) -> None:
    for (px, py), s in zip(atoms_2d, symbols):
        ax.plot(px, py, "o", ms=5, mfc="white", mec="black", mew=0.8)
        ax.annotate(s, (px, py), xytext=(5, 5), textcoords="offset points", fontsize=10, fontweight="bold")


def _frame(ax, title) -> None:
    ax.set_aspect("equal")
    ax.set_xlabel("in-plane x (Å)")
    ax.set_ylabel("in-plane y (Å)")
    ax.set_title(title, fontsize=10)


def best_orbital_plane(structure, index: int, positions_A=None) -> str:
    """``"molecular"`` or ``"perpendicular"``: where orbital ``index`` has the larger amplitude."""
    positions_A = structure.mol.atom_coords() * BOHR if positions_A is None else positions_A
    amplitude = {}
    for plane in PLANES[1:]:
        *_, xyz, _ = plane_grid(positions_A, plane, points=41)
        amplitude[plane] = float(np.abs(orbital_on_points(structure.mol, structure.mo_coeff[:, index], xyz)).max())
    return max(amplitude, key=amplitude.get)


def plot_orbital_plane(structures, index: int, title: str, plane: str = "auto", symbols=None, positions_A=None):
    """One panel per structure: orbital ``index`` as filled contours, common colour scale.

    ``structures`` are :class:`ElectronicStructure` objects of the same geometry; orbitals after
    the first are sign-aligned to the first's via their overlap. Returns the figure.
    """
    import matplotlib.pyplot as plt

    from .structure import aligned_sign

    first = structures[0]
    positions_A = first.mol.atom_coords() * BOHR if positions_A is None else positions_A
    symbols = [first.mol.atom_symbol(a) for a in range(first.mol.natm)] if symbols is None else symbols
    plane = best_orbital_plane(first, index, positions_A) if plane == "auto" else plane
    x, y, xyz, atoms_2d = plane_grid(positions_A, plane)
    S = first.mol.intor_symmetric("int1e_ovlp")
    ref = first.mo_coeff[:, index]
    values = [orbital_on_points(s.mol, aligned_sign(s.mo_coeff[:, index], ref, S), xyz).reshape(len(y), len(x)) for s in structures]
    vmax = max(float(np.abs(v).max()) for v in values) or 1.0
    levels = np.linspace(-vmax, vmax, 25)
    fig, axes = plt.subplots(1, len(structures), figsize=(4.6 * len(structures) + 0.8, 4.4), squeeze=False, constrained_layout=True)
    for ax, s, val in zip(axes[0], structures, values):
        filled = ax.contourf(x, y, val, levels=levels, cmap="RdBu_r")
        ax.contour(x, y, val, levels=levels[::3], colors="k", linewidths=0.3)
        _draw_atoms(ax, atoms_2d, symbols)
        _frame(ax, f"{s.label}: ε = {s.mo_energy[index] * HARTREE:.2f} eV")
    fig.colorbar(filled, ax=axes[0].tolist(), label="orbital value ψ (Bohr$^{-3/2}$)")
    fig.suptitle(f"{title} ({plane} plane)")
    return fig


def plot_density_plane(model, reference=None, plane: str = "molecular", symbols=None, positions_A=None):
    """Electron density of ``model`` (and ``reference``, and model minus reference) in a plane.

    Densities on a logarithmic colour scale (e/Bohr^3); the difference on a symmetric linear
    one, scaled to the 99th percentile of |Δρ| in the map (larger values, in the nuclear
    cusps, take the end colours). Returns the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    plane = "molecular" if plane == "auto" else plane
    positions_A = model.mol.atom_coords() * BOHR if positions_A is None else positions_A
    symbols = [model.mol.atom_symbol(a) for a in range(model.mol.natm)] if symbols is None else symbols
    x, y, xyz, atoms_2d = plane_grid(positions_A, plane)
    shape = (len(y), len(x))
    rho = [density_on_points(s.mol, s.density_matrix, xyz).reshape(shape) for s in ([model] + ([reference] if reference else []))]
    panels = len(rho) + (1 if reference else 0)
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels + 0.8, 4.4), squeeze=False, constrained_layout=True)
    axes = axes[0]
    high = max(float(r.max()) for r in rho)
    levels = np.logspace(-3, np.log10(high), 30)
    for ax, s, r in zip(axes, [model, reference], rho):
        filled = ax.contourf(x, y, np.clip(r, 1e-3, None), levels=levels, norm=LogNorm(), cmap="viridis")
        _draw_atoms(ax, atoms_2d, symbols)
        _frame(ax, f"ρ {s.label}")
        fig.colorbar(filled, ax=ax, label="ρ (e/Bohr$^3$)", format="%.0e", shrink=0.85)
    if reference:
        diff = rho[0] - rho[1]
        # the largest differences sit in the nuclear cusps; scale to the 99th percentile so the
        # valence region shows, and mark the clipped range on the colour bar
        vmax = float(np.percentile(np.abs(diff), 99)) or 1e-12
        filled = axes[-1].contourf(x, y, np.clip(diff, -vmax, vmax), levels=np.linspace(-vmax, vmax, 25), cmap="RdBu_r", extend="both")
        _draw_atoms(axes[-1], atoms_2d, symbols)
        _frame(axes[-1], f"ρ {model.label} − ρ {reference.label}")
        fig.colorbar(filled, ax=axes[-1], label="Δρ (e/Bohr$^3$)", format="%.1e", shrink=0.85)
    fig.suptitle(f"electron density ({plane} plane)")
    return fig
