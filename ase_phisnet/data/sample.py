"""Geometry sampling with GFN2-xTB (tblite): Langevin MD or harmonic normal-mode sampling.

Both samplers are reproducible by their seed and write ASE extxyz (or ``.traj``) files
atomically, so ``ase gui`` and :func:`ase.io.read` read them.

* :func:`sample_md`: Langevin dynamics (:class:`ase.md.langevin.Langevin`) at temperature T,
  Maxwell–Boltzmann initial velocities, an equilibration period, then one frame every
  ``stride_fs``. The shared reference sets were made with the defaults (500 K, 0.5 fs step,
  friction 0.01/fs, 2 ps equilibration, 10 fs stride).
* :func:`sample_normal_modes`: optimise, build the harmonic Hessian by central finite
  differences of xTB forces, and draw independent displacements from the classical Boltzmann
  distribution of each vibrational mode, q_k ~ N(0, kT / omega_k^2) in mass-weighted coordinates.

Examples
--------
>>> from ase_phisnet.data.molecules import get_molecule
>>> from ase_phisnet.data.sample import sample_md
>>> frames = sample_md(get_molecule("water"), n_frames=5, equilibration_ps=0.05, seed=1)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from ase import Atoms, units

from ..errors import InputError, MissingFileError

#: Samplers :func:`sample` knows.
SAMPLERS = ("md", "normal-modes")
#: Finite-difference step for the xTB Hessian, Å.
HESSIAN_STEP = 0.005
#: Force threshold of the xTB geometry optimisation before the normal-mode analysis, eV/Å.
OPT_FMAX = 1e-3
#: Mass-weighted Hessian eigenvalues below this (eV/Å²/amu) count as non-vibrational.
MIN_MODE_EIGENVALUE = 1e-3


def xtb_calculator(charge: int = 0, multiplicity: int = 1):
    """A GFN2-xTB calculator (tblite's ASE interface), silent."""
    from tblite.ase import TBLite

    return TBLite(method="GFN2-xTB", charge=int(charge), multiplicity=int(multiplicity), verbosity=0)


def _check_positive(**values) -> None:
    for name, value in values.items():
        if not np.isfinite(value) or value <= 0:
            raise InputError(f"{name.replace('_', '-')} must be > 0, got {value}")


def _frame(atoms: Atoms, info: dict) -> Atoms:
    frame = Atoms(numbers=atoms.numbers, positions=atoms.positions.copy())
    frame.info.update(info)
    return frame


def _maxwell_boltzmann(atoms: Atoms, temperature: float, rng) -> None:
    """Maxwell-Boltzmann momenta at ``temperature`` (K) from ``rng`` (ASE >= 3.29 and older)."""
    try:
        from ase.md.velocitydistribution import thermalize_momenta
    except ImportError:  # ASE < 3.29
        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    else:
        thermalize_momenta(atoms, temperature, rng=rng)


def sample_md(
    atoms: Atoms,
    n_frames: int,
    temperature: float = 500.0,
    stride_fs: float = 10.0,
    timestep_fs: float = 0.5,
    friction: float = 0.01,
    equilibration_ps: float = 2.0,
    seed: int = 1,
    charge: int = 0,
    multiplicity: int = 1,
    progress: bool = True,
) -> list[Atoms]:
    """Langevin MD with GFN2-xTB; one frame every ``stride_fs`` after equilibration.

    Parameters
    ----------
    atoms : ase.Atoms
        Starting geometry (Å); not modified.
    n_frames : int
        Number of frames to return.
    temperature : float
        Thermostat temperature and initial Maxwell–Boltzmann temperature, K.
    stride_fs : float
        Time between frames, fs; must be a multiple of ``timestep_fs``.
    timestep_fs : float
        Integration time step, fs.
    friction : float
        Langevin friction, 1/fs.
    equilibration_ps : float
        Time simulated before the first frame, ps (may be 0).
    seed : int
        Seed of the one NumPy generator used for the initial velocities and the thermostat noise.
    charge, multiplicity : int
        Total charge and spin multiplicity for xTB.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    list of ase.Atoms
        Positions only; ``info`` holds ``time_fs``, ``xtb_energy_eV``, ``sampler``, ``temperature_K``.
    """
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary
    from tqdm.auto import tqdm

    n_frames = int(n_frames)
    if n_frames < 1:
        raise InputError(f"n-frames must be >= 1, got {n_frames}")
    _check_positive(temperature=temperature, stride_fs=stride_fs, timestep_fs=timestep_fs, friction=friction)
    if equilibration_ps < 0:
        raise InputError(f"equilibration-ps must be >= 0, got {equilibration_ps}")
    stride = stride_fs / timestep_fs
    if abs(stride - round(stride)) > 1e-9:
        raise InputError(f"stride-fs ({stride_fs}) must be a multiple of timestep-fs ({timestep_fs})")
    stride = int(round(stride))
    n_equil = int(round(equilibration_ps * 1000.0 / timestep_fs))

    atoms = Atoms(numbers=atoms.numbers, positions=atoms.positions.copy())
    atoms.calc = xtb_calculator(charge, multiplicity)
    atoms.set_constraint(FixCom())
    rng = np.random.default_rng(seed)
    _maxwell_boltzmann(atoms, temperature, rng)
    Stationary(atoms)
    dyn = Langevin(
        atoms,
        timestep=timestep_fs * units.fs,
        temperature_K=temperature,
        friction=friction / units.fs,
        fixcm=False,
        rng=rng,
    )

    info = {"sampler": "md", "temperature_K": float(temperature), "seed": int(seed)}
    if n_equil:
        bar = tqdm(total=n_equil, desc="equilibrate", unit="step", disable=not progress, leave=False)
        done = 0
        while done < n_equil:
            step = min(1000, n_equil - done)
            dyn.run(step)
            done += step
            bar.update(step)
        bar.close()
    frames = []
    for i in tqdm(range(n_frames), desc="sample md", unit="frame", disable=not progress):
        dyn.run(stride)
        time_fs = (n_equil + (i + 1) * stride) * timestep_fs
        frames.append(_frame(atoms, {**info, "time_fs": time_fs, "xtb_energy_eV": float(atoms.get_potential_energy())}))
    return frames


def xtb_hessian(atoms: Atoms, step: float = HESSIAN_STEP) -> np.ndarray:
    """Cartesian Hessian (3N, 3N), eV/Å², by central differences of the attached calculator's forces."""
    x0 = atoms.positions.copy()
    n = 3 * len(atoms)
    hessian = np.empty((n, n))
    try:
        for k in range(n):
            a, c = divmod(k, 3)
            atoms.positions = x0
            atoms.positions[a, c] += step
            f_plus = atoms.get_forces().reshape(-1)
            atoms.positions = x0
            atoms.positions[a, c] -= step
            f_minus = atoms.get_forces().reshape(-1)
            hessian[k] = -(f_plus - f_minus) / (2 * step)
    finally:
        atoms.positions = x0
    return 0.5 * (hessian + hessian.T)


def _rigid_body_basis(atoms: Atoms) -> np.ndarray:
    """Orthonormal mass-weighted translations and rotations (columns), 3N x (5 or 6)."""
    masses = atoms.get_masses()
    sqrt_m = np.sqrt(masses)
    x = atoms.positions - atoms.get_center_of_mass()
    vectors = []
    for c in range(3):
        t = np.zeros_like(x)
        t[:, c] = 1.0
        vectors.append((t * sqrt_m[:, None]).reshape(-1))
    for c in range(3):
        axis = np.zeros(3)
        axis[c] = 1.0
        vectors.append((np.cross(axis, x) * sqrt_m[:, None]).reshape(-1))
    q, r = np.linalg.qr(np.array(vectors).T)
    keep = np.abs(np.diag(r)) > 1e-6 * np.abs(r).max()
    return q[:, keep]


def normal_modes(atoms: Atoms, hessian: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vibrational modes of a Hessian with translations and rotations projected out.

    Returns
    -------
    eigenvalues : (n_modes,) ndarray
        omega_k^2 in eV/(Å² amu), ascending, only those above :data:`MIN_MODE_EIGENVALUE`.
    modes : (3N, n_modes) ndarray
        Orthonormal mass-weighted eigenvectors.
    """
    inv_sqrt_m = np.repeat(1.0 / np.sqrt(atoms.get_masses()), 3)
    h_mw = hessian * inv_sqrt_m[:, None] * inv_sqrt_m[None, :]
    rigid = _rigid_body_basis(atoms)
    proj = np.eye(len(h_mw)) - rigid @ rigid.T
    h_mw = proj @ h_mw @ proj
    eigenvalues, vectors = np.linalg.eigh(0.5 * (h_mw + h_mw.T))
    vib = eigenvalues > MIN_MODE_EIGENVALUE
    n_expected = len(h_mw) - rigid.shape[1]
    if vib.sum() < n_expected:
        import warnings

        warnings.warn(
            f"{n_expected - vib.sum()} of {n_expected} vibrational modes are soft or imaginary and are not sampled",
            stacklevel=2,
        )
    return eigenvalues[vib], vectors[:, vib]


def sample_normal_modes(
    atoms: Atoms,
    n_frames: int,
    temperature: float = 500.0,
    seed: int = 1,
    charge: int = 0,
    multiplicity: int = 1,
    progress: bool = True,
) -> list[Atoms]:
    """Classical harmonic sampling around the GFN2-xTB minimum.

    Each frame displaces the optimised geometry by ``M^-1/2 sum_k q_k L_k`` with independent
    ``q_k ~ N(0, k_B T / omega_k^2)`` (mass-weighted normal coordinates, amu^1/2 Å), the classical
    Boltzmann distribution of each harmonic mode at temperature ``T``.

    Parameters
    ----------
    atoms : ase.Atoms
        Starting geometry (Å); optimised with BFGS to max |force| < :data:`OPT_FMAX` eV/Å first.
    n_frames : int
        Number of frames.
    temperature : float
        Temperature, K.
    seed : int
        Seed of the NumPy generator of the displacements.
    charge, multiplicity : int
        Total charge and spin multiplicity for xTB.
    progress : bool
        Show a tqdm bar over the Hessian columns.

    Returns
    -------
    list of ase.Atoms
        ``info`` holds ``sampler``, ``temperature_K``, ``xtb_energy_eV`` (of the minimum).
    """
    from ase.optimize import BFGS

    n_frames = int(n_frames)
    if n_frames < 1:
        raise InputError(f"n-frames must be >= 1, got {n_frames}")
    _check_positive(temperature=temperature)
    atoms = Atoms(numbers=atoms.numbers, positions=atoms.positions.copy())
    atoms.calc = xtb_calculator(charge, multiplicity)
    if len(atoms) > 1:
        BFGS(atoms, logfile=None).run(fmax=OPT_FMAX, steps=1000)
    e_min = float(atoms.get_potential_energy())
    if len(atoms) == 1:
        eigenvalues, modes = np.zeros(0), np.zeros((3, 0))
    else:
        hessian = xtb_hessian(atoms)
        eigenvalues, modes = normal_modes(atoms, hessian)
    rng = np.random.default_rng(seed)
    kT = units.kB * temperature  # eV
    sigma = np.sqrt(kT / eigenvalues)  # amu^1/2 Å
    inv_sqrt_m = np.repeat(1.0 / np.sqrt(atoms.get_masses()), 3)
    x0 = atoms.positions.copy()
    info = {"sampler": "normal-modes", "temperature_K": float(temperature), "seed": int(seed), "xtb_energy_eV": e_min}
    frames = []
    for _ in range(n_frames):
        q = rng.standard_normal(len(eigenvalues)) * sigma
        dx = (inv_sqrt_m * (modes @ q)).reshape(-1, 3)
        frames.append(_frame(Atoms(numbers=atoms.numbers, positions=x0 + dx), info))
    return frames


def sample(molecule: str | Atoms, n_frames: int, sampler: str = "md", **kwargs) -> list[Atoms]:
    """Sample frames of a molecule (name, file, or Atoms) with the chosen sampler.

    ``kwargs`` are those of :func:`sample_md` or :func:`sample_normal_modes`; MD-only settings
    are ignored by the normal-mode sampler.
    """
    from .molecules import get_molecule

    if sampler not in SAMPLERS:
        raise InputError(f"unknown sampler {sampler!r}; accepted: {', '.join(SAMPLERS)}")
    atoms = molecule if isinstance(molecule, Atoms) else get_molecule(molecule)
    if sampler == "md":
        return sample_md(atoms, n_frames, **kwargs)
    keep = {k: v for k, v in kwargs.items() if k in ("temperature", "seed", "charge", "multiplicity", "progress")}
    return sample_normal_modes(atoms, n_frames, **keep)


def write_frames(path: str | os.PathLike, frames: Sequence[Atoms]) -> Path:
    """Write frames atomically (temp file beside ``path``, fsync, rename).

    The format is ASE's ``traj`` for a ``.traj`` name and extxyz otherwise.
    """
    import ase.io

    from ..atomic_files import atomic_write_bytes

    path = Path(path)
    if path.is_dir():
        raise InputError(f"output {path} is a directory; give a file name such as frames.xyz")
    if not path.parent.exists():
        raise MissingFileError(f"output directory {path.parent} does not exist")
    fmt = "traj" if path.suffix.lower() == ".traj" else "extxyz"
    if fmt == "traj":
        import tempfile

        # ASE's trajectory writer wants a file name; write it beside the target, then rename
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            ase.io.write(tmp, list(frames), format="traj")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    else:
        import io

        buf = io.StringIO()
        ase.io.write(buf, list(frames), format="extxyz")
        atomic_write_bytes(path, lambda fh: fh.write(buf.getvalue().encode("utf-8")))
    return path
