"""Unit constants, all taken from :mod:`ase.units` so the whole package uses one Bohr.

Inside the package everything is in atomic units (Hartree, Bohr); at the ASE boundary
energies are in eV, lengths in Å and dipoles in e·Å.

Examples
--------
>>> from ase_phisnet.units import BOHR, HARTREE
>>> round(1.0 / BOHR, 6)      # Bohr per Å
1.889726
"""

from ase import units as _units

#: One Bohr in Å (ase.units.Bohr); positions in Bohr = positions in Å / BOHR.
BOHR = _units.Bohr
#: One Hartree in eV.
HARTREE = _units.Hartree
#: One Debye in e·Å (the shared data store dipoles in Debye; ASE expects e·Å).
DEBYE = _units.Debye
#: Hartree/Bohr in eV/Å.
HARTREE_PER_BOHR = HARTREE / BOHR
