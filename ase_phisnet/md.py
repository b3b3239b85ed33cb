"""Molecular dynamics on the learned Hamiltonian: ASE integrators, a log, a trajectory, a figure.

:func:`run_md` runs NVE (velocity Verlet) or NVT (Langevin) with :class:`PhiSNetCalculator` and
writes into an output folder:

* ``md.traj``: ASE trajectory (positions, velocities, energy, forces) every ``interval`` steps;
* ``md_log.csv``: time (fs), potential / kinetic / total energy (eV), temperature (K) and the
  predicted HOMO-LUMO gap (eV);
* ``md_energies.png``: energies, temperature and gap against time.

A run whose folder already holds ``md.traj`` continues from its last frame (positions and
velocities), appending to the trajectory and the log.

Examples
--------
>>> from ase.build import molecule
>>> from ase_phisnet.md import run_md
>>> summary = run_md(molecule("H2O"), "outputs/md", ensemble="nve", steps=200)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import numpy as np
from ase import units
from ase.calculators.calculator import Calculator, all_changes
from ase.io import Trajectory
from tqdm.auto import tqdm

from .errors import InputError

LOG_FIELDS = ["time_fs", "epot_eV", "ekin_eV", "etot_eV", "temperature_K", "gap_eV"]


def run_md(
    atoms,
    output,
    model="water-pbe-def2svp",
    ensemble: str = "nve",
    temperature_K: float = 300.0,
    timestep_fs: float = 0.25,
    steps: int = 2000,
    friction_per_fs: float = 0.01,
    interval: int = 10,
    seed: int = 0,
    dtype: str = "float64",
    progress: bool = True,
) -> dict:
    """Run MD with the PhiSNet calculator; returns a summary (frames, drift, mean temperature,
    steps run, wall time and steps per second of this run).

    Parameters
    ----------
    atoms : ase.Atoms
        Start geometry (Å). Ignored when ``output`` holds a trajectory to continue.
    output : path
        Folder for the trajectory, log and figure.
    model : str or path or PhiSNet or ase Calculator
        Model with an H~core head (energies and forces), or a ready calculator.
    ensemble : {"nve", "nvt"}
        Velocity Verlet, or Langevin at ``temperature_K`` with ``friction_per_fs``.
    temperature_K : float
        Maxwell-Boltzmann initial velocities (new runs) and the Langevin bath.
    timestep_fs, steps, interval : float, int, int
        Time step (fs), steps to run, and steps between records.
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
    from ase.md.verlet import VelocityVerlet

    from .calculator import PhiSNetCalculator

    if ensemble not in ("nve", "nvt"):
        raise InputError(f"ensemble must be 'nve' or 'nvt', got {ensemble!r}")
    if steps < 1 or interval < 1 or timestep_fs <= 0:
        raise InputError(f"steps and interval must be positive integers and timestep_fs positive; got {steps}, {interval}, {timestep_fs}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    traj_path, log_path = out / "md.traj", out / "md_log.csv"

    start_time = 0.0
    if traj_path.exists() and traj_path.stat().st_size > 0:
        last = Trajectory(str(traj_path))[-1]
        atoms = last.copy()
        atoms.set_velocities(last.get_velocities())
        start_time = _last_time(log_path)
    else:
        atoms = atoms.copy()
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=np.random.default_rng(seed))
        Stationary(atoms)
        ZeroRotation(atoms)
        for path in (traj_path, log_path):
            path.unlink(missing_ok=True)
    calc = model if isinstance(model, Calculator) else PhiSNetCalculator(model, dtype=dtype)
    atoms.calc = calc

    dt = timestep_fs * units.fs
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, timestep=dt)
    else:
        dyn = Langevin(atoms, timestep=dt, temperature_K=temperature_K, friction=friction_per_fs / units.fs, rng=np.random.default_rng(seed + 1))
    traj = Trajectory(str(traj_path), "a", atoms)
    new_log = not log_path.exists()
    log_fh = open(log_path, "a", newline="")
    writer = csv.writer(log_fh)
    if new_log:
        writer.writerow(LOG_FIELDS)
    bar = tqdm(total=steps, desc=f"MD ({ensemble})", unit="step", disable=not progress)

    def record():
        if dyn.nsteps == 0 and not new_log:
            return  # a continued run's first frame is the previous run's last record
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        t = start_time + dyn.nsteps * timestep_fs
        writer.writerow([f"{t:.4f}", f"{epot:.8f}", f"{ekin:.8f}", f"{epot + ekin:.8f}", f"{atoms.get_temperature():.3f}", f"{calc.results.get('homo_lumo_gap', np.nan):.6f}"])
        log_fh.flush()
        traj.write()

    dyn.attach(record, interval=interval)  # ASE also calls it before the first step
    dyn.attach(lambda: bar.update(1), interval=1)
    started = time.perf_counter()
    try:
        dyn.run(steps)
    finally:
        bar.close()
        traj.close()
        log_fh.close()
    wall_s = time.perf_counter() - started
    log = read_log(log_path)
    plot_md_log(log, out / "md_energies.png", title=f"{ensemble.upper()} MD, {timestep_fs} fs step")
    t_ps = log["time_fs"] / 1000
    drift = float(np.polyfit(t_ps, log["etot_eV"], 1)[0]) if len(t_ps) > 2 else float("nan")
    return {
        "frames": len(log["time_fs"]),
        "time_fs": float(log["time_fs"][-1]),
        "etot_drift_meV_per_ps": drift * 1e3,
        "etot_spread_meV": float(np.ptp(log["etot_eV"]) * 1e3),
        "mean_temperature_K": float(log["temperature_K"].mean()),
        "gap_range_eV": [float(log["gap_eV"].min()), float(log["gap_eV"].max())],
        "steps": steps,
        "wall_time_s": wall_s,
        "steps_per_second": steps / wall_s,
        "output": str(out),
    }


def run_md_replicas(atoms, output, replicas: int, model="water-pbe-def2svp", seed: int = 0, dtype: str = "float64", progress: bool = True, **md) -> dict:
    """Run ``replicas`` independent MD runs of one molecule, their forces evaluated together.

    Replica ``k`` is :func:`run_md` with ``seed + k`` (its own initial velocities and Langevin
    noise) into ``output/replica_KKK``. The replicas step in lockstep: at every step the forces
    of all of them come from one :meth:`PhiSNetCalculator.evaluate_batch` call (one network
    evaluation for the ensemble), and each replica's numbers equal those of a run on its own.

    Parameters
    ----------
    atoms : ase.Atoms
        Start geometry of every replica (Å).
    output : path
        Parent folder of the replicas' folders.
    replicas : int
        Number of replicas.
    model, seed, dtype, progress
        As for :func:`run_md`; the progress bar counts the steps of replica 0.
    **md
        The other arguments of :func:`run_md` (``ensemble``, ``steps``, ``timestep_fs``, ...).

    Returns
    -------
    dict
        ``replicas``: the summary of each run; ``wall_time_s`` and ``steps_per_second`` (steps of
        all replicas together per second) of the whole ensemble.
    """
    from .calculator import PhiSNetCalculator

    if replicas < 1:
        raise InputError(f"replicas must be a positive integer, got {replicas}")
    calc = model if isinstance(model, PhiSNetCalculator) else PhiSNetCalculator(model, dtype=dtype)
    batch = _ReplicaBatch(calc, replicas)
    summaries: list = [None] * replicas
    errors: list = []

    def one(k: int) -> None:
        try:
            summaries[k] = run_md(atoms, Path(output) / f"replica_{k:03d}", model=_ReplicaCalculator(batch, k), seed=seed + k, progress=progress and k == 0, **md)
        except BaseException as error:  # noqa: B036 (re-raised by the caller below)
            errors.append(error)
        finally:
            batch.leave()

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(k,), name=f"replica {k}") for k in range(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    wall_s = time.perf_counter() - started
    steps = sum(s["steps"] for s in summaries)
    return {"replicas": summaries, "wall_time_s": wall_s, "steps_per_second": steps / wall_s, "output": str(output)}


class _ReplicaBatch:
    """Forces of all replicas' current geometries from one ``evaluate_batch`` call.

    Each replica's calculator hands in its geometry and waits; the last of the running replicas
    to arrive evaluates them all and wakes the others. A replica that ends (or fails) leaves.
    """

    def __init__(self, calc, replicas: int):
        self.calc, self.active = calc, replicas
        self.pending: dict = {}
        self.results: dict = {}
        self.error: BaseException | None = None
        self.round = 0
        self.lock = threading.Condition()

    def evaluate(self, k: int, atoms) -> dict:
        with self.lock:
            self.pending[k] = atoms.copy()
            this_round = self.round
            if len(self.pending) == self.active:
                self._run()
            while self.round == this_round:
                self.lock.wait()
            if self.error is not None:
                raise RuntimeError("the replicas' batched force evaluation failed") from self.error
            return self.results.pop(k)

    def leave(self) -> None:
        with self.lock:
            self.active -= 1
            if self.pending and len(self.pending) == self.active:
                self._run()

    def _run(self) -> None:
        keys = sorted(self.pending)
        try:
            self.results.update(zip(keys, self.calc.evaluate_batch([self.pending[k] for k in keys])))
        except BaseException as error:  # handed to every waiting replica
            self.error = error
        self.pending.clear()
        self.round += 1
        self.lock.notify_all()


class _ReplicaCalculator(Calculator):
    """Replica ``k``'s view of a :class:`_ReplicaBatch`: energy, forces and gap of its geometry."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, batch: _ReplicaBatch, k: int):
        super().__init__()
        self.batch, self.k = batch, k

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        result = self.batch.evaluate(self.k, self.atoms)
        self.results = {key: result[key] for key in ("energy", "free_energy", "forces", "homo_lumo_gap")}


def read_log(path) -> dict[str, np.ndarray]:
    """The MD log CSV as arrays, by column name."""
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return {k: np.array([float(r[k]) for r in rows]) for k in LOG_FIELDS}


def _last_time(log_path: Path) -> float:
    return float(read_log(log_path)["time_fs"][-1]) if log_path.exists() else 0.0


def plot_md_log(log: dict, path, title: str = "MD") -> None:
    """Energies (relative to the first total energy), temperature and HOMO-LUMO gap against time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = log["time_fs"] / 1000
    e0 = log["etot_eV"][0]
    fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True, constrained_layout=True)
    ax = axes[0]
    ax.plot(t, (log["epot_eV"] - e0) * 1e3, label="potential")
    ax.plot(t, log["ekin_eV"] * 1e3, label="kinetic")
    ax.plot(t, (log["etot_eV"] - e0) * 1e3, label="total", color="k")
    ax.set_ylabel("energy - E_tot(0) (meV)")
    ax.legend(loc="upper right")
    ax.set_title(title)
    axes[1].plot(t, log["temperature_K"], color="tab:red")
    axes[1].set_ylabel("temperature (K)")
    axes[2].plot(t, log["gap_eV"], color="tab:green")
    axes[2].set_ylabel("HOMO-LUMO gap (eV)")
    axes[2].set_xlabel("time (ps)")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=120)
    plt.close(fig)
