"""Shared fixtures of the data-pipeline tests: water geometries from the shared set, CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ..conftest import ETHANOL_H5, SHARED_DATA, WATER_H5, require_reference  # noqa: F401 (ETHANOL_H5: re-exported for the data tests)

REPO = Path(__file__).resolve().parents[2]
SHARED = SHARED_DATA

#: Cheap labeling settings for tests where exactness against the reference is not the point.
FAST = ["--basis", "sto-3g", "--conv-tol", "1e-9", "--grids-level", "1"]


def need(path: Path) -> Path:
    """``path`` if the reference set exists; skip the test otherwise (fail under CI)."""
    return require_reference(path)


def cli_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"  # one PySCF process, one thread, on the shared 2-core machine
    return env


def cli_command(*args: str) -> list[str]:
    """The ``phisnet`` command as a subprocess argv (works without the console script installed)."""
    return [sys.executable, "-m", "ase_phisnet.cli.main", *map(str, args)]


def run_cli(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run ``phisnet ARGS`` in a subprocess; returns the completed process (text output)."""
    return subprocess.run(cli_command(*args), env=cli_env(), cwd=kwargs.pop("cwd", REPO), capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture
def cli(capsys):
    """Call ``phisnet`` in-process: ``rc, out, err = cli("data", "info", path)``."""
    from ase_phisnet.cli.main import main

    def call(*args):
        capsys.readouterr()
        try:
            rc = main([str(a) for a in args])
        except SystemExit as exc:  # argparse --help / usage errors
            rc = exc.code
        out, err = capsys.readouterr()
        return rc, out, err

    return call


@pytest.fixture(scope="session")
def water_ref():
    """The first 20 frames of the shared water set: dict of arrays (numbers (3,), positions, energy, ...)."""
    import h5py

    with h5py.File(need(WATER_H5), "r") as fh:
        return {k: fh[k][()] if k == "numbers" else fh[k][:20] for k in fh.keys()}


@pytest.fixture(scope="session")
def water20_xyz(tmp_path_factory, water_ref) -> Path:
    """extxyz file of the first 20 geometries (Å) of the shared water set."""
    import ase.io
    from ase import Atoms

    path = tmp_path_factory.mktemp("frames") / "water20.xyz"
    ase.io.write(path, [Atoms(numbers=water_ref["numbers"], positions=p) for p in water_ref["positions"]], format="extxyz")
    return path


def fake_frame(natm: int = 3, nao: int = 5, seed: int = 0, converged: bool = True) -> dict:
    """A frame with random values of the right shapes (for store tests, no physics)."""
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(nao, nao))
    return {
        "numbers": np.array([8, 1, 1, 6, 7][:natm]),
        "positions": rng.normal(size=(natm, 3)),
        "energy": rng.normal(),
        "forces": rng.normal(size=(natm, 3)),
        "fock": m + m.T,
        "overlap": np.eye(nao),
        "hcore": m + m.T - 1.0,
        "mo_energy": np.sort(rng.normal(size=nao)),
        "dipole": rng.normal(size=3),
        "converged": converged,
        "scf_cycles": 7,
    }


def _openblas_set_num_threads(n: int) -> int | None:
    """Set the thread count of the OpenBLAS loaded by NumPy (best effort); return the old one."""
    import ctypes

    try:
        with open("/proc/self/maps") as fh:
            libs = {line.split()[-1] for line in fh if "openblas" in line.split()[-1].lower()}
    except OSError:
        return None
    for lib in sorted(libs):
        handle = ctypes.CDLL(lib)
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                get = getattr(handle, f"{prefix}_get_num_threads{suffix}", None)
                set_ = getattr(handle, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    old = get()
                    set_(n)
                    return old
    return None


@pytest.fixture(autouse=True)
def single_threaded():
    """Run in-process PySCF single-threaded, as the labeling workers do.

    On this shared 2-core machine, spinning OpenMP/BLAS threads make a small SCF 10-50x slower
    whenever other processes are busy. Restored after each test.
    """
    import torch
    from pyscf import lib

    old = lib.num_threads(), torch.get_num_threads()
    lib.num_threads(1)
    torch.set_num_threads(1)
    old_blas = _openblas_set_num_threads(1)
    yield
    lib.num_threads(old[0])
    torch.set_num_threads(old[1])
    if old_blas is not None:
        _openblas_set_num_threads(old_blas)
