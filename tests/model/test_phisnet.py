"""Exact symmetry of the PhiSNet matrix heads, in float64, on random molecules."""

import numpy as np
import pytest
import torch

from ase_phisnet.basis import random_rotation
from ase_phisnet.model import PhiSNet, PhiSNetConfig, build_model

ELEMENTS = [1, 6, 7, 8]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = PhiSNetConfig.from_preset("small", elements=ELEMENTS, features=8, heads=["fock", "overlap", "hcore"])
    m = build_model(cfg, torch.float64)
    # non-trivial reference blocks, so that they take part in the checks
    for head in m.heads.values():
        for z in ELEMENTS:
            n = m.basis.n_ao_element(z)
            head.set_reference(z, torch.eye(n) * -float(z))
    return m


def random_molecule(seed, natm=6):
    rng = np.random.default_rng(seed)
    numbers = rng.choice(ELEMENTS, size=natm)
    while True:  # atoms at least 0.9 Å apart, like a molecule
        pos = rng.uniform(-2.0, 2.0, size=(natm, 3))
        d = np.linalg.norm(pos[:, None] - pos[None], axis=-1) + 10 * np.eye(natm)
        if d.min() > 0.9:
            return numbers, pos


def test_lmax_follows_the_basis(model):
    assert model.lmax == 4  # def2-SVP has d shells on C, N, O
    assert PhiSNet(PhiSNetConfig(elements=[1, 8], basis="sto-3g", features=2, num_radial=2, radial_hidden=2)).lmax == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matrices_rotate_with_wigner_d(model, seed):
    numbers, pos = random_molecule(seed)
    R = random_rotation(100 + seed)
    before = model.predict(numbers, pos)
    after = model.predict(numbers, pos @ R.T)
    D = model.basis.wigner_d(R, numbers)
    for name in ("fock", "overlap", "hcore"):
        X, Y = before[name], after[name]
        assert np.abs(X).max() > 1e-2  # not trivially zero
        assert np.abs(Y - D @ X @ D.T).max() <= 1e-10 * np.abs(X).max()
        assert np.allclose(X, X.T, atol=1e-14)


def test_a_wrong_frame_breaks_the_check(model):
    """The same check with e3nn's raw frame (rotation not conjugated) fails: the test can fail."""
    numbers, pos = random_molecule(5)
    R = random_rotation(7)
    X, Y = model.predict(numbers, pos)["fock"], model.predict(numbers, pos @ R.T)["fock"]
    P = np.eye(3)[[1, 2, 0]]
    D_wrong = model.basis.wigner_d(P.T @ R @ P, numbers)
    assert np.abs(Y - D_wrong @ X @ D_wrong.T).max() > 1e-4 * np.abs(X).max()


def test_translation_invariance(model):
    numbers, pos = random_molecule(3)
    a = model.predict(numbers, pos)["fock"]
    b = model.predict(numbers, pos + np.array([3.3, -7.1, 0.4]))["fock"]
    assert np.abs(a - b).max() <= 1e-11 * np.abs(a).max()


def test_permuting_identical_atoms_permutes_blocks(model):
    numbers = np.array([8, 1, 1, 6, 1])
    _, pos = random_molecule(4, natm=5)
    perm = np.array([0, 2, 1, 3, 4])  # swap the two H atoms 1 and 2
    a = model.predict(numbers, pos)["fock"]
    b = model.predict(numbers[perm], pos[perm])["fock"]
    slices = model.basis.ao_slices(numbers)
    ao_perm = np.concatenate([np.arange(slices[k].start, slices[k].stop) for k in perm])
    assert np.abs(b - a[np.ix_(ao_perm, ao_perm)]).max() <= 1e-12 * np.abs(a).max()


def test_batched_equals_single(model):
    mols = [random_molecule(s, natm=n) for s, n in ((10, 3), (11, 5))]
    from ase_phisnet.units import BOHR

    graph = model.graph([m[0] for m in mols], [m[1] / BOHR for m in mols])
    with torch.no_grad():
        batched = model(graph)["fock"].numpy()
    for b, (numbers, pos) in enumerate(mols):
        n = model.basis.n_ao(numbers)
        single = model.basis.to_irreps_order(model.predict(numbers, pos)["fock"], numbers)
        assert np.allclose(batched[b, :n, :n], single, atol=1e-12)
        assert np.all(batched[b, n:, :] == 0)


def test_pairs_beyond_the_cutoff_give_zero_blocks():
    cfg = PhiSNetConfig.from_preset("small", elements=[1], features=4, cutoff=4.0)
    m = PhiSNet(cfg).double()
    F = m.predict([1, 1], [[0, 0, 0], [0, 0, 3.0]])["fock"]  # 5.7 Bohr apart
    assert np.all(F[:5, 5:] == 0) and np.abs(F[:5, :5]).max() > 0
