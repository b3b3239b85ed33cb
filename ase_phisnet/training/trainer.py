"""The training loop: AMSGrad, EMA weights, plateau LR halving or cosine decay, clipping, atomic checkpoints.

A run writes into its output folder:

* ``checkpoint.safetensors``: weights, EMA weights, optimizer state and (in its metadata) the
  step, scheduler state and splits; replaced atomically after every validation, and only with
  finite numbers. ``--resume`` continues from it.
* ``best/``: the best model so far by validation loss (EMA weights), ``model.safetensors`` +
  ``config.json``, loadable with :func:`ase_phisnet.load_model`.
* ``metrics.csv``: one row per validation (and TensorBoard events when installed): the step,
  training wall time ``elapsed_s`` and CPU time ``cpu_s`` (all threads of the process, so a
  fair clock on a shared machine), learning rate, training loss and the validation metrics.

With ``energy``/``forces`` loss terms, steps from ``energy_forces_from`` on add PhiSNet's energy
and force losses (:mod:`.energy_forces`); the best-model record restarts at that step, since the
validation loss then measures more.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import __version__
from ..atomic_files import atomic_write_bytes
from ..basis import AOBasis
from ..data.location import portable_path
from ..errors import ConfigError, DatasetError, InputError, MissingFileError, TrainingDiverged
from ..model import PhiSNet, PhiSNetConfig, build_model
from ..model.io import save_model
from ..units import HARTREE, HARTREE_PER_BOHR
from .config import TrainConfig
from .data import MatrixData, load_frames, molecule_counts, pair_distance_range
from .distributed import Processes
from .energy_forces import EnergyForceTerms, element_counts, energy_force_loss, mse_plus_mae, offset_free

HARTREE_TO_MICRO = 1e6


def matrix_loss(pred: dict, targets: dict, mask: torch.Tensor, weights: dict, count=None) -> tuple[torch.Tensor, dict]:
    """Sum over targets of weight * (MSE + MAE) over the valid (unpadded) matrix elements.

    ``count``: the valid elements of the whole batch when several processes share it
    (:mod:`.distributed`); by default this batch's."""
    total, parts = 0.0, {}
    for name, w in weights.items():
        diff = (pred[name] - targets[name])[mask]
        parts[f"{name}_mae"] = diff.abs().mean().detach()
        total = total + float(w) * mse_plus_mae(diff, count)
    return total, parts


class Trainer:
    """Train a PhiSNet model from a :class:`TrainConfig`.

    Examples
    --------
    >>> trainer = Trainer(TrainConfig.from_yaml("training/ethanol-pbe-def2svp.yaml"))  # doctest: +SKIP
    >>> trainer.fit()                                                                 # doctest: +SKIP
    """

    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True):
        from ..data.splits import make_splits

        self.config = config
        self.progress = progress
        self.out = Path(config.output)
        self.dtype = getattr(torch, config.dtype)
        self.device = torch.device(config.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise InputError("device 'cuda' asked for, but torch sees no CUDA device; use --device cpu")
        self.processes, self.device = Processes.from_environment(self.device)
        torch.manual_seed(config.seed)

        frames, self.dataset_meta = load_frames(config.dataset)
        converged = np.array([bool(f["converged"]) for f in frames])
        s = config.splits
        # make_splits draws positions in the frame list; the record keeps dataset frame indices
        positions = make_splits(converged, s.n_train, s.n_val, s.n_test, seed=s.seed, include_unconverged=s.include_unconverged, train_subset=s.train_subset)
        self.splits = {k: [int(frames[p]["index"]) for p in v] for k, v in positions.items()}
        elements = sorted({int(z) for f in frames for z in f["numbers"]})
        model_cfg = dict(config.model)
        preset = model_cfg.pop("preset", None)
        heads = model_cfg.pop("heads", list(config.matrix_weights))
        base = PhiSNetConfig.from_preset(preset, elements=elements, heads=heads, **model_cfg) if preset else PhiSNetConfig(elements=elements, heads=heads, **model_cfg)
        charge = int(self.dataset_meta.get("charge") or 0)
        train_data = MatrixData([frames[p] for p in positions["train"]], AOBasis(base.basis, base.elements), list(config.matrix_weights), charge, base.core_baseline)
        val_data = MatrixData([frames[p] for p in positions["val"]], train_data.basis, train_data.targets, charge, base.core_baseline)
        self.sets = {"train": train_data, "val": val_data}
        self.ef = EnergyForceTerms(base.basis, charge) if config.energy_force_weights else None
        if self.ef and (train_data.energies is None or train_data.forces is None):
            raise DatasetError(f"{config.dataset}: energy/force loss terms asked for, but the frames store no energies and forces")

        checkpoint = self.out / "checkpoint.safetensors"
        self.step, self.best_val, self.elapsed, self.cpu_time = 0, math.inf, 0.0, 0.0
        if resume:
            if not checkpoint.exists():
                raise MissingFileError(f"--resume: no checkpoint at {checkpoint}; start the run without --resume")
            self._load_checkpoint(checkpoint)
        else:
            if checkpoint.exists():
                raise InputError(f"{checkpoint} exists: continue it with --resume, or choose another output folder")
            if config.init_from:
                new_heads, new_correction = self._init_from(config.init_from, base)
                refs = train_data.diagonal_references(range(len(train_data)))
                for head in new_heads:
                    for z, block in refs.get(head, {}).items():
                        self.model.heads[head].set_reference(z, torch.as_tensor(block))
            else:
                base.avg_neighbors = _avg_neighbors(train_data, base.cutoff)
                self._build(base)
                refs = train_data.diagonal_references(range(len(train_data)))
                for head, per_element in refs.items():
                    for z, block in per_element.items():
                        self.model.heads[head].set_reference(z, torch.as_tensor(block))
                new_correction = base.energy_correction
            if new_correction:
                self._normalize_energy_correction(train_data)
            self.ema = self._copy(self.model)
            # mini-batch sampler: a permutation of the training frames, drawn anew each epoch
            self.generator = torch.Generator().manual_seed(config.seed)
            self.order, self.cursor = torch.randperm(len(train_data), generator=self.generator), 0

    # ------------------------------------------------------------------ set-up
    def _build(self, model_config: PhiSNetConfig):
        self.model = build_model(model_config, self.dtype, self.device)
        o = self.config.optimizer
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=o.lr, amsgrad=o.amsgrad, weight_decay=o.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=o.plateau_factor, patience=o.plateau_patience, min_lr=o.min_lr)

    def _init_from(self, name_or_path, requested: PhiSNetConfig) -> tuple[list[str], bool]:
        """Start from a trained model's weights; its architecture must be the one asked for,
        except that the config may add heads and the energy correction. Returns the added heads
        (randomly initialised) and whether the correction was added (its output at zero)."""
        from ..model.io import load_model, load_weights

        start = load_model(name_or_path, device=self.device, dtype=self.dtype)
        mine, theirs = requested.to_dict(), start.config.to_dict()
        differ = sorted(k for k in mine if k not in ("avg_neighbors", "heads", "core_baseline", "atomic_energies", "energy_correction") and mine[k] != theirs[k])
        missing = [h for h in theirs["heads"] if h not in mine["heads"]]
        if differ or missing:
            what = [f"{k}={theirs[k]!r} vs {mine[k]!r}" for k in differ] + [f"heads {theirs['heads']} not all in {mine['heads']}"] * bool(missing)
            raise ConfigError(f"init_from {name_or_path}: its architecture differs from the config's: " + ", ".join(what))
        if "hcore" in theirs["heads"] and mine["core_baseline"] != theirs["core_baseline"]:
            raise ConfigError(f"init_from {name_or_path}: its hcore head has core_baseline={theirs['core_baseline']}, the config asks for {mine['core_baseline']}")
        if theirs.get("energy_correction") and not mine["energy_correction"]:
            raise ConfigError(f"init_from {name_or_path}: it has a learned energy correction; keep energy_correction: true in the model config")
        config = PhiSNetConfig.from_dict({**theirs, "heads": mine["heads"], "core_baseline": mine["core_baseline"], "energy_correction": mine["energy_correction"]})
        self._build(config)
        new_heads = [h for h in mine["heads"] if h not in theirs["heads"]]
        # an added energy correction starts at zero: the energies are at first those of the start model
        new_correction = bool(mine["energy_correction"] and not theirs.get("energy_correction"))
        new_modules = tuple(f"heads.{h}." for h in new_heads) + (("energy_correction.",) if new_correction else ())
        try:
            load_weights(self.model, start.state_dict(), new=new_modules)
        except ValueError as err:
            raise ConfigError(f"init_from {name_or_path}: {err}") from None
        return new_heads, new_correction

    @torch.no_grad()
    def _normalize_energy_correction(self, data: MatrixData, n_frames: int = 200):
        """Fix the new energy readout's input normalisation to the invariants of the model's atom
        features on (up to ``n_frames``) training frames."""
        idx = list(range(min(n_frames, len(data))))
        graph = self.model.graph([data.numbers[i] for i in idx], [data.positions[i] for i in idx])
        x, _, _ = self.model.atom_features(graph)
        self.model.energy_correction.set_normalization(x)

    @staticmethod
    def _copy(model: PhiSNet) -> PhiSNet:
        """A fresh model with the same weights (``copy.deepcopy`` would turn e3nn's compiled
        constants into extra state-dict entries)."""
        param = next(model.parameters())
        twin = build_model(model.config, param.dtype, param.device)
        twin.load_state_dict(model.state_dict())
        return twin

    def _load_checkpoint(self, path: Path):
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads(fh.metadata()["state"])
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        if meta["splits"] != self.splits:
            raise ConfigError(f"{path} was trained on other splits than this config gives; resume with the config the run started with")
        self._build(PhiSNetConfig.from_dict(meta["model"]))
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        self.ema = self._copy(self.model)
        self.ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        opt_state = {"param_groups": meta["param_groups"], "state": {}}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, idx, key = k.split(".", 2)
                opt_state["state"].setdefault(int(idx), {})[key] = v
        self.optimizer.load_state_dict(opt_state)
        self.scheduler.load_state_dict(meta["scheduler"])
        self.step, self.best_val, self.elapsed = meta["step"], meta["best_val"], meta["elapsed"]
        self.cpu_time = meta.get("cpu_time", 0.0)
        self.generator = torch.Generator()
        self.generator.set_state(tensors["sampler.rng"])
        self.order, self.cursor = tensors["sampler.order"], meta["cursor"]

    def _save_checkpoint(self):
        from safetensors.torch import save

        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in self.ema.state_dict().items()})
        tensors["sampler.rng"] = self.generator.get_state()
        tensors["sampler.order"] = self.order.clone()
        opt = self.optimizer.state_dict()
        for idx, state in opt["state"].items():
            for key, value in state.items():
                tensors[f"optim.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
        meta = {
            "step": self.step,
            "best_val": self.best_val,
            "cursor": self.cursor,
            "elapsed": self.elapsed,
            "cpu_time": self.cpu_time,
            "model": self.model.config.to_dict(),
            "param_groups": opt["param_groups"],
            "scheduler": self.scheduler.state_dict(),
            "splits": self.splits,
            "train_config": self.config.to_dict(),
        }
        data = save(tensors, metadata={"state": json.dumps(meta)})
        atomic_write_bytes(self.out / "checkpoint.safetensors", lambda fh: fh.write(data))

    # ------------------------------------------------------------------ loop
    def _ema_update(self):
        """Move the weight average towards the weights; frozen weights are left as they are (the
        average of a constant is that constant, where ``e * d + p * (1 - d)`` would drift by
        rounding)."""
        decay = min(self.config.optimizer.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.model.parameters()):
                if p.requires_grad:
                    e.mul_(decay).add_(p.detach(), alpha=1 - decay)

    def _set_lr(self):
        """Linear ramp over ``optimizer.warmup_steps``, then the cosine decay if
        ``cosine_steps`` is set (else the plateau schedule takes over). Both are functions of
        the step, so a resumed run picks them up where it stopped."""
        o = self.config.optimizer
        if self.step < o.warmup_steps:
            lr = o.lr * (self.step + 1) / o.warmup_steps
        elif o.cosine_steps:
            t = min(1.0, (self.step - o.warmup_steps) / o.cosine_steps)
            lr = o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + math.cos(math.pi * t))
        else:
            return
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _check_trainable(self):
        names = [n for n, _ in self.model.named_parameters()]
        unmatched = [pre for pre in self.config.trainable or [] if not any(n.startswith(pre) for n in names)]
        if unmatched:
            tops = sorted({".".join(n.split(".")[:2]) for n in names})
            raise ConfigError(f"trainable prefix(es) {unmatched} match no weight; weights start with e.g. {tops[:8]}")

    def _set_trainable(self):
        """Train only the weights named by ``trainable`` (until ``trainable_until``), or all."""
        cfg = self.config
        prefixes = cfg.trainable if cfg.trainable and (cfg.trainable_until is None or self.step < cfg.trainable_until) else None
        for name, p in self.model.named_parameters():
            p.requires_grad_(prefixes is None or any(name.startswith(pre) for pre in prefixes))

    def energy_forces_active(self) -> bool:
        """Whether the energy/force terms are part of the loss at the current step."""
        return self.ef is not None and self.step >= self.config.energy_forces_from

    def validate(self, model=None) -> dict:
        """Loss and matrix MAE (µEh) of the EMA model on the validation split; with E/F terms,
        also energy (meV) and force (meV/Å) MAEs, and the loss includes them once active."""
        model = model or self.ema
        data = self.sets["val"]
        weights = self.config.matrix_weights
        sums = {f"{t}_mae": 0.0 for t in weights}
        ef_sums = {"forces_mae": 0.0, "orbital_energies_mae": 0.0}
        ef_weights = {k: w for k, w in self.config.energy_force_weights.items() if k != "energy"}
        energy_errors = []  # Hartree, per molecule; the energy term is scored over the whole split
        loss_sum, count = 0.0, 0
        for start in range(0, len(data), 64):
            idx = list(range(start, min(start + 64, len(data))))
            if self.ef is not None:
                E, F, pred, eps = self.ef(model, [data.numbers[i] for i in idx], [data.positions[i] for i in idx], create_graph=False, return_orbital_energies=True)
                ef_loss, ef_parts = energy_force_loss(
                    E.detach(), [f.detach() for f in F], data.energies[idx], [data.forces[i] for i in idx], ef_weights,
                    [e.detach() for e in eps], [data.occupied_eps[i] for i in idx],
                )
                energy_errors.append((E.detach().cpu().double() - data.energies[idx]).numpy())
                for k in ef_sums:
                    ef_sums[k] += float(ef_parts[k]) * len(idx)
                pred = {k: v.detach() for k, v in pred.items()}
                _, targets, mask = data.batch(idx, model)
            else:
                with torch.no_grad():
                    graph, targets, mask = data.batch(idx, model)
                    pred = model(graph)
                ef_loss = 0.0
            loss, parts = matrix_loss(pred, targets, mask, weights)
            loss_sum += (float(loss) + float(ef_loss) * self.energy_forces_active()) * len(idx)
            for k, v in parts.items():
                sums[k] += float(v) * len(idx)
            count += len(idx)
        out = {"val_loss": loss_sum / count}
        out.update({f"val_{k}_uEh": v / count * HARTREE_TO_MICRO for k, v in sums.items()})
        if self.ef is not None:
            dE = np.concatenate(energy_errors)
            if self.config.validation_energy == "offset_free":
                scored = offset_free(dE, element_counts(data.numbers, self.model.config.elements))
                out["val_energy_offset_free_mae_meV"] = float(np.abs(scored).mean()) * HARTREE * 1e3
            else:
                scored = dE
            w_E = self.config.energy_force_weights.get("energy", 0.0)
            out["val_loss"] += w_E * float(mse_plus_mae(scored)) * self.energy_forces_active()
            out["val_energy_mae_meV"] = float(np.abs(dE).mean()) * HARTREE * 1e3
            out["val_energy_offset_meV"] = float(dE.mean()) * HARTREE * 1e3
            out["val_forces_mae_meV_per_A"] = ef_sums["forces_mae"] / count * HARTREE_PER_BOHR * 1e3
            out["val_eps_mae_uEh"] = ef_sums["orbital_energies_mae"] / count * HARTREE_TO_MICRO
        return out

    def fit(self) -> dict:
        """Train until ``max_steps`` (or ``max_minutes``); returns the last validation metrics."""
        cfg = self.config
        main = self.processes.is_main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        writer = _tensorboard(self.out) if main else None
        self._check_trainable()
        self.processes.check_same_parameters(self.model)
        train = self.sets["train"]
        n_train = len(train)
        batch_size = min(cfg.batch_size, n_train)
        last = {}
        start_time, start_elapsed = time.time(), self.elapsed
        start_cpu, start_cpu_time = time.process_time(), self.cpu_time
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc=cfg.name, disable=not (self.progress and main), dynamic_ncols=True)
        running = None
        while self.step < cfg.max_steps:
            if self.cursor + batch_size > n_train:
                self.order, self.cursor = torch.randperm(n_train, generator=self.generator), 0
            idx = self.processes.shard(self.order[self.cursor : self.cursor + batch_size].tolist())
            self.cursor += batch_size
            self.model.train()
            self._set_trainable()
            if self.energy_forces_active():
                with_eps = "orbital_energies" in cfg.energy_force_weights
                E, F, pred, *eps = self.ef(self.model, [train.numbers[i] for i in idx], [train.positions[i] for i in idx], return_orbital_energies=with_eps)
                _, targets, mask = train.batch(idx, self.model)
                counts = self._batch_counts(mask, idx)
                loss, parts = matrix_loss(pred, targets, mask, cfg.matrix_weights, counts["matrices"])
                ef_loss, _ = energy_force_loss(
                    E, F, train.energies[idx], [train.forces[i] for i in idx], cfg.energy_force_weights,
                    eps[0] if with_eps else None, [train.occupied_eps[i] for i in idx] if with_eps else None, counts,
                )
                loss = loss + ef_loss
            else:
                graph, targets, mask = train.batch(idx, self.model)
                loss, parts = matrix_loss(self.model(graph), targets, mask, cfg.matrix_weights, self._batch_counts(mask, idx)["matrices"])
            batch_loss = float(self.processes.sum(loss.detach().clone()))  # the loss of the whole batch
            if not math.isfinite(batch_loss):
                raise TrainingDiverged(
                    f"loss is {batch_loss} at step {self.step + 1}; stopped. The last good checkpoint "
                    f"({self.out / 'checkpoint.safetensors'}) is intact: resume with a lower learning rate"
                )
            self._set_lr()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.processes.sum_gradients(self.model.parameters())
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optimizer.clip_grad)
            self.optimizer.step()
            self.step += 1
            self._ema_update()
            running = batch_loss if running is None else 0.98 * running + 0.02 * batch_loss
            bar.update(1)
            self.elapsed = start_elapsed + time.time() - start_time
            self.cpu_time = start_cpu_time + time.process_time() - start_cpu
            out_of_time = self.processes.any(cfg.max_minutes is not None and self.elapsed > 60 * cfg.max_minutes, self.device)
            if self.step % cfg.val_every == 0 or self.step == cfg.max_steps or out_of_time:
                last = self.validate()
                if not math.isfinite(last["val_loss"]):
                    raise TrainingDiverged(f"validation loss is {last['val_loss']} at step {self.step}; stopped, last good checkpoint intact")
                if self.ef is not None and self.step - cfg.val_every < cfg.energy_forces_from <= self.step:
                    # the validation loss now includes the E/F terms: restart the records
                    self.best_val = math.inf
                    self.scheduler.best = math.inf
                    self.scheduler.num_bad_epochs = 0
                if not cfg.optimizer.cosine_steps:
                    self.scheduler.step(last["val_loss"])
                lr = self.optimizer.param_groups[0]["lr"]
                row = {"step": self.step, "elapsed_s": round(self.elapsed, 1), "cpu_s": round(self.cpu_time, 1), "lr": lr, "train_loss": running, **last}
                if main:
                    _append_csv(self.out / "metrics.csv", row)
                if writer:
                    for k, v in row.items():
                        if k != "step":
                            writer.add_scalar(k, v, self.step)
                if last["val_loss"] < self.best_val:
                    self.best_val = last["val_loss"]
                    if main:
                        self.export(self.out / "best", last)
                if main:
                    self._save_checkpoint()
                key = next(k for k in last if k.endswith("_uEh"))
                shown = {key.replace("val_", "").replace("_uEh", ""): f"{last[key]:.1f}µEh"}
                if "val_energy_mae_meV" in last:
                    shown.update(E=f"{last['val_energy_mae_meV']:.2f}meV", F=f"{last['val_forces_mae_meV_per_A']:.1f}meV/Å", eps=f"{last['val_eps_mae_uEh']:.1f}µEh")
                bar.set_postfix(loss=f"{running:.2e}", **shown, lr=f"{lr:.1e}")
            if out_of_time:
                break
        bar.close()
        if writer:
            writer.close()
        return last

    def _batch_counts(self, mask: torch.Tensor, idx: list[int]) -> dict:
        """What each loss term averages over, in the whole batch of every process: valid matrix
        elements, molecules, force components and occupied orbital energies. With one process
        every count is ``None``: the terms are plain means over this batch."""
        keys = ("matrices", "energy", "forces", "orbital_energies")
        if self.processes.world == 1:
            return dict.fromkeys(keys)
        train = self.sets["train"]
        n_occupied = sum((int(train.numbers[i].sum()) - train.charge) // 2 for i in idx)  # closed shell
        local = [float(mask.sum()), float(len(idx)), float(sum(3 * len(train.numbers[i]) for i in idx)), float(n_occupied)]
        total = self.processes.sum(torch.tensor(local, dtype=torch.float64, device=self.device)).tolist()
        return dict(zip(keys, total))

    def training_range(self) -> dict:
        """Shortest/longest distance (Å) per element pair in the training frames."""
        from ..units import BOHR

        train = self.sets["train"]
        return pair_distance_range(train.numbers, [p.numpy() * BOHR for p in train.positions])

    def export(self, directory, val_metrics: dict | None = None):
        """Write the EMA model with its provenance (data, splits, training state)."""
        import platform

        cfg = self.config
        meta = {
            "reference": {k: self.dataset_meta.get(k) for k in ("method", "xc", "basis", "grids_level", "charge", "multiplicity", "pyscf_version", "source")},
            "dataset": [portable_path(d) for d in cfg.dataset] if isinstance(cfg.dataset, list) else portable_path(cfg.dataset),
            "splits": {"seed": cfg.splits.seed, "n_train": len(self.splits["train"]), "n_val": len(self.splits["val"]), **self.splits},
            "training": {
                "preset": self.model.config.preset,
                "steps": self.step,
                "wall_time_s": round(self.elapsed, 1),
                "hardware": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {self.device}",
                "dtype": cfg.dtype,
                "batch_size": cfg.batch_size,
                "loss": cfg.loss,
                "torch": torch.__version__,
                "package_version": __version__,
            },
            "validation": val_metrics or {},
            "training_range": {"pair_distance_A": self.training_range(), "molecules": molecule_counts(self.sets["train"].numbers)},
        }
        state = {k: v.to(torch.float64) if v.is_floating_point() else v for k, v in self.ema.state_dict().items()}
        return save_model(self.ema, directory, metadata=meta, state_dict=state)


def _avg_neighbors(data: MatrixData, cutoff: float) -> float:
    counts = [((torch.cdist(p, p) < cutoff).sum() - len(p)).item() / len(p) for p in data.positions[:200]]
    return max(float(np.mean(counts)), 1.0)


def _append_csv(path: Path, row: dict):
    """Append a row; a row with new columns (a run resumed by a newer version) rewrites the
    file under the wider header, older rows left blank there."""
    rows, header = [], None
    if path.exists():
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            header, rows = reader.fieldnames, list(reader)
    if header is not None and not set(row) <= set(header):
        fields = header + [k for k in row if k not in header]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows + [row])
        data = text.getvalue().encode()
        atomic_write_bytes(path, lambda fh: fh.write(data))
        return
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header or list(row))
        if header is None:
            writer.writeheader()
        writer.writerow(row)


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: the CSV is the record
        return None
    return SummaryWriter(str(out / "tensorboard"))
