"""The ``phisnet data`` command group: help texts and bad input (exit 2, one clear line, nothing created)."""

from __future__ import annotations

import pytest

from .conftest import run_cli

SUBCOMMANDS = ("sample", "label", "merge", "import", "info", "split")


def test_group_alone_prints_its_help(cli):
    rc, out, err = cli("data")
    assert "usage: phisnet data" in out
    for name in SUBCOMMANDS:
        assert name in out


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help(cli, name):
    rc, out, err = cli("data", name, "--help")
    assert rc == 0
    assert f"usage: phisnet data {name}" in out
    assert "examples:" in out and f"phisnet data {name}" in out.split("examples:")[1]


@pytest.fixture
def geometry_files(tmp_path):
    import ase.io
    from ase import Atoms

    water = Atoms("OH2", positions=[[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]])
    ase.io.write(tmp_path / "water.xyz", water)
    ase.io.write(tmp_path / "og.xyz", Atoms("OHOg", positions=water.positions))  # Z=118: no def2-SVP
    (tmp_path / "fake.xyz").write_text("3\n\nO 0 0 0\nH 0 0.76 0.5\nXx 0 -0.76 0.5\n")
    (tmp_path / "garbage.xyz").write_text("this is\nnot a geometry\n")
    return tmp_path


BAD_LABEL = [
    (["missing.xyz"], ["missing.xyz", "does not exist", "xyz, extxyz"]),
    (["garbage.xyz"], ["cannot read geometry file", "garbage.xyz", "accepted formats"]),
    (["fake.xyz"], ["unknown element symbol 'Xx'", "accepted formats"]),
    (["og.xyz"], ["Og", "def2-svp", "choose a basis that covers"]),
    (["water.xyz", "--basis", "sto-3g", "--charge", "-1"], ["multiplicity 1 does not fit 11 electrons", "allows multiplicity 2, 4"]),
    (["water.xyz", "--multiplicity", "2"], ["multiplicity 2 does not fit 10 electrons", "allows multiplicity 1, 3"]),
    (["water.xyz", "--multiplicity", "3"], ["closed shells only"]),
    (["water.xyz", "--shard", "3/2"], ["--shard must be k/n", "1 <= k <= n", "'3/2'"]),
    (["water.xyz", "--shard", "0/2"], ["--shard must be k/n"]),
    (["water.xyz", "--shard", "half"], ["--shard must be k/n"]),
    (["water.xyz", "--xc", "nonsense"], ["unknown exchange-correlation functional 'nonsense'", "pbe"]),
    (["water.xyz", "--workers", "0"], ["--workers must be"]),
]


@pytest.mark.parametrize("extra,expected", BAD_LABEL, ids=[" ".join(e) for e, _ in BAD_LABEL])
def test_label_bad_input(cli, geometry_files, extra, expected):
    frames, *options = extra
    dataset = geometry_files / "ds"
    rc, out, err = cli("data", "label", geometry_files / frames, dataset, *options)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    for text in expected:
        assert text in err
    assert not dataset.exists()


BAD_SAMPLE = [
    (["nosuchmolecule"], ["unknown molecule 'nosuchmolecule'", "water", "aspirin", "ase.build.molecule"]),
    (["garbage.xyz"], ["cannot read geometry file", "accepted formats"]),
    (["missing.xyz"], ["does not exist"]),
    (["water", "--multiplicity", "2"], ["multiplicity 2 does not fit 10 electrons"]),
    (["water", "--stride-fs", "0.7"], ["multiple of timestep-fs"]),
]


@pytest.mark.parametrize("extra,expected", BAD_SAMPLE, ids=[" ".join(e) for e, _ in BAD_SAMPLE])
def test_sample_bad_input(cli, geometry_files, extra, expected):
    molecule, *options = extra
    if molecule.endswith(".xyz"):
        molecule = geometry_files / molecule
    out_path = geometry_files / "out.xyz"
    rc, out, err = cli("data", "sample", molecule, "-o", out_path, "-q", *options)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    for text in expected:
        assert text in err
    assert not out_path.exists()


def test_info_merge_bad_input(cli, tmp_path):
    rc, out, err = cli("data", "info", tmp_path / "nothing")
    assert rc == 2 and "does not exist" in err and "phisnet data label" in err
    rc, out, err = cli("data", "merge", tmp_path / "out", tmp_path / "nothing")
    assert rc == 2 and "does not exist" in err
    assert not (tmp_path / "out").exists()


def test_real_command_exit_code(geometry_files):
    """The same through the real entry point in a subprocess."""
    result = run_cli("data", "label", geometry_files / "water.xyz", geometry_files / "ds", "--multiplicity", "2")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "phisnet data label: error: H2O: multiplicity 2 does not fit 10 electrons (charge 0): "
        "an even electron count allows multiplicity 1, 3, 5, ..."
    )
    assert not (geometry_files / "ds").exists()
