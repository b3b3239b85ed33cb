"""``phisnet plot``: pictures of the learned electronic structure, model beside DFT."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """examples:
  phisnet plot -o outputs/pictures                                  # water, HOMO and LUMO
  phisnet plot outputs/md_nve/md.traj --frame 100 -o outputs/frame100
  phisnet plot start.xyz --orbitals homo-1 homo lumo lumo+1 --format png pdf -o outputs/pics
"""


def add_parser(sub) -> None:
    from ..plots import FORMATS, PLANES

    p = sub.add_parser(
        "plot",
        help="orbital levels, orbitals, density and density difference, cube files",
        description="Draw the model's electronic structure of one geometry beside the PySCF reference "
        "(the model's functional and basis): an orbital energy level diagram, orbitals as contour maps "
        "in a plane and as 3-D isosurfaces, the electron density and the model-minus-DFT difference; "
        "writes cube files of the orbitals and densities for VMD, Avogadro or Jmol.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("geometry", nargs="?", help="molecule name (as for `phisnet data sample`) or geometry / trajectory file (--frame picks the structure); default: water")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--frame", type=int, default=-1, help="frame of a trajectory (default: the last)")
    p.add_argument("--model", default="water-pbe-def2svp", help="shipped model name or model folder")
    p.add_argument("--orbitals", nargs="+", default=["homo", "lumo"], help="homo, lumo, homo-N, lumo+N or 0-based indices (default: homo lumo)")
    p.add_argument("--plane", choices=PLANES, default="auto", help="plane of the contour maps (default auto: each orbital where it is larger)")
    p.add_argument("--format", nargs="+", choices=FORMATS, default=["png"], help="figure formats (default png)")
    p.add_argument("--iso", type=float, default=0.05, help="isosurface value, Bohr^-3/2 (default 0.05)")
    p.add_argument("--charge", type=int, default=0, help="total charge (default 0)")
    p.add_argument("--no-reference", action="store_true", help="draw the model only; no PySCF calculation")
    p.add_argument("--no-cubes", action="store_true", help="do not write cube files")
    p.set_defaults(func=run)


def read_frame(name_or_path, frame: int):
    """One frame of a trajectory file, or a named molecule (the names ``phisnet data sample``
    takes), with a clear error for a bad index."""
    from ..data.molecules import get_molecule, read_frames
    from ..errors import InputError

    if not Path(name_or_path).is_file():
        if frame not in (0, -1):
            raise InputError(f"frame {frame} asked for; a named molecule has one frame (0)")
        return get_molecule(name_or_path)
    frames = read_frames(name_or_path)
    if not -len(frames) <= frame < len(frames):
        raise InputError(f"frame {frame} asked for; {name_or_path} has {len(frames)} frame(s) (0..{len(frames) - 1}, or negative from the end)")
    return frames[frame]


def run(args) -> int:
    from ase.build import molecule

    from ..calculator import PhiSNetCalculator
    from ..plots import plot_electronic_structure

    atoms = read_frame(args.geometry, args.frame) if args.geometry else molecule("H2O")
    calc = PhiSNetCalculator(args.model, charge=args.charge)
    result = plot_electronic_structure(
        atoms, calc, args.output, orbitals=args.orbitals, plane=args.plane, formats=args.format,
        reference=not args.no_reference, cubes=not args.no_cubes, iso=args.iso,
    )
    Path(args.output, "plot.json").write_text(json.dumps(result, indent=2) + "\n")
    labels = list(next(iter(result["orbital_energies_eV"].values())).keys())
    print(f"orbital energies (eV), model {args.model}")
    print("| orbital | " + " | ".join(labels) + (" | difference |" if len(labels) == 2 else " |"))
    print("|---" * (len(labels) + 1 + (len(labels) == 2)) + "|")
    for name, values in result["orbital_energies_eV"].items():
        row = [f"{values[k]:.3f}" for k in labels]
        if len(labels) == 2:
            row.append(f"{values[labels[0]] - values[labels[1]]:+.3f}")
        print(f"| {name} | " + " | ".join(row) + " |")
    print("\nwritten:")
    for kind, paths in result["files"].items():
        print(f"  {kind}: {' '.join(paths)}")
    return 0
