"""Harmonic frequencies and IR spectrum of water, shipped model vs PySCF PBE/def2-SVP (analytic
Hessian; IR intensities from finite differences of PySCF dipoles). Writes outputs/vibrations_water/.
Same as `phisnet vibrations -o outputs/vibrations_water`.

    python md_runs/vibrations_water.py
"""

import sys

from ase_phisnet.cli.main import main

sys.exit(main(["vibrations", "-o", "outputs/vibrations_water", *sys.argv[1:]]))
