"""Where a model's force error lies: frames inside against outside its training range.

For each frame of a split: the force MAE (meV/Å, over all Cartesian components), the H MAE
(µEh) and whether every element-pair distance lies inside the model's recorded training range
(``metadata["training_range"]``, the shortest and longest distance per pair in the training
frames; the calculator warns outside it). Prints the split's mean and median force MAE, the
share of the summed error carried by the worst tenth of the frames and by the frames outside
the range, the mean force and H errors inside and outside, the correlation between the
per-frame force and H errors, and the worst frames.

    python benchmarks/force_error_tail.py                              # water-pbe-def2svp, test split
    python benchmarks/force_error_tail.py --split val --json tail.json
    python benchmarks/force_error_tail.py --model runs/water-pbe-def2svp/heads-refit/best --max-frames 300
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ase_phisnet.units import HARTREE_PER_BOHR

DATASET = "../shared/data/water_pbe_def2svp_500K.h5"


def outside_range(frames: list[dict], pair_range: dict) -> np.ndarray:
    """True for each frame with an element-pair distance (Å) outside ``pair_range`` (``"Z1-Z2"`` ->
    [shortest, longest], as :func:`~ase_phisnet.training.data.pair_distance_range` records it); a
    pair the range does not hold counts as outside."""
    from ase_phisnet.training.data import pair_distance_range

    def outside(frame) -> bool:
        own = pair_distance_range([frame["numbers"]], [frame["positions"]])
        return any(key not in pair_range or lo < pair_range[key][0] or hi > pair_range[key][1] for key, (lo, hi) in own.items())

    return np.array([outside(f) for f in frames], dtype=bool)


def force_error_tail(model, frames: list[dict], worst: int = 5, progress: bool = True) -> dict:
    """The breakdown of the module docstring for ``frames`` (dict of floats and a list of the
    worst frames: index in ``frames``, force MAE, H MAE, outside the range)."""
    from ase_phisnet.evaluation import evaluate, predict_energies_forces

    _, forces = predict_energies_forces(model, frames, 32, progress)
    f_mae = np.array([np.abs(g - np.asarray(f["forces"])).mean() for g, f in zip(forces, frames)]) * HARTREE_PER_BOHR * 1e3
    h_mae = np.asarray(evaluate(model, frames, progress=progress)["per_frame_h_mae_uEh"])
    pair_range = model.metadata.get("training_range", {}).get("pair_distance_A")
    if not pair_range:
        raise SystemExit("the model records no training_range (metadata.training_range.pair_distance_A)")
    out = outside_range(frames, pair_range)
    order = np.argsort(f_mae)[::-1]
    tenth = max(1, len(frames) // 10)

    def mean(values, mask):
        return float(values[mask].mean()) if mask.any() else float("nan")

    return {
        "n_frames": len(frames),
        "n_outside_range": int(out.sum()),
        "forces_mae_meV_per_A": float(f_mae.mean()),
        "forces_median_meV_per_A": float(np.median(f_mae)),
        "worst_tenth_share": float(f_mae[order[:tenth]].sum() / f_mae.sum()),
        "outside_range_share": float(f_mae[out].sum() / f_mae.sum()),
        "forces_mae_inside_meV_per_A": mean(f_mae, ~out),
        "forces_mae_outside_meV_per_A": mean(f_mae, out),
        "h_mae_inside_uEh": mean(h_mae, ~out),
        "h_mae_outside_uEh": mean(h_mae, out),
        "correlation_forces_h": float(np.corrcoef(f_mae, h_mae)[0, 1]) if len(frames) > 2 else float("nan"),
        "worst": [{"frame": int(i), "forces_mae_meV_per_A": float(f_mae[i]), "h_mae_uEh": float(h_mae[i]), "outside_range": bool(out[i])} for i in order[:worst]],
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="water-pbe-def2svp", help="shipped name or model folder (with an H~core head)")
    p.add_argument("--dataset", default=DATASET, help="the model's training dataset (its splits index it)")
    p.add_argument("--split", default="test", choices=["test", "val", "train"])
    p.add_argument("--max-frames", type=int, default=None, help="only the first N frames of the split")
    p.add_argument("--json", help="write the breakdown here")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    from ase_phisnet.data.splits import select_split
    from ase_phisnet.model.io import load_model
    from ase_phisnet.training.data import load_frames

    model = load_model(args.model)
    if "hcore" not in model.config.heads:
        raise SystemExit(f"{args.model}: no H~core head, so no energies or forces; heads: {model.config.heads}")
    frames, _ = load_frames(args.dataset)
    frames = select_split(model, frames, args.split)[: args.max_frames]
    result = force_error_tail(model, frames, progress=not args.no_progress)
    result.update(model=str(args.model), split=args.split)

    print(f"{args.model}, {args.split} split, {result['n_frames']} frames ({result['n_outside_range']} outside the training range)")
    print(f"  force MAE {result['forces_mae_meV_per_A']:.2f} meV/Å, median frame {result['forces_median_meV_per_A']:.2f}")
    print(f"  worst tenth of the frames: {100 * result['worst_tenth_share']:.1f} % of the summed error; "
          f"frames outside the range: {100 * result['outside_range_share']:.1f} %")
    print(f"  inside the range: forces {result['forces_mae_inside_meV_per_A']:.2f} meV/Å, H {result['h_mae_inside_uEh']:.2f} µEh")
    print(f"  outside the range: forces {result['forces_mae_outside_meV_per_A']:.2f} meV/Å, H {result['h_mae_outside_uEh']:.2f} µEh")
    print(f"  correlation of the per-frame force and H errors: {result['correlation_forces_h']:.3f}")
    for row in result["worst"]:
        print(f"  frame {row['frame']}: forces {row['forces_mae_meV_per_A']:.1f} meV/Å, H {row['h_mae_uEh']:.1f} µEh"
              + (", outside the range" if row["outside_range"] else ""))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
