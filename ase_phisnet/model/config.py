"""Model hyper-parameters: a dataclass, serialisable to JSON, and the named presets.

Examples
--------
>>> cfg = PhiSNetConfig.from_preset("small", elements=[1, 8])
>>> cfg.features, cfg.num_interactions, cfg.cutoff
(16, 2, 15.0)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..errors import ConfigError

#: Hyper-parameters of the named presets. ``paper`` is the authors' GPU configuration;
#: ``small`` trains on a 2-core CPU.
PRESETS: dict[str, dict] = {
    "paper": dict(features=128, num_interactions=5, num_radial=128, radial_hidden=128, cutoff=15.0),
    "small": dict(features=16, num_interactions=2, num_radial=16, radial_hidden=32, cutoff=15.0),
}

#: Matrix heads a model may have: Fock/KS matrix, predicted overlap, effective core Hamiltonian.
HEADS = ("fock", "overlap", "hcore")


@dataclass
class PhiSNetConfig:
    """Architecture of a PhiSNet model.

    Attributes
    ----------
    elements : list of int
        Atomic numbers the model covers.
    basis : str
        PySCF basis of the predicted matrices.
    features : int
        Channels per irrep order of the atom features.
    num_interactions : int
        Message-passing modules.
    num_radial : int
        Exponential Bernstein radial functions.
    radial_hidden : int
        Width of the radial MLPs.
    cutoff : float
        Pair cutoff in Bohr.
    lmax : int or None
        Highest irrep order; ``None`` means 2 x the basis' highest shell l (4 for def2-SVP).
    heads : list of str
        Matrix heads, from ``HEADS``.
    avg_neighbors : float
        Normalisation of message sums (set from the training data).
    preset : str or None
        Name of the preset this configuration started from.
    core_baseline : bool
        If true, the ``hcore`` head predicts a correction added to the exact core Hamiltonian
        h(R) = T + V_nuc from PySCF integrals (:class:`ase_phisnet.electronic.ExactCoreHamiltonian`):
        H~core = h(R) + head. Users of the model (calculator, training) add h(R).
    atomic_energies : dict or None
        Per-element constants (Hartree) added to the energy expression, ``E + sum_A e_{Z_A}``
        (MACE's E0s): fitted after training to the mean energy residual of the training set
        (:func:`ase_phisnet.training.energy_forces.fit_atomic_energies`). They move no force.
    energy_correction : bool
        If true, a learned per-atom energy read from the invariant atom features is added to
        the energy expression (:mod:`ase_phisnet.model.readout`); the Hamiltonian-only energy
        stays available beside it. Needs the ``hcore`` head.
    """

    elements: list = field(default_factory=lambda: [1, 8])
    basis: str = "def2-svp"
    features: int = 16
    num_interactions: int = 2
    num_radial: int = 16
    radial_hidden: int = 32
    cutoff: float = 15.0
    lmax: int | None = None
    heads: list = field(default_factory=lambda: ["fock"])
    avg_neighbors: float = 1.0
    preset: str | None = None
    core_baseline: bool = False
    atomic_energies: dict | None = None
    energy_correction: bool = False

    def __post_init__(self):
        self.elements = sorted({int(z) for z in self.elements})
        if self.atomic_energies is not None:  # JSON gives the keys as strings
            self.atomic_energies = {int(z): float(e) for z, e in self.atomic_energies.items()}
            stray = sorted(set(self.atomic_energies) - set(self.elements))
            if stray:
                raise ConfigError(f"atomic_energies for element(s) {stray} the model does not cover ({self.elements})")
        self.heads = list(self.heads)
        unknown = [h for h in self.heads if h not in HEADS]
        if unknown or not self.heads:
            raise ConfigError(f"unknown matrix head(s) {unknown}; accepted: {', '.join(HEADS)}")
        if self.energy_correction and "hcore" not in self.heads:
            raise ConfigError(f"energy_correction needs the hcore head (an energy expression to correct); heads are {self.heads}")
        for name in ("features", "num_interactions", "num_radial", "radial_hidden"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.cutoff > 0:
            raise ConfigError(f"cutoff must be positive (Bohr), got {self.cutoff!r}")

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> "PhiSNetConfig":
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; accepted: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[preset], "preset": preset, **overrides})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PhiSNetConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model configuration key(s) {unknown}; accepted: {sorted(known)}")
        return cls(**data)
