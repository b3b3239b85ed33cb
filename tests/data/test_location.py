"""Where the reference sets are found: ``PHISNET_DATA``, ``--data-dir``, ``../shared/data``."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from ase_phisnet.data import FrameStore, location
from ase_phisnet.data.location import ENV_VAR, ReferenceDataError, reference_data_dir, reference_set, resolve_dataset
from ase_phisnet.errors import InputError

from .conftest import SHARED, WATER_H5, need


def _tiny_set(path: Path) -> Path:
    """A two-frame water HDF5 file in the shared layout (zeros; for import tests)."""
    n, nao = 2, 4
    with h5py.File(path, "w") as fh:
        fh["numbers"] = np.array([8, 1, 1])
        shapes = {"positions": (n, 3, 3), "energy": (n,), "forces": (n, 3, 3), "fock": (n, nao, nao), "overlap": (n, nao, nao)}
        shapes.update({"hcore": (n, nao, nao), "mo_energy": (n, nao), "dipole": (n, 3)})
        for key, shape in shapes.items():
            fh[key] = np.zeros(shape)
        fh["converged"] = np.ones(n, bool)
        fh["scf_cycles"] = np.ones(n, int)
        fh.attrs.update({"xc": "pbe", "basis": "def2-svp", "grids_level": 3, "conv_tol": 1e-11, "pyscf_version": "2.14.0"})
    return path


def test_environment_variable_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert reference_data_dir() == tmp_path
    assert reference_data_dir(tmp_path / "other", must_exist=False) == tmp_path / "other"  # explicit beats the variable
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(ReferenceDataError, match=f"{ENV_VAR}") as err:
        reference_data_dir()  # a variable naming a missing folder is an error, not a silent default
    assert isinstance(err.value, FileNotFoundError)


def test_default_beside_the_checkout(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)  # the checkout default does not depend on the working directory
    root = location.checkout_root()
    assert root is not None and (root / "ase_phisnet").is_dir()
    expected = (root / ".." / "shared" / "data").resolve()
    assert location.candidate_dirs()[0][0] == expected
    if expected.is_dir():
        assert reference_data_dir() == expected


def test_default_relative_to_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(location, "checkout_root", lambda: None)  # as an installed package
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert reference_data_dir() == (tmp_path / "shared" / "data").resolve()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ReferenceDataError, match="PHISNET_DATA"):
        reference_data_dir()


def test_reference_set_by_name(tmp_path):
    _tiny_set(tmp_path / "tiny.h5")
    assert reference_set("tiny.h5", tmp_path) == tmp_path / "tiny.h5"
    assert reference_set("tiny", tmp_path) == tmp_path / "tiny.h5"
    with pytest.raises(ReferenceDataError, match="available: tiny.h5"):
        reference_set("nope.h5", tmp_path)
    with pytest.raises(InputError, match="bare file name"):
        reference_set("sub/tiny.h5", tmp_path)
    # an existing path is used as it is; a missing path is not looked up by name
    assert resolve_dataset(tmp_path / "tiny.h5") == tmp_path / "tiny.h5"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_dataset(tmp_path / "sub" / "tiny.h5", tmp_path)


def test_shared_sets_resolve_by_name():
    need(WATER_H5)
    assert reference_set(WATER_H5.name) == WATER_H5
    assert SHARED == reference_data_dir()


def test_cli_import_by_name(tmp_path, cli, monkeypatch):
    _tiny_set(tmp_path / "tiny.h5")
    monkeypatch.chdir(tmp_path.parent)  # "tiny.h5" is no path from here: looked up by name
    rc, out, err = cli("data", "import", "tiny.h5", tmp_path / "a", "-q", "--data-dir", tmp_path)
    assert rc == 0, err
    assert "2 frames" in out and str(tmp_path / "tiny.h5") in out
    assert len(FrameStore.open(tmp_path / "a")) == 2

    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    rc, out, err = cli("data", "import", "tiny", tmp_path / "b", "-q")
    assert rc == 0, err
    assert len(FrameStore.open(tmp_path / "b")) == 2

    rc, out, err = cli("data", "import", "absent.h5", tmp_path / "c", "-q")
    assert rc == 2 and "absent.h5" in err and "available: tiny.h5" in err
    assert not (tmp_path / "c").exists()
