"""``phisnet optimize``: BFGS on the learned surface, compared with the PySCF reference minimum."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """examples:
  phisnet optimize -o outputs/opt                       # distorted water, fmax 0.01 eV/Å
  phisnet optimize start.xyz --model runs/NAME/best -o outputs/opt
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "optimize",
        help="geometry optimization with the model and with PySCF, minima compared",
        description="Run ASE's BFGS from one start with PhiSNetCalculator and with PySCF (the model's "
        "reference method and basis), then compare the minima: bond lengths, angles, RMSD.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("geometry", nargs="?", help="start geometry: molecule name or geometry file, as for `phisnet data sample` (a file's first structure); default: a distorted water")
    p.add_argument("-o", "--output", required=True, help="output folder (minima, BFGS logs and trajectories, comparison.json)")
    p.add_argument("--model", help="shipped model name or model folder (needs an H~core head); default: the shipped PBE model trained on the molecule")
    p.add_argument("--fmax", type=float, default=0.01, help="force convergence, eV/Å (default 0.01)")
    p.set_defaults(func=run)


def distorted_water():
    from ase import Atoms

    return Atoms("OHH", positions=[[0.0, 0.0, 0.0], [0.0, 0.80, 0.62], [0.0, -0.70, 0.50]])


def run(args) -> int:

    from ..data.molecules import get_molecule
    from ..model.io import shipped_model_for
    from ..optimize import compare_minima

    start = get_molecule(args.geometry) if args.geometry else distorted_water()
    args.model = args.model or shipped_model_for(start.numbers)
    result = compare_minima(start, model=args.model, fmax=args.fmax, output=args.output)
    Path(args.output, "comparison.json").write_text(json.dumps(result, indent=2) + "\n")
    sym = result["symbols"]
    print(f"BFGS to fmax {args.fmax} eV/Å, model {args.model} vs PySCF")
    print("| bond / angle | PhiSNet | PySCF | difference |")
    print("|---|---|---|---|")
    for b in result["bonds"]:
        i, j = b["atoms"]
        print(f"| {sym[i]}{i}-{sym[j]}{j} (Å) | {b['phisnet_A']:.4f} | {b['pyscf_A']:.4f} | {b['diff_A']:+.4f} |")
    for a in result["angles"]:
        i, c, k = a["atoms"]
        print(f"| {sym[i]}{i}-{sym[c]}{c}-{sym[k]}{k} (°) | {a['phisnet_deg']:.2f} | {a['pyscf_deg']:.2f} | {a['diff_deg']:+.2f} |")
    print(f"\nRMSD after superposition: {result['rmsd_A']:.4f} Å; largest bond error {result['max_bond_error_A']:.4f} Å, "
          f"largest angle error {result['max_angle_error_deg']:.2f}°")
    return 0
