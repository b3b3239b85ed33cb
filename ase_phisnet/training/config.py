"""The YAML training configuration of one run (``phisnet train CONFIG.yaml``).

A model trained in several runs has a recipe (:mod:`.recipe`) whose train stages hold these
configs inline. Example, a single run::

    name: water-pbe-def2svp
    dataset: ../shared/data/water_pbe_def2svp_500K.h5   # dataset folder or reference .h5 (or a list: their union)
    splits: {n_train: 500, n_val: 500, seed: 0}          # the rest is the test split
    model: {preset: small}                               # plus any PhiSNetConfig field
    loss: {fock: 1.0}                                    # weight of (MSE + MAE) per matrix
    optimizer: {lr: 1.0e-3, ema_decay: 0.999, clip_grad: 1.0, plateau_patience: 10}
    batch_size: 16
    max_steps: 100000
    val_every: 250
    output: runs/water-pbe-def2svp

``init_from: MODEL`` (a shipped name or model folder) starts a new run from that model's
weights and architecture instead of a random initialisation (e.g. to continue training the
shipped model on a fresh machine, where the old run's checkpoint is gone). The config may add
heads the model lacks (an ``hcore`` head to a Fock-only model), which start from scratch, and
the learned energy correction (``model: {energy_correction: true}``, :mod:`ase_phisnet.model.readout`),
which starts at zero, so the first energies are those of the model it starts from.

``trainable: [heads.hcore]`` (parameter-name prefixes) trains only those weights, the rest stay
fixed, until step ``trainable_until`` (``null``: the whole run). Used to fit a new H~core head
through energies and forces without moving the trained F~ and backbone (whose large early
gradients from the new head would otherwise spoil the Hamiltonian).

Energy and force terms (PhiSNet's E/F loss, :mod:`.energy_forces`) are loss keys beside the
matrices, switched on at step ``energy_forces_from`` of the run, once the matrix loss is low::

    loss: {fock: 1.0, hcore: 1.0, energy: 1.0, forces: 1.0}   # energy Hartree, forces Hartree/Bohr
    energy_forces_from: 3000

They need the ``fock`` and ``hcore`` heads; the ``hcore`` matrix target is the stored core
Hamiltonian shifted to make the energy expression exact (:func:`.energy_forces.effective_core_target`).
``orbital_energies`` (Hartree) adds the occupied eigenvalues of ``F~ C = S C eps`` against the
reference's: the energy expression is unchanged when F~ gains ``c S`` and H~core loses it, so
without this term (or a heavy ``fock`` weight) E/F training can shift every orbital energy.

``validation_energy: offset_free`` scores the validation energies after a per-element
constant (atomic energies, least squares over the validation split) is taken out of their
errors, in the validation loss and so in the choice of the best model. A constant per element
is what the ship step of a recipe refits (``fit_atomic_energies: true``), so it should
not decide which weights are kept: the force and F~ terms move it by a few meV from one
validation to the next. The default, ``absolute``, scores the energies as predicted. The raw
MAE and the mean signed error (``val_energy_offset_meV``) are reported either way.

Relative paths are taken from the working directory.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

import yaml

from ..errors import ConfigError, MissingFileError

#: Matrix targets a head can be trained on.
MATRIX_TARGETS = ("fock", "overlap", "hcore")
#: Energy (Hartree), force (Hartree/Bohr) and occupied orbital-energy (Hartree) terms of the loss.
ENERGY_FORCE_TERMS = ("energy", "forces", "orbital_energies")


@dataclass
class OptimizerConfig:
    """AMSGrad with an exponential moving average of the weights, as PhiSNet trains.

    ``lr`` is halved (``plateau_factor``) when the validation loss has not improved for
    ``plateau_patience`` validations, down to ``min_lr``; gradients are clipped to norm
    ``clip_grad``. ``warmup_steps`` ramps the rate linearly from ``lr / warmup_steps`` to ``lr``
    over the first steps of a run: a run that starts from trained weights (``init_from``) with
    a fresh optimizer state otherwise moves every weight by ``lr`` at once in its first steps.
    ``cosine_steps`` > 0 replaces the plateau halving: after the warm-up the rate falls from
    ``lr`` to ``min_lr`` along half a cosine over that many steps, then stays at ``min_lr``. It
    is counted in steps, not tied to ``max_steps``, so a run stopped early keeps its schedule.
    """

    lr: float = 1e-3
    warmup_steps: int = 0
    amsgrad: bool = True
    ema_decay: float = 0.999
    clip_grad: float = 1.0
    plateau_factor: float = 0.5
    plateau_patience: int = 10
    min_lr: float = 1e-6
    weight_decay: float = 0.0
    cosine_steps: int = 0


@dataclass
class SplitConfig:
    """Seeded train/validation/test split; ``n_test=None`` puts every other frame in test.
    ``train_subset`` trains on the first N training frames only, with validation and test
    unchanged (:func:`ase_phisnet.data.splits.make_splits`)."""

    n_train: int = 500
    n_val: int = 500
    n_test: int | None = None
    seed: int = 0
    include_unconverged: bool = False
    train_subset: int | None = None


@dataclass
class TrainConfig:
    """Everything a training run needs; see the module docstring for the YAML form."""

    name: str
    dataset: str | list
    output: str
    splits: SplitConfig = field(default_factory=SplitConfig)
    model: dict = field(default_factory=lambda: {"preset": "small"})
    loss: dict = field(default_factory=lambda: {"fock": 1.0})
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    batch_size: int = 16
    max_steps: int = 100000
    max_minutes: float | None = None
    val_every: int = 250
    device: str = "cpu"
    dtype: str = "float32"
    seed: int = 0
    init_from: str | None = None
    trainable: list | None = None
    trainable_until: int | None = None
    energy_forces_from: int = 0
    validation_energy: str = "absolute"

    @property
    def matrix_weights(self) -> dict:
        """Loss weights of the matrix heads."""
        return {k: float(v) for k, v in self.loss.items() if k in MATRIX_TARGETS}

    @property
    def energy_force_weights(self) -> dict:
        """Loss weights of the energy and force terms (empty: no E/F training)."""
        return {k: float(v) for k, v in self.loss.items() if k in ENERGY_FORCE_TERMS and float(v) > 0}

    def __post_init__(self):
        if isinstance(self.splits, dict):
            self.splits = _build(SplitConfig, self.splits, "splits")
        if isinstance(self.optimizer, dict):
            self.optimizer = _build(OptimizerConfig, self.optimizer, "optimizer")
        if not (isinstance(self.dataset, str) and self.dataset) and not (isinstance(self.dataset, list) and self.dataset and all(isinstance(d, str) and d for d in self.dataset)):
            raise ConfigError(f"dataset must be a dataset folder or .h5 file, or a list of them (read as one set), got {self.dataset!r}")
        if self.validation_energy not in ("absolute", "offset_free"):
            raise ConfigError(f"validation_energy must be 'absolute' or 'offset_free', got {self.validation_energy!r}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if not self.loss or any(float(w) < 0 for w in self.loss.values()):
            raise ConfigError(f"loss must give a non-negative weight per matrix target, got {self.loss!r}")
        unknown = sorted(set(self.loss) - set(MATRIX_TARGETS) - set(ENERGY_FORCE_TERMS))
        if unknown:
            raise ConfigError(f"unknown loss term(s) {unknown}; accepted: {list(MATRIX_TARGETS) + list(ENERGY_FORCE_TERMS)}")
        if not self.matrix_weights:
            raise ConfigError(f"loss needs at least one matrix target ({', '.join(MATRIX_TARGETS)}), got {self.loss!r}")
        if self.energy_force_weights and not {"fock", "hcore"} <= set(self.loss):
            raise ConfigError("energy/force loss terms need the 'fock' and 'hcore' heads: give both a weight in loss")
        if self.trainable is not None and (not isinstance(self.trainable, list) or not all(isinstance(t, str) and t for t in self.trainable)):
            raise ConfigError(f"trainable must be a list of parameter-name prefixes (e.g. [heads.hcore]), got {self.trainable!r}")
        if int(self.optimizer.warmup_steps) < 0:
            raise ConfigError(f"optimizer.warmup_steps must be a step count >= 0, got {self.optimizer.warmup_steps!r}")
        if int(self.optimizer.cosine_steps) < 0:
            raise ConfigError(f"optimizer.cosine_steps must be a step count >= 0 (0: plateau halving), got {self.optimizer.cosine_steps!r}")
        if int(self.optimizer.cosine_steps) > 0 and not float(self.optimizer.min_lr) < float(self.optimizer.lr):
            raise ConfigError(f"optimizer.cosine_steps needs min_lr below lr, got min_lr {self.optimizer.min_lr!r} and lr {self.optimizer.lr!r}")
        if int(self.energy_forces_from) < 0:
            raise ConfigError(f"energy_forces_from must be a step number >= 0, got {self.energy_forces_from!r}")
        for name in ("batch_size", "max_steps", "val_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")

    @classmethod
    def from_yaml(cls, path) -> "TrainConfig":
        path = Path(path)
        if not path.exists():
            raise MissingFileError(f"training config {path} does not exist")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a training config is a YAML mapping of keys to values")
        data.setdefault("name", path.stem)
        data.setdefault("output", str(Path("runs") / data["name"]))
        return _build(cls, data, str(path))

    @classmethod
    def from_dict(cls, data: dict, where: str = "training config") -> "TrainConfig":
        """A config from a mapping (a recipe's train stage); every error message starts with ``where``.

        Raises
        ------
        ConfigError
            Unknown or missing keys, or a value the config refuses.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: a training config is a mapping of keys to values, got {type(data).__name__}")
        try:
            return _build(cls, data, where)
        except (TypeError, ValueError) as err:
            message = str(err)
            raise ConfigError(message if message.startswith(where) else f"{where}: {message}") from None

    def to_dict(self) -> dict:
        return asdict(self)


def _build(cls, data: dict, where: str):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; accepted: {sorted(known)}")
    missing = sorted(f.name for f in fields(cls) if f.name not in data and f.default is MISSING and f.default_factory is MISSING)
    if missing:
        raise ConfigError(f"{where}: missing key(s) {missing}")
    return cls(**data)
