"""The package's exceptions: one hierarchy under :class:`PhiSNetError`.

Every error the package raises on purpose is a :class:`PhiSNetError`, so the ``phisnet``
command prints it as one line (exit code 2) and lets anything else, a bug, keep its traceback.
Each class also subclasses the built-in exception that callers caught before it existed
(``ValueError``, ``FileNotFoundError``, ``RuntimeError``), and what the calculator refuses is
also ASE's :class:`~ase.calculators.calculator.InputError`, as ASE's own calculators raise::

    PhiSNetError
    ├── InputError (ase InputError, ValueError)     input the calculator or a command refuses
    │   ├── BasisError                              elements or shells outside the AO basis
    │   ├── ElectronCountError                      charge / multiplicity impossible or open shell
    │   └── GeometryError                           molecule names and geometry files
    ├── ConfigError (ValueError)                    training configs and recipes
    ├── ModelFileError (ValueError)                 model folders: missing, damaged, incompatible
    ├── DatasetError (ValueError)                   datasets: layout, settings, conflicts
    │   └── ImportFormatError                       HDF5 reference sets not in the shared layout
    ├── MissingFileError (FileNotFoundError)        a named input file or folder does not exist
    │   └── ReferenceDataError                      the reference-data folder or a set in it
    ├── LabelError (RuntimeError)                   PySCF labelling failed
    ├── ConvergenceError (RuntimeError)             an SCF or an optimization that did not converge
    ├── StageFailed (RuntimeError)                  a recipe's command stage failed
    └── TrainingDiverged (RuntimeError)             non-finite loss during training

Examples
--------
>>> from ase.calculators.calculator import InputError as AseInputError
>>> issubclass(BasisError, AseInputError) and issubclass(BasisError, ValueError)
True
"""

from __future__ import annotations

from ase.calculators.calculator import InputError as _AseInputError


class PhiSNetError(Exception):
    """Base class of every error the package raises on purpose."""


class InputError(PhiSNetError, _AseInputError, ValueError):
    """Input that cannot be computed: what was wrong and what is accepted.

    Also ASE's ``InputError`` and a ``ValueError``, so ``except ValueError`` code keeps working.
    """


class BasisError(InputError):
    """An element or shell the AO basis does not cover."""


class ElectronCountError(InputError):
    """A charge or multiplicity that the atoms cannot have, or an open shell."""


class GeometryError(InputError):
    """A molecule name or geometry file that cannot be read."""


class ConfigError(PhiSNetError, ValueError):
    """A training configuration or recipe with a wrong or missing key."""


class ModelFileError(PhiSNetError, ValueError):
    """A model file that is missing, truncated or incompatible with this version."""


class DatasetError(PhiSNetError, ValueError):
    """A dataset that is missing, damaged, or inconsistent with what is asked of it."""


class ImportFormatError(DatasetError):
    """An HDF5 reference set that does not follow the shared layout."""


class MissingFileError(PhiSNetError, FileNotFoundError):
    """A named input file or folder that does not exist."""


class ReferenceDataError(MissingFileError):
    """The reference-data folder, or a set in it, could not be found."""


class LabelError(PhiSNetError, RuntimeError):
    """A PySCF labelling run that could not be done."""


class ConvergenceError(PhiSNetError, RuntimeError):
    """A reference SCF, a coupled-cluster solve or a geometry optimization that did not converge."""


class StageFailed(PhiSNetError, RuntimeError):
    """A recipe's command stage exited with an error, or made no output."""


class TrainingDiverged(PhiSNetError, RuntimeError):
    """A training step whose loss or gradient is not finite."""
