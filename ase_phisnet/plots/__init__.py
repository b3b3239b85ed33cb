"""Pictures of the learned electronic structure, model beside DFT.

:func:`plot_electronic_structure` draws everything for one geometry: the orbital level diagram,
chosen orbitals as contour maps in a plane and as 3-D isosurfaces, the electron density with the
model-minus-DFT difference, and cube files of orbitals and densities for VMD, Avogadro or Jmol.
The pieces (:func:`plot_level_diagram`, :func:`plot_orbital_plane`, :func:`plot_density_plane`,
:func:`plot_orbital_isosurface`) take :class:`ElectronicStructure` objects and return figures.

Examples
--------
>>> from ase.build import molecule
>>> from ase_phisnet import PhiSNetCalculator
>>> from ase_phisnet.plots import plot_electronic_structure
>>> files = plot_electronic_structure(molecule("H2O"), PhiSNetCalculator(), "pictures")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..units import HARTREE
from .isosurface import plot_orbital_isosurface
from .levels import plot_level_diagram
from .planes import PLANES, plot_density_plane, plot_orbital_plane
from .structure import ElectronicStructure, aligned_sign, from_model, from_pyscf, orbital_index, orbital_name, reference_for

__all__ = [
    "ElectronicStructure",
    "FORMATS",
    "PLANES",
    "from_model",
    "from_pyscf",
    "orbital_index",
    "plot_density_plane",
    "plot_electronic_structure",
    "plot_level_diagram",
    "plot_orbital_isosurface",
    "plot_orbital_plane",
]

FORMATS = ("png", "svg", "pdf")


def _save(fig, stem: Path, formats) -> list[str]:
    import matplotlib.pyplot as plt

    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=150)
        paths.append(str(path))
    plt.close(fig)
    return paths


def plot_electronic_structure(
    atoms,
    calc,
    output,
    orbitals=("homo", "lumo"),
    plane: str = "auto",
    formats=("png",),
    reference: bool = True,
    cubes: bool = True,
    iso: float = 0.05,
) -> dict:
    """Draw the model's electronic structure of ``atoms`` (beside PySCF's unless ``reference=False``).

    Parameters
    ----------
    atoms : ase.Atoms
    calc : PhiSNetCalculator
    output : path
        Folder for the figures and cube files (created).
    orbitals : sequence of str or int
        ``"homo"``, ``"lumo"``, ``"homo-1"``, ``"lumo+2"`` or 0-based indices.
    plane : {"auto", "molecular", "perpendicular"}
        Plane of the contour maps; ``"auto"`` draws each orbital in the plane where it is larger
        and the density in the molecular plane.
    formats : sequence of {"png", "svg", "pdf"}
    reference : bool
        Also run PySCF with the model's reference method and draw it beside the model.
    cubes : bool
        Write cube files: each orbital and the density (model, reference, difference).
    iso : float
        Isovalue of the orbital isosurfaces, Bohr^-3/2.

    Returns
    -------
    dict with ``"files"`` (the paths written, by kind) and ``"orbital_energies_eV"`` (model and
    reference values of the drawn orbitals).
    """
    bad = sorted(set(formats) - set(FORMATS))
    if bad or not formats:
        raise InputError(f"figure format(s) {bad or formats} not supported; choose from {', '.join(FORMATS)}")
    if plane not in PLANES:
        raise InputError(f"plane {plane!r} not known; choose one of {', '.join(PLANES)}")
    model = from_model(atoms, calc)
    n_mo = len(model.mo_energy)
    indices = [orbital_index(label, model.n_occ, n_mo) for label in orbitals]  # fail before any work
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    dft = from_pyscf(atoms, **reference_for(calc)) if reference else None
    shown = [model, dft] if dft else [model]
    files: dict[str, list[str]] = {"levels": _save(plot_level_diagram(shown), out / "levels", formats)}
    energies = {}
    S = model.mol.intor_symmetric("int1e_ovlp")
    for index in indices:
        name = orbital_name(index, model.n_occ)
        tag = name.lower().replace("+", "p").replace("-", "m")
        files[f"{tag}_contour"] = _save(plot_orbital_plane(shown, index, f"{name} (orbital {index})", plane), out / f"{tag}_contour", formats)
        files[f"{tag}_isosurface"] = _save(plot_orbital_isosurface(shown, index, f"{name} (orbital {index})", iso), out / f"{tag}_isosurface", formats)
        energies[name] = {s.label: float(s.mo_energy[index] * HARTREE) for s in shown}
        if cubes:
            from ..electronic.grid import write_orbital_cube

            coeff = model.mo_coeff[:, index] if dft is None else aligned_sign(model.mo_coeff[:, index], dft.mo_coeff[:, index], S)
            files.setdefault("cubes", []).append(write_orbital_cube(model.mol, coeff, out / f"{tag}_model.cube"))
            if dft is not None:
                files["cubes"].append(write_orbital_cube(dft.mol, dft.mo_coeff[:, index], out / f"{tag}_dft.cube"))
    files["density"] = _save(plot_density_plane(model, dft, plane), out / "density", formats)
    if cubes:
        from ..electronic.grid import write_density_cube

        files.setdefault("cubes", []).append(write_density_cube(model.mol, model.density_matrix, out / "density_model.cube"))
        if dft is not None:
            files["cubes"].append(write_density_cube(dft.mol, dft.density_matrix, out / "density_dft.cube"))
            files["cubes"].append(write_density_cube(model.mol, model.density_matrix - dft.density_matrix, out / "density_difference.cube"))
    if "cubes" in files:
        files["cubes"] = files.pop("cubes")  # figures first, cube files last
    return {"files": files, "orbital_energies_eV": energies, "n_occ": model.n_occ, "n_mo": n_mo}
