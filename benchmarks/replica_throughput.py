"""Per-structure cost of N replicas of one molecule evaluated together (``evaluate_batch``).

An ensemble (replica MD, ``phisnet md --replicas N``) asks for the energies and forces of N
geometries of the same molecule at every step. :meth:`PhiSNetCalculator.evaluate_batch` runs the
compiled engine once for all of them (forward and backward) and the electronic step once per
molecule. This script times one such call for N = 1, 8 and 64 rattled copies of each molecule
(median of ``--repeats`` calls after a warm-up) and prints the cost per structure and its ratio
to N = 1, all from one run: compare rows of one run only (these machines are shared and noisy).

Water runs the shipped model; ethanol runs random weights in the same architecture (as in
``calculator_speed.py``), which costs the same.

Usage::

    python benchmarks/replica_throughput.py                      # water and ethanol, N = 1, 8, 64
    python benchmarks/replica_throughput.py --sizes 1 8 --repeats 2 --molecules water
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import torch
from ase.build import molecule

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calculator_speed import make_calculator, median_ms  # noqa: E402

MOLECULES = {"water": "H2O", "ethanol": "CH3CH2OH"}


def replicas(name: str, n: int, seed: int = 0) -> list:
    """``n`` copies of the molecule, each rattled by 0.02 Å with its own seed."""
    base = molecule(MOLECULES[name])
    out = []
    for k in range(n):
        atoms = base.copy()
        atoms.rattle(0.02, seed=seed + k)
        out.append(atoms)
    return out


def time_batch(calc, images: list, repeats: int) -> float:
    """Median wall time (ms) of one ``evaluate_batch`` call over ``images``, after a warm-up."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights are outside any training range
        calc.evaluate_batch(images)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            calc.evaluate_batch(images)
            times.append(time.perf_counter() - start)
    return median_ms(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", nargs="+", default=list(MOLECULES), choices=list(MOLECULES))
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 8, 64], help="replica counts N (default 1 8 64)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per N (default 3)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name in args.molecules:
        calc, _ = make_calculator(name, replicas(name, 1)[0].get_atomic_numbers())
        per_structure = {}
        for n in args.sizes:
            per_structure[n] = time_batch(calc, replicas(name, n), args.repeats) / n
        rows.append({"molecule": name, "engine": "native" if calc.network is not None else "torch", "per_structure_ms": per_structure})
    print("| molecule | engine | " + " | ".join(f"N = {n}: ms per structure (vs N = {args.sizes[0]})" for n in args.sizes) + " |")
    print("|---|---|" + "---|" * len(args.sizes))
    for r in rows:
        first = r["per_structure_ms"][args.sizes[0]]
        cells = [f"{r['per_structure_ms'][n]:.2f} ({first / r['per_structure_ms'][n]:.2f}x)" for n in args.sizes]
        print(f"| {r['molecule']} | {r['engine']} | " + " | ".join(cells) + " |")
    print("\nOne evaluate_batch call per N (energies and forces of all N), median of", args.repeats, "calls after a warm-up; one torch thread.")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return {"rows": rows}


if __name__ == "__main__":
    main()
