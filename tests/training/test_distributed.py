"""Training in two processes (torchrun, gloo) makes the update of one process on the same batch."""

import subprocess
import sys

import h5py
import numpy as np
import torch
import yaml
from safetensors.torch import load_file

from ase_phisnet.data.store import FRAME_KEYS, FrameStore, make_meta
from ase_phisnet.training import TrainConfig, Trainer

from ..conftest import ETHANOL_H5, WATER_H5, require_reference


def mixed_dataset(path, per_molecule=7):
    """A dataset folder of water and ethanol frames (the first of each reference set)."""
    frames = []
    for h5path in (WATER_H5, ETHANOL_H5):
        with h5py.File(require_reference(h5path, strict=True), "r") as h5:
            numbers = np.asarray(h5["numbers"])
            for i in range(per_molecule):
                frame = {k: np.asarray(h5[k][i]) for k in FRAME_KEYS if k != "numbers"}
                frames.append({**frame, "numbers": numbers if numbers.ndim == 1 else numbers[i]})
    store = FrameStore.create(path, make_meta(source="water and ethanol"))
    store.write_frames(enumerate(frames))
    store.close()
    return path


def config(tmp_path, dataset, name):
    cfg = {
        "name": name,
        "dataset": str(dataset),
        "splits": {"n_train": 8, "n_val": 3, "n_test": 3, "seed": 1},
        "model": {"preset": "small", "features": 4, "num_radial": 8, "radial_hidden": 8, "heads": ["fock", "hcore"], "core_baseline": True},
        "loss": {"fock": 1.0, "hcore": 1.0, "energy": 1.0, "forces": 1.0, "orbital_energies": 1.0},
        "energy_forces_from": 0,
        "batch_size": 3,  # two processes: 2 molecules and 1, so unequal atoms per process
        "max_steps": 3,
        "val_every": 3,
        "dtype": "float64",
        "output": str(tmp_path / name),
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_two_gloo_processes_give_the_weights_of_one(tmp_path):
    dataset = mixed_dataset(tmp_path / "mixed")
    one = Trainer(TrainConfig.from_yaml(config(tmp_path, dataset, "one")), progress=False)
    one.fit()
    assert {len(one.sets["train"].numbers[i]) for i in range(8)} == {3, 9}, "the training split should hold both molecules"

    two = config(tmp_path, dataset, "two")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "ase_phisnet.cli.main", "train", str(two), "--no-progress", "--threads", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    single = load_file(str(tmp_path / "one" / "checkpoint.safetensors"))
    double = load_file(str(tmp_path / "two" / "checkpoint.safetensors"))
    weights = [k for k in single if k.startswith(("model.", "ema."))]
    assert weights and set(weights) == {k for k in double if k.startswith(("model.", "ema."))}
    moved = max(float((single[k] - one.model.state_dict()[k[6:]]).abs().max()) for k in weights if k.startswith("model."))
    assert moved == 0.0  # the checkpoint holds the trained weights
    initial = Trainer(TrainConfig.from_yaml(config(tmp_path, dataset, "initial")), progress=False).model.state_dict()
    assert max(float((single[k] - initial[k[6:]]).abs().max()) for k in weights if k.startswith("model.")) > 1e-4  # three steps moved them
    for k in weights:
        torch.testing.assert_close(double[k], single[k], rtol=0, atol=1e-8 * max(1.0, float(single[k].abs().max())), msg=k)
    rows = (tmp_path / "two" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2  # header and the one validation, written by process 0 only
