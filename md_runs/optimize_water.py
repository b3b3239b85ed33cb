"""BFGS (fmax 0.01 eV/Å) of a distorted water with the shipped model and with PySCF PBE/def2-SVP,
minima compared (bonds, angle, RMSD). Same as `phisnet optimize -o outputs/optimize_water`.

    python md_runs/optimize_water.py
"""

import sys

from ase_phisnet.cli.main import main

sys.exit(main(["optimize", "-o", "outputs/optimize_water", *sys.argv[1:]]))
