"""The CUDA path gives the CPU path's numbers: model, calculator and training, in float64.

These run wherever torch sees a GPU (the lent device machines); on a CPU-only machine, CI
included, there is nothing to compare against and the module is skipped.
"""

import numpy as np
import pytest
import torch
import yaml
from ase import Atoms

from ase_phisnet import PhiSNetCalculator, load_model
from ase_phisnet.basis import random_rotation
from ase_phisnet.training import TrainConfig, Trainer

from .conftest import WATER_H5, shared_frame
from .model.test_phisnet import ELEMENTS, random_molecule

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_model_on_cuda_matches_cpu_and_rotates_exactly():
    from ase_phisnet.model import PhiSNetConfig, build_model

    torch.manual_seed(0)
    cpu = build_model(PhiSNetConfig.from_preset("small", elements=ELEMENTS, features=8, heads=["fock", "hcore"]), torch.float64)
    gpu = build_model(cpu.config, torch.float64, "cuda")
    gpu.load_state_dict(cpu.state_dict())
    numbers, pos = random_molecule(0)
    a, b = cpu.predict(numbers, pos), gpu.predict(numbers, pos)
    for name in ("fock", "hcore"):
        assert np.abs(a[name] - b[name]).max() <= 1e-12 * np.abs(a[name]).max()
    R = random_rotation(11)
    D = gpu.basis.wigner_d(R, numbers)
    rotated = gpu.predict(numbers, pos @ R.T)["fock"]
    assert np.abs(rotated - D @ b["fock"] @ D.T).max() <= 1e-10 * np.abs(b["fock"]).max()


def test_calculator_on_cuda_matches_cpu():
    numbers, pos = shared_frame(WATER_H5, 7)
    results = {}
    for device in ("cpu", "cuda"):
        atoms = Atoms(numbers=numbers, positions=pos)
        atoms.calc = PhiSNetCalculator(device=device)
        results[device] = (atoms.get_potential_energy(), atoms.get_forces(), atoms.get_dipole_moment(), atoms.calc.get_eigenvalues())
    (e0, f0, d0, eps0), (e1, f1, d1, eps1) = results["cpu"], results["cuda"]
    assert abs(e1 - e0) < 1e-8  # eV, on ~2080 eV
    assert np.abs(f1 - f0).max() < 1e-8  # eV/Å
    assert np.abs(d1 - d0).max() < 1e-9  # e·Å
    assert np.abs(eps1 - eps0).max() < 1e-8  # eV
    assert np.abs(f0).max() > 1e-2  # a geometry away from equilibrium: the comparison means something


def tiny_run(tmp_path, name, device, **overrides):
    cfg = {
        "name": name,
        "dataset": str(WATER_H5),
        "splits": {"n_train": 16, "n_val": 8, "n_test": 8, "seed": 3},
        "model": {"preset": "small", "features": 4, "num_radial": 8, "radial_hidden": 8, "heads": ["fock", "hcore"], "core_baseline": True},
        "loss": {"fock": 1.0, "hcore": 1.0, "energy": 1.0, "forces": 1.0, "orbital_energies": 1.0},
        "energy_forces_from": 0,
        "batch_size": 4,
        "max_steps": 6,
        "val_every": 3,
        "dtype": "float64",
        "device": device,
        "output": str(tmp_path / name),
        **overrides,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return TrainConfig.from_yaml(path)


def test_a_cuda_training_run_follows_the_cpu_run_and_resumes(tmp_path):
    """Same seed, same batches, float64: E/F/eps training on CUDA lands on the CPU weights."""
    weights = {}
    for device in ("cpu", "cuda"):
        trainer = Trainer(tiny_run(tmp_path, device, device), progress=False)
        trainer.fit()
        weights[device] = {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}
    for key, w in weights["cpu"].items():
        assert torch.allclose(weights["cuda"][key], w, rtol=1e-7, atol=1e-10), key

    # a CUDA checkpoint resumes on CUDA, and its exported model loads on the CPU
    longer = tiny_run(tmp_path, "cuda", "cuda", max_steps=9)
    trainer = Trainer(longer, resume=True, progress=False)
    assert trainer.step == 6
    trainer.fit()
    assert trainer.step == 9
    model = load_model(tmp_path / "cuda" / "best")
    assert next(model.parameters()).device.type == "cpu"
