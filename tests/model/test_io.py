"""Model files: round trip, and a clear ModelFileError for every kind of bad file."""

import json

import numpy as np
import pytest
import torch

from ase_phisnet import load_model
from ase_phisnet.model import PhiSNet, PhiSNetConfig
from ase_phisnet.model.io import ModelFileError, save_model

WATER = ([8, 1, 1], [[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]])


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(1)
    model = PhiSNet(PhiSNetConfig.from_preset("small", elements=[1, 8], features=4)).double()
    save_model(model, tmp_path / "m", metadata={"note": "test"})
    return model, tmp_path / "m"


def test_round_trip_gives_the_same_matrices(saved):
    model, path = saved
    again = load_model(path)
    assert again.metadata == {"note": "test"}
    assert np.array_equal(model.predict(*WATER)["fock"], again.predict(*WATER)["fock"])
    assert load_model(path / "config.json").config == model.config


def test_missing_model(tmp_path):
    with pytest.raises(ModelFileError, match="no model 'nope'.*shipped"):
        load_model("nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFileError, match="holds no config.json"):
        load_model(tmp_path / "empty")


def test_truncated_weights_are_refused(saved):
    _, path = saved
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(path)


def test_damaged_config_is_refused(saved):
    _, path = saved
    (path / "config.json").write_text('{"format": "ase_phisnet.model/1", "model": ')
    with pytest.raises(ModelFileError, match="not valid JSON"):
        load_model(path)
    (path / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ModelFileError, match="not an ase_phisnet model config"):
        load_model(path)


def test_incompatible_architecture_is_refused(saved, tmp_path):
    _, path = saved
    config = json.loads((path / "config.json").read_text())
    config["model"]["features"] = 8  # weights are for 4 features
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="does not fit the architecture"):
        load_model(path)
    config["model"]["wings"] = 2
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="unknown model configuration key"):
        load_model(path)


def test_weights_are_safetensors_not_pickle(saved):
    _, path = saved
    head = (path / "model.safetensors").read_bytes()[:16]
    assert not head.startswith(b"\x80")  # a pickle protocol header
    assert json.loads((path / "config.json").read_text())["weights_sha256"]
