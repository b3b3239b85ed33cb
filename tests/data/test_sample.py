"""Geometry sampling with GFN2-xTB: MD and normal modes, reproducible by seed; named molecules."""

from __future__ import annotations

import ase.io
import numpy as np
import pytest

from ase_phisnet.data import get_molecule
from ase_phisnet.data.molecules import GeometryError

MD = ["--n-frames", "4", "--equilibration-ps", "0.02", "--stride-fs", "5", "-q"]


def test_md_sampler(tmp_path, cli):
    paths = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        path = tmp_path / f"{name}.xyz"
        rc, out, err = cli("data", "sample", "water", "-o", path, "--seed", seed, *MD)
        assert rc == 0, err
        assert "wrote 4 frames of H2O" in out
        paths.append(path)
    a, b, c = (ase.io.read(p, ":") for p in paths)
    assert len(a) == 4 and all(atoms.get_chemical_formula() == "H2O" for atoms in a)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.positions, y.positions)
    assert not np.allclose(a[-1].positions, c[-1].positions)
    assert not np.allclose(a[0].positions, a[1].positions)
    assert a[0].info["sampler"] == "md" and a[1].info["time_fs"] - a[0].info["time_fs"] == pytest.approx(5.0)
    assert not list(tmp_path.glob("*.tmp"))
    d_oh = np.array([atoms.get_distance(0, 1) for atoms in a])
    assert np.all((d_oh > 0.8) & (d_oh < 1.3))


def test_normal_mode_sampler(tmp_path, cli):
    frames = []
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        path = tmp_path / f"{name}.xyz"
        rc, out, err = cli("data", "sample", "water", "-o", path, "--sampler", "normal-modes", "--n-frames", "6", "--seed", seed, "-q")
        assert rc == 0, err
        frames.append(ase.io.read(path, ":"))
    a, b, c = frames
    assert len(a) == 6 and a[0].info["sampler"] == "normal-modes"
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.positions, y.positions)
    assert not np.allclose(a[0].positions, c[0].positions)
    # harmonic displacements at 500 K: O-H spread of a few hundredths of an Å, no net translation
    d_oh = np.array([[atoms.get_distance(0, 1), atoms.get_distance(0, 2)] for atoms in a])
    assert np.all(np.abs(d_oh - 0.96) < 0.15) and d_oh.std() > 1e-3
    com = np.array([atoms.get_center_of_mass() for atoms in a])
    np.testing.assert_allclose(com - com[0], 0.0, atol=1e-8)


def test_sample_traj_output(tmp_path, cli):
    rc, out, err = cli("data", "sample", "CH4", "-o", tmp_path / "m.traj", "--sampler", "normal-modes", "--n-frames", "2", "-q")
    assert rc == 0, err
    assert len(ase.io.read(tmp_path / "m.traj", ":")) == 2


@pytest.mark.parametrize(
    "name,formula",
    [
        ("water", "H2O"),
        ("ethanol", "C2H6O"),
        ("methane", "CH4"),
        ("ammonia", "H3N"),
        ("benzene", "C6H6"),
        ("malondialdehyde", "C3H4O2"),
        ("uracil", "C4H4N2O2"),
        ("aspirin", "C9H8O4"),
        ("naphthalene", "C10H8"),
        ("salicylic_acid", "C7H6O3"),
        ("toluene", "C7H8"),
        ("CH3CH2OH", "C2H6O"),
        ("Aspirin", "C9H8O4"),
    ],
)
def test_named_molecules(name, formula):
    atoms = get_molecule(name)
    assert atoms.get_chemical_formula() == formula
    d = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)]
    assert d.min() > 0.9  # no overlapping atoms


def test_molecule_from_file_and_errors(tmp_path):
    ase.io.write(tmp_path / "m.xyz", get_molecule("uracil"))
    assert get_molecule(tmp_path / "m.xyz").get_chemical_formula() == "C4H4N2O2"
    with pytest.raises(GeometryError, match="Did you mean 'water'") as err:
        get_molecule("watr")
    assert "malondialdehyde" in str(err.value) and "xyz" in str(err.value)
    (tmp_path / "bad.xyz").write_text("garbage\n")
    with pytest.raises(GeometryError, match="cannot read geometry file"):
        get_molecule(tmp_path / "bad.xyz")
    with pytest.raises(FileNotFoundError):
        get_molecule(tmp_path / "nope.xyz")
