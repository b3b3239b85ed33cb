"""The shipped density model ``water-density-etb``: it loads by name, reproduces its recorded
test-split figures frame by frame, and its model card quotes them."""

from pathlib import Path

import numpy as np
import pytest

from ase_phisnet.data.splits import select_split
from ase_phisnet.density.evaluation import density_errors
from ase_phisnet.density.model import load_density_model
from ase_phisnet.training.data import load_frames
from tests.conftest import WATER_H5

CARD = Path(__file__).resolve().parents[2] / "docs" / "models" / "water-density-etb.md"


@pytest.fixture(scope="module")
def shipped():
    return load_density_model("water-density-etb")


def test_recorded_figures_meet_the_targets_and_are_in_the_readme(shipped):
    report = shipped.metadata["test_report"]
    assert report["split"] == "test" and report["n_frames"] == 1500 and report["auxbasis"] == "etb:1.6"
    for route in ("wavefunction", "density_model"):
        assert report[f"{route}_eps_rho_percent"] <= 0.5
    for route in ("wavefunction", "model"):
        assert report[f"{route}_kohn_sham_mae_meV_per_atom"] <= 1.0
        assert report[f"{route}_harris_foulkes_mae_meV_per_atom"] <= 1.0
    card = CARD.read_text()  # the model card quotes the figures
    for key in ("wavefunction_eps_rho_percent", "density_model_eps_rho_percent", "density_fit_eps_rho_percent", "model_harris_foulkes_mae_meV_per_atom"):
        assert f"{report[key]:.3f}" in card, key


def test_first_test_frames_reproduce_the_recorded_per_frame_values(shipped):
    report = shipped.metadata["test_report"]
    frames, _ = load_frames(WATER_H5)
    test = select_split(shipped, frames, "test")[:3]
    result = density_errors(shipped.backbone, test, shipped, progress=False)
    # atol: summation order differs with the thread count (~1e-9 meV/atom seen between 1 and 2 threads)
    for key, values in result["per_frame"].items():
        assert np.allclose(values, report["per_frame"][key][:3], rtol=1e-6, atol=1e-6), key
