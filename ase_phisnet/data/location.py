"""Where the shared HDF5 reference sets live: one rule for the package, the CLI and the tests.

The reference-set folder is, in this order:

1. an explicit ``data_dir`` argument (the CLI's ``--data-dir``);
2. the environment variable ``PHISNET_DATA``;
3. ``../shared/data`` beside the checkout, i.e. ``<repository>/../shared/data`` where
   ``<repository>`` is the parent of the package folder (only when running from a checkout);
4. ``../shared/data`` relative to the current working directory.

An explicit folder (1 or 2) is used as given, never replaced by a default: if it does not exist,
:func:`reference_data_dir` says so and names where the value came from.

Examples
--------
>>> import os
>>> from ase_phisnet.data.location import ENV_VAR, reference_data_dir
>>> ENV_VAR
'PHISNET_DATA'
>>> reference_data_dir("my_sets", must_exist=False).name
'my_sets'
>>> from ase_phisnet.data.location import reference_set
>>> path = reference_set("water_pbe_def2svp_500K.h5")  # doctest: +SKIP
>>> path.name                                            # doctest: +SKIP
'water_pbe_def2svp_500K.h5'
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError, MissingFileError, ReferenceDataError

#: Environment variable naming the reference-set folder.
ENV_VAR = "PHISNET_DATA"

#: The documented default, relative to the checkout's root or to the working directory.
DEFAULT_RELATIVE = Path("..") / "shared" / "data"

#: Suffixes tried, in order, when a bare set name has none (``water_pbe_def2svp_500K``).
SET_SUFFIXES = (".h5", ".hdf5")


def portable_path(path: str | os.PathLike) -> str:
    """``path`` for a record that travels with a model: no machine's folders in it.

    Relative to the working directory when inside it; a relative path outside it as given; an
    absolute path outside it by its file name only.

    Examples
    --------
    >>> import os
    >>> portable_path(os.path.join(os.getcwd(), "runs", "water"))
    'runs/water'
    >>> portable_path("../shared/data/water_pbe_def2svp_500K.h5")
    '../shared/data/water_pbe_def2svp_500K.h5'
    """
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name if path.is_absolute() else str(path)


def checkout_root() -> Path | None:
    """The repository root when the package runs from a checkout, else ``None``.

    Returns
    -------
    pathlib.Path or None
        The parent of the package folder if it holds the project's ``pyproject.toml``
        (an installed package has none beside it).
    """
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """The folders :func:`reference_data_dir` considers, in order, with where each came from.

    Parameters
    ----------
    data_dir : path-like, optional
        An explicit folder; if given (or if ``PHISNET_DATA`` is set) it is the only candidate.

    Returns
    -------
    list of (pathlib.Path, str)
        Each folder and a short description of its origin (for error messages).
    """
    if data_dir is not None and str(data_dir) != "":
        return [(Path(data_dir).expanduser(), "the data_dir argument (--data-dir)")]
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return [(Path(env).expanduser(), f"the environment variable {ENV_VAR}")]
    out = []
    root = checkout_root()
    if root is not None:
        out.append(((root / DEFAULT_RELATIVE).resolve(), "../shared/data beside the checkout"))
    cwd_default = (Path.cwd() / DEFAULT_RELATIVE).resolve()
    if all(cwd_default != path for path, _ in out):
        out.append((cwd_default, "../shared/data relative to the working directory"))
    return out


def reference_data_dir(data_dir: str | os.PathLike | None = None, *, must_exist: bool = True) -> Path:
    """The folder of the shared HDF5 reference sets.

    Parameters
    ----------
    data_dir : path-like, optional
        An explicit folder (the CLI's ``--data-dir``); overrides ``PHISNET_DATA`` and the defaults.
    must_exist : bool
        Raise if no candidate folder exists. With ``False`` the first candidate is returned
        whether it exists or not (for messages and test fixtures).

    Returns
    -------
    pathlib.Path
        The folder (the first existing candidate of :func:`candidate_dirs`).

    Raises
    ------
    ReferenceDataError
        If ``must_exist`` and none of the candidates is a directory; the message lists them.
    """
    candidates = candidate_dirs(data_dir)
    for path, _ in candidates:
        if path.is_dir():
            return path
    if not must_exist:
        return candidates[0][0]
    tried = "; ".join(f"{path} ({origin})" for path, origin in candidates)
    raise ReferenceDataError(
        f"reference-data folder not found; tried: {tried}. "
        f"Set {ENV_VAR}=/path/to/data or pass --data-dir, or place the sets in ../shared/data beside the checkout"
    )


def available_sets(data_dir: str | os.PathLike | None = None) -> list[str]:
    """File names of the HDF5 sets in the reference-data folder (sorted; empty if it is missing)."""
    try:
        folder = reference_data_dir(data_dir)
    except ReferenceDataError:
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in SET_SUFFIXES)


def reference_set(name: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Path:
    """The path of one reference set, by file name, in the reference-data folder.

    Parameters
    ----------
    name : str or path-like
        A bare file name such as ``"water_pbe_def2svp_500K.h5"`` (the suffix ``.h5`` may be
        left out).
    data_dir : path-like, optional
        An explicit folder; see :func:`reference_data_dir`.

    Returns
    -------
    pathlib.Path
        The existing file.

    Raises
    ------
    InputError
        If ``name`` has a directory part (use the path itself then); a ``ValueError``.
    ReferenceDataError
        If the folder or the set is missing; the message lists the sets that are there.
    """
    name = str(name)
    if name in ("", ".", "..") or Path(name).name != name:
        raise InputError(f"reference set name {name!r} must be a bare file name such as 'water_pbe_def2svp_500K.h5', not a path")
    folder = reference_data_dir(data_dir)
    tries = [name] if Path(name).suffix in SET_SUFFIXES else [name, *(name + s for s in SET_SUFFIXES)]
    for candidate in tries:
        path = folder / candidate
        if path.is_file():
            return path
    sets = available_sets(folder)
    raise ReferenceDataError(
        f"reference set {name!r} not found in {folder}; available: {', '.join(sets) if sets else 'none'}"
    )


def resolve_dataset(path_or_name: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Path:
    """A reference set given as a path or as a bare name in the reference-data folder.

    Parameters
    ----------
    path_or_name : str or path-like
        An existing file or directory is returned as it is; otherwise a bare file name is
        looked up with :func:`reference_set`.
    data_dir : path-like, optional
        An explicit folder for bare names; see :func:`reference_data_dir`.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    MissingFileError
        If ``path_or_name`` is a path (has a directory part) that does not exist, or a bare
        name found neither in the working directory nor in the reference-data folder
        (:class:`ReferenceDataError`); both are ``FileNotFoundError``.
    """
    path = Path(path_or_name).expanduser()
    if path.exists():
        return path
    if path.name != str(path_or_name):
        raise MissingFileError(f"{path_or_name} does not exist (a bare set name such as 'water_pbe_def2svp_500K.h5' is looked up in the reference-data folder)")
    try:
        return reference_set(path.name, data_dir)
    except ReferenceDataError as err:
        raise ReferenceDataError(f"{path_or_name} is not an existing file, and as a set name: {err}") from None
