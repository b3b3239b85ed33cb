"""Frames as training batches: positions in Bohr, target matrices in the model's irreps order.

Frames come from a dataset folder (:class:`ase_phisnet.data.FrameStore`) or straight from one of
the shared HDF5 reference sets (read in place, never copied), or from a list of them, read as
one set (their union, in the order given).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from ..basis import AOBasis
from ..errors import DatasetError, MissingFileError
from ..molecule import formula
from ..units import BOHR

#: Reference settings that the sets of a union must share.
SHARED_SETTINGS = ("method", "xc", "basis", "grids_level", "conv_tol", "charge", "multiplicity")

#: Frame keys a matrix head can be trained on, by head name (``hcore`` is shifted, see
#: :func:`ase_phisnet.training.energy_forces.effective_core_target`).
TARGET_KEYS = {"fock": "fock", "overlap": "overlap", "hcore": "hcore"}


def load_frames(path) -> tuple[list[dict], dict]:
    """All frames of a dataset folder or a shared-format ``.h5`` file, and the set's metadata.

    Frames are dicts of arrays with the keys and units of the shared data README (positions Å,
    matrices Hartree, PySCF order) plus ``index``, the frame's index in its dataset. The metadata
    are the dataset's ``dataset.json`` or the HDF5 file attributes (method, xc, basis, grid, ...).
    A list of paths is read as one set: see :func:`load_union`.
    """
    if isinstance(path, (list, tuple)):
        return load_union(path)
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"dataset {path} does not exist (a dataset folder from 'phisnet data' or a reference .h5 file)")
    if path.is_dir():
        from ..data import FrameStore

        store = FrameStore.open(path)
        frames = store.read_all()
        for index, frame in zip(store.indices(), frames):
            frame["index"] = index
        return frames, dict(store.meta)
    from ..data.importer import read_h5

    arrays, attrs = read_h5(path)
    frames = [{k: v[i] for k, v in arrays.items()} | {"index": i} for i in range(len(arrays["energy"]))]
    return frames, {"method": "rks", **attrs, "source": path.name}


def load_union(paths) -> tuple[list[dict], dict]:
    """The frames of several sets as one: in the order given, ``index`` counting through all of
    them (what a model's splits record), ``dataset`` and ``dataset_index`` naming each frame's
    set and its index there. The metadata are the first set's, with ``source`` naming every set.

    Raises
    ------
    DatasetError
        The list is empty, or the sets differ in a reference setting (:data:`SHARED_SETTINGS`):
        one model is trained on one method.
    """
    if not paths:
        raise DatasetError("an empty list of datasets: give one dataset, or a list of datasets labelled alike")
    frames, first = [], None
    for path in paths:
        part, meta = load_frames(path)
        settings = _settings(meta)
        if first is None:
            first, first_path, first_settings = meta, path, settings
        elif settings != first_settings:
            differ = ", ".join(f"{k} {first_settings[k]!r} against {settings[k]!r}" for k in SHARED_SETTINGS if settings[k] != first_settings[k])
            raise DatasetError(f"{path} is not labelled like {first_path} ({differ}); a list of datasets must share {', '.join(SHARED_SETTINGS)}")
        for frame in part:
            frame["dataset"], frame["dataset_index"], frame["index"] = Path(path).name, frame["index"], len(frames)
            frames.append(frame)
    return frames, {**first, "source": " + ".join(Path(p).name for p in paths)}


def _settings(meta: dict) -> dict:
    """A set's reference settings (:data:`SHARED_SETTINGS`), normalised as a dataset's metadata is
    (:func:`~ase_phisnet.data.store.make_meta`), so that equal settings compare equal."""
    from ..data.store import make_meta

    normal = make_meta(pyscf_version="", **{k: meta[k] for k in SHARED_SETTINGS if meta.get(k) is not None})
    return {k: normal[k] for k in SHARED_SETTINGS}


class MatrixData:
    """Frames prepared for the model: Bohr positions, irreps-order target tensors.

    Parameters
    ----------
    frames : list of dict
        From :func:`load_frames`.
    basis : AOBasis
        The model's basis (sets the AO order conversion).
    targets : sequence of str
        Matrix heads with targets (``fock``, ``overlap``, ``hcore``). The ``hcore`` target is
        the effective core Hamiltonian of the reference energy, not the stored ``hcore``.
    charge : int
        Total charge of the frames (for the electron count of the ``hcore`` target).
    core_baseline : bool
        The model adds the exact h(R) = T + V_nuc to its ``hcore`` head, so the head's target
        is the effective core Hamiltonian minus the stored ``hcore``.

    Attributes
    ----------
    energies : (n,) float64 tensor
        Reference total energies, Hartree.
    forces : list of (natm, 3) float64 tensors
        Reference forces, Hartree/Bohr.
    occupied_eps : list of (n_occ,) float64 tensors
        Reference occupied orbital energies (Hartree) from the stored Fock and overlap.
    """

    def __init__(self, frames: list[dict], basis: AOBasis, targets=("fock",), charge: int = 0, core_baseline: bool = False):
        from .energy_forces import effective_core_target

        self.basis = basis
        self.targets = list(targets)
        self.numbers = [np.asarray(f["numbers"], dtype=int) for f in frames]
        self.positions = [torch.as_tensor(np.asarray(f["positions"]) / BOHR) for f in frames]

        def target(frame, name):
            if name == "hcore":
                return effective_core_target(frame, charge) - (np.asarray(frame["hcore"]) if core_baseline else 0.0)
            return frame[TARGET_KEYS[name]]

        self.matrices = {t: [torch.as_tensor(basis.to_irreps_order(target(f, t), z)) for f, z in zip(frames, self.numbers)] for t in self.targets}
        self.energies = torch.tensor([float(f["energy"]) for f in frames], dtype=torch.float64) if frames and "energy" in frames[0] else None
        self.forces = [torch.as_tensor(np.array(f["forces"], dtype=np.float64)) for f in frames] if frames and "forces" in frames[0] else None
        self.charge = int(charge)
        self.frames = frames

    @cached_property
    def occupied_eps(self) -> list[torch.Tensor] | None:
        """Reference occupied orbital energies, diagonalised on first use (only the
        orbital-energy loss needs them)."""
        if not self.frames or "fock" not in self.frames[0]:
            return None
        return [torch.as_tensor(_occupied_eps(f, self.charge)) for f in self.frames]

    def __len__(self) -> int:
        return len(self.numbers)

    def batch(self, indices, model):
        """(graph, padded target matrices, AO mask) for positions ``indices`` of this set."""
        param = next(model.parameters())
        graph = model.graph([self.numbers[i] for i in indices], [self.positions[i] for i in indices])
        n = graph.max_ao
        targets = {}
        for t in self.targets:
            out = torch.zeros(len(indices), n, n, dtype=param.dtype)
            for b, i in enumerate(indices):
                m = self.matrices[t][i]
                out[b, : m.shape[0], : m.shape[1]] = m
            targets[t] = out.to(param.device)
        ao = torch.arange(n, device=param.device)
        valid = ao[None, :] < graph.n_ao[:, None]
        mask = valid[:, :, None] & valid[:, None, :]
        return graph, targets, mask

    def diagonal_references(self, indices) -> dict[str, dict[int, np.ndarray]]:
        """Rotation-invariant mean one-centre blocks per element, irreps order (Hartree).

        For each target and element: the mean over ``indices`` of each atom's diagonal block,
        reduced to its invariant part, a constant times the identity on every shell pair with
        equal l (the trace over m divided by 2l+1) and zero elsewhere.
        """
        refs = {}
        for t in self.targets:
            sums, counts = {}, {}
            for i in indices:
                z = self.numbers[i]
                m = self.matrices[t][i].numpy()
                for zz, sl in zip(z, self.basis.ao_slices(z)):
                    sums[zz] = sums.get(zz, 0) + m[sl, sl]
                    counts[zz] = counts.get(zz, 0) + 1
            refs[t] = {int(zz): _invariant_part(sums[zz] / counts[zz], self.basis.shell_ls[zz]) for zz in sums}
        return refs


def _occupied_eps(frame: dict, charge: int) -> np.ndarray:
    from scipy.linalg import eigh

    n_occ = (int(np.sum(frame["numbers"])) - int(charge)) // 2
    return eigh(np.asarray(frame["fock"], dtype=np.float64), np.asarray(frame["overlap"], dtype=np.float64), eigvals_only=True)[:n_occ]


def _invariant_part(block: np.ndarray, shells) -> np.ndarray:
    out = np.zeros_like(block)
    starts = np.concatenate([[0], np.cumsum([2 * l + 1 for l in shells])])
    for a, la in enumerate(shells):
        for b, lb in enumerate(shells):
            if la == lb:
                sa, sb = slice(starts[a], starts[a + 1]), slice(starts[b], starts[b + 1])
                out[sa, sb] = np.trace(block[sa, sb]) / (2 * la + 1) * np.eye(2 * la + 1)
    return out


def molecule_counts(numbers_list) -> dict[str, int]:
    """Frames per molecule (Hill formula, :func:`ase_phisnet.molecule.formula`).

    Stored in a model's metadata as ``training_range["molecules"]``: the molecules a model was
    trained on, by which the commands pick a shipped model (:func:`ase_phisnet.model.io.shipped_model_for`).

    Examples
    --------
    >>> molecule_counts([[8, 1, 1], [1, 8, 1], [6, 6, 8, 1, 1, 1, 1, 1, 1]])
    {'H2O': 2, 'C2H6O': 1}
    """
    counts: dict[str, int] = {}
    for numbers in numbers_list:
        name = formula(numbers)
        counts[name] = counts.get(name, 0) + 1
    return counts


def pair_distance_range(numbers_list, positions_list) -> dict[str, list[float]]:
    """Shortest and longest distance (Å) of each element pair over a set of molecules.

    Keys are ``"Z1-Z2"`` with ``Z1 <= Z2``; positions in Å. Stored in a model's metadata as
    ``training_range`` so the calculator can warn when a geometry leaves it.
    """
    ranges: dict[str, list[float]] = {}
    for numbers, pos in zip(numbers_list, positions_list):
        numbers, pos = np.asarray(numbers), np.asarray(pos, dtype=float)
        i, j = np.triu_indices(len(numbers), k=1)
        d = np.linalg.norm(pos[i] - pos[j], axis=-1)
        for a, b, dist in zip(numbers[i], numbers[j], d):
            key = f"{min(a, b)}-{max(a, b)}"
            lo, hi = ranges.get(key, (np.inf, -np.inf))
            ranges[key] = [min(lo, float(dist)), max(hi, float(dist))]
    return ranges
