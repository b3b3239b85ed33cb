"""The native engine against the torch model it replaces at inference.

The torch model is the reference: the engine's matrices and their positions gradient must equal
its numbers in float64 (to 1e-12 relative) for every element pair, batch and padding, the
calculator's energies, forces and orbitals must not depend on which of the two ran, and the
engine must actually be what runs by default (no silent fallback).
"""

import copy
import functools
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms

from ase_phisnet import PhiSNetCalculator
from ase_phisnet.model import PhiSNetConfig, build_model
from ase_phisnet.native import NativePhiSNet, native_available
from ase_phisnet.units import BOHR, HARTREE

WATER = [[0.0, 0.0, 0.12], [0.0, 0.76, -0.47], [0.0, -0.76, -0.47]]
# formaldimine-like H2C=NH plus a water, far enough apart to be two molecules' worth of pairs
CHNO = [6, 7, 1, 1, 1, 8, 1, 1]
CHNO_POS = [[0.0, 0.0, 0.0], [1.27, 0.0, 0.0], [-0.55, 0.93, 0.0], [-0.55, -0.93, 0.0], [1.8, 0.87, 0.1], [0.3, 3.0, 0.2], [1.1, 3.5, 0.1], [-0.4, 3.6, -0.2]]


def random_model(elements, dtype=torch.float64, energy_correction=False):
    """A model with every weight, reference block and radial decay away from its initial value
    (built once per elements and dtype: building takes seconds; each caller gets its own copy);
    with ``energy_correction``, a learned energy readout whose weights are random too."""
    return copy.deepcopy(_random_model(tuple(elements), dtype, energy_correction))


@functools.lru_cache(maxsize=None)
def _random_model(elements, dtype, energy_correction, seed=0, features=8):
    elements = list(elements)
    torch.manual_seed(seed)
    config = PhiSNetConfig.from_preset("small", elements=elements, features=features, heads=["fock", "hcore"], core_baseline=True, energy_correction=energy_correction)
    model = build_model(config, dtype=dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
        for head in model.heads.values():
            for z in elements:
                ref = getattr(head, f"reference_{z}")
                ref.copy_(torch.randn_like(ref))
        if energy_correction:  # an input normalisation away from the identity (the engine folds it in)
            model.energy_correction.mean.copy_(torch.randn_like(model.energy_correction.mean))
            model.energy_correction.std.copy_(0.5 + torch.rand_like(model.energy_correction.std))
    return model


def matrices_and_gradient(network, graph, cotangents):
    out = network(graph)
    (grad,) = torch.autograd.grad(sum((out[k] * cotangents[k]).sum() for k in out), graph.positions)
    return out, grad


def test_native_engine_is_built():
    assert native_available(), "the native engine is not built: `pip install -e .` compiles ase_phisnet/native/phisnet.cpp (needs g++)"


@pytest.mark.parametrize("elements,energy_correction", [([1, 8], False), ([1, 6, 7, 8], False), ([1, 6, 7, 8], True)])
def test_matrices_and_positions_gradient_equal_the_torch_model(elements, energy_correction):
    model = random_model(elements, energy_correction=energy_correction)
    if elements == [1, 8]:
        molecules = [([8, 1, 1], WATER), ([1, 8, 1, 8, 1, 1], WATER + [[2.5, 0.3, 0.2], [3.1, 0.9, -0.3], [2.9, -0.6, 0.1]])]
    else:
        molecules = [(CHNO, CHNO_POS), ([8, 1, 1], WATER)]  # a batch of two, the second padded
    numbers = [z for z, _ in molecules]
    positions = [torch.tensor(np.asarray(p) / BOHR, dtype=torch.float64, requires_grad=True) for _, p in molecules]
    graph = model.graph(numbers, positions)
    graph.positions.retain_grad()
    generator = torch.Generator().manual_seed(1)
    ref = model(graph)
    cotangents = {k: torch.randn(v.shape, generator=generator, dtype=v.dtype) for k, v in ref.items()}
    ref, ref_grad = matrices_and_gradient(model, graph, cotangents)
    native = NativePhiSNet(model)
    out, grad = matrices_and_gradient(native, graph, cotangents)
    assert native.calls == 1
    assert set(out) == set(ref) == {"fock", "hcore", *(["energy_correction"] if energy_correction else [])}
    for k in ref:
        assert out[k].shape == ref[k].shape and out[k].dtype == torch.float64
        assert torch.allclose(out[k], ref[k], rtol=0, atol=1e-12 * float(ref[k].abs().max())), k
        if k != "energy_correction":  # padding of the smaller molecule stays exactly zero
            n_second = model.basis.n_ao(numbers[1])
            assert torch.all(out[k][1, n_second:, :] == 0) and torch.all(out[k][1, :, n_second:] == 0)
    if energy_correction:  # a real share of the gradient comes through the readout
        assert float(ref["energy_correction"].abs().min()) > 1e-5
    assert torch.allclose(grad, ref_grad, rtol=0, atol=1e-12 * float(ref_grad.abs().max()))
    # a negative control: a changed weight changes the numbers, and the engine follows it
    with torch.no_grad():
        model.heads["fock"].off_linear[f"{elements[0]}-{elements[-1]}"].weight.mul_(1.5)
    changed = native(graph)["fock"]
    assert not torch.allclose(changed, ref["fock"], rtol=0, atol=1e-6)
    assert torch.allclose(changed, model(graph)["fock"], rtol=0, atol=1e-12 * float(ref["fock"].abs().max()))


def test_channel_counts_without_compiled_kernels_take_the_plain_loops():
    """12 channels: not one of the compiled-in counts (8, 16, 32, 64), so the generic loops run."""
    torch.manual_seed(3)
    model = build_model(PhiSNetConfig.from_preset("small", elements=[1, 8], features=12, heads=["fock", "hcore"], core_baseline=True))
    R = torch.tensor(np.asarray(WATER) / BOHR, requires_grad=True)
    graph = model.graph([[8, 1, 1]], [R])
    cotangents = {k: torch.randn(v.shape, generator=torch.Generator().manual_seed(2), dtype=v.dtype) for k, v in model(graph).items()}
    ref, ref_grad = matrices_and_gradient(model, graph, cotangents)
    out, grad = matrices_and_gradient(NativePhiSNet(model), graph, cotangents)
    for k in ref:
        assert torch.allclose(out[k], ref[k], rtol=0, atol=1e-12 * float(ref[k].abs().max())), k
    assert torch.allclose(grad, ref_grad, rtol=0, atol=1e-12 * float(ref_grad.abs().max()))


def test_float32_engine_follows_the_float32_model():
    model = random_model([1, 8], dtype=torch.float32)
    R = torch.tensor(np.asarray(WATER) / BOHR, dtype=torch.float32, requires_grad=True)
    graph = model.graph([[8, 1, 1]], [R])
    cotangents = {k: torch.ones_like(v) for k, v in model(graph).items()}
    ref, ref_grad = matrices_and_gradient(model, graph, cotangents)
    out, grad = matrices_and_gradient(NativePhiSNet(model), graph, cotangents)
    for k in ref:
        assert out[k].dtype == torch.float32
        assert torch.allclose(out[k], ref[k], rtol=0, atol=2e-6 * float(ref[k].abs().max()))
    assert torch.allclose(grad, ref_grad, rtol=0, atol=2e-5 * float(ref_grad.abs().max()))


def test_a_backward_after_another_forward_redoes_its_own():
    model = random_model([1, 8])
    native = NativePhiSNet(model)
    R1 = torch.tensor(np.asarray(WATER) / BOHR, requires_grad=True)
    R2 = (R1.detach() + 0.05).requires_grad_(True)
    g1, g2 = model.graph([[8, 1, 1]], [R1]), model.graph([[8, 1, 1]], [R2])
    out1 = native(g1)
    native(g2)  # the engine now holds the second geometry
    (grad,) = torch.autograd.grad(out1["fock"].sum(), R1)
    (ref,) = torch.autograd.grad(model(g1)["fock"].sum(), R1)
    assert torch.allclose(grad, ref, rtol=0, atol=1e-12 * float(ref.abs().max()))


def test_second_derivatives_are_refused():
    model = random_model([1, 8])
    R = torch.tensor(np.asarray(WATER) / BOHR, requires_grad=True)
    out = NativePhiSNet(model)(model.graph([[8, 1, 1]], [R]))
    with pytest.raises(RuntimeError, match="cannot differentiate twice"):
        torch.autograd.grad(out["fock"].sum(), R, create_graph=True)


def frames():
    """Water moved about, and bent so that one O-H bond lies exactly along +z and then -z."""
    rng = np.random.default_rng(3)
    out = [np.asarray(WATER) + 0.05 * rng.standard_normal((3, 3)) for _ in range(3)]
    for sign in (1.0, -1.0):
        out.append(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, sign * 0.97], [0.93, 0.0, -sign * 0.25]]))
    return out


@pytest.fixture(scope="module")
def water_model():
    from ase_phisnet import load_model

    return load_model("water-pbe-def2svp")


def test_calculator_results_do_not_depend_on_the_engine(water_model):
    native, plain = PhiSNetCalculator(water_model, engine="native"), PhiSNetCalculator(water_model, engine="torch")
    assert isinstance(native.network, NativePhiSNet) and plain.network is None
    assert PhiSNetCalculator(water_model).network is not None  # the default runs the engine
    for pos in frames():
        results = []
        for calc in (native, plain):
            atoms = Atoms("OH2", positions=pos)
            atoms.calc = calc
            atoms.get_forces()
            atoms.get_dipole_moment()  # from the same step's density
            results.append(dict(calc.results))
        a, b = results
        for key in ("energy", "forces", "hamiltonian", "density_matrix", "mo_energy", "dipole", "charges"):
            scale = max(np.abs(b[key]).max(), 1.0)
            assert np.abs(np.asarray(a[key]) - b[key]).max() <= 1e-10 * scale, key
    assert native.network.calls == len(frames())


def test_engine_parameter_is_checked(water_model):
    from ase_phisnet.errors import InputError

    with pytest.raises(InputError, match="engine must be one of 'auto', 'native', 'torch'"):
        PhiSNetCalculator(water_model, engine="fortran")
    calc = PhiSNetCalculator(water_model, engine="torch")
    assert calc.network is None
    calc.set(engine="native")
    assert isinstance(calc.network, NativePhiSNet)


def test_without_the_engine_the_calculator_runs_on_torch_with_one_warning(monkeypatch, water_model):
    """Where the extension did not build: engine='auto' warns once and runs the torch model,
    engine='native' is refused naming the reason."""
    from ase_phisnet import calculator
    from ase_phisnet.errors import InputError
    from ase_phisnet.native import NativeUnavailable

    def missing(*args, **kwargs):
        raise NativeUnavailable("the native engine is not built (test)")

    monkeypatch.setattr(calculator, "NativePhiSNet", missing)
    monkeypatch.setattr(calculator, "_WARNED", set())
    with pytest.warns(UserWarning, match="not built .* runs the network on torch"):
        calc = PhiSNetCalculator(water_model)
    assert calc.network is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second calculator does not warn again
        again = PhiSNetCalculator(water_model)
    atoms = Atoms("OH2", positions=WATER)
    atoms.calc = again
    assert np.isfinite(atoms.get_potential_energy())
    with pytest.raises(InputError, match="engine='native': the native engine is not built"):
        PhiSNetCalculator(water_model, engine="native")


def test_energy_correction_enters_energy_and_forces_alike_on_both_engines():
    """A model with a learned energy correction: the engine and the torch model give the same
    energy, forces and Hamiltonian-only energy; the forces are minus the gradient of the total
    (central differences), and the correction is what separates the two energies."""
    model = random_model([1, 8], energy_correction=True)
    native, plain = PhiSNetCalculator(model, engine="native"), PhiSNetCalculator(model, engine="torch")
    assert isinstance(native.network, NativePhiSNet)
    pos = frames()[0]
    results = []
    for calc in (native, plain):
        atoms = Atoms("OH2", positions=pos)
        atoms.calc = calc
        atoms.get_forces()
        results.append(dict(calc.results))
    a, b = results
    for key in ("energy", "hamiltonian_energy", "forces"):
        scale = max(np.abs(b[key]).max(), 1.0)
        assert np.abs(np.asarray(a[key]) - b[key]).max() <= 1e-10 * scale, key
    graph = model.graph([[8, 1, 1]], [torch.tensor(pos / BOHR)])
    with torch.no_grad():
        correction = float(model(graph)["energy_correction"][0]) * HARTREE
    assert abs(correction) > 1e-4
    assert abs(a["energy"] - a["hamiltonian_energy"] - correction) < 1e-8
    h, atoms = 1e-4, Atoms("OH2", positions=pos)
    atoms.calc = native
    for atom, axis in ((0, 2), (1, 1)):
        shifted = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[atom, axis] += sign * h
            moved.calc = native
            shifted.append(moved.get_potential_energy())
        assert abs(-(shifted[0] - shifted[1]) / (2 * h) - a["forces"][atom, axis]) < 1e-5 * max(1.0, abs(a["forces"][atom, axis]))
