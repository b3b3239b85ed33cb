"""SCF cycles from the predicted density matrix against PySCF's own initial guesses.

For each geometry, PBE/def2-SVP (grid level 3, conv_tol 1e-10, as the reference data) is run
from PySCF's 'minao', 'atom', 'huckel' and 'sap' guesses and from the model's predicted density
matrix (``PhiSNetCalculator.initial_guess``, ``mf.kernel(dm0=...)``). Prints the mean number of
SCF cycles per guess and checks that every run lands on the same energy (within 1e-8 Eh of the
'minao' run).

The geometries are the first ``--frames`` of the model's test split of the molecule, read from
the sets the model was trained on (its ``metadata["dataset"]``, one set or several read as one;
``--dataset`` names others); the model is the shipped one trained on the molecule unless
``--model`` names another.

    python benchmarks/scf_guess.py                                   # 50 water test frames
    python benchmarks/scf_guess.py --frames 200
    python benchmarks/scf_guess.py --molecule ethanol --model runs/ethanol/best --frames 10
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

PYSCF_GUESSES = ("minao", "atom", "huckel", "sap")


def scf_cycles(mol, init_guess=None, dm0=None, conv_tol=1e-10):
    """(cycles, energy, converged) of a PBE SCF from a PySCF guess or a density matrix."""
    from pyscf import dft

    mf = dft.RKS(mol, xc="pbe")
    mf.grids.level = 3
    mf.conv_tol = conv_tol
    mf.verbose = 0
    if init_guess:
        mf.init_guess = init_guess
    energy = mf.kernel(dm0=dm0)
    return mf.cycles, energy, mf.converged


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--molecule", default="water", help="a name of phisnet data sample (default water)")
    p.add_argument("--model", help="shipped name or model folder (default: the shipped model trained on the molecule)")
    p.add_argument("--dataset", nargs="+", help="the sets the model was trained on, in its order (default: those its metadata names)")
    p.add_argument("--frames", type=int, default=50, help="test-split frames of the molecule (the first N)")
    args = p.parse_args()

    from ase_phisnet.calculator import PhiSNetCalculator
    from ase_phisnet.data.molecules import get_molecule
    from ase_phisnet.data.splits import select_split
    from ase_phisnet.evaluation import molecule_of
    from ase_phisnet.model.io import load_model, shipped_model_for
    from ase_phisnet.molecule import build_mol
    from ase_phisnet.training.data import load_frames

    formula = get_molecule(args.molecule).get_chemical_formula()
    args.model = args.model or shipped_model_for(get_molecule(args.molecule).numbers)
    model = load_model(args.model)
    dataset = args.dataset or model.metadata.get("dataset")
    if not dataset:
        p.error(f"{args.model} records no dataset; give --dataset")
    frames, _ = load_frames(dataset if isinstance(dataset, str) or len(dataset) > 1 else dataset[0])
    split = "test" if "test" in getattr(model, "metadata", {}).get("splits", {}) else "all"
    frames = [f for f in select_split(model, frames, split) if molecule_of(f) == formula][: args.frames]
    if not frames:
        p.error(f"the {split} split of {args.model} holds no {formula} frames")
    calc = PhiSNetCalculator(model)

    cycles = {g: [] for g in (*PYSCF_GUESSES, "phisnet")}
    worst_de = 0.0
    for frame in tqdm(frames, desc=f"SCF guesses, {args.molecule}", unit="frame"):
        atoms = Atoms(numbers=frame["numbers"], positions=frame["positions"])
        mol = build_mol(frame["numbers"], frame["positions"], model.config.basis)
        energies = {}
        for guess in PYSCF_GUESSES:
            n, energies[guess], ok = scf_cycles(mol, init_guess=guess)
            cycles[guess].append(n if ok else np.nan)
        n, energies["phisnet"], ok = scf_cycles(mol, dm0=calc.initial_guess(atoms))
        cycles["phisnet"].append(n if ok else np.nan)
        worst_de = max(worst_de, max(abs(e - energies["minao"]) for e in energies.values()))

    print(f"\n{args.molecule}: {len(frames)} {split}-split frames, PBE/def2-SVP, conv_tol 1e-10, model {args.model}")
    print("| initial guess | mean SCF cycles | min | max | not converged |")
    print("|---|---|---|---|---|")
    for guess, values in cycles.items():
        v = np.asarray(values, dtype=float)
        done = v[np.isfinite(v)]
        label = "PhiSNet predicted P" if guess == "phisnet" else f"PySCF '{guess}'"
        print(f"| {label} | {done.mean():.2f} | {done.min():.0f} | {done.max():.0f} | {int(np.sum(~np.isfinite(v)))} |")
    ratio = statistics.mean(cycles["minao"]) / statistics.mean(cycles["phisnet"])
    print(f"\ncycles ratio minao / PhiSNet: {ratio:.2f}")
    print(f"largest energy difference between guesses: {worst_de:.2e} Eh ({'within' if worst_de < 1e-8 else 'OUTSIDE'} 1e-8 Eh)")


if __name__ == "__main__":
    main()
