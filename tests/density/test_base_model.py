"""A density model records the Hamiltonian model its heads were fitted on (name and SHA-256 of
its weights); loading refuses a file whose stored backbone is not that model."""

import json
import shutil

import pytest

from ase_phisnet.density.model import backbone_sha256, load_density_model
from ase_phisnet.model.io import SHIPPED, ModelFileError, read_weights


def test_shipped_density_model_holds_its_recorded_backbone():
    model = load_density_model("water-density-etb")
    record = model.metadata["base_model"]
    assert record["name"] == "water-pbe-def2svp"
    config = json.loads((SHIPPED / "water-density-etb" / "config.json").read_text())
    assert backbone_sha256(read_weights(SHIPPED / "water-density-etb", config)) == record["weights_sha256"]


def test_a_backbone_other_than_the_recorded_one_is_refused(tmp_path):
    folder = tmp_path / "dm"
    shutil.copytree(SHIPPED / "water-density-etb", folder)
    config = json.loads((folder / "config.json").read_text())
    config["metadata"]["base_model"]["weights_sha256"] = "0" * 64
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="is not the model 'water-pbe-def2svp'.*heads and backbone do not belong together"):
        load_density_model(folder)
