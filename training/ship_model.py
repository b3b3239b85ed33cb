"""Ship a trained model inside the package: evaluate it on its test split and copy it.

    python training/ship_model.py runs/water-pbe-def2svp/best water-pbe-def2svp \
        --dataset ../shared/data/water_pbe_def2svp_500K.h5

Evaluates the model on the test split recorded in its config (H / eps / psi, the field's
metrics), stores those figures under ``metadata.test_metrics`` and writes the model to
``ase_phisnet/pretrained/NAME/`` (model.safetensors + config.json), where
``ase_phisnet.load_model(NAME)`` finds it. Prints the markdown table for the README.
``--fit-atomic-energies`` first fits per-element energy constants to the training split's mean
energy residual (``model.config.atomic_energies``; forces unchanged).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ase_phisnet.cli.evaluate import select_split
from ase_phisnet.evaluation import energy_force_metrics, evaluate, markdown_table
from ase_phisnet.model.io import SHIPPED, load_model, save_model
from ase_phisnet.training.data import load_frames, pair_distance_range
from ase_phisnet.training.energy_forces import fit_atomic_energies


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="trained model folder (e.g. runs/NAME/best)")
    p.add_argument("name", help="name to ship it under")
    p.add_argument("--dataset", required=True, help="the dataset it was trained on")
    p.add_argument("--stages", help="JSON list of the training stages that led to it (config, steps, wall time), recorded as metadata.training.stages")
    p.add_argument("--attach", action="append", default=[], metavar="KEY=FILE.json", help="record a JSON report under metadata.KEY (e.g. transfer_report=outputs/transfer/report.json)")
    p.add_argument("--fit-atomic-energies", action="store_true", help="fit per-element energy constants (E0s) to the mean energy residual of the training split first")
    args = p.parse_args()

    model = load_model(args.model)
    frames, _ = load_frames(args.dataset)
    if args.fit_atomic_energies:
        table = fit_atomic_energies(model, select_split(model, frames, "train"))
        print("atomic energies (Hartree), fitted on the training split:", table)
    test = select_split(model, frames, "test")
    result = evaluate(model, test)
    if "hcore" in model.config.heads:
        result.update(energy_force_metrics(model, test))
    metadata = dict(model.metadata)
    metadata["test_metrics"] = {k: v for k, v in result.items() if k != "per_frame_h_mae_uEh"}
    metadata["test_metrics"]["dataset"] = Path(args.dataset).name
    if args.stages:
        metadata["training"] = {**metadata.get("training", {}), "stages": json.loads(Path(args.stages).read_text())}
    for item in args.attach:
        key, sep, path = item.partition("=")
        if not sep or not key or key in metadata:
            p.error(f"--attach wants KEY=FILE.json with a new metadata key, got {item!r}")
        metadata[key] = json.loads(Path(path).read_text())
    if "training_range" not in metadata:  # models exported before the record existed
        train = select_split(model, frames, "train")
        metadata["training_range"] = {"pair_distance_A": pair_distance_range([f["numbers"] for f in train], [f["positions"] for f in train])}
    out = save_model(model, SHIPPED / args.name, metadata=metadata)
    print(f"shipped to {out}")
    print(markdown_table(result, args.name, "test"))


if __name__ == "__main__":
    main()
