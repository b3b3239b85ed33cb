"""The shipped water model inside ASE's own machinery: optimizers, MD, vibrations, SumCalculator.

These run the calculator exactly as a user script would (README, "Calculator"), in float64.
"""

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.mixing import SumCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS, FIRE
from ase.vibrations import Vibrations

import ase_phisnet
from ase_phisnet import PhiSNetCalculator


@pytest.fixture(scope="module")
def model():
    model = ase_phisnet.load_model("water-pbe-def2svp")
    assert "hcore" in model.config.heads, "the shipped water model must give energies and forces"
    return model


def distorted_water():
    return Atoms("OHH", positions=[[0.0, 0.0, 0.0], [0.0, 0.80, 0.62], [0.0, -0.70, 0.50]])


@pytest.mark.parametrize("optimizer", [BFGS, FIRE], ids=["BFGS", "FIRE"])
def test_optimizers_reach_a_minimum(model, optimizer, tmp_path):
    atoms = distorted_water()
    atoms.calc = PhiSNetCalculator(model)
    start = atoms.get_potential_energy()
    opt = optimizer(atoms, logfile=str(tmp_path / "opt.log"))
    assert opt.run(fmax=0.01, steps=300)
    assert np.abs(atoms.get_forces()).max() < 0.01 * np.sqrt(3)
    assert atoms.get_potential_energy() < start
    # PBE/def2-SVP water: O-H 0.97 Å, H-O-H ~103°; a trained model lands close to it
    assert 0.94 < atoms.get_distance(0, 1) < 1.00 and 0.94 < atoms.get_distance(0, 2) < 1.00
    assert 98 < atoms.get_angle(1, 0, 2) < 108


def test_nve_conserves_energy(model):
    """Velocity Verlet at 0.25 fs, water at 300 K: the total energy stays within 1 meV over
    0.5 ps (the 2 ps run and its drift per ps are in benchmarks/nve_drift.py)."""
    atoms = molecule("H2O")
    atoms.calc = PhiSNetCalculator(model)
    rng = np.random.default_rng(0)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    dyn = VelocityVerlet(atoms, timestep=0.25 * units.fs)
    totals = []
    dyn.attach(lambda: totals.append(atoms.get_total_energy()), interval=10)
    dyn.run(2000)
    totals = np.asarray(totals)
    assert np.ptp(totals) < 1e-3, f"total energy spread {np.ptp(totals) * 1e3:.3f} meV"


def test_langevin_thermostats(model):
    atoms = distorted_water()
    atoms.calc = PhiSNetCalculator(model)
    dyn = Langevin(atoms, timestep=0.5 * units.fs, temperature_K=500, friction=0.02, rng=np.random.default_rng(1))
    temperatures = []
    dyn.attach(lambda: temperatures.append(atoms.get_temperature()), interval=5)
    dyn.run(200)
    assert np.all(np.isfinite(temperatures)) and max(temperatures) > 50
    assert np.all(np.isfinite(atoms.get_positions()))
    assert 0.8 < atoms.get_distance(0, 1) < 1.3  # still a water molecule


def test_vibrations_give_three_real_modes(model, tmp_path):
    atoms = distorted_water()
    atoms.calc = PhiSNetCalculator(model)
    BFGS(atoms, logfile=None).run(fmax=1e-4, steps=300)
    vib = Vibrations(atoms, name=str(tmp_path / "vib"), delta=0.005, nfree=4)
    vib.run()
    freqs = vib.get_frequencies()  # cm^-1, complex for imaginary modes
    real = np.sort(np.real(freqs[np.abs(np.imag(freqs)) < 1e-6]))
    modes = real[-3:]
    assert np.all(np.abs(freqs[:-3]) < 100)  # translations and rotations
    # PBE/def2-SVP water: bend ~1600, stretches ~3600-3750 cm^-1
    assert 1400 < modes[0] < 1800 and 3300 < modes[1] < modes[2] < 4000, modes


def test_sum_calculator_with_d3_dispersion(model):
    from dftd3.ase import DFTD3  # in the test extras


    atoms = distorted_water()
    phisnet = PhiSNetCalculator(model)
    d3 = DFTD3(method="PBE", damping="d3bj")
    atoms.calc = SumCalculator([phisnet, d3])
    total, forces = atoms.get_potential_energy(), atoms.get_forces()
    alone = atoms.copy()
    alone.calc = PhiSNetCalculator(model)
    disp = atoms.copy()
    disp.calc = DFTD3(method="PBE", damping="d3bj")
    assert abs(total - alone.get_potential_energy() - disp.get_potential_energy()) < 1e-9
    assert np.allclose(forces, alone.get_forces() + disp.get_forces(), atol=1e-9)
    assert disp.get_potential_energy() < 0  # dispersion binds
