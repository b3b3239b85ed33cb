"""The atom-centred density model: PhiSNet atom features -> auxiliary-basis coefficients.

SALTED's idea with PhiSNet's features: each atom's coefficients in the auxiliary basis come
from an equivariant linear map (one per element) of that atom's features, so the predicted
density rotates with the molecule exactly. The electron count is conserved by construction:
the prediction is shifted along n (n_Q = integral chi_Q) so that sum_Q c_Q n_Q = N.

The backbone is a PhiSNet Hamiltonian model (its weights kept inside the density model's file);
by default it stays frozen, so the density head shares what the Hamiltonian model learned.

Files: ``model.safetensors`` (backbone and head) + ``config.json`` (format
``ase_phisnet.density_model/1``), checked by SHA-256 like the Hamiltonian models.

``metadata["base_model"]`` names the Hamiltonian model the heads were fitted on and the SHA-256
of its ``model.safetensors``: ``{"name": "water-pbe-def2svp", "weights_sha256": "..."}``. The
backbone inside the file is that model's weights, so re-serialising them gives the same bytes
(:func:`backbone_sha256`); :func:`load_density_model` refuses a file where it does not, since
heads fitted on one backbone's features predict nonsense from another's. A later model shipped
under the same name changes nothing here: the density model keeps the backbone it was fitted on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from e3nn import o3
from torch import nn

from ..basis import AOBasis, default_dtype
from ..model.config import PhiSNetConfig
from ..model.io import CONFIG, WEIGHTS, ModelFileError, build_model, read_config, read_metadata, read_weights, resolve_model_dir, serialize_weights, shipped_models, write_model_folder
from ..model.io import FORMAT as MODEL_FORMAT
from ..units import BOHR

FORMAT = "ase_phisnet.density_model/1"


class DensityModel(nn.Module):
    """PhiSNet backbone + per-element equivariant linear heads onto the auxiliary basis.

    Parameters
    ----------
    backbone : PhiSNet
        A (trained) Hamiltonian model; its atom features feed the head.
    auxbasis : str
        PySCF name of the auxiliary basis (``"def2-universal-jfit"``) or ``"etb:BETA"``.
    """

    def __init__(self, backbone, auxbasis: str = "def2-universal-jfit"):
        super().__init__()
        self.backbone = backbone
        self.auxbasis = str(auxbasis)
        from .fitting import resolve_auxbasis

        self.aux = AOBasis(resolve_auxbasis(self.auxbasis, backbone.config.basis, backbone.config.elements), backbone.config.elements)
        # the backbone's features are SO(3) irreps of even label, so the heads map onto the
        # auxiliary shells as SO(3) irreps too (a shell of angular momentum l is "l e")
        self.heads = nn.ModuleDict({str(z): o3.Linear(backbone.irreps, self.aux.irreps(z, parity=False)) for z in self.aux.elements})
        # integral of each auxiliary function (irreps order; nonzero for s functions only)
        from ..molecule import build_mol
        from .fitting import aux_norms, make_auxmol

        for z in self.aux.elements:
            atom = build_mol([z], [[0.0, 0.0, 0.0]], backbone.config.basis, charge=0, multiplicity=1 + (z % 2))
            n = aux_norms(make_auxmol(atom, self.auxbasis))[self.aux.element_perm(z)]
            self.register_buffer(f"norms_{z}", torch.as_tensor(n, dtype=torch.get_default_dtype()), persistent=False)

    @property
    def elements(self):
        return self.aux.elements

    def norms(self, numbers) -> torch.Tensor:
        """n_Q of a molecule's auxiliary functions, irreps order."""
        return torch.cat([getattr(self, f"norms_{int(z)}") for z in numbers])

    def forward(self, graph, n_electrons: list[float]) -> list[torch.Tensor]:
        """Coefficients per molecule (irreps order), each summing to its electron count."""
        x = self.backbone.atom_features(graph)[0]
        out = []
        for b, N in enumerate(n_electrons):
            atoms = (graph.batch == b).nonzero().flatten().tolist()
            numbers = graph.numbers[atoms].tolist()
            c = torch.cat([self.heads[str(z)](x[a]) for a, z in zip(atoms, numbers)])
            n = self.norms(numbers).to(c)
            out.append(c + (N - n @ c) * n / (n @ n))
        return out

    @torch.no_grad()
    def predict(self, numbers, positions, charge: int = 0) -> np.ndarray:
        """Auxiliary coefficients of one molecule (positions Å), PySCF's auxiliary AO order."""
        numbers = self.aux.check_numbers(numbers)
        graph = self.backbone.graph([numbers], [np.asarray(positions, dtype=float) / BOHR])
        (c,) = self(graph, [float(numbers.sum() - charge)])
        return c.cpu().double().numpy()[self.aux.perm_to_pyscf(numbers)]


def save_density_model(model: DensityModel, directory, metadata: dict | None = None, state_dict: dict | None = None) -> Path:
    """Write ``model.safetensors`` + ``config.json`` (weights first, each atomically)."""
    fields = {"backbone": model.backbone.config.to_dict(), "auxbasis": model.auxbasis}
    units = "positions Bohr inside (Å at the boundary); coefficients of chi_Q in PySCF's auxiliary AO order"
    return write_model_folder(directory, state_dict or model.state_dict(), FORMAT, fields, units, metadata)


def backbone_sha256(state: dict) -> str:
    """SHA-256 of the backbone's weights as a Hamiltonian model's ``model.safetensors``.

    Parameters
    ----------
    state : dict
        The density model's tensors (``backbone.*`` and ``heads.*`` keys, as stored).

    Returns
    -------
    str
        The checksum that ``config.json`` of the backbone's own model folder records, when the
        backbone was stored as that folder holds it (float64, the same tensor names).
    """
    prefix = "backbone."
    return hashlib.sha256(serialize_weights({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, MODEL_FORMAT)).hexdigest()


def check_backbone(directory, metadata: dict, state: dict) -> None:
    """Refuse a density model whose backbone is not the base model its metadata records.

    Files without a ``base_model`` record (written before it existed) pass unchecked.

    Raises
    ------
    ModelFileError
        The record is malformed, or the stored backbone's weights have another SHA-256.
    """
    record = metadata.get("base_model")
    if record is None:
        return
    if not isinstance(record, dict) or not isinstance(record.get("weights_sha256"), str):
        raise ModelFileError(f"{Path(directory) / CONFIG}: metadata.base_model must be a mapping with 'name' and 'weights_sha256', got {record!r}")
    stored = backbone_sha256(state)
    if stored != record["weights_sha256"]:
        raise ModelFileError(
            f"{Path(directory) / WEIGHTS}: the backbone stored here (weights SHA-256 {stored[:12]}...) is not the model "
            f"{record.get('name')!r} (SHA-256 {record['weights_sha256'][:12]}...) that the density heads were fitted on; "
            "heads and backbone do not belong together. Fit the heads again on this backbone (phisnet train on a density recipe)"
        )


def load_density_model(name_or_path, dtype=torch.float64) -> DensityModel:
    """Load a density model by shipped name (``"water-density-etb"``) or folder.

    Damaged, mismatched or foreign files are refused with :class:`ModelFileError`, and so is a
    file whose backbone is not the base model it records (:func:`check_backbone`).
    """
    try:
        directory = resolve_model_dir(name_or_path)
    except ModelFileError:
        directory = Path(name_or_path)
    if not (directory / CONFIG).exists() or not (directory / WEIGHTS).exists():
        raise ModelFileError(
            f"{directory} is not a density model folder (needs {CONFIG} and {WEIGHTS}) "
            f"nor a shipped density model name (shipped: {', '.join(shipped_models(FORMAT)) or 'none'})"
        )
    config = read_config(directory, fmt=FORMAT, required=("backbone", "auxbasis"), what="an ase_phisnet density model config")
    state = read_weights(directory, config)
    metadata = read_metadata(directory, config)
    check_backbone(directory, metadata, state)
    with default_dtype(dtype):
        model = DensityModel(build_model(PhiSNetConfig.from_dict(config["backbone"]), dtype), config["auxbasis"]).to(dtype)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ModelFileError(f"{directory / WEIGHTS} does not fit the architecture in {CONFIG}: {err}") from None
    model.metadata = metadata
    return model.eval()
