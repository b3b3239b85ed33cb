"""Electronic structure from a predicted Hamiltonian: orbitals, density matrix, energy."""

from .eigensolver import closed_shell_density, generalized_eigh

__all__ = ["closed_shell_density", "generalized_eigh"]
