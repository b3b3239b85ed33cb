#!/usr/bin/env bash
# Issue 7: Hartree-Fock -> CCSD(T) transfer learning for water, end to end, from the repository
# root with the environment active (bash .ci/setup; . .venv/bin/activate):
#
#   bash training/water-ccsdt.sh
#
# 1. frames: 1000 geometries of the shipped PBE model's test split of the shared water set;
# 2. labels: RHF/def2-SVP (matrices, energy, forces) and CCSD(T)/def2-SVP (energy, analytic
#    forces; RHF matrices) for the same frames, two single-threaded labelers side by side;
# 3. the HF model (training/water-hf-def2svp.yaml), then the fine-tuned model
#    (training/water-ccsdt-def2svp.yaml);
# 4. the table and figure on the 300 held-out test frames (training/transfer_report.py),
#    in outputs/transfer/.
# Every step resumes or is skipped when its output exists; about 1 h 40 min on 2 CPU cores.
set -euo pipefail
export OMP_NUM_THREADS=1
data=runs/water-ccsdt
mkdir -p "$data"
[ -f "$data/frames.xyz" ] || python training/water_ccsdt_frames.py -o "$data/frames.xyz" --n-frames 1000
phisnet data label "$data/frames.xyz" "$data/hf" --method rhf -q &
phisnet data label "$data/frames.xyz" "$data/cc" --method "ccsd(t)" -q
wait
train() {  # train CONFIG OUTPUT: start, resume, or skip a finished run
    [ -f "$2/done" ] && return
    if [ -f "$2/checkpoint.safetensors" ]; then phisnet train "$1" --resume --threads 2; else phisnet train "$1" --threads 2; fi
    touch "$2/done"
}
train training/water-hf-def2svp.yaml runs/water-hf-def2svp
train training/water-ccsdt-def2svp.yaml runs/water-ccsdt-def2svp
python training/transfer_report.py -o outputs/transfer --fine-tuned runs/water-ccsdt-def2svp/best
