"""How far a density is from the DFT one.

* eps_rho = 100 * integral |rho - rho_DFT| dr / N_electrons (%), on PySCF's DFT integration
  grid: the metric of the density-learning papers.
* The SALTED loss, (c - c_ref)^T S_aux (c - c_ref) = integral (rho~ - rho~_ref)^2 dr
  (e^2/Bohr^3), with S_aux the auxiliary overlap.
"""

from __future__ import annotations

import numpy as np

from ..electronic.grid import density_on_points


def dft_grid(mol, level: int = 3):
    """PySCF's Becke/Treutler DFT integration grid of ``mol`` (points in Bohr, weights)."""
    from pyscf import dft

    grids = dft.gen_grid.Grids(mol)
    grids.level = level
    grids.build()
    return grids


def density_error_percent(rho_model: np.ndarray, rho_reference: np.ndarray, grids) -> float:
    """eps_rho (%) from two densities on ``grids.coords``; the electron count from the reference."""
    n_electrons = float(grids.weights @ rho_reference)
    return 100.0 * float(grids.weights @ np.abs(rho_model - rho_reference)) / n_electrons


def density_matrix_error_percent(mol, P_model: np.ndarray, P_reference: np.ndarray, grids=None) -> float:
    """eps_rho (%) of the density of ``P_model`` against that of ``P_reference`` (route 1)."""
    grids = dft_grid(mol) if grids is None else grids
    return density_error_percent(density_on_points(mol, P_model, grids.coords), density_on_points(mol, P_reference, grids.coords), grids)


def metric_loss(coeff: np.ndarray, coeff_reference: np.ndarray, aux_overlap: np.ndarray) -> float:
    """(c - c_ref)^T S_aux (c - c_ref): the integral of the squared density difference."""
    d = np.asarray(coeff) - np.asarray(coeff_reference)
    return float(d @ aux_overlap @ d)
