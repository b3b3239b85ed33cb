"""Add message-passing modules to a trained model without changing what it predicts.

    python training/deepen_model.py runs/water-pbe-def2svp/stage9b/best \
        runs/deepened-3 --num-interactions 3

The new interaction modules go after the trained ones with their output layer set to zero
(:func:`ase_phisnet.training.deepen.deepen`): each is the identity, so the deeper model gives
the same matrices; the script checks that on a small molecule of the model's elements before
it writes anything.
Train it with ``init_from`` the written folder and ``num_interactions`` raised in the config's
``model`` entry (as a train stage of a recipe, or a single training config).
"""

from __future__ import annotations

import argparse

import torch

from ase_phisnet.model.io import load_model, save_model
from ase_phisnet.training.deepen import deepen


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="trained model (shipped name or folder)")
    p.add_argument("output", help="folder for the deeper model")
    p.add_argument("--num-interactions", type=int, required=True)
    args = p.parse_args()
    model = load_model(args.model, dtype=torch.float64)
    deeper = deepen(model, args.num_interactions)
    # one atom of each of the model's elements, 2.5 Bohr apart along a bent chain
    numbers = list(model.elements)
    positions = torch.tensor([[2.5 * k, 0.8 * (k % 2), 0.0] for k in range(len(numbers))], dtype=torch.float64)
    graph = model.graph([numbers], [positions])
    with torch.no_grad():
        before, after = model(graph), deeper(graph)
    change = max(float((before[k] - after[k]).abs().max()) for k in before)
    if change > 1e-12:
        raise RuntimeError(f"the deeper model changed a prediction by {change:.2e} Hartree; it should not")
    metadata = {**model.metadata, "deepened_from": {"model": args.model, "num_interactions": model.config.num_interactions}}
    print(f"{args.model}: {model.config.num_interactions} -> {args.num_interactions} interaction modules; largest change of a matrix element {change:.1e} Hartree")
    print(f"written to {save_model(deeper, args.output, metadata=metadata)}")


if __name__ == "__main__":
    main()
