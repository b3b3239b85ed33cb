"""Learning curves at equal CPU time: which architecture learns water's F~ fastest on this machine.

Each candidate (a model configuration and its training settings) trains with ``phisnet train``
from scratch on the water set's training split, in its own process on ``--threads`` CPU threads,
for the same wall-time budget. Its validation H MAE (µEh, the whole 500-frame validation split,
EMA weights) is read from its ``metrics.csv`` and plotted against the CPU hours it spent (the
process's CPU time, ``cpu_s``, validations included: a fair clock when candidates share the
machine with other work). Runs resume: a second call with a larger ``--minutes`` continues every
candidate from its checkpoint, so a budget can be spread over interrupted runs.

    python benchmarks/learning_curves.py --minutes 30 --parallel 2                 # all candidates
    python benchmarks/learning_curves.py --minutes 60 --candidates phisnet-32x2 phisnet-64x2
    python benchmarks/learning_curves.py --plot-only --figure docs/figures/learning_curves_water.png --csv docs/figures/learning_curves_water.csv

Candidates run ``--parallel`` at a time (one per core on a 2-core machine). The table printed at
the end gives each candidate's validation H MAE at the CPU hours that every candidate reached
(the common budget), and its best within its own run.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WATER = "../shared/data/water_pbe_def2svp_500K.h5"

#: name -> model configuration (PhiSNetConfig fields) and optimiser settings. ``phisnet-32x2`` is
#: the shipped water model's architecture; NxM is features x interaction modules.
CANDIDATES: dict[str, dict] = {
    "phisnet-32x2": {"model": {"preset": "small", "features": 32, "num_interactions": 2}},
    "phisnet-64x2": {"model": {"preset": "small", "features": 64, "num_interactions": 2}},
    "phisnet-32x4": {"model": {"preset": "small", "features": 32, "num_interactions": 4}},
    "phisnet-48x3": {"model": {"preset": "small", "features": 48, "num_interactions": 3}},
}
OPTIMIZER = {"lr": 1.0e-3, "ema_decay": 0.999, "clip_grad": 1.0, "plateau_factor": 0.5, "plateau_patience": 10, "min_lr": 1.0e-6}


def train_config(name: str, out: Path, dataset: str) -> dict:
    spec = CANDIDATES[name]
    return {
        "name": name,
        "dataset": dataset,
        "splits": {"n_train": 500, "n_val": 500, "seed": 0},
        "model": spec["model"],
        "loss": spec.get("loss", {"fock": 1.0}),
        "optimizer": {**OPTIMIZER, **spec.get("optimizer", {})},
        "batch_size": spec.get("batch_size", 16),
        "max_steps": 10**7,
        "val_every": spec.get("val_every", 500),
        "dtype": "float32",
        "output": str(out / name),
    }


def run_candidate(name: str, out: Path, minutes: float, threads: int, dataset: str) -> int:
    """Train (or continue) one candidate until its training wall time reaches ``minutes``."""
    return run_training(out / name, train_config(name, out, dataset), threads, minutes)


def run_training(folder: Path, config: dict, threads: int, minutes: float | None = None) -> int:
    """``phisnet train`` on ``config`` (a TrainConfig mapping, written to FOLDER/config.yaml) in
    its own process on ``threads`` threads, continuing the run in ``folder`` if it has a
    checkpoint; stopped after ``minutes`` of training if given. Its output goes to
    FOLDER/train.log; returns its exit status."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "ase_phisnet.cli.main", "train", str(path), "--threads", str(threads), "--no-progress"]
    if minutes is not None:
        command += ["--max-minutes", str(minutes)]
    if (folder / "checkpoint.safetensors").exists():
        command.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    with open(folder / "train.log", "a") as log:
        log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(command)}\n")
        log.flush()
        return subprocess.run(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode


def read_curve(folder: Path, threads: int) -> list[tuple[float, float, int]]:
    """(CPU hours, validation H MAE µEh, step) per validation of one candidate's run (rows
    written without a CPU clock count wall time x threads)."""
    path = folder / "metrics.csv"
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    hours = [float(r["cpu_s"]) / 3600 if r.get("cpu_s") else float(r["elapsed_s"]) * threads / 3600 for r in rows]
    return [(h, float(r["val_fock_mae_uEh"]), int(r["step"])) for h, r in zip(hours, rows)]


def at_budget(curve, hours: float) -> float:
    """Best validation H MAE within the first ``hours`` CPU hours."""
    return min(mae for h, mae, _ in curve if h <= hours + 1e-9)


def power_law_tail(curve) -> tuple[float, float] | None:
    """``(a, b)`` of ``MAE = a * hours**-b`` fitted to the second half of a curve's CPU time:
    the local slope, for an extrapolation, not a prediction."""
    tail = [(h, mae) for h, mae, _ in curve if h >= curve[-1][0] / 2]
    if len(tail) < 3:
        return None
    return fit_power_law([h for h, _ in tail], [mae for _, mae in tail])


def fit_power_law(x, y) -> tuple[float, float]:
    """``(a, b)`` of ``y = a * x**-b``, least squares in log-log."""
    import numpy as np

    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return float(np.exp(intercept)), float(-slope)


def plot(curves: dict, figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, curve in curves.items():
        if curve:
            hours, mae, _ = zip(*curve)
            ax.plot(hours, mae, label=name)
    ax.set_xlabel("CPU hours (process CPU time)")
    ax.set_ylabel("validation H MAE (µEh)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title("water F~, 500 training frames, equal CPU time")
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(figure, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES), metavar="NAME", help=f"from {', '.join(CANDIDATES)}")
    p.add_argument("--minutes", type=float, default=30.0, help="training wall-time budget per candidate (default 30)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per candidate (default 1)")
    p.add_argument("--parallel", type=int, default=1, help="candidates run at once (default 1)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "learning-curves", help="run folders (default runs/learning-curves)")
    p.add_argument("--dataset", default=WATER, help="water reference set (default the shared one, read in place)")
    p.add_argument("--figure", type=Path, help="where to write the figure (default OUT/learning_curves.png)")
    p.add_argument("--plot-only", action="store_true", help="plot and tabulate what the run folders hold; train nothing")
    p.add_argument("--target", type=float, default=30.0, help="H MAE (µEh) to extrapolate the CPU hours to (default 30)")
    p.add_argument("--csv", type=Path, help="also write every curve's points here (candidate, step, CPU hours, validation H MAE)")
    args = p.parse_args(argv)
    if not args.plot_only:
        with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
            codes = dict(zip(args.candidates, pool.map(lambda n: run_candidate(n, args.out, args.minutes, args.threads, args.dataset), args.candidates)))
        failed = [n for n, c in codes.items() if c != 0]
        if failed:
            print(f"failed: {', '.join(failed)} (see OUT/NAME/train.log)", file=sys.stderr)
    curves = {n: read_curve(args.out / n, args.threads) for n in args.candidates}
    plot(curves, args.figure or args.out / "learning_curves.png")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["candidate", "step", "cpu_hours", "val_h_mae_uEh"])
            writer.writerows([name, step, f"{hours:.5f}", f"{mae:.3f}"] for name, curve in curves.items() for hours, mae, step in curve)
    ran = {n: c for n, c in curves.items() if c}
    common = min((c[-1][0] for c in ran.values()), default=0.0)
    print(
        f"| candidate | steps | CPU h | val H MAE at {common:.2f} CPU h (µEh) | best val H MAE (µEh) | at CPU h "
        f"| tail slope b (MAE ~ h^-b) | CPU h to {args.target:g} µEh at that slope |\n|---|---|---|---|---|---|---|---|"
    )
    for name, curve in curves.items():
        if not curve:
            print(f"| {name} | - | - | - | - | - | - | - |")
            continue
        hours, mae, _ = min(curve, key=lambda c: c[1])
        fit = power_law_tail(curve)
        slope, to_target = ("-", "-") if fit is None or fit[1] <= 0 else (f"{fit[1]:.2f}", f"{(fit[0] / args.target) ** (1 / fit[1]):.1f}")
        print(f"| {name} | {curve[-1][2]} | {curve[-1][0]:.2f} | {at_budget(curve, common):.1f} | {mae:.1f} | {hours:.2f} | {slope} | {to_target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
