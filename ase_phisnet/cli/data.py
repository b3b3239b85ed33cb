"""``phisnet data``: sample geometries, label them with PySCF, import, inspect, merge and split datasets.

Heavy modules (PySCF, tblite, h5py) are imported inside the command functions, so building the
parser stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

GROUP_DESCRIPTION = """\
Reference-data pipeline: sample geometries with GFN2-xTB, label them with PySCF (Fock/KS matrix,
overlap, core Hamiltonian, orbital energies, energy, forces, dipole), and keep them in a
crash-safe dataset directory (dataset.json + frames/NNNNNN.npz, one file per frame)."""

GROUP_EPILOG = """\
typical workflow:
  phisnet data sample water -o water.xyz --n-frames 1000
  phisnet data label water.xyz runs/water --workers 2
  phisnet data info runs/water
  phisnet data split runs/water --n-train 500 --n-val 250 -o runs/water/splits.json

the shared reference sets ($PHISNET_DATA, else ../shared/data beside the checkout):
  phisnet data import water_pbe_def2svp_500K.h5 runs/water_ref
"""


def _wrap(text: str) -> str:
    """Wrap a description paragraph (the epilogs keep their own line breaks)."""
    return textwrap.fill(" ".join(text.split()), width=92, break_on_hyphens=False)


def _formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``phisnet data`` and its subcommands."""
    group = subparsers.add_parser(
        "data",
        help="sample, label, import, inspect, merge and split reference datasets",
        description=GROUP_DESCRIPTION,
        epilog=GROUP_EPILOG,
        formatter_class=_formatter,
    )
    group.set_defaults(group_parser=group)
    sub = group.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    _add_sample(sub)
    _add_label(sub)
    _add_merge(sub)
    _add_import(sub)
    _add_info(sub)
    _add_split(sub)
    return group


# ---------------------------------------------------------------------------------- sample
def _add_sample(sub) -> None:
    p = sub.add_parser(
        "sample",
        help="sample geometries with GFN2-xTB (Langevin MD or normal modes)",
        description=_wrap(
            "Sample molecular geometries with GFN2-xTB (tblite) and write them as extxyz "
        "(or ASE .traj for a .traj name). 'md': Langevin dynamics at --temperature with seeded "
        "Maxwell-Boltzmann velocities, --equilibration-ps of equilibration, then one frame every "
        "--stride-fs. 'normal-modes': optimise, compute the harmonic normal modes from xTB forces, "
        "draw displacements from each mode's classical Boltzmann distribution at --temperature. "
        "Both are reproducible by --seed."
        ),
        epilog="""\
MOLECULE_OR_XYZ: water, ethanol, methane, ammonia, benzene, malondialdehyde, uracil, aspirin,
naphthalene, salicylic_acid, toluene, any ase.build.molecule name (e.g. CH3CH2OH), or a geometry
file ase.io.read reads (xyz, extxyz, traj, pdb, ...; its first structure is used).

examples:
  phisnet data sample water -o water_500K.xyz --n-frames 2500          # the shared water set's settings
  phisnet data sample ethanol -o ethanol.xyz --n-frames 400 --seed 3
  phisnet data sample mymol.xyz -o mymol_nm.xyz --sampler normal-modes --temperature 300 --n-frames 200
""",
        formatter_class=_formatter,
    )
    p.add_argument("molecule", metavar="MOLECULE_OR_XYZ", help="molecule name or geometry file")
    p.add_argument("-o", "--output", required=True, metavar="FRAMES.xyz", help="output file (extxyz; .traj writes ASE trajectory)")
    p.add_argument("--sampler", choices=["md", "normal-modes"], default="md", help="sampling method (default: md)")
    p.add_argument("--n-frames", type=int, default=1000, metavar="N", help="number of frames (default: 1000)")
    p.add_argument("--temperature", type=float, default=500.0, metavar="K", help="temperature in K (default: 500)")
    p.add_argument("--stride-fs", type=float, default=10.0, metavar="FS", help="md: time between frames in fs (default: 10)")
    p.add_argument("--timestep-fs", type=float, default=0.5, metavar="FS", help="md: time step in fs (default: 0.5)")
    p.add_argument("--friction", type=float, default=0.01, metavar="PER_FS", help="md: Langevin friction in 1/fs (default: 0.01)")
    p.add_argument("--equilibration-ps", type=float, default=2.0, metavar="PS", help="md: equilibration time in ps (default: 2)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    p.add_argument("--charge", type=int, default=0, help="total charge for xTB (default: 0)")
    p.add_argument("--multiplicity", type=int, default=1, help="spin multiplicity 2S+1 for xTB (default: 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_sample)


def run_sample(args) -> int:
    from ..data.molecules import get_molecule
    from ..data.sample import sample, write_frames
    from ..molecule import check_charge_multiplicity

    atoms = get_molecule(args.molecule)
    check_charge_multiplicity(atoms.numbers, args.charge, args.multiplicity)
    frames = sample(
        atoms,
        args.n_frames,
        sampler=args.sampler,
        temperature=args.temperature,
        stride_fs=args.stride_fs,
        timestep_fs=args.timestep_fs,
        friction=args.friction,
        equilibration_ps=args.equilibration_ps,
        seed=args.seed,
        charge=args.charge,
        multiplicity=args.multiplicity,
        progress=not args.quiet,
    )
    path = write_frames(args.output, frames)
    print(f"wrote {len(frames)} frames of {atoms.get_chemical_formula()} ({args.sampler}, {args.temperature:g} K, seed {args.seed}) to {path}")
    return 0


# ---------------------------------------------------------------------------------- label
def _add_label(sub) -> None:
    p = sub.add_parser(
        "label",
        help="label geometries with PySCF into a dataset (resumable, parallel, sharded)",
        description=_wrap(
            "Label every geometry of FRAMES with a closed-shell PySCF SCF (RKS or RHF) and "
        "its nuclear gradient (or CCSD(T) energy and gradient on the RHF), and store Fock/KS matrix, overlap, core Hamiltonian, orbital energies, "
        "energy, forces, dipole, convergence flag and SCF cycles in DATASET, one file per frame "
        "(named by the frame's index in FRAMES). All frames are validated first (elements in the "
        "basis, charge/multiplicity); nothing is created on bad input. Each frame is written "
        "atomically when done: rerun the same command after a crash or kill to resume. Unconverged "
        "frames are kept and flagged (converged=False)."
        ),
        epilog="""\
examples:
  phisnet data label water.xyz runs/water                                   # PBE/def2-SVP, grid 3, conv_tol 1e-11
  phisnet data label water.xyz runs/water --workers 2                       # 2 single-threaded worker processes
  phisnet data label water.xyz runs/water_hf --method rhf --basis def2-svp
  phisnet data label water.xyz runs/water_cc --method "ccsd(t)"           # RHF matrices, CCSD(T) E and F
  phisnet data label big.xyz runs/part1 --shard 1/2    # on machine 1 (frames with index % 2 == 0)
  phisnet data label big.xyz runs/part2 --shard 2/2    # on machine 2 (frames with index % 2 == 1)
  phisnet data merge runs/big runs/part1 runs/part2
""",
        formatter_class=_formatter,
    )
    p.add_argument("frames", metavar="FRAMES.xyz", help="geometries (Å), any format ase.io.read reads")
    p.add_argument("dataset", metavar="DATASET", help="dataset directory (created, or resumed)")
    p.add_argument(
        "--method",
        choices=["rks", "rhf", "ccsd(t)"],
        default="rks",
        help="rks: Kohn-Sham DFT; rhf: Hartree-Fock; ccsd(t): RHF matrices with CCSD(T) energy and forces (default: rks)",
    )
    p.add_argument("--xc", default="pbe", help="exchange-correlation functional for rks (default: pbe)")
    p.add_argument("--basis", default="def2-svp", help="PySCF basis set (default: def2-svp)")
    p.add_argument("--grids-level", type=int, default=3, metavar="L", help="PySCF DFT grid level 0-9 (default: 3)")
    p.add_argument("--conv-tol", type=float, default=1e-11, metavar="EH", help="SCF convergence threshold in Hartree (default: 1e-11)")
    p.add_argument("--charge", type=int, default=0, help="total charge (default: 0)")
    p.add_argument("--multiplicity", type=int, default=1, help="spin multiplicity 2S+1; only 1 (closed shell) is supported")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes, one thread each (default: 1, in this process)")
    p.add_argument("--shard", metavar="k/n", help="label only frames with index %% n == k-1 (k = 1..n)")
    p.add_argument("--max-frames", type=int, metavar="M", help="consider only the first M frames of FRAMES")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_label)


def run_label(args) -> int:
    from ..data.label import LabelError, label_dataset

    try:
        summary = label_dataset(
            args.frames,
            args.dataset,
            method=args.method,
            xc=args.xc,
            basis=args.basis,
            grids_level=args.grids_level,
            conv_tol=args.conv_tol,
            charge=args.charge,
            multiplicity=args.multiplicity,
            workers=args.workers,
            shard=args.shard,
            max_frames=args.max_frames,
            progress=not args.quiet,
        )
    except LabelError as err:
        print(f"phisnet data label: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"phisnet data label: interrupted; finished frames are stored in {args.dataset}; rerun the same command to resume", file=sys.stderr)
        return 130
    line = (
        f"{args.dataset}: {summary.already_done + summary.labeled}/{summary.selected} frames "
        f"({summary.labeled} labeled now, {summary.already_done} already there"
    )
    if summary.labeled and summary.seconds > 0:
        line += f"; {summary.labeled / summary.seconds:.2f} frames/s"
    line += ")"
    if summary.unconverged:
        line += f"; {len(summary.unconverged)} did not converge (kept, flagged converged=False)"
    print(line)
    return 0


# ---------------------------------------------------------------------------------- merge
def _add_merge(sub) -> None:
    p = sub.add_parser(
        "merge",
        help="join shard datasets into one",
        description=_wrap(
            "Join datasets labeled with the same settings (e.g. the shards of `phisnet data "
        "label --shard k/n`) into OUT. Frames present in several inputs must be identical; conflicting "
        "frames or different settings are refused before anything is written."
        ),
        epilog="""\
examples:
  phisnet data merge runs/water runs/water_1of2 runs/water_2of2
  phisnet data merge runs/all runs/shard_*
""",
        formatter_class=_formatter,
    )
    p.add_argument("output", metavar="OUT", help="output dataset directory (created, or extended)")
    p.add_argument("shards", metavar="SHARD_DIR", nargs="+", help="input dataset directories")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_merge)


def run_merge(args) -> int:
    from ..data.merge import merge

    with merge(args.output, args.shards, progress=not args.quiet) as out:
        print(f"{args.output}: {len(out)} frames from {len(args.shards)} datasets")
    return 0


# ---------------------------------------------------------------------------------- import
def _add_import(sub) -> None:
    p = sub.add_parser(
        "import",
        help="import a shared HDF5 reference set into a dataset",
        description=_wrap(
            "Import an HDF5 reference set (the layout of the README.md in the reference-data folder: keys "
        "numbers, positions, energy, forces, fock, overlap, hcore, mo_energy, dipole, converged, "
        "scf_cycles; attributes xc, basis, grids_level, conv_tol, pyscf_version) into DATASET; row i "
        "becomes frame i. The HDF5 file is read in place. FILE.h5 is a path, or a bare set name looked "
        "up in the reference-data folder: --data-dir, else the environment variable PHISNET_DATA, else "
        "../shared/data beside the checkout (or relative to the working directory)."
        ),
        epilog="""\
examples:
  phisnet data import water_pbe_def2svp_500K.h5 runs/water                 # a set in the reference-data folder
  phisnet data import ethanol_pbe_def2svp_500K.h5 runs/ethanol --data-dir ../shared/data
  phisnet data import ../shared/data/water_pbe_def2svp_500K.h5 runs/water  # a path
""",
        formatter_class=_formatter,
    )
    p.add_argument("h5", metavar="FILE.h5", help="HDF5 reference set: a path, or a set name in the reference-data folder")
    p.add_argument("dataset", metavar="DATASET", help="dataset directory (created, or resumed)")
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="reference-data folder for a bare set name (default: $PHISNET_DATA, else ../shared/data beside the checkout)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_import)


def run_import(args) -> int:
    from ..data.importer import import_h5
    from ..data.location import resolve_dataset

    h5 = resolve_dataset(args.h5, args.data_dir)
    store = import_h5(h5, args.dataset, progress=not args.quiet)
    print(f"{args.dataset}: {len(store)} frames imported from {h5}")
    return 0


# ---------------------------------------------------------------------------------- info
def _add_info(sub) -> None:
    p = sub.add_parser(
        "info",
        help="summarise a dataset (frames, formulas, settings, energies)",
        description=_wrap(
            "Print a dataset's frame count, formulas and elements, labeling settings "
        "(method, xc, basis, grid, conv_tol), energy range and mean (Hartree), number of "
        "unconverged frames and AO count; for a dataset that `phisnet data label` is making or "
        "made, its progress record too (frames done of its shard, seconds per frame, when last "
        "written). Several datasets, e.g. the shards of one labelling, are summarised in turn, "
        "with the frames done of all of them."
        ),
        epilog="""\
examples:
  phisnet data info runs/water
  phisnet data info runs/water --json > water_info.json
  phisnet data info ../data/malondialdehyde_part*      # the shards of one labelling, and their sum
""",
        formatter_class=_formatter,
    )
    p.add_argument("datasets", nargs="+", metavar="DATASET", help="dataset directory (several: each in turn)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (a list for several datasets)")
    p.set_defaults(func=run_info)


def format_info(info: dict) -> str:
    """Human-readable lines of :meth:`FrameStore.summary`."""
    meta = info["meta"]
    lines = [
        f"dataset: {info['path']}",
        f"frames: {info['frames']}",
        f"unconverged: {info['unconverged']}",
    ]
    for formula, entry in info["formulas"].items():
        lines.append(f"formula: {formula} ({entry['frames']} frames, {entry['natoms']} atoms, {entry['nao']} AOs)")
    lines.append(f"elements: {', '.join(info['elements'])}")
    lines.append(f"nao: {', '.join(str(n) for n in info['nao'])}")
    method = meta.get("method")
    settings = f"method: {method}"
    if method == "rks":
        settings += f", xc: {meta.get('xc')}"
    settings += f", basis: {meta.get('basis')}"
    if method == "rks":
        settings += f", grids level: {meta.get('grids_level')}"
    settings += f", conv_tol: {meta.get('conv_tol'):g}, charge: {meta.get('charge')}, multiplicity: {meta.get('multiplicity')}"
    lines.append(settings)
    e = info["energy_hartree"]
    if e:
        lines.append(f"energy (Hartree): min {e['min']:.8f}, max {e['max']:.8f}, mean {e['mean']:.8f}")
    if info["index_range"]:
        lines.append(f"frame indices: {info['index_range'][0]}..{info['index_range'][1]}")
    lines.append(f"source: {meta.get('source')}, pyscf {meta.get('pyscf_version')}, created {meta.get('created')}")
    record = info.get("labelling")
    if record:
        shard = f"shard {record['shard']}" if record["shard"] else "all frames"
        pace = f", {record['seconds_per_frame']:g} s a frame" if record["seconds_per_frame"] else ""
        left = record["selected"] - record["done"]
        eta = f", about {left * record['seconds_per_frame'] / 3600:.1f} h left at that pace" if record["seconds_per_frame"] and left else ""
        lines.append(
            f"labelling: {record['done']} of {record['selected']} frames of {record['frames_file']} ({shard}){pace}{eta}; "
            f"{record['unconverged']} unconverged, {record['failed']} failed; record written {record['updated']}"
        )
    return "\n".join(lines)


def run_info(args) -> int:
    from ..data.label import PROGRESS_FILE
    from ..data.store import FrameStore

    infos = []
    for path in args.datasets:
        with FrameStore.open(path) as store:
            info = store.summary()
            record = store.path / PROGRESS_FILE
        if record.is_file():
            info["labelling"] = json.loads(record.read_text())
        infos.append(info)
    if args.json:
        print(json.dumps(infos[0] if len(infos) == 1 else infos, indent=2))
        return 0
    print("\n\n".join(format_info(info) for info in infos))
    if len(infos) > 1:
        records = [i["labelling"] for i in infos if "labelling" in i]
        total = f"; labelling: {sum(r['done'] for r in records)} of {sum(r['selected'] for r in records)} frames done" if records else ""
        print(f"\n{len(infos)} datasets: {sum(i['frames'] for i in infos)} frames{total}")
    return 0


# ---------------------------------------------------------------------------------- split
def _add_split(sub) -> None:
    p = sub.add_parser(
        "split",
        help="make seeded train/val/test splits of frame indices",
        description=_wrap(
            "Split a dataset's frame indices into train/val/test sets with "
        "numpy.random.default_rng(seed).permutation over the eligible frames (unconverged frames "
        "excluded unless --include-unconverged). The test set is the rest unless --n-test is given. "
        "Prints the splits as JSON, or saves them with -o and prints their sizes."
        ),
        epilog="""\
examples:
  phisnet data split runs/water --n-train 500 --n-val 500 --seed 0 -o runs/water/splits.json   # water protocol
  phisnet data split runs/ethanol --n-train 200 --n-val 100 --n-test 100
""",
        formatter_class=_formatter,
    )
    p.add_argument("dataset", metavar="DATASET", help="dataset directory")
    p.add_argument("--n-train", type=int, required=True, metavar="N", help="training frames")
    p.add_argument("--n-val", type=int, required=True, metavar="N", help="validation frames")
    p.add_argument("--n-test", type=int, metavar="N", help="test frames (default: all remaining)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--include-unconverged", action="store_true", help="also use frames whose SCF did not converge")
    p.add_argument("-o", "--output", metavar="splits.json", help="save the splits as JSON")
    p.set_defaults(func=run_split)


def run_split(args) -> int:
    from ..data.splits import make_splits, save_splits, splits_to_json
    from ..data.store import FrameStore

    store = FrameStore.open(args.dataset)
    splits = make_splits(store, args.n_train, args.n_val, args.n_test, seed=args.seed, include_unconverged=args.include_unconverged)
    info = {"dataset": str(args.dataset), "seed": args.seed, "include_unconverged": args.include_unconverged}
    if args.output:
        save_splits(args.output, splits, **info)
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in splits.items())
        print(f"{sizes} (seed {args.seed}) -> {args.output}")
    else:
        sys.stdout.write(splits_to_json(splits, **info))
    return 0
