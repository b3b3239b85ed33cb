"""PhiSNetCalculator: ASE results, forces against finite differences, PySCF hand-off, bad input."""

import json
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.calculator import InputError as AseInputError
from ase.calculators.calculator import PropertyNotImplementedError

from ase_phisnet.calculator import PhiSNetCalculator
from ase_phisnet.errors import InputError
from ase_phisnet.model import PhiSNetConfig, build_model
from ase_phisnet.training.data import load_frames, pair_distance_range
from ase_phisnet.units import HARTREE

from .conftest import WATER_H5, random_energy_model


@pytest.fixture(scope="module")
def energy_model():
    """A water model with F~ and H~core heads, random weights on data-fitted references."""
    return random_energy_model(WATER_H5)


def water():
    frames, _ = load_frames(WATER_H5)
    return Atoms(numbers=frames[5]["numbers"], positions=frames[5]["positions"])


def test_results_units_and_conventions(energy_model):
    atoms = water()
    atoms.calc = PhiSNetCalculator(energy_model)
    e = atoms.get_potential_energy()
    assert np.isfinite(e) and atoms.get_forces().shape == (3, 3)
    calc = atoms.calc
    r = calc.results
    assert r["hamiltonian"].shape == r["overlap"].shape == r["density_matrix"].shape == (24, 24)
    # P is idempotent in the S metric and holds 10 electrons
    assert abs(np.trace(r["density_matrix"] @ r["overlap"]) - 10) < 1e-10
    assert np.allclose(calc.get_eigenvalues(), r["mo_energy"] * HARTREE)
    assert calc.get_occupation_numbers().sum() == 10 and calc.get_number_of_spins() == 1
    homo, lumo = calc.get_homo_lumo()
    assert abs((lumo - homo) - r["homo_lumo_gap"]) < 1e-12
    assert abs(atoms.get_charges().sum()) < 1e-10 and atoms.get_dipole_moment().shape == (3,)
    assert json.loads(json.dumps(calc.todict()))["model"] == "<PhiSNet object>"  # what ASE writes into trajectories


def finite_difference_force(model, atoms, atom: int, axis: int, h: float = 1e-3) -> float:
    """-dE/dx of one coordinate (eV/Å) by the five-point central stencil, step ``h`` Å, each
    displaced geometry on a fresh calculator."""
    e = {}
    for k in (-2, -1, 1, 2):
        shifted = atoms.copy()
        shifted.positions[atom, axis] += k * h
        shifted.calc = PhiSNetCalculator(model)
        e[k] = shifted.get_potential_energy()
    return -(8 * (e[1] - e[-1]) - (e[2] - e[-2])) / (12 * h)


def test_forces_are_minus_the_energy_gradient(energy_model):
    atoms = water()
    atoms.calc = PhiSNetCalculator(energy_model)
    forces = atoms.get_forces()
    for atom, axis in [(0, 0), (1, 1), (2, 2), (0, 2)]:
        assert abs(forces[atom, axis] - finite_difference_force(energy_model, atoms, atom, axis)) < 1e-6  # eV/Å


def test_pyscf_hand_off(energy_model):
    atoms = water()
    calc = PhiSNetCalculator(energy_model)
    atoms.calc = calc
    dm0 = calc.initial_guess(atoms)
    mf = calc.to_pyscf()
    assert np.allclose(mf.make_rdm1(), dm0, atol=1e-10)
    assert mf.xc == "pbe" and mf.mol.nao == 24


def test_fock_only_model_refuses_energy_but_gives_orbitals():
    torch.manual_seed(0)
    model = build_model(PhiSNetConfig.from_preset("small", elements=[1, 8], features=4), torch.float64)
    atoms = water()
    atoms.calc = PhiSNetCalculator(model)
    with pytest.raises(PropertyNotImplementedError, match="no H~core head"):
        atoms.get_potential_energy()
    assert atoms.get_dipole_moment().shape == (3,)


def test_bad_input_is_refused_with_reasons(energy_model):
    calc = PhiSNetCalculator(energy_model)
    for atoms, message in [
        (molecule("CH4"), "element\\(s\\) C not supported.*covers H, O; no shipped model was trained on CH4"),
        (Atoms("OHH", positions=[[0, 0, 0], [0, 0, 0.3], [0, 0.8, -0.5]]), "0.300 Å apart"),
        (Atoms("OHH", positions=[[0, 0, 0], [0, 0, np.nan], [0, 0.8, -0.5]]), "NaN"),
        (Atoms("OHH", positions=[[0, 0, 0], [0, 0, 1.0], [0, 0.8, -0.5]], cell=[5, 5, 5], pbc=True), "periodic"),
    ]:
        atoms.calc = calc
        with pytest.raises(InputError, match=message) as refused:
            atoms.get_potential_energy()
        assert isinstance(refused.value, AseInputError) and isinstance(refused.value, ValueError)
    with pytest.raises(ValueError, match="closed-shell only"):
        PhiSNetCalculator(energy_model, multiplicity=3)
    with pytest.raises(ValueError, match="charge 1 asked for.*charge 0"):
        PhiSNetCalculator(energy_model, charge=1)
    with pytest.raises(ValueError, match="dtype"):
        PhiSNetCalculator(energy_model, dtype="float16")


def test_parameters_follow_ases_contract():
    calc = PhiSNetCalculator()  # every parameter at its default: the shipped water model, float64
    assert calc.parameters == calc.default_parameters and next(calc.model.parameters()).dtype == torch.float64
    atoms = water()
    atoms.calc = calc
    e64 = atoms.get_potential_energy()
    assert calc.set(dtype="float32") == {"dtype": "float32"}
    assert next(calc.model.parameters()).dtype == torch.float32 and calc.results == {}  # reloaded, results discarded
    e32 = atoms.get_potential_energy()
    assert e32 != e64 and abs(e32 - e64) < 1e-2
    assert calc.set(dtype="float32") == {}  # no change, nothing reloaded
    with pytest.raises(InputError, match="unknown parameter.*'xc'.*takes"):
        calc.set(xc="pbe")
    with pytest.raises(InputError, match="charge 1 asked for"):
        calc.set(charge=1)
    assert PhiSNetCalculator(model="water-pbe-def2svp", dtype="float32").parameters["dtype"] == "float32"


def test_check_state_answers_as_ase(energy_model):
    """The shortcut for an unchanged system gives ASE's answer, and a change below or above
    ASE's tolerance, or of another property, is judged by ASE's own comparison."""
    from ase.calculators.calculator import compare_atoms

    calc = PhiSNetCalculator(energy_model)
    atoms = water()
    atoms.calc = calc
    atoms.get_forces()
    variants = {"same": atoms.copy()}
    for name, delta in (("below tolerance", 1e-16), ("moved", 1e-6)):
        moved = atoms.copy()
        moved.positions[1, 2] += delta
        variants[name] = moved
    variants["charges set"] = atoms.copy()
    variants["charges set"].set_initial_charges([0.1, 0.0, 0.0])
    variants["cell"] = atoms.copy()
    variants["cell"].cell = [10.0, 10.0, 10.0]
    for name, other in variants.items():
        assert calc.check_state(other) == compare_atoms(calc.atoms, other), name
    assert calc.check_state(variants["same"]) == [] and calc.check_state(variants["moved"]) == ["positions"]


def test_geometry_outside_the_training_range_warns(energy_model):
    frames, _ = load_frames(WATER_H5)
    energy_model.metadata["training_range"] = {"pair_distance_A": pair_distance_range([f["numbers"] for f in frames[:50]], [f["positions"] for f in frames[:50]])}
    shortest_oh = energy_model.metadata["training_range"]["pair_distance_A"]["1-8"][0]
    calc = PhiSNetCalculator(energy_model)
    inside = water()
    inside.calc = calc
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inside.get_potential_energy()
    squeezed = Atoms("OHH", positions=[[0, 0, 0], [0, 0, 0.9 * shortest_oh], [0, 0.8, -0.5]])
    squeezed.calc = calc
    try:
        with pytest.warns(UserWarning, match="O-H\\) are .* shorter than any such pair in training"):
            squeezed.get_potential_energy()
    finally:
        del energy_model.metadata["training_range"]


def test_energy_is_invariant_and_forces_rotate_with_the_molecule(energy_model):
    from ase_phisnet.basis import random_rotation

    atoms = water()
    atoms.calc = PhiSNetCalculator(energy_model)
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    for seed in range(3):
        R = random_rotation(seed)
        turned = atoms.copy()
        turned.positions = atoms.positions @ R.T + np.array([0.3, -1.2, 2.0])
        turned.calc = PhiSNetCalculator(energy_model)
        assert abs(turned.get_potential_energy() - energy) < 1e-9  # eV
        assert np.abs(turned.get_forces() - forces @ R.T).max() < 1e-8  # eV/Å


def test_a_reused_calculator_matches_a_fresh_one_as_pairs_leave_and_reenter_the_cutoff(energy_model):
    """The calculator keeps its graph between steps while the pairs within the cutoff stay the
    same, and rebuilds it when they change: every step matches a fresh calculator."""
    atoms = water()
    calc = PhiSNetCalculator(energy_model)
    atoms.calc = calc
    start = atoms.positions.copy()
    far = start.copy()
    far[2] += [9.0, 0.0, 0.0]  # one H 9 Å (17 Bohr) from the others: beyond the 15 Bohr cutoff
    pairs = []
    for positions in (start, start + 0.01, far, start - 0.01):
        atoms.positions = positions
        fresh = atoms.copy()
        fresh.calc = PhiSNetCalculator(energy_model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the stretched geometry warns (training range)
            assert abs(atoms.get_potential_energy() - fresh.get_potential_energy()) < 1e-10
            assert np.abs(atoms.get_forces() - fresh.get_forces()).max() < 1e-10
        pairs.append(calc._graph_cache[1].src.numel())
    assert pairs == [6, 6, 2, 6]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_bond_exactly_along_z(energy_model, sign):
    """A bond along +z or -z (where an edge frame built from the bond vector is singular):
    forces match central finite differences and the energy is invariant under rotation."""
    from ase_phisnet.basis import random_rotation

    atoms = Atoms("OHH", positions=[[0.1, -0.2, 0.3], [0.1, -0.2, 0.3 + sign * 0.97], [0.1, 0.74, 0.3 - sign * 0.25]])
    atoms.calc = PhiSNetCalculator(energy_model)
    forces = atoms.get_forces()
    for atom, axis in [(1, 0), (1, 1), (1, 2), (0, 2)]:
        assert abs(forces[atom, axis] - finite_difference_force(energy_model, atoms, atom, axis)) < 1e-6  # eV/Å
    turned = atoms.copy()
    turned.positions = atoms.positions @ random_rotation(5).T
    turned.calc = PhiSNetCalculator(energy_model)
    assert abs(turned.get_potential_energy() - atoms.get_potential_energy()) < 1e-9


def test_results_do_not_depend_on_the_number_of_threads(energy_model):
    atoms = water()
    results = {}
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            atoms.calc = PhiSNetCalculator(energy_model)
            results[threads] = atoms.get_potential_energy(), atoms.get_forces(), atoms.calc.results["hamiltonian"]
    finally:
        torch.set_num_threads(before)
    for a, b in zip(results[1], results[2]):
        assert np.abs(np.asarray(a) - np.asarray(b)).max() <= 1e-10 * np.abs(np.asarray(a)).max()
