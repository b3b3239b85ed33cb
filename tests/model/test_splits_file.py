"""Split index lists live in splits.json beside the weights; model.metadata["splits"] has them
either way, and folders with the lists inline in config.json (the earlier layout) still load."""

import json

import pytest
import torch

from ase_phisnet import load_model
from ase_phisnet.model import PhiSNetConfig, build_model
from ase_phisnet.model.io import ModelFileError, save_model

SPLITS = {"seed": 3, "n_train": 2, "n_val": 1, "train": [4, 9], "val": [0], "test": [1, 2, 3]}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(PhiSNetConfig.from_preset("small", elements=[1, 8], features=4, num_interactions=1, lmax=2))


def test_lists_go_to_splits_json_and_come_back(model, tmp_path):
    folder = save_model(model, tmp_path / "m", metadata={"splits": SPLITS, "note": "x"})
    config = json.loads((folder / "config.json").read_text())
    assert config["metadata"]["splits"] == {"seed": 3, "n_train": 2, "n_val": 1, "file": "splits.json", "sha256": config["metadata"]["splits"]["sha256"]}
    assert json.loads((folder / "splits.json").read_text())["test"] == [1, 2, 3]
    again = load_model(folder)
    assert {k: again.metadata["splits"][k] for k in ("train", "val", "test", "seed")} == {k: SPLITS[k] for k in ("train", "val", "test", "seed")}
    # saved again from the loaded metadata: the same files
    before = (folder / "splits.json").read_bytes(), (folder / "config.json").read_bytes()
    save_model(again, folder, metadata=again.metadata, state_dict=model.state_dict())
    assert ((folder / "splits.json").read_bytes(), (folder / "config.json").read_bytes()) == before


def test_inline_lists_still_load(model, tmp_path):
    folder = save_model(model, tmp_path / "m", metadata={"splits": SPLITS})
    config = json.loads((folder / "config.json").read_text())
    config["metadata"]["splits"] = SPLITS  # the layout before splits.json
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "splits.json").unlink()
    assert load_model(folder).metadata["splits"]["test"] == [1, 2, 3]


def test_damaged_or_missing_splits_file_is_refused(model, tmp_path):
    folder = save_model(model, tmp_path / "m", metadata={"splits": SPLITS})
    (folder / "splits.json").write_text((folder / "splits.json").read_text().replace("9", "8"))
    with pytest.raises(ModelFileError, match="splits.json does not match the checksum"):
        load_model(folder)
    (folder / "splits.json").unlink()
    with pytest.raises(ModelFileError, match="names the split file splits.json, which is not in"):
        load_model(folder)


def test_a_model_without_splits_writes_no_file(model, tmp_path):
    folder = save_model(model, tmp_path / "m", metadata={"splits": SPLITS})
    save_model(model, folder, metadata={"note": "no splits"})
    assert not (folder / "splits.json").exists() and load_model(folder).metadata == {"note": "no splits"}


@pytest.mark.parametrize("name", ["water-pbe-def2svp", "water-ccsdt-def2svp"])
def test_shipped_configs_keep_no_index_lists(name):
    from ase_phisnet.model.io import read_config

    recorded = read_config(name)["metadata"]["splits"]
    assert recorded["file"] == "splits.json" and not {"train", "val", "test"} & set(recorded)
    splits = load_model(name).metadata["splits"]
    assert len(splits["train"]) == 500 and not set(splits["train"]) & set(splits["test"])
