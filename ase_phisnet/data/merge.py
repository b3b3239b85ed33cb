"""Join shard datasets (``phisnet data label --shard k/n`` runs) into one :class:`FrameStore`."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .store import FRAME_KEYS, DatasetError, FrameStore, meta_differences


def _frames_equal(a: Mapping, b: Mapping) -> bool:
    return all(np.array_equal(a[k], b[k]) for k in FRAME_KEYS)


def merge(out_path: str | os.PathLike, paths: Sequence[str | os.PathLike], progress: bool = True) -> FrameStore:
    """Join shard datasets into one.

    Parameters
    ----------
    out_path : path-like
        Output dataset; created, or resumed if it exists with the same metadata.
    paths : sequence of path-like
        Input datasets. They must share their metadata (the ``created`` time aside). An index
        present in several inputs must hold identical frames.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    FrameStore
        The output dataset, open for writing (``close()`` it, or use it as a context manager).

    Raises
    ------
    DatasetError
        On differing metadata or conflicting duplicate frames; nothing is written then.
    """
    from tqdm.auto import tqdm

    if not paths:
        raise DatasetError("merge needs at least one input dataset")
    out_path = Path(out_path)
    shards = [FrameStore.open(p) for p in paths]
    for s in shards:
        if s.path.resolve() == out_path.resolve():
            raise DatasetError(f"the output {out_path} cannot also be an input")
    first = shards[0]
    for s in shards[1:]:
        diff = meta_differences(first.meta, s.meta)
        if diff:
            raise DatasetError(
                f"cannot merge {s.path} into the datasets of {first.path}: different settings: "
                + "; ".join(f"{k}: {a!r} vs {b!r}" for k, (a, b) in diff.items())
            )
    # plan, and check every duplicate before anything is written
    owner: dict[int, FrameStore] = {}
    for s in shards:
        for i in s.indices():
            if i in owner:
                if not _frames_equal(owner[i].read(i), s.read(i)):
                    raise DatasetError(f"frame {i} differs between {owner[i].path} and {s.path}; cannot merge conflicting frames")
            else:
                owner[i] = s
    meta = dict(first.meta)
    meta["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    out = FrameStore.create(out_path, meta)

    def new_frames():
        for i in tqdm(sorted(owner), desc="merge", unit="frame", disable=not progress):
            frame = owner[i].read(i)
            if i in out:
                if not _frames_equal(out.read(i), frame):
                    raise DatasetError(f"frame {i} in {out_path} differs from {owner[i].path}; cannot merge conflicting frames")
                continue
            yield i, frame

    try:
        out.write_frames(new_frames())
    except BaseException:
        out.close()
        raise
    return out
