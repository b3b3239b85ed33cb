"""Density errors of a model on reference frames, as the density-learning papers report them.

Route 1: the density of the density matrix from the predicted F~ (the calculator's P), against
the density of the reference density matrix (from the stored F and S), eps_rho on PySCF's DFT
grid. Route 2: the density of the atom-centred model's coefficients. The floor of route 2, the
density-fitting error itself, is measured on the same frames, and so are the one-step
Harris-Foulkes and Kohn-Sham energies of the fitted and the predicted densities against the
converged SCF energy (meV/atom).
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from ..electronic.properties import closed_shell_rdm1
from ..molecule import build_mol, check_charge_multiplicity
from .fitting import fit_density
from .metrics import density_error_percent, dft_grid


def density_errors(
    model, frames: list[dict], density_model=None, auxbasis: str | None = None, one_step: bool = True, xc: str = "pbe", grids_level: int = 3, charge: int = 0, progress: bool = True
) -> dict:
    """eps_rho (%) of route 1 and, given a density model or an auxbasis, of route 2 and its floor.

    Parameters
    ----------
    model : PhiSNet or None
        A Hamiltonian model with an F~ head (route 1); None skips route 1.
    frames : list of dict
        ``numbers``, ``positions`` (Å), ``fock``, ``overlap``, ``energy`` (PySCF AO order, Hartree).
    density_model : DensityModel, optional
        Route 2; its auxiliary basis is also the one fitted for the floor.
    auxbasis : str, optional
        Fit the reference density in this auxiliary basis (default: the density model's).
    one_step : bool
        Also the one-step energies (fitted and predicted densities) against the reference energy.
    xc : str
        The reference functional (the one-step KS matrix uses it).

    Returns
    -------
    dict of means (and ``per_frame`` lists): ``wavefunction_eps_rho_percent``,
    ``density_fit_eps_rho_percent``, ``density_model_eps_rho_percent``, and with ``one_step``
    ``{wavefunction,fit,model}_{harris_foulkes,kohn_sham}_mae_meV_per_atom``.
    """
    from pyscf.dft import numint

    from ..units import HARTREE
    from .kohn_sham import one_step_energies, one_step_energies_from_density_matrix

    auxbasis = auxbasis or (density_model.auxbasis if density_model is not None else None)
    basis = model.config.basis if model is not None else density_model.backbone.config.basis
    rows: dict[str, list[float]] = {}
    add = lambda key, value: rows.setdefault(key, []).append(float(value))  # noqa: E731
    for frame in tqdm(frames, desc="density", disable=not progress, unit="frame"):
        numbers, positions = frame["numbers"], frame["positions"]
        n_occ = check_charge_multiplicity(numbers, charge, 1) // 2
        mol = build_mol(numbers, positions, basis, charge)
        grids = dft_grid(mol, grids_level)
        P_ref = closed_shell_rdm1(frame["fock"], frame["overlap"], n_occ)
        ao = numint.eval_ao(mol, grids.coords)
        rho_ref = numint.eval_rho(mol, ao, P_ref)
        one_step_here = one_step and "energy" in frame
        per_atom = HARTREE * 1e3 / len(numbers)

        def add_one_step(route, step):
            add(f"{route}_harris_foulkes_error_meV_per_atom", (step.harris_foulkes - float(frame["energy"])) * per_atom)
            add(f"{route}_kohn_sham_error_meV_per_atom", (step.kohn_sham - float(frame["energy"])) * per_atom)

        if model is not None:
            P_model = closed_shell_rdm1(model.predict(numbers, positions)["fock"], frame["overlap"], n_occ)
            add("wavefunction_eps_rho_percent", density_error_percent(numint.eval_rho(mol, ao, P_model), rho_ref, grids))
            if one_step_here:
                add_one_step("wavefunction", one_step_energies_from_density_matrix(mol, P_model, xc=xc, grids=grids))
        if not auxbasis:
            continue
        fit = fit_density(mol, P_ref, auxbasis)
        aux_ao = numint.eval_ao(fit.auxmol, grids.coords)
        routes = {"fit": fit.coeff}
        if density_model is not None:
            routes["model"] = density_model.predict(numbers, positions, charge)
        for route, coeff in routes.items():
            name = "density_fit" if route == "fit" else "density_model"
            add(f"{name}_eps_rho_percent", density_error_percent(aux_ao @ coeff, rho_ref, grids))
            if one_step_here:
                add_one_step(route, one_step_energies(mol, fit.auxmol, coeff, xc=xc, eri3c=fit.eri3c, metric=fit.metric, grids=grids))
    result = {"n_frames": len(frames), "auxbasis": auxbasis}
    for key, values in rows.items():
        if key.endswith("error_meV_per_atom"):
            stem = key[: -len("error_meV_per_atom")]
            result[f"{stem}mae_meV_per_atom"] = float(np.mean(np.abs(values)))
            result[f"{stem}mean_error_meV_per_atom"] = float(np.mean(values))
        else:
            result[key] = float(np.mean(values))
    result["per_frame"] = rows
    return result
