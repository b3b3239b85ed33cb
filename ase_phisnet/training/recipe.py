"""Recipes: every stage that makes one model, in one YAML file, run in order and resumed.

A recipe is a YAML mapping with a ``stages:`` list (a YAML file without ``stages:`` is the
config of a single run, :class:`~ase_phisnet.training.config.TrainConfig`)::

    name: water-pbe-def2svp                  # the model's name (default: the file's stem)
    output: runs/water-pbe-def2svp           # run folder, one sub-folder per stage (default runs/NAME)
    train_defaults:                          # keys every train stage starts from
      dataset: ../shared/data/water_pbe_def2svp_500K.h5
      splits: {n_train: 500, n_val: 500, seed: 0}
    stages:
      - name: stage1
        note: F~ from scratch                # kept in the shipped model's record of its stages
        train:                               # a TrainConfig inline; name and output are the recipe's
          model: {preset: small, features: 32}
          loss: {fock: 1.0}
          max_steps: 32750
      - name: stage2
        train:
          init_from: {stage: stage1}         # starts from stage1's best model
          model: {preset: small, features: 32}
          loss: {fock: 1.0}
          optimizer: {lr: 4.0e-4}
          max_steps: 2500
    ship:                                    # last: test-split figures, then the model folder
      fit_atomic_energies: true

Each stage has exactly one of these kinds:

``train``
    A :class:`TrainConfig` mapping; a key given here replaces the ``train_defaults`` one whole.
    ``fit_atomic_energies: true`` beside ``train:`` fits per-element energies (Hartree) to the
    stage's training split when the stage has finished; later stages start from that model.
``density``
    A density-model config (:class:`ase_phisnet.density.training.DensityTrainingConfig`, with
    ``backbone`` given); run by :mod:`ase_phisnet.recipes`, which can import the density code.
``command``
    The arguments of a program, run from the working directory: ``phisnet`` and ``python`` as
    the program mean this package's command and this interpreter. ``output:`` names the file or
    folder the command makes inside the stage's folder, written ``{output}`` among the
    arguments; ``env:`` adds environment variables. A killed command is run again from the
    start, so it must be safe to repeat (``phisnet data label`` resumes its own work).

``{stage: NAME}`` stands for what the earlier stage NAME made: the model folder of a train
stage (``best/``, or ``fitted/`` when it fits atomic energies) or of a density stage
(``best/``), the output of a command stage. ``{stage: NAME, path: FILE}`` is a file inside it.
References go where a path goes: ``init_from`` and ``dataset`` of a train stage, ``backbone``,
``init_from`` and ``dataset`` of a density stage, a command's arguments, and ``dataset`` and
``attach`` of ``ship:``.

A train stage may name ``checkpoint: training/checkpoints/NAME``: when the stage has finished,
its best model is written there too (float32 weights where it trained in float32), with the
stage's record (``metadata["recipe_stage"]``), to be committed. A checkout without the run
folder then counts the stage as done, its model being the committed one; the stages before it
that nothing still to run needs are not trained again. A long backbone is trained over several
sittings this way: each adds a stage that starts from the last one, all naming one checkpoint
folder, which holds the latest finished stage's model (an earlier stage run again never
overwrites a later stage's checkpoint).

State: a stage folder gets ``stage.json`` when the stage starts, holding the settings it runs
with, and ``"done": true`` when it has finished. Running the recipe again skips finished
stages, continues a train stage from its checkpoint (the :class:`~ase_phisnet.training.Trainer`
resumes to the weights an uninterrupted run reaches) and runs an unfinished command or density
stage again. A stage whose recipe settings changed after it started, or whose starting model
was made again since, is refused, naming the stage: the stages after it would be built on
something else. The one change accepted is ``max_steps`` of an unfinished train stage, to no
fewer steps than its checkpoint holds: a run stopped by hand is ended where it stands (set
``max_steps`` to its checkpoint's step and run the recipe again), or run on for longer.

This module holds the format, the states and the train and command stages; the density stages
and the ship step need the evaluation and density code and live in :mod:`ase_phisnet.recipes`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..atomic_files import atomic_write_text
from ..errors import ConfigError, MissingFileError, StageFailed
from .config import TrainConfig

#: Top-level keys of a recipe.
RECIPE_KEYS = ("name", "output", "train_defaults", "stages", "ship")
#: Stage kinds; a stage has exactly one of these keys.
STAGE_KINDS = ("train", "density", "command")
#: Keys a stage may have, by kind.
STAGE_KEYS = {
    "train": ("name", "note", "train", "fit_atomic_energies", "checkpoint"),
    "density": ("name", "note", "density"),
    "command": ("name", "note", "command", "output", "env"),
}
#: Keys of a stage body that may hold ``{stage: NAME}``, and the kinds of stage they may name.
REFERENCE_KEYS = {
    "train": {"init_from": ("train",), "dataset": ("command",)},
    "density": {"backbone": ("train",), "init_from": ("density",), "dataset": ("command",)},
}
#: The key naming the trained model a stage starts from (its base), by kind.
MODEL_KEY = {"train": "init_from", "density": "backbone"}
#: Keys of ``ship:``, by the kind of the shipped stage.
SHIP_KEYS = {
    "train": ("name", "stage", "dataset", "to", "fit_atomic_energies", "attach"),
    "density": ("name", "stage", "dataset", "to", "frames", "keep_frames", "one_step"),
}
#: Stage and model names: a folder name without spaces.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Names a stage cannot have (the ship step's folder is ``RUN/ship``).
RESERVED = ("ship",)
#: The state file in each stage folder.
STATE_FILE = "stage.json"
#: The ship step's record in the run folder.
SHIP_STATE = "ship.json"
#: Programs of a command stage that mean this interpreter and this package's command.
PROGRAMS = {"python": [sys.executable], "phisnet": [sys.executable, "-m", "ase_phisnet.cli.main"]}


@dataclass
class Stage:
    """One stage of a recipe.

    Attributes
    ----------
    name : str
        Unique in the recipe; the stage's folder is ``RUN/NAME``.
    kind : {"train", "density", "command"}
    body : dict or list
        The stage's config (train: with ``train_defaults`` merged in) or, for a command, its
        arguments; references are not yet resolved.
    note : str or None
        What the stage does, for the shipped model's record.
    fit_atomic_energies : bool
        Train stages: fit per-element energies to the training split at the end.
    output : str or None
        Command stages: the file or folder the command makes, inside the stage folder.
    env : dict
        Command stages: extra environment variables.
    checkpoint : str or None
        Train stages: where the finished stage's best model is written to be committed.
    """

    name: str
    kind: str
    body: dict | list
    note: str | None = None
    fit_atomic_energies: bool = False
    output: str | None = None
    env: dict = field(default_factory=dict)
    checkpoint: str | None = None


@dataclass
class StageStatus:
    """Where a stage stands: ``state`` is ``"done"``, ``"partial"`` or ``"not started"``;
    ``text`` says it for a person (``"partial at step 1250 of 2500"``)."""

    state: str
    text: str
    step: int | None = None


@dataclass
class Recipe:
    """A parsed recipe (see the module docstring); build it with :func:`load_recipe`."""

    path: Path
    name: str
    output: Path
    stages: list[Stage]
    ship: dict

    # ------------------------------------------------------------------ layout
    def stage(self, name: str) -> Stage:
        """The stage called ``name``."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ConfigError(f"{self.path}: no stage {name!r}; stages: {[s.name for s in self.stages]}")

    def stage_dir(self, stage: Stage) -> Path:
        """The stage's folder, ``RUN/NAME``."""
        return self.output / stage.name

    def product(self, stage: Stage) -> Path | None:
        """What the stage makes: a model folder (train, density) or its output (command); the
        committed checkpoint of a train stage that has not run here (:meth:`committed`)."""
        folder = self.stage_dir(stage)
        if stage.kind == "train" and not (folder / STATE_FILE).is_file() and self.committed(stage) is not None:
            return Path(stage.checkpoint)
        if stage.kind == "train":
            return folder / ("fitted" if stage.fit_atomic_energies else "best")
        if stage.kind == "density":
            return folder / "best"
        return folder / stage.output if stage.output else None

    def resolve(self, value):
        """``value`` with every ``{stage: NAME[, path: FILE]}`` replaced by that path (a string)."""
        if _is_reference(value):
            path = self.product(self.stage(value["stage"]))
            return str(path / value["path"]) if "path" in value else str(path)
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def settings(self, stage: Stage) -> dict:
        """The stage's settings as the recipe gives them (references as ``{stage: NAME}``, so a
        moved run folder keeps them): what ``stage.json`` records."""
        if stage.kind == "command":
            out = {"command": stage.body, "output": stage.output, "env": stage.env}
        else:
            out = dict(stage.body)
            if stage.kind == "train":
                out["fit_atomic_energies"] = stage.fit_atomic_energies
        return json.loads(json.dumps(out))

    def train_config(self, stage: Stage, device: str | None = None) -> TrainConfig:
        """The :class:`TrainConfig` of a train stage (name ``RECIPE/STAGE``, output its folder)."""
        body = {**self.resolve(stage.body), "name": f"{self.name}/{stage.name}", "output": str(self.stage_dir(stage))}
        config = TrainConfig.from_dict(body, where=f"{self.path}: stage {stage.name!r}, train")
        if device is not None:
            config.device = device
        return config

    def command_argv(self, stage: Stage) -> list[str]:
        """The program and arguments of a command stage, ready for :func:`subprocess.run`."""
        output = str(self.product(stage)) if stage.output else None
        args = [str(a) if output is None else str(a).replace("{output}", output) for a in self.resolve(stage.body)]
        return PROGRAMS.get(args[0], [args[0]]) + args[1:]

    def chain(self, stage: Stage) -> list[Stage]:
        """The stages whose models led to ``stage``'s, first to last (through ``init_from``)."""
        out = [stage]
        while out[0].kind == "train" and _is_reference(out[0].body.get("init_from")):
            out.insert(0, self.stage(out[0].body["init_from"]["stage"]))
        return out

    # ------------------------------------------------------------------ ship
    def shipped_stage(self) -> Stage:
        """The stage whose model the ship step ships (``ship.stage``, else the last model stage)."""
        if "stage" in self.ship:
            return self.stage(self.ship["stage"])
        return [s for s in self.stages if s.kind in ("train", "density")][-1]

    @property
    def ship_name(self) -> str:
        """The shipped model's name (``ship.name``, else the recipe's)."""
        return self.ship.get("name", self.name)

    def ship_dir(self) -> Path:
        """Where the ship step writes the model: ``ship.to``, else ``RUN/ship/NAME``."""
        return Path(self.ship["to"]) if "to" in self.ship else self.output / "ship" / self.ship_name

    def ship_dataset(self) -> str | list[str]:
        """The dataset of the ship step's figures (``ship.dataset``, else the shipped stage's; a
        list where the stage trained on several)."""
        value = self.resolve(self.ship["dataset"] if "dataset" in self.ship else self.shipped_stage().body["dataset"])
        return [str(v) for v in value] if isinstance(value, list) else str(value)

    # ------------------------------------------------------------------ state
    def committed(self, stage: Stage) -> dict | None:
        """The record of the stage's committed checkpoint (its ``stage.json`` when it was written),
        or None: no ``checkpoint:``, nothing there, or a model another stage or recipe made."""
        record = checkpoint_record(stage.checkpoint) if stage.checkpoint else {}
        if (record.get("recipe"), record.get("stage")) != (self.name, stage.name):
            return None
        return record.get("state")

    def read_state(self, stage: Stage) -> dict | None:
        """The stage's ``stage.json`` (or its committed record, where the stage has not run
        here), or None before it started."""
        path = self.stage_dir(stage) / STATE_FILE
        if not path.is_file():
            return self.committed(stage) if stage.kind == "train" else None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not valid JSON ({err}); remove the folder {self.stage_dir(stage)} to run stage {stage.name!r} again") from None

    def status(self, stage: Stage) -> StageStatus:
        """Done, partial (at which step) or not started; reads files only."""
        state = self.read_state(stage)
        if state and state.get("done"):
            if stage.kind == "train" and not (self.stage_dir(stage) / STATE_FILE).is_file():
                return StageStatus("done", f"committed: {stage.checkpoint}, best at step {state.get('steps')}", state.get("run_steps"))
            if stage.kind == "train":
                return StageStatus("done", f"done: best at step {state.get('steps')}, {state.get('run_steps')} steps run", state.get("run_steps"))
            return StageStatus("done", "done")
        checkpoint = self.stage_dir(stage) / "checkpoint.safetensors"
        if stage.kind == "train" and checkpoint.is_file():
            step = checkpoint_step(checkpoint)
            return StageStatus("partial", f"partial at step {step} of {stage.body.get('max_steps', '?')}", step)
        if state is not None:
            text = "partial: started, no checkpoint yet" if stage.kind == "train" else "partial: runs again from the start"
            return StageStatus("partial", text)
        return StageStatus("not started", "not started")

    def inputs(self, stage: Stage) -> dict:
        """The trained model the stage starts from: ``{"init_from"|"backbone": {"name"|"stage", "weights_sha256"}}``.

        Empty for a train stage from scratch and for command stages.
        """
        key = MODEL_KEY.get(stage.kind)
        value = stage.body.get(key) if key else None
        if value is None:
            return {}
        if _is_reference(value):
            return {key: {"stage": value["stage"], "weights_sha256": weights_sha256(self.resolve(value))}}
        return {key: {"name": str(value), "weights_sha256": weights_sha256(value)}}

    def check_recorded(self, stage: Stage) -> dict | None:
        """The stage's record, after checking that it was run with today's settings and inputs.

        Raises
        ------
        ConfigError
            The recipe's settings of a started stage changed, or the in-recipe model it
            started from was made again since.
        """
        state = self.read_state(stage)
        if state is None:
            return None
        folder = self.stage_dir(stage)
        recorded, now = state.get("settings", {}), self.settings(stage)
        if recorded != now and self._max_steps_changed_only(stage, state, recorded, now):
            state = {**state, "settings": now}
            atomic_write_text(folder / STATE_FILE, json.dumps(state, indent=2) + "\n")
            recorded = now
        if recorded != now:
            changed = sorted(k for k in set(recorded) | set(now) if recorded.get(k) != now.get(k))
            raise ConfigError(
                f"{self.path}: stage {stage.name!r} was started with other settings ({', '.join(changed)} changed since); "
                f"put the recipe back as it was, or remove {folder} (and the folders of the stages after it) to run it again"
            )
        here = (folder / STATE_FILE).is_file()  # a committed record names inputs that need not be here
        for record in state.get("inputs", {}).values():
            source = Path(self.resolve({"stage": record["stage"]})) if "stage" in record else None
            if here and source is not None and (source / "config.json").is_file():  # gone: superseded by a committed stage
                current = weights_sha256(source)
                if current != record["weights_sha256"]:
                    raise ConfigError(
                        f"{self.path}: stage {stage.name!r} started from stage {record['stage']!r}'s model with weights "
                        f"{record['weights_sha256'][:12]}..., which has since been made again ({current[:12]}...); remove {folder} "
                        "(and the folders of the stages after it) to run it on the new model"
                    )
        return state

    def _max_steps_changed_only(self, stage: Stage, state: dict, recorded: dict, now: dict) -> bool:
        """True when only ``max_steps`` of an unfinished train stage changed, to no fewer steps
        than its checkpoint holds (a run stopped by hand, ended where it stands or run on)."""
        if stage.kind != "train" or state.get("done") or not (self.stage_dir(stage) / STATE_FILE).is_file():
            return False
        if {k for k in set(recorded) | set(now) if recorded.get(k) != now.get(k)} != {"max_steps"}:
            return False
        checkpoint = self.stage_dir(stage) / "checkpoint.safetensors"
        done_steps = checkpoint_step(checkpoint) if checkpoint.is_file() else 0
        return isinstance(now.get("max_steps"), int) and now["max_steps"] >= done_steps

    def begin(self, stage: Stage) -> dict:
        """Record that the stage starts (or continues): writes ``stage.json`` the first time."""
        state = self.check_recorded(stage)
        if state is None:
            state = {"stage": stage.name, "kind": stage.kind, "settings": self.settings(stage), "inputs": self.inputs(stage), "done": False}
            self.stage_dir(stage).mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.stage_dir(stage) / STATE_FILE, json.dumps(state, indent=2) + "\n")
        return state

    def finish(self, stage: Stage, record: dict) -> dict:
        """Mark the stage done, with ``record`` (steps, wall time, model checksum, ...)."""
        state = {**self.begin(stage), **record, "done": True}
        atomic_write_text(self.stage_dir(stage) / STATE_FILE, json.dumps(state, indent=2) + "\n")
        return state


# ---------------------------------------------------------------------- running
def run_train_stage(recipe: Recipe, stage: Stage, device: str | None = None, progress: bool = True) -> dict:
    """Train (or continue training) one train stage to its end; returns its ``stage.json``.

    A checkpoint in the stage folder is resumed; otherwise the run starts (from ``init_from``
    or from scratch). With ``fit_atomic_energies`` the best model gets per-element energies
    (Hartree) fitted to the stage's training split and is written to ``fitted/``.
    """
    from ..model.io import load_model, save_model
    from .energy_forces import fit_atomic_energies
    from .trainer import Trainer

    config = recipe.train_config(stage, device)
    recipe.check_recorded(stage)
    folder = recipe.stage_dir(stage)
    resume = (folder / "checkpoint.safetensors").is_file()
    trainer = Trainer(config, resume=resume, progress=progress)
    recipe.begin(stage)
    if not resume:  # rows of a run killed before its first checkpoint would repeat
        (folder / "metrics.csv").unlink(missing_ok=True)
    trainer.fit()
    model_dir = folder / "best"
    if stage.fit_atomic_energies:
        model = load_model(model_dir)
        fit_atomic_energies(model, trainer.sets["train"].frames)
        model_dir = save_model(model, folder / "fitted", metadata={**model.metadata, "atomic_energies_fitted_on": "train split"})
    best = json.loads((model_dir / "config.json").read_text())
    training = best.get("metadata", {}).get("training", {})
    record = {
        "model": model_dir.name,
        "weights_sha256": best["weights_sha256"],
        "steps": training.get("steps"),
        "run_steps": trainer.step,
        "wall_time_s": round(trainer.elapsed, 1),
        "hardware": training.get("hardware"),
    }
    return recipe.finish(stage, record)


def run_command_stage(recipe: Recipe, stage: Stage, log=print) -> dict:
    """Run a command stage's program; returns its ``stage.json``.

    Raises
    ------
    StageFailed
        The program exited with an error, or did not make the stage's ``output``.
    """
    argv = recipe.command_argv(stage)
    recipe.begin(stage)
    log(f"  $ {shlex.join(argv)}")
    result = subprocess.run(argv, env={**os.environ, **stage.env})
    if result.returncode != 0:
        raise StageFailed(f"{recipe.path}: stage {stage.name!r}: the command exited with status {result.returncode}: {shlex.join(argv)}")
    product = recipe.product(stage)
    if product is not None and not product.exists():
        raise StageFailed(f"{recipe.path}: stage {stage.name!r}: the command finished but made no {product} (its output: {stage.output})")
    return recipe.finish(stage, {"output": stage.output})


def checkpoint_record(folder) -> dict:
    """The ``recipe_stage`` record of a committed checkpoint folder (empty when there is none)."""
    try:
        record = json.loads((Path(folder) / "config.json").read_text()).get("metadata", {}).get("recipe_stage")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def checkpoint_step(path) -> int:
    """The optimizer step a training checkpoint was saved at (reads its header only)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return int(json.loads(fh.metadata()["state"])["step"])


def weights_sha256(name_or_path) -> str:
    """The weights' SHA-256 recorded in a model folder's ``config.json`` (shipped name or path)."""
    from ..model.io import CONFIG, ModelFileError, resolve_model_dir

    folder = resolve_model_dir(name_or_path)
    try:
        return json.loads((folder / CONFIG).read_text())["weights_sha256"]
    except (OSError, ValueError, KeyError):
        raise ModelFileError(f"{folder} holds no model {CONFIG} with a weights_sha256") from None


# ---------------------------------------------------------------------- parsing
def read_yaml(path) -> object:
    """The parsed YAML of a recipe or training config.

    Raises
    ------
    MissingFileError
        No such file.
    ConfigError
        Not valid YAML.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"training config or recipe {path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None


def is_recipe(path) -> bool:
    """Whether the YAML file ``path`` is a recipe (a mapping with a ``stages:`` key)."""
    data = read_yaml(path)
    return isinstance(data, dict) and "stages" in data


def load_recipe(path, output=None) -> Recipe:
    """Parse and check a recipe: keys, stage names, references, every train stage's config.

    Parameters
    ----------
    path : path-like
        The recipe's YAML file.
    output : path-like, optional
        Run folder instead of the recipe's ``output``.

    Raises
    ------
    ConfigError
        What is wrong, naming the stage and the key, and what is accepted there.
    """
    path = Path(path)
    data = read_yaml(path)
    where = str(path)
    if not isinstance(data, dict) or "stages" not in data:
        raise ConfigError(f"{where}: a recipe is a YAML mapping with a 'stages:' list")
    _check_keys(data, RECIPE_KEYS, where)
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(f"{where}: name must be a folder name (letters, digits, '.', '_', '-'), got {name!r}")
    defaults = data.get("train_defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{where}: train_defaults must be a mapping of training-config keys, got {defaults!r}")
    _check_set_by_recipe(defaults, f"{where}: train_defaults")
    entries = data["stages"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: stages must be a non-empty list of stages, e.g. [{{name: stage1, train: {{...}}}}]")
    stages: list[Stage] = []
    for i, entry in enumerate(entries):
        stages.append(_parse_stage(entry, i, where, defaults, stages))
    ship = data.get("ship") or {}
    recipe = Recipe(path=path, name=name, output=Path(output or data.get("output") or Path("runs") / name), stages=stages, ship=ship)
    _check_ship(recipe, where)
    for stage in stages:
        if stage.kind == "train":
            recipe.train_config(stage)  # every key and value checked now, not hours into the run
    return recipe


def _parse_stage(entry, index: int, where: str, defaults: dict, earlier: list[Stage]) -> Stage:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: stages[{index}] is not a mapping; a stage is e.g. {{name: stage1, train: {{...}}}}")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(f"{where}: stages[{index}] needs a name: a folder name (letters, digits, '.', '_', '-'), got {name!r}")
    if name in RESERVED:
        raise ConfigError(f"{where}: stage name {name!r} is reserved (the ship step's folder); choose another")
    if any(s.name == name for s in earlier):
        raise ConfigError(f"{where}: two stages are called {name!r}; stage names must be unique")
    here = f"{where}: stage {name!r}"
    kinds = [k for k in STAGE_KINDS if k in entry]
    if len(kinds) != 1:
        raise ConfigError(f"{here}: a stage has exactly one of {list(STAGE_KINDS)}, got {kinds or 'none'}")
    kind = kinds[0]
    _check_keys(entry, STAGE_KEYS[kind], here)
    note = entry.get("note")
    if note is not None and not isinstance(note, str):
        raise ConfigError(f"{here}: note must be text, got {note!r}")
    if kind == "command":
        return _parse_command(entry, name, here, earlier, note)
    body = entry[kind]
    if not isinstance(body, dict):
        raise ConfigError(f"{here}: {kind} must be a mapping of config keys, got {body!r}")
    _check_set_by_recipe(body, f"{here}, {kind}")
    if kind == "train":
        body = {**defaults, **body}
    _check_references(body, REFERENCE_KEYS[kind], f"{here}, {kind}", earlier)
    fit = entry.get("fit_atomic_energies", False)
    if not isinstance(fit, bool):
        raise ConfigError(f"{here}: fit_atomic_energies must be true or false, got {fit!r}")
    checkpoint = entry.get("checkpoint")
    if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint.strip()):
        raise ConfigError(f"{here}: checkpoint must be a folder path (e.g. training/checkpoints/NAME), got {checkpoint!r}")
    if fit:
        _check_has_hcore(body, f"{here}: fit_atomic_energies")
    if kind == "train":
        _check_model_keys(body.get("model"), f"{here}, train: model")
    if kind == "density" and "backbone" not in body:
        raise ConfigError(f"{here}, density: give backbone: the Hamiltonian model whose features the heads read (a model name or folder, or {{stage: NAME}})")
    return Stage(name=name, kind=kind, body=body, note=note, fit_atomic_energies=fit, checkpoint=checkpoint)


def _parse_command(entry: dict, name: str, here: str, earlier: list[Stage], note) -> Stage:
    args, output, env = entry["command"], entry.get("output"), entry.get("env") or {}
    if not isinstance(args, list) or not args or not all(isinstance(a, (str, int, float)) or _is_reference(a) for a in args):
        raise ConfigError(f"{here}: command must be a list of program arguments (text, numbers or {{stage: NAME}}), got {args!r}")
    if not isinstance(args[0], str):
        raise ConfigError(f"{here}: command must start with the program's name, got {args[0]!r}")
    for a in args:
        if _is_reference(a):
            _check_reference(a, ("train", "density", "command"), f"{here}, command", earlier)
    if output is not None and (not isinstance(output, str) or not output or Path(output).is_absolute() or ".." in Path(output).parts):
        raise ConfigError(f"{here}: output must be a file or folder name inside the stage's folder, got {output!r}")
    if output is None and any("{output}" in str(a) for a in args):
        raise ConfigError(f"{here}: the command uses {{output}} but the stage gives no output: name it (output: FILE)")
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in env.items()):
        raise ConfigError(f"{here}: env must map variable names to values, got {env!r}")
    return Stage(name=name, kind="command", body=list(args), note=note, output=output, env={k: str(v) for k, v in env.items()})


def _check_ship(recipe: Recipe, where: str) -> None:
    ship = recipe.ship
    if not isinstance(ship, dict):
        raise ConfigError(f"{where}: ship must be a mapping (e.g. {{fit_atomic_energies: true}}), got {ship!r}")
    models = [s for s in recipe.stages if s.kind in ("train", "density")]
    if not models:
        raise ConfigError(f"{where}: the recipe has no train or density stage, so nothing to ship")
    if "stage" in ship:
        named = [s for s in models if s.name == ship["stage"]]
        if not named:
            raise ConfigError(f"{where}: ship: stage {ship['stage']!r} is not a train or density stage of this recipe; those are {[s.name for s in models]}")
    stage = recipe.shipped_stage()
    _check_keys(ship, SHIP_KEYS[stage.kind], f"{where}: ship (of the {stage.kind} stage {stage.name!r})")
    if "name" in ship and (not isinstance(ship["name"], str) or not NAME.match(ship["name"])):
        raise ConfigError(f"{where}: ship: name must be a folder name, got {ship['name']!r}")
    if "to" in ship and not isinstance(ship["to"], str):
        raise ConfigError(f"{where}: ship: to must be a folder path, got {ship['to']!r}")
    _check_references({k: v for k, v in ship.items() if k == "dataset"}, {"dataset": ("command",)}, f"{where}: ship", recipe.stages)
    if "dataset" not in ship and "dataset" not in stage.body:
        raise ConfigError(f"{where}: ship: give dataset: the shipped stage {stage.name!r} names none")
    for key in ("fit_atomic_energies", "one_step"):
        if key in ship and not isinstance(ship[key], bool):
            raise ConfigError(f"{where}: ship: {key} must be true or false, got {ship[key]!r}")
    if ship.get("fit_atomic_energies"):
        _check_has_hcore(stage.body, f"{where}: ship: fit_atomic_energies")
    for key in ("frames", "keep_frames"):
        value = ship.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < (1 if key == "frames" else 0)):
            raise ConfigError(f"{where}: ship: {key} must be a frame count, got {value!r}")
    attach = ship.get("attach") or {}
    if not isinstance(attach, dict):
        raise ConfigError(f"{where}: ship: attach maps metadata keys to JSON files (e.g. {{report: {{stage: report, path: report.json}}}}), got {attach!r}")
    for key, value in attach.items():
        if _is_reference(value):
            _check_reference(value, ("command",), f"{where}: ship: attach: {key}", recipe.stages)
        elif not isinstance(value, str):
            raise ConfigError(f"{where}: ship: attach: {key} must be a JSON file path or {{stage: NAME, path: FILE}}, got {value!r}")


def _check_keys(mapping: dict, accepted, where: str) -> None:
    unknown = sorted(set(mapping) - set(accepted))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; accepted: {sorted(accepted)}")


def _check_set_by_recipe(body: dict, where: str) -> None:
    taken = sorted({"name", "output"} & set(body))
    if taken:
        raise ConfigError(f"{where}: {taken} is set by the recipe (name RECIPE/STAGE, output the stage folder RUN/STAGE); leave it out")


def _check_model_keys(model, where: str) -> None:
    from dataclasses import fields

    from ..model.config import PhiSNetConfig

    if model is None:
        return
    if not isinstance(model, dict):
        raise ConfigError(f"{where} must be a mapping of PhiSNetConfig fields (and preset), got {model!r}")
    accepted = {f.name for f in fields(PhiSNetConfig)} - {"elements"} | {"preset"}
    _check_keys(model, accepted, where)


def _check_has_hcore(body: dict, where: str) -> None:
    model = body.get("model") or {}
    heads = model.get("heads") if isinstance(model, dict) else None
    heads = heads if heads is not None else [k for k in (body.get("loss") or {}) if k in ("fock", "overlap", "hcore")]
    if "hcore" not in heads:
        raise ConfigError(f"{where} needs a model with an hcore head (energies come from F~ and H~core); this stage's heads are {heads}")


def _is_reference(value) -> bool:
    return isinstance(value, dict) and "stage" in value


def _check_reference(value: dict, kinds, where: str, earlier: list[Stage]) -> None:
    _check_keys(value, ("stage", "path"), f"{where}: reference {value!r}")
    target = [s for s in earlier if s.name == value["stage"]]
    if not target:
        raise ConfigError(f"{where}: {{stage: {value['stage']!r}}} names no earlier stage; earlier stages: {[s.name for s in earlier] or 'none'}")
    stage = target[0]
    if stage.kind not in kinds:
        raise ConfigError(f"{where}: {{stage: {stage.name!r}}} is a {stage.kind} stage; here a {' or '.join(kinds)} stage is accepted")
    if stage.kind == "command" and stage.output is None:
        raise ConfigError(f"{where}: {{stage: {stage.name!r}}} names a command stage without an output")
    if "path" in value and (not isinstance(value["path"], str) or Path(value["path"]).is_absolute()):
        raise ConfigError(f"{where}: path in {value!r} must be a relative file name")


def _check_references(body: dict, allowed: dict, where: str, earlier: list[Stage]) -> None:
    for key, value in body.items():
        if key in allowed and _is_reference(value):
            _check_reference(value, allowed[key], f"{where}: {key}", earlier)
        elif _holds_reference(value):
            raise ConfigError(f"{where}: {key}: {{stage: NAME}} is accepted only in {sorted(allowed)}")


def _holds_reference(value) -> bool:
    if _is_reference(value):
        return True
    if isinstance(value, dict):
        return any(_holds_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_reference(v) for v in value)
    return False
