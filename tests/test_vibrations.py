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
