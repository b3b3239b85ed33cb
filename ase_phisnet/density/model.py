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

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from e3nn import o3
from torch import nn

from .. import __version__
from ..basis import AOBasis, default_dtype
from ..data.store import atomic_write_bytes
from ..model.config import PhiSNetConfig
from ..model.io import ModelFileError, build_model
from ..units import BOHR

FORMAT = "ase_phisnet.density_model/1"


def so3_shell_irreps(basis: AOBasis, Z: int) -> o3.Irreps:
    """Irreps of one atom's auxiliary functions as SO(3) irreps (``l e``), shell by shell.

    The backbone's features are SO(3) irreps of even label; a real spherical-harmonic shell of
    angular momentum l transforms under rotations as the ``l e`` irrep in e3nn.
    """
    return o3.Irreps([(1, (l, 1)) for l in basis.shell_ls[int(Z)]])


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
        self.heads = nn.ModuleDict({str(z): o3.Linear(backbone.irreps, so3_shell_irreps(self.aux, z)) for z in self.aux.elements})
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
        x, _, _ = self.backbone.atom_features(graph)
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
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in (state_dict or model.state_dict()).items()}
    weights = save(tensors, metadata={"format": FORMAT})
    atomic_write_bytes(directory / "model.safetensors", lambda fh: fh.write(weights))
    config = {
        "format": FORMAT,
        "package_version": __version__,
        "backbone": model.backbone.config.to_dict(),
        "auxbasis": model.auxbasis,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "units": "positions Bohr inside (Å at the boundary); coefficients of chi_Q in PySCF's auxiliary AO order",
        "metadata": metadata or {},
    }
    text = (json.dumps(config, indent=2) + "\n").encode()
    atomic_write_bytes(directory / "config.json", lambda fh: fh.write(text))
    return directory


def load_density_model(path, dtype=torch.float64) -> DensityModel:
    """Load a density model folder, refusing damaged, mismatched or foreign files."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(path)
    cfg_path, weights = directory / "config.json", directory / "model.safetensors"
    if not cfg_path.exists() or not weights.exists():
        raise ModelFileError(f"{directory} is not a density model folder (needs config.json and model.safetensors)")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{cfg_path} is not valid JSON ({err})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{cfg_path} is not an ase_phisnet density model config (expected format {FORMAT!r})")
    if hashlib.sha256(weights.read_bytes()).hexdigest() != config.get("weights_sha256"):
        raise ModelFileError(f"{weights} does not match the checksum in config.json: truncated, damaged or from another model")
    with default_dtype(dtype):
        model = DensityModel(build_model(PhiSNetConfig.from_dict(config["backbone"]), dtype), config["auxbasis"]).to(dtype)
    try:
        model.load_state_dict(load_file(str(weights)))
    except (SafetensorError, RuntimeError, OSError) as err:
        raise ModelFileError(f"{weights} does not fit the architecture in config.json: {err}") from None
    model.metadata = config.get("metadata", {})
    return model.eval()
