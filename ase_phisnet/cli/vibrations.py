"""``phisnet vibrations``: harmonic frequencies and IR spectrum, model against PySCF."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """examples:
  phisnet vibrations -o outputs/vib                      # water, shipped model
  phisnet vibrations start.xyz --model runs/NAME/best -o outputs/vib
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "vibrations",
        help="harmonic frequencies and IR spectrum, model vs PySCF analytic Hessian",
        description="Optimize with the model and with PySCF, then compare harmonic frequencies (ASE "
        "finite differences of the model's analytic forces vs PySCF's analytic Hessian) and IR "
        "intensities (dipole derivatives of the predicted density matrix vs finite differences of "
        "PySCF dipoles). Writes ir_spectrum.png and vibrations.json.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("geometry", nargs="?", help="start geometry: molecule name or geometry file, as for `phisnet data sample` (a file's first structure); default: a distorted water")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--model", help="shipped model name or model folder (needs an H~core head); default: the shipped PBE model trained on the molecule")
    p.set_defaults(func=run)


def run(args) -> int:

    from ..data.molecules import get_molecule
    from ..model.io import shipped_model_for
    from ..vibrations import ABOVE_CM, compare_vibrations
    from .optimize import distorted_water

    start = get_molecule(args.geometry) if args.geometry else distorted_water()
    args.model = args.model or shipped_model_for(start.numbers)
    result = compare_vibrations(start, model=args.model, output=args.output)
    Path(args.output, "vibrations.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"harmonic frequencies, model {args.model} vs PySCF analytic Hessian")
    print("| mode | PhiSNet (cm^-1) | PySCF (cm^-1) | error (%) | IR PhiSNet | IR PySCF (FD) |")
    print("|---|---|---|---|---|---|")
    for k, (a, b, e, ia, ib) in enumerate(zip(result["phisnet_cm-1"], result["pyscf_hessian_cm-1"], result["relative_error_percent"], result["phisnet_ir_intensity"], result["pyscf_fd_ir_intensity"])):
        print(f"| {k + 1} | {a:.1f} | {b:.1f} | {e:+.2f} | {ia:.4f} | {ib:.4f} |")
    above = result[f"max_abs_relative_error_percent_above_{ABOVE_CM:g}_cm-1"]
    above = f" ({above:.2f} % above {ABOVE_CM:g} cm^-1)" if above is not None else ""
    print(f"\nlargest frequency error {result['max_abs_relative_error_percent']:.2f} %{above}; IR intensities in (D/Å)^2/amu; figure {result['figure']}")
    return 0
