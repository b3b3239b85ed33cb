"""Training the atom-centred density model: gradient descent on the density metric.

For each frame the reference coefficients are the Coulomb-metric fit of the DFT density with
the exact electron count (:func:`~ase_phisnet.density.fitting.fit_density`). The loss of a
molecule is SALTED's (c - c_ref)^T S_aux (c - c_ref), the integral of the squared density
error (e^2/Bohr^3), averaged over a mini-batch; AMSGrad, learning rate halved on plateaus.

The backbone (a trained Hamiltonian model) is frozen by default, so its atom features are
computed once per frame and the per-element heads train on them quickly.

Configuration (YAML)::

    name: water-density-jfit
    dataset: ../shared/data/water_pbe_def2svp_500K.h5
    backbone: water-pbe-def2svp        # its recorded train/val/test splits are used
    auxbasis: def2-universal-jfit
    steps: 4000
    batch_size: 32
    lr: 1.0e-2
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

from ..molecule import build_mol, check_charge_multiplicity
from .fitting import fit_density


@dataclass
class DensityTrainingConfig:
    """Settings of a density-model run (see the module docstring for the YAML form)."""

    name: str
    dataset: str
    backbone: str = "water-pbe-def2svp"
    auxbasis: str = "def2-universal-jfit"
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

    @classmethod
    def from_yaml(cls, path) -> "DensityTrainingConfig":
        import yaml

        data = yaml.safe_load(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) - known:
            raise ValueError(f"{path}: unknown key(s) {sorted(set(data or {}) - known)}; accepted: {sorted(known)}")
        config = cls(**data)
        for name in ("steps", "batch_size", "val_every"):
            if int(getattr(config, name)) < 1:
                raise ValueError(f"{path}: {name} must be a positive integer, got {getattr(config, name)!r}")
        if not config.lr > 0:
            raise ValueError(f"{path}: lr must be positive, got {config.lr!r}")
        return config


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
                x, _, _ = model.backbone.atom_features(graph)
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


def train_density(config: DensityTrainingConfig, progress: bool = True, device: str = "cpu") -> Path:
    """Train the density heads on a frozen backbone; returns the folder of the best model."""
    from ..cli.evaluate import select_split
    from ..model.io import load_model
    from ..training.data import load_frames
    from .model import DensityModel, save_density_model

    backbone = load_model(config.backbone, dtype=torch.float64)
    model = DensityModel(backbone, config.auxbasis).double()
    if config.init_from:
        from .model import load_density_model

        start = load_density_model(config.init_from)
        if start.auxbasis != model.auxbasis:
            raise ValueError(f"init_from {config.init_from} uses auxiliary basis {start.auxbasis!r}, this run {model.auxbasis!r}")
        model.heads.load_state_dict(start.heads.state_dict())
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    frames, meta = load_frames(config.dataset)
    train = DensityFrames(model, select_split(backbone, frames, "train")[: config.max_train_frames], progress, "fit train")
    val = DensityFrames(model, select_split(backbone, frames, "val")[: config.max_val_frames], progress, "fit val")
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    params = [p for p in model.heads.parameters()]
    opt = torch.optim.Adam(params, lr=config.lr, amsgrad=True)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=config.plateau_patience)
    rng = np.random.default_rng(config.seed)
    best, started = float("inf"), time.perf_counter()
    log = open(out / "metrics.csv", "w", newline="")
    writer = csv.writer(log)
    writer.writerow(["step", "elapsed_s", "lr", "train_loss", "val_loss"])
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
            writer.writerow([step, round(time.perf_counter() - started, 1), opt.param_groups[0]["lr"], float(loss.detach()), val_loss])
            log.flush()
            bar.set_postfix(train=f"{float(loss.detach()):.2e}", val=f"{val_loss:.2e}")
            if val_loss < best:
                best = val_loss
                metadata = {
                    "training": {**asdict(config), "step": step, "wall_s": round(time.perf_counter() - started, 1)},
                    "validation": {"val_metric_loss": val_loss},
                    "reference": {k: meta.get(k) for k in ("method", "xc", "basis", "grids_level") if k in meta},
                    "splits": getattr(backbone, "metadata", {}).get("splits", {}),
                }
                save_density_model(model, out / "best", metadata)
    log.close()
    return out / "best"
