"""Reference frequencies: PySCF's analytic Hessian against ASE finite differences of PySCF forces."""

import numpy as np
from ase import Atoms

from ase_phisnet.reference import PySCFCalculator
from ase_phisnet.vibrations import infrared, lorentzian_spectrum, pyscf_frequencies


def test_analytic_hessian_frequencies_match_finite_differences(tmp_path):
    # near the PBE/def2-SVP minimum (O-H 0.9747 Å, angle 102.0°)
    water = Atoms("OHH", positions=[[0, 0, 0], [0, 0.7576, -0.6133], [0, -0.7576, -0.6133]])
    analytic = pyscf_frequencies(water)[-3:]
    fd, intensity = infrared(water, PySCFCalculator(), tmp_path)
    assert np.all(np.abs(fd - analytic) / analytic < 5e-3), (fd, analytic)
    assert 1500 < analytic[0] < 1700 and 3600 < analytic[1] < analytic[2] < 3900
    assert intensity[0] > intensity[1]  # the bend is the strongest water band; the symmetric stretch weak


def test_lorentzian_peaks_at_the_band():
    grid = np.linspace(1000, 2000, 1001)
    spectrum = lorentzian_spectrum([1500.0], [2.0], grid, width=20)
    assert grid[np.argmax(spectrum)] == 1500 and abs(spectrum.max() - 2.0) < 1e-12
    assert abs(spectrum[np.searchsorted(grid, 1510)] - 1.0) < 1e-12  # half maximum at FWHM/2


def test_water_frequencies_of_the_shipped_model_against_the_analytic_hessian(tmp_path):
    """The whole comparison of ``phisnet vibrations``: both minima, the model's frequencies against
    PySCF's analytic Hessian, and the error of the modes above 500 cm^-1 on its own."""
    from ase_phisnet.cli.optimize import distorted_water
    from ase_phisnet.vibrations import ABOVE_CM, compare_vibrations

    result = compare_vibrations(distorted_water(), model="water-pbe-def2svp", output=tmp_path)
    assert len(result["phisnet_cm-1"]) == 3 and min(result["pyscf_hessian_cm-1"]) > ABOVE_CM  # bend and stretches
    assert result["max_abs_relative_error_percent"] < 1.0  # 0.11 % measured
    assert result[f"max_abs_relative_error_percent_above_{ABOVE_CM:g}_cm-1"] == result["max_abs_relative_error_percent"]
    assert min(result["phisnet_ir_intensity"]) > 0 and (tmp_path / "ir_spectrum.png").is_file()
