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


def _water_rows_without(path, rows, not_stored="hcore,overlap", drop=("overlap", "hcore")):
    """Rows of the shared water set written as a set that leaves out ``drop``."""
    with h5py.File(need(WATER_H5), "r") as src, h5py.File(path, "w") as dst:
        for key in FRAME_KEYS:
            if key not in drop:
                dst[key] = src[key][()] if key == "numbers" else src[key][rows]
        dst["source_index"] = np.array(rows) + 100
        dst.attrs.update({k: v for k, v in src.attrs.items()})
        if not_stored is not None:
            dst.attrs["not_stored"] = not_stored
        return {k: src[k][rows] for k in drop}


def test_a_set_without_overlap_and_hcore_gets_them_from_the_geometry(tmp_path):
    from ase_phisnet.training.data import load_frames

    rows = [3, 700, 2100]
    stored = _water_rows_without(tmp_path / "lean.h5", rows)
    store = FrameStore.open(import_h5(tmp_path / "lean.h5", tmp_path / "lean", progress=False).path)
    assert store.meta["computed_from_geometry"] == ["hcore", "overlap"] and store.meta["source_index"] == [103, 800, 2200]
    frames, _ = load_frames(tmp_path / "lean.h5")  # training reads the file in place the same way
    for n in range(len(rows)):
        for key in ("overlap", "hcore"):
            imported = store.read(n)[key]
            # the shared set was labelled with PySCF's Å -> Bohr factor, the package uses ASE's
            # (they differ in the tenth digit): the matrices agree to 1e-7, not bit for bit
            assert np.abs(imported - stored[key][n]).max() < 1e-7, key
            assert np.abs(imported).max() > 0.5
            np.testing.assert_array_equal(frames[n][key], imported)
        np.testing.assert_array_equal(store.read(n)["fock"], frames[n]["fock"])


def test_only_the_matrices_of_the_geometry_may_be_left_out(tmp_path):
    _water_rows_without(tmp_path / "fock.h5", [0], not_stored="fock", drop=("fock",))
    with pytest.raises(ImportFormatError, match="not_stored names fock; only overlap, hcore follow from the geometry"):
        import_h5(tmp_path / "fock.h5", tmp_path / "a", progress=False)
    _water_rows_without(tmp_path / "undeclared.h5", [0], not_stored=None)
    with pytest.raises(ImportFormatError, match="missing keys: overlap, hcore"):
        import_h5(tmp_path / "undeclared.h5", tmp_path / "b", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_second_ethanol_set_reads_with_its_computed_matrices():
    from ase_phisnet.data.importer import read_h5

    arrays, attrs = read_h5(need(ETHANOL_H5.with_name("ethanol_pbe_def2svp_500K_b.h5")))
    assert attrs["not_stored"] == "hcore,overlap" and arrays["overlap"].shape == arrays["fock"].shape == (513, 72, 72)
    assert np.allclose(np.diagonal(arrays["overlap"], axis1=1, axis2=2), 1.0)  # normalised contracted AOs
    assert np.all(np.linalg.eigvalsh(arrays["hcore"][:3])[:, 0] < -10)  # C and O 1s: deeply bound
