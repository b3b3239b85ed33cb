"""The atom-centred density model: PhiSNet atom features -> auxiliary-basis coefficients.

SALTED's idea with PhiSNet's features: each atom's coefficients in the auxiliary basis come
from an equivariant linear map (one per element) of that atom's features, so the predicted
density rotates with the molecule exactly. The electron count is conserved by construction:
the prediction is shifted along n (n_Q = integral chi_Q) so that sum_Q c_Q n_Q = N.

The backbone is a PhiSNet Hamiltonian model (its weights kept inside the density model's file);
by default it stays frozen, so the density head shares what the Hamiltonian model learned.

Files: ``model.safetensors`` (backbone and head) + ``config.json`` (format
``ase_phisnet.density_model/1``), checked by SHA-256 like the Hamiltonian models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from e3nn import o3
from torch import nn

from ..basis import AOBasis, default_dtype
from ..model.config import PhiSNetConfig
from ..model.io import CONFIG, WEIGHTS, ModelFileError, build_model, read_config, read_weights, resolve_model_dir, shipped_models, write_model_folder
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


def load_density_model(name_or_path, dtype=torch.float64) -> DensityModel:
    """Load a density model by shipped name (``"water-density-etb"``) or folder.

    Damaged, mismatched or foreign files are refused with :class:`ModelFileError`.
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
    with default_dtype(dtype):
        model = DensityModel(build_model(PhiSNetConfig.from_dict(config["backbone"]), dtype), config["auxbasis"]).to(dtype)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ModelFileError(f"{directory / WEIGHTS} does not fit the architecture in {CONFIG}: {err}") from None
    model.metadata = config.get("metadata", {})
    return model.eval()
