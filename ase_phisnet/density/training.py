"""Training the atom-centred density model on the density metric.

For each frame the reference coefficients are the Coulomb-metric fit of the DFT density with
the exact electron count (:func:`~ase_phisnet.density.fitting.fit_density`). The loss of a
molecule is SALTED's (c - c_ref)^T S_aux (c - c_ref), the integral of the squared density
error (e^2/Bohr^3).

The backbone (a trained Hamiltonian model) is frozen, so its atom features are computed once
per frame. The count-conserving coefficients are then linear in the heads' weights and the
summed loss is quadratic in them: the default solver (``ridge``) minimises it exactly, as
SALTED's regression does, from the normal equations with a small ridge term chosen on the
validation split. ``solver: adam`` instead runs mini-batch gradient descent (AMSGrad, learning
rate halved on plateaus; ``steps``, ``batch_size``, ``lr``), for heads too large to solve.

Configuration (YAML)::

    name: water-density-jfit
    dataset: ../shared/data/water_pbe_def2svp_500K.h5
    backbone: water-pbe-def2svp        # its recorded train/val/test splits are used
    auxbasis: def2-universal-jfit
    solver: ridge                      # or adam (then steps, batch_size, lr, val_every apply)
    ridge: [1.0e-12, 1.0e-10, 1.0e-8]  # relative to the mean diagonal; best on validation kept
    output: runs/water-density-jfit

``max_train_frames`` / ``max_val_frames`` use only the first frames of a split (quick runs);
``init_from`` starts the heads from a trained density model with the same auxiliary basis.
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import ConfigError, InputError
from ..molecule import build_mol, check_charge_multiplicity
from .fitting import fit_density

SOLVERS = ("ridge", "adam")
MAX_RIDGE_WEIGHTS = 20000  # normal equations beyond this size: use solver adam


@dataclass
class DensityTrainingConfig:
    """Settings of a density-model run (see the module docstring for the YAML form)."""

    name: str
    dataset: str
    backbone: str = "water-pbe-def2svp"
    auxbasis: str = "def2-universal-jfit"
    solver: str = "ridge"
    ridge: tuple = (1e-12, 1e-10, 1e-8)
    steps: int = 4000
    batch_size: int = 32
    lr: float = 1e-2
    val_every: int = 200
    plateau_patience: int = 5
    max_train_frames: int | None = None
    max_val_frames: int | None = None
    init_from: str | None = None
    seed: int = 0
    output: str = "runs/density"

    def __post_init__(self):
        for name in ("steps", "batch_size", "val_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr!r}")
        if self.solver not in SOLVERS:
            raise ConfigError(f"solver must be one of {list(SOLVERS)}, got {self.solver!r}")
        ridge = self.ridge if isinstance(self.ridge, (list, tuple)) else [self.ridge]
        if not ridge or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and r >= 0 for r in ridge):
            raise ConfigError(f"ridge must be a non-negative number or a list of them, got {self.ridge!r}")
        self.ridge = tuple(float(r) for r in ridge)

    @classmethod
    def from_yaml(cls, path) -> "DensityTrainingConfig":
        import yaml

        data = yaml.safe_load(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            raise ConfigError(f"{path}: unknown key(s) {sorted(set(data or {}) - known)}; accepted: {sorted(known)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{path}: {err}") from None


def reference_coefficients(frame: dict, basis: str, auxbasis: str, charge: int = 0) -> dict:
    """Fitted coefficients, auxiliary overlap and electron count of one frame (PySCF aux order)."""
    from ..electronic.properties import closed_shell_rdm1

    n_occ = check_charge_multiplicity(frame["numbers"], charge, 1) // 2
    mol = build_mol(frame["numbers"], frame["positions"], basis, charge)
    fit = fit_density(mol, closed_shell_rdm1(frame["fock"], frame["overlap"], n_occ), auxbasis)
    return {"coeff": fit.coeff, "aux_overlap": fit.auxmol.intor_symmetric("int1e_ovlp"), "n_electrons": 2.0 * n_occ}


class DensityFrames:
    """Frames ready for the heads: frozen backbone features and fitted targets, irreps order."""

    def __init__(self, model, frames: list[dict], progress: bool = True, desc: str = "fit"):
        from ..units import BOHR

        self.items = []
        for frame in tqdm(frames, desc=desc, disable=not progress, unit="frame"):
            numbers = np.asarray(frame["numbers"])
            ref = reference_coefficients(frame, model.backbone.config.basis, model.auxbasis)
            perm = model.aux.perm_to_irreps(numbers)
            with torch.no_grad():
                graph = model.backbone.graph([numbers], [np.asarray(frame["positions"]) / BOHR])
                x = model.backbone.atom_features(graph)[0]
            self.items.append(
                {
                    "numbers": numbers.tolist(),
                    "features": x.detach(),
                    "coeff": torch.as_tensor(ref["coeff"][perm]),
                    "aux_overlap": torch.as_tensor(ref["aux_overlap"][np.ix_(perm, perm)]),
                    "n_electrons": ref["n_electrons"],
                }
            )

    def __len__(self) -> int:
        return len(self.items)


def head_coefficients(model, item) -> torch.Tensor:
    """The heads' count-conserving coefficients of one prepared frame (irreps order)."""
    c = torch.cat([model.heads[str(z)](item["features"][a]) for a, z in enumerate(item["numbers"])])
    n = model.norms(item["numbers"]).to(c)
    return c + (item["n_electrons"] - n @ c) * n / (n @ n)


def metric_losses(model, data: DensityFrames, indices) -> torch.Tensor:
    """(c - c_ref)^T S_aux (c - c_ref) of each frame in ``indices``."""
    out = []
    for i in indices:
        item = data.items[i]
        d = head_coefficients(model, item) - item["coeff"].to(item["features"])
        out.append(d @ item["aux_overlap"].to(d) @ d)
    return torch.stack(out)


def head_weights(model) -> list[tuple[str, str, torch.nn.Parameter]]:
    """The heads' parameters as (element, name, parameter), in a fixed order (flattened: w)."""
    return [(z, name, p) for z in sorted(model.heads.keys(), key=int) for name, p in model.heads[z].named_parameters()]


def n_head_weights(model) -> int:
    """How many weights the heads have (the length of the flattened w)."""
    return sum(p.numel() for _, _, p in head_weights(model))


def head_jacobian(model, item) -> torch.Tensor:
    """d c / d w of one prepared frame, shape (n_aux, n_w).

    c are the heads' coefficients before the count shift (irreps order), w all head weights
    flattened in :func:`head_weights` order. The heads are linear in their weights, so this
    matrix does not depend on them.
    """
    from torch.func import functional_call, jacfwd

    numbers = [str(z) for z in item["numbers"]]
    sizes = [model.heads[z].irreps_out.dim for z in numbers]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    weights = head_weights(model)
    J = torch.zeros(int(starts[-1]), n_head_weights(model), dtype=item["features"].dtype)
    col = 0
    for z, name, p in weights:
        atoms = [a for a, n in enumerate(numbers) if n == z]
        if atoms:
            head = model.heads[z]
            frozen = {k: v.detach() for k, v in head.named_parameters() if k != name}
            coeff = lambda w: functional_call(head, {**frozen, name: w}, (item["features"][atoms],))  # noqa: E731
            jac = jacfwd(coeff)(p.detach()).reshape(len(atoms), sizes[atoms[0]], -1)
            for k, a in enumerate(atoms):
                J[starts[a] : starts[a + 1], col : col + p.numel()] = jac[k]
        col += p.numel()
    return J


def normal_equations(model, data: DensityFrames, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A, b of the summed metric loss, sum_f (c_f(w) - c_ref)^T S (c_f(w) - c_ref) = w^T A w - 2 b^T w + const.

    With the count shift, c_f(w) = Q J w + N n / (n.n) and Q = 1 - n n^T / (n.n).
    """
    n_w = n_head_weights(model)
    A = torch.zeros(n_w, n_w, dtype=torch.float64)
    b = torch.zeros(n_w, dtype=torch.float64)
    for item in tqdm(data.items, desc="normal equations", disable=not progress, unit="frame"):
        n = model.norms(item["numbers"]).double()
        QJ = head_jacobian(model, item).double()
        QJ = QJ - torch.outer(n, (n @ QJ) / (n @ n))
        target = item["coeff"].double() - item["n_electrons"] * n / (n @ n)
        SQJ = item["aux_overlap"].double() @ QJ
        A += QJ.T @ SQJ
        b += SQJ.T @ target
    return A, b


def set_head_weights(model, w: torch.Tensor) -> None:
    """Write the flattened weights ``w`` (:func:`head_weights` order) into the heads."""
    col = 0
    with torch.no_grad():
        for _, _, p in head_weights(model):
            p.copy_(w[col : col + p.numel()].reshape(p.shape).to(p))
            col += p.numel()


def train_density(config: DensityTrainingConfig, progress: bool = True, device: str = "cpu") -> Path:
    """Fit the density heads on a frozen backbone; returns the folder of the best model.

    ``metrics.csv`` gets a row per ridge value tried (solver ridge) or per validation
    (solver adam); the model with the lowest validation metric loss is written to ``best/``.
    """
    from ..data.splits import select_split
    from ..model.io import load_model
    from ..training.data import load_frames
    from .model import DensityModel

    backbone = load_model(config.backbone, dtype=torch.float64)
    model = DensityModel(backbone, config.auxbasis).double()
    if config.init_from:
        from .model import load_density_model

        start = load_density_model(config.init_from)
        if start.auxbasis != model.auxbasis:
            raise InputError(f"init_from {config.init_from} uses auxiliary basis {start.auxbasis!r}, this run {model.auxbasis!r}")
        model.heads.load_state_dict(start.heads.state_dict())
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    n_w = n_head_weights(model)
    if config.solver == "ridge" and n_w > MAX_RIDGE_WEIGHTS:
        raise ConfigError(f"the heads have {n_w} weights, too many for the normal equations (at most {MAX_RIDGE_WEIGHTS}); use solver: adam")
    frames, meta = load_frames(config.dataset)
    train = DensityFrames(model, select_split(backbone, frames, "train")[: config.max_train_frames], progress, "fit train")
    val = DensityFrames(model, select_split(backbone, frames, "val")[: config.max_val_frames], progress, "fit val")
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(model, config, backbone, meta, out)
    if config.solver == "ridge":
        _solve_ridge(model, config, train, val, run, progress)
    else:
        _descend(model, config, train, val, run, progress)
    run.close()
    return out / "best"


class _Run:
    """metrics.csv and the best model of a density run."""

    def __init__(self, model, config, backbone, meta, out: Path):
        self.model, self.config, self.out = model, config, out
        self.best, self.started = float("inf"), time.perf_counter()
        self.extra = {
            "reference": {k: meta.get(k) for k in ("method", "xc", "basis", "grids_level") if k in meta},
            "splits": getattr(backbone, "metadata", {}).get("splits", {}),
        }
        self.log = open(out / "metrics.csv", "w", newline="")
        self.writer = csv.writer(self.log)
        self.writer.writerow(["step", "elapsed_s", "lr_or_ridge", "train_loss", "val_loss"])

    def record(self, step: int, lr_or_ridge: float, train_loss: float, val_loss: float, **training) -> None:
        from .model import save_density_model

        wall = round(time.perf_counter() - self.started, 1)
        self.writer.writerow([step, wall, lr_or_ridge, train_loss, val_loss])
        self.log.flush()
        if val_loss < self.best:
            self.best = val_loss
            metadata = {
                "training": {**asdict(self.config), "step": step, "wall_s": wall, **training},
                "validation": {"val_metric_loss": val_loss, "train_metric_loss": train_loss},
                **self.extra,
            }
            save_density_model(self.model, self.out / "best", metadata)

    def close(self) -> None:
        self.log.close()


def _solve_ridge(model, config, train: DensityFrames, val: DensityFrames, run: _Run, progress: bool) -> None:
    """Exact minimum of the training loss plus ridge * mean(diag A) * |w|^2, for each ridge value."""
    A, b = normal_equations(model, train, progress)
    scale = float(A.diagonal().mean())
    eye = torch.eye(A.shape[0], dtype=A.dtype)
    for ridge in tqdm(config.ridge, desc="ridge", disable=not progress):
        set_head_weights(model, torch.linalg.solve(A + ridge * scale * eye, b))
        with torch.no_grad():
            train_loss = float(metric_losses(model, train, range(len(train))).mean())
            val_loss = float(metric_losses(model, val, range(len(val))).mean())
        run.record(0, ridge, train_loss, val_loss, ridge_chosen=ridge)


def _descend(model, config, train: DensityFrames, val: DensityFrames, run: _Run, progress: bool) -> None:
    """Mini-batch AMSGrad on the metric loss, learning rate halved on validation plateaus."""
    opt = torch.optim.Adam(list(model.heads.parameters()), lr=config.lr, amsgrad=True)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=config.plateau_patience)
    rng = np.random.default_rng(config.seed)
    bar = tqdm(range(1, config.steps + 1), desc="train density", disable=not progress)
    for step in bar:
        batch = rng.choice(len(train), size=min(config.batch_size, len(train)), replace=False)
        loss = metric_losses(model, train, batch).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % config.val_every == 0 or step == config.steps:
            with torch.no_grad():
                val_loss = float(metric_losses(model, val, range(len(val))).mean())
            sched.step(val_loss)
            run.record(step, opt.param_groups[0]["lr"], float(loss.detach()), val_loss)
            bar.set_postfix(train=f"{float(loss.detach()):.2e}", val=f"{val_loss:.2e}")
