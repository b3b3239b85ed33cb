"""Ship a density model inside the package with its test-split report.

    phisnet density evaluate runs/water-density-etb/best ../shared/data/water_pbe_def2svp_500K.h5 \
        --json runs/density-eval-full.json
    python training/ship_density_model.py runs/water-density-etb/best water-density-etb \
        --report runs/density-eval-full.json

The report's means (eps_rho of both routes and of the fit, one-step energy errors) go to
``metadata.test_report``, with the per-frame values of the first ``--keep-frames`` frames so
that a test can recompute them. The model is written to ``ase_phisnet/pretrained/NAME/``, where
``load_density_model(NAME)`` finds it. Prints the markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ase_phisnet.cli.density import markdown
from ase_phisnet.density.model import load_density_model, save_density_model
from ase_phisnet.model.io import SHIPPED


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("density_model", help="trained density model folder (e.g. runs/water-density-etb/best)")
    p.add_argument("name", help="name to ship it under")
    p.add_argument("--report", required=True, help="JSON written by `phisnet density evaluate ... --json` on the test split")
    p.add_argument("--keep-frames", type=int, default=5, help="per-frame values kept for the tests (default 5)")
    args = p.parse_args()

    model = load_density_model(args.density_model)
    report = json.loads(Path(args.report).read_text())
    if report.get("split") != "test":
        p.error(f"{args.report} is a {report.get('split')!r} split report; ship with the test split's")
    report["per_frame"] = {k: v[: args.keep_frames] for k, v in report["per_frame"].items()}
    metadata = {**model.metadata, "test_report": report}
    out = save_density_model(model, SHIPPED / args.name, metadata)
    print(f"shipped to {out}")
    print(markdown(report))


if __name__ == "__main__":
    main()
