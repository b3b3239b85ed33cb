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
