"""Running a recipe: every stage of one model in order, then the ship step.

``phisnet train RECIPE.yaml`` calls :func:`run_recipe`; the format is that of
:mod:`ase_phisnet.training.recipe`. Train and command stages run there; density stages
(:func:`ase_phisnet.density.training.train_density`) and the ship step
(:mod:`ase_phisnet.shipping`) run here, above the training layer.

The run folder::

    RUN/                        the recipe's output (default runs/NAME)
      STAGE/                    one per stage: the Trainer's run (checkpoint.safetensors, best/,
        stage.json              metrics.csv), a density run (best/) or a command's output;
                                stage.json records the settings and, at the end, "done"
      ship/NAME/                the shipped model (model.safetensors, splits.json, config.json),
                                unless ship.to or --ship-to names another folder
      ship.json                 where the ship step wrote which weights

Running the same recipe again skips finished stages and resumes the one that was cut off.
The shipped model's metadata records ``base_model`` (the model outside the recipe that the
chain of stages started from, with the SHA-256 of its weights; a density model's is its
backbone) and ``training.stages`` (stage, note, best step, wall time of each stage of the chain).

Examples
--------
>>> from ase_phisnet.recipes import load_recipe, stage_table
>>> recipe = load_recipe("training/recipes/water-pbe-def2svp.yaml")  # doctest: +SKIP
>>> print(stage_table(recipe))                                       # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from dataclasses import fields
from pathlib import Path

from .atomic_files import atomic_write_text
from .data.location import portable_path
from .errors import ConfigError
from .training.recipe import SHIP_STATE, STATE_FILE, Recipe, Stage, checkpoint_record, run_command_stage, run_train_stage, weights_sha256
from .training.recipe import load_recipe as load_recipe_format


def load_recipe(path, output=None) -> Recipe:
    """Parse and check a recipe, density stages included (see :func:`ase_phisnet.training.recipe.load_recipe`)."""
    recipe = load_recipe_format(path, output)
    for stage in recipe.stages:
        if stage.kind == "density":
            density_config(recipe, stage)
    return recipe


def density_config(recipe: Recipe, stage: Stage):
    """The :class:`~ase_phisnet.density.training.DensityTrainingConfig` of a density stage."""
    from .density.training import DensityTrainingConfig

    where = f"{recipe.path}: stage {stage.name!r}, density"
    known = {f.name for f in fields(DensityTrainingConfig)} - {"name", "output"}
    unknown = sorted(set(stage.body) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; accepted: {sorted(known)}")
    try:
        return DensityTrainingConfig(**recipe.resolve(stage.body), name=f"{recipe.name}/{stage.name}", output=str(recipe.stage_dir(stage)))
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from None


# ---------------------------------------------------------------------- listing
def stage_table(recipe: Recipe, ship_to=None) -> str:
    """One line per stage with its state (done / committed / partial at step N / not started /
    not run, superseded by a later committed stage), then the ship step."""
    width = max(len(s.name) for s in recipe.stages)
    superseded = superseded_stages(recipe)
    lines = [f"recipe {recipe.name} ({recipe.path}), run folder {recipe.output}"]
    for i, stage in enumerate(recipe.stages, 1):
        state = f"not run: {superseded[stage.name]}" if stage.name in superseded else recipe.status(stage).text
        lines.append(f"  {i:>2}  {stage.name:<{width}}  {stage.kind:<7}  {state}")
    to = Path(ship_to) if ship_to else recipe.ship_dir()
    shipped = "done" if _shipped(recipe, to) else "not done"
    lines.append(f"      {'ship':<{width}}  {'':<7}  {shipped}: {recipe.shipped_stage().name} -> {to}")
    return "\n".join(lines)


# ---------------------------------------------------------------------- running
def run_recipe(recipe: Recipe, until: str | None = None, ship: bool = True, ship_to=None, device: str | None = None, progress: bool = True, log=print) -> dict | None:
    """Run the stages in order (skipping finished ones), then ship the model.

    Parameters
    ----------
    recipe : Recipe
        From :func:`load_recipe`.
    until : str, optional
        Stop after this stage (no ship step).
    ship : bool
        Run the ship step after the last stage.
    ship_to : path-like, optional
        Ship into this folder instead of the recipe's (``ase_phisnet/pretrained/NAME`` to ship
        into the package: :func:`ase_phisnet.shipping.package_folder`).
    device : str, optional
        ``cpu`` or ``cuda`` for every train stage, instead of the recipe's.
    progress : bool
        Progress bars (the Trainer's), for terminals.
    log : callable
        Receives one line of text per event.

    Returns
    -------
    dict or None
        The ship step's result (``kind``, ``path``, and ``metrics`` or ``report``), or None
        when no ship step ran.
    """
    if until is not None:
        recipe.stage(until)  # an unknown name fails before anything runs
    superseded = superseded_stages(recipe, until)
    n = len(recipe.stages)
    for i, stage in enumerate(recipe.stages, 1):
        status = recipe.status(stage)
        head = f"[{i}/{n}] {stage.name} ({stage.kind})"
        if stage.name in superseded:
            log(f"{head}: skipped, {superseded[stage.name]}")
        elif status.state == "done":
            recipe.check_recorded(stage)
            log(f"{head}: done, skipped")
            if stage.checkpoint and recipe.committed(stage) is None and (recipe.stage_dir(stage) / STATE_FILE).is_file():
                commit_checkpoint(recipe, stage, log=log)  # finished, its checkpoint not yet written
        else:
            log(f"{head}: {'continuing, ' + status.text if status.state == 'partial' else 'starting'}")
            started = time.perf_counter()
            if stage.kind == "train":
                run_train_stage(recipe, stage, device=device, progress=progress)
                if stage.checkpoint:
                    commit_checkpoint(recipe, stage, log=log)
            elif stage.kind == "command":
                run_command_stage(recipe, stage, log=log)
            else:
                run_density_stage(recipe, stage, progress=progress)
            log(f"{head}: done in {time.perf_counter() - started:.0f} s; {recipe.status(stage).text}")
        if stage.name == until:
            log(f"stopped after stage {until!r} (--until); run again without it to go on")
            return None
    return ship_step(recipe, ship_to, progress=progress, log=log) if ship else None


def superseded_stages(recipe: Recipe, until: str | None = None) -> dict[str, str]:
    """Unfinished stages that need not run, by name, with the reason: those before the last
    finished stage with a committed checkpoint that no stage still to run, nor the ship step,
    needs (through ``{stage: NAME}``, one after another)."""
    stages = recipe.stages[: recipe.stages.index(recipe.stage(until)) + 1] if until else recipe.stages
    done = {s.name for s in stages if recipe.status(s).state == "done"}
    committed = [i for i, s in enumerate(stages) if s.name in done and s.checkpoint]
    if not committed:
        return {}
    last = committed[-1]
    needed = _referenced_stages(recipe.ship) if until is None else set()
    for stage in reversed(stages):
        if stage.name not in done and (stages.index(stage) > last or stage.name in needed):
            needed |= _referenced_stages(stage.body)
    why = f"stage {stages[last].name!r} after it is committed ({stages[last].checkpoint})"
    return {s.name: why for s in stages[:last] if s.name not in done and s.name not in needed}


def commit_checkpoint(recipe: Recipe, stage: Stage, log=print) -> Path | None:
    """Write a finished train stage's model to its ``checkpoint:`` folder, to be committed.

    The weights are stored as trained (float32 where the stage trained in float32); the
    metadata gains ``recipe_stage``: the recipe's and the stage's names, the stage's record
    (its ``stage.json``), by which a checkout without the run folder counts the stage as done,
    and the records of the stages its model grew from (``chain``), for the shipped model's
    account of its training once those stages' own records are gone.
    A checkpoint that a later stage of the recipe wrote is left as it is (returns None).
    """
    from .model.io import load_model, save_model
    from .shipping import as_trained

    target = Path(stage.checkpoint)
    names = [s.name for s in recipe.stages]
    holder = checkpoint_record(target)
    if holder.get("recipe") == recipe.name and holder.get("stage") in names and names.index(holder["stage"]) > names.index(stage.name):
        log(f"  checkpoint {target} holds the later stage {holder['stage']!r}; left as it is")
        return None
    model = load_model(recipe.stage_dir(stage) / ("fitted" if stage.fit_atomic_energies else "best"))
    earlier = {s.name: stage_record(recipe, s) for s in recipe.chain(stage)[:-1]}
    record = {"recipe": recipe.name, "stage": stage.name, "state": recipe.read_state(stage), "chain": {k: v for k, v in earlier.items() if v}}
    path = save_model(model, target, metadata={**model.metadata, "recipe_stage": record}, state_dict=as_trained(model))
    log(f"  checkpoint: {stage.name} -> {path} (commit it)")
    return path


def _referenced_stages(value) -> set[str]:
    """Names of the stages that ``{stage: NAME}`` references inside ``value`` name."""
    if isinstance(value, dict):
        if "stage" in value:  # a reference, as the recipe format reads one
            return {str(value["stage"])}
        return set().union(*(_referenced_stages(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_referenced_stages(v) for v in value))
    return set()


def run_density_stage(recipe: Recipe, stage: Stage, progress: bool = True) -> dict:
    """Fit a density stage's heads (run again from the start if it was cut off); returns its ``stage.json``."""
    from .density.training import train_density

    config = density_config(recipe, stage)
    recipe.begin(stage)
    best = train_density(config, progress=progress)
    record = json.loads((best / "config.json").read_text())
    return recipe.finish(stage, {"model": best.name, "weights_sha256": record["weights_sha256"], "wall_time_s": record["metadata"]["training"].get("wall_s")})


# ---------------------------------------------------------------------- ship
def stage_record(recipe: Recipe, stage: Stage) -> dict | None:
    """The stage's record: its ``stage.json`` or committed record (:meth:`Recipe.read_state`),
    else the copy that a later stage's committed checkpoint keeps in its ``chain``."""
    state = recipe.read_state(stage)
    if state is not None:
        return state
    for later in recipe.stages[recipe.stages.index(stage) + 1 :]:
        record = checkpoint_record(later.checkpoint) if later.checkpoint else {}
        if record.get("recipe") == recipe.name and stage.name in record.get("chain", {}):
            return record["chain"][stage.name]
    return None


def provenance(recipe: Recipe) -> dict:
    """``base_model`` and ``training`` (recipe, stages) for the shipped model's metadata."""
    stages = []
    for stage in lineage(recipe, recipe.shipped_stage()):
        state = stage_record(recipe, stage) or {}
        stages.append({"stage": stage.name, "what": stage.note, "steps": state.get("steps"), "wall_time_s": state.get("wall_time_s"), "hardware": state.get("hardware")})
    return {"base_model": base_record(recipe, recipe.shipped_stage()), "training": {"recipe": portable_path(recipe.path), "stages": stages}}


def lineage(recipe: Recipe, stage: Stage) -> list[Stage]:
    """The model stages that led to ``stage``'s model, first to last: the chain of train stages
    through ``init_from``, and for a density stage on a backbone made by the recipe, that
    backbone's chain before it."""
    backbone = stage.body.get("backbone") if stage.kind == "density" else None
    if isinstance(backbone, dict) and "stage" in backbone:
        return lineage(recipe, recipe.stage(backbone["stage"])) + [stage]
    return recipe.chain(stage)


def base_record(recipe: Recipe, stage: Stage) -> dict | None:
    """``{"name", "weights_sha256"}`` of the model that ``stage``'s model is built on, or None.

    For a train stage: the model outside the recipe that its chain of stages started from
    (None when the first started from scratch). For a density stage: its backbone; a backbone
    made by this recipe is named ``RECIPE/STAGE`` and carries its own record as ``base_model``.
    """
    inputs = (stage_record(recipe, recipe.chain(stage)[0]) or {}).get("inputs", {})
    base = next(iter(inputs.values()), None)
    if base is None:
        return None
    if "stage" in base:
        backbone = recipe.stage(base["stage"])
        out = {"name": f"{recipe.name}/{backbone.name}", "weights_sha256": base["weights_sha256"]}
        inner = base_record(recipe, backbone)
        return {**out, "base_model": inner} if inner else out
    name = base["name"]  # a shipped name, or a model folder: named by its path in the working directory
    return {"name": portable_path(name) if "/" in name else name, "weights_sha256": base["weights_sha256"]}


def ship_step(recipe: Recipe, to=None, progress: bool = True, log=print) -> dict:
    """The ship step: test-split figures, provenance, the model folder; skipped when done.

    The step is done when ``RUN/ship.json`` records this destination and the weights found
    there, and the shipped stage's model has not changed since.
    """
    from .shipping import ship_density_model, ship_hamiltonian_model

    stage = recipe.shipped_stage()
    to = Path(to) if to else recipe.ship_dir()
    if recipe.status(stage).state != "done":
        raise ConfigError(f"{recipe.path}: cannot ship: stage {stage.name!r} has not finished ({recipe.status(stage).text})")
    if _shipped(recipe, to):
        log(f"ship: {to} holds this model already, skipped")
        return {"kind": stage.kind, "path": to, "skipped": True}
    log(f"ship: {stage.name} -> {to}")
    ship = recipe.ship
    model_dir, dataset = recipe.product(stage), recipe.ship_dataset()
    if stage.kind == "train":
        attach = {k: recipe.resolve(v) for k, v in (ship.get("attach") or {}).items()}
        path, result = ship_hamiltonian_model(model_dir, to, dataset, fit_atomic_energies=ship.get("fit_atomic_energies", False), provenance=provenance(recipe), attach=attach, progress=progress)
        out = {"kind": "train", "path": path, "metrics": result}
    else:
        options = {"frames": ship.get("frames"), "keep_frames": ship.get("keep_frames", 5), "one_step": ship.get("one_step", True)}
        path, report = ship_density_model(model_dir, to, dataset, **options, provenance=provenance(recipe), progress=progress)
        out = {"kind": "density", "path": path, "report": report}
    state = {"to": str(to), "stage": stage.name, "stage_weights_sha256": weights_sha256(model_dir), "weights_sha256": weights_sha256(path)}
    atomic_write_text(recipe.output / SHIP_STATE, json.dumps(state, indent=2) + "\n")
    return out


def _shipped(recipe: Recipe, to: Path) -> bool:
    path = recipe.output / SHIP_STATE
    if not path.is_file() or not (to / "config.json").is_file():
        return False
    state = json.loads(path.read_text())
    stage = recipe.shipped_stage()
    try:
        current = weights_sha256(recipe.product(stage))
    except ValueError:
        return False
    return state.get("to") == str(to) and state.get("weights_sha256") == weights_sha256(to) and state.get("stage_weights_sha256") == current
