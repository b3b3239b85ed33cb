"""The atom-centred density model: exact symmetry, the electron count, model files, training."""

import numpy as np
import pytest
import torch

import ase_phisnet
from ase_phisnet.basis import random_rotation
from ase_phisnet.density.fitting import aux_norms, make_auxmol
from ase_phisnet.density.model import DensityModel, load_density_model, save_density_model
from ase_phisnet.model.io import ModelFileError
from ase_phisnet.molecule import build_mol

WATER = np.array([[0.0, 0.0, 0.12], [0.0, 0.76, -0.47], [0.0, -0.76, -0.47]])


@pytest.fixture(scope="module")
def density_model():
    torch.manual_seed(0)
    with torch.random.fork_rng():
        torch.set_default_dtype(torch.float64)
        model = DensityModel(ase_phisnet.load_model("water-pbe-def2svp")).double()
        torch.set_default_dtype(torch.float32)
    return model


def test_prediction_rotates_with_the_molecule(density_model):
    c = density_model.predict([8, 1, 1], WATER)
    for seed in range(3):
        R = random_rotation(seed)
        D = density_model.aux.wigner_d(R, [8, 1, 1])
        rotated = density_model.predict([8, 1, 1], WATER @ R.T + np.array([0.3, -1.0, 2.0]))
        assert np.abs(rotated - D @ c).max() < 1e-8 * np.abs(c).max()


def test_prediction_holds_the_electron_count(density_model):
    aux = make_auxmol(build_mol([8, 1, 1], WATER))
    assert aux_norms(aux) @ density_model.predict([8, 1, 1], WATER) == pytest.approx(10.0, abs=1e-10)
    assert aux_norms(aux) @ density_model.predict([8, 1, 1], WATER, charge=1) == pytest.approx(9.0, abs=1e-10)
    # identical hydrogens get each other's coefficients when swapped
    swapped = density_model.predict([8, 1, 1], WATER[[0, 2, 1]])
    c = density_model.predict([8, 1, 1], WATER)
    n_o, n_h = density_model.aux.n_ao_element(8), density_model.aux.n_ao_element(1)
    assert np.allclose(swapped[n_o : n_o + n_h], c[n_o + n_h :], atol=1e-10)


def test_model_files_round_trip_and_refuse_damage(density_model, tmp_path):
    save_density_model(density_model, tmp_path / "m", {"note": "test"})
    again = load_density_model(tmp_path / "m")
    assert np.allclose(again.predict([8, 1, 1], WATER), density_model.predict([8, 1, 1], WATER), atol=1e-12)
    assert again.metadata == {"note": "test"}
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="checksum"):
        load_density_model(tmp_path / "m")
    with pytest.raises(ModelFileError, match="not a density model folder"):
        load_density_model(tmp_path / "nothing")


def test_a_short_training_run_lowers_the_metric_loss(tmp_path):
    from ase_phisnet.density.training import DensityTrainingConfig, train_density
    from tests.conftest import WATER_H5

    config = DensityTrainingConfig(
        name="t", dataset=str(WATER_H5), solver="adam", steps=60, batch_size=8, lr=1e-2, val_every=30,
        max_train_frames=16, max_val_frames=8, output=str(tmp_path / "run"),
    )
    best = train_density(config, progress=False)
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]
    losses = [float(r.split(",")[4]) for r in rows]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert load_density_model(best).metadata["training"]["step"] == 60


def test_head_jacobian_reproduces_the_heads(density_model):
    from ase_phisnet.density.training import DensityFrames, head_jacobian, head_weights
    from ase_phisnet.training.data import load_frames
    from tests.conftest import WATER_H5

    frames, _ = load_frames(WATER_H5)
    (item,) = DensityFrames(density_model, frames[:1], progress=False).items
    w = torch.cat([p.detach().flatten() for _, _, p in head_weights(density_model)])
    raw = torch.cat([density_model.heads[str(z)](item["features"][a]) for a, z in enumerate(item["numbers"])])
    assert torch.allclose(head_jacobian(density_model, item) @ w, raw, atol=1e-12)


def test_ridge_solver_finds_the_minimum_of_the_metric_loss(tmp_path):
    from ase_phisnet.data.splits import select_split
    from ase_phisnet.density.training import (
        DensityFrames,
        DensityTrainingConfig,
        metric_losses,
        normal_equations,
        set_head_weights,
        train_density,
    )
    from ase_phisnet.training.data import load_frames
    from tests.conftest import WATER_H5

    config = DensityTrainingConfig(name="t", dataset=str(WATER_H5), ridge=[0.0, 1e-6], max_train_frames=24, max_val_frames=8, output=str(tmp_path / "run"))
    train_density(config, progress=False)
    rows = [r.split(",") for r in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]]
    assert [float(r[2]) for r in rows] == [0.0, 1e-6]
    # the unregularised solution: the gradient of the summed training loss vanishes there
    model = DensityModel(ase_phisnet.load_model("water-pbe-def2svp", dtype=torch.float64), "def2-universal-jfit").double()
    frames, _ = load_frames(WATER_H5)
    data = DensityFrames(model, select_split(model.backbone, frames, "train")[:24], progress=False)
    params = [p for p in model.heads.parameters()]
    before = torch.autograd.grad(metric_losses(model, data, range(len(data))).sum(), params)
    A, b = normal_equations(model, data)
    set_head_weights(model, torch.linalg.solve(A, b))
    loss = metric_losses(model, data, range(len(data))).sum()
    after = torch.autograd.grad(loss, params)
    norm = lambda g: float(torch.sqrt(sum((x**2).sum() for x in g)))  # noqa: E731
    assert norm(after) < 1e-6 * norm(before)
    # train_density solved the same problem and recorded its training loss
    assert float(loss.detach()) / len(data) == pytest.approx(float(rows[0][3]), rel=1e-6)
    with torch.no_grad():
        untrained = metric_losses(DensityModel(model.backbone, "def2-universal-jfit").double(), data, range(len(data))).mean()
    assert float(rows[0][3]) < 0.2 * float(untrained)


def test_cli_evaluates_both_routes_and_writes_a_cube(tmp_path):
    import json
    import subprocess
    import sys

    from ase.build import molecule
    from ase.io import write

    from ase_phisnet.density.training import DensityTrainingConfig, train_density
    from ase_phisnet.electronic.grid import read_cube
    from tests.conftest import WATER_H5

    config = DensityTrainingConfig(name="t", dataset=str(WATER_H5), steps=20, batch_size=8, val_every=20, max_train_frames=8, max_val_frames=4, output=str(tmp_path / "run"))
    best = train_density(config, progress=False)
    cli = [sys.executable, "-m", "ase_phisnet.cli.main", "density"]
    out = subprocess.run(cli + ["evaluate", str(best), str(WATER_H5), "--frames", "2", "--json", str(tmp_path / "d.json"), "--no-progress"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "d.json").read_text())
    assert result["n_frames"] == 2 and "route 2: atom-centred model" in out.stdout
    assert result["wavefunction_eps_rho_percent"] < 0.5  # route 1: the backbone (the shipped model) in the file
    assert 1.0 < result["density_fit_eps_rho_percent"] < 2.5  # def2-universal-jfit's own floor
    assert result["fit_kohn_sham_mae_meV_per_atom"] < 0.1
    write(tmp_path / "w.xyz", molecule("H2O"))
    out = subprocess.run(cli + ["cube", str(best), str(tmp_path / "w.xyz"), "-o", str(tmp_path / "rho.cube")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    values, _, _ = read_cube(tmp_path / "rho.cube")
    assert values.ndim == 3 and np.isfinite(values).all()
    bad = subprocess.run(cli + ["cube", str(best), str(tmp_path / "missing.xyz"), "-o", str(tmp_path / "x.cube")], capture_output=True, text=True)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
