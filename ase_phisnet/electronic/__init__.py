"""Electronic structure from a predicted Hamiltonian: orbitals, density matrix, energy."""

from .eigensolver import closed_shell_density, generalized_eigh, orbital_energies
from .energy import nuclear_repulsion, phisnet_energy
from .core import ExactCoreHamiltonian
from .overlap import ExactOverlap

__all__ = ["ExactCoreHamiltonian", "ExactOverlap", "closed_shell_density", "generalized_eigh", "nuclear_repulsion", "orbital_energies", "phisnet_energy"]
