"""Import of the shared HDF5 reference sets, read in place."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from ase_phisnet.data import FrameStore, import_h5
from ase_phisnet.data.importer import ImportFormatError
from ase_phisnet.data.store import FRAME_KEYS

from .conftest import ETHANOL_H5, WATER_H5, need


def test_import_water_and_info(tmp_path, cli):
    h5 = need(WATER_H5)
    dataset = tmp_path / "water"
    rc, out, err = cli("data", "import", h5, dataset, "-q")
    assert rc == 0, err
    assert "2500 frames" in out
    assert not list(dataset.rglob("*.h5"))  # read in place, never copied

    store = FrameStore.open(dataset)
    assert len(store) == 2500 and store.indices() == list(range(2500))
    assert store.meta["xc"] == "pbe" and store.meta["basis"] == "def2-svp" and store.meta["grids_level"] == 3
    assert store.meta["conv_tol"] == 1e-11 and store.meta["pyscf_version"] == "2.14.0"
    with h5py.File(h5, "r") as fh:
        for row in (0, 1234, 2499):
            frame = store.read(row)
            for key in FRAME_KEYS:
                expected = fh["numbers"][()] if key == "numbers" else fh[key][row]
                np.testing.assert_array_equal(frame[key], expected, err_msg=key)  # bit for bit

    rc, out, err = cli("data", "info", dataset)
    assert rc == 0, err
    lines = out.splitlines()
    assert "frames: 2500" in lines and "unconverged: 0" in lines and "nao: 24" in lines
    assert any(line.startswith("formula: H2O") for line in lines)
    assert any("xc: pbe" in line and "basis: def2-svp" in line and "grids level: 3" in line for line in lines)
    assert any(line.startswith("energy (Hartree): min -76.") for line in lines)
    rc, out, err = cli("data", "info", dataset, "--json")
    info = json.loads(out)
    assert info["frames"] == 2500 and info["nao"] == [24] and info["elements"] == ["H", "O"]

    # importing again resumes (nothing to do); splits follow the water protocol
    rc, out, err = cli("data", "import", h5, dataset, "-q")
    assert rc == 0 and len(FrameStore.open(dataset)) == 2500
    rc, out, err = cli("data", "split", dataset, "--n-train", "500", "--n-val", "500", "-o", tmp_path / "splits.json")
    assert rc == 0 and "train: 500, val: 500, test: 1500" in out


def test_import_ethanol(tmp_path):
    h5 = need(ETHANOL_H5)
    store = FrameStore.open(import_h5(h5, tmp_path / "ethanol", progress=False).path)
    assert len(store) == 400
    with h5py.File(h5, "r") as fh:
        np.testing.assert_array_equal(store.read(399)["fock"], fh["fock"][399])
        np.testing.assert_array_equal(store.read(7)["forces"], fh["forces"][7])
    assert store.read(0)["fock"].shape == (72, 72)


def _write_h5(path, drop=None, extra=None, attrs=True):
    n, natm, nao = 2, 3, 4
    data = {
        "numbers": np.array([8, 1, 1]),
        "positions": np.zeros((n, natm, 3)),
        "energy": np.zeros(n),
        "forces": np.zeros((n, natm, 3)),
        "fock": np.zeros((n, nao, nao)),
        "overlap": np.zeros((n, nao, nao)),
        "hcore": np.zeros((n, nao, nao)),
        "mo_energy": np.zeros((n, nao)),
        "dipole": np.zeros((n, 3)),
        "converged": np.ones(n, bool),
        "scf_cycles": np.ones(n, int),
    }
    if drop:
        del data[drop]
    if extra:
        data[extra] = np.zeros(n)
    with h5py.File(path, "w") as fh:
        for k, v in data.items():
            fh[k] = v
        if attrs:
            fh.attrs.update({"xc": "pbe", "basis": "def2-svp", "grids_level": 3, "conv_tol": 1e-11, "pyscf_version": "2.14.0"})


def test_import_bad_layouts(tmp_path, cli):
    _write_h5(tmp_path / "ok.h5")
    assert len(import_h5(tmp_path / "ok.h5", tmp_path / "ok", progress=False)) == 2

    _write_h5(tmp_path / "missing.h5", drop="fock")
    with pytest.raises(ImportFormatError, match="missing keys: fock"):
        import_h5(tmp_path / "missing.h5", tmp_path / "a", progress=False)
    _write_h5(tmp_path / "unknown.h5", extra="charges")
    rc, out, err = cli("data", "import", tmp_path / "unknown.h5", tmp_path / "b")
    assert rc == 2 and "unknown keys: charges" in err and "expected exactly" in err
    _write_h5(tmp_path / "noattrs.h5", attrs=False)
    rc, out, err = cli("data", "import", tmp_path / "noattrs.h5", tmp_path / "c")
    assert rc == 2 and "xc, basis, grids_level, conv_tol" in err
    (tmp_path / "text.h5").write_text("not hdf5")
    rc, out, err = cli("data", "import", tmp_path / "text.h5", tmp_path / "d")
    assert rc == 2 and "not a readable HDF5 file" in err
    rc, out, err = cli("data", "import", tmp_path / "nope.h5", tmp_path / "e")
    assert rc == 2 and "does not exist" in err
    assert not any((tmp_path / x).exists() for x in "abcde")
