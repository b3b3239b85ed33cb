"""``phisnet train CONFIG.yaml``: train a PhiSNet model (see :mod:`ase_phisnet.training`)."""

from __future__ import annotations

import argparse

EPILOG = """examples:
  phisnet train training/water-pbe-def2svp.yaml
  phisnet train training/water-pbe-def2svp.yaml --resume          # continue after a stop or kill
  phisnet train training/water-pbe-def2svp.yaml --max-minutes 60 --device cuda
  phisnet train training/water-pbe-def2svp.yaml --init-from water-pbe-def2svp --output runs/water-more

The run folder (output: in the YAML) holds checkpoint.safetensors (for --resume),
best/ (model.safetensors + config.json, loadable by ase_phisnet.load_model) and metrics.csv.
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a YAML config",
        description="Train PhiSNet on a dataset: AMSGrad, EMA weights, learning rate halved on plateaus, "
        "gradient clipping, loss MSE + MAE per matrix target, atomic safetensors checkpoints.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="training YAML (see training/*.yaml)")
    p.add_argument("--resume", action="store_true", help="continue the run in the config's output folder")
    p.add_argument("--device", help="cpu or cuda (overrides the config)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps in total (overrides the config)")
    p.add_argument("--max-minutes", type=float, help="stop after this much training wall time (overrides the config)")
    p.add_argument("--output", help="run folder (overrides the config)")
    p.add_argument("--init-from", help="start a new run from this model's weights (shipped name or model folder)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..training import TrainConfig, Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
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
