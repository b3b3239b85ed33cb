"""``phisnet train CONFIG.yaml | RECIPE.yaml``: train a PhiSNet model (see :mod:`ase_phisnet.training`).

A YAML file with a ``stages:`` list is a recipe (:mod:`ase_phisnet.training.recipe`): every
stage of one model, run in order and resumed where it was cut off, then shipped. Any other
YAML file is the config of a single run.
"""

from __future__ import annotations

import argparse

EPILOG = """examples:
  phisnet train training/recipes/water-pbe-def2svp.yaml            # every stage, then the ship step; rerun to resume
  phisnet train training/recipes/water-pbe-def2svp.yaml --list     # the stages and their state, nothing run
  phisnet train training/recipes/water-ccsdt-def2svp.yaml --until hf
  phisnet train training/recipes/water-pbe-def2svp.yaml --ship-to-package   # into ase_phisnet/pretrained/NAME
  phisnet train training/ethanol-pbe-def2svp.yaml                  # a single run
  phisnet train training/ethanol-pbe-def2svp.yaml --resume         # continue it after a stop or kill
  phisnet train training/ethanol-pbe-def2svp.yaml --init-from runs/ethanol-pbe-def2svp/best --output runs/ethanol-more

A single run's folder (output: in the YAML) holds checkpoint.safetensors (for --resume),
best/ (model.safetensors + splits.json + config.json, loadable by ase_phisnet.load_model)
and metrics.csv. A recipe's run folder holds one such folder per stage and ship/NAME/, the
shipped model.
"""

#: Options of a single run that a recipe sets per stage instead.
SINGLE_RUN_ONLY = ("max_steps", "max_minutes", "init_from")
#: Options that only a recipe takes.
RECIPE_ONLY = ("list", "until", "no_ship", "ship_to", "ship_to_package")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a YAML config or recipe",
        description="Train PhiSNet on a dataset: AMSGrad, EMA weights, learning rate halved on plateaus, "
        "gradient clipping, loss MSE + MAE per matrix target, atomic safetensors checkpoints. "
        "A recipe (a YAML file with stages:) runs every stage of a model, then ships it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="training config or recipe YAML (see training/recipes/*.yaml)")
    p.add_argument("--device", help="cpu or cuda (overrides the config, or every train stage of a recipe)")
    p.add_argument("--output", help="run folder (overrides the config's or the recipe's)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    single = p.add_argument_group("a single run")
    single.add_argument("--resume", action="store_true", help="continue the run in the config's output folder (a recipe always does)")
    single.add_argument("--max-steps", type=int, help="stop after this many optimizer steps in total (overrides the config)")
    single.add_argument("--max-minutes", type=float, help="stop after this much training wall time (overrides the config)")
    single.add_argument("--init-from", help="start a new run from this model's weights (shipped name or model folder)")
    recipe = p.add_argument_group("a recipe")
    recipe.add_argument("--list", "--stages", dest="list", action="store_true", help="list the stages and their state (done / partial at step N / not started); run nothing")
    recipe.add_argument("--until", metavar="STAGE", help="stop after this stage (no ship step)")
    recipe.add_argument("--no-ship", action="store_true", help="run the stages, not the ship step")
    recipe.add_argument("--ship-to", metavar="DIR", help="ship into this folder (default: the recipe's ship.to, else RUN/ship/NAME)")
    recipe.add_argument("--ship-to-package", action="store_true", help="ship into ase_phisnet/pretrained/NAME, where load_model(NAME) finds it")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..errors import InputError
    from ..training.recipe import is_recipe

    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = is_recipe(args.config)
    wrong = [name for name in (SINGLE_RUN_ONLY if recipe else RECIPE_ONLY) if getattr(args, name) not in (None, False)]
    if wrong:
        options = ", ".join("--" + name.replace("_", "-") for name in wrong)
        what = "a recipe sets these per stage" if recipe else "they apply to a recipe (a YAML file with stages:)"
        raise InputError(f"{args.config}: {options} cannot be used here: {what}")
    return run_recipe(args) if recipe else run_single(args)


def run_single(args) -> int:
    """One training run from a TrainConfig YAML."""
    from ..training import TrainConfig, Trainer

    config = TrainConfig.from_yaml(args.config)
    for key in ("device", "max_steps", "max_minutes", "output", "init_from"):
        value = getattr(args, key)
        if value is not None:
            setattr(config, key, value)
    trainer = Trainer(config, resume=args.resume, progress=not args.no_progress)
    last = trainer.fit()
    print(f"step {trainer.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in last.items()))
    print(f"best model: {trainer.out / 'best'}")
    return 0


def run_recipe(args) -> int:
    """Every stage of a recipe (or, with --list, their state), then the ship step."""
    from ..errors import InputError
    from ..recipes import load_recipe, run_recipe, stage_table
    from ..shipping import package_folder

    recipe = load_recipe(args.config, output=args.output)
    if args.ship_to and args.ship_to_package:
        raise InputError("give --ship-to or --ship-to-package, not both")
    ship_to = package_folder(recipe.ship_name) if args.ship_to_package else args.ship_to
    if args.list:
        print(stage_table(recipe, ship_to))
        return 0
    result = run_recipe(recipe, until=args.until, ship=not args.no_ship, ship_to=ship_to, device=args.device, progress=not args.no_progress)
    if result is not None and not result.get("skipped"):
        print(ship_summary(recipe.ship_name, result))
    return 0


def ship_summary(name: str, result: dict) -> str:
    """Where the model went and its test-split table (markdown, for the README)."""
    if result["kind"] == "density":
        from .density import markdown

        table = markdown(result["report"])
    else:
        from ..evaluation import markdown_table

        table = markdown_table(result["metrics"], name, "test")
    return f"shipped {name} to {result['path']}\n\n{table}"
