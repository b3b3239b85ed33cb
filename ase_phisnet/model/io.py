"""Model files: ``model.safetensors`` (weights) + ``config.json`` (architecture and provenance).

Loading never unpickles anything: weights come from safetensors, everything else from JSON.
``config.json`` records the SHA-256 of the weights file, so a truncated, swapped or half-written
pair is refused with a clear message instead of giving silently wrong numbers.

Examples
--------
>>> import tempfile
>>> from ase_phisnet.model import PhiSNet, PhiSNetConfig
>>> from ase_phisnet.model.io import save_model, load_model
>>> model = PhiSNet(PhiSNetConfig.from_preset("small", elements=[1, 8]))
>>> with tempfile.TemporaryDirectory() as tmp:
...     _ = save_model(model, tmp, metadata={"note": "untrained"})
...     again = load_model(tmp)
>>> again.config.elements
[1, 8]
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from .. import __version__
from ..atomic_files import atomic_write_bytes
from .config import PhiSNetConfig
from .phisnet import PhiSNet, build_model
from ..errors import ModelFileError  # noqa: F401 (re-exported)

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
#: Folder of the models shipped inside the package, one sub-folder per name.
SHIPPED = Path(__file__).resolve().parents[1] / "pretrained"
FORMAT = "ase_phisnet.model/1"



def shipped_models(fmt: str = FORMAT) -> list[str]:
    """Names of the models of format ``fmt`` shipped with the package (Hamiltonian models by default).

    Examples
    --------
    >>> "water-pbe-def2svp" in shipped_models()
    True
    """
    names = []
    for folder in sorted(SHIPPED.glob("*")):
        try:
            if json.loads((folder / CONFIG).read_text()).get("format") == fmt:
                names.append(folder.name)
        except (OSError, ValueError):
            continue
    return names


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, lambda fh: fh.write(data))


def load_weights(model: PhiSNet, state: dict, new: tuple[str, ...] = ()) -> None:
    """Load a state dict into ``model`` where the model may have modules the weights lack.

    Parameters
    ----------
    model : PhiSNet
    state : dict
        Weights of another model (``state_dict()``).
    new : tuple of str
        Key prefixes of the modules ``model`` adds (e.g. ``"heads.overlap."``); only these may
        be missing from ``state``. They keep their initialisation.

    Raises
    ------
    ValueError
        Any other missing key, or a key the model does not have.
    """
    result = model.load_state_dict(state, strict=False)
    stray = [k for k in result.missing_keys if not k.startswith(tuple(new))]
    if stray or result.unexpected_keys:
        raise ValueError(f"weights do not fit the architecture (missing {stray[:3]}, unexpected {result.unexpected_keys[:3]})")


def save_model(model: PhiSNet, directory, metadata: dict | None = None, state_dict: dict | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created if needed).

    Parameters
    ----------
    model : PhiSNet
    directory : path
    metadata : dict, optional
        JSON-serialisable provenance (training data, splits, metrics, ...), stored under
        ``"metadata"`` in ``config.json``.
    state_dict : dict, optional
        Weights to write instead of ``model.state_dict()`` (e.g. the EMA weights).

    Each file is replaced atomically; the weights go first, so a kill between the two leaves a
    ``config.json`` whose checksum no longer matches, which :func:`load_model` refuses.
    """
    tensors = state_dict or model.state_dict()
    units = "positions Bohr inside (Å at the ASE boundary); matrices Hartree; AO order PySCF outside the model"
    return write_model_folder(directory, tensors, FORMAT, {"model": model.config.to_dict()}, units, metadata)


def write_model_folder(directory, tensors: dict, fmt: str, fields: dict, units: str, metadata: dict | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created if needed).

    ``config.json`` holds ``format``, ``package_version``, ``fields`` (the architecture),
    the weights' SHA-256, ``units`` and ``metadata``. The weights go first, each file
    atomically, so a kill between the two leaves a checksum mismatch that loading refuses.
    Shared by the Hamiltonian models and the density models.
    """
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata={"format": fmt})
    _atomic_write_bytes(directory / WEIGHTS, weights)
    config = {
        "format": fmt,
        "package_version": __version__,
        **fields,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "units": units,
        "metadata": metadata or {},
    }
    _atomic_write_bytes(directory / CONFIG, (json.dumps(config, indent=2, sort_keys=False) + "\n").encode())
    return directory


def resolve_model_dir(name_or_path) -> Path:
    """A shipped model's folder by name, or a folder / ``config.json`` / weights path."""
    path = Path(name_or_path)
    if path.is_file():
        path = path.parent
    if path.is_dir():
        return path
    if (SHIPPED / str(name_or_path) / CONFIG).exists() and "/" not in str(name_or_path):
        return SHIPPED / str(name_or_path)
    raise ModelFileError(
        f"no model {str(name_or_path)!r}: not a folder holding {CONFIG} and {WEIGHTS}, "
        f"nor a shipped model name (shipped: {', '.join(shipped_models()) or 'none'})"
    )


def read_config(name_or_path, fmt: str = FORMAT, required: tuple = ("model",), what: str = "an ase_phisnet model config") -> dict:
    """The parsed ``config.json`` of a model, checked for format (``fmt``) and ``required`` keys."""
    directory = resolve_model_dir(name_or_path)
    path = directory / CONFIG
    if not path.exists():
        raise ModelFileError(f"{directory} holds no {CONFIG}; a model folder has {CONFIG} and {WEIGHTS}")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path} is not valid JSON ({err}); the file is damaged or not a model config") from None
    if not isinstance(config, dict) or config.get("format") != fmt or any(k not in config for k in required):
        raise ModelFileError(f"{path} is not {what} (expected format {fmt!r})")
    return config


def read_weights(directory, config: dict) -> dict:
    """The tensors of ``directory/model.safetensors``, checked against ``config``'s checksum."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights = Path(directory) / WEIGHTS
    if not weights.exists():
        raise ModelFileError(f"{directory} holds no {WEIGHTS}")
    if _sha256(weights) != config.get("weights_sha256"):
        raise ModelFileError(f"{weights} does not match the checksum in {CONFIG}: truncated, damaged or from another model")
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise ModelFileError(f"cannot read {weights}: {err}") from None


def load_model(name_or_path, device="cpu", dtype=torch.float64) -> PhiSNet:
    """Load a model by shipped name or path; weights are checked against the config's checksum.

    Parameters
    ----------
    name_or_path : str or path
        ``"water-pbe-def2svp"`` or a folder with ``config.json`` and ``model.safetensors``.
    device : str or torch.device
    dtype : torch.dtype
        Float type of the returned model (float64 for physics, float32 for speed).

    Raises
    ------
    ModelFileError
        Missing, truncated, mismatched or incompatible files.
    """
    directory = resolve_model_dir(name_or_path)
    config = read_config(directory)
    state = read_weights(directory, config)
    try:
        cfg = PhiSNetConfig.from_dict(config["model"])
        model = build_model(cfg, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{directory / CONFIG} describes a model this version cannot build: {err}") from None
    weights = directory / WEIGHTS
    try:  # e3nn's stored constants, in files written before model/e3nn_state.py, are dropped on load
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:
        raise ModelFileError(f"{weights} does not fit the architecture in {CONFIG}: {err}") from None
    if result.missing_keys or result.unexpected_keys:
        raise ModelFileError(
            f"{weights} does not fit the architecture in {CONFIG}: missing {sorted(result.missing_keys)[:5]}, unexpected {sorted(result.unexpected_keys)[:5]}"
        )
    model.metadata = config.get("metadata", {})
    return model.to(device=device, dtype=dtype).eval()
