"""Model files: ``model.safetensors`` (weights) + ``config.json`` (architecture and provenance).

Loading never unpickles anything: weights come from safetensors, everything else from JSON.
``config.json`` records the SHA-256 of the weights file, so a truncated, swapped or half-written
pair is refused with a clear message instead of giving silently wrong numbers.

The frame indices of a model's train/validation/test splits are kept in ``splits.json`` beside
the weights; ``config.json`` keeps the split sizes, the seed, the file's name and its SHA-256
under ``metadata["splits"]``. Loading puts the index lists back, so ``model.metadata["splits"]``
holds ``"train"``, ``"val"`` and ``"test"`` lists either way; folders written before the file
existed (index lists inline in ``config.json``) load unchanged.

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
from ..errors import ModelFileError
from .config import PhiSNetConfig
from .phisnet import PhiSNet, build_model

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
SPLITS = "splits.json"
#: Split names whose frame-index lists go to ``splits.json``.
SPLIT_LISTS = ("train", "val", "test")
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


def shipped_model_for(numbers) -> str:
    """The shipped PBE Hamiltonian model, with energies and forces, trained on this molecule.

    Of the shipped models whose reference is PBE and that have an H~core head (energies and
    forces), those trained on the molecule (its Hill formula among the model's
    ``training_range["molecules"]``); of these the one trained on the fewest molecules (a
    model of this molecule before a model of several), then the first by name. The commands that take
    ``--model`` use it when none is given.

    Parameters
    ----------
    numbers : sequence of int
        Atomic numbers of the molecule.

    Raises
    ------
    InputError
        No shipped model was trained on the molecule; the message lists the shipped models
        with the molecules they were trained on.

    Examples
    --------
    >>> shipped_model_for([8, 1, 1])
    'water-pbe-def2svp'
    """
    from ..errors import InputError
    from ..molecule import formula as hill_formula

    formula = hill_formula(numbers)
    trained_on, offered = [], []
    for name in shipped_models():
        config = read_config(SHIPPED / name)
        metadata = config.get("metadata", {})
        if metadata.get("reference", {}).get("xc") != "pbe" or "hcore" not in config["model"]["heads"]:
            continue
        molecules = list(metadata.get("training_range", {}).get("molecules", {}))
        offered.append(f"{name} ({', '.join(molecules) or 'no record'})")
        if formula in molecules:
            trained_on.append((len(molecules), name))
    if not trained_on:
        shipped = "; ".join(offered) or "none"
        raise InputError(
            f"no shipped model was trained on {formula}; the shipped PBE models with energies and forces, "
            f"with the molecules they were trained on: {shipped}. Name one to use it anyway (--model NAME; "
            "PhiSNetCalculator(model=NAME)), or a folder of a model you trained"
        )
    return min(trained_on)[1]


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
        raise ModelFileError(f"weights do not fit the architecture (missing {stray[:3]}, unexpected {result.unexpected_keys[:3]})")


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

    Each file is replaced atomically; the weights go first and ``config.json`` last, so a kill
    in between leaves a ``config.json`` whose checksums no longer match, which :func:`load_model`
    refuses. Split index lists in ``metadata["splits"]`` go to ``splits.json`` beside the weights.
    """
    tensors = state_dict or model.state_dict()
    units = "positions Bohr inside (Å at the ASE boundary); matrices Hartree; AO order PySCF outside the model"
    return write_model_folder(directory, tensors, FORMAT, {"model": model.config.to_dict()}, units, metadata)


def write_model_folder(directory, tensors: dict, fmt: str, fields: dict, units: str, metadata: dict | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (created if needed).

    ``config.json`` holds ``format``, ``package_version``, ``fields`` (the architecture),
    the weights' SHA-256, ``units`` and ``metadata``; split index lists go to ``splits.json``
    (:func:`split_out_indices`). The weights go first and ``config.json`` last, each file
    atomically, so a kill in between leaves a checksum mismatch that loading refuses.
    Shared by the Hamiltonian models and the density models.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = serialize_weights(tensors, fmt)
    _atomic_write_bytes(directory / WEIGHTS, weights)
    metadata, splits = split_out_indices(metadata or {})
    if splits is not None:
        _atomic_write_bytes(directory / SPLITS, splits)
    config = {
        "format": fmt,
        "package_version": __version__,
        **fields,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "units": units,
        "metadata": metadata,
    }
    _atomic_write_bytes(directory / CONFIG, config_bytes(config))
    if splits is None:  # a splits file left from an earlier model in this folder is not this one's
        (directory / SPLITS).unlink(missing_ok=True)
    return directory


def serialize_weights(tensors: dict, fmt: str = FORMAT) -> bytes:
    """The bytes of a ``model.safetensors`` file holding ``tensors`` (format tag ``fmt``).

    The same tensors always give the same bytes, so the SHA-256 of this is the checksum that
    ``config.json`` of a folder written from them records.
    """
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata={"format": fmt})


def config_bytes(config: dict) -> bytes:
    """``config.json`` as written: indented JSON, one trailing newline."""
    return (json.dumps(config, indent=2, sort_keys=False) + "\n").encode()


def split_out_indices(metadata: dict) -> tuple[dict, bytes | None]:
    """Metadata for ``config.json`` and the bytes of ``splits.json`` (``None``: no index lists).

    The ``"train"``/``"val"``/``"test"`` lists of ``metadata["splits"]`` go to the file, with the
    split's seed and sizes; ``metadata["splits"]`` keeps the seed and sizes and gains ``"file"``
    (``splits.json``) and ``"sha256"`` (of the file's bytes). The input is not changed.
    """
    recorded = metadata.get("splits")
    if not isinstance(recorded, dict) or not any(isinstance(recorded.get(k), list) for k in SPLIT_LISTS):
        return metadata, None
    info = {k: v for k, v in recorded.items() if k not in SPLIT_LISTS and k not in ("file", "sha256")}
    doc = {**info, **{k: [int(i) for i in recorded[k]] for k in SPLIT_LISTS if k in recorded}}
    data = (json.dumps(doc, indent=1) + "\n").encode()
    return {**metadata, "splits": {**info, "file": SPLITS, "sha256": hashlib.sha256(data).hexdigest()}}, data


def read_metadata(directory, config: dict) -> dict:
    """``config["metadata"]`` with the split index lists of ``splits.json`` put back.

    Raises
    ------
    ModelFileError
        ``config.json`` names a splits file that is missing or does not match its checksum.
    """
    metadata = dict(config.get("metadata") or {})
    recorded = metadata.get("splits")
    if not isinstance(recorded, dict) or "file" not in recorded:
        return metadata  # no splits, or index lists inline (folders written before splits.json)
    path = Path(directory) / str(recorded["file"])
    if not path.is_file():
        raise ModelFileError(f"{Path(directory) / CONFIG} names the split file {recorded['file']}, which is not in {directory}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != recorded.get("sha256"):
        raise ModelFileError(f"{path} does not match the checksum in {CONFIG}: truncated, damaged or from another model")
    try:
        lists = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path} is not valid JSON ({err})") from None
    metadata["splits"] = {**recorded, **{k: lists[k] for k in SPLIT_LISTS if k in lists}}
    return metadata


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
        Missing, truncated, mismatched or incompatible files (weights or ``splits.json``).
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
    model.metadata = read_metadata(directory, config)
    return model.to(device=device, dtype=dtype).eval()
