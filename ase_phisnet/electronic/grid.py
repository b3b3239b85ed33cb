"""Orbitals and electron density on real-space points, and cube files of them.

Thin wrappers over PySCF's numerical integration (``pyscf.dft.numint``) and cube writer
(``pyscf.tools.cubegen``), taking the molecule first as PySCF does. Points are in Bohr; an
orbital value is in Bohr^-3/2 and a density in electrons per Bohr^3.

Examples
--------
>>> import numpy as np
>>> from pyscf import gto, scf
>>> mol = gto.M(atom="H 0 0 0; H 0 0 1.4", unit="Bohr", basis="sto-3g")
>>> mf = scf.RHF(mol).run(verbose=0)
>>> rho = density_on_points(mol, mf.make_rdm1(), np.array([[0.0, 0.0, 0.7]]))
>>> bool(rho[0] > 0)
True
"""

from __future__ import annotations

import numpy as np


def orbital_on_points(mol, coeff: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Values of orbitals ``phi_i(r) = sum_mu C_mu,i chi_mu(r)`` at ``points``.

    Parameters
    ----------
    mol : pyscf.gto.Mole
    coeff : ndarray, shape (n_ao,) or (n_ao, n_orb)
        Orbital coefficients in PySCF's AO order.
    points : ndarray, shape (n_points, 3)
        Cartesian points in Bohr.

    Returns
    -------
    ndarray, shape (n_points,) or (n_points, n_orb), in Bohr^-3/2.
    """
    from pyscf.dft import numint

    ao = numint.eval_ao(mol, np.asarray(points, dtype=float).reshape(-1, 3))
    return ao @ np.asarray(coeff)


def density_on_points(mol, density_matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Electron density ``rho(r) = sum_mu,nu P_mu,nu chi_mu(r) chi_nu(r)`` at ``points`` (e/Bohr^3)."""
    from pyscf.dft import numint

    ao = numint.eval_ao(mol, np.asarray(points, dtype=float).reshape(-1, 3))
    return numint.eval_rho(mol, ao, np.asarray(density_matrix))


def write_orbital_cube(mol, coeff: np.ndarray, path, resolution: float = 0.2, margin: float = 3.0) -> str:
    """Write one orbital as a Gaussian cube file (for VMD, Avogadro, Jmol); returns the path.

    ``resolution`` is the grid spacing and ``margin`` the space around the atoms, both in Bohr.
    """
    from pyscf.tools import cubegen

    cubegen.orbital(mol, str(path), np.asarray(coeff), resolution=resolution, margin=margin)
    return str(path)


def write_density_cube(mol, density_matrix: np.ndarray, path, resolution: float = 0.2, margin: float = 3.0) -> str:
    """Write the electron density of ``density_matrix`` as a Gaussian cube file; returns the path.

    A difference of two density matrices gives the density difference (the cube then holds
    negative values too).
    """
    from pyscf.tools import cubegen

    cubegen.density(mol, str(path), np.asarray(density_matrix), resolution=resolution, margin=margin)
    return str(path)


def read_cube(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a cube file written here: ``(values[nx, ny, nz], origin (3,), spacing (3, 3))`` in Bohr."""
    with open(path) as f:
        lines = f.readlines()
    n_atoms, *origin = lines[2].split()[:4]
    n_atoms = abs(int(n_atoms))
    shape, axes = [], []
    for line in lines[3:6]:
        n, *vec = line.split()[:4]
        shape.append(int(n))
        axes.append([float(v) for v in vec])
    values = np.array(" ".join(lines[6 + n_atoms :]).split(), dtype=float)
    return values.reshape(shape), np.array(origin, dtype=float), np.array(axes)


def write_aux_density_cube(auxmol, coeff: np.ndarray, path, resolution: float = 0.2, margin: float = 3.0) -> str:
    """Write rho(r) = sum_Q c_Q chi_Q(r) of an auxiliary-basis density as a cube file; returns the path."""
    from pyscf.dft import numint
    from pyscf.tools import cubegen

    cube = cubegen.Cube(auxmol, resolution=resolution, margin=margin)
    values = numint.eval_ao(auxmol, cube.get_coords()) @ np.asarray(coeff)
    cube.write(values.reshape(cube.nx, cube.ny, cube.nz), str(path), comment="electron density from auxiliary-basis coefficients")
    return str(path)
