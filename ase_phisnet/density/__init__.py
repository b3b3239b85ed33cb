"""Electron densities: from the predicted wavefunction, and in an atom-centred auxiliary basis.

Route 1 evaluates rho(r) = sum P_mu,nu phi_mu phi_nu from the predicted density matrix. Route 2
(the SALTED approach, Grisafi et al., JCTC 2023) expands rho in an auxiliary basis,
rho(r) = sum_Q c_Q chi_Q(r), fitted to the DFT density in the Coulomb metric
(:mod:`.fitting`); :mod:`.metrics` measures either against DFT.
"""

from .fitting import DensityFit, aux_norms, fit_density, make_auxmol
from .metrics import density_error_percent, metric_loss

__all__ = ["DensityFit", "aux_norms", "density_error_percent", "fit_density", "make_auxmol", "metric_loss"]
