"""ase_phisnet: a learned electronic-structure calculator for ASE.

PhiSNet predicts the Kohn-Sham Hamiltonian of a molecule in an atomic-orbital basis; the
package diagonalizes it for energies, forces, orbitals and densities, and provides the PySCF
data pipeline, training and evaluation around it.
"""

__version__ = "0.1.0"

from .basis import AOBasis  # noqa: E402
from .model.io import load_model, shipped_models  # noqa: E402

__all__ = ["AOBasis", "load_model", "shipped_models", "__version__"]
