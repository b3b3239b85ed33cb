"""Harmonic frequencies and IR spectra from the learned model, compared with PySCF.

* Model: ASE's :class:`~ase.vibrations.Infrared` on the model's own minimum (finite differences of
  the analytic forces and of the dipole of the predicted density matrix).
* Reference: PySCF's analytic Hessian of the same functional at PySCF's own minimum
  (frequencies), and ASE's ``Infrared`` on :class:`~ase_phisnet.reference.PySCFCalculator`
  (IR intensities from finite differences of PySCF dipoles; PySCF has no IR intensities).

Frequencies in cm^-1, intensities in (D/Å)^2 amu^-1 (ASE's unit).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError

#: Modes above this (cm^-1, PySCF's frequency) get their own largest error: the soft torsions
#: below it are the least harmonic and the most sensitive to the minimum found.
ABOVE_CM = 500.0


def pyscf_frequencies(atoms, xc="pbe", basis="def2-svp") -> np.ndarray:
    """Harmonic wavenumbers (cm^-1) from PySCF's analytic Hessian at ``atoms``' geometry,
    translations and rotations projected out, ascending."""
    from pyscf.hessian import thermo

    from .reference import PySCFCalculator

    mf = PySCFCalculator(xc=xc, basis=basis).mean_field(atoms)
    hess = mf.Hessian().kernel()
    freq = thermo.harmonic_analysis(mf.mol, hess)["freq_wavenumber"]
    return np.sort(np.real_if_close(freq))


def infrared(atoms, calc, workdir, delta: float = 0.005, nfree: int = 4):
    """ASE ``Infrared`` of ``atoms`` with ``calc``: (vibrational frequencies cm^-1, intensities)."""
    from ase.vibrations import Infrared

    atoms = atoms.copy()
    atoms.calc = calc
    ir = Infrared(atoms, name=str(Path(workdir) / "ir"), delta=delta, nfree=nfree)
    ir.run()
    freq = ir.get_frequencies()
    n_vib = 3 * len(atoms) - (5 if _is_linear(atoms) else 6)
    freq, intensity = np.real(freq[-n_vib:]), ir.intensities[-n_vib:]
    ir.clean()
    return freq, intensity


def _is_linear(atoms) -> bool:
    if len(atoms) < 3:
        return True
    pos = atoms.positions - atoms.positions.mean(0)
    return np.linalg.svd(pos, compute_uv=False)[1] < 1e-3


def lorentzian_spectrum(freq, intensity, grid, width: float = 20.0) -> np.ndarray:
    """Sum of Lorentzians (FWHM ``width`` cm^-1) of the given intensities on ``grid``."""
    g = (width / 2) ** 2
    return sum(i * g / ((grid - f) ** 2 + g) for f, i in zip(freq, intensity))


def plot_ir(model: tuple, reference: tuple, path, labels=("PhiSNet", "PySCF PBE")) -> None:
    """Both IR spectra (normalised to the strongest reference band) in one figure, sticks and
    broadened curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = max(max(reference[1]), 1e-12)
    grid = np.linspace(400, 4200, 2000)
    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    for (freq, inten), label, color in zip((model, reference), labels, ("tab:blue", "tab:orange")):
        ax.plot(grid, lorentzian_spectrum(freq, np.asarray(inten) / top, grid), color=color, label=label)
        ax.vlines(freq, 0, np.asarray(inten) / top, color=color, alpha=0.6)
    ax.set_xlabel("wavenumber (cm$^{-1}$)")
    ax.set_ylabel("IR intensity (relative to strongest PBE band)")
    ax.set_xlim(grid[0], grid[-1])
    ax.legend()
    ax.grid(alpha=0.3)
    ax.set_title("Harmonic IR spectrum, Lorentzian FWHM 20 cm$^{-1}$")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def compare_vibrations(start, model="water-pbe-def2svp", output="vibrations", fmax: float = 1e-4) -> dict:
    """Optimize with both methods, then compare frequencies and IR intensities; writes
    ``ir_spectrum.png`` and returns the table as a dict."""
    from .calculator import PhiSNetCalculator
    from .optimize import optimize
    from .reference import reference_calculator, reference_xc

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    calc = model if isinstance(model, PhiSNetCalculator) else PhiSNetCalculator(model)
    reference = calc.model.metadata.get("reference", {})
    if reference.get("method") == "ccsd(t)":
        raise InputError(
            "the vibrational comparison needs the reference's analytic Hessian and dipoles, which PySCF "
            "lacks for CCSD(T); run infrared() on the model alone, or compare_minima() for CCSD(T) minima"
        )
    min_model = optimize(start, calc, fmax)
    min_ref = optimize(start, reference_calculator(calc.model), 1e-3)
    freq_model, int_model = infrared(min_model, calc, out)
    freq_hess = pyscf_frequencies(min_ref, reference_xc(calc.model), calc.model.config.basis)
    freq_fd, int_ref = infrared(min_ref, reference_calculator(calc.model), out)
    n_vib = len(freq_model)
    freq_hess = freq_hess[-n_vib:]
    plot_ir((freq_model, int_model), (freq_fd, int_ref), out / "ir_spectrum.png")
    rel = (freq_model - freq_hess) / freq_hess * 100
    above = freq_hess > ABOVE_CM
    return {
        "phisnet_cm-1": freq_model.tolist(),
        "pyscf_hessian_cm-1": freq_hess.tolist(),
        "relative_error_percent": rel.tolist(),
        "max_abs_relative_error_percent": float(np.abs(rel).max()),
        f"max_abs_relative_error_percent_above_{ABOVE_CM:g}_cm-1": float(np.abs(rel[above]).max()) if above.any() else None,
        "phisnet_ir_intensity": np.asarray(int_model).tolist(),
        "pyscf_fd_ir_intensity": np.asarray(int_ref).tolist(),
        "pyscf_fd_cm-1": freq_fd.tolist(),
        "figure": str(out / "ir_spectrum.png"),
    }
