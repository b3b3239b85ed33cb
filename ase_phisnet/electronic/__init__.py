"""Electronic structure from a predicted Hamiltonian: the electronic-state step (orbitals,
density matrix, energy), exact S(R) and T + V_nuc, properties and values on grids."""

from .core import ExactCoreHamiltonian
from .eigensolver import closed_shell_density, closed_shell_orbitals, generalized_eigh, orbital_energies
from .energy import nuclear_repulsion
from .overlap import ExactOverlap
from .state import ElectronicState, IntegralCache, MolecularIntegrals, electronic_state, electronic_states, energies_and_forces

__all__ = [
    "ElectronicState",
    "ExactCoreHamiltonian",
    "ExactOverlap",
    "IntegralCache",
    "MolecularIntegrals",
    "closed_shell_density",
    "closed_shell_orbitals",
    "electronic_state",
    "electronic_states",
    "energies_and_forces",
    "generalized_eigh",
    "nuclear_repulsion",
    "orbital_energies",
]
