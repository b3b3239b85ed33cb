"""``phisnet density``: the atom-centred density model (train, evaluate, cube) and route-1 densities."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """examples:
  phisnet density train training/water-density-jfit.yaml
  phisnet density evaluate water-density-etb ../shared/data/water_pbe_def2svp_500K.h5 --frames 100
  phisnet density cube water-density-etb water.xyz -o water_density.cube
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "density",
        help="electron densities: atom-centred model (SALTED) and from the predicted wavefunction",
        description="Train and evaluate the atom-centred density model; eps_rho of both routes side by side "
        "with the density-fitting floor, and one-step Harris-Foulkes / Kohn-Sham energies.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(group_parser=p)
    sub2 = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    t = sub2.add_parser("train", help="train a density model (YAML config)")
    t.add_argument("config", help="training YAML (see training/water-density-jfit.yaml)")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=run_train)

    e = sub2.add_parser("evaluate", help="eps_rho of both routes, the fitting floor and one-step energies")
    e.add_argument("density_model", help="density model: shipped name (water-density-etb) or folder")
    e.add_argument("dataset", help="reference dataset (.h5 or dataset folder)")
    e.add_argument("--model", help="Hamiltonian model for route 1 (default: the density model's own backbone, so one file gives both routes)")
    e.add_argument("--split", default="test", choices=["test", "val", "train", "all"], help="split recorded in the density model (default test)")
    e.add_argument("--frames", type=int, help="only the first N frames of the split")
    e.add_argument("--no-one-step", action="store_true", help="skip the one-step energies")
    e.add_argument("--json", help="write the result here")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=run_evaluate)

    c = sub2.add_parser("cube", help="predicted density of a geometry as a cube file")
    c.add_argument("density_model", help="density model: shipped name (water-density-etb) or folder")
    c.add_argument("geometry", help="molecule name or geometry file, as for `phisnet data sample` (a file's first structure)")
    c.add_argument("-o", "--output", required=True, help="cube file to write")
    c.set_defaults(func=run_cube)


def run_train(args) -> int:
    from ..density.training import DensityTrainingConfig, train_density
    from ..errors import MissingFileError

    if not Path(args.config).exists():
        raise MissingFileError(f"config {args.config} does not exist")
    best = train_density(DensityTrainingConfig.from_yaml(args.config), progress=not args.no_progress)
    print(f"best density model: {best}")
    return 0


def markdown(result: dict) -> str:
    """The comparison table of the two routes and the fitting floor."""
    def cell(key, digits=3):
        return f"{result[key]:.{digits}f}" if key in result else "—"

    lines = [
        f"eps_rho on {result['n_frames']} frames (PySCF DFT grid), auxiliary basis {result['auxbasis']}",
        "",
        "| density | eps_rho (%) | one-step Harris–Foulkes MAE (meV/atom) | one-step KS MAE (meV/atom) |",
        "|---|---|---|---|",
        f"| route 1: from the predicted wavefunction | {cell('wavefunction_eps_rho_percent')} "
        f"| {cell('wavefunction_harris_foulkes_mae_meV_per_atom')} | {cell('wavefunction_kohn_sham_mae_meV_per_atom')} |",
        f"| route 2: atom-centred model | {cell('density_model_eps_rho_percent')} | {cell('model_harris_foulkes_mae_meV_per_atom')} | {cell('model_kohn_sham_mae_meV_per_atom')} |",
        f"| density fit of the DFT density (route 2's floor) | {cell('density_fit_eps_rho_percent')} | {cell('fit_harris_foulkes_mae_meV_per_atom')} | {cell('fit_kohn_sham_mae_meV_per_atom')} |",
    ]
    return "\n".join(lines)


def run_evaluate(args) -> int:
    from ..data.splits import select_split
    from ..density.evaluation import density_errors
    from ..density.model import load_density_model
    from ..model.io import load_model
    from ..training.data import load_frames

    density_model = load_density_model(args.density_model)
    model = load_model(args.model) if args.model else density_model.backbone
    frames, meta = load_frames(args.dataset)
    frames = select_split(density_model, frames, args.split)[: args.frames]
    result = density_errors(model, frames, density_model, one_step=not args.no_one_step, xc=meta.get("xc") or "pbe", progress=not args.no_progress)
    result["split"], result["model"], result["density_model"] = args.split, args.model or "the density model's backbone", str(args.density_model)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    return 0


def run_cube(args) -> int:

    from ..data.molecules import get_molecule
    from ..density.fitting import make_auxmol
    from ..density.model import load_density_model
    from ..electronic.grid import write_aux_density_cube
    from ..molecule import build_mol

    model = load_density_model(args.density_model)
    atoms = get_molecule(args.geometry)
    coeff = model.predict(atoms.get_atomic_numbers(), atoms.get_positions())
    auxmol = make_auxmol(build_mol(atoms.get_atomic_numbers(), atoms.get_positions(), model.backbone.config.basis), model.auxbasis)
    print(f"wrote {write_aux_density_cube(auxmol, coeff, args.output)}")
    return 0
