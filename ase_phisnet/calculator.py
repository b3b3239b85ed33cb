"""The ASE calculator: PhiSNet's predicted Hamiltonian, diagonalized at every step.

Energies in eV, forces in eV/Å, dipole in e·Å (ASE's units). The AO matrices under
``results`` are in PySCF's AO order and atomic units, so they drop straight into PySCF:

======================== ======================================================= =========
key                      what                                                    unit
======================== ======================================================= =========
``hamiltonian``          predicted Fock/KS matrix F~                             Hartree
``overlap``              S (exact from PySCF integrals, or predicted)            --
``density_matrix``       closed-shell P = 2 C_occ C_occ^T                        --
``mo_coeff``             C, columns S-orthonormal                                --
``mo_energy``            orbital energies                                        Hartree
``homo_lumo_gap``        eps_LUMO - eps_HOMO                                     eV
``hamiltonian_energy``   the energy without a learned energy correction          eV
======================== ======================================================= =========

Everything comes from one electronic-state step (:func:`ase_phisnet.electronic.electronic_state`).
The energy, E = E_nn + 1/2 tr[P (F~ + H~core)], needs a model with an H~core head trained
through energies; a model trained on F~ alone gives orbitals, density, dipole and charges, and
says so when asked for an energy. A model with a learned energy correction
(:mod:`ase_phisnet.model.readout`) adds it to ``energy`` and the forces; ``hamiltonian_energy``
is what the predicted Hamiltonian alone gives (equal to ``energy`` without a correction).

Examples
--------
>>> from ase.build import molecule
>>> from ase_phisnet import PhiSNetCalculator
>>> atoms = molecule("H2O")
>>> atoms.calc = PhiSNetCalculator("water-pbe-def2svp")
>>> round(atoms.get_potential_energy(), 1)  # eV
-2075.5
>>> atoms.calc.set(dtype="float32")   # reloads the model: the network in float32
{'dtype': 'float32'}
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.data import chemical_symbols

from .electronic import IntegralCache, electronic_states
from .electronic.analytic import electronic_step
from .electronic.properties import dipole_moment, mulliken_charges
from .errors import InputError
from .model.io import load_model, shipped_model_for
from .molecule import check_charge_multiplicity
from .native import NativePhiSNet, NativeUnavailable
from .units import BOHR, HARTREE

#: Two atoms closer than this (Å) are refused: no training set has them, and the AO basis
#: becomes near-linearly dependent.
MIN_DISTANCE = 0.5

#: Parameters whose change loads the model again.
MODEL_PARAMETERS = ("model", "device", "dtype", "engine")

#: Engines that evaluate the network (the calculator's ``engine`` parameter).
ENGINES = ("auto", "native", "torch")


_WARNED: set[str] = set()


def _interatomic_distances(positions: np.ndarray) -> np.ndarray:
    """All distances between the atoms, (natm, natm), in the units of ``positions``."""
    return np.sqrt(((positions[:, None] - positions[None]) ** 2).sum(-1))


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, stacklevel=3)


class PhiSNetCalculator(Calculator):
    """ASE calculator driven by a PhiSNet Hamiltonian model.

    Parameters
    ----------
    model : str or path or PhiSNet
        Shipped model name (``"water-pbe-def2svp"``), a model folder, or a loaded model.
    device : str
        ``"cpu"`` or ``"cuda"``.
    dtype : str
        Precision of the network: ``"float64"`` (default; what finite-difference-exact forces
        need) or ``"float32"`` (mixed precision: the network in float32, the electronic step and
        the integral contractions in float64, so that the energy keeps µEh resolution).
    charge, multiplicity : int
        Total charge and 2S+1. Closed shell only: multiplicity 1.
    overlap : {"exact", "predicted"}
        S from PySCF's integrals (default) or the model's S~ head.
    engine : {"auto", "native", "torch"}
        What evaluates the network. ``"native"``: the compiled engine
        (:mod:`ase_phisnet.native`, CPU), the same numbers several times faster; ``"torch"``: the
        PyTorch model; ``"auto"`` (default): native on the CPU where it is built, else torch
        (with one warning on the CPU when the engine is not built).

    ``set()`` of ``model``, ``device``, ``dtype`` or ``engine`` loads the model again; any
    change of a parameter discards the results.
    """

    implemented_properties = ["energy", "free_energy", "forces", "dipole", "charges"]
    default_parameters = dict(model="water-pbe-def2svp", device="cpu", dtype="float64", charge=0, multiplicity=1, overlap="exact", engine="auto")
    #: ASE's switch: any changed parameter discards the results (``set`` calls ``reset``).
    discard_results_on_any_change = True

    def __init__(self, model=None, **kwargs):
        self.model = None
        self.network = None  # NativePhiSNet, or None for the torch model
        self._shortest_seen = None  # training range per element pair (check_training_range)
        self._integrals = None
        self._graph_cache = (None, None)
        if model is not None:
            kwargs["model"] = model
        super().__init__(**kwargs)
        if self.model is None:  # every parameter at its default
            self._load_model()

    # ------------------------------------------------------------------ parameters
    def set(self, **kwargs):
        unknown = sorted(set(kwargs) - set(self.default_parameters))
        if unknown:
            raise InputError(f"unknown parameter(s) {unknown}; PhiSNetCalculator takes {sorted(self.default_parameters)}")
        self._check_values({**self.parameters, **kwargs})
        changed = super().set(**kwargs)
        if self.model is None or set(changed) & set(MODEL_PARAMETERS):
            self._load_model()
        elif set(changed) & {"charge", "overlap"}:
            self._check_model()
        if "charge" in changed:
            self._integrals = None
        return changed

    def todict(self, skip_default=True):
        """The parameters as ASE writes them into trajectories: a loaded model by its class name."""
        params = super().todict(skip_default)
        if isinstance(params.get("model"), torch.nn.Module):
            params["model"] = f"<{type(params['model']).__name__} object>"
        return params

    @staticmethod
    def _check_values(p) -> None:
        if p["dtype"] not in ("float32", "float64"):
            raise InputError(f"dtype must be 'float32' or 'float64', got {p['dtype']!r}")
        if p["engine"] not in ENGINES:
            raise InputError(f"engine must be one of {', '.join(map(repr, ENGINES))}, got {p['engine']!r}")
        if p["overlap"] not in ("exact", "predicted"):
            raise InputError(f"overlap must be 'exact' or 'predicted', got {p['overlap']!r}")
        if int(p["multiplicity"]) != 1:
            raise InputError(f"multiplicity {p['multiplicity']} asked for; PhiSNetCalculator is closed-shell only (multiplicity 1)")

    def _load_model(self) -> None:
        p = self.parameters
        model, dtype = p["model"], getattr(torch, p["dtype"])
        if isinstance(model, torch.nn.Module):
            self.model = model.to(device=p["device"], dtype=dtype)
        else:
            self.model = load_model(model, device=p["device"], dtype=dtype)
        self._integrals = None
        self._graph_cache = (None, None)
        self._check_model()
        self.network = self._native_network()
        self._shortest_seen = self._training_range_table()

    def _native_network(self):
        """The compiled engine for the loaded model, as the ``engine`` parameter asks."""
        engine = self.parameters["engine"]
        if engine == "torch" or (engine == "auto" and self.parameters["device"] != "cpu"):
            return None
        try:
            return NativePhiSNet(self.model)
        except NativeUnavailable as error:
            if engine == "native":
                raise InputError(f"engine='native': {error}") from None
            _warn_once(f"{error}; the calculator runs the network on torch, several times slower")
            return None

    def _check_model(self) -> None:
        p, heads = self.parameters, self.model.config.heads
        if p["overlap"] == "predicted" and "overlap" not in heads:
            raise InputError(f"overlap='predicted' needs a model with an overlap head; this one has {heads}")
        trained_charge = getattr(self.model, "metadata", {}).get("reference", {}).get("charge", 0) or 0
        if int(p["charge"]) != int(trained_charge):
            raise InputError(f"charge {p['charge']} asked for; this model was trained on charge {trained_charge} molecules only")

    # ------------------------------------------------------------------ input checks
    def check_atoms(self, atoms) -> np.ndarray:
        """Refuse what the model cannot describe, with the reason and what is accepted.

        Returns the interatomic distances (Å), which the other checks and the pair list reuse.
        """
        numbers = atoms.get_atomic_numbers()
        unsupported = sorted(set(numbers.tolist()) - set(self.model.elements))
        if unsupported:
            try:
                hint = f"; PhiSNetCalculator(model={shipped_model_for(numbers)!r}) was trained on this molecule"
            except InputError as error:
                hint = f"; {error}"
            raise InputError(
                f"element(s) {', '.join(chemical_symbols[z] for z in unsupported)} not supported; "
                f"this model covers {', '.join(chemical_symbols[z] for z in self.model.elements)}{hint}"
            )
        if atoms.pbc.any():
            raise InputError("periodic cells are not supported: PhiSNetCalculator is for molecules (set atoms.pbc = False)")
        pos = atoms.get_positions()
        if not np.all(np.isfinite(pos)):
            raise InputError("atomic positions contain NaN or infinite values")
        distances = _interatomic_distances(pos)
        if len(atoms) > 1:
            d = distances + np.eye(len(atoms)) * 1e9
            i, j = np.unravel_index(np.argmin(d), d.shape)
            if d[i, j] < MIN_DISTANCE:
                raise InputError(f"atoms {i} and {j} are {d[i, j]:.3f} Å apart; PhiSNetCalculator needs at least {MIN_DISTANCE} Å")
        check_charge_multiplicity(numbers, self.parameters.charge, 1)
        return distances

    def check_training_range(self, atoms, distances: np.ndarray | None = None) -> None:
        """Warn when an element pair is closer than any pair of that kind seen in training.

        The range is the model's ``metadata["training_range"]`` (shortest distance per element
        pair, Å); a model without that record is not checked. ``distances`` (Å), if given, are
        the molecule's interatomic distances.
        """
        if len(atoms) < 2 or self._shortest_seen is None:
            return
        numbers = atoms.get_atomic_numbers()
        if distances is None:
            distances = _interatomic_distances(atoms.get_positions())
        index = np.searchsorted(self.model.elements, numbers)
        low = self._shortest_seen[index[:, None], index[None, :]]  # nan: a pair training never had
        i, j = np.triu_indices(len(atoms), k=1)
        outside = ~(distances[i, j] >= low[i, j])
        for a, b in zip(i[outside], j[outside]):
            pair = f"{chemical_symbols[numbers[a]]}-{chemical_symbols[numbers[b]]}"
            if np.isnan(low[a, b]):
                warnings.warn(f"atoms {a} and {b} form a {pair} pair, which the training data never had; the prediction is an extrapolation", stacklevel=3)
            else:
                warnings.warn(
                    f"atoms {a} and {b} ({pair}) are {distances[a, b]:.3f} Å apart, shorter than any such pair in training "
                    f"({low[a, b]:.3f} Å): the geometry is outside the training range and the prediction is an extrapolation",
                    stacklevel=3,
                )

    def _training_range_table(self) -> np.ndarray | None:
        """The model's shortest training distance (Å) per element pair as a matrix over its
        elements (nan for a pair never seen), or None for a model without the record."""
        seen = getattr(self.model, "metadata", {}).get("training_range", {}).get("pair_distance_A")
        if not seen:
            return None
        elements = list(self.model.elements)
        table = np.full((len(elements), len(elements)), np.nan)
        for a, za in enumerate(elements):
            for b, zb in enumerate(elements):
                low = seen.get(f"{min(za, zb)}-{max(za, zb)}", [None])[0]
                if low is not None:
                    table[a, b] = low
        return table

    def _graph(self, numbers, R: torch.Tensor, system_changes):
        """The model's graph at ``R`` (Bohr). Its bookkeeping is kept while only the positions
        change and the pairs within the cutoff stay the same (every step of an MD run of a
        small molecule)."""
        with torch.no_grad():
            pairs = (torch.cdist(R, R) < self.model.config.cutoff).cpu().numpy()
        key = (tuple(numbers.tolist()), pairs.tobytes())
        cached_key, graph = self._graph_cache
        if key != cached_key or "numbers" in system_changes:
            graph = self.model.graph([numbers], [R])
            self._graph_cache = (key, graph)
            return graph
        return graph.with_positions(R)

    # ------------------------------------------------------------------ the calculation
    def check_state(self, atoms, tol=1e-15):
        """ASE's check for changes since the last calculation, answered at once when nothing
        changed at all: reading the energy after the forces of one step (every MD step) then
        costs no element-wise tolerance comparison. Bit-equal arrays are equal within any
        tolerance, so the answer is ASE's."""
        old = self.atoms
        if (
            old is not None
            and old.arrays.keys() == atoms.arrays.keys()
            and all(np.array_equal(value, atoms.arrays[key]) for key, value in old.arrays.items())
            and np.array_equal(old.cell.array, atoms.cell.array)
            and np.array_equal(old.pbc, atoms.pbc)
        ):
            return []
        return super().check_state(atoms, tol)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if not system_changes and "density_matrix" in self.results and set(properties) <= {"dipole", "charges", *self.results}:
            self._one_electron_properties(properties)  # same geometry: what its density gives
            return
        atoms = self.atoms
        distances = self.check_atoms(atoms)
        self.check_training_range(atoms, distances)
        wants_forces = "forces" in properties
        wants_energy = wants_forces or any(p in properties for p in ("energy", "free_energy"))
        if wants_energy and "hcore" not in self.model.config.heads:
            raise PropertyNotImplementedError(
                "this model predicts F~ only (no H~core head trained through energies), so it gives orbitals, "
                "density, dipole and charges but no energy or forces; use a model trained with an energy loss"
            )
        if self._integrals is None:
            self._integrals = IntegralCache(self.model.config.basis, self.parameters.charge)
        numbers = atoms.get_atomic_numbers()
        if self.network is not None and self.parameters.overlap == "exact":
            step = self._native_step(numbers, atoms.get_positions() / BOHR, distances / BOHR, wants_forces)
        else:
            step = self._torch_step(numbers, atoms.get_positions() / BOHR, wants_energy, wants_forces)
        self.results.update(step)
        self._one_electron_properties(properties)
        gap = self.results["homo_lumo_gap"]
        if gap < 0.1:
            warnings.warn(f"predicted HOMO-LUMO gap collapsed to {gap:.3f} eV: the geometry is probably outside the training range", stacklevel=2)

    def _torch_step(self, numbers, positions_bohr: np.ndarray, wants_energy: bool, wants_forces: bool) -> dict:
        """One electronic step through :func:`~ase_phisnet.electronic.electronic_states`; forces by autograd."""
        param = next(self.model.parameters())
        R = torch.tensor(positions_bohr, dtype=torch.float64, device=param.device, requires_grad=wants_forces)
        with torch.set_grad_enabled(wants_forces):
            graph = self._graph(numbers, R.to(param.dtype), ())  # the network in its dtype, the electronic step in float64
            (state,), _ = electronic_states(
                self.model, [numbers], [R], self._integrals, energy=wants_energy, overlap=self.parameters.overlap, dtype=torch.float64, graph=graph, network=self.network
            )
        results = {}
        if wants_forces:
            (grad,) = torch.autograd.grad(state.energy, R)
            results["forces"] = -grad.detach().cpu().double().numpy() * HARTREE / BOHR
        if wants_energy:
            results["energy"] = results["free_energy"] = float(state.energy.detach()) * HARTREE
            results["hamiltonian_energy"] = float(state.hamiltonian_energy.detach()) * HARTREE
        F, S, P, eps, C = (x.detach().cpu().double().numpy() for x in (state.fock, state.overlap, state.density_matrix, state.mo_energy, state.mo_coeff))
        return dict(results, hamiltonian=F, overlap=S, density_matrix=P, mo_coeff=C, mo_energy=eps, homo_lumo_gap=state.homo_lumo_gap * HARTREE)

    def _native_step(self, numbers, positions_bohr: np.ndarray, distances_bohr: np.ndarray, wants_forces: bool) -> dict:
        """One step on the compiled engine and the NumPy electronic step (:meth:`_native_steps`)."""
        return self._native_steps([numbers], [positions_bohr], [distances_bohr], wants_forces)[0]

    def _native_steps(self, numbers_list, positions_list, distances_list, wants_forces: bool) -> list[dict]:
        """Steps of a batch of molecules: one evaluation of the network on the compiled engine for
        all of them, the NumPy electronic step (:func:`~ase_phisnet.electronic.analytic.electronic_step`)
        for each, and one backward call into the engine for the forces of all. No torch autograd."""
        model, network, basis = self.model, self.network, self.model.basis
        graph = self._native_graph(numbers_list, positions_list, distances_list)
        outputs = dict(zip(network.output_names, network.forward_arrays(graph, np.concatenate(positions_list))))
        core_baseline = model.config.core_baseline and "hcore" in outputs
        results, explicit_gradients, bars = [], [], {h: np.zeros_like(m) for h, m in outputs.items()}
        for b, (numbers, R) in enumerate(zip(numbers_list, positions_list)):
            n, to_pyscf = basis.n_ao(numbers), basis.perm_to_pyscf(numbers)
            F = outputs["fock"][b][np.ix_(to_pyscf, to_pyscf)].astype(np.float64)
            H = outputs["hcore"][b][np.ix_(to_pyscf, to_pyscf)].astype(np.float64) if "hcore" in outputs else np.zeros_like(F)
            step = electronic_step(F, H, R, self._integrals(numbers), core_baseline, model.atomic_energy(numbers))
            state = step.state
            result = dict(
                hamiltonian=F, overlap=step.overlap, density_matrix=state.density_matrix, mo_coeff=state.mo_coeff, mo_energy=state.mo_energy,
                homo_lumo_gap=state.homo_lumo_gap * HARTREE,
            )  # fmt: skip
            explicit_gradients.append(step.dE_dR)  # through E_nn, S(R), h(R): the network's part comes below
            if "hcore" in outputs:
                result["hamiltonian_energy"] = step.energy * HARTREE
                correction = float(outputs["energy_correction"][b]) if "energy_correction" in outputs else 0.0
                result["energy"] = result["free_energy"] = (step.energy + correction) * HARTREE
            p = basis.perm_to_irreps(numbers)
            to_irreps = np.ix_(p, p)
            bars["fock"][b, :n, :n] = step.dE_dF[to_irreps]
            if "hcore" in bars:
                bars["hcore"][b, :n, :n] = step.dE_dH[to_irreps]
            if "energy_correction" in bars:
                bars["energy_correction"][b] = 1.0
            results.append(result)
        if wants_forces:
            grad = network.backward_arrays([bars[h] for h in network.output_names], sum(len(z) for z in numbers_list))
            start = 0
            for numbers, result, explicit in zip(numbers_list, results, explicit_gradients):
                result["forces"] = -(explicit + grad[start : start + len(numbers)]) * HARTREE / BOHR
                start += len(numbers)
        return results

    def _native_graph(self, numbers_list, positions_list, distances_list):
        """The pair bookkeeping of a batch for the engine (which takes the positions apart),
        kept while the molecules and their pairs within the cutoff stay the same."""
        cutoff = self.model.config.cutoff
        key = tuple((tuple(z.tolist()), np.packbits(d < cutoff).tobytes()) for z, d in zip(numbers_list, distances_list))
        cached_key, graph = self._graph_cache
        if key != cached_key:
            graph = self.model.graph(list(numbers_list), list(positions_list))
            self._graph_cache = (key, graph)
        return graph

    # ------------------------------------------------------------------ several molecules at once
    def evaluate_batch(self, images) -> list[dict]:
        """Energies and forces of several molecules from one evaluation of the network.

        For ensembles (replicas of one molecule, a set of conformers): the compiled engine runs
        once for all of them, forward and backward, and the electronic step once per molecule.
        The numbers equal those of one :meth:`calculate` per molecule. The calculator's own
        ``results`` and ``atoms`` are left as they were.

        Parameters
        ----------
        images : sequence of ase.Atoms
            Molecules the model covers (any mix), positions in Å.

        Returns
        -------
        list of dict
            Per molecule: ``energy`` and ``free_energy`` (eV), ``forces`` (eV/Å), and
            ``hamiltonian``, ``overlap``, ``density_matrix``, ``mo_coeff``, ``mo_energy`` (Hartree,
            PySCF AO order) and ``homo_lumo_gap`` (eV), as under ``results``.

        Examples
        --------
        >>> from ase.build import molecule
        >>> water = molecule("H2O")
        >>> replicas = [water.copy() for _ in range(4)]
        >>> for k, atoms in enumerate(replicas):
        ...     atoms.rattle(0.02, seed=k)
        >>> results = PhiSNetCalculator("water-pbe-def2svp").evaluate_batch(replicas)
        >>> len(results), results[0]["forces"].shape
        (4, (3, 3))
        """
        images = list(images)
        if not images:
            return []
        if "hcore" not in self.model.config.heads:
            raise PropertyNotImplementedError("evaluate_batch gives energies and forces: this model has no H~core head")
        distances = []
        for atoms in images:
            distances.append(self.check_atoms(atoms))
            self.check_training_range(atoms, distances[-1])
        if self._integrals is None:
            self._integrals = IntegralCache(self.model.config.basis, self.parameters.charge)
        numbers = [atoms.get_atomic_numbers() for atoms in images]
        positions = [atoms.get_positions() / BOHR for atoms in images]
        if self.network is not None and self.parameters.overlap == "exact":
            return self._native_steps(numbers, positions, [d / BOHR for d in distances], wants_forces=True)
        return [self._torch_step(z, R, True, True) for z, R in zip(numbers, positions)]  # the torch model: one molecule at a time

    def _one_electron_properties(self, properties) -> None:
        """Dipole (e·Å) and Mulliken charges of the step's density, when asked for: an MD run
        that needs only forces does not pay for the dipole integrals."""
        if not ({"dipole", "charges"} & set(properties)) or "dipole" in self.results:
            return
        numbers = self.atoms.get_atomic_numbers()
        mol = self._integrals(numbers).mol
        mol.set_geom_(self.atoms.get_positions() / BOHR, unit="Bohr", symmetry=False)
        P, S = self.results["density_matrix"], self.results["overlap"]
        self.results.update(dipole=dipole_moment(mol, P) * BOHR, charges=mulliken_charges(mol, P, S))

    # ------------------------------------------------------------------ ASE orbital conventions
    def orbital_result(self, key: str, atoms=None):
        """``results[key]`` for an orbital quantity, calculating first if the geometry changed."""
        atoms = atoms or self.atoms
        if atoms is None:
            raise InputError("no atoms: attach the calculator to an Atoms object first")
        if self.check_state(atoms) or key not in self.results:
            self.get_property("dipole", atoms)  # a step if the geometry changed
        return self.results[key]

    def get_eigenvalues(self, kpt=0, spin=0):
        """Orbital energies in eV (ASE's convention), ascending."""
        return self.orbital_result("mo_energy") * HARTREE

    def get_occupation_numbers(self, kpt=0, spin=0):
        n_occ = check_charge_multiplicity(self.atoms.get_atomic_numbers(), self.parameters.charge, 1) // 2
        occ = np.zeros(len(self.get_eigenvalues()))
        occ[:n_occ] = 2.0
        return occ

    def get_number_of_spins(self):
        return 1

    def get_homo_lumo(self):
        eps = self.get_eigenvalues()
        n_occ = int(self.get_occupation_numbers().astype(bool).sum())
        return eps[n_occ - 1], eps[n_occ]

    # ------------------------------------------------------------------ PySCF hand-off
    def initial_guess(self, atoms=None) -> np.ndarray:
        """The predicted density matrix (PySCF AO order), for ``mf.kernel(dm0=...)``."""
        return self.orbital_result("density_matrix", atoms)

    def to_pyscf(self, xc: str | None = None):
        """A PySCF mean-field object holding the predicted wavefunction.

        ``mo_coeff``, ``mo_energy`` and ``mo_occ`` are the model's, so PySCF analysis (Molden
        export, populations, ``make_rdm1``) works on it. ``xc=None`` gives an RKS object with
        the reference functional recorded in the model (an RHF object for an HF or CCSD(T) model,
        whose orbitals are Hartree–Fock-like).
        """
        from pyscf import dft, scf

        from .molecule import build_mol

        mo_coeff = self.orbital_result("mo_coeff")
        mol = build_mol(self.atoms.get_atomic_numbers(), self.atoms.get_positions(), self.model.config.basis, self.parameters.charge)
        reference = getattr(self.model, "metadata", {}).get("reference", {})
        xc = xc or reference.get("xc")
        mf = scf.RHF(mol) if (reference.get("method") in ("rhf", "ccsd(t)") or not xc) else dft.RKS(mol, xc=xc)
        mf.mo_coeff = mo_coeff
        mf.mo_energy = self.results["mo_energy"]
        mf.mo_occ = self.get_occupation_numbers()
        return mf
