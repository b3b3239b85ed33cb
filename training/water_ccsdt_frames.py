"""Geometries for the HF -> CCSD(T) transfer-learning set, as an extxyz frames file.

The frames are taken from the shared PBE/def2-SVP water set, from the test split of the shipped
``water-pbe-def2svp`` model (its recorded split), so that neither the HF model, which starts
from the PBE model's weights, nor anything tested here has seen them in training. Each frame
keeps its index in the shared set (``info["shared_index"]``), which pairs it with its PBE
energy and forces for the method comparison.

The ``frames`` stage of ``training/recipes/water-ccsdt-def2svp.yaml`` runs it; by hand, from the
repository root::

    python training/water_ccsdt_frames.py -o runs/water-ccsdt/frames.xyz --n-frames 1000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write

from ase_phisnet import load_model
from ase_phisnet.training.data import load_frames


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", required=True, help="frames file to write (extxyz)")
    p.add_argument("--n-frames", type=int, default=1000, help="number of frames (default: 1000)")
    p.add_argument("--dataset", default="../shared/data/water_pbe_def2svp_500K.h5", help="shared water set")
    p.add_argument("--model", default="water-pbe-def2svp", help="model whose test split the frames come from")
    args = p.parse_args(argv)

    test = np.sort(np.asarray(load_model(args.model).metadata["splits"]["test"], dtype=int))
    if args.n_frames > len(test):
        p.error(f"--n-frames {args.n_frames} exceeds the {len(test)} test frames of {args.model}")
    frames, _ = load_frames(args.dataset)
    images = []
    for i in test[: args.n_frames]:
        atoms = Atoms(numbers=frames[i]["numbers"], positions=frames[i]["positions"])
        atoms.info["shared_index"] = int(i)
        images.append(atoms)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write(args.output, images, format="extxyz")
    print(f"{args.output}: {len(images)} frames from the {args.model} test split of {args.dataset}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
