"""``phisnet evaluate MODEL DATASET``: H / eps / psi metrics on a split recorded in the model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.splits import select_split

EPILOG = """examples:
  phisnet evaluate water-pbe-def2svp ../shared/data/water_pbe_def2svp_500K.h5
  phisnet evaluate runs/water-pbe-def2svp/best data/water --split val --json metrics.json --markdown table.md

The split is the one recorded in the model's config.json (frame indices of its training data);
'all' takes every frame of DATASET. Frames of several molecules (a model trained on several) are
evaluated molecule by molecule: the JSON has one entry per molecule under "by_molecule", and
the markdown one table each.
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="H, orbital-energy and orbital metrics of a model on a dataset",
        description="Evaluate a model as the field does: H MAE over all matrix elements (µEh), MAE of the "
        "occupied orbital energies (µEh) and mean |cosine| of occupied orbital coefficients (%), "
        "eigenproblems with the reference overlap.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="shipped model name or model folder")
    p.add_argument("dataset", nargs="+", help="dataset folder or reference .h5 file; several, in the order the model was trained on them, are read as one set")
    p.add_argument("--split", default="test", choices=["test", "val", "train", "all"], help="frames to evaluate (default: test)")
    p.add_argument("--max-frames", type=int, help="evaluate only the first N frames of the split")
    p.add_argument("--json", dest="json_out", help="write the metrics as JSON here")
    p.add_argument("--markdown", help="write the markdown table here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..evaluation import markdown_table, model_metrics
    from ..model.io import load_model
    from ..training.data import load_frames

    model = load_model(args.model)
    frames, _ = load_frames(args.dataset if len(args.dataset) > 1 else args.dataset[0])
    frames = select_split(model, frames, args.split)
    if args.max_frames:
        frames = frames[: args.max_frames]
    label = Path(str(args.model)).name
    summary = model_metrics(model, frames, progress=not args.no_progress)
    table = markdown_table(summary, label=label, split=args.split)
    summary.update({"model": str(args.model), "dataset": " + ".join(str(d) for d in args.dataset), "split": args.split})
    print(json.dumps(summary, indent=2))
    print()
    print(table)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0
