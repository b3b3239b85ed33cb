"""Deepening a model: the added interaction modules start as the identity and then train."""

import numpy as np
import pytest
import torch

from ase_phisnet.model import PhiSNetConfig, build_model
from ase_phisnet.training.deepen import deepen


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(3)
    return build_model(PhiSNetConfig.from_preset("small", elements=[1, 6, 8], features=4, heads=["fock", "hcore"]), torch.float64)


@pytest.fixture(scope="module")
def deeper(small):
    return deepen(small, 4)


def _graph(model, seed=0):
    rng = np.random.default_rng(seed)
    positions = rng.normal(scale=1.5, size=(4, 3)) + np.array([[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0], [0, 0, 2.5]])
    return model.graph([np.array([6, 8, 1, 1])], [torch.tensor(positions)])


def test_deepened_model_predicts_the_same(small, deeper):
    assert deeper.config.num_interactions == 4 and len(deeper.interactions) == 4
    graph = _graph(small)
    with torch.no_grad():
        before, after = small(graph), deeper(graph)
    for name in before:
        torch.testing.assert_close(after[name], before[name], rtol=0, atol=1e-14)
    # the trained modules are copies, not shared
    assert deeper.interactions[0].pre.weight.data_ptr() != small.interactions[0].pre.weight.data_ptr()


def test_added_modules_train(deeper):
    fock = deeper(_graph(deeper))["fock"]
    (fock**2).sum().backward()
    # the zero output layer has a gradient, so the new module leaves the identity when trained
    assert all(deeper.interactions[i].out.weight.grad.abs().max() > 0 for i in (2, 3))
    deeper.zero_grad()


def test_deepen_refuses_fewer_modules(small):
    with pytest.raises(ValueError, match="has 2 interaction modules already"):
        deepen(small, 2)
