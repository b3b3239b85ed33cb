#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv, then with the shipped water model
#   1. evaluate it on the shared water test split (matrix, orbital, energy and force metrics),
#   2. run NVE molecular dynamics (0.5 ps at 0.25 fs) with its energy/temperature/gap figure,
#   3. optimize a distorted water with the model and with PySCF and compare the minima,
#   4. compare harmonic frequencies with PySCF's analytic Hessian and draw both IR spectra,
#   5. draw orbitals, levels and densities of the MD's last frame beside PBE, with cube files.
# Outputs go to outputs/quickstart/; rerunning continues the MD from its last frame.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
. .venv/bin/activate
OUT=outputs/quickstart
SHARED=../shared/data
mkdir -p "$OUT"

echo "== 1. evaluate the shipped model on the recorded test split"
phisnet evaluate water-pbe-def2svp "$SHARED/water_pbe_def2svp_500K.h5" --split test \
    --json "$OUT/water_test_metrics.json" --markdown "$OUT/water_test_metrics.md" --no-progress

echo "== 2. NVE molecular dynamics, 2000 steps of 0.25 fs"
phisnet md -o "$OUT/md_nve" --steps 2000 --timestep 0.25 --temperature 300

echo "== 3. geometry optimization, model vs PySCF PBE/def2-SVP"
phisnet optimize -o "$OUT/optimize"

echo "== 4. vibrations and IR spectrum, model vs PySCF"
phisnet vibrations -o "$OUT/vibrations"

echo "== 5. pictures of the last MD frame: levels, HOMO/LUMO, density, model minus DFT"
phisnet plot "$OUT/md_nve/md.traj" --frame -1 -o "$OUT/pictures"

echo "figures: $OUT/md_nve/md_energies.png $OUT/vibrations/ir_spectrum.png $OUT/pictures/*.png"
