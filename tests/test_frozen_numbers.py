"""The shipped models' numbers do not move: energies, forces, F~ and H~core of the Hamiltonian
models and the density model's coefficients on 50 test frames each, against the values frozen in
``references/frozen_shipped.npz`` (written by ``references/freeze_shipped.py``).

Every quantity must agree to ``1e-10 * max |value|``. When a model is shipped anew under an old
name, its frozen weights move to ``references/frozen_models/NAME`` and this check keeps reading
them there (the weights' SHA-256 in the file says which weights the numbers belong to).
"""

import hashlib
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

REFERENCES = Path(__file__).resolve().parent / "references"
FROZEN = np.load(REFERENCES / "frozen_shipped.npz")
RTOL = 1e-10

pytestmark = pytest.mark.fast


def frozen_model_dir(name: str) -> Path:
    """The folder of the weights the frozen numbers were computed with."""
    from ase_phisnet.model.io import resolve_model_dir

    want = str(FROZEN[f"{name}/weights_sha256"])
    for folder in (resolve_model_dir(name), REFERENCES / "frozen_models" / name):
        weights = folder / "model.safetensors"
        if weights.exists() and hashlib.sha256(weights.read_bytes()).hexdigest() == want:
            return folder
    pytest.fail(f"no weights of {name} with SHA-256 {want[:12]}…: keep the frozen weights in references/frozen_models/{name}")


def assert_frozen(name: str, key: str, value) -> None:
    ref = FROZEN[f"{name}/{key}"]
    err = np.abs(np.asarray(value) - ref).max()
    assert err <= RTOL * np.abs(ref).max(), f"{name} {key}: max |difference| {err:.3e} against {RTOL * np.abs(ref).max():.3e} allowed"


def native_matrices(native, model, numbers, positions_A) -> dict:
    """F~ and H~core (PySCF order) from the native engine, as ``model.predict`` gives them."""
    from ase_phisnet.units import BOHR

    outputs = native(model.graph([numbers], [positions_A / BOHR]))
    return {k: model.basis.to_pyscf_order(v[0].numpy(), numbers) for k, v in outputs.items() if k in model.heads}  # not the energy correction


@pytest.mark.parametrize("engine", ["torch", "native"])
@pytest.mark.parametrize("name", ["water-pbe-def2svp", "water-ccsdt-def2svp"])
def test_hamiltonian_model_numbers_are_frozen(name, engine):
    from ase_phisnet import PhiSNetCalculator, load_model
    from ase_phisnet.native import NativePhiSNet

    folder = frozen_model_dir(name)
    model = load_model(folder)
    calc = PhiSNetCalculator(model=folder, engine=engine)
    assert (calc.network is None) == (engine == "torch")
    native = NativePhiSNet(model) if engine == "native" else None
    numbers = FROZEN[f"{name}/numbers"]
    energy, forces, fock, hcore = [], [], [], []
    for pos in FROZEN[f"{name}/positions"]:
        atoms = Atoms(numbers=numbers, positions=pos)
        atoms.calc = calc
        forces.append(atoms.get_forces())  # one step: the forces, and the energy with them
        energy.append(atoms.get_potential_energy())
        matrices = model.predict(numbers, pos) if native is None else native_matrices(native, model, numbers, pos)
        fock.append(matrices["fock"])
        hcore.append(matrices["hcore"])
    if native is not None:  # the engine ran: one forward per frame in the calculator, one here
        assert calc.network.calls == native.calls == len(energy)
        assert np.abs(calc.results["hamiltonian"] - fock[-1]).max() == 0.0
    for key, value in dict(energy=energy, forces=forces, fock=fock, hcore=hcore).items():
        assert_frozen(name, key, value)


def test_density_model_numbers_are_frozen():
    from ase_phisnet.density.model import load_density_model

    model = load_density_model(frozen_model_dir("water-density-etb"))
    numbers = FROZEN["water-density-etb/numbers"]
    coefficients = [model.predict(numbers, pos) for pos in FROZEN["water-density-etb/positions"]]
    assert_frozen("water-density-etb", "coefficients", coefficients)
