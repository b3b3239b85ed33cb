"""Shared fixtures: the shared reference data beside the checkout, float64 torch."""

from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WATER_H5 = SHARED_DATA / "water_pbe_def2svp_500K.h5"
ETHANOL_H5 = SHARED_DATA / "ethanol_pbe_def2svp_500K.h5"


@pytest.fixture(autouse=True)
def _float64():
    """Physics checks run in float64."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def shared_frame(h5path, index=0):
    """(numbers, positions in Å) of one frame of a shared reference set."""
    import h5py

    if not Path(h5path).exists():
        pytest.fail(f"shared reference data missing: {h5path} (../shared/data beside the checkout)")
    with h5py.File(h5path, "r") as h5:
        return np.asarray(h5["numbers"]), np.asarray(h5["positions"][index])


def random_energy_model(reference_h5, elements=(1, 8), features=4):
    """A model with F~ and H~core heads (H~core on top of the exact T + V_nuc): random weights
    scaled down on top of diagonal blocks fitted to the data, so its spectrum looks physical
    (a HOMO-LUMO gap). Float64, for physics checks."""
    from ase_phisnet.model import PhiSNetConfig, build_model
    from ase_phisnet.training.data import MatrixData, load_frames

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(PhiSNetConfig.from_preset("small", elements=list(elements), features=features, heads=["fock", "hcore"], core_baseline=True), torch.float64)
    frames, _ = load_frames(reference_h5)
    data = MatrixData(frames[:10], model.basis, ["fock", "hcore"], core_baseline=True)
    for head, refs in data.diagonal_references(range(10)).items():
        for z, block in refs.items():
            model.heads[head].set_reference(z, torch.as_tensor(block))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "heads" in name and "linear" in name:
                p.mul_(0.05)
    model.metadata = {"reference": {"method": "rks", "xc": "pbe", "charge": 0}}
    return model.eval()
