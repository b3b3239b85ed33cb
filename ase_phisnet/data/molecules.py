"""Starting geometries by name or from a file, and frame files read with clear errors.

Names: the MD17 molecules (``water``, ``ethanol``, ``methane``, ``ammonia``, ``benzene``,
``malondialdehyde``, ``uracil``, ``aspirin``, ``naphthalene``, ``salicylic_acid``, ``toluene``)
and every name :func:`ase.build.molecule` knows (the G2 set: ``H2O``, ``CH3CH2OH``, ``C6H6``, ...).
The MD17 molecules missing from G2 come with GFN2-xTB equilibrium coordinates (optimised with
tblite to max |force| < 1e-3 eV/Å); MD sampling relaxes them anyway.

Examples
--------
>>> from ase_phisnet.data.molecules import get_molecule
>>> get_molecule("water").get_chemical_formula()
'H2O'
>>> get_molecule("uracil").get_chemical_formula()
'C4H4N2O2'
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import numpy as np
from ase import Atoms

from ..errors import GeometryError, MissingFileError

#: Friendly names for G2 molecules.
G2_ALIASES = {
    "water": "H2O",
    "ethanol": "CH3CH2OH",
    "methane": "CH4",
    "ammonia": "NH3",
    "benzene": "C6H6",
}

#: GFN2-xTB equilibrium geometries (Å, centre of mass at the origin) of molecules not in G2.
EXTRA_GEOMETRIES = {
    "malondialdehyde": """
O     1.2956    0.8515    0.0059
C     1.1904   -0.4549    0.0074
C     0.0122   -1.1282    0.0020
C    -1.2235   -0.3996   -0.0060
O    -1.3029    0.8233   -0.0089
H     0.3686    1.2252    0.0001
H     2.1454   -0.9705    0.0134
H    -0.0072   -2.2031    0.0038
H    -2.1412   -1.0097   -0.0096
""",
    "uracil": """
N    -0.3288    1.5161    0.0041
C     0.9005    0.8806    0.0025
N     0.8149   -0.4875   -0.0008
C    -0.3385   -1.2759   -0.0032
C    -1.5655   -0.4963   -0.0021
C    -1.5148    0.8455    0.0015
H    -0.3029    2.5259    0.0066
O     1.9395    1.4906    0.0039
H     1.6981   -0.9863   -0.0020
O    -0.2535   -2.4804   -0.0061
H    -2.4970   -1.0335   -0.0044
H    -2.4036    1.4594    0.0026
""",
    "aspirin": """
C    -1.0054    0.2351    0.1719
C    -0.0931   -0.5803   -0.5077
C    -0.4141   -1.9098   -0.7582
C    -1.6222   -2.4318   -0.3342
C    -2.5325   -1.6273    0.3337
C    -2.2271   -0.3028    0.5739
C    -0.7632    1.6721    0.4616
O    -1.6420    2.4762    0.6355
O     0.5334    1.9924    0.5491
H     0.6381    2.9450    0.6994
O     1.0734   -0.0735   -1.0339
C     2.2483   -0.0863   -0.3617
O     3.2196    0.3705   -0.8868
C     2.2246   -0.7057    1.0120
H     1.8702   -1.7334    0.9570
H     3.2280   -0.6836    1.4261
H     1.5516   -0.1412    1.6538
H     0.2930   -2.5191   -1.3011
H    -1.8555   -3.4665   -0.5339
H    -3.4791   -2.0312    0.6571
H    -2.9241    0.3490    1.0783
""",
    "naphthalene": """
C    -0.0005    0.7099   -0.0003
C    -1.2357    1.3911   -0.0024
C    -2.4147    0.7003   -0.0036
C    -2.4137   -0.7037   -0.0028
C    -1.2338   -1.3928   -0.0009
C     0.0005   -0.7098    0.0004
C     1.2338    1.3928    0.0012
C     2.4137    0.7036    0.0028
C     2.4147   -0.7003    0.0033
C     1.2357   -1.3911    0.0023
H    -1.2315    2.4721   -0.0031
H    -3.3570    1.2288   -0.0051
H    -3.3553   -1.2335   -0.0038
H    -1.2280   -2.4739   -0.0004
H     1.2280    2.4738    0.0009
H     3.3553    1.2335    0.0038
H     3.3570   -1.2288    0.0046
H     1.2315   -2.4721    0.0028
""",
    "salicylic_acid": """
C    -0.2540    0.1668    0.0003
C     0.9711   -0.5324    0.0004
C     0.9481   -1.9301    0.0011
C    -0.2482   -2.6113    0.0021
C    -1.4576   -1.9222    0.0027
C    -1.4573   -0.5468    0.0015
C    -0.2461    1.6287   -0.0015
O     0.7659    2.3118   -0.0018
O    -1.4565    2.1965   -0.0033
H    -1.3620    3.1619   -0.0047
O     2.1562    0.0828   -0.0000
H     2.0081    1.0552   -0.0006
H     1.8925   -2.4508    0.0007
H    -0.2461   -3.6911    0.0026
H    -2.3899   -2.4650    0.0039
H    -2.3835    0.0060    0.0018
""",
    "toluene": """
C     0.0009    0.9404    0.0100
C     1.1947    0.2299    0.0034
C     1.1949   -1.1535   -0.0048
C    -0.0022   -1.8485   -0.0068
C    -1.1977   -1.1508   -0.0007
C    -1.1944    0.2326    0.0075
C     0.0033    2.4394   -0.0040
H     0.0196    2.8015   -1.0328
H    -0.8887    2.8340    0.4771
H     0.8819    2.8312    0.5036
H     2.1330    0.7671    0.0060
H     2.1323   -1.6909   -0.0082
H    -0.0035   -2.9286   -0.0115
H    -2.1364   -1.6861   -0.0008
H    -2.1316    0.7716    0.0133
""",
}

#: Geometry formats named in error messages (ase.io.read reads many more).
COMMON_FORMATS = "xyz, extxyz, traj, pdb, cif, sdf, mol, gen, POSCAR/CONTCAR, Gaussian/ORCA input"


def molecule_names() -> list[str]:
    """The friendly names :func:`get_molecule` accepts besides ASE's own molecule names."""
    return sorted(set(G2_ALIASES) | set(EXTRA_GEOMETRIES))


def _ase_names() -> list[str]:
    from ase.collections import g2

    return list(g2.names)


def _parse_geometry(block: str) -> Atoms:
    symbols, positions = [], []
    for line in block.strip().splitlines():
        s, x, y, z = line.split()
        symbols.append(s)
        positions.append([float(x), float(y), float(z)])
    return Atoms(symbols=symbols, positions=np.array(positions))


def _looks_like_path(text: str) -> bool:
    return os.sep in text or (os.altsep is not None and os.altsep in text) or Path(text).suffix != ""


def get_molecule(name_or_path: str | os.PathLike) -> Atoms:
    """Atoms of a named molecule, or the first structure of a geometry file.

    Parameters
    ----------
    name_or_path : str or path-like
        A name (case-insensitive; see :func:`molecule_names`, or any :func:`ase.build.molecule`
        name such as ``"CH3CH2OH"``), or a file :func:`ase.io.read` reads (xyz, extxyz, traj, ...).
        An existing file takes precedence over a name.

    Returns
    -------
    ase.Atoms
        Positions in Å, no cell, no periodicity.

    Raises
    ------
    GeometryError
        For an unknown name or an unreadable file, naming what is accepted.
    FileNotFoundError
        For a path-like argument (with a directory or an extension) that does not exist.
    """
    text = os.fspath(name_or_path)
    path = Path(text)
    if path.is_file():
        return read_frames(path, index=0)[0]
    if path.is_dir():
        raise GeometryError(f"{text} is a directory, not a geometry file ({COMMON_FORMATS}, or any format ase.io.read reads)")
    key = text.strip().lower().replace("-", "_").replace(" ", "_")
    if key in G2_ALIASES:
        return _ase_molecule(G2_ALIASES[key])
    if key in EXTRA_GEOMETRIES:
        return _parse_geometry(EXTRA_GEOMETRIES[key])
    ase_names = {n.lower(): n for n in _ase_names()}
    if text.strip() in ase_names.values():
        return _ase_molecule(text.strip())
    if key in ase_names:
        return _ase_molecule(ase_names[key])
    if _looks_like_path(text):
        raise MissingFileError(
            f"geometry file {text} does not exist (give an existing file in {COMMON_FORMATS}, "
            f"or a molecule name: {', '.join(molecule_names())})"
        )
    close = difflib.get_close_matches(key, molecule_names() + list(ase_names), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(ase_names.get(c, c)) for c in close)}?" if close else ""
    raise GeometryError(
        f"unknown molecule {text!r}.{hint} Accepted names: {', '.join(molecule_names())}, or any of the "
        f"{len(ase_names)} ase.build.molecule G2 names (e.g. H2O, CH3CH2OH, C6H6; see ase.collections.g2.names); "
        f"or a geometry file ({COMMON_FORMATS}, or any format ase.io.read reads)"
    )


def _ase_molecule(name: str) -> Atoms:
    from ase.build import molecule

    return molecule(name)


def read_frames(path: str | os.PathLike, index=":") -> list[Atoms]:
    """Read structures from a geometry or trajectory file, with a clear error on failure.

    Parameters
    ----------
    path : path-like
        Any file :func:`ase.io.read` reads.
    index : int, slice or str
        Which structures (ASE's ``index`` syntax); default all.

    Returns
    -------
    list of ase.Atoms
        At least one structure.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    GeometryError
        If ASE cannot read it, or it holds no structures.
    """
    import ase.io

    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"geometry file {path} does not exist (expected a file in {COMMON_FORMATS}, or any format ase.io.read reads)")
    if not path.is_file():
        raise GeometryError(f"{path} is not a file; give a geometry file ({COMMON_FORMATS})")
    try:
        frames = ase.io.read(path, index=index)
    except Exception as err:  # ASE raises many types for unreadable files
        if isinstance(err, KeyError) and err.args:  # ASE's lookup of an unknown chemical symbol
            reason = f"unknown element symbol {err.args[0]!r}"
        else:
            reason = " ".join(f"{type(err).__name__}: {err}".split())[:200]
        raise GeometryError(
            f"cannot read geometry file {path} ({reason}); accepted formats: {COMMON_FORMATS}, "
            "or any format ase.io.read reads (named by the file extension)"
        ) from None
    frames = [frames] if isinstance(frames, Atoms) else list(frames)
    if not frames:
        raise GeometryError(f"geometry file {path} holds no structures")
    for i, atoms in enumerate(frames):
        if len(atoms) == 0:
            raise GeometryError(f"structure {i} of {path} has no atoms")
        if not np.all(np.isfinite(atoms.positions)):
            raise GeometryError(f"structure {i} of {path} has NaN or infinite positions")
    return frames
