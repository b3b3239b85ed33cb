"""The published metrics, computed as the field computes them, checked on PySCF reference data."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from ase_phisnet.evaluation import evaluate, markdown_table, orbital_metrics
from ase_phisnet.model import PhiSNetConfig, build_model
from ase_phisnet.model.io import save_model
from ase_phisnet.training.data import load_frames

from .conftest import WATER_H5


@pytest.fixture(scope="module")
def water_frames():
    frames, meta = load_frames(WATER_H5)
    assert meta["xc"] == "pbe" and len(frames) == 2500
    return frames


def test_reference_eigenproblem_reproduces_pyscf_orbital_energies(water_frames):
    import scipy.linalg

    for f in water_frames[:5]:
        eps = scipy.linalg.eigh(f["fock"], f["overlap"], eigvals_only=True)
        # PySCF's mo_energy comes from the Fock matrix of the last-but-one density (conv_tol
        # 1e-11), the stored F from the converged one: they agree to ~1e-7 Eh, far below 1 µEh.
        assert np.abs(eps - f["mo_energy"]).max() < 5e-7


def test_metrics_of_the_reference_and_of_a_perturbation(water_frames):
    f = water_frames[0]
    exact = orbital_metrics(f["fock"], f["fock"], f["overlap"], n_occ=5)
    assert np.abs(exact["eps_abs_err"]).max() < 1e-12 and np.allclose(exact["psi_cos"], 1.0)
    # a uniform shift c*S moves every orbital energy by c and leaves the orbitals alone
    shifted = orbital_metrics(f["fock"] + 1e-4 * f["overlap"], f["fock"], f["overlap"], n_occ=5)
    assert np.allclose(shifted["eps_abs_err"], 1e-4, atol=1e-12) and np.allclose(shifted["psi_cos"], 1.0)
    # a random symmetric perturbation rotates the orbitals: cosine drops below 1
    rng = np.random.default_rng(0)
    E = rng.normal(size=f["fock"].shape) * 1e-2
    noisy = orbital_metrics(f["fock"] + E + E.T, f["fock"], f["overlap"], n_occ=5)
    assert noisy["psi_cos"].min() < 0.9999


def test_virtual_orbital_gap_and_dipole_errors(water_frames):
    """Zero for the reference itself; a shift c S moves every virtual orbital by c and neither the
    gap nor the density; the reference density's dipole is the stored one (Debye)."""
    from ase_phisnet.electronic.properties import dipole_moment
    from ase_phisnet.molecule import build_mol
    from ase_phisnet.units import BOHR, DEBYE

    f = water_frames[4]
    exact = orbital_metrics(f["fock"], f["fock"], f["overlap"], n_occ=5)
    assert exact["eps_virtual_abs_err"].shape == (4,) and exact["eps_virtual_abs_err"].max() < 1e-12 and exact["gap_abs_err"] < 1e-12
    shifted = orbital_metrics(f["fock"] + 2e-4 * f["overlap"], f["fock"], f["overlap"], n_occ=5)
    assert np.allclose(shifted["eps_virtual_abs_err"], 2e-4, atol=1e-11) and shifted["gap_abs_err"] < 1e-11
    assert np.abs(shifted["P_pred"] - exact["P_ref"]).max() < 1e-9
    mu = dipole_moment(build_mol(f["numbers"], f["positions"]), exact["P_ref"]) * BOHR / DEBYE
    assert np.abs(mu - f["dipole"]).max() < 1e-5 and np.abs(f["dipole"]).max() > 0.1


def test_evaluate_and_cli_on_recorded_split(water_frames, tmp_path):
    torch.manual_seed(0)
    model = build_model(PhiSNetConfig.from_preset("small", elements=[1, 8], features=4), torch.float64)
    split = {"train": [0, 1], "val": [2, 3], "test": [10, 11, 12]}
    save_model(model, tmp_path / "m", metadata={"splits": split})
    result = evaluate(model, [water_frames[i] for i in split["test"]], progress=False)
    # H MAE by hand, in PySCF order
    by_hand = np.mean([np.abs(model.predict(water_frames[i]["numbers"], water_frames[i]["positions"])["fock"] - water_frames[i]["fock"]).mean() for i in split["test"]])
    assert result["n_frames"] == 3 and abs(result["h_mae_uEh"] - by_hand * 1e6) < 1e-6
    assert 0 <= result["psi_percent"] <= 100
    table = markdown_table(result, "m", "test")
    assert "15.67" in table and "165.4" in table and "MD17" in table

    out = subprocess.run(
        [sys.executable, "-m", "ase_phisnet.cli.main", "evaluate", tmp_path / "m", WATER_H5, "--json", tmp_path / "r.json", "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["n_frames"] == 3 and abs(saved["h_mae_uEh"] - result["h_mae_uEh"]) < 1e-6
    bad = subprocess.run([sys.executable, "-m", "ase_phisnet.cli.main", "evaluate", tmp_path / "nothing", WATER_H5], capture_output=True, text=True)
    assert bad.returncode == 2 and "no model" in bad.stderr
