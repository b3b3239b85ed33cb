"""Geometry optimization on the learned surface, compared with the PySCF reference minimum.

:func:`compare_minima` runs ASE's BFGS twice from the same start, once with
:class:`~ase_phisnet.calculator.PhiSNetCalculator` and once with the reference DFT
(:class:`~ase_phisnet.reference.PySCFCalculator`), and compares the two minima: bond lengths,
bond angles and the RMSD after optimal superposition (Kabsch), all in Å and degrees.
"""

from __future__ import annotations

import numpy as np
from ase.data import covalent_radii
from ase.io import write
from ase.optimize import BFGS

from .errors import ConvergenceError


def bonds(atoms, scale: float = 1.25) -> list[tuple[int, int]]:
    """Atom pairs closer than ``scale`` x the sum of their covalent radii."""
    d = atoms.get_all_distances()
    r = covalent_radii[atoms.get_atomic_numbers()]
    return [(i, j) for i in range(len(atoms)) for j in range(i + 1, len(atoms)) if d[i, j] < scale * (r[i] + r[j])]


def bond_angles(atoms, pairs) -> list[tuple[int, int, int]]:
    """Triples (i, centre, k) of two bonds sharing an atom."""
    out = []
    for c in range(len(atoms)):
        partners = sorted({j for i, j in pairs if i == c} | {i for i, j in pairs if j == c})
        out += [(a, c, b) for ai, a in enumerate(partners) for b in partners[ai + 1 :]]
    return out


def kabsch_rmsd(a: np.ndarray, b: np.ndarray) -> float:
    """RMSD (Å) of two (n, 3) position sets after optimal translation and rotation."""
    a, b = a - a.mean(0), b - b.mean(0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1, 1, d]) @ vt
    return float(np.sqrt(((a @ rot - b) ** 2).sum(1).mean()))


def optimize(atoms, calc, fmax: float, logfile=None, trajectory=None, steps: int = 500):
    """A BFGS-optimized copy of ``atoms`` with ``calc``; raises if not converged in ``steps``."""
    atoms = atoms.copy()
    atoms.calc = calc
    if not BFGS(atoms, logfile=logfile, trajectory=trajectory).run(fmax=fmax, steps=steps):
        raise ConvergenceError(f"BFGS did not reach fmax {fmax} eV/Å in {steps} steps")
    return atoms


def compare_minima(start, model="water-pbe-def2svp", fmax: float = 0.01, output=None) -> dict:
    """Optimize ``start`` with the model and with PySCF; compare the minima.

    Returns bond lengths and angles of both, their differences, and the Kabsch RMSD. With
    ``output`` (a folder), writes both minima (``minimum_phisnet.xyz``, ``minimum_pyscf.xyz``),
    BFGS logs and trajectories.
    """
    from pathlib import Path

    from .calculator import PhiSNetCalculator
    from .reference import reference_calculator

    out = Path(output) if output else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    calc_model = model if isinstance(model, PhiSNetCalculator) else PhiSNetCalculator(model)
    minima = {}
    for name, calc in (("phisnet", calc_model), ("pyscf", reference_calculator(calc_model.model))):
        kw = dict(logfile=str(out / f"bfgs_{name}.log"), trajectory=str(out / f"bfgs_{name}.traj")) if out else {}
        minima[name] = optimize(start, calc, fmax, **kw)
        if out:
            write(out / f"minimum_{name}.xyz", minima[name])
    ref = minima["pyscf"]
    pairs, triples = bonds(ref), bond_angles(ref, bonds(ref))
    rows = {"bonds": [], "angles": []}
    for i, j in pairs:
        a, b = minima["phisnet"].get_distance(i, j), ref.get_distance(i, j)
        rows["bonds"].append({"atoms": [i, j], "phisnet_A": a, "pyscf_A": b, "diff_A": a - b})
    for i, c, k in triples:
        a, b = minima["phisnet"].get_angle(i, c, k), ref.get_angle(i, c, k)
        rows["angles"].append({"atoms": [i, c, k], "phisnet_deg": a, "pyscf_deg": b, "diff_deg": a - b})
    rows["rmsd_A"] = kabsch_rmsd(minima["phisnet"].positions, ref.positions)
    rows["max_bond_error_A"] = max((abs(r["diff_A"]) for r in rows["bonds"]), default=0.0)
    rows["max_angle_error_deg"] = max((abs(r["diff_deg"]) for r in rows["angles"]), default=0.0)
    rows["symbols"] = ref.get_chemical_symbols()
    return rows
