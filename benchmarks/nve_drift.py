"""Total-energy conservation of NVE molecular dynamics on the learned potential energy surface.

Velocity Verlet (ASE) with PhiSNetCalculator in float64: a molecule (default water) at its
starting geometry (``ase.build.molecule`` or the GFN2-xTB minimum of
:mod:`ase_phisnet.data.molecules`) with 300 K Maxwell-Boltzmann velocities; for water,
``--start distorted`` starts from a strongly distorted geometry, about 0.5 eV above the minimum,
a much hotter molecule. The model is the shipped one trained on the molecule unless ``--model``
names another. Prints the drift of the total energy per ps (slope of a linear fit), its largest
excursion from the start, and the time per step.

    python benchmarks/nve_drift.py                     # 2 ps at 0.25 fs, 300 K, shipped water model
    python benchmarks/nve_drift.py --ps 0.5 --timestep 0.5 --start distorted
    python benchmarks/nve_drift.py --molecule ethanol --ps 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from ase import Atoms, units
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet
from tqdm.auto import tqdm


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--molecule", default="water", help="a name of phisnet data sample, or a geometry file (default water)")
    p.add_argument("--model", help="shipped name or model folder (default: the shipped model trained on the molecule)")
    p.add_argument("--ps", type=float, default=2.0, help="simulated time, ps")
    p.add_argument("--timestep", type=float, default=0.25, help="fs")
    p.add_argument("--temperature", type=float, default=300.0, help="initial velocities, K")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", choices=["equilibrium", "distorted"], default="equilibrium", help="start geometry")
    args = p.parse_args()

    from ase_phisnet import PhiSNetCalculator
    from ase_phisnet.data.molecules import get_molecule
    from ase_phisnet.model.io import shipped_model_for

    if args.start == "distorted":
        if args.molecule != "water":
            p.error("--start distorted is a water geometry; leave it out for other molecules")
        atoms = Atoms("OHH", positions=[[0.0, 0.0, 0.0], [0.0, 0.80, 0.62], [0.0, -0.70, 0.50]])
    else:
        atoms = get_molecule(args.molecule)
    args.model = args.model or shipped_model_for(atoms.numbers)
    atoms.calc = PhiSNetCalculator(args.model, dtype="float64")
    MaxwellBoltzmannDistribution(atoms, temperature_K=args.temperature, rng=np.random.default_rng(args.seed))
    Stationary(atoms)
    ZeroRotation(atoms)
    dyn = VelocityVerlet(atoms, timestep=args.timestep * units.fs)
    n_steps = int(round(args.ps * 1000 / args.timestep))
    times, totals = [], []
    bar = tqdm(total=n_steps, desc="NVE", unit="step")

    def record():
        times.append(dyn.get_time() / (1000 * units.fs))
        totals.append(atoms.get_total_energy())

    dyn.attach(record, interval=4)
    dyn.attach(lambda: bar.update(1), interval=1)
    start = time.perf_counter()
    dyn.run(n_steps)
    wall = time.perf_counter() - start
    bar.close()

    t, e = np.asarray(times), np.asarray(totals)
    slope = np.polyfit(t, e, 1)[0]
    print(f"\nNVE {atoms.get_chemical_formula()} ({args.start} start), {args.model}, float64: {n_steps} steps of {args.timestep} fs ({args.ps} ps), T0 {args.temperature} K")
    print(f"total-energy drift: {slope * 1e3:+.4f} meV/ps (linear fit)")
    print(f"largest |E_tot(t) - E_tot(0)|: {np.abs(e - e[0]).max() * 1e3:.4f} meV; spread (max - min): {np.ptp(e) * 1e3:.4f} meV")
    print(f"time per step: {wall / n_steps * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
