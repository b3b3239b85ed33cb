"""Energy+forces step of PhiSNetCalculator against PySCF PBE/def2-SVP and GFN2-xTB.

Everything runs in one process, one method after the other, and the script prints ratios of
that one run: these machines are shared and noisy, so compare rows of one run, never runs on
different days (and never turn this into a timed test).

What is measured, per molecule:

* frames: consecutive frames of an MD trajectory (10 fs apart): water and ethanol from the
  shared reference sets, malondialdehyde and uracil sampled here with GFN2-xTB Langevin MD
  (500 K, 0.2 ps equilibration, seeded; :func:`ase_phisnet.data.sample.sample_md`);
* PhiSNet: ``PhiSNetCalculator(model)`` as a user gets it (float64, exact overlap, CPU, the
  engine it picks by default: the compiled network and the NumPy electronic step where the
  engine is built, else torch; ``--engine`` chooses), one torch thread. The report says which
  engine ran. Water runs the shipped ``water-pbe-def2svp``; the other molecules run
  random weights in the same architecture (``small`` preset, 48 features, 3 interaction
  modules, F~ and H~core heads, ``core_baseline``, energy correction), which costs the same.
  The model is loaded (timed), the first energy+forces call of the fresh calculator is the
  cold call (timed, on a frame that is not counted, and it is also the warm-up), then each of
  ``--frames`` other frames is evaluated once: ``atoms.get_forces()`` then
  ``atoms.get_potential_energy()`` from the same step;
* PySCF: what the calculator replaces, RKS PBE/def2-SVP, grid level 3 (PySCF's default),
  conv_tol 1e-9, default initial guess, energy + analytic gradient, on the first
  ``--pyscf-frames`` of those frames, one thread (``pyscf.lib.num_threads``); PySCF's one-time
  set-up is paid beforehand by an untimed H2 calculation with the same settings;
* GFN2-xTB (tblite's ASE calculator) on the same frames as PhiSNet, after one warm-up; "n/a"
  where tblite is not installed (its OpenMP threads follow ``OMP_NUM_THREADS``);
* where one PhiSNet step goes (approximate): the functions the calculator's step calls, called
  one by one with timers (graph bookkeeping, network forward, exact integrals S and T + V_nuc
  with their derivatives and contractions, the electronic step, network backward), against the
  full calculator step on the same frames; "other" is the difference (ASE bookkeeping, input
  checks, conversions). Dipole and charges, which a step computes only when asked for them,
  are timed beside it;
* with ``--compare-float32``: the same model in a float32 calculator (network in float32,
  electronic step in float64) on the same frames, in turn with the float64 one: the speed-up
  and the largest force and energy differences, against the target (ethanol at least 1.5x
  faster, forces within 1e-3 eV/Å of float64).

The ratio is PySCF's mean step over PhiSNet's median step; "reach" is that ratio as a fraction
of 1000x (the paper's claim), and "PhiSNet / xTB" how many xTB steps one PhiSNet step costs.

Examples (from the repository root, ``.venv`` active)::

    OMP_NUM_THREADS=1 python benchmarks/calculator_speed.py                               # water and ethanol, 20 frames
    OMP_NUM_THREADS=1 python benchmarks/calculator_speed.py --molecules water --frames 3 --pyscf-frames 1   # under a minute
    OMP_NUM_THREADS=1 python benchmarks/calculator_speed.py --molecules water ethanol malondialdehyde uracil --json speed.json
    OMP_NUM_THREADS=1 python benchmarks/calculator_speed.py --dtype float32                # the network in float32
    OMP_NUM_THREADS=1 python benchmarks/calculator_speed.py --pyscf-frames 0 --no-xtb      # PhiSNet and its breakdown only
    OMP_NUM_THREADS=1 python benchmarks/calculator_speed.py --engine torch                 # the torch model and autograd
    OMP_NUM_THREADS=1 python benchmarks/calculator_speed.py --pyscf-frames 0 --no-xtb --compare-float32   # float32 against float64
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

ROOT = Path(__file__).resolve().parents[1]

#: The speed target: PySCF time over PhiSNet time, one thread, float64, default configuration.
REACH_RATIO = 1000


@dataclass(frozen=True)
class MoleculeSpec:
    """Where a molecule's frames and model come from, and the speed target for it."""

    reference_set: str | None  #: shared HDF5 set (consecutive frames are 10 fs apart); None: sample with xTB MD
    model: str | None  #: shipped model name; None: random weights in the shipped architecture
    pyscf_frames: int  #: default number of PySCF frames (ethanol ~10 s, malondialdehyde ~17 s, uracil ~51 s each)
    target_ratio: float | None  #: PySCF / PhiSNet asked for; None: reported only
    seed: int = 0  #: seed of the xTB MD sampling (sampled molecules only)
    float32_speedup: float | None = None  #: float64 step / float32 step asked for (``--compare-float32``); None: reported only


MOLECULES = {
    "water": MoleculeSpec("water_pbe_def2svp_500K.h5", "water-pbe-def2svp", 3, 200),
    "ethanol": MoleculeSpec("ethanol_pbe_def2svp_500K.h5", None, 2, 300, float32_speedup=1.5),
    "malondialdehyde": MoleculeSpec(None, None, 1, None, seed=11),
    "uracil": MoleculeSpec(None, None, 1, None, seed=12),
}

#: xTB Langevin MD for molecules without a shared set: the shared sets' protocol, shorter equilibration.
SAMPLING = dict(temperature=500.0, equilibration_ps=0.2, stride_fs=10.0, timestep_fs=0.5, friction=0.01)

#: The random-weight model: the shipped water model's architecture.
RANDOM_MODEL = dict(preset="small", features=48, num_interactions=3, heads=["fock", "hcore"], core_baseline=True, energy_correction=True)

#: Parts of the breakdown, in the order they run within a step; "other" is the step minus these.
BREAKDOWN_PARTS = ("graph", "forward", "integrals", "electronic", "backward")

#: Timed beside the step, not within it: a step computes them only when they are asked for.
EXTRA_PARTS = ("properties",)

#: ``--compare-float32``: the float32 forces may differ from the float64 ones by this much (eV/Å).
FLOAT32_FORCE_TOLERANCE = 1e-3


# ---------------------------------------------------------------------------- helpers
class Timer:
    """Wall-clock seconds of a ``with`` block (``synchronize`` first on a CUDA device)."""

    def __init__(self, device: str = "cpu"):
        self.cuda = str(device).startswith("cuda")
        self.s = float("nan")

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
        self.s = time.perf_counter() - self._t0
        return False


def median_ms(times_s) -> float:
    return 1e3 * statistics.median(times_s) if len(times_s) else float("nan")


def mean_ms(times_s) -> float:
    return 1e3 * statistics.fmean(times_s) if len(times_s) else float("nan")


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def machine_info() -> dict:
    """CPU, versions, threads, date and commit of this run."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from pyscf import lib

    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pyscf": _version("pyscf"),
        "tblite": _version("tblite"),
        "ase": _version("ase"),
        "torch_threads": torch.get_num_threads(),
        "pyscf_threads": lib.num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": None if dirty is None else bool(dirty),
    }


# ---------------------------------------------------------------------------- frames
def load_frames(name: str, n_frames: int, first: int = 0) -> tuple[list[Atoms], dict]:
    """``n_frames`` consecutive MD frames of a molecule (Å), and where they came from.

    Shared sets: frames ``first, first + 1, ...`` of the set (10 fs apart). Other molecules:
    a GFN2-xTB Langevin trajectory sampled here (:data:`SAMPLING`, the molecule's seed).
    """
    spec = MOLECULES[name]
    if spec.reference_set is not None:
        import h5py

        from ase_phisnet.data.location import reference_set

        path = reference_set(spec.reference_set)
        with h5py.File(path, "r") as fh:
            numbers = np.asarray(fh["numbers"][()]).reshape(-1)
            available = fh["positions"].shape[0]
            if first + n_frames > available:
                raise SystemExit(f"{path.name} has {available} frames; {first + n_frames} asked for")
            positions = np.asarray(fh["positions"][first : first + n_frames], dtype=np.float64)
        frames = [Atoms(numbers=numbers, positions=p) for p in positions]
        return frames, {"source": path.name, "frames": f"{first}..{first + n_frames - 1}", "stride_fs": 10.0}
    from ase_phisnet.data.sample import sample

    with Timer() as t:
        frames = sample(name, n_frames, sampler="md", seed=spec.seed, progress=False, **SAMPLING)
    return frames, {"source": "GFN2-xTB Langevin MD sampled here", **SAMPLING, "seed": spec.seed, "sampling_s": t.s}


# ---------------------------------------------------------------------------- PhiSNet
def make_calculator(name: str, numbers, dtype: str = "float64", device: str = "cpu", engine: str = "auto"):
    """A fresh ``PhiSNetCalculator`` for the molecule, and the seconds its model took to load.

    Shipped model: ``PhiSNetCalculator(name)`` (the load reads and checks the weights). Random
    weights: the shipped architecture built in float64 with seed 0, then handed over, and the
    calculator casts the network to ``dtype``; so a float32 and a float64 calculator of one
    molecule hold the same weights (rounded). Parameters left at their defaults are not passed,
    as a user writes it.
    """
    from ase_phisnet.calculator import PhiSNetCalculator
    from ase_phisnet.model import PhiSNetConfig, build_model

    spec = MOLECULES[name]
    kwargs = {k: v for k, v in dict(dtype=dtype, device=device, engine=engine).items() if v != PhiSNetCalculator.default_parameters[k]}
    with Timer(device) as t:
        if spec.model is not None:
            calc = PhiSNetCalculator(spec.model, **kwargs)
        else:
            torch.manual_seed(0)
            cfg = PhiSNetConfig.from_preset(RANDOM_MODEL["preset"], elements=sorted(set(int(z) for z in numbers)), **{k: v for k, v in RANDOM_MODEL.items() if k != "preset"})
            calc = PhiSNetCalculator(build_model(cfg, torch.float64, device), **kwargs)
    return calc, t.s


def engine_name(calc) -> str:
    """``"native"`` when the compiled engine evaluates the network (``calc.network``), else ``"torch"``."""
    return "native" if calc.network is not None else "torch"


def energy_forces(atoms: Atoms, positions, device: str = "cpu") -> float:
    """Seconds of one step at ``positions``: forces, then the energy of the same step."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights: "HOMO-LUMO gap collapsed" on every step
        with Timer(device) as t:
            atoms.positions = positions
            atoms.get_forces()
            atoms.get_potential_energy()
    return t.s


def time_phisnet(calc, frames: list[Atoms], device: str = "cpu") -> dict:
    """Cold first call on ``frames[0]`` (the warm-up, not counted), then one step on each other frame."""
    atoms = frames[0].copy()
    atoms.calc = calc
    cold_s = energy_forces(atoms, frames[0].positions, device)
    steps_s = [energy_forces(atoms, f.positions, device) for f in frames[1:]]
    return {"cold_first_call_s": cold_s, "step_s": steps_s}


def _native_parts(calc, frame: Atoms, device: str = "cpu") -> tuple[dict, np.ndarray, float]:
    """One step of ``PhiSNetCalculator._native_step`` (a batch of one molecule in
    ``_native_steps``) rebuilt from the functions it calls, each part timed:
    ``(seconds per part, forces in eV/Å, energy in eV)``."""
    from ase_phisnet.electronic.analytic import closed_shell_energy, nuclear_repulsion_and_gradient
    from ase_phisnet.electronic.properties import dipole_moment, mulliken_charges
    from ase_phisnet.units import BOHR, HARTREE

    model, network, basis = calc.model, calc.network, calc.model.basis
    core_baseline = model.config.core_baseline
    numbers = frame.get_atomic_numbers()
    R = frame.positions / BOHR
    distances = np.sqrt(((R[:, None] - R[None]) ** 2).sum(-1))  # the calculator has them from its input checks ("other")
    t = {p: Timer(device) for p in (*BREAKDOWN_PARTS, *EXTRA_PARTS)}
    with t["graph"]:
        graph = calc._native_graph([numbers], [R], [distances])
    with t["forward"]:
        outputs = dict(zip(network.output_names, network.forward_arrays(graph, np.concatenate([R]))))
        n, to_pyscf = basis.n_ao(numbers), basis.perm_to_pyscf(numbers)
        F, H_head = (outputs[h][0][np.ix_(to_pyscf, to_pyscf)].astype(np.float64) for h in ("fock", "hcore"))
    with Timer(device) as integrals_forward:
        integrals = calc._integrals(numbers)
        at = integrals.evaluate(R, derivative=True)
    with t["electronic"]:
        state = closed_shell_energy(F, at.overlap, H_head + at.core if core_baseline else H_head, integrals.n_occ)
        E_nn, dE_dR = nuclear_repulsion_and_gradient(integrals.numbers, R)
        correction = float(outputs["energy_correction"][0]) if "energy_correction" in outputs else 0.0  # a learned energy correction
        energy = E_nn + state.energy_electronic + model.atomic_energy(numbers) + correction
    with Timer(device) as integrals_backward:
        dE_dR += at.gradient(state.dE_dS, state.dE_dH if core_baseline else None)
    with t["backward"]:
        bars = {h: np.zeros_like(m) for h, m in outputs.items()}
        to_irreps = np.ix_(basis.perm_to_irreps(numbers), basis.perm_to_irreps(numbers))
        bars["fock"][0, :n, :n] = state.dE_dF[to_irreps]
        bars["hcore"][0, :n, :n] = state.dE_dH[to_irreps]
        if "energy_correction" in bars:
            bars["energy_correction"][0] = 1.0
        grad = dE_dR + network.backward_arrays([bars[h] for h in network.output_names], len(numbers))
    with t["properties"]:
        integrals.mol.set_geom_(R, unit="Bohr", symmetry=False)
        dipole_moment(integrals.mol, state.density_matrix)
        mulliken_charges(integrals.mol, state.density_matrix, at.overlap)
    t["integrals"].s = integrals_forward.s + integrals_backward.s
    return {p: timer.s for p, timer in t.items()}, -grad * HARTREE / BOHR, energy * HARTREE


def _torch_parts(calc, frame: Atoms, device: str = "cpu") -> tuple[dict, np.ndarray, float]:
    """One step of ``PhiSNetCalculator._torch_step`` rebuilt from its building blocks, each part
    timed: ``(seconds per part, forces in eV/Å, energy in eV)``.

    The network in the model's dtype, the electronic step in float64, as the calculator runs
    them. The parts are cut at detached leaves, so each backward runs alone.
    """
    from ase_phisnet.electronic import closed_shell_orbitals, nuclear_repulsion
    from ase_phisnet.electronic.properties import dipole_moment, mulliken_charges
    from ase_phisnet.units import BOHR, HARTREE

    model = calc.model
    numbers = frame.get_atomic_numbers()
    integrals = calc._integrals(numbers)  # the calculator's own PySCF Mole and integral objects
    param = next(model.parameters())
    n_ao = model.basis.n_ao(numbers)
    Z = torch.as_tensor(integrals.numbers, device=param.device)
    t = {p: Timer(device) for p in (*BREAKDOWN_PARTS, *EXTRA_PARTS)}
    R = torch.tensor(frame.positions / BOHR, dtype=torch.float64, device=param.device, requires_grad=True)
    with t["graph"]:
        graph = calc._graph(numbers, R.to(param.dtype), ())
    with t["forward"]:
        outputs = (calc.network or model)(graph)  # a predicted overlap runs the native engine through torch
        F_net, H_net = (model.basis.to_pyscf_order(outputs[h][0, :n_ao, :n_ao], numbers).to(torch.float64) for h in ("fock", "hcore"))
        E_corr = outputs["energy_correction"][0].to(torch.float64) if "energy_correction" in outputs else None  # a learned energy correction
    R_int = R.detach().requires_grad_(True)
    with Timer(device) as integrals_forward:
        S = integrals.overlap(R_int)
        h = integrals.core(R_int) if model.config.core_baseline else None
    F, H, S_leaf, R_nn = F_net.detach().requires_grad_(True), H_net.detach().requires_grad_(True), S.detach().requires_grad_(True), R.detach().requires_grad_(True)
    h_leaf = h.detach().requires_grad_(True) if h is not None else None
    with t["electronic"]:
        P, eps, C = closed_shell_orbitals(F, S_leaf, integrals.n_occ)
        H_total = H + h_leaf if h_leaf is not None else H
        E = nuclear_repulsion(Z, R_nn) + 0.5 * (P * (F + H_total)).sum((-1, -2)) + model.atomic_energy(numbers)
        leaves = [F, H, S_leaf, R_nn] + ([h_leaf] if h_leaf is not None else [])
        gF, gH, gS, gR_nn, *gh = torch.autograd.grad(E, leaves)
    with Timer(device) as integrals_backward:
        (gR_int,) = torch.autograd.grad([S] + ([h] if h is not None else []), R_int, [gS] + gh)
    with t["backward"]:
        heads, bars = [F_net, H_net], [gF, gH]
        if E_corr is not None:
            heads.append(E_corr)
            bars.append(torch.ones_like(E_corr))
        (gR_net,) = torch.autograd.grad(heads, R, bars)
    with t["properties"]:
        P_np, S_np = P.detach().cpu().double().numpy(), S.detach().cpu().double().numpy()
        integrals.mol.set_geom_(frame.positions / BOHR, unit="Bohr", symmetry=False)
        dipole_moment(integrals.mol, P_np)
        mulliken_charges(integrals.mol, P_np, S_np)
    t["integrals"].s = integrals_forward.s + integrals_backward.s
    forces = -(gR_nn + gR_int + gR_net).detach().cpu().double().numpy() * HARTREE / BOHR
    energy = float(E.detach()) + (float(E_corr.detach()) if E_corr is not None else 0.0)
    return {p: timer.s for p, timer in t.items()}, forces, energy * HARTREE


def step_breakdown(calc, frames: list[Atoms], device: str = "cpu", repeats: int = 3) -> dict:
    """Where one calculator step goes (ms, medians), by calling its parts one by one.

    ``frames[0]`` warms the hand-made path up (not counted); the other frames are done
    ``repeats`` times over, to damp a shared machine's noise. Each time: the full calculator
    step (as in :func:`time_phisnet`), then the same step rebuilt from the functions the
    calculator calls, with a timer around each part. On the native engine (``calc.network``,
    ``PhiSNetCalculator._native_step``, one molecule through ``_native_steps``):

    * ``graph``: the pair-list check and the kept graph bookkeeping (``calc._native_graph``);
    * ``forward``: ``network.forward_arrays`` (C++) and the reordering of F~ and H~core to
      PySCF's AO order;
    * ``integrals``: ``MolecularIntegrals.evaluate(R, derivative=True)`` (S and T + V_nuc with
      their derivative integrals, PySCF) and ``OneElectronIntegrals.gradient`` (their
      contraction with dE/dS and dE/dh);
    * ``electronic``: ``closed_shell_energy`` (``F C = S C eps``, P, E and its closed-form
      gradient matrices) and the nuclear repulsion with its gradient;
    * ``backward``: the reordering of dE/dF~ and dE/dH~core and ``network.backward_arrays`` (C++).

    On the torch engine (``PhiSNetCalculator._torch_step``) the same parts: ``calc._graph``, the
    torch model, the differentiable integrals and their backward, the torch eigensolver and
    energy with their backward, the network's backward; each backward runs alone, the parts
    being cut at detached leaves.

    Both: ``properties`` (dipole, ``int1e_r``, and Mulliken charges) is what a step costs more
    when they are asked for; an MD step that asks for forces does not compute them, so they are
    timed beside the step, not within it. ``other`` is the full step minus the five parts, of
    the same repeat (ASE, input checks, conversions). The rebuilt forces equal the calculator's
    (``max_force_difference_eV_per_A`` says by how much). Each figure is a median over the
    repeats, so the medians need not add up to the full step; ``fastest_ms`` gives the minima.
    Approximate: the parts run outside the calculator, on a shared machine.
    """
    native = calc.network is not None and calc.parameters.overlap == "exact"  # the test the calculator makes
    parts = _native_parts if native else _torch_parts
    atoms = frames[0].copy()
    atoms.calc = calc
    rows, force_diff, energy_diff = [], 0.0, 0.0
    for k, frame in enumerate([frames[0]] + list(frames[1:]) * repeats):
        full_s = energy_forces(atoms, frame.positions, device)
        times_s, forces, energy = parts(calc, frame, device)
        force_diff = max(force_diff, float(np.abs(forces - calc.results["forces"]).max()))
        energy_diff = max(energy_diff, abs(energy - calc.results["energy"]))
        if k == 0:
            continue  # the first frame warms the hand-made path up; not counted
        parts_s = {f"{p}_s": times_s[p] for p in BREAKDOWN_PARTS}
        rows.append({"full_step_s": full_s, **parts_s, "other_s": full_s - sum(parts_s.values()), **{f"{p}_s": times_s[p] for p in EXTRA_PARTS}})
    names = ("full_step", *BREAKDOWN_PARTS, "other", *EXTRA_PARTS)
    return {
        "engine": "native" if native else "torch",
        "frames": len(frames) - 1,
        "repeats": repeats,
        **{f"{p}_ms": median_ms([r[f"{p}_s"] for r in rows]) for p in names},
        "fastest_ms": {p: 1e3 * min(r[f"{p}_s"] for r in rows) for p in names if p != "other"},
        "max_force_difference_eV_per_A": force_diff,
        "max_energy_difference_eV": energy_diff,
        "per_frame": rows,
    }


def compare_float32(name: str, calc64, frames: list[Atoms], device: str = "cpu", engine: str = "auto") -> dict:
    """The float32 calculator (network in float32, electronic step in float64) against ``calc64``
    on the same frames: step times and the largest differences of forces and energies.

    A fresh ``PhiSNetCalculator(..., dtype="float32")`` of the same model (random weights: the
    same weights, rounded) and engine; each calculator first does an untimed step on
    ``frames[0]``, then both do each other frame in turn (float64, then float32), so that the
    machine's drift hits both alike.
    """
    calc32, load_s = make_calculator(name, frames[0].get_atomic_numbers(), "float32", device, engine)
    atoms64, atoms32 = frames[0].copy(), frames[0].copy()
    atoms64.calc, atoms32.calc = calc64, calc32
    energy_forces(atoms64, frames[0].positions, device)
    cold_s = energy_forces(atoms32, frames[0].positions, device)
    t64, t32, force_diff, energy_diff, largest_force = [], [], 0.0, 0.0, 0.0
    for frame in frames[1:]:
        t64.append(energy_forces(atoms64, frame.positions, device))
        t32.append(energy_forces(atoms32, frame.positions, device))
        force_diff = max(force_diff, float(np.abs(atoms32.get_forces() - atoms64.get_forces()).max()))
        largest_force = max(largest_force, float(np.abs(atoms64.get_forces()).max()))
        energy_diff = max(energy_diff, abs(atoms32.get_potential_energy() - atoms64.get_potential_energy()))
    median64, median32 = median_ms(t64), median_ms(t32)
    speedup = median64 / median32
    target = MOLECULES[name].float32_speedup
    judged = target is not None and device == "cpu" and torch.get_num_threads() == 1
    return {
        "engine": engine_name(calc32),
        "frames": len(t64),
        "float32_model_load_ms": 1e3 * load_s,
        "float32_cold_first_call_ms": 1e3 * cold_s,
        "float64_step_median_ms": median64,
        "float32_step_median_ms": median32,
        "float64_step_ms": [1e3 * s for s in t64],
        "float32_step_ms": [1e3 * s for s in t32],
        "speedup_float64_over_float32": speedup,
        "max_force_difference_eV_per_A": force_diff,
        "max_energy_difference_meV": 1e3 * energy_diff,
        "max_abs_force_float64_eV_per_A": largest_force,  # random weights: far from physical forces, and the float32 error scales with them
        "forces_within_tolerance": bool(force_diff <= FLOAT32_FORCE_TOLERANCE),
        "target_speedup": target,
        "force_tolerance_eV_per_A": FLOAT32_FORCE_TOLERANCE,
        "target_met": bool(speedup >= target and force_diff <= FLOAT32_FORCE_TOLERANCE) if judged and np.isfinite(speedup) else None,
    }


# ---------------------------------------------------------------------------- references
def pyscf_step(numbers, positions) -> float:
    """Seconds of a PBE/def2-SVP energy + analytic gradient (grid 3, conv_tol 1e-9, default guess)."""
    from pyscf import dft

    from ase_phisnet.molecule import build_mol

    with Timer() as t:
        mf = dft.RKS(build_mol(numbers, positions), xc="pbe")
        mf.grids.level = 3  # PySCF's default, stated
        mf.conv_tol = 1e-9
        mf.kernel()
        mf.nuc_grad_method().kernel()
    if not mf.converged:
        warnings.warn("a PySCF reference did not converge; its time is still counted", stacklevel=2)
    return t.s


def warm_up_pyscf() -> None:
    """Pay PySCF's one-time costs (libxc, grids, gradient modules) on H2, untimed."""
    pyscf_step([1, 1], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.74]])


def time_pyscf(frames: list[Atoms]) -> list[float]:
    return [pyscf_step(f.get_atomic_numbers(), f.positions) for f in frames]


def time_xtb(frames: list[Atoms]) -> list[float] | None:
    """GFN2-xTB steps (seconds) on ``frames[1:]`` after a warm-up on ``frames[0]``; None without tblite."""
    try:
        from tblite.ase import TBLite
    except ImportError:
        return None
    atoms = frames[0].copy()
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    energy_forces(atoms, frames[0].positions)
    return [energy_forces(atoms, f.positions) for f in frames[1:]]


# ---------------------------------------------------------------------------- one molecule
def benchmark_molecule(
    name: str,
    n_frames: int,
    pyscf_frames: int,
    dtype: str = "float64",
    device: str = "cpu",
    xtb: bool = True,
    breakdown_frames: int = 5,
    breakdown_repeats: int = 3,
    engine: str = "auto",
    float32: bool = False,
) -> dict:
    """Every number of one molecule: frames, PhiSNet, PySCF, xTB, the breakdown and, with
    ``float32``, the float32 calculator against this one (times in s and ms)."""
    frames, origin = load_frames(name, n_frames + 1)  # frame 0: the cold call and warm-up
    numbers = frames[0].get_atomic_numbers()
    calc, load_s = make_calculator(name, numbers, dtype, device, engine)
    ml = time_phisnet(calc, frames, device)
    n_ao = calc.model.basis.n_ao(numbers)
    breakdown = step_breakdown(calc, frames[: breakdown_frames + 1], device, breakdown_repeats) if breakdown_frames > 0 else None
    float32_comparison = compare_float32(name, calc, frames, device, engine) if float32 else None
    pyscf_s = time_pyscf(frames[1 : 1 + pyscf_frames])
    xtb_s = time_xtb(frames) if xtb else None
    step_median, step_mean = median_ms(ml["step_s"]), mean_ms(ml["step_s"])
    pyscf_mean = mean_ms(pyscf_s)
    xtb_median = median_ms(xtb_s) if xtb_s else float("nan")
    ratio = pyscf_mean / step_median
    spec = MOLECULES[name]
    return {
        "molecule": name,
        "formula": frames[0].get_chemical_formula(),
        "atoms": len(numbers),
        "aos": int(n_ao),
        "frames": origin,
        "model": spec.model or f"random weights: {RANDOM_MODEL}",
        "dtype": dtype,
        "device": device,
        "engine": engine_name(calc),
        "model_load_ms": 1e3 * load_s,
        "cold_first_call_ms": 1e3 * ml["cold_first_call_s"],
        "phisnet_frames": len(ml["step_s"]),
        "phisnet_step_median_ms": step_median,
        "phisnet_step_mean_ms": step_mean,
        "phisnet_step_ms": [1e3 * s for s in ml["step_s"]],
        "pyscf_frames": len(pyscf_s),
        "pyscf_mean_ms": pyscf_mean,
        "pyscf_ms": [1e3 * s for s in pyscf_s],
        "xtb_median_ms": xtb_median,
        "xtb_ms": [1e3 * s for s in xtb_s] if xtb_s else None,
        "ratio_pyscf_over_phisnet": ratio,
        "reach_fraction_of_1000x": ratio / REACH_RATIO,
        "phisnet_over_xtb": step_median / xtb_median if xtb_s else float("nan"),
        "target_ratio": spec.target_ratio,
        # the targets are for the default configuration: float64, on the CPU, one thread
        "target_met": bool(ratio >= spec.target_ratio) if spec.target_ratio and np.isfinite(ratio) and (dtype, device, torch.get_num_threads()) == ("float64", "cpu", 1) else None,
        "breakdown": breakdown,
        "float32_comparison": float32_comparison,
    }


# ---------------------------------------------------------------------------- output
def _num(x, fmt: str) -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, fmt)


def _times(x) -> str:
    """A ratio as ``"23x"`` (``"0.52x"`` below 10), or ``"n/a"``."""
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.0f}x" if x >= 10 else f"{x:.2g}x"


def results_table(rows: list[dict]) -> str:
    """The markdown table of the run (one row per molecule)."""
    head = (
        "| molecule | AOs | PhiSNet median (ms) | PhiSNet mean (ms) | cold first call (ms) | model load (ms) "
        "| PySCF (ms) | xTB (ms) | PySCF / PhiSNet | reach (of 1000x) | PhiSNet / xTB | target |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        verdict = {True: "met", False: "not met", None: "not judged"}[r["target_met"]]
        target = "reported" if r["target_ratio"] is None else f"{r['target_ratio']:.0f}x ({verdict})"
        lines.append(
            f"| {r['molecule']} | {r['aos']} | {_num(r['phisnet_step_median_ms'], '.1f')} | {_num(r['phisnet_step_mean_ms'], '.1f')} "
            f"| {_num(r['cold_first_call_ms'], '.0f')} | {_num(r['model_load_ms'], '.0f')} | {_num(r['pyscf_mean_ms'], ',.0f')} "
            f"| {_num(r['xtb_median_ms'], '.2f')} | {_times(r['ratio_pyscf_over_phisnet'])} | {_num(r['reach_fraction_of_1000x'], '.3f')} "
            f"| {_times(r['phisnet_over_xtb'])} | {target} |"
        )
    return "\n".join(lines)


def breakdown_table(rows: list[dict]) -> str:
    """Where one PhiSNet step goes, ms and share of the full step (approximate)."""
    labels = {
        "graph": "graph bookkeeping",
        "forward": "network forward + AO reorder",
        "backward": "AO reorder + network backward",
        "integrals": "integrals S, T+V_nuc + derivatives, contractions",
        "electronic": "electronic: eigensolver, E and gradients, E_nn",
        "other": "other (ASE, input checks)",
        "properties": "dipole + charges (when asked)",
    }
    order = ("forward", "backward", "integrals", "electronic", "graph", "other", *EXTRA_PARTS)
    head = "| molecule | engine | full step (ms) | " + " | ".join(labels[p] for p in order) + " | forces check (eV/Å) |"
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        b = r["breakdown"]
        if b is None:
            continue
        full = b["full_step_ms"]
        cells = [f"{b[f'{p}_ms']:.2f} ({100 * b[f'{p}_ms'] / full:.0f}%)" for p in order]
        lines.append(f"| {r['molecule']} | {b['engine']} | {full:.2f} | " + " | ".join(cells) + f" | {b['max_force_difference_eV_per_A']:.1e} |")
    return "\n".join(lines)


def float32_table(rows: list[dict]) -> str:
    """float32 against float64, one row per molecule (``--compare-float32``)."""
    head = (
        "| molecule | engine | frames | float64 median (ms) | float32 median (ms) | float64 / float32 "
        "| max abs(F32 - F64) (eV/Å) | max abs(F64) (eV/Å) | max abs(E32 - E64) (meV) | target |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        c = r["float32_comparison"]
        if c is None:
            continue
        verdict = {True: "met", False: "not met", None: "not judged"}[c["target_met"]]
        within = "within" if c["forces_within_tolerance"] else "outside"
        target = f"{within} {c['force_tolerance_eV_per_A']:.0e} eV/Å" if c["target_speedup"] is None else f"{c['target_speedup']:.1f}x, {c['force_tolerance_eV_per_A']:.0e} eV/Å ({verdict})"
        lines.append(
            f"| {r['molecule']} | {c['engine']} | {c['frames']} | {_num(c['float64_step_median_ms'], '.2f')} | {_num(c['float32_step_median_ms'], '.2f')} "
            f"| {_num(c['speedup_float64_over_float32'], '.2f')}x | {c['max_force_difference_eV_per_A']:.1e} "
            f"| {c['max_abs_force_float64_eV_per_A']:.3g} | {c['max_energy_difference_meV']:.2g} | {target} |"
        )
    return "\n".join(lines)


def float32_verdict(rows: list[dict]) -> str:
    """One line: the float32 target and whether it holds in this run."""
    judged = {r["molecule"]: r["float32_comparison"] for r in rows if r["float32_comparison"] and r["float32_comparison"]["target_speedup"] is not None}
    if not judged:
        return "Target: ethanol at least 1.5x faster in float32, forces within 1e-3 eV/Å of float64: not judged (no such molecule in this run)"
    parts = []
    for name, c in judged.items():
        holds = {True: "holds", False: "does not hold", None: "not judged (one CPU thread only)"}[c["target_met"]]
        parts.append(
            f"{name} at least {c['target_speedup']:.1f}x faster in float32, forces within {c['force_tolerance_eV_per_A']:.0e} eV/Å of float64: {holds} "
            f"({c['speedup_float64_over_float32']:.2f}x, {c['max_force_difference_eV_per_A']:.1e} eV/Å)"
        )
    return "Target: " + "; ".join(parts)


def _engines(rows: list[dict]) -> str:
    """The engine(s) that ran, in words."""
    words = {"native": "native (compiled C++ network, NumPy electronic step)", "torch": "torch (PyTorch model, autograd)"}
    return " and ".join(words[e] for e in sorted({r["engine"] for r in rows}))


def report(rows: list[dict], machine: dict, args) -> str:
    torch_threads, pyscf_threads = machine["torch_threads"], machine["pyscf_threads"]
    out = [
        f"{machine['date']}, commit {machine['commit'] or 'unknown'}{' (with uncommitted changes)' if machine['uncommitted_changes'] else ''}; "
        f"{machine['cpu']} ({machine['cpu_count']} CPUs); torch {machine['torch']}, PySCF {machine['pyscf']}, tblite {machine['tblite'] or 'not installed'}",
        f"PhiSNet: PhiSNetCalculator(model) on {args.device} in {args.dtype}, exact overlap, engine {_engines(rows)} (asked: {args.engine}), "
        f"{torch_threads} torch thread(s); "
        f"PySCF: RKS PBE/def2-SVP, grid 3, conv_tol 1e-9, E + analytic gradient, {pyscf_threads} thread(s); "
        f"xTB: GFN2-xTB (tblite), OMP_NUM_THREADS={machine['OMP_NUM_THREADS'] or 'unset'}",
        "",
        results_table(rows),
        "",
        "PhiSNet: one energy+forces step on each of the frames after a cold first call on another frame; "
        "PySCF: mean over its frames; xTB: median over PhiSNet's frames. Ratios: PySCF mean / PhiSNet median.",
    ]
    for r in rows:
        f = r["frames"]
        sampled = f" (sampling {f['sampling_s']:.0f} s)" if "sampling_s" in f else ""
        out.append(f"  {r['molecule']}: {r['phisnet_frames']} frames + 1 from {f['source']}{sampled}; PySCF on {r['pyscf_frames']}; model: {r['model']}")
    if any(r["breakdown"] for r in rows):
        b = next(r["breakdown"] for r in rows if r["breakdown"])
        out += [
            "",
            f"Where one PhiSNet step goes (approximate: the functions of the calculator's step called one by one, median of {b['frames']} frames x {b['repeats']}; "
            "integrals include their contractions with dE/dS and dE/dh, electronic its gradients; other = full step - the parts of the same repeat: "
            "ASE, input checks, conversions; dipole + charges: computed only when asked for (not in an MD step), timed beside the step, not in other; "
            "medians need not add up; forces check: max abs(rebuilt - calculator's forces)):",
            "",
            breakdown_table(rows),
        ]
    if any(r["float32_comparison"] for r in rows):
        out += [
            "",
            "float32 against float64 (the same model and engine; float32: network in float32, electronic step in float64; "
            "both calculators in turn on each of the same frames after one untimed step each; medians; speed-up: float64 median / float32 median; "
            "max abs(F64): the largest float64 force component, the scale of the float32 error (random weights give unphysical forces)):",
            "",
            float32_table(rows),
            "",
            float32_verdict(rows),
        ]
    return "\n".join(out)


# ---------------------------------------------------------------------------- main
def _finite(x):
    """``x`` with NaN and infinities as None (strict JSON) and NumPy scalars as Python numbers."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--molecules", nargs="+", default=["water", "ethanol"], choices=list(MOLECULES), help="default: water ethanol")
    p.add_argument("--frames", type=int, default=20, help="timed frames per molecule, each evaluated once (default 20; one more is the cold call)")
    p.add_argument("--pyscf-frames", type=int, help="PySCF frames per molecule (default: water 3, ethanol 2, malondialdehyde and uracil 1)")
    p.add_argument("--breakdown-frames", type=int, default=5, help="frames of the step breakdown (0: none)")
    p.add_argument("--breakdown-repeats", type=int, default=3, help="times each breakdown frame is done (default 3)")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"], help="the calculator's dtype, the network's precision (default float64, as a user gets it)")
    p.add_argument("--engine", default="auto", choices=["auto", "native", "torch"], help="what evaluates the network (default auto: what the calculator picks)")
    p.add_argument("--compare-float32", action="store_true", help="also run the float32 calculator on the same frames: speed-up and force differences")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch and PySCF threads (default 1)")
    p.add_argument("--no-xtb", action="store_true", help="skip GFN2-xTB")
    p.add_argument("--json", type=Path, help="write every number, with the machine, to this file")
    args = p.parse_args(argv)
    if args.frames < 1:
        p.error("--frames must be >= 1")
    if args.pyscf_frames is not None and not 0 <= args.pyscf_frames <= args.frames:
        p.error("--pyscf-frames must be between 0 and --frames")
    if args.compare_float32 and args.dtype != "float64":
        p.error("--compare-float32 compares float32 against float64: leave --dtype at float64")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    from pyscf import lib

    torch.set_num_threads(args.threads)
    lib.num_threads(args.threads)
    machine = machine_info()
    if any(MOLECULES[m].pyscf_frames for m in args.molecules) and args.pyscf_frames != 0:
        warm_up_pyscf()
    rows = []
    for name in args.molecules:
        n_pyscf = MOLECULES[name].pyscf_frames if args.pyscf_frames is None else args.pyscf_frames
        print(f"{name}: {args.frames} frames, {min(n_pyscf, args.frames)} PySCF ...", file=sys.stderr, flush=True)
        rows.append(
            benchmark_molecule(
                name, args.frames, min(n_pyscf, args.frames), args.dtype, args.device, not args.no_xtb,
                min(args.breakdown_frames, args.frames), args.breakdown_repeats, args.engine, args.compare_float32,
            )
        )  # fmt: skip
    print(report(rows, machine, args))
    result = {"machine": machine, "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "molecules": rows}
    if args.json:
        args.json.write_text(json.dumps(_finite(result), indent=1) + "\n")
        print(f"\nwrote {args.json}")
    return result


if __name__ == "__main__":
    main()
