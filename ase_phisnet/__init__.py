"""ase_phisnet: a learned electronic-structure calculator for ASE.

PhiSNet predicts the Kohn-Sham Hamiltonian of a molecule in an atomic-orbital basis; the
package diagonalizes it for energies, forces, orbitals and densities, and provides the PySCF
data pipeline, training and evaluation around it.

Top-level names are imported lazily, so ``import ase_phisnet`` (and every ``phisnet`` command
and labelling worker) does not pay for torch until a model is used.
"""

__version__ = "0.1.0"  # the one version source: pyproject.toml reads it ([tool.setuptools.dynamic])

_LAZY = {
    "AOBasis": ("ase_phisnet.basis", "AOBasis"),
    "PhiSNetCalculator": ("ase_phisnet.calculator", "PhiSNetCalculator"),
    "load_model": ("ase_phisnet.model.io", "load_model"),
    "shipped_models": ("ase_phisnet.model.io", "shipped_models"),
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'ase_phisnet' has no attribute {name!r}")
