"""The shipped water model: loadable by name, and `phisnet evaluate` reproduces its recorded
test-split figures (the ones its model card quotes)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ase_phisnet

from .conftest import WATER_H5, load_card_generator

CARD = Path(__file__).resolve().parents[1] / "docs" / "models" / "water-pbe-def2svp.md"


def test_shipped_water_model_loads_by_name():
    assert "water-pbe-def2svp" in ase_phisnet.shipped_models()
    model = ase_phisnet.load_model("water-pbe-def2svp")
    meta = model.metadata
    assert meta["reference"]["xc"] == "pbe" and meta["reference"]["basis"] == "def2-svp"
    assert len(meta["splits"]["train"]) == 500 and len(meta["splits"]["val"]) == 500
    assert not set(meta["splits"]["train"]) & set(meta["splits"]["test"])
    assert model.config.heads == ["fock", "hcore"] and model.config.core_baseline  # energies and forces
    assert meta["training_range"]["pair_distance_A"]["1-8"][0] < 0.9
    F = model.predict([8, 1, 1], [[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]])["fock"]
    assert F.shape == (24, 24) and np.allclose(F, F.T)


def test_evaluate_reproduces_the_recorded_test_metrics(tmp_path):
    recorded = ase_phisnet.load_model("water-pbe-def2svp").metadata["test_metrics"]
    out = subprocess.run(
        [sys.executable, "-m", "ase_phisnet.cli.main", "evaluate", "water-pbe-def2svp", WATER_H5, "--split", "test", "--json", tmp_path / "m.json", "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads((tmp_path / "m.json").read_text())
    assert got["n_frames"] == recorded["n_frames"] == 1500
    for key in ("h_mae_uEh", "eps_mae_uEh", "psi_percent", "energy_mae_meV", "forces_mae_meV_per_A"):
        assert got[key] == pytest.approx(recorded[key], rel=1e-6), key
    # the model card quotes these figures, written as its generator writes numbers
    cards = load_card_generator()
    text = CARD.read_text()
    for key in ("h_mae_uEh", "eps_mae_uEh", "energy_mae_meV", "forces_mae_meV_per_A"):
        assert f"| {cards.number(recorded[key])} |" in text, key
