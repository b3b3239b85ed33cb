"""Write ``frozen_shipped.npz``: what each shipped model computes on 50 of its test frames.

Run once, at the commit whose numbers every later change must keep
(``python tests/references/freeze_shipped.py``, float64, CPU); ``tests/test_frozen_numbers.py``
compares against the file. Geometries are stored with the numbers, so the check needs no data set.

* ``water-pbe-def2svp``: the first 50 frames of its test split (shared water set).
* ``water-ccsdt-def2svp``: the first 50 frames of its test split (``water_ccsdt_test.npz``).
* ``water-density-etb``: the same 50 water frames as the PBE model; auxiliary coefficients.
"""

import hashlib
from pathlib import Path

import h5py
import numpy as np
from ase import Atoms

HERE = Path(__file__).resolve().parent
WATER_H5 = HERE.parents[2] / "shared" / "data" / "water_pbe_def2svp_500K.h5"
N_FRAMES = 50


def hamiltonian_model(name, numbers, positions):
    """Energies (eV), forces (eV/Å) from the calculator; F~ and H~core (Hartree) from ``predict``."""
    from ase_phisnet import PhiSNetCalculator, load_model

    model = load_model(name)
    calc = PhiSNetCalculator(name)
    out = {"energy": [], "forces": [], "fock": [], "hcore": []}
    for pos in positions:
        atoms = Atoms(numbers=numbers, positions=pos)
        atoms.calc = calc
        out["energy"].append(atoms.get_potential_energy())
        out["forces"].append(atoms.get_forces())
        matrices = model.predict(numbers, pos)
        out["fock"].append(matrices["fock"])
        out["hcore"].append(matrices["hcore"])
    return {k: np.asarray(v) for k, v in out.items()}


def main():
    from ase_phisnet.density.model import load_density_model
    from ase_phisnet.model.io import read_config, read_metadata, resolve_model_dir

    arrays = {}
    splits = read_metadata(resolve_model_dir("water-pbe-def2svp"), read_config("water-pbe-def2svp"))["splits"]
    test = np.sort(np.asarray(splits["test"]))[:N_FRAMES]
    with h5py.File(WATER_H5, "r") as h5:
        numbers = np.asarray(h5["numbers"])
        positions = np.asarray(h5["positions"])[test]
    arrays["water-pbe-def2svp/numbers"] = numbers
    arrays["water-pbe-def2svp/positions"] = positions
    for k, v in hamiltonian_model("water-pbe-def2svp", numbers, positions).items():
        arrays[f"water-pbe-def2svp/{k}"] = v

    cc = np.load(HERE / "water_ccsdt_test.npz")
    cc_numbers, cc_positions = cc["numbers"], cc["positions"][:N_FRAMES]
    arrays["water-ccsdt-def2svp/numbers"] = cc_numbers
    arrays["water-ccsdt-def2svp/positions"] = cc_positions
    for k, v in hamiltonian_model("water-ccsdt-def2svp", cc_numbers, cc_positions).items():
        arrays[f"water-ccsdt-def2svp/{k}"] = v

    density = load_density_model("water-density-etb")
    arrays["water-density-etb/numbers"] = numbers
    arrays["water-density-etb/positions"] = positions
    arrays["water-density-etb/coefficients"] = np.asarray([density.predict(numbers, p) for p in positions])
    for name in ("water-pbe-def2svp", "water-ccsdt-def2svp", "water-density-etb"):
        arrays[f"{name}/weights_sha256"] = np.asarray(hashlib.sha256((resolve_model_dir(name) / "model.safetensors").read_bytes()).hexdigest())
    np.savez_compressed(HERE / "frozen_shipped.npz", **arrays)
    print({k: v.shape for k, v in arrays.items()})


if __name__ == "__main__":
    main()
