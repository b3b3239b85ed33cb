"""A rival MACE model trained on the same water frames as a shipped model, test errors side by side.

The frames are the model's own recorded splits (``metadata["splits"]``: 500 train / 500 validation
/ 1500 test for ``water-pbe-def2svp``) of the shared water set. They are written as extended XYZ
(energies in eV, forces in eV/Å, under ``REF_energy`` / ``REF_forces``) into ``runs/mace/<name>/``;
MACE (mace-torch) trains there with ``mace_run_train``, and its best-validation model (the Stage
Two one, or the Stage One one when Stage Two never started) predicts the test frames with
``mace_eval_configs``. Our model is evaluated on the same frames with
``ase_phisnet.evaluation.energy_force_metrics``. Energies are compared as total energies (no shift),
forces per Cartesian component. Prints a markdown table and writes a JSON summary (``--json``).

mace-torch pins e3nn 0.4.4 (ours needs e3nn >= 0.5), so MACE lives in its own virtual environment
(``--venv``, default ``runs/mace/venv``), made on the first run: ``python -m venv``, then the CPU
build ``torch==2.13.0``, then ``mace-torch==0.3.16``.

MACE settings (``MACE_SETTINGS``; the MACE defaults for everything else): model MACE, hidden irreps
``64x0e + 64x1o``, r_max 5.0 Å, correlation 3, max_L 1, 2 interactions, batch size 10, float64,
E0s "average" (least squares on the training frames), EMA (decay 0.99), MACE's default loss weights
(energy 1, forces 100), Stage Two (formerly "swa": energy weight 1000, forces 100, lr 1e-3) from 80 %
of ``--max-epochs`` (110), ``--patience`` 20 validation epochs without improvement (in Stage One it
starts Stage Two early, in Stage Two it stops), CPU. The training wall time is the whole
``mace_run_train`` process (data loading and MACE's final error tables included). Our model's
training time is its recipe's total: the ``wall_time_s`` of every stage in its config metadata.

    python benchmarks/mace_comparison.py                                   # full run, 1 thread
    python benchmarks/mace_comparison.py --threads 2 --json runs/mace/comparison-2t.json
    python benchmarks/mace_comparison.py --max-epochs 2 --train-frames 50 --test-frames 20   # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WATER = ROOT.parent / "shared" / "data" / "water_pbe_def2svp_500K.h5"
TORCH, MACE = "torch==2.13.0", "mace-torch==0.3.16"  # the CPU build of torch first: a bare requirement pulls a CUDA build
MACE_SETTINGS = {
    "model": "MACE", "hidden_irreps": "64x0e + 64x1o", "r_max": 5.0, "correlation": 3, "max_L": 1, "num_interactions": 2,
    "batch_size": 10, "valid_batch_size": 10, "default_dtype": "float64", "E0s": "average", "ema": True, "ema_decay": 0.99,
    "energy_key": "REF_energy", "forces_key": "REF_forces", "error_table": "TotalMAE", "device": "cpu", "plot": False,
}
STAGE_TWO_FROM = 0.8  # fraction of --max-epochs


def venv_env(venv: Path, threads: int) -> dict:
    """Environment for the MACE venv's commands: its bin first, none of our venv, ``threads`` threads."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def run_logged(command: list, log: Path, env: dict, what: str, echo: str | None = None) -> None:
    """Run ``command`` with its output in ``log`` (lines containing ``echo`` also printed); exit with the log's tail on failure."""
    with open(log, "w") as out, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        for line in proc.stdout:
            out.write(line)
            if echo and echo in line:
                print("  " + line.rstrip()[-150:], flush=True)
    if proc.returncode:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        raise SystemExit(f"{what} failed (exit {proc.returncode}); the end of {log}:\n{tail}")


def ensure_mace_venv(venv: Path) -> dict:
    """Make the MACE venv unless it already has mace; return the versions installed there."""
    python = venv / "bin" / "python"
    env = venv_env(venv, 1)
    has_mace = python.exists() and subprocess.run([str(python), "-c", "import mace"], env=env, capture_output=True).returncode == 0
    if not has_mace:
        venv.parent.mkdir(parents=True, exist_ok=True)
        print(f"making the MACE venv {venv} ({TORCH}, then {MACE}) ...", flush=True)
        if not python.exists():
            run_logged([sys.executable, "-m", "venv", str(venv)], venv.parent / "venv.log", env, "python -m venv")
        for requirement in (TORCH, MACE):
            run_logged([str(python), "-m", "pip", "install", requirement], venv.parent / "pip.log", env, f"pip install {requirement}")
    probe = "import json, torch; from importlib.metadata import version as v; print(json.dumps({'torch': torch.__version__, 'mace-torch': v('mace-torch'), 'e3nn': v('e3nn')}))"
    done = subprocess.run([str(python), "-c", probe], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the MACE venv {venv} does not import torch / mace:\n{done.stderr[-3000:]}")
    versions = json.loads(done.stdout.splitlines()[-1])
    if not versions["torch"].startswith(TORCH.split("==")[1]):
        print(f"warning: the MACE venv has torch {versions['torch']}, not {TORCH}", flush=True)
    return versions


def write_xyz(path: Path, frames: list[dict]) -> None:
    """Frames as extended XYZ: total energy (eV) in ``REF_energy``, forces (eV/Å) in ``REF_forces``."""
    from ase import Atoms
    from ase.io import write

    from ase_phisnet.units import HARTREE, HARTREE_PER_BOHR

    images = []
    for frame in frames:
        atoms = Atoms(numbers=frame["numbers"], positions=frame["positions"])
        atoms.info["REF_energy"] = float(frame["energy"]) * HARTREE
        atoms.new_array("REF_forces", np.asarray(frame["forces"], dtype=float) * HARTREE_PER_BOHR)
        atoms.info["frame_index"] = int(frame["index"])
        images.append(atoms)
    write(path, images, format="extxyz")


def mace_errors(predicted: Path, frames: list[dict]) -> dict:
    """Energy (meV, total) and force (meV/Å, per component) errors of ``mace_eval_configs`` output against the frames."""
    from ase.io import read

    from ase_phisnet.units import HARTREE, HARTREE_PER_BOHR

    images = read(predicted, index=":", format="extxyz")
    if [a.info["frame_index"] for a in images] != [int(f["index"]) for f in frames]:
        raise SystemExit(f"{predicted}: the predicted frames are not the test frames in order")
    e_err = np.array([a.info["MACE_energy"] - float(f["energy"]) * HARTREE for a, f in zip(images, frames)])
    f_err = np.concatenate([(a.arrays["MACE_forces"] - np.asarray(f["forces"]) * HARTREE_PER_BOHR).ravel() for a, f in zip(images, frames)])
    return {
        "energy_mae_meV": float(np.abs(e_err).mean() * 1e3),
        "forces_mae_meV_per_A": float(np.abs(f_err).mean() * 1e3),
        "energy_max_abs_meV": float(np.abs(e_err).max() * 1e3),
        "energy_mean_error_meV": float(e_err.mean() * 1e3),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="water-pbe-def2svp", help="our model (shipped name or model folder); its recorded splits choose the frames")
    p.add_argument("--dataset", type=Path, default=WATER, help="the model's dataset, a shared-format .h5 file or dataset folder (default: the shared water set)")
    p.add_argument("--venv", type=Path, default=ROOT / "runs" / "mace" / "venv", help="MACE's virtual environment, made here if it has no mace")
    p.add_argument("--name", default="water-mace", help="MACE run name; its files go to runs/mace/NAME/ (emptied first)")
    p.add_argument("--max-epochs", type=int, default=110, help="MACE's maximum epochs (Stage Two from 80 %% of them)")
    p.add_argument("--patience", type=int, default=20, help="validation epochs without improvement before MACE starts Stage Two early or stops")
    p.add_argument("--threads", type=int, default=1, help="torch threads for MACE's training and evaluation and for our model's evaluation")
    p.add_argument("--seed", type=int, default=123, help="MACE's random seed")
    p.add_argument("--test-frames", type=int, help="evaluate only the first N test frames (default: all)")
    p.add_argument("--train-frames", type=int, help="smoke tests only: train MACE on the first N training and N validation frames")
    p.add_argument("--json", type=Path, default=ROOT / "runs" / "mace" / "comparison.json", help="where to write the JSON summary")
    args = p.parse_args()
    if args.max_epochs < 1 or args.threads < 1:
        raise SystemExit("--max-epochs and --threads must be at least 1")

    import torch

    from ase_phisnet.data.splits import select_split
    from ase_phisnet.evaluation import energy_force_metrics
    from ase_phisnet.model.io import load_model
    from ase_phisnet.training.data import load_frames

    torch.set_num_threads(args.threads)
    versions = ensure_mace_venv(args.venv.resolve())
    model = load_model(args.model)
    all_frames, _ = load_frames(args.dataset)
    frames = {split: select_split(model, all_frames, split) for split in ("train", "val", "test")}
    if args.train_frames:
        frames["train"], frames["val"] = frames["train"][: args.train_frames], frames["val"][: args.train_frames]
    if args.test_frames:
        frames["test"] = frames["test"][: args.test_frames]
    run_dir = ROOT / "runs" / "mace" / args.name
    if run_dir.exists():  # MACE would load a previous run's later checkpoints at the end
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    for split, chosen in frames.items():
        write_xyz(run_dir / f"{split}.xyz", chosen)
    print(f"frames of {args.model}'s splits in {args.dataset.name}: " + ", ".join(f"{len(v)} {k}" for k, v in frames.items()), flush=True)

    # MACE: train, then predict the test frames with the best-validation model
    stage_two = max(1, int(STAGE_TWO_FROM * args.max_epochs)) if args.max_epochs >= 2 else None
    settings = {**MACE_SETTINGS, "max_num_epochs": args.max_epochs, "patience": args.patience, "seed": args.seed, "stage_two": stage_two is not None,
                "start_stage_two": stage_two}
    flags = {k: v for k, v in settings.items() if k not in ("ema", "stage_two", "start_stage_two") and v is not None}
    command = [str(args.venv.resolve() / "bin" / "mace_run_train"), f"--name={args.name}", f"--work_dir={run_dir}", f"--train_file={run_dir / 'train.xyz'}",
               f"--valid_file={run_dir / 'val.xyz'}", *(f"--{k}={v}" for k, v in flags.items())]
    command += ["--ema"] + (["--stage_two", f"--start_stage_two={stage_two}"] if stage_two else [])
    env = venv_env(args.venv.resolve(), args.threads)
    print(f"training MACE ({args.max_epochs} epochs at most, {args.threads} thread(s)); log: {run_dir / 'train.log'}", flush=True)
    t = time.perf_counter()
    run_logged(command, run_dir / "train.log", env, "mace_run_train", echo="Epoch ")
    mace_wall = time.perf_counter() - t
    best = run_dir / f"{args.name}_stagetwo.model"
    best = best if best.exists() else run_dir / f"{args.name}.model"
    t = time.perf_counter()
    run_logged([str(args.venv.resolve() / "bin" / "mace_eval_configs"), f"--configs={run_dir / 'test.xyz'}", f"--model={best}", f"--output={run_dir / 'test_predicted.xyz'}",
                "--device=cpu", "--default_dtype=float64", "--batch_size=50"], run_dir / "eval.log", env, "mace_eval_configs")
    mace_eval_wall = time.perf_counter() - t
    mace = mace_errors(run_dir / "test_predicted.xyz", frames["test"])

    # ours, on the same test frames
    print(f"evaluating {args.model} on {len(frames['test'])} test frames ...", flush=True)
    t = time.perf_counter()
    ours = energy_force_metrics(model, frames["test"], progress=sys.stderr.isatty())
    ours_eval_wall = time.perf_counter() - t
    training = model.metadata.get("training", {})
    stages = training.get("stages", [])
    ours_train = sum(s["wall_time_s"] for s in stages) if stages else training.get("wall_time_s")
    counts = [int(n) for s in stages for n in str(s.get("threads", "")).split("-") if n.isdigit()]  # "1-2": one or two threads
    ours_threads = (f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}") if counts else "?"

    hardware = f"{platform.machine()}, {args.threads} thread(s), cpu"
    label = Path(str(args.model)).name

    def hours(s):
        return "—" if s is None else f"{s / 3600:.2f} h ({s:.0f} s)" if s >= 3600 else f"{s:.0f} s"

    print(f"\nwater test split ({len(frames['test'])} frames of {args.dataset.name}); MACE trained on {len(frames['train'])} train / {len(frames['val'])} validation frames")
    print("| model | E MAE (meV) | F MAE (meV/Å) | training wall time | threads/hardware |")
    print("|---|---|---|---|---|")
    print(f"| {label} (ours, PhiSNet) | {ours['energy_mae_meV']:.2f} | {ours['forces_mae_meV_per_A']:.2f} | {hours(ours_train)}, recipe total of {len(stages)} stages | "
          f"{training.get('hardware', '?')} ({ours_threads} threads per stage) |")
    print(f"| MACE {versions['mace-torch']} ({best.name}) | {mace['energy_mae_meV']:.2f} | {mace['forces_mae_meV_per_A']:.2f} | {hours(mace_wall)}, mace_run_train | {hardware} |")

    summary = {
        "model": str(args.model), "dataset": str(args.dataset), "n_frames": {k: len(v) for k, v in frames.items()},
        "test_frame_indices": [int(f["index"]) for f in frames["test"]] if args.test_frames else "all of the model's test split",
        "ours": {**ours, "training_wall_time_s": ours_train, "training_wall_time_note": "sum of metadata.training.stages[*].wall_time_s (the recipe's total)",
                 "training_hardware": training.get("hardware"), "stage_threads": ours_threads, "eval_wall_time_s": ours_eval_wall,
                 "recorded_test_metrics": model.metadata.get("test_metrics")},
        "mace": {**mace, "training_wall_time_s": mace_wall, "eval_wall_time_s": mace_eval_wall, "model_file": str(best), "run_dir": str(run_dir),
                 "settings": settings, "command": command, "threads": args.threads, "hardware": hardware, "versions": versions},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nsummary: {args.json}")


if __name__ == "__main__":
    main()
