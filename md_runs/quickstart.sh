#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv, then run the data pipeline on water and
# evaluate the shipped model on the shared water test split. Outputs go to outputs/quickstart/.
# (Once the ASE calculator lands, this becomes an MD run with the shipped model and its pictures.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
. .venv/bin/activate
OUT=outputs/quickstart
SHARED=../shared/data
mkdir -p "$OUT"

echo "== 1. sample 4 water geometries with GFN2-xTB Langevin MD (500 K)"
[ -f "$OUT/water_md.xyz" ] || phisnet data sample water -o "$OUT/water_md.xyz" --n-frames 4 --equilibration-ps 0.2 --seed 1

echo "== 2. label them with PySCF PBE/def2-SVP (rerunning resumes)"
phisnet data label "$OUT/water_md.xyz" "$OUT/water_labelled" --workers 2
phisnet data info "$OUT/water_labelled"

echo "== 3. import the shared water reference set (read in place) and summarise it"
[ -d "$OUT/water_ref" ] || phisnet data import "$SHARED/water_pbe_def2svp_500K.h5" "$OUT/water_ref"
phisnet data info "$OUT/water_ref"

echo "== 4. evaluate the shipped model on the recorded test split"
phisnet evaluate water-pbe-def2svp "$OUT/water_ref" --split test --json "$OUT/water_test_metrics.json" --markdown "$OUT/water_test_metrics.md"
echo "outputs in $OUT/"
