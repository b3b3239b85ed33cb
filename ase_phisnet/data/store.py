"""Crash-safe, resumable on-disk store of labelled frames.

A dataset is a directory::

    DATASET/
      dataset.json        metadata: how every frame was labelled (method, xc, basis, ...)
      frames/000123.npz   one file per frame, named by the frame's index in its source

Each frame file holds exactly the keys of :data:`FRAME_KEYS`, with the names and units of the
shared HDF5 sets (the ``README.md`` of the reference-data folder, ``../shared/data``): positions in Å, energy in Hartree, forces in
Hartree/Bohr, the Fock/KS matrix, overlap and core Hamiltonian in PySCF's AO order, orbital
energies in Hartree, dipole in Debye.

Every write goes to a temporary file in the same directory, is flushed and fsync'ed, and then
renamed over its final name (``os.replace``, atomic on POSIX). A process killed at any moment
therefore leaves either the whole frame or none of it; a frame file name is its index, so a frame
can never be there twice. Stray ``*.tmp`` files of a killed writer are ignored on read and removed
when the dataset is next opened for writing. One writer at a time is enforced with a lock file.

Examples
--------
>>> from ase_phisnet.data import FrameStore
>>> store = FrameStore.open("runs/water")            # doctest: +SKIP
>>> len(store), store.meta["xc"]                       # doctest: +SKIP
(2500, 'pbe')
>>> arrays = store.arrays()                            # doctest: +SKIP
>>> arrays["fock"].shape                               # doctest: +SKIP
(2500, 24, 24)
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..atomic_files import atomic_write_bytes, atomic_write_text, fsync_dir, write_temp
from ..errors import DatasetError

#: Version of the on-disk layout written by this module.
FORMAT_VERSION = 1
#: Units of the stored arrays (the same string as the shared HDF5 sets).
UNITS = "positions Angstrom; energy Hartree; forces Hartree/Bohr; matrices Hartree; dipole Debye"
#: AO order of the stored matrices (the same string as the shared HDF5 sets).
AO_ORDER = "PySCF spherical (p: px,py,pz)"
#: Keys of one frame, in the order of the shared HDF5 layout.
FRAME_KEYS = (
    "numbers",
    "positions",
    "energy",
    "forces",
    "fock",
    "overlap",
    "hcore",
    "mo_energy",
    "dipole",
    "converged",
    "scf_cycles",
)
#: Metadata keys every ``dataset.json`` has.
META_KEYS = (
    "format_version",
    "method",
    "xc",
    "basis",
    "grids_level",
    "conv_tol",
    "charge",
    "multiplicity",
    "pyscf_version",
    "source",
    "units",
    "ao_order",
    "created",
)
#: Metadata keys that do not define the labels (may differ between datasets that are joined).
NON_IDENTITY_KEYS = ("created",)
#: Frame count above which :meth:`FrameStore.read_all` shows a progress bar.
PROGRESS_MIN_FRAMES = 500

META_FILE = "dataset.json"
FRAMES_DIR = "frames"
LOCK_FILE = ".lock"
_FRAME_RE = re.compile(r"^(\d+)\.npz$")


# ---------------------------------------------------------------------------------- metadata
def make_meta(
    method: str = "rks",
    xc: str | None = "pbe",
    basis: str = "def2-svp",
    grids_level: int | None = 3,
    conv_tol: float = 1e-11,
    charge: int = 0,
    multiplicity: int = 1,
    source: str = "",
    pyscf_version: str | None = None,
    **extra,
) -> dict:
    """Metadata dictionary of a dataset, normalised so that equal settings compare equal.

    Parameters
    ----------
    method : {"rks", "rhf", "ccsd(t)"}
        Reference method. Only ``"rks"`` has ``xc`` and ``grids_level`` entries (else ``None``).
    xc : str or None
        PySCF exchange-correlation functional (lower-cased), e.g. ``"pbe"``.
    basis : str
        PySCF basis name (lower-cased), e.g. ``"def2-svp"``.
    grids_level : int or None
        PySCF DFT integration grid level.
    conv_tol : float
        SCF energy convergence threshold in Hartree.
    charge, multiplicity : int
        Total charge (e) and spin multiplicity 2S+1.
    source : str
        Where the geometries came from (file name).
    pyscf_version : str, optional
        Defaults to the installed PySCF's version.
    **extra
        Further JSON-serialisable entries (e.g. ``source_sha256``); they take part in the
        comparison of :func:`meta_differences` like any other key.
    """
    method = str(method).lower()
    if method not in ("rks", "rhf", "ccsd(t)"):
        raise DatasetError(f"method must be 'rks', 'rhf' or 'ccsd(t)', got {method!r}")
    if pyscf_version is None:
        import pyscf

        pyscf_version = pyscf.__version__
    meta = {
        "format_version": FORMAT_VERSION,
        "method": method,
        "xc": str(xc).lower() if method == "rks" else None,
        "basis": str(basis).lower(),
        "grids_level": int(grids_level) if method == "rks" else None,
        "conv_tol": float(conv_tol),
        "charge": int(charge),
        "multiplicity": int(multiplicity),
        "pyscf_version": str(pyscf_version),
        "source": str(source),
        "units": UNITS,
        "ao_order": AO_ORDER,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    meta.update(extra)
    return meta


def _complete_meta(meta: Mapping) -> dict:
    """``meta`` with the entries that are not the caller's choice filled in where missing."""
    out = dict(meta)
    out.setdefault("format_version", FORMAT_VERSION)
    out.setdefault("units", UNITS)
    out.setdefault("ao_order", AO_ORDER)
    if "pyscf_version" not in out:
        import pyscf

        out["pyscf_version"] = pyscf.__version__
    out.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    return out


def meta_differences(stored: Mapping, requested: Mapping) -> dict[str, tuple]:
    """Keys (other than :data:`NON_IDENTITY_KEYS`) whose values differ: ``{key: (stored, requested)}``."""
    keys = (set(stored) | set(requested)) - set(NON_IDENTITY_KEYS)
    return {k: (stored.get(k), requested.get(k)) for k in sorted(keys) if stored.get(k) != requested.get(k)}


def _describe_differences(diff: Mapping[str, tuple]) -> str:
    return "; ".join(f"{k}: {a!r} (stored) vs {b!r} (requested)" for k, (a, b) in diff.items())


# ---------------------------------------------------------------------------------- frames
def validate_frame(frame: Mapping) -> dict[str, np.ndarray]:
    """Check one frame's keys, shapes and values; return it with canonical dtypes.

    Returns
    -------
    dict
        ``numbers``, ``scf_cycles`` as int64, ``converged`` as bool, the rest float64.

    Raises
    ------
    DatasetError
        On missing or unknown keys, inconsistent shapes, or non-finite values.
    """
    missing = [k for k in FRAME_KEYS if k not in frame]
    unknown = sorted(set(frame) - set(FRAME_KEYS))
    if missing or unknown:
        raise DatasetError(
            f"a frame needs exactly the keys {', '.join(FRAME_KEYS)}"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    out: dict[str, np.ndarray] = {}
    for key in FRAME_KEYS:
        value = np.asarray(frame[key])
        if key in ("numbers", "scf_cycles"):
            if not np.all(np.equal(np.mod(value, 1), 0)):
                raise DatasetError(f"frame key {key!r} must hold integers")
            value = value.astype(np.int64)
        elif key == "converged":
            value = value.astype(bool)
        else:
            value = value.astype(np.float64)
            if not np.all(np.isfinite(value)):
                raise DatasetError(f"frame key {key!r} holds NaN or infinite values")
        out[key] = value
    natm = out["numbers"].shape[0] if out["numbers"].ndim == 1 else -1
    nao = out["mo_energy"].shape[0] if out["mo_energy"].ndim == 1 else -1
    expected = {
        "numbers": (natm,),
        "positions": (natm, 3),
        "energy": (),
        "forces": (natm, 3),
        "fock": (nao, nao),
        "overlap": (nao, nao),
        "hcore": (nao, nao),
        "mo_energy": (nao,),
        "dipole": (3,),
        "converged": (),
        "scf_cycles": (),
    }
    if natm < 1 or nao < 1:
        raise DatasetError("frame 'numbers' and 'mo_energy' must be non-empty 1-d arrays")
    for key, shape in expected.items():
        if out[key].shape != shape:
            raise DatasetError(f"frame key {key!r} has shape {out[key].shape}, expected {shape} (natm={natm}, nao={nao})")
    return out


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An uncompressed ``.npz`` file's bytes (one write() instead of the zip writer's many)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def frame_file_name(index: int) -> str:
    """File name of frame ``index``: at least six digits, ``000123.npz``."""
    return f"{int(index):06d}.npz"


# ---------------------------------------------------------------------------------- store
class FrameStore:
    """A dataset directory of labelled frames. Use :meth:`create` or :meth:`open`.

    Attributes
    ----------
    path : pathlib.Path
        The dataset directory.
    meta : dict
        Contents of ``dataset.json``.
    writable : bool
        Whether this handle holds the dataset's write lock.
    """

    def __init__(self, path: Path, meta: dict, writable: bool, lock_fd: int | None = None):
        self.path = Path(path)
        self.meta = meta
        self.writable = writable
        self._lock_fd = lock_fd

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, path: str | os.PathLike, meta: Mapping) -> "FrameStore":
        """Create a dataset, or open an existing one with the same metadata for writing.

        Parameters
        ----------
        path : path-like
            Dataset directory; created with its parents if missing. An existing dataset there
            is resumed when its metadata equals ``meta`` (the ``created`` time aside).
        meta : mapping
            Metadata, normally from :func:`make_meta`. Entries that are not a choice of the
            caller (``format_version``, ``units``, ``ao_order``, ``pyscf_version``,
            ``created``) are filled in when missing.

        Raises
        ------
        DatasetError
            If ``path`` is a dataset with different metadata (the message names the differing
            keys), or a file or non-empty directory that is not a dataset.
        """
        path = Path(path)
        meta = _complete_meta(meta)
        try:
            json.dumps(meta)
        except TypeError as err:
            raise DatasetError(f"dataset metadata must be JSON-serialisable: {err}") from None
        if (path / META_FILE).exists():
            store = cls.open(path, mode="a")
            diff = meta_differences(store.meta, meta)
            if diff:
                store.close()
                raise DatasetError(
                    f"dataset {path} exists with different settings: {_describe_differences(diff)}. "
                    "Rerun with the stored settings to resume it, or choose a new DATASET directory."
                )
            return store
        if path.exists() and not path.is_dir():
            raise DatasetError(f"{path} exists and is not a directory; choose a new DATASET directory")
        if path.is_dir() and not _is_leftover_of_create(path):
            raise DatasetError(f"{path} is a non-empty directory without {META_FILE}; choose a new DATASET directory")
        (path / FRAMES_DIR).mkdir(parents=True, exist_ok=True)
        lock_fd = _acquire_lock(path)
        if (path / META_FILE).exists():  # another process created it in the meantime
            _release_lock(lock_fd)
            return cls.create(path, meta)
        try:
            for stray in path.glob("*.tmp"):
                stray.unlink(missing_ok=True)
            atomic_write_text(path / META_FILE, json.dumps(meta, indent=2) + "\n")
        except BaseException:
            _release_lock(lock_fd)
            raise
        return cls(path, meta, writable=True, lock_fd=lock_fd)

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r") -> "FrameStore":
        """Open an existing dataset.

        Parameters
        ----------
        path : path-like
            Dataset directory.
        mode : {"r", "a"}
            ``"a"`` takes the write lock and removes stray temporary files of a killed writer.

        Raises
        ------
        DatasetError
            If ``path`` is not a dataset, or (mode ``"a"``) another process is writing to it.
        """
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        path = Path(path)
        meta_path = path / META_FILE
        if not meta_path.is_file():
            what = "does not exist" if not path.exists() else f"is not a dataset (no {META_FILE})"
            raise DatasetError(
                f"{path} {what}; a dataset is a directory made by `phisnet data label`, "
                "`phisnet data import` or `phisnet data merge`"
            )
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise DatasetError(f"cannot read {meta_path}: {err}") from None
        if not isinstance(meta, dict) or meta.get("format_version") is None:
            raise DatasetError(f"{meta_path} is not dataset metadata (no format_version)")
        if int(meta["format_version"]) > FORMAT_VERSION:
            raise DatasetError(
                f"{path} has format version {meta['format_version']}; this ase_phisnet reads up to {FORMAT_VERSION}"
            )
        if mode == "a":
            (path / FRAMES_DIR).mkdir(exist_ok=True)
        if not (path / FRAMES_DIR).is_dir():
            raise DatasetError(f"{path} is not a dataset (no {FRAMES_DIR}/ directory)")
        lock_fd = None
        if mode == "a":
            lock_fd = _acquire_lock(path)
            for stray in list((path / FRAMES_DIR).glob("*.tmp")) + list(path.glob("*.tmp")):
                stray.unlink(missing_ok=True)
        return cls(path, meta, writable=mode == "a", lock_fd=lock_fd)

    def close(self) -> None:
        """Release the write lock (if held). Reading still works afterwards."""
        if self._lock_fd is not None:
            _release_lock(self._lock_fd)
            self._lock_fd = None
        self.writable = False

    def __enter__(self) -> "FrameStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"FrameStore({str(self.path)!r}, frames={len(self)}, method={self.meta.get('method')!r}, basis={self.meta.get('basis')!r})"

    # ------------------------------------------------------------------ index
    @property
    def frames_dir(self) -> Path:
        return self.path / FRAMES_DIR

    def frame_path(self, index: int) -> Path:
        """File of frame ``index`` (whether or not it exists)."""
        return self.frames_dir / frame_file_name(index)

    def indices(self) -> list[int]:
        """Sorted indices of the frames present (Python ints); temporary files are ignored."""
        found = []
        with os.scandir(self.frames_dir) as it:
            for entry in it:
                m = _FRAME_RE.match(entry.name)
                if m:
                    found.append(int(m.group(1)))
        return sorted(found)

    def __len__(self) -> int:
        return len(self.indices())

    def __contains__(self, index) -> bool:
        try:
            return self.frame_path(int(index)).is_file()
        except (TypeError, ValueError):
            return False

    # ------------------------------------------------------------------ writing
    def write_frame(self, index: int, frame: Mapping, overwrite: bool = False) -> None:
        """Validate and atomically write frame ``index``.

        Parameters
        ----------
        index : int
            Index of the geometry in the source (>= 0).
        frame : mapping
            Exactly the keys of :data:`FRAME_KEYS` (see the module docstring for units).
        overwrite : bool
            Replace an existing frame; otherwise writing an existing index is an error.
        """
        if not self.writable:
            raise DatasetError(f"dataset {self.path} is open read-only")
        self._write(int(index), frame, overwrite, sync_dir=True)

    def write_frames(self, frames: Iterable[tuple[int, Mapping]], overwrite: bool = False, batch: int = 128) -> int:
        """Write many ``(index, frame)`` pairs; each frame appears atomically, as with :meth:`write_frame`.

        Faster for bulk imports: frames are written to temp files in batches, the batch is made
        durable with one ``os.sync()`` (instead of one fsync per file), and only then renamed
        into place. A kill at any moment leaves whole frames or none. Returns the number written.
        """
        if not self.writable:
            raise DatasetError(f"dataset {self.path} is open read-only")
        if not hasattr(os, "sync"):  # pragma: no cover - non-POSIX: one fsync per frame
            n = 0
            for index, frame in frames:
                self._write(int(index), frame, overwrite, sync_dir=False)
                n += 1
            fsync_dir(self.frames_dir)
            return n
        pending: dict[int, tuple[str, Path]] = {}
        n = 0

        def publish():
            if pending:
                os.sync()
                for tmp, target in pending.values():
                    os.replace(tmp, target)
                fsync_dir(self.frames_dir)
                pending.clear()

        try:
            for index, frame in frames:
                index = int(index)
                target = self._check_target(index, overwrite)
                if index in pending:
                    raise DatasetError(f"frame {index} is given twice")
                data = _npz_bytes(validate_frame(frame))
                pending[index] = (write_temp(target, lambda fh: fh.write(data), fsync=False), target)
                n += 1
                if len(pending) >= batch:
                    publish()
            publish()
        except BaseException:
            for tmp, _ in pending.values():
                Path(tmp).unlink(missing_ok=True)
            raise
        return n

    def _check_target(self, index: int, overwrite: bool) -> Path:
        if index < 0:
            raise DatasetError(f"frame index must be >= 0, got {index}")
        target = self.frame_path(index)
        if not overwrite and target.exists():
            raise DatasetError(f"frame {index} is already in dataset {self.path}")
        return target

    def _write(self, index: int, frame: Mapping, overwrite: bool, sync_dir: bool) -> None:
        target = self._check_target(index, overwrite)
        data = _npz_bytes(validate_frame(frame))
        atomic_write_bytes(target, lambda fh: fh.write(data), sync_dir=sync_dir)

    # ------------------------------------------------------------------ reading
    def read(self, index: int, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Load frame ``index`` as a dict of arrays (all keys, or only ``keys``)."""
        path = self.frame_path(int(index))
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in (keys or FRAME_KEYS)}
        except FileNotFoundError:
            raise KeyError(f"frame {int(index)} is not in dataset {self.path}") from None

    def read_all(self, indices: Iterable[int] | None = None, keys: Sequence[str] | None = None, progress: bool | None = None) -> list[dict]:
        """Load many frames (default: all, in index order).

        A tqdm bar is shown when more than :data:`PROGRESS_MIN_FRAMES` frames are read
        (``progress=None``); ``progress=False`` never shows one.
        """
        from tqdm.auto import tqdm

        indices = self.indices() if indices is None else [int(i) for i in indices]
        show = (len(indices) > PROGRESS_MIN_FRAMES) if progress is None else bool(progress)
        # shown only on a terminal (tqdm's disable=None), so logs stay clean
        it = tqdm(indices, desc="read frames", unit="frame", disable=None if show else True, leave=False)
        return [self.read(i, keys) for i in it]

    def arrays(self, indices: Iterable[int] | None = None, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Frames stacked into arrays, laid out like the shared HDF5 sets.

        Returns
        -------
        dict
            ``numbers`` (natm,) once, every other requested key stacked along a first axis of
            length n_frames, and ``indices`` (n_frames,) the frame indices.

        Raises
        ------
        DatasetError
            If the frames do not all have the same atoms (same ``numbers``), or none are selected.
        """
        keys = list(keys or FRAME_KEYS)
        indices = np.asarray(self.indices() if indices is None else [int(i) for i in indices], dtype=np.int64)
        frames = self.read_all(indices, keys=sorted(set(keys) | {"numbers"}))
        if not frames:
            raise DatasetError(f"no frames selected in dataset {self.path}")
        numbers = frames[0]["numbers"]
        for index, f in zip(indices, frames):
            if not np.array_equal(f["numbers"], numbers):
                raise DatasetError(
                    f"frames do not all have the same atoms (frame {int(index)} differs from the first); "
                    "stack them per molecule with arrays(indices=...)"
                )
        out = {"numbers": numbers}
        for k in keys:
            if k != "numbers":
                out[k] = np.stack([f[k] for f in frames])
        out["indices"] = indices
        return out

    def converged_mask(self, indices: Iterable[int] | None = None) -> np.ndarray:
        """Boolean array, aligned with ``indices`` (default :meth:`indices`): SCF converged."""
        indices = self.indices() if indices is None else indices
        return np.array([bool(self.read(i, ["converged"])["converged"]) for i in indices], dtype=bool)

    # ------------------------------------------------------------------ summary
    def summary(self) -> dict:
        """Frame count, formulas, settings, energy statistics (Hartree) and AO counts, JSON-ready."""
        from ase import Atoms

        meta = self.meta
        indices = self.indices()
        frames = self.read_all(indices, keys=["numbers", "energy", "converged", "mo_energy"])
        formulas: dict[str, dict] = {}
        elements: set[int] = set()
        for f in frames:
            elements.update(f["numbers"].tolist())
            formula = Atoms(numbers=f["numbers"]).get_chemical_formula()
            entry = formulas.setdefault(formula, {"frames": 0, "nao": int(f["mo_energy"].shape[0]), "natoms": int(len(f["numbers"]))})
            entry["frames"] += 1
        energies = np.array([float(f["energy"]) for f in frames])
        converged = np.array([bool(f["converged"]) for f in frames], dtype=bool)
        from ase.data import chemical_symbols

        return {
            "path": str(self.path),
            "frames": int(len(indices)),
            "unconverged": int((~converged).sum()),
            "index_range": [indices[0], indices[-1]] if indices else None,
            "formulas": formulas,
            "elements": [chemical_symbols[z] for z in sorted(elements)],
            "nao": sorted({v["nao"] for v in formulas.values()}),
            "energy_hartree": (
                {"min": float(energies.min()), "max": float(energies.max()), "mean": float(energies.mean())}
                if len(energies)
                else None
            ),
            "meta": dict(meta),
        }


def _is_leftover_of_create(path: Path) -> bool:
    """True for an empty directory, or what a create killed before writing dataset.json leaves."""
    for entry in path.iterdir():
        if entry.name == LOCK_FILE or entry.name.endswith(".tmp"):
            continue
        if entry.name == FRAMES_DIR and entry.is_dir() and not any(entry.iterdir()):
            continue
        return False
    return True


# ---------------------------------------------------------------------------------- lock
def _acquire_lock(path: Path) -> int | None:
    """Take an exclusive, non-blocking lock on ``path/.lock`` (released by the kernel on death)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        return None
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise DatasetError(f"dataset {path} is being written by another process; wait for it or stop it first") from None
    return fd


def _release_lock(fd: int | None) -> None:
    if fd is None:
        return
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
    except (ImportError, OSError):
        pass
    os.close(fd)
