"""Atomic file writes: a file is either there whole, with its new content, or not changed.

The bytes go to a temporary file in the same directory, are flushed and fsync'ed, and the temp
file is renamed over the final name (``os.replace``, atomic on POSIX); the directory is fsync'ed
so the rename survives a power loss. Used for dataset frames, model files, training checkpoints
and split files.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "note.txt"
>>> atomic_write_text(path, "hello")
>>> path.read_text()
'hello'
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """fsync a directory (its entries, e.g. a rename), where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported on this platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_temp(path: Path, write, fsync: bool = True) -> str:
    """Write ``write(fileobj)`` into a new temp file beside ``path``; return the temp file's name."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: str | os.PathLike, write, sync_dir: bool = True) -> None:
    """Write a file atomically: ``write(fileobj)`` into a temp file beside it, fsync, rename.

    Parameters
    ----------
    path : path-like
        Final file name.
    write : callable
        Called with a binary file object open for writing.
    sync_dir : bool
        Also fsync the directory, so that the rename itself survives a power loss.
    """
    path = Path(path)
    tmp = write_temp(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file (UTF-8) atomically, see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))
