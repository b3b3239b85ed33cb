"""Training runs: resume after a kill continues the same run; a NaN stops it cleanly."""

import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file

from ase_phisnet import load_model
from ase_phisnet.training import TrainConfig, Trainer, TrainingDiverged

from ..conftest import WATER_H5

TINY = {
    "name": "tiny",
    "dataset": str(WATER_H5),
    "splits": {"n_train": 24, "n_val": 8, "n_test": 8, "seed": 3},
    "model": {"preset": "small", "features": 4, "num_radial": 8, "radial_hidden": 8},
    "loss": {"fock": 1.0},
    "batch_size": 4,
    "max_steps": 40,
    "val_every": 5,
}


def write_config(tmp_path, name, **overrides):
    cfg = {**TINY, "output": str(tmp_path / name), **overrides}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def phisnet(*args):
    return [sys.executable, "-m", "ase_phisnet.cli.main", *map(str, args)]


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    straight = write_config(tmp_path, "straight")
    subprocess.run(phisnet("train", straight, "--no-progress", "--threads", "1"), check=True, capture_output=True)

    killed = write_config(tmp_path, "killed")
    proc = subprocess.Popen(phisnet("train", killed, "--no-progress", "--threads", "1"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / "checkpoint.safetensors"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists(), "no checkpoint before the kill"
    import json

    from safetensors import safe_open

    with safe_open(str(checkpoint), framework="pt") as fh:
        step_at_kill = json.loads(fh.metadata()["state"])["step"]
    assert step_at_kill < TINY["max_steps"], "the run finished before it could be killed"

    out = subprocess.run(phisnet("train", killed, "--no-progress", "--threads", "1", "--resume"), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "step 40" in out.stdout
    a = load_file(str(tmp_path / "straight" / "checkpoint.safetensors"))
    b = load_file(str(checkpoint))
    assert a.keys() == b.keys()
    for key in a:
        if key.startswith(("model.", "ema.")):
            assert torch.equal(a[key], b[key]), key
    # the exported best model loads and records its splits
    model = load_model(tmp_path / "killed" / "best")
    assert len(model.metadata["splits"]["train"]) == 24 and model.metadata["training"]["steps"] <= 40


def test_resume_refuses_without_checkpoint_and_fresh_start_refuses_over_one(tmp_path):
    cfg = TrainConfig.from_yaml(write_config(tmp_path, "r", max_steps=5))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(cfg, resume=True, progress=False)
    Trainer(cfg, progress=False).fit()
    with pytest.raises(ValueError, match="--resume"):
        Trainer(cfg, progress=False)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = TrainConfig.from_yaml(write_config(tmp_path, "nan", max_steps=5))
    trainer = Trainer(cfg, progress=False)
    trainer.fit()
    checkpoint = tmp_path / "nan" / "checkpoint.safetensors"
    before = checkpoint.read_bytes()
    trainer.config.max_steps = 10
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="loss is nan at step 6.*checkpoint.*intact"):
        trainer.fit()
    assert checkpoint.read_bytes() == before
    resumed = Trainer(cfg, resume=True, progress=False)
    assert resumed.step == 5 and all(torch.isfinite(p).all() for p in resumed.model.parameters())


def test_bad_training_config_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**TINY, "output": str(tmp_path / "o"), "learning_rate": 1}))
    with pytest.raises(ValueError, match="unknown key.*learning_rate"):
        TrainConfig.from_yaml(bad)
    bad.write_text(yaml.safe_dump({**TINY, "output": str(tmp_path / "o"), "dtype": "float16"}))
    with pytest.raises(ValueError, match="dtype"):
        TrainConfig.from_yaml(bad)


def test_cli_train_reports_bad_input(tmp_path):
    out = subprocess.run(phisnet("train", tmp_path / "missing.yaml"), capture_output=True, text=True)
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_init_from_a_model_starts_from_its_weights(tmp_path):
    first = Trainer(TrainConfig.from_yaml(write_config(tmp_path, "first", max_steps=5)), progress=False)
    first.fit()
    cfg = TrainConfig.from_yaml(write_config(tmp_path, "second", max_steps=5, init_from=str(tmp_path / "first" / "best")))
    second = Trainer(cfg, progress=False)
    best = load_model(tmp_path / "first" / "best", dtype=torch.float32)
    for (k, a), b in zip(second.model.state_dict().items(), best.state_dict().values()):
        assert torch.equal(a, b), k
    bad = TrainConfig.from_yaml(write_config(tmp_path, "third", init_from=str(tmp_path / "first" / "best"), model={**TINY["model"], "features": 6}))
    with pytest.raises(ValueError, match="architecture differs.*features"):
        Trainer(bad, progress=False)


def test_metrics_csv_widens_when_a_resumed_run_reports_more(tmp_path):
    import csv

    from ase_phisnet.training.trainer import _append_csv

    path = tmp_path / "metrics.csv"
    _append_csv(path, {"step": 1, "val_loss": 0.5})
    _append_csv(path, {"step": 2, "val_loss": 0.4, "val_energy_offset_meV": 1.5})
    _append_csv(path, {"step": 3, "val_loss": 0.3})
    rows = list(csv.DictReader(open(path)))
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert [r["val_energy_offset_meV"] for r in rows] == ["", "1.5", ""]
    assert rows[2]["val_loss"] == "0.3"


def test_frozen_weights_stay_bit_for_bit_in_the_weight_average(tmp_path):
    """With ``trainable`` set, the EMA copy of every frozen weight is the loaded weight exactly:
    averaging a constant in float32 (``e * d + p * (1 - d)``) would let it drift by rounding."""
    first = write_config(tmp_path, "start", dtype="float32", max_steps=2, val_every=2)
    Trainer(TrainConfig.from_yaml(first), progress=False).fit()
    path = write_config(tmp_path, "heads", dtype="float32", init_from=str(tmp_path / "start" / "best"),
                        trainable=["heads.fock.diag"], max_steps=30, val_every=30)
    trainer = Trainer(TrainConfig.from_yaml(path), progress=False)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    ema = trainer.ema.state_dict()
    frozen = [k for k in start if not k.startswith("heads.fock.diag")]
    assert frozen and all(torch.equal(start[k], ema[k]) for k in frozen), [k for k in frozen if not torch.equal(start[k], ema[k])][:5]
    assert any(not torch.equal(start[k], ema[k]) for k in start if k.startswith("heads.fock.diag"))


def test_a_list_of_datasets_trains_as_one_set(tmp_path, capsys):
    """Water and ethanol in one run: the splits count through the union in the order given, the
    model covers every element, and the evaluation reads the same list back."""
    import json

    import h5py

    from ase_phisnet.cli.main import main
    from ase_phisnet.data.location import portable_path
    from ase_phisnet.data.splits import select_split
    from ase_phisnet.training.data import load_frames

    from ..conftest import ETHANOL_H5, require_reference

    require_reference(ETHANOL_H5)
    union = [str(WATER_H5), str(ETHANOL_H5)]
    frames, meta = load_frames(union)
    assert len(frames) == 2900 and [f["index"] for f in frames[2498:2502]] == [2498, 2499, 2500, 2501]
    assert frames[2500]["dataset"] == ETHANOL_H5.name and frames[2500]["dataset_index"] == 0
    assert meta["source"] == f"{WATER_H5.name} + {ETHANOL_H5.name}"

    path = write_config(tmp_path, "both", dataset=union, splits={"n_train": 8, "n_val": 4, "n_test": 4, "seed": 8}, max_steps=2, val_every=2)
    Trainer(TrainConfig.from_yaml(path), progress=False).fit()
    model = load_model(tmp_path / "both" / "best")
    assert model.config.elements == [1, 6, 8] and model.metadata["dataset"] == [portable_path(d) for d in union]
    train = select_split(model, frames, "train")
    assert model.metadata["training_range"]["molecules"] == {"H2O": 6, "C2H6O": 2} == {"H2O": sum(len(f["numbers"]) == 3 for f in train), "C2H6O": 2}
    test = select_split(model, frames, "test")
    assert len(test) == 4 and {f["dataset"] for f in test} <= {WATER_H5.name, ETHANOL_H5.name}
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "both" / "best"), *union, "--no-progress", "--json", str(tmp_path / "m.json")]) == 0
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["n_frames"] == 4
    assert saved["molecules"] == {"H2O": 3, "C2H6O": 1}  # seed 8 draws both; evaluated molecule by molecule
    assert {k: v["n_frames"] for k, v in saved["by_molecule"].items()} == saved["molecules"]
    out = capsys.readouterr().out
    assert "### H2O" in out and "### C2H6O" in out and "20.09" in out  # ethanol's published PhiSNet row

    # shipped, the model records and its card shows each molecule's test figures
    from ase_phisnet.shipping import ship_hamiltonian_model

    from ..conftest import load_card_generator

    shipped, result = ship_hamiltonian_model(tmp_path / "both" / "best", tmp_path / "shipped", union, progress=False)
    recorded = load_model(shipped).metadata["test_metrics"]
    assert recorded["by_molecule"]["C2H6O"]["h_mae_uEh"] == pytest.approx(saved["by_molecule"]["C2H6O"]["h_mae_uEh"], rel=1e-9)
    cards = load_card_generator()
    cards.ROOT = tmp_path  # the card names files relative to the checkout; here, to the test's folder
    card = cards.card(shipped)
    assert "### H2O (3 frames)" in card and "### C2H6O (1 frames)" in card and "| C2H6O | 2 |" in card

    # a set labelled otherwise is refused, naming the setting
    with h5py.File(WATER_H5, "r") as src, h5py.File(tmp_path / "b3lyp.h5", "w") as dst:
        for key in src:
            dst[key] = src[key][()] if key == "numbers" else src[key][:2]
        dst.attrs.update({**src.attrs, "xc": "b3lyp"})
    with pytest.raises(Exception, match="xc 'pbe' against 'b3lyp'"):
        load_frames([str(WATER_H5), str(tmp_path / "b3lyp.h5")])
    with pytest.raises(Exception, match="dataset must be a dataset folder or .h5 file, or a list of them"):
        TrainConfig.from_yaml(write_config(tmp_path, "empty", dataset=[]))


def test_cosine_schedule_follows_the_step_after_the_warm_up_and_replaces_the_plateau(tmp_path):
    import csv
    import math

    lr, low = 1e-3, 1e-5
    optimizer = {"lr": lr, "min_lr": low, "warmup_steps": 2, "cosine_steps": 4, "plateau_patience": 0}
    path = write_config(tmp_path, "cosine", optimizer=optimizer, max_steps=8, val_every=1)
    Trainer(TrainConfig.from_yaml(path), progress=False).fit()
    rows = list(csv.DictReader(open(tmp_path / "cosine" / "metrics.csv")))
    # the rate of each step: ramp 1/2, 2/2 of lr, then half a cosine from lr to min_lr over 4 steps
    cosine = [low + 0.5 * (lr - low) * (1 + math.cos(math.pi * t / 4)) for t in range(4)]
    assert [float(r["lr"]) for r in rows] == pytest.approx([lr / 2, lr, *cosine, low, low], rel=1e-9)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "optimizer": {**optimizer, "min_lr": lr}}))
    with pytest.raises(ValueError, match="min_lr below lr"):
        TrainConfig.from_yaml(path)
