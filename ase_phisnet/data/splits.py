"""Train/validation/test splits of frame indices, reproducible by seed.

The eligible frames (converged ones, unless asked otherwise) are permuted with
``numpy.random.default_rng(seed).permutation``; the first ``n_train`` are the training set, the
next ``n_val`` the validation set, and the next ``n_test`` (default: all the rest) the test set.
The water protocol of the papers is 500 / 500 / rest. ``train_subset=N`` keeps only the first
``N`` of the ``n_train`` training frames (in the permuted order) and leaves the validation and
test sets as they are: nested training sets for a learning curve against the number of frames.

Examples
--------
>>> import numpy as np
>>> from ase_phisnet.data.splits import make_splits
>>> s = make_splits(np.ones(10, bool), n_train=5, n_val=2, seed=0)
>>> len(s["train"]), len(s["val"]), len(s["test"])
(5, 2, 3)
>>> t = make_splits(np.ones(10, bool), n_train=5, n_val=2, seed=0, train_subset=2)
>>> len(t["train"]), set(t["train"]) <= set(s["train"]), bool((t["val"] == s["val"]).all())
(2, True, True)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import DatasetError, InputError

SPLIT_NAMES = ("train", "val", "test")


def make_splits(
    store_or_converged_mask,
    n_train: int,
    n_val: int,
    n_test: int | None = None,
    seed: int = 0,
    include_unconverged: bool = False,
    train_subset: int | None = None,
) -> dict[str, np.ndarray]:
    """Split frame indices into train/val/test sets.

    Parameters
    ----------
    store_or_converged_mask : FrameStore, path-like, or (n,) bool array_like
        A dataset (its frame indices and converged flags), or a converged mask whose positions
        0..n-1 are the frame indices.
    n_train, n_val : int
        Sizes of the training and validation sets.
    n_test : int, optional
        Size of the test set; default all remaining eligible frames.
    seed : int
        Seed of ``numpy.random.default_rng``.
    include_unconverged : bool
        Also draw from frames whose SCF did not converge (excluded by default).
    train_subset : int, optional
        Train on only the first ``train_subset`` of the ``n_train`` training frames (in the
        permuted order, so a smaller subset lies inside a larger one); the other training frames
        are in no split. Validation and test are those of the full split.

    Returns
    -------
    dict
        ``train``, ``val``, ``test``: sorted int64 arrays of frame indices, pairwise disjoint.

    Raises
    ------
    InputError
        Negative sizes, more frames requested than eligible, or a ``train_subset`` larger than
        ``n_train``.
    ValueError
        ``store_or_converged_mask`` is neither a dataset nor a 1-d boolean mask.
    """
    from .store import FrameStore

    store = store_or_converged_mask
    if isinstance(store, (str, os.PathLike)):
        store = FrameStore.open(store)
    if isinstance(store, FrameStore):
        indices = np.asarray(store.indices(), dtype=np.int64)
        converged = store.converged_mask(indices)
    else:
        converged = np.asarray(store)
        if converged.ndim != 1 or converged.dtype != bool:
            raise ValueError("make_splits needs a FrameStore or a 1-d boolean converged mask")
        indices = np.arange(len(converged), dtype=np.int64)
    eligible = indices if include_unconverged else indices[converged]
    sizes = {"n_train": n_train, "n_val": n_val, "n_test": n_test}
    for name, value in sizes.items():
        if value is not None and (int(value) != value or value < 0):
            raise InputError(f"{name} must be an integer >= 0, got {value!r}")
    n_train, n_val = int(n_train), int(n_val)
    if train_subset is not None and (int(train_subset) != train_subset or not 1 <= train_subset <= n_train):
        raise InputError(f"train_subset must be an integer from 1 to n_train ({n_train}), got {train_subset!r}")
    n_rest = len(eligible) - n_train - n_val
    n_test = n_rest if n_test is None else int(n_test)
    if n_train + n_val + n_test > len(eligible) or n_rest < 0:
        excluded = "" if include_unconverged else f", {int((~converged).sum())} unconverged excluded"
        raise InputError(
            f"requested {n_train} train + {n_val} val + {n_test if sizes['n_test'] is not None else 0} test frames, "
            f"but only {len(eligible)} frames are eligible ({len(indices)} in total{excluded})"
        )
    perm = np.random.default_rng(seed).permutation(eligible)
    bounds = np.cumsum([0, n_train, n_val, n_test])
    splits = {name: perm[bounds[i] : bounds[i + 1]] for i, name in enumerate(SPLIT_NAMES)}
    if train_subset is not None:
        splits["train"] = splits["train"][: int(train_subset)]
    return {name: np.sort(part).astype(np.int64) for name, part in splits.items()}


def splits_to_json(splits: dict, **info) -> str:
    """JSON text of splits (lists of ints) plus extra ``info`` entries (seed, dataset, ...)."""
    doc = dict(info)
    doc.update({name: [int(i) for i in splits[name]] for name in SPLIT_NAMES})
    return json.dumps(doc, indent=1) + "\n"


def save_splits(path: str | os.PathLike, splits: dict, **info) -> Path:
    """Write splits as JSON, atomically."""
    from ..atomic_files import atomic_write_text

    path = Path(path)
    atomic_write_text(path, splits_to_json(splits, **info))
    return path


def load_splits(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read splits written by :func:`save_splits` (or ``phisnet data split -o``)."""
    doc = json.loads(Path(path).read_text())
    missing = [n for n in SPLIT_NAMES if n not in doc]
    if missing:
        raise DatasetError(f"{path} is not a splits file (missing {', '.join(missing)})")
    return {n: np.asarray(doc[n], dtype=np.int64) for n in SPLIT_NAMES}


def select_split(model, frames: list[dict], split: str) -> list[dict]:
    """Frames of ``split`` as recorded in a model's metadata (dataset frame indices).

    Parameters
    ----------
    model : object with ``metadata``
        A loaded model (its ``metadata["splits"]`` holds ``train``/``val``/``test`` index lists).
    frames : list of dict
        The dataset's frames, each with its ``index``.
    split : {"train", "val", "test", "all"}
    """
    from ..errors import DatasetError

    if split == "all":
        return frames
    recorded = getattr(model, "metadata", {}).get("splits", {})
    if split not in recorded:
        raise DatasetError(f"the model records no {split!r} split; use --split all or one of {sorted(k for k in recorded if k in ('train', 'val', 'test'))}")
    by_index = {int(f["index"]): f for f in frames}
    missing = [i for i in recorded[split] if i not in by_index]
    if missing:
        raise DatasetError(f"{len(missing)} frame(s) of the {split} split are not in this dataset (e.g. index {missing[0]}); is it the dataset the model was trained on?")
    return [by_index[i] for i in recorded[split]]
