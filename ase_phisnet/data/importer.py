"""Import the shared HDF5 reference sets into a :class:`FrameStore`.

The sets live in the reference-data folder (:func:`~ase_phisnet.data.location.reference_data_dir`:
``$PHISNET_DATA``, else ``../shared/data`` beside the checkout); its ``README.md`` describes the
layout: one dataset per frame key, the frame axis first (``numbers`` once, shape (natm,)), file
attributes ``xc``, ``basis``, ``grids_level``, ``conv_tol``, ``pyscf_version`` (and ``units``,
``ao_order``, ``source``). Row ``i`` becomes frame ``i``. The file is read in place, never copied.

A set may leave out the matrices that follow from the geometry, naming them in its
``not_stored`` attribute (``"hcore,overlap"``): they are computed from PySCF's integrals
(:func:`~ase_phisnet.molecule.one_electron_matrices`; positions Å, the set's basis, spherical
AOs, its charge). Nothing else is ever computed: a Fock matrix, energy or forces that a set
lacks is an error. An optional ``source_index`` (each row's frame in the sampled trajectory)
is kept in the dataset's metadata.

Examples
--------
>>> from ase_phisnet.data import import_h5
>>> store = import_h5("water_pbe_def2svp_500K.h5", "runs/water")  # a bare name: looked up in the data folder  # doctest: +SKIP
>>> len(store)                                                     # doctest: +SKIP
2500
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ImportFormatError
from .store import AO_ORDER, FRAME_KEYS, UNITS, FrameStore, make_meta

#: File attributes an HDF5 set must have.
REQUIRED_ATTRS = ("xc", "basis", "grids_level", "conv_tol")
#: Keys a set may leave out (named in its ``not_stored`` attribute): they follow from the geometry.
FROM_GEOMETRY = ("overlap", "hcore")
#: Keys a set may have beside the frame keys.
OPTIONAL_KEYS = ("source_index",)


def _attr(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_h5(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read a whole HDF5 reference set into memory.

    Returns
    -------
    arrays : dict
        The keys of :data:`~ase_phisnet.data.store.FRAME_KEYS`, ``numbers`` as (n, natm), those
        of ``not_stored`` computed from the geometry; ``source_index`` where the set has it.
    attrs : dict
        The file attributes, as Python values.

    Raises
    ------
    FileNotFoundError, ImportFormatError
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HDF5 file {path} does not exist")
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise ImportFormatError(f"{path} is not a readable HDF5 file ({err})") from None
    with fh:
        keys = set(fh.keys())
        attrs = {k: _attr(v) for k, v in fh.attrs.items()}
        not_stored = _not_stored(attrs)
        bad = [k for k in not_stored if k not in FROM_GEOMETRY]
        if bad:
            raise ImportFormatError(
                f"{path}: not_stored names {', '.join(bad)}; only {', '.join(FROM_GEOMETRY)} follow from the geometry and can be computed"
            )
        missing = [k for k in FRAME_KEYS if k not in keys and k not in not_stored]
        unknown = sorted(keys - set(FRAME_KEYS) - set(OPTIONAL_KEYS))
        if missing or unknown:
            raise ImportFormatError(
                f"{path} does not have the reference-set layout: "
                + (f"missing keys: {', '.join(missing)}; " if missing else "")
                + (f"unknown keys: {', '.join(unknown)}; " if unknown else "")
                + f"expected exactly: {', '.join(FRAME_KEYS)}"
            )
        missing_attrs = [a for a in REQUIRED_ATTRS if a not in attrs]
        if missing_attrs:
            raise ImportFormatError(
                f"{path} lacks the file attribute(s) {', '.join(missing_attrs)}; required: {', '.join(REQUIRED_ATTRS)}"
            )
        arrays = {k: fh[k][()] for k in (*FRAME_KEYS, *OPTIONAL_KEYS) if k in keys}
    n = len(arrays["energy"])
    numbers = np.asarray(arrays["numbers"])
    if numbers.ndim == 1:
        arrays["numbers"] = np.broadcast_to(numbers, (n, len(numbers)))
    computed = [k for k in FROM_GEOMETRY if k not in arrays]
    if computed:
        arrays.update(_from_geometry(arrays["numbers"], arrays["positions"], attrs, computed))
    for key, value in arrays.items():
        if np.ndim(value) == 0 or len(value) != n:
            raise ImportFormatError(f"{path}: key {key!r} has shape {np.shape(value)}, expected {n} frames along the first axis")
    for attr, expected in (("units", UNITS), ("ao_order", AO_ORDER)):
        if attr in attrs and attrs[attr] != expected:
            raise ImportFormatError(f"{path}: {attr} {attrs[attr]!r} is not the supported {expected!r}")
    return arrays, attrs


def _not_stored(attrs: dict) -> list[str]:
    """The keys a set's ``not_stored`` attribute names (``"hcore,overlap"`` -> ``["hcore", "overlap"]``)."""
    return sorted(k for k in str(attrs.get("not_stored", "")).replace(" ", "").split(",") if k)


def _from_geometry(numbers, positions, attrs: dict, keys: list[str]) -> dict[str, np.ndarray]:
    """The matrices ``keys`` of every row, from PySCF's integrals at the row's geometry (Å)."""
    from ..molecule import build_mol, one_electron_matrices

    out = {k: [] for k in keys}
    for z, pos in zip(numbers, positions):
        mol = build_mol(z, pos, basis=attrs["basis"], charge=int(attrs.get("charge", 0)), multiplicity=int(attrs.get("multiplicity", 1)))
        matrices = one_electron_matrices(mol)
        for k in keys:
            out[k].append(matrices[k])
    return {k: np.stack(v) for k, v in out.items()}


def import_h5(
    h5_path: str | os.PathLike,
    dataset_path: str | os.PathLike,
    progress: bool = True,
    data_dir: str | os.PathLike | None = None,
) -> FrameStore:
    """Import an HDF5 reference set into a dataset (row ``i`` -> frame ``i``); rerun to resume.

    Parameters
    ----------
    h5_path : path-like
        The HDF5 file, read in place: an existing path, or a bare set name such as
        ``"water_pbe_def2svp_500K.h5"`` looked up in the reference-data folder
        (:func:`~ase_phisnet.data.location.resolve_dataset`).
    dataset_path : path-like
        Dataset directory, created (or resumed if it holds the same set).
    progress : bool
        Show a tqdm bar.
    data_dir : path-like, optional
        The reference-data folder for a bare name (default: ``$PHISNET_DATA``, else
        ``../shared/data`` beside the checkout).

    Returns
    -------
    FrameStore
        The dataset, closed for writing (read access only).
    """
    from tqdm.auto import tqdm

    from .label import file_sha256
    from .location import resolve_dataset

    h5_path = resolve_dataset(h5_path, data_dir)
    arrays, attrs = read_h5(h5_path)
    computed = _not_stored(attrs)
    xc = attrs["xc"]
    method = str(attrs.get("method", "rhf" if str(xc).lower() in ("hf", "rhf") else "rks")).lower()
    meta = make_meta(
        method=method,
        xc=xc,
        basis=attrs["basis"],
        grids_level=attrs["grids_level"],
        conv_tol=attrs["conv_tol"],
        charge=int(attrs.get("charge", 0)),
        multiplicity=int(attrs.get("multiplicity", 1)),
        pyscf_version=str(attrs.get("pyscf_version", "unknown")),
        source=h5_path.name,
        source_sha256=file_sha256(h5_path),
        geometry_source=str(attrs.get("source", "")),
        **({"computed_from_geometry": computed} if computed else {}),
        **({"source_index": [int(i) for i in arrays["source_index"]]} if "source_index" in arrays else {}),
    )
    store = FrameStore.create(dataset_path, meta)
    try:
        existing = set(store.indices())
        rows = tqdm(range(len(arrays["energy"])), desc="import", unit="frame", disable=not progress)
        store.write_frames((i, {k: arrays[k][i] for k in FRAME_KEYS}) for i in rows if i not in existing)
    finally:
        store.close()
    return store
