"""Labeling with real PySCF: one frame against PySCF and the shared set, kill + resume, shards, workers."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import numpy as np
import pytest

from ase_phisnet.data import FrameStore, label_frame
from ase_phisnet.data.store import FRAME_KEYS

from .conftest import FAST, cli_command, cli_env, run_cli


def test_label_frame_matches_pyscf_and_shared_set(water_ref):
    """PBE/def2-SVP water: label_frame == a direct PySCF RKS run == the shared set's row."""
    from pyscf import dft

    from ase_phisnet.molecule import build_mol

    numbers, positions = water_ref["numbers"], water_ref["positions"][0]
    frame = label_frame(numbers, positions)
    assert set(frame) == set(FRAME_KEYS)

    mol = build_mol(numbers, positions, basis="def2-svp")
    mf = dft.RKS(mol, xc="pbe")
    mf.grids.level = 3
    mf.conv_tol = 1e-11
    mf.verbose = 0
    mf.kernel()
    gradient = mf.nuc_grad_method().kernel()

    assert frame["converged"] and mf.converged
    assert abs(frame["energy"] - mf.e_tot) < 1e-8
    np.testing.assert_allclose(frame["forces"], -gradient, atol=1e-7)
    np.testing.assert_allclose(frame["fock"], mf.get_fock(), atol=1e-7)
    np.testing.assert_allclose(frame["fock"], frame["fock"].T, atol=1e-12)
    np.testing.assert_allclose(frame["overlap"], mol.intor("int1e_ovlp"), atol=1e-14)
    np.testing.assert_allclose(frame["hcore"], mf.get_hcore(), atol=1e-12)
    np.testing.assert_allclose(frame["mo_energy"], mf.mo_energy, atol=1e-7)
    np.testing.assert_allclose(frame["dipole"], mf.dip_moment(unit="Debye", verbose=0), atol=1e-6)
    assert frame["fock"].shape == (24, 24) and frame["scf_cycles"] == mf.cycles

    # the shared set was labeled the same way
    assert abs(frame["energy"] - water_ref["energy"][0]) < 1e-8
    np.testing.assert_allclose(frame["fock"], water_ref["fock"][0], atol=1e-6)
    np.testing.assert_allclose(frame["forces"], water_ref["forces"][0], atol=1e-6)
    np.testing.assert_allclose(frame["dipole"], water_ref["dipole"][0], atol=1e-5)


def test_label_frame_rhf():
    from pyscf import scf

    from ase_phisnet.molecule import build_mol

    numbers, positions = [8, 1, 1], [[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]]
    frame = label_frame(numbers, positions, method="rhf", basis="sto-3g", conv_tol=1e-10)
    mf = scf.RHF(build_mol(numbers, positions, basis="sto-3g"))
    mf.conv_tol = 1e-10
    mf.verbose = 0
    mf.kernel()
    assert abs(frame["energy"] - mf.e_tot) < 1e-8
    np.testing.assert_allclose(frame["forces"], -mf.nuc_grad_method().kernel(), atol=1e-6)
    assert frame["fock"].shape == (7, 7)


def test_label_frame_ccsd_t_forces_match_finite_differences():
    """CCSD(T) water (6-31G): energy == a direct PySCF run, forces == central differences of the
    CCSD(T) energy, matrices == RHF's. Guards the (T)-lambda step without which PySCF's (T)
    gradient is off by ~1e-3 Hartree/Bohr."""
    from pyscf import cc, scf

    from ase_phisnet.molecule import build_mol

    numbers = [8, 1, 1]
    positions = np.array([[0.0, 0.05, 0.12], [0.1, 0.80, -0.45], [0.0, -0.74, -0.50]])
    frame = label_frame(numbers, positions, method="ccsd(t)", basis="6-31g", conv_tol=1e-11)

    def ccsd_t(pos):
        mf = scf.RHF(build_mol(numbers, pos, basis="6-31g"))
        mf.conv_tol, mf.verbose = 1e-12, 0
        mf.kernel()
        mycc = cc.CCSD(mf)
        mycc.conv_tol, mycc.conv_tol_normt, mycc.verbose = 1e-11, 1e-8, 0
        mycc.kernel()
        return mf, mycc.e_tot + mycc.ccsd_t()

    mf, energy = ccsd_t(positions)
    assert frame["converged"]
    assert abs(frame["energy"] - energy) < 1e-8
    assert frame["energy"] < mf.e_tot - 0.1  # correlation energy included
    np.testing.assert_allclose(frame["fock"], mf.get_fock(), atol=1e-7)
    np.testing.assert_allclose(frame["mo_energy"], mf.mo_energy, atol=1e-7)

    h = 1e-3  # Å
    bohr = 0.529177210903
    for atom, axis in [(1, 1), (2, 2), (0, 0)]:
        plus, minus = positions.copy(), positions.copy()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        fd_force = -(ccsd_t(plus)[1] - ccsd_t(minus)[1]) / (2 * h / bohr)  # Hartree/Bohr
        assert abs(frame["forces"][atom, axis] - fd_force) < 2e-6, (atom, axis)


def test_open_shell_refused():
    with pytest.raises(ValueError, match="closed shells only"):
        label_frame([8, 1, 1], [[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]], multiplicity=3)


def test_kill_and_resume(tmp_path, water20_xyz, water_ref):
    """SIGKILL the real CLI mid-run, rerun the same command: 20 whole frames, each once, right energies."""
    dataset = tmp_path / "water20"
    args = ("data", "label", water20_xyz, dataset, "--workers", "1")  # PBE/def2-SVP, conv_tol 1e-11
    proc = subprocess.Popen(cli_command(*args), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    frames_dir = dataset / "frames"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if frames_dir.is_dir() and len(list(frames_dir.glob("*.npz"))) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"labeling ended before it could be killed: {proc.stderr.read()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written_before = sorted(p.name for p in frames_dir.glob("*.npz"))
    assert 3 <= len(written_before) < 20

    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert f"{20 - len(written_before)} labeled now, {len(written_before)} already there" in result.stdout

    store = FrameStore.open(dataset)
    names = sorted(p.name for p in frames_dir.iterdir())
    assert names == [f"{i:06d}.npz" for i in range(20)]  # each index exactly once, no temp files left
    assert store.indices() == list(range(20))
    frames = store.read_all()
    energies = np.array([f["energy"] for f in frames])
    assert all(f["converged"] for f in frames)
    # an uninterrupted labeling with the same settings: the shared set's rows, and label_frame here
    np.testing.assert_allclose(energies, water_ref["energy"], rtol=0, atol=1e-8)
    for i in (0, 19):  # one frame from before the kill, one from after
        again = label_frame(water_ref["numbers"], water_ref["positions"][i])
        assert abs(again["energy"] - energies[i]) < 1e-8
        np.testing.assert_allclose(frames[i]["fock"], again["fock"], atol=1e-7)


def test_shards_merge_equal_full_set(tmp_path, water20_xyz, cli):
    common = [*FAST, "--max-frames", "5", "-q"]
    for k in (1, 2):
        rc, out, err = cli("data", "label", water20_xyz, tmp_path / f"shard{k}", "--shard", f"{k}/2", *common)
        assert rc == 0, err
    assert FrameStore.open(tmp_path / "shard1").indices() == [0, 2, 4]
    assert FrameStore.open(tmp_path / "shard2").indices() == [1, 3]
    record = json.loads((tmp_path / "shard2" / "progress.json").read_text())
    assert (record["shard"], record["selected"], record["done"], record["failed"]) == ("2/2", 2, 2, 0) and record["seconds_per_frame"] > 0
    rc, out, err = cli("data", "info", tmp_path / "shard1", tmp_path / "shard2")
    assert rc == 0, err
    assert "labelling: 3 of 3 frames of water20.xyz (shard 1/2)" in out and "labelling: 2 of 2 frames of water20.xyz (shard 2/2)" in out
    assert out.strip().endswith("2 datasets: 5 frames; labelling: 5 of 5 frames done")
    rc, out, err = cli("data", "merge", tmp_path / "merged", tmp_path / "shard1", tmp_path / "shard2", "-q")
    assert rc == 0, err
    rc, out, err = cli("data", "label", water20_xyz, tmp_path / "full", *common)
    assert rc == 0, err
    merged, full = FrameStore.open(tmp_path / "merged"), FrameStore.open(tmp_path / "full")
    assert merged.indices() == full.indices() == [0, 1, 2, 3, 4]
    for i in range(5):
        a, b = merged.read(i), full.read(i)
        assert abs(a["energy"] - b["energy"]) < 1e-8
        np.testing.assert_allclose(a["fock"], b["fock"], atol=1e-6)
        np.testing.assert_array_equal(a["positions"], b["positions"])

    # resuming with other settings is refused, naming the setting
    rc, out, err = cli("data", "label", water20_xyz, tmp_path / "full", *common, "--xc", "b3lyp")
    assert rc == 2 and "xc: 'pbe' (stored) vs 'b3lyp' (requested)" in err


def test_parallel_workers_match_serial(tmp_path, water20_xyz, cli):
    common = [*FAST, "--max-frames", "4", "-q"]
    result = run_cli("data", "label", water20_xyz, tmp_path / "par", "--workers", "2", *common)
    assert result.returncode == 0, result.stderr
    rc, out, err = cli("data", "label", water20_xyz, tmp_path / "ser", *common)
    assert rc == 0, err
    par, ser = FrameStore.open(tmp_path / "par"), FrameStore.open(tmp_path / "ser")
    assert par.indices() == ser.indices() == [0, 1, 2, 3]
    for i in range(4):
        assert abs(par.read(i)["energy"] - ser.read(i)["energy"]) < 1e-8


def test_unconverged_frames_kept_and_flagged(tmp_path, cli):
    import ase.io
    from ase import Atoms

    frames = [
        Atoms("OH2", positions=[[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]]),
        Atoms("OH2", positions=[[0, 0, 0], [0, 3.5, 0], [0, -3.5, 0.3]]),  # stretched: SCF does not converge
    ]
    ase.io.write(tmp_path / "f.xyz", frames)
    rc, out, err = cli("data", "label", tmp_path / "f.xyz", tmp_path / "ds", *FAST, "-q")
    assert rc == 0, err
    assert "1 did not converge" in out
    store = FrameStore.open(tmp_path / "ds")
    assert store.indices() == [0, 1]
    assert store.converged_mask().tolist() == [True, False]
    assert store.read(1)["scf_cycles"] == 50
