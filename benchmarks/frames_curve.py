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
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_curves import fit_power_law, read_curve, run_training  # noqa: E402

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
    return run_training(args.out / f"frames-{n_frames}", train_config(n_frames, args), threads=1)


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
        curve = read_curve(args.out / f"frames-{n}", threads=1)
        if not curve:
            print(f"| {n} | - | - | - |")
            continue
        mae = min(m for _, m, _ in curve)
        points.append((n, mae))
        print(f"| {n} | {curve[-1][2]} | {curve[-1][0]:.2f} | {mae:.1f} |")
    fit = fit_power_law(*zip(*points)) if len(points) >= 2 else None
    if fit is not None:
        needed = (fit[0] / args.target) ** (1 / fit[1]) if fit[1] > 0 else float("inf")
        reach = f"about {needed:,.0f} training frames" if needed < 1e7 else "more than ten million training frames: at this many steps, not frames but training limit the error"
        print(f"\nMAE ~ N^-{fit[1]:.2f}; at that slope {args.target:g} µEh needs {reach} ({args.steps} steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
