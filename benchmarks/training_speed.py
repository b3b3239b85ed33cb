"""Seconds per training step of PhiSNet on water, by preset, loss and device.

Two losses: the matrix loss alone (F~ and H~core, the first training stages) and the full
loss that the shipped model trains with (matrices + energy + forces + occupied orbital
energies: a second derivative through the eigensolver). Each row is one ``Trainer`` in this
process: a few warm-up steps, then ``--steps`` timed steps, minus the time of the one
validation pass that ends a ``fit``. Compare rows within one run; these machines are noisy.

    python benchmarks/training_speed.py                          # CPU, small preset, 32 features (as shipped)
    python benchmarks/training_speed.py --device cuda --presets small paper
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import yaml

WATER = "../shared/data/water_pbe_def2svp_500K.h5"
LOSSES = {
    "matrices": {"fock": 1.0, "hcore": 1.0},
    "matrices+E+F+eps": {"fock": 200.0, "hcore": 1.0, "energy": 50.0, "forces": 100.0, "orbital_energies": 300.0},
}


def seconds_per_step(preset: str, loss: str, device: str, batch: int, steps: int, warmup: int, dataset: str, features: int | None) -> float:
    from ase_phisnet.training import TrainConfig, Trainer

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with tempfile.TemporaryDirectory() as out:
        path = Path(out) / "speed.yaml"
        path.write_text(yaml.safe_dump(
            {
                "name": f"speed-{preset}-{loss}",
                "dataset": dataset,
                "splits": {"n_train": max(batch, 32), "n_val": 4, "n_test": 4, "seed": 0},
                "model": {"preset": preset, "heads": ["fock", "hcore"], "core_baseline": True, **({"features": features} if features else {})},
                "loss": LOSSES[loss],
                "energy_forces_from": 0,
                "batch_size": batch,
                "max_steps": warmup,
                "val_every": 10**6,
                "dtype": "float32",
                "device": device,
                "output": out,
            }
        ))
        trainer = Trainer(TrainConfig.from_yaml(path), progress=False)
        trainer.fit()
        sync()
        t = time.perf_counter()
        trainer.validate()
        sync()
        t_val = time.perf_counter() - t
        trainer.config.max_steps = warmup + steps
        t = time.perf_counter()
        trainer.fit()
        sync()
        return (time.perf_counter() - t - t_val) / steps


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["small"])
    p.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=16, help="molecules per step (the shipped model: 16)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--dataset", default=WATER)
    p.add_argument("--features", type=int, default=32, help="channels per irrep order (the shipped water models: 32; 0: the preset's own)")
    args = p.parse_args()
    features = f"{args.features} features" if args.features else "the preset's features"
    print(f"water, batch {args.batch}, {features}, float32, {args.device}, {torch.get_num_threads()} torch threads")
    print("| preset | loss | s / step |")
    print("|---|---|---|")
    for preset in args.presets:
        for loss in args.losses:
            s = seconds_per_step(preset, loss, args.device, args.batch, args.steps, args.warmup, args.dataset, args.features or None)
            print(f"| {preset} | {loss} | {s:.3f} |", flush=True)


if __name__ == "__main__":
    main()
