"""``phisnet md``: NVE or Langevin MD with the PhiSNet calculator, its log, trajectory and figure."""

from __future__ import annotations

import argparse
import json

EPILOG = """examples:
  phisnet md -o outputs/md_nve                                   # water, NVE, 0.5 ps at 0.25 fs
  phisnet md --ensemble nvt --temperature 500 --steps 4000 -o outputs/md_nvt
  phisnet md start.xyz --model runs/NAME/best -o outputs/md      # any geometry file ASE reads
  phisnet md -o outputs/md_nve --steps 2000                      # again: continues from the last frame
  phisnet md --ensemble nvt --replicas 8 -o outputs/md_ensemble  # 8 replicas (seeds 0..7), forces evaluated together
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "md",
        help="molecular dynamics (NVE or Langevin NVT) on the learned potential energy surface",
        description="Run ASE molecular dynamics with PhiSNetCalculator. Writes md.traj, md_log.csv "
        "(energies, temperature, HOMO-LUMO gap) and md_energies.png into the output folder; a folder "
        "that already holds md.traj is continued from its last frame.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("geometry", nargs="?", help="start geometry: molecule name or geometry file, as for `phisnet data sample` (a file's first structure); default: water")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--model", help="shipped model name or model folder (needs an H~core head); default: the shipped PBE model trained on the molecule")
    p.add_argument("--ensemble", default="nve", choices=["nve", "nvt"], help="velocity Verlet or Langevin (default: nve)")
    p.add_argument("--temperature", type=float, default=300.0, help="initial velocities and bath, K (default 300)")
    p.add_argument("--timestep", type=float, default=0.25, help="fs (default 0.25)")
    p.add_argument("--steps", type=int, default=2000, help="steps to run (default 2000)")
    p.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs (default 0.01)")
    p.add_argument("--interval", type=int, default=10, help="steps between records (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--replicas", type=int, default=1, help="independent replicas (seeds SEED, SEED+1, ...), each into OUTPUT/replica_KKK, their forces evaluated together (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data.molecules import get_molecule
    from ..errors import InputError
    from ..md import run_md, run_md_replicas
    from ..model.io import shipped_model_for

    if args.replicas < 1:
        raise InputError(f"--replicas must be a positive integer, got {args.replicas}")
    atoms = get_molecule(args.geometry or "water")
    md = dict(
        model=args.model or shipped_model_for(atoms.numbers), ensemble=args.ensemble, temperature_K=args.temperature, timestep_fs=args.timestep, steps=args.steps,
        friction_per_fs=args.friction, interval=args.interval, seed=args.seed, progress=not args.no_progress,
    )  # fmt: skip
    if args.replicas == 1:
        summary = run_md(atoms, args.output, **md)
        print(json.dumps(summary, indent=2))
        rate = summary["steps_per_second"]
        print(f"{args.steps} steps in {summary['wall_time_s']:.1f} s: {rate:.1f} steps/s ({1e3 / rate:.1f} ms per step)")
        return 0
    summary = run_md_replicas(atoms, args.output, args.replicas, **md)
    print(json.dumps(summary, indent=2))
    rate = summary["steps_per_second"]
    print(
        f"{args.replicas} replicas x {args.steps} steps in {summary['wall_time_s']:.1f} s: {rate:.1f} replica steps/s "
        f"({1e3 / rate:.1f} ms per replica step)"
    )
    return 0
