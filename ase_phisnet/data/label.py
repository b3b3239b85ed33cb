"""Reference labels from PySCF: one closed-shell SCF (RKS or RHF) plus gradient per frame,
optionally with CCSD(T) energies and forces on top of the RHF reference.

:func:`label_frame` labels one geometry; :func:`label_dataset` labels a frames file into a
:class:`~ase_phisnet.data.store.FrameStore`, resumably, optionally in parallel and sharded.

What is stored per frame (units as in the shared HDF5 sets):

* ``fock`` = ``mf.get_fock()`` at the converged density matrix (Hartree), ``overlap`` =
  ``int1e_ovlp``, ``hcore`` = ``mf.get_hcore()`` (kinetic + nuclear attraction, Hartree);
* ``energy`` = ``mf.e_tot`` (Hartree, nuclear repulsion included), ``mo_energy`` (Hartree);
* ``forces`` = minus PySCF's analytic nuclear gradient (Hartree/Bohr);
* ``dipole`` = ``mf.dip_moment(unit="Debye")``; ``converged``; ``scf_cycles``.

With ``method="ccsd(t)"`` the matrices, orbital energies and dipole are those of the RHF
reference (a correlated method has no Fock matrix of its own), while ``energy`` and ``forces``
are all-electron CCSD(T): the targets of transfer learning from a Hartree–Fock Hamiltonian
model (PhiSNet's HF -> CCSD(T) fine-tuning). ``converged`` is then the AND of the SCF, CCSD
and (T)-lambda convergence flags.

Unconverged SCFs are kept with ``converged=False``; :func:`~ase_phisnet.data.splits.make_splits`
leaves them out by default.

Examples
--------
>>> from ase_phisnet.data import label_frame
>>> frame = label_frame([8, 1, 1], [[0, 0, 0.12], [0, 0.76, -0.47], [0, -0.76, -0.47]])  # doctest: +SKIP
>>> frame["fock"].shape                                                              # doctest: +SKIP
(24, 24)
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..atomic_files import atomic_write_text
from ..errors import InputError, LabelError
from ..molecule import one_electron_matrices
from .store import FrameStore, make_meta

#: Reference methods: restricted Kohn–Sham DFT, restricted Hartree–Fock, and CCSD(T) energies
#: and forces on an RHF reference.
METHODS = ("rks", "rhf", "ccsd(t)")
#: Thread-count variables set to 1 for worker processes.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# ---------------------------------------------------------------------------------- settings
def check_settings(
    method: str = "rks",
    xc: str = "pbe",
    basis: str = "def2-svp",
    grids_level: int = 3,
    conv_tol: float = 1e-11,
    charge: int = 0,
    multiplicity: int = 1,
    numbers_list: Sequence[Sequence[int]] = (),
) -> None:
    """Validate labelling settings, and the molecules they will be applied to, before any work.

    Parameters
    ----------
    method, xc, basis, grids_level, conv_tol, charge, multiplicity
        As :func:`label_frame`.
    numbers_list : sequence of sequences of int
        Atomic numbers of the molecules (duplicates are checked once).

    Raises
    ------
    ValueError
        Unknown method or functional, bad grid level or tolerance, open shell.
    ase_phisnet.basis.BasisError
        An element the basis lacks, or an unknown basis.
    ase_phisnet.molecule.ElectronCountError
        A charge/multiplicity that does not fit a molecule's electron count.
    """
    from ase import Atoms
    from ase.data import chemical_symbols

    from ..basis import element_shells
    from ..molecule import check_charge_multiplicity

    if str(method).lower() not in METHODS:
        raise InputError(f"unknown method {method!r}; accepted: {', '.join(METHODS)}")
    if str(method).lower() == "rks":
        from pyscf.dft import libxc

        try:
            libxc.parse_xc(str(xc))
        except Exception:
            raise InputError(
                f"unknown exchange-correlation functional {xc!r}; give a name PySCF/libxc knows "
                "(e.g. pbe, b3lyp, pbe0, blyp, tpss, r2scan)"
            ) from None
        if int(grids_level) != grids_level or not 0 <= int(grids_level) <= 9:
            raise InputError(f"grids level must be an integer 0..9, got {grids_level!r}")
    if not np.isfinite(conv_tol) or conv_tol <= 0:
        raise InputError(f"conv-tol must be a positive number (Hartree), got {conv_tol!r}")
    first_frame: dict[tuple, int] = {}
    for i, numbers in enumerate(numbers_list):
        first_frame.setdefault(tuple(int(z) for z in numbers), i)
    elements = sorted({z for c in first_frame for z in c})
    for z in elements:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PySCF's hint to install basis-set-exchange
                element_shells(basis, z)
        except ValueError as err:
            have = ", ".join(chemical_symbols[e] if 0 < e < len(chemical_symbols) else str(e) for e in elements)
            reason = " ".join(str(err).split())
            raise type(err)(f"{reason}. The frames contain {have}; choose a basis that covers all of them") from None
    for comp, i in first_frame.items():
        try:
            check_charge_multiplicity(comp, charge, multiplicity)
        except ValueError as err:
            formula = Atoms(numbers=list(comp)).get_chemical_formula()
            where = f"frame {i} ({formula})" if len(numbers_list) > 1 else formula
            raise type(err)(f"{where}: {err}") from None
    if int(multiplicity) != 1:
        raise InputError(
            f"multiplicity {multiplicity} is open shell; labeling supports closed shells only "
            "(multiplicity 1, i.e. an even electron count)"
        )


# ---------------------------------------------------------------------------------- one frame
def label_frame(
    numbers: Sequence[int],
    positions,
    method: str = "rks",
    xc: str = "pbe",
    basis: str = "def2-svp",
    grids_level: int = 3,
    conv_tol: float = 1e-11,
    charge: int = 0,
    multiplicity: int = 1,
) -> dict[str, np.ndarray]:
    """Run one closed-shell SCF and its nuclear gradient with PySCF; return a store frame.

    Parameters
    ----------
    numbers : (natm,) sequence of int
        Atomic numbers.
    positions : (natm, 3) array_like
        Cartesian positions, Å.
    method : {"rks", "rhf", "ccsd(t)"}
        ``dft.RKS(mol, xc=xc)``, ``scf.RHF(mol)``, or RHF matrices with CCSD(T) energy and
        forces (:func:`ccsd_t_energy_forces`).
    xc : str
        Exchange-correlation functional (RKS only).
    basis : str
        PySCF basis name (spherical AOs).
    grids_level : int
        PySCF DFT grid level (RKS only).
    conv_tol : float
        SCF energy convergence threshold, Hartree.
    charge, multiplicity : int
        Total charge; multiplicity must be 1 (closed shell).

    Returns
    -------
    dict
        The keys of :data:`ase_phisnet.data.store.FRAME_KEYS`: ``numbers`` (natm,),
        ``positions`` (natm, 3) Å, ``energy`` () Hartree, ``forces`` (natm, 3) Hartree/Bohr,
        ``fock``, ``overlap``, ``hcore`` (nao, nao) Hartree, ``mo_energy`` (nao,) Hartree,
        ``dipole`` (3,) Debye, ``converged`` () bool, ``scf_cycles`` () int.
    """
    from pyscf import dft, scf

    from ..molecule import build_mol

    numbers = np.asarray(numbers, dtype=np.int64).reshape(-1)
    positions = np.asarray(positions, dtype=np.float64)
    check_settings(method, xc, basis, grids_level, conv_tol, charge, multiplicity, [numbers])
    mol = build_mol(numbers, positions, basis=basis, charge=charge, multiplicity=multiplicity)
    if str(method).lower() == "rks":
        mf = dft.RKS(mol, xc=str(xc))
        mf.grids.level = int(grids_level)
    else:
        mf = scf.RHF(mol)
    mf.conv_tol = float(conv_tol)
    mf.verbose = 0
    cycles = [0]

    def count_cycle(envs):
        cycles[0] += 1

    mf.callback = count_cycle
    mf.kernel()
    n_cycles = int(getattr(mf, "cycles", cycles[0]))
    converged = bool(mf.converged)
    if str(method).lower() == "ccsd(t)":
        energy, forces, cc_converged = ccsd_t_energy_forces(mf, conv_tol=conv_tol)
        converged = converged and cc_converged
    else:
        gradient = mf.nuc_grad_method()
        gradient.verbose = 0
        energy, forces = mf.e_tot, -np.asarray(gradient.kernel())
    return {
        "numbers": numbers,
        "positions": positions,
        "energy": np.float64(energy),
        "forces": forces,
        "fock": np.asarray(mf.get_fock()),
        **one_electron_matrices(mol),
        "mo_energy": np.asarray(mf.mo_energy),
        "dipole": np.asarray(mf.dip_moment(unit="Debye", verbose=0)),
        "converged": np.bool_(converged),
        "scf_cycles": np.int64(n_cycles),
    }


def ccsd_t_energy_forces(mf, conv_tol: float = 1e-11) -> tuple[float, np.ndarray, bool]:
    """All-electron CCSD(T) total energy (Hartree) and forces (Hartree/Bohr) on a converged RHF.

    The analytic (T) gradient needs the (T)-modified lambda amplitudes
    (``pyscf.cc.ccsd_t_lambda``); PySCF's ``grad.ccsd_t.Gradients(cc).kernel()`` called
    without them silently falls back to the CCSD lambdas and gives wrong forces (off by
    ~1e-3 Hartree/Bohr for water), so they are passed explicitly here.

    Parameters
    ----------
    mf : pyscf.scf.hf.RHF
        Converged closed-shell Hartree–Fock.
    conv_tol : float
        CCSD energy convergence threshold, Hartree (amplitudes to ``sqrt(conv_tol)``).

    Returns
    -------
    energy : float
        E_HF + E_CCSD + E_(T), nuclear repulsion included.
    forces : (natm, 3) ndarray
        Minus the analytic CCSD(T) nuclear gradient.
    converged : bool
        CCSD amplitudes and (T) lambdas both converged.
    """
    from pyscf import cc
    from pyscf.cc import ccsd_t_lambda
    from pyscf.grad import ccsd_t as ccsd_t_grad

    mycc = cc.CCSD(mf)
    mycc.verbose = 0
    mycc.conv_tol = float(conv_tol)
    mycc.conv_tol_normt = float(np.sqrt(conv_tol))
    mycc.kernel()
    eris = mycc.ao2mo()
    e_t = mycc.ccsd_t(eris=eris)
    lambda_converged, l1, l2 = ccsd_t_lambda.kernel(mycc, eris, mycc.t1, mycc.t2, verbose=0)
    gradient = ccsd_t_grad.Gradients(mycc)
    gradient.verbose = 0
    grad = gradient.kernel(mycc.t1, mycc.t2, l1, l2, eris=eris)
    return float(mycc.e_tot + e_t), -np.asarray(grad), bool(mycc.converged and lambda_converged)


# ---------------------------------------------------------------------------------- shards
def parse_shard(text: str | None) -> tuple[int, int] | None:
    """Parse ``"k/n"`` (1 <= k <= n): this run labels the frames with ``index % n == k - 1``."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise InputError(
            f"--shard must be k/n with integers 1 <= k <= n (e.g. 1/4 ... 4/4), got {text!r}; "
            "shard k labels the frames whose index % n == k-1"
        )
    return int(m.group(1)), int(m.group(2))


def select_indices(n_frames: int, shard: tuple[int, int] | None = None, max_frames: int | None = None) -> list[int]:
    """Frame indices one run labels: the first ``max_frames`` frames, restricted to a shard."""
    if max_frames is not None and int(max_frames) < 1:
        raise InputError(f"--max-frames must be >= 1, got {max_frames}")
    n = n_frames if max_frames is None else min(n_frames, int(max_frames))
    if shard is None:
        return list(range(n))
    k, m = shard
    return [i for i in range(n) if i % m == k - 1]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------- workers
def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)  # the labeler died (e.g. killed): do not keep computing
        time.sleep(0.5)


def _init_worker(parent_pid: int) -> None:
    """Worker initializer: one thread per worker process, exit when the parent dies."""
    for var in THREAD_ENV_VARS:
        os.environ[var] = "1"
    from pyscf import lib

    lib.num_threads(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _label_task(index: int, numbers: np.ndarray, positions: np.ndarray, settings: dict):
    """Label one frame; never raises (a worker error must not stop the other frames)."""
    try:
        return index, label_frame(numbers, positions, **settings), None
    except Exception as err:  # reported per frame by the main process
        return index, None, f"{type(err).__name__}: {err}"


@contextlib.contextmanager
def _single_thread_env():
    """Set the thread-count variables to 1 while worker processes are started."""
    saved = {v: os.environ.get(v) for v in THREAD_ENV_VARS}
    os.environ.update({v: "1" for v in THREAD_ENV_VARS})
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


# ---------------------------------------------------------------------------------- many frames
#: The progress record a labelling run keeps in its dataset directory.
PROGRESS_FILE = "progress.json"


@dataclass
class LabelSummary:
    """Outcome of :func:`label_dataset`."""

    dataset: Path
    selected: int  #: frames this run is responsible for
    already_done: int  #: of those, found in the store at start (resumed)
    labeled: int = 0  #: labelled and written by this run
    unconverged: list = field(default_factory=list)  #: indices labelled with converged=False
    failed: dict = field(default_factory=dict)  #: index -> error message
    seconds: float = 0.0

    def progress_record(self, frames_file: str, shard: tuple[int, int] | None, seconds: float) -> dict:
        """What :data:`PROGRESS_FILE` holds: this shard's frames done of its share, and the pace."""
        done = self.already_done + self.labeled
        pace = seconds / self.labeled if self.labeled else None
        return {
            "frames_file": frames_file,
            "shard": None if shard is None else f"{shard[0]}/{shard[1]}",
            "selected": self.selected,
            "done": done,
            "unconverged": len(self.unconverged),
            "failed": len(self.failed),
            "seconds_per_frame": None if pace is None else round(pace, 2),
            "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }


def label_dataset(
    frames_path: str | os.PathLike,
    dataset_path: str | os.PathLike,
    method: str = "rks",
    xc: str = "pbe",
    basis: str = "def2-svp",
    grids_level: int = 3,
    conv_tol: float = 1e-11,
    charge: int = 0,
    multiplicity: int = 1,
    workers: int = 1,
    shard: str | tuple[int, int] | None = None,
    max_frames: int | None = None,
    progress: bool = True,
) -> LabelSummary:
    """Label the geometries of a frames file into a dataset; rerun to resume.

    Every frame is validated (elements in the basis, electron count, closed shell) before the
    dataset directory is created. Frames already in the dataset are skipped; a dataset made
    with other settings or another frames file is refused. The main process is the only writer;
    each frame is written atomically as soon as it is done, so a killed run loses no finished frame.
    After each frame the run rewrites ``DATASET/progress.json`` (:data:`PROGRESS_FILE`): its
    shard, the frames done of those it labels, unconverged and failed counts, seconds per frame
    (this run's mean) and the time; ``phisnet data info`` shows it.

    Parameters
    ----------
    frames_path : path-like
        Geometries (Å) in any format :func:`ase.io.read` reads; frame ``i`` of the file is
        stored as index ``i``.
    dataset_path : path-like
        Dataset directory (created, or resumed).
    method, xc, basis, grids_level, conv_tol, charge, multiplicity
        As :func:`label_frame`.
    workers : int
        1: label in this process. More: a process pool of single-threaded workers.
    shard : "k/n" or (k, n), optional
        Label only the frames with ``index % n == k - 1``; join shards with
        :func:`~ase_phisnet.data.merge.merge`.
    max_frames : int, optional
        Consider only the first ``max_frames`` frames of the file.
    progress : bool
        Show a tqdm bar (frames/s).

    Returns
    -------
    LabelSummary

    Raises
    ------
    LabelError
        After the run, if some frames failed (the others are stored).
    """
    from tqdm.auto import tqdm

    from .molecules import read_frames

    if int(workers) != workers or workers < 1:
        raise InputError(f"--workers must be an integer >= 1, got {workers!r}")
    shard = parse_shard(shard) if isinstance(shard, (str, type(None))) else parse_shard(f"{shard[0]}/{shard[1]}")
    frames_path = Path(frames_path)
    frames = read_frames(frames_path)
    selected = select_indices(len(frames), shard, max_frames)
    method = str(method).lower()
    settings = dict(method=method, xc=xc, basis=basis, grids_level=grids_level, conv_tol=conv_tol, charge=charge, multiplicity=multiplicity)
    check_settings(**settings, numbers_list=[frames[i].numbers for i in selected])

    meta = make_meta(source=frames_path.name, source_sha256=file_sha256(frames_path), **settings)
    store = FrameStore.create(dataset_path, meta)
    t0 = time.perf_counter()
    try:
        todo = [i for i in selected if i not in store]
        summary = LabelSummary(Path(dataset_path), selected=len(selected), already_done=len(selected) - len(todo))
        bar = tqdm(total=len(selected), initial=summary.already_done, desc="label", unit="frame", disable=not progress, smoothing=0.1)

        def record_progress():
            record = summary.progress_record(frames_path.name, shard, time.perf_counter() - t0)
            atomic_write_text(Path(dataset_path) / PROGRESS_FILE, json.dumps(record, indent=2) + "\n")

        record_progress()

        def store_result(index, frame, error):
            if error is not None:
                summary.failed[index] = error
            else:
                store.write_frame(index, frame)
                summary.labeled += 1
                if not bool(frame["converged"]):
                    summary.unconverged.append(index)
            record_progress()
            bar.update(1)
            if summary.unconverged or summary.failed:
                bar.set_postfix(unconverged=len(summary.unconverged), failed=len(summary.failed), refresh=False)

        if workers == 1 or len(todo) <= 1:
            for i in todo:
                store_result(*_label_task(i, frames[i].numbers, frames[i].positions, settings))
        else:
            _run_pool(todo, frames, settings, int(workers), store_result)
        bar.close()
    finally:
        store.close()
    summary.seconds = time.perf_counter() - t0
    if summary.failed:
        first = min(summary.failed)
        raise LabelError(
            f"{len(summary.failed)} of {len(selected)} frames failed (first: frame {first}: {summary.failed[first]}); "
            f"{summary.already_done + summary.labeled} frames are stored in {dataset_path}; rerun the same command to retry"
        )
    return summary


def _run_pool(todo: list[int], frames, settings: dict, workers: int, store_result) -> None:
    """Label ``todo`` in a spawn-started process pool; results are written here, in the main process."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fork after OpenMP/BLAS use can deadlock
    with _single_thread_env():
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),))
        try:
            futures = [pool.submit(_label_task, i, frames[i].numbers, frames[i].positions, settings) for i in todo]
            for future in cf.as_completed(futures):
                store_result(*future.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
