"""Seeded train/val/test splits of frame indices."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ase_phisnet.data import FrameStore, make_splits
from ase_phisnet.data.splits import load_splits
from ase_phisnet.data.store import make_meta

from .conftest import fake_frame


def test_reproducible_disjoint_sorted():
    mask = np.ones(100, bool)
    a = make_splits(mask, 30, 20, seed=4)
    b = make_splits(mask, 30, 20, seed=4)
    c = make_splits(mask, 30, 20, seed=5)
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(a[name], b[name])
        assert np.all(np.diff(a[name]) > 0) and a[name].dtype == np.int64
    assert not np.array_equal(a["train"], c["train"])
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (30, 20, 50)
    union = np.concatenate([a["train"], a["val"], a["test"]])
    assert len(np.unique(union)) == 100
    assert len(make_splits(mask, 30, 20, n_test=10)["test"]) == 10


def test_train_subsets_are_nested_and_leave_val_and_test_alone():
    mask = np.ones(100, bool)
    full = make_splits(mask, 40, 20, seed=3)
    small, mid = (make_splits(mask, 40, 20, seed=3, train_subset=n) for n in (10, 25))
    assert (len(small["train"]), len(mid["train"])) == (10, 25)
    assert set(small["train"]) < set(mid["train"]) < set(full["train"])
    for part in (small, mid):
        np.testing.assert_array_equal(part["val"], full["val"])
        np.testing.assert_array_equal(part["test"], full["test"])
    for bad in (0, 41, 2.5):
        with pytest.raises(ValueError, match="train_subset must be an integer from 1 to n_train"):
            make_splits(mask, 40, 20, train_subset=bad)


def test_unconverged_excluded_and_sizes_checked():
    mask = np.ones(10, bool)
    mask[[3, 7]] = False
    s = make_splits(mask, 4, 2)
    used = np.concatenate(list(s.values()))
    assert 3 not in used and 7 not in used and len(used) == 8
    assert len(np.concatenate(list(make_splits(mask, 4, 2, include_unconverged=True).values()))) == 10
    with pytest.raises(ValueError, match="only 8 frames are eligible"):
        make_splits(mask, 6, 3)
    with pytest.raises(ValueError, match="only 8"):
        make_splits(mask, 4, 2, n_test=3)
    with pytest.raises(ValueError, match=">= 0"):
        make_splits(mask, -1, 2)


def test_splits_of_a_store_use_frame_indices(tmp_path, cli):
    path = tmp_path / "ds"
    with FrameStore.create(path, make_meta(source="t.xyz", pyscf_version="2.14.0")) as store:
        for i in (10, 11, 12, 13, 14, 20):
            store.write_frame(i, fake_frame(seed=i, converged=i != 12))
    s = make_splits(FrameStore.open(path), 2, 1, seed=0)
    used = np.concatenate(list(s.values()))
    assert sorted(used.tolist()) == [10, 11, 13, 14, 20]

    rc, out, err = cli("data", "split", path, "--n-train", "2", "--n-val", "1", "--seed", "0")
    assert rc == 0, err
    printed = json.loads(out)
    assert printed["train"] == s["train"].tolist() and printed["test"] == s["test"].tolist()
    rc, out, err = cli("data", "split", path, "--n-train", "2", "--n-val", "1", "-o", tmp_path / "s.json")
    assert rc == 0 and "train: 2, val: 1, test: 2" in out
    loaded = load_splits(tmp_path / "s.json")
    np.testing.assert_array_equal(loaded["val"], s["val"])
    rc, out, err = cli("data", "split", path, "--n-train", "5", "--n-val", "1")
    assert rc == 2 and "eligible" in err
