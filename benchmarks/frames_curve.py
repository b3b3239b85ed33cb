"""Learning curve against the number of training frames: validation H MAE of F~ models trained
on nested subsets of one training split, with the same validation frames and the same steps.

Each run trains the 48x3 architecture from scratch on F~ alone (``phisnet train``, its own
process, one thread) on the first N frames of the training split (``splits.train_subset``),
for the same number of optimizer steps along the same schedule (batch 2, the rate falling from
``--lr`` to 1e-5 along a cosine), so every run costs about the same CPU time. Its best
validation H MAE (µEh, EMA weights) is read from its ``metrics.csv``. A power law
``MAE = a * N**-b`` fitted to the points says how fast more frames help, and how many frames
that slope would need to reach ``--target`` (a slope, not a forecast).

    python benchmarks/frames_curve.py --frames 75 150 300 600 --steps 20000 --parallel 2
    python benchmarks/frames_curve.py --frames 75 150 300 600 --steps 20000 --table-only

Runs resume: a run stopped part-way continues from its checkpoint. The default data set is
ethanol (both shared sets read as one, 600 train / 100 validation, seed 0: the split of the
ethanol recipe). Run from the repository root.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ETHANOL = ["../shared/data/ethanol_pbe_def2svp_500K.h5", "../shared/data/ethanol_pbe_def2svp_500K_b.h5"]


def train_config(n_frames: int, args) -> dict:
    return {
        "name": f"frames-{n_frames}",
        "dataset": args.dataset,
        "splits": {"n_train": args.n_train, "n_val": args.n_val, "seed": 0, "train_subset": n_frames},
        "model": {"preset": "small", "features": 48, "num_interactions": 3},
        "loss": {"fock": 1.0},
        "optimizer": {"lr": args.lr, "min_lr": 1.0e-5, "warmup_steps": 250, "cosine_steps": args.steps, "ema_decay": 0.999, "clip_grad": 1.0},
        "batch_size": 2,
        "max_steps": args.steps,
        "val_every": max(args.steps // 10, 1),
        "dtype": "float32",
        "output": str(args.out / f"frames-{n_frames}"),
    }


def run(n_frames: int, args) -> int:
    """Train (or continue) the run on ``n_frames`` training frames to ``args.steps`` steps."""
    folder = args.out / f"frames-{n_frames}"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump(train_config(n_frames, args), sort_keys=False))
    command = [sys.executable, "-m", "ase_phisnet.cli.main", "train", str(config), "--threads", "1", "--no-progress"]
    if (folder / "checkpoint.safetensors").exists():
        command.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with open(folder / "train.log", "a") as log:
        return subprocess.run(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode


def best(folder: Path) -> tuple[float, int, float] | None:
    """(best validation H MAE µEh, steps run, CPU hours) of one run, or None before its first validation."""
    path = folder / "metrics.csv"
    if not path.exists():
        return None
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return None
    return min(float(r["val_fock_mae_uEh"]) for r in rows), int(rows[-1]["step"]), float(rows[-1]["cpu_s"]) / 3600


def power_law(points: list[tuple[int, float]]) -> tuple[float, float] | None:
    """``(a, b)`` of ``MAE = a * N**-b``, least squares in log-log, or None for fewer than 2 points."""
    import numpy as np

    if len(points) < 2:
        return None
    slope, intercept = np.polyfit(np.log([n for n, _ in points]), np.log([m for _, m in points]), 1)
    return float(np.exp(intercept)), float(-slope)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, nargs="+", default=[75, 150, 300, 600], help="training-set sizes (default 75 150 300 600)")
    p.add_argument("--steps", type=int, default=20000, help="optimizer steps of every run (default 20000)")
    p.add_argument("--lr", type=float, default=4.0e-3, help="peak learning rate (default 4e-3)")
    p.add_argument("--dataset", nargs="+", default=ETHANOL, help="reference set(s), read in place as one (default the two shared ethanol sets)")
    p.add_argument("--n-train", type=int, default=600, help="training split the subsets are taken from (default 600)")
    p.add_argument("--n-val", type=int, default=100, help="validation frames (default 100)")
    p.add_argument("--parallel", type=int, default=1, help="runs at once, one thread each (default 1)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "frames-curve", help="run folders (default runs/frames-curve)")
    p.add_argument("--target", type=float, default=50.0, help="H MAE (µEh) to extrapolate the frames to (default 50)")
    p.add_argument("--table-only", action="store_true", help="tabulate what the run folders hold; train nothing")
    args = p.parse_args(argv)
    if any(not 1 <= n <= args.n_train for n in args.frames):
        p.error(f"--frames must lie between 1 and --n-train ({args.n_train}), got {args.frames}")
    if not args.table_only:
        with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
            codes = dict(zip(args.frames, pool.map(lambda n: run(n, args), args.frames)))
        failed = [n for n, c in codes.items() if c != 0]
        if failed:
            print(f"failed: {failed} (see OUT/frames-N/train.log)", file=sys.stderr)
    print("| training frames | steps | CPU h | best val H MAE (µEh) |\n|---|---|---|---|")
    points = []
    for n in sorted(args.frames):
        result = best(args.out / f"frames-{n}")
        if result is None:
            print(f"| {n} | - | - | - |")
            continue
        mae, steps, hours = result
        points.append((n, mae))
        print(f"| {n} | {steps} | {hours:.2f} | {mae:.1f} |")
    fit = power_law(points)
    if fit is not None:
        needed = (fit[0] / args.target) ** (1 / fit[1]) if fit[1] > 0 else float("inf")
        reach = f"about {needed:,.0f} training frames" if needed < 1e7 else "more than ten million training frames: at this many steps, not frames but training limit the error"
        print(f"\nMAE ~ N^-{fit[1]:.2f}; at that slope {args.target:g} µEh needs {reach} ({args.steps} steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
