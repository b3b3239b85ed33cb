"""Pictures of water's learned electronic structure beside PBE/def2-SVP: orbital levels, HOMO-1,
HOMO and LUMO as contour maps and isosurfaces, the density and the model-minus-DFT difference,
and cube files. Writes outputs/plot_water/. Same as `phisnet plot -o outputs/plot_water ...`;
give a trajectory and `--frame N` to draw a frame of an MD run instead.

    python md_runs/plot_water.py
    python md_runs/plot_water.py outputs/water_md/md.traj --frame -1
"""

import sys

from ase_phisnet.cli.main import main

sys.exit(main(["plot", "-o", "outputs/plot_water", "--orbitals", "homo-1", "homo", "lumo", *sys.argv[1:]]))
