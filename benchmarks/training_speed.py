"""Seconds per training step of PhiSNet on water, by preset, loss and device.

Two losses: the matrix loss alone (F~ and H~core, the first training stages) and the full
loss that the shipped model trains with (matrices + energy + forces + occupied orbital
energies: a second derivative through the eigensolver). Each row is one ``Trainer`` in this
process: a few warm-up steps, then ``--steps`` timed steps, minus the time of the one
validation pass that ends a ``fit``. Compare rows within one run; these machines are noisy.

On the CPU the tensor products run on the compiled contraction (``ase_phisnet.equivariant.contraction``);
``--reference`` adds rows with the reference sparse-matrix products, and ``--baseline DIR`` rows
of another checkout of the package (for example ``git worktree add DIR <commit>``), with the
ratio baseline / this checkout. Every row runs in its own process, the checkouts alternating,
and ``--repeats`` times (the fastest is kept).

    python benchmarks/training_speed.py                          # CPU, small preset, 32 features (as shipped)
    python benchmarks/training_speed.py --reference --baseline ../baseline --repeats 2
    python benchmarks/training_speed.py --device cuda --presets small paper
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
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


def one_row(args) -> None:
    """``--one``: print the seconds per step of one (preset, loss) in this process."""
    preset, loss, products = args.one
    products_used = contextlib.nullcontext()
    if products == "reference":
        from ase_phisnet.equivariant.contraction import compiled_contraction

        products_used = compiled_contraction(False)
    with products_used:
        print(seconds_per_step(preset, loss, args.device, args.batch, args.steps, args.warmup, args.dataset, args.features or None))


def measure(root: Path, preset: str, loss: str, products: str, args) -> float:
    """Seconds per step in a fresh process that imports ``ase_phisnet`` from ``root``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--one", preset, loss, products, "--device", args.device, "--batch", str(args.batch),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--dataset", str(Path(args.dataset).resolve()), "--features", str(args.features)]
    env = {**os.environ, "PYTHONPATH": str(root)}
    with tempfile.TemporaryDirectory() as cwd:  # outside both checkouts, so that PYTHONPATH decides the import
        done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the measurement in {root} failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.split()[-1])


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
    p.add_argument("--reference", action="store_true", help="also time this checkout with the reference (sparse-matrix) tensor products")
    p.add_argument("--baseline", type=Path, help="also time the package of this checkout (its root folder)")
    p.add_argument("--repeats", type=int, default=1, help="processes per row; the fastest is reported")
    p.add_argument("--one", nargs=3, metavar=("PRESET", "LOSS", "PRODUCTS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        return one_row(args)
    here = Path(__file__).resolve().parents[1]
    rows = [("this checkout", here, "compiled")]
    if args.reference:
        rows.append(("this checkout, reference products", here, "reference"))
    if args.baseline:
        if not (args.baseline / "ase_phisnet" / "__init__.py").is_file():
            raise SystemExit(f"--baseline {args.baseline}: no ase_phisnet package there")
        rows.append((f"baseline {args.baseline}", args.baseline.resolve(), "compiled"))
    features = f"{args.features} features" if args.features else "the preset's features"
    print(f"water, batch {args.batch}, {features}, float32, {args.device}, {torch.get_num_threads()} torch threads, best of {args.repeats}")
    print("| preset | loss | code | s / step | relative to this checkout |")
    print("|---|---|---|---|---|")
    for preset in args.presets:
        for loss in args.losses:
            best = {name: float("inf") for name, *_ in rows}
            for _ in range(args.repeats):
                for name, root, products in rows:
                    best[name] = min(best[name], measure(root, preset, loss, products, args))
            for name, *_ in rows:
                print(f"| {preset} | {loss} | {name} | {best[name]:.3f} | {best[name] / best['this checkout']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
