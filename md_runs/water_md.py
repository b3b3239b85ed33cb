"""NVE and Langevin MD of water with the shipped model: trajectory, log, energy/temperature/gap figure.

    python md_runs/water_md.py                     # writes outputs/water_md/{nve,nvt}/
    python md_runs/water_md.py --steps 8000        # 2 ps at 0.25 fs

Same as `phisnet md -o outputs/water_md/nve` and `phisnet md --ensemble nvt ...`. Rerunning
continues each run from its trajectory's last frame.
"""

import argparse
import json

from ase.build import molecule

from ase_phisnet.md import run_md

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("--model", default="water-pbe-def2svp")
p.add_argument("--steps", type=int, default=2000, help="steps per run (0.25 fs each)")
p.add_argument("--output", default="outputs/water_md")
args = p.parse_args()

water = molecule("H2O")
nve = run_md(water, f"{args.output}/nve", model=args.model, ensemble="nve", temperature_K=300, timestep_fs=0.25, steps=args.steps)
print("NVE:", json.dumps(nve, indent=2))
nvt = run_md(water, f"{args.output}/nvt", model=args.model, ensemble="nvt", temperature_K=500, timestep_fs=0.25, steps=args.steps, friction_per_fs=0.01)
print("Langevin 500 K:", json.dumps(nvt, indent=2))
